"""Sends due reminders: claim, compose in the person's language, send, record.

Delivery as the user sees it is exactly once:

* a row is claimed by one worker (SKIP LOCKED on PostgreSQL), so two replicas never take the
  same row;
* `send_started_at` is committed only when the rate limiter lets the message go, right before
  the request; a worker killed before that leaves a row that is simply handed out again after
  the lease (`recover_abandoned`);
* a worker killed in the few milliseconds between that commit and recording "sent" leaves a
  row that may or may not have reached the phone: it becomes UNCERTAIN and is not sent again,
  because a duplicate prompt is what a pupil notices (and reports), while the next day's
  prompt makes up for a missing one. Those rows are counted and logged for the operator.

Composers (conversations/, through scheduler.composers) decide what a reminder says at the
moment it is sent, so a reminder whose reason is gone (the pupil already reflected, the talk
was moved) is cancelled instead of sent. A row of a kind without a composer fails at once,
with the reason in the row and the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from aiogram.methods import DeleteMessage, TelegramMethod
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from language.i18n import addresses_formally, formal_address
from scheduler import metrics
from scheduler.composers import ComposerRegistry
from scheduler.sender import DeliveryFailed, RateLimitedSender, Unreachable
from services.clock import Clock
from storage import reminders
from storage.accounts import DeliveryTarget, delivery_target, mark_unreachable
from storage.models import ReminderStatus, Role
from storage.parents import parse_hhmm
from storage.reminders import DEFAULT_LEASE, DueReminder, ReminderKind
from storage.schooltime import SchoolCalendar, calendar_of, in_quiet_hours, quiet_hours_end

log = logging.getLogger(__name__)

# After this many failed sends (Telegram down for a long while) a reminder is given up.
MAX_ATTEMPTS = 4
RETRY_DELAY = timedelta(minutes=2)


@dataclass
class DispatchReport:
    sent: int = 0
    cancelled: int = 0
    dropped: int = 0
    deferred: int = 0
    failed: int = 0
    unreachable: int = 0
    released: int = 0
    uncertain: int = 0
    # Claims that expired while waiting to be sent; the row's new owner sends it.
    lost_claims: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, other: DispatchReport) -> None:
        names = ("sent", "cancelled", "dropped", "deferred", "failed", "unreachable", "lost_claims")
        for name in names:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.released += other.released
        self.uncertain += other.uncertain
        for kind, count in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + count


class ClaimLostError(Exception):
    """This worker's claim on a reminder expired and another worker took it over."""


def quiet_hours_for(target: DeliveryTarget, calendar: SchoolCalendar) -> tuple[time, time]:
    """A parent's own quiet hours, else the school's."""
    if target.role is Role.PARENT:
        return (
            parse_hhmm(target.preferences.get("quiet_start")) or calendar.quiet_start,
            parse_hhmm(target.preferences.get("quiet_end")) or calendar.quiet_end,
        )
    return calendar.quiet_start, calendar.quiet_end


def _message_id(result: Any) -> int | None:
    if isinstance(result, Message):
        return result.message_id
    if isinstance(result, list) and result and isinstance(result[-1], Message):
        return result[-1].message_id
    return None


