"""De-duplication of Telegram updates on update_id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate


async def claim_update(session: AsyncSession, *, bot_id: int, update_id: int) -> bool:
    """Record the update in the update's own transaction; False if it was handled before.

    Because the row commits together with what the handler wrote, a crash mid-update leaves
    no row and a re-delivery is handled again; a finished update is never handled twice.
    On PostgreSQL a second replica inserting the same key waits for the first to commit and
    then fails on the primary key, which the caller treats as "already handled".
    """
    seen = await session.scalar(
        select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.bot_id == bot_id, ProcessedUpdate.update_id == update_id
        )
    )
    if seen is not None:
        return False
    session.add(ProcessedUpdate(bot_id=bot_id, update_id=update_id))
    await session.flush()
    return True


async def forget_processed_before(session: AsyncSession, *, moment: datetime) -> int:
    """Telegram re-delivers for at most a day; older ids need not be kept."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < moment)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
