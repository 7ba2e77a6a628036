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

from storage.session_scope import current_session

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
            # check_same_thread: aiosqlite opens the connection on its thread, statements run
            # on the event loop's (see _InlineCursor); never both at once.
            connect_args={"timeout": 30, "check_same_thread": False},
            **({"module": _InlineAiosqlite(aiosqlite, sqlite3)} if _inline_possible() else {}),
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


# ------------------------------------------------- SQLite: an update's statements run in place
#
# aiosqlite runs each SQLite call on a thread of its own and hands the result back to the event
# loop. A hand-off costs some 50 µs of the loop's CPU and 100 µs of waiting, far more than
# SQLite's own work on a small indexed table, and SQLAlchemy's adapter makes four per SELECT
# (open a cursor, execute, fetch, close). Here a statement is one hand-off at most, and none at
# all while an update is being handled (storage.session_scope.current_session is set): then
# statements, COMMIT and ROLLBACK run in the event loop's thread, start to finish.
#
# What the loop gives up meanwhile: nothing an update could use. This process's updates take
# turns on SQLite anyway (one writer; bot.middlewares.UpdateTransaction), so only network work
# that needs no database (a webhook delivery being read, a health check) waits, for as long
# as a statement takes: micro- to milliseconds, or, should another process hold SQLite's write
# lock (the command line's import), until it lets go (busy_timeout). Work outside updates (the
# reminder jobs, the command line, backups) keeps its hand-offs: SQLAlchemy's AsyncConnection
# insists that a statement really awaits, and long jobs should not hold up the loop.
# PostgreSQL, the choice for more than one school, is asynchronous all the way.


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, int, int | None, list[Any]]:
    """One statement, start to finish."""
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


class _InlineCursor:
    """A DB-API cursor that runs its statement on aiosqlite's sqlite3 connection, in place
    during an update and else in one trip to aiosqlite's thread, fetching all rows at once
    (as SQLAlchemy's own aiosqlite cursor does, in four trips)."""

    server_side = False

    def __init__(self, adapted: _InlineConnection) -> None:
        self._adapted = adapted
        self._connection: Any = adapted._connection  # aiosqlite.Connection
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _execute(self, operation: str, parameters: Any, *, many: bool) -> None:
        connection = self._connection._conn
        try:
            if current_session.get() is not None:
                done = _run(connection, operation, parameters, many)
            else:
                done = await_(
                    self._connection._execute(_run, connection, operation, parameters, many)
                )
            self.description, self.rowcount, self.lastrowid, rows = done
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


class _InlineConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # streamed results fetch row by row: SQLAlchemy's own cursor
            return super().cursor(server_side=True)
        return _InlineCursor(self)

    def _in_transaction(self) -> bool:
        # A plain attribute read (sqlite3_get_autocommit): no statement of this connection is
        # running meanwhile, SQLAlchemy finishes each before it asks for the next.
        return bool(self._connection._connection and self._connection._conn.in_transaction)

    def commit(self) -> None:
        if not self._in_transaction():
            return
        if current_session.get() is None:
            super().commit()
            return
        try:
            self._connection._conn.commit()
        except Exception as error:
            self._handle_exception(error)

    def rollback(self) -> None:
        # Also the pool's reset of every connection it gets back, mostly after a COMMIT.
        if not self._in_transaction():
            return
        if current_session.get() is None:
            super().rollback()
            return
        try:
            self._connection._conn.rollback()
        except Exception as error:
            self._handle_exception(error)


def _inline_possible() -> bool:
    # The classes above lean on aiosqlite's and SQLAlchemy's adapter internals; should a
    # release move them, SQLite still works through SQLAlchemy's own cursor, only slower.
    return (
        callable(getattr(aiosqlite.Connection, "_execute", None))
        and hasattr(AsyncAdapt_aiosqlite_connection, "_handle_exception")
        and "_conn" in dir(aiosqlite.Connection)
    )


class _InlineAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> _InlineConnection:
        adapted = super().connect(*args, **kwargs)
        return _InlineConnection(self, adapted._connection)
