"""Engine and session factory. One engine per process, built by the app factory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine, with SQLite set up for a bot that writes from many updates.

    On SQLite every statement runs on aiosqlite's own thread, never in the event loop's: while
    another process holds SQLite's write lock (the command line's import, a backup) a statement
    waits there for up to busy_timeout, and the loop meanwhile goes on serving health checks,
    webhook deliveries and updates that only read.
    """
    # hide_parameters: a database error in the log must not carry the values of the statement
    # (names, texts of the pupils); the statement itself is enough to find the bug.
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 30}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one update writes; foreign keys are off by default in SQLite,
    # and without them ON DELETE CASCADE (erasure!) would silently do nothing. secure_delete
    # overwrites what a DELETE frees with zeros, so erased texts do not linger in free pages
    # of the file; SQLite's default for it depends on how it was built, so it is asked for.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
