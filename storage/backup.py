"""The database side of backups: an online SQLite copy, row counts to verify a restore, and
whether a database is empty enough to restore into. PostgreSQL itself is dumped and restored
by its own tools (pg_dump / pg_restore), driven from services.backup.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from storage.db import create_engine
from storage.models import Base


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _online_copy(source: Path, target: Path) -> None:
    # The copy holds every pupil's data: created 0600 (not as the umask says), and SQLite
    # gives the journal it writes next to it the same mode.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(target, 0o600)
    # The backup API copies a consistent snapshot page by page while the bot keeps writing
    # (WAL); a file copy of a live database can be torn.
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst, pages=1024)
    # Other than the live database, a backup is one self-contained file.
    with sqlite3.connect(target) as dst:
        dst.execute("PRAGMA journal_mode=DELETE")


async def sqlite_online_copy(url: str, target: Path) -> None:
    await asyncio.to_thread(_online_copy, sqlite_path(url), target)


async def row_counts(url: str) -> dict[str, int]:
    """Rows per table of the model, plus Alembic's version table."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            counts: dict[str, int] = {}
            for table in Base.metadata.sorted_tables:
                counts[table.name] = int(
                    await connection.scalar(select(func.count()).select_from(table)) or 0
                )
            return counts
    finally:
        await engine.dispose()


async def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()


@asynccontextmanager
async def pg_snapshot(url: str) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A PostgreSQL snapshot held open: its id (for `pg_dump --snapshot`) and the row counts
    as of that snapshot, so the dump and the counts that verify its restore agree exactly,
    however busy the bot is meanwhile."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                snapshot = str(await connection.scalar(text("SELECT pg_export_snapshot()")))
                counts = {
                    table.name: int(
                        await connection.scalar(select(func.count()).select_from(table)) or 0
                    )
                    for table in Base.metadata.sorted_tables
                }
                yield snapshot, counts
    finally:
        await engine.dispose()
