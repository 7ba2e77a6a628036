"""What every SQLite connection of the engine is set up with, whatever SQLite's build says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from storage.db import create_engine

ERASED = "Sam vertelde over de ruzie thuis"


def _as_a_build_without_secure_delete(dbapi_connection: Any, _record: Any) -> None:
    # Many SQLite builds start a connection with secure_delete off (it is a compile-time
    # default); this one may not, so the test makes every new connection start that way.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete=OFF")
    cursor.close()


async def test_every_new_sqlite_connection_overwrites_what_it_deletes(tmp_path: Path):
    database = tmp_path / "portfolio.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    event.listen(engine.sync_engine, "connect", _as_a_build_without_secure_delete, insert=True)
    try:
        async with engine.begin() as connection:
            assert await connection.scalar(text("PRAGMA secure_delete")) == 1
            await connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
            for number in range(20):
                await connection.execute(
                    text("INSERT INTO note (body) VALUES (:body)"),
                    {"body": ERASED if number == 7 else f"een gewone notitie {number}"},
                )
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM note WHERE body = :body"), {"body": ERASED})
        async with engine.connect() as connection:
            # The deleted row also sits in the write-ahead log until a checkpoint copies the
            # pages back and empties it.
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            assert await connection.scalar(text("SELECT count(*) FROM note")) == 19
    finally:
        await engine.dispose()

    assert ERASED.encode() not in database.read_bytes()
