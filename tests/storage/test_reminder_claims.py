"""A reminder is sent by the worker that holds its claim, and by no other (never twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, Role, School
from storage.reminders import (
    DEFAULT_LEASE,
    ReminderKind,
    claim_due,
    mark_send_started,
    recover_abandoned,
    schedule_reminder,
)

NOW = datetime(2026, 12, 8, 13, 30, tzinfo=UTC)


async def _one_due_reminder(session: AsyncSession) -> None:
    school = School(name="De Regenboog")
    session.add(school)
    await session.flush()
    pupil = Person(school_id=school.id, external_id="P1", display_name="Sam", role=Role.PUPIL)
    session.add(pupil)
    await session.flush()
    await schedule_reminder(
        session,
        kind=ReminderKind.REFLECTION_PROMPT,
        person_id=pupil.id,
        due_at=NOW,
        idempotency_key="reflection:test",
    )
    await session.commit()


async def test_a_worker_whose_claim_expired_may_not_start_the_send(session: AsyncSession):
    await _one_due_reminder(session)
    (slow,) = await claim_due(session, now=NOW, worker="worker-a", limit=10)
    await session.commit()

    # worker-a waits longer than the lease (a long flood wait); worker-b takes the row over.
    later = NOW + DEFAULT_LEASE + timedelta(seconds=1)
    assert await recover_abandoned(session, now=later) == (1, 0)
    (taken_over,) = await claim_due(session, now=later, worker="worker-b", limit=10)
    await session.commit()
    assert taken_over.id == slow.id

    assert not await mark_send_started(session, reminder=slow, worker="worker-a", now=later)
    assert await mark_send_started(session, reminder=taken_over, worker="worker-b", now=later)
    await session.commit()


async def test_the_claim_holder_starts_the_send_once(session: AsyncSession):
    await _one_due_reminder(session)
    (claimed,) = await claim_due(session, now=NOW, worker="worker-a", limit=10)
    await session.commit()

    assert await mark_send_started(session, reminder=claimed, worker="worker-a", now=NOW)
    assert not await mark_send_started(session, reminder=claimed, worker="worker-a", now=NOW)
