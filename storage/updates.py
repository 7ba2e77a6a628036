"""The start and the end of every update: de-duplication on update_id, who is talking, their
dialogue; and the one commit of all the update wrote, its dialogue's new state included."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    Table,
    bindparam,
    delete,
    exists,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.accounts import VIEWER_COLUMNS, VIEWER_ROWS, Viewer, viewer_from_rows
from storage.fsm import READ, remember_read, write_changed_dialogues
from storage.models import FsmRecord, ProcessedUpdate
from storage.types import utcnow

# The largest update id the database can keep (processed_update.update_id is a signed 64-bit
# integer). Telegram's are far smaller; one beyond it is no update Telegram sent.
LARGEST_UPDATE_ID = 2**63 - 1


@dataclass(frozen=True)
class Opening:
    """What every update starts from, once its id is claimed."""

    viewer: Viewer | None  # None: no user (a channel post) or a bot


async def open_update(
    session: AsyncSession,
    *,
    bot_id: int,
    update_id: int,
    telegram_user_id: int | None,
    dialogue_key: str | None,
    reachable: bool | None = None,
) -> Opening | None:
    """Claim the update in its own transaction and read who is talking and their dialogue
    (see storage.fsm); None if the update was handled before. `reachable`: what the update
    says about writing to its user (storage.accounts.viewer_from_rows).

    Because the claim commits together with what the handler wrote, a crash mid-update
    leaves no row and a re-delivery is handled again; a finished update is never handled
    twice. One INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a second replica inserting the
    same key waits for the first to commit and then inserts nothing, which means "handled".

    The reads run in one trip through SQLAlchemy's async layer (one greenlet, Core on the
    session's connection), and on PostgreSQL in one statement: every update pays for this,
    and each statement's round trip and the async and ORM layers cost more than the database's
    work to run these.
    """
    claimed, viewer_rows, dialogue_row = await session.run_sync(
        _open, bot_id, update_id, telegram_user_id, dialogue_key
    )
    if not claimed:
        return None
    if dialogue_key is not None:
        remember_read(session, dialogue_key, dialogue_row)
    if telegram_user_id is None:
        return Opening(viewer=None)
    viewer = await viewer_from_rows(
        session, telegram_user_id=telegram_user_id, rows=viewer_rows, reachable=reachable
    )
    return Opening(viewer=viewer)


def _open(
    session: Session,
    bot_id: int,
    update_id: int,
    telegram_user_id: int | None,
    dialogue_key: str | None,
) -> tuple[bool, list[Row[*tuple[Any, ...]]], Row[*tuple[Any, ...]] | None]:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _open_in_one_statement(connection, bot_id, update_id, telegram_user_id, dialogue_key)
    return _open_statement_by_statement(
        connection, bot_id, update_id, telegram_user_id, dialogue_key
    )


def _open_in_one_statement(
    connection: Connection,
    bot_id: int,
    update_id: int,
    telegram_user_id: int | None,
    dialogue_key: str | None,
) -> tuple[bool, list[Row[*tuple[Any, ...]]], Row[*tuple[Any, ...]] | None]:
    """PostgreSQL: the claim, the dialogue and the viewer's rows in one round trip (see
    _OPEN_POSTGRES). A duplicate's reads are read and dropped."""
    rows = connection.execute(
        _OPEN_POSTGRES,
        {
            "bot_id": bot_id,
            "update_id": update_id,
            "processed_at": utcnow(),
            "telegram_user_id": telegram_user_id,
            "key": dialogue_key,
        },
    ).all()
    first = rows[0]
    if not first.claimed:
        return False, [], None
    viewer_rows = [row for row in rows if row.account_id is not None]
    dialogue_row = first if first.dialogue_key is not None else None
    return True, [_viewer_part(row) for row in viewer_rows], dialogue_row


def _viewer_part(row: Row[*tuple[Any, ...]]) -> Any:
    return row[_VIEWER_FROM : _VIEWER_FROM + VIEWER_COLUMNS]


def _open_statement_by_statement(
    connection: Connection,
    bot_id: int,
    update_id: int,
    telegram_user_id: int | None,
    dialogue_key: str | None,
) -> tuple[bool, list[Row[*tuple[Any, ...]]], Row[*tuple[Any, ...]] | None]:
    """SQLite (whose WITH cannot hold an INSERT): three statements, each skipped if not
    needed."""
    result = connection.execute(
        _CLAIM[False], {"bot_id": bot_id, "update_id": update_id, "processed_at": utcnow()}
    )
    if not result.rowcount:
        return False, [], None
    viewer_rows: list[Row[*tuple[Any, ...]]] = []
    if telegram_user_id is not None:
        viewer_rows = list(
            connection.execute(VIEWER_ROWS, {"telegram_user_id": telegram_user_id}).all()
        )
    dialogue_row = None
    if dialogue_key is not None:
        dialogue_row = connection.execute(READ, {"key": dialogue_key}).first()
    return True, viewer_rows, dialogue_row


def _claim(insert: Callable[[Table], Any]) -> Any:
    return insert(_PROCESSED_UPDATE).on_conflict_do_nothing(index_elements=["bot_id", "update_id"])


# Built once: every update runs this statement, and building it (and its cache key) anew each
# time cost more than SQLite's work to run it. On the table, not the ORM class: a plain INSERT
# needs none of the ORM's bulk-insert machinery. By "is it PostgreSQL"; else SQLite.
_PROCESSED_UPDATE: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
_CLAIM = {True: _claim(pg_insert), False: _claim(sqlite_insert)}


def _open_postgres() -> Any:
    """One row per person of the viewer's account (one row with NULLs for none), each with
    whether the claim inserted and the dialogue's row (NULLs for none): the INSERT runs in a
    WITH, which PostgreSQL carries out exactly once whatever reads it."""
    claim = (
        _claim(pg_insert)
        .values(
            bot_id=bindparam("bot_id", type_=BigInteger),
            update_id=bindparam("update_id", type_=BigInteger),
            processed_at=bindparam("processed_at", type_=_PROCESSED_UPDATE.c.processed_at.type),
        )
        .returning(_PROCESSED_UPDATE.c.update_id)
        .cte("claim")
    )
    head = select(exists(select(claim.c.update_id)).label("claimed")).subquery("head")
    dialogue = _DIALOGUES.alias("dialogue")
    its_key = dialogue.c.key == bindparam("key", type_=dialogue.c.key.type)
    viewer = VIEWER_ROWS.subquery("viewer")
    return (
        select(
            head.c.claimed,
            dialogue.c.key.label("dialogue_key"),
            dialogue.c.state,
            dialogue.c.data,
            *viewer.c,
        )
        .select_from(head.outerjoin(dialogue, its_key).outerjoin(viewer, true()))
        .order_by(viewer.c.role, viewer.c.display_name)
    )


_DIALOGUES: Table = FsmRecord.__table__  # type: ignore[assignment]
_OPEN_POSTGRES = _open_postgres()
_VIEWER_FROM = 4  # claimed, dialogue_key, state, data; then VIEWER_ROWS' columns


async def commit_update(session: AsyncSession) -> None:
    """The end of an update that was handled: the dialogue state it changed (storage.fsm) is
    written in its transaction, then everything commits at once, so after a crash the dialogue
    resumes exactly where the data says it is."""
    await write_changed_dialogues(session)
    await session.commit()


async def forget_processed_before(session: AsyncSession, *, moment: datetime) -> int:
    """Telegram re-delivers for at most a day; older ids need not be kept."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < moment)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