class ReminderDispatcher:
    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        sender: RateLimitedSender,
        composers: ComposerRegistry,
        i18n: I18n,
        clock: Clock,
        worker_id: str,
        # Each reminder of a batch holds a database connection while it is sent; more than the
        # pool has makes them queue for connections (measured: 73% of Telegram's rate on
        # PostgreSQL with 60, 99% with 10). The sender's pacing, not the batch, sets the speed.
        batch_size: int = 10,
        lease: timedelta = DEFAULT_LEASE,
        db_lock: asyncio.Lock | None = None,
    ) -> None:
        self._sessions = session_factory
        self._sender = sender
        self._composers = composers
        self._i18n = i18n
        self._clock = clock
        self._worker = worker_id
        self._batch_size = batch_size
        self._lease = lease
        # SQLite: one writer at a time in this process, shared with the update handling.
        self._db_lock = db_lock
        self._calendars: dict[int, SchoolCalendar] = {}

    def _guard(self) -> AbstractAsyncContextManager[Any]:
        return self._db_lock or nullcontext()

    async def run_once(self) -> DispatchReport:
        """Send everything due now, batch after batch, until nothing is due."""
        report = DispatchReport()
        now = self._clock.now()
        async with self._guard(), self._sessions() as session:
            report.released, report.uncertain = await reminders.recover_abandoned(
                session, now=now, lease=self._lease
            )
            stale = await reminders.drop_stale(session, now=now)
            await session.commit()
        if report.uncertain:
            log.warning("%d reminders may or may not have arrived before a crash", report.uncertain)
        metrics.REMINDERS_RECOVERED.labels(outcome="released").inc(report.released)
        metrics.REMINDERS_RECOVERED.labels(outcome="uncertain").inc(report.uncertain)
        for item in stale:
            log.info("dropped stale reminder %s (%s, due %s)", item.id, item.kind, item.due_at)
            metrics.count_outcomes(item.kind, {"dropped": 1})
        report.dropped += len(stale)
        self._calendars.clear()
        while True:
            async with self._guard(), self._sessions() as session:
                batch = await reminders.claim_due(
                    session, now=self._clock.now(), worker=self._worker, limit=self._batch_size
                )
                await session.commit()
            if not batch:
                return report
            results = await asyncio.gather(*(self._deliver(item) for item in batch))
            for item, result in zip(batch, results, strict=True):
                report.add(result)
                metrics.count_outcomes(item.kind, vars(result))

    async def _calendar(self, session: AsyncSession, school_id: int) -> SchoolCalendar | None:
        if school_id not in self._calendars:
            calendar = await calendar_of(session, school_id=school_id)
            if calendar is None:
                return None
            self._calendars[school_id] = calendar
        return self._calendars[school_id]

    async def _finish(self, item: DueReminder, status: ReminderStatus, reason: str) -> None:
        async with self._guard(), self._sessions() as session:
            await reminders.finish_unsent(
                session, reminder_id=item.id, status=status, reason=reason
            )
            await session.commit()

    async def _deliver(self, item: DueReminder) -> DispatchReport:
        report = DispatchReport()
        composer = self._composers.composer_for(item.kind)
        if composer is None:
            # Retrying cannot help: the row was written by a newer release, or a feature's
            # composers were not registered (tests/scheduler/test_composers.py guards that).
            known = item.kind in frozenset(ReminderKind)
            reason = f"no composer for kind {item.kind}" if known else f"unknown kind {item.kind}"
            log.error("%s (reminder %s)", reason, item.id)
            await self._finish(item, ReminderStatus.FAILED, reason)
            report.failed += 1
            return report
        now = self._clock.now()
        async with self._guard(), self._sessions() as session:
            target = await delivery_target(session, person_id=item.person_id)
            calendar = await self._calendar(session, target.school_id) if target else None
            if target is None or calendar is None:
                await reminders.finish_unsent(
                    session,
                    reminder_id=item.id,
                    status=ReminderStatus.DROPPED,
                    reason="no Telegram account linked, or the bot is blocked",
                )
                await session.commit()
                report.dropped += 1
                return report
            start, end = quiet_hours_for(target, calendar)
            if in_quiet_hours(now, start=start, end=end, timezone=calendar.timezone):
                later = quiet_hours_end(now, start=start, end=end, timezone=calendar.timezone)
                if item.stale_at is not None and later >= item.stale_at:
                    status, reason = ReminderStatus.DROPPED, "stale before the quiet hours end"
                    await reminders.finish_unsent(
                        session, reminder_id=item.id, status=status, reason=reason
                    )
                    report.dropped += 1
                else:
                    await reminders.retry_later(
                        session, reminder_id=item.id, due_at=later, reason="quiet hours"
                    )
                    report.deferred += 1
                await session.commit()
                return report
            locale = target.locale if target.locale in self._i18n.available_locales else None
            formal = addresses_formally(
                target.role, parent_address_formal=target.parent_address_formal
            )
            with (
                self._i18n.context(),
                self._i18n.use_locale(locale or self._i18n.default_locale),
                formal_address(formal),
            ):
                methods = await composer(
                    session, item, target.recipient, self._composers.context(now)
                )
            # The composer only reads; nothing of it is kept.
            await session.rollback()
        if not methods:
            await self._finish(item, ReminderStatus.CANCELLED, "no longer needed")
            report.cancelled += 1
            return report
        return await self._send(item, methods, report)

    async def _mark_started(self, item: DueReminder) -> None:
        async with self._guard(), self._sessions() as session:
            started = await reminders.mark_send_started(
                session, reminder=item, worker=self._worker, now=self._clock.now()
            )
            await session.commit()
        if not started:
            raise ClaimLostError(item.id)

    async def _send(
        self, item: DueReminder, methods: Sequence[TelegramMethod[Any]], report: DispatchReport
    ) -> DispatchReport:
        message_id: int | None = None
        started = False

        async def on_start() -> None:
            nonlocal started
            if not started:
                started = True
                await self._mark_started(item)

        try:
            for method in methods:
                if isinstance(method, DeleteMessage):
                    # Tidying up an older prompt is a courtesy; it never fails a reminder.
                    with suppress(DeliveryFailed, Unreachable):
                        await self._sender.send(method)
                    continue
                result = await self._sender.send(method, on_start=on_start)
                message_id = _message_id(result) or message_id
        except ClaimLostError:
            # Another worker holds the row now and sends it; this one leaves it alone.
            log.warning(
                "reminder %s (%s): claim expired before sending; left to its new owner",
                item.id,
                item.kind,
            )
            report.lost_claims += 1
            return report
        except Unreachable:
            async with self._guard(), self._sessions() as session:
                await mark_unreachable(session, person_id=item.person_id, now=self._clock.now())
                await reminders.finish_unsent(
                    session,
                    reminder_id=item.id,
                    status=ReminderStatus.FAILED,
                    reason="the person has blocked the bot",
                )
                await session.commit()
            report.unreachable += 1
            return report
        except DeliveryFailed as error:
            async with self._guard(), self._sessions() as session:
                if item.attempts + 1 < MAX_ATTEMPTS:
                    await reminders.retry_later(
                        session,
                        reminder_id=item.id,
                        due_at=self._clock.now() + RETRY_DELAY * (item.attempts + 1),
                        reason=str(error),
                    )
                    report.deferred += 1
                else:
                    await reminders.finish_unsent(
                        session,
                        reminder_id=item.id,
                        status=ReminderStatus.FAILED,
                        reason=str(error),
                    )
                    report.failed += 1
                await session.commit()
            log.warning("reminder %s (%s) not delivered: %s", item.id, item.kind, error)
            return report
        async with self._guard(), self._sessions() as session:
            await reminders.mark_sent(
                session, reminder_id=item.id, now=self._clock.now(), message_id=message_id
            )
            await session.commit()
        lag = (self._clock.now() - item.due_at).total_seconds()
        metrics.REMINDER_LAG.labels(kind=item.kind).observe(max(0.0, lag))
        report.sent += 1
        report.kinds[item.kind] = report.kinds.get(item.kind, 0) + 1
        return report
