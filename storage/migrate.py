"""Run Alembic migrations from code, and check that a database is current before the bot starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.db import create_engine

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseNotReadyError(Exception):
    """The database is missing, unreachable or not migrated to the code's schema."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {heads}")
    return heads[0]


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, lambda connection: _command(connection, url, "upgrade", revision))


async def downgrade(url: str, revision: str) -> None:
    await _run(url, lambda connection: _command(connection, url, "downgrade", revision))


def _command(connection: Connection, url: str, name: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    getattr(command, name)(config, revision)


async def current_revision(url: str) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return await _run(url, read)


async def _run(url: str, work: Callable[[Connection], T]) -> T:
    _ensure_sqlite_dir(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


async def ensure_current(url: str) -> None:
    """Refuse to run against a database that is not at the code's schema revision."""
    try:
        current = await current_revision(url)
    except Exception as error:  # the driver's own error types differ per backend
        raise DatabaseNotReadyError(f"Cannot reach the database: {error}") from None
    head = head_revision()
    if current is None:
        raise DatabaseNotReadyError(
            "The database has no tables yet. Run `portfolio-bot db upgrade` first."
        )
    if current != head:
        raise DatabaseNotReadyError(
            f"The database is at revision {current}, the code needs {head}. "
            "Run `portfolio-bot db upgrade` first."
        )
