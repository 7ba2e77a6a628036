"""Durable reminders: the rows are the truth, the scheduler only acts on them.

Life of a row: PENDING -> (claimed by one worker) CLAIMED -> (send started, committed)
-> SENT. A worker that dies leaves CLAIMED rows behind; after the lease they are handed out
again, unless the send had started (`send_started_at`): that one may already be on the user's
phone and becomes UNCERTAIN instead of being sent twice. Rows that are no longer useful
(`stale_at` passed, the person unreachable, the composer says "not needed") end DROPPED or
CANCELLED, with the reason in `last_error`.

Creating a row is idempotent on `idempotency_key` ("reflection:42:2026-11-26"): planners run
as often as they like and two replicas planning at once create one row.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Reminder, ReminderStatus


class ReminderKind(enum.StrEnum):
    """Every kind of scheduled message. The values are what the `reminder.kind` column holds
    (and the prefix of many idempotency keys), so they never change once released; a new
    kind needs a composer registered for it (scheduler.composers)."""

    # Planned from the school's calendar (scheduler.planners).
    REFLECTION_PROMPT = "reflection_prompt"
    WEEK_PLAN_PROMPT = "week_plan_prompt"
    TEACHER_NUDGE = "teacher_nudge"
    GOAL_REVIEW = "goal_review"
    GOAL_REVIEW_TEACHER = "goal_review_teacher"
    EVIDENCE_DIGEST = "evidence_digest"
    PARENT_SUMMARY = "parent_summary"
    # Queued by a person's action, to reach someone else in their own language.
    FEEDBACK_NOTICE = "feedback_notice"
    PLAN_FEEDBACK_REQUEST = "plan_feedback_request"
    GOAL_PROPOSAL = "goal_proposal"
    GOAL_DECISION = "goal_decision"
    # An invite code was seen in a group chat and revoked: the school's admins hear of it.
    INVITE_SEEN_IN_GROUP = "invite_seen_in_group"
    # The talks (storage.talks plans them when a talk is planned, moved, cancelled or held).
    TALK_INVITATION = "talk_invitation"
    TALK_REMINDER = "talk_reminder"
    TALK_PREPARATION = "talk_preparation"
    TALK_BRIEF = "talk_brief"
    TALK_CANCELLED = "talk_cancelled"
    TALK_AGREEMENTS = "talk_agreements"


# A send that has neither finished nor failed after this long belongs to a dead worker.
DEFAULT_LEASE = timedelta(minutes=2)
_ERROR_LENGTH = 300


@dataclass(frozen=True)
class DueReminder:
    """A claimed reminder, detached from the session that claimed it.

    `kind` is the stored text: a row may name a kind this version does not know (written by
    a newer release, or by hand), which the dispatcher fails with a clear reason."""

    id: int
    kind: str
    person_id: int
    due_at: datetime
    stale_at: datetime | None
    payload: dict[str, Any]
    attempts: int
    idempotency_key: str
    # When this worker claimed it: a claim that expired and went to another worker no longer
    # matches, so the first worker cannot start the send as well (`mark_send_started`).
    claimed_at: datetime | None = None


def _due(row: Reminder) -> DueReminder:
    return DueReminder(
        id=row.id,
        kind=row.kind,
        person_id=row.person_id,
        due_at=row.due_at,
        stale_at=row.stale_at,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        idempotency_key=row.idempotency_key,
        claimed_at=row.claimed_at,
    )


async def schedule_reminder(
    session: AsyncSession,
    *,
    kind: ReminderKind,
    person_id: int,
    due_at: datetime,
    idempotency_key: str,
    payload: dict[str, Any] | None = None,
    stale_at: datetime | None = None,
) -> bool:
    """Create the reminder unless its key exists; True when a row was created."""
    values = {
        "kind": kind,
        "person_id": person_id,
        "due_at": due_at,
        "stale_at": stale_at,
        "payload": payload or {},
        "status": ReminderStatus.PENDING,
        "attempts": 0,
        "idempotency_key": idempotency_key,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Reminder).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel_pending(
    session: AsyncSession, *, key_prefix: str, reason: str = "cancelled"
) -> int:
    """Cancel every not-yet-sent reminder whose key starts with `key_prefix` (a moved talk)."""
    result = await session.execute(
        update(Reminder)
        .where(
            Reminder.idempotency_key.startswith(key_prefix, autoescape=True),
            Reminder.status == ReminderStatus.PENDING,
        )
        .values(status=ReminderStatus.CANCELLED, last_error=reason[:_ERROR_LENGTH])
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def recover_abandoned(
    session: AsyncSession, *, now: datetime, lease: timedelta = DEFAULT_LEASE
) -> tuple[int, int]:
    """Hand out again what a dead worker claimed; (released, uncertain)."""
    expired = Reminder.claimed_at < now - lease
    released = await session.execute(
        update(Reminder)
        .where(
            Reminder.status == ReminderStatus.CLAIMED,
            expired,
            Reminder.send_started_at.is_(None),
        )
        .values(status=ReminderStatus.PENDING, claimed_at=None, claimed_by=None)
    )
    uncertain = await session.execute(
        update(Reminder)
        .where(
            Reminder.status == ReminderStatus.CLAIMED,
            expired,
            Reminder.send_started_at.is_not(None),
        )
        .values(
            status=ReminderStatus.UNCERTAIN,
            last_error="the sender stopped while this message was on its way",
        )
    )
    return (
        int(released.rowcount or 0),  # type: ignore[attr-defined]
        int(uncertain.rowcount or 0),  # type: ignore[attr-defined]
    )


async def drop_stale(session: AsyncSession, *, now: datetime) -> list[DueReminder]:
    """Drop what is no longer worth sending (after downtime); returns them for the log."""
    rows = (
        await session.scalars(
            select(Reminder).where(
                Reminder.status == ReminderStatus.PENDING,
                Reminder.stale_at.is_not(None),
                Reminder.stale_at <= now,
            )
        )
    ).all()
    for row in rows:
        row.status = ReminderStatus.DROPPED
        row.last_error = "stale: no longer useful when it could be sent"
    return [_due(row) for row in rows]


async def claim_due(
    session: AsyncSession, *, now: datetime, worker: str, limit: int
) -> list[DueReminder]:
    """Take up to `limit` due reminders for this worker, oldest first.

    On PostgreSQL, SKIP LOCKED lets two workers claim at the same moment without waiting for
    or taking each other's rows. SQLite has one writer at a time, so the select-and-update in
    one transaction is already exclusive there.
    """
    query = (
        select(Reminder)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await session.scalars(query)).all()
    for row in rows:
        row.status = ReminderStatus.CLAIMED
        row.claimed_at = now
        row.claimed_by = worker[:100]
        row.send_started_at = None
    await session.flush()
    return [_due(row) for row in rows]


async def mark_send_started(
    session: AsyncSession, *, reminder: DueReminder, worker: str, now: datetime
) -> bool:
    """Record that the send begins, if this worker's claim still holds; False when it does not.

    A worker that waited longer than the lease (a long flood wait, a stalled process) may find
    its row handed to another worker meanwhile: then it must not send, or the message would
    arrive twice."""
    started = await session.execute(
        update(Reminder)
        .where(
            Reminder.id == reminder.id,
            Reminder.status == ReminderStatus.CLAIMED,
            Reminder.claimed_by == worker[:100],
            Reminder.claimed_at == reminder.claimed_at,
            Reminder.send_started_at.is_(None),
        )
        .values(send_started_at=now, attempts=Reminder.attempts + 1)
    )
    return int(started.rowcount or 0) == 1  # type: ignore[attr-defined]


async def mark_sent(
    session: AsyncSession, *, reminder_id: int, now: datetime, message_id: int | None
) -> None:
    await session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id)
        .values(status=ReminderStatus.SENT, sent_at=now, telegram_message_id=message_id)
    )


async def finish_unsent(
    session: AsyncSession, *, reminder_id: int, status: ReminderStatus, reason: str
) -> None:
    """End a claimed reminder without sending it: dropped, cancelled or failed."""
    await session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id)
        .values(status=status, last_error=reason[:_ERROR_LENGTH])
    )


async def retry_later(
    session: AsyncSession, *, reminder_id: int, due_at: datetime, reason: str
) -> None:
    """Back to the queue at a later moment (quiet hours, or a failure worth another try)."""
    await session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id)
        .values(
            status=ReminderStatus.PENDING,
            due_at=due_at,
            claimed_at=None,
            claimed_by=None,
            send_started_at=None,
            last_error=reason[:_ERROR_LENGTH],
        )
    )


@dataclass(frozen=True)
class SentNotice:
    telegram_message_id: int
    payload: dict[str, Any]
    sent_at: datetime


async def previous_notice(
    session: AsyncSession, *, person_id: int, kind: str, before_id: int
) -> SentNotice | None:
    """The person's latest earlier reminder of this kind that reached them."""
    row = (
        await session.execute(
            select(Reminder.telegram_message_id, Reminder.payload, Reminder.sent_at)
            .where(
                Reminder.person_id == person_id,
                Reminder.kind == kind,
                Reminder.status == ReminderStatus.SENT,
                Reminder.id != before_id,
                Reminder.telegram_message_id.is_not(None),
            )
            .order_by(Reminder.sent_at.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None or row[2] is None:
        return None
    return SentNotice(int(row[0]), dict(row[1] or {}), row[2])


async def next_due_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(Reminder.due_at)).where(Reminder.status == ReminderStatus.PENDING)
    )


@dataclass(frozen=True)
class ReminderRow:
    """A reminder as tests, the admin and the benchmarks see it."""

    id: int
    kind: str
    person_id: int
    due_at: datetime
    status: ReminderStatus
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    sent_at: datetime | None
    last_error: str | None


async def reminders_of(
    session: AsyncSession,
    *,
    person_id: int | None = None,
    kinds: Sequence[str] | None = None,
    statuses: Sequence[ReminderStatus] | None = None,
) -> list[ReminderRow]:
    query = select(Reminder).order_by(Reminder.due_at, Reminder.id)
    if person_id is not None:
        query = query.where(Reminder.person_id == person_id)
    if kinds is not None:
        query = query.where(Reminder.kind.in_(kinds))
    if statuses is not None:
        query = query.where(Reminder.status.in_(statuses))
    return [
        ReminderRow(
            id=row.id,
            kind=row.kind,
            person_id=row.person_id,
            due_at=row.due_at,
            status=row.status,
            idempotency_key=row.idempotency_key,
            payload=dict(row.payload or {}),
            attempts=row.attempts,
            sent_at=row.sent_at,
            last_error=row.last_error,
        )
        for row in (await session.scalars(query)).all()
    ]


async def count_by_status(session: AsyncSession) -> dict[ReminderStatus, int]:
    rows = await session.execute(select(Reminder.status, func.count()).group_by(Reminder.status))
    return {status: count for status, count in rows.all()}


async def forget_finished_before(session: AsyncSession, *, moment: datetime) -> int:
    """Finished reminders are only kept a while, to replace unanswered prompts and for support."""
    result = await session.execute(
        delete(Reminder).where(
            Reminder.status.not_in([ReminderStatus.PENDING, ReminderStatus.CLAIMED]),
            Reminder.due_at < moment,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
