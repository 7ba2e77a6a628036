"""Migrations: up, down and up again on every backend, and models in step with them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import migrate
from storage.db import create_engine
from storage.models import Base


async def test_migrations_go_down_and_up_again(db_url: str):
    assert await migrate.current_revision(db_url) == migrate.head_revision()
    await migrate.downgrade(db_url, "base")
    assert await migrate.current_revision(db_url) is None
    await migrate.upgrade(db_url)
    assert await migrate.current_revision(db_url) == migrate.head_revision()


async def test_models_match_the_migrated_schema(db_url: str):
    engine = create_engine(db_url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await engine.dispose()
    assert diff == [], "models changed without a migration: run `alembic revision --autogenerate`"


async def test_an_unmigrated_database_is_refused_with_a_clear_message(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(migrate.DatabaseNotReadyError, match="portfolio-bot db upgrade"):
        await migrate.ensure_current(url)
