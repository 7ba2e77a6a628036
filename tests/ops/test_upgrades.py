"""`db upgrade` on every start: safe when current, from two replicas at once, and on a schema
a newer release already migrated (a rolling upgrade)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.cli import _upgrade
from bot.runner import ensure_runnable_schema
from storage import migrate
from storage.db import create_engine
from storage.health import SchemaState, schema_state_of


async def set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )
    finally:
        await engine.dispose()


async def test_upgrading_a_current_database_changes_nothing(db_url: str):
    await _upgrade(db_url)
    await _upgrade(db_url)
    assert await schema_state_of(db_url) == (SchemaState.CURRENT, migrate.head_revision())


async def test_two_replicas_starting_together_migrate_once(db_url: str):
    if not db_url.startswith("postgresql"):
        pytest.skip("one SQLite database is served by one process")
    await migrate.downgrade(db_url, "0001")
    assert (await schema_state_of(db_url))[0] is SchemaState.BEHIND
    await asyncio.gather(_upgrade(db_url), _upgrade(db_url))
    assert await schema_state_of(db_url) == (SchemaState.CURRENT, migrate.head_revision())


async def test_a_schema_behind_the_code_stops_the_bot(db_url: str):
    await migrate.downgrade(db_url, "0001")
    with pytest.raises(migrate.DatabaseNotReadyError, match="db upgrade"):
        await ensure_runnable_schema(db_url)


async def test_the_previous_release_runs_on_the_next_releases_schema(db_url: str):
    # What the old replicas see during a rolling upgrade: a revision their code does not know.
    await set_revision(db_url, "0999_from_a_newer_release")
    assert (await schema_state_of(db_url))[0] is SchemaState.AHEAD
    await _upgrade(db_url)  # leaves it alone instead of failing
    await ensure_runnable_schema(db_url)  # and runs
    assert (await schema_state_of(db_url))[1] == "0999_from_a_newer_release"
