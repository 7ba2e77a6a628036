"""Engine and session factory. One engine per process, built by the app factory."""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

try:
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0 calls it await_only
    from sqlalchemy.util.concurrency import await_only as await_


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine, with SQLite set up for a bot that writes from many updates."""
    # hide_parameters: a database error in the log must not carry the values of the statement
    # (names, texts of the pupils); the statement itself is enough to find the bug.
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": 30},
            **({"module": _OneTripAiosqlite(aiosqlite, sqlite3)} if _one_trip_possible() else {}),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one update writes; foreign keys are off by default in SQLite,
    # and without them ON DELETE CASCADE (erasure!) would silently do nothing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# ------------------------------------------------------------------ SQLite, one trip a statement
#
# aiosqlite runs each SQLite call on a thread of its own and hands the result back to the event
# loop: a trip costs some 50 µs of CPU and 100 µs of waiting, far more than SQLite's own work
# on a small indexed table. SQLAlchemy's adapter makes four trips per SELECT (open a cursor,
# execute, fetch, close) and three per INSERT; the cursor below makes one, doing all four on the
# thread at once, and a COMMIT or ROLLBACK with no transaction open makes none. SQLite sees the
# very same calls in the same order on the same thread: only the trips between them are saved.


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, int, int | None, list[Any]]:
    """On aiosqlite's thread: one statement, start to finish."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class _OneTripCursor:
    """A DB-API cursor over aiosqlite whose rows are all fetched when it executes (as
    SQLAlchemy's own aiosqlite cursor does, in four trips instead of one)."""

    server_side = False

    def __init__(self, adapted: _OneTripConnection) -> None:
        self._adapted = adapted
        self._connection: Any = adapted._connection  # aiosqlite.Connection
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _execute(self, operation: str, parameters: Any, *, many: bool) -> None:
        try:
            connection = self._connection._conn
            self.description, self.rowcount, self.lastrowid, rows = await_(
                self._connection._execute(_run, connection, operation, parameters, many)
            )
        except Exception as error:
            self._adapted._handle_exception(error)
        self._rows = deque(rows)

    def execute(self, operation: str, parameters: Any = None) -> None:
        self._execute(operation, parameters, many=False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._execute(operation, seq_of_parameters, many=True)

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Any:
        while self._rows:
            yield self._rows.popleft()

    def setinputsizes(self, *_sizes: Any) -> None:
        pass

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's hook to close the driver's cursor early: it is closed already."""


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # streamed results fetch row by row: SQLAlchemy's own cursor
            return super().cursor(server_side=True)
        return _OneTripCursor(self)

    def _in_transaction(self) -> bool:
        # A plain attribute read (sqlite3_get_autocommit): no statement of this connection is
        # running meanwhile, SQLAlchemy awaits each before it asks for the next.
        return bool(self._connection._connection and self._connection._conn.in_transaction)

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        # Also the pool's reset of every connection it gets back, mostly after a COMMIT.
        if self._in_transaction():
            super().rollback()


def _one_trip_possible() -> bool:
    # The cursor below leans on aiosqlite's and SQLAlchemy's adapter internals; should a
    # release move them, SQLite still works through SQLAlchemy's own cursor, only slower.
    return (
        callable(getattr(aiosqlite.Connection, "_execute", None))
        and hasattr(AsyncAdapt_aiosqlite_connection, "_handle_exception")
        and "_conn" in dir(aiosqlite.Connection)
    )


class _OneTripAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> _OneTripConnection:
        adapted = super().connect(*args, **kwargs)
        return _OneTripConnection(self, adapted._connection)
