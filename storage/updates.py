"""De-duplication of Telegram updates on update_id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate
from storage.types import utcnow


async def claim_update(session: AsyncSession, *, bot_id: int, update_id: int) -> bool:
    """Record the update in the update's own transaction; False if it was handled before.

    Because the row commits together with what the handler wrote, a crash mid-update leaves
    no row and a re-delivery is handled again; a finished update is never handled twice.
    One INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a second replica inserting the same
    key waits for the first to commit and then inserts nothing, which means "handled".
    """
    result = await session.execute(
        _CLAIM[session.get_bind().dialect.name == "postgresql"],
        {"bot_id": bot_id, "update_id": update_id, "processed_at": utcnow()},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _claim(insert: Callable[[Table], Any]) -> Any:
    return insert(_PROCESSED_UPDATE).on_conflict_do_nothing(index_elements=["bot_id", "update_id"])


# Built once: every update runs this statement, and building it (and its cache key) anew each
# time cost more than SQLite's work to run it. On the table, not the ORM class: a plain INSERT
# needs none of the ORM's bulk-insert machinery. By "is it PostgreSQL"; else SQLite.
_PROCESSED_UPDATE: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
_CLAIM = {True: _claim(pg_insert), False: _claim(sqlite_insert)}


async def forget_processed_before(session: AsyncSession, *, moment: datetime) -> int:
    """Telegram re-delivers for at most a day; older ids need not be kept."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < moment)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
