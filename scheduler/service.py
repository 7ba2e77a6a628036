"""APScheduler wiring: planners, the dispatcher and housekeeping as jobs of one process.

Jobs live in memory (APScheduler's own job stores are sync-only and not shareable between
processes); what must survive a restart is in the reminder table. Every replica runs the same
jobs: planning is idempotent and claiming is exclusive, so two replicas share the work
instead of doubling it.

APScheduler reads the real time for *when* a job runs; the jobs themselves ask the app's clock
*what time it is*, so the demo can move the clock and `tick()` at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from media.store import sweep_orphans
from scheduler.composers import ComposerRegistry
from scheduler.dispatcher import DispatchReport, ReminderDispatcher
from scheduler.planners import Planner
from scheduler.sender import RateLimitedSender
from services.clock import Clock
from services.retention import DEFAULT_RETENTION_MONTHS, apply_retention
from storage.invites import forget_attempts_before
from storage.reminders import DEFAULT_LEASE, forget_finished_before
from storage.updates import forget_processed_before

log = logging.getLogger(__name__)

PLAN_EVERY = timedelta(minutes=5)
DISPATCH_EVERY = timedelta(seconds=2)
# Telegram re-delivers an update for at most a day; a margin on top.
KEEP_PROCESSED_UPDATES = timedelta(days=2)
KEEP_INVITE_ATTEMPTS = timedelta(days=1)
KEEP_FINISHED_REMINDERS = timedelta(days=60)
# A file is written before its row commits; one without a row this long after is an orphan of
# a crash or a rolled-back step (a day leaves any step in progress well alone).
KEEP_ORPHAN_FILES = timedelta(days=1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ReminderService:
    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        bot: Bot,
        i18n: I18n,
        clock: Clock,
        composers: ComposerRegistry,
        per_second: float = 30.0,
        per_chat_per_second: float = 1.0,
        db_lock: asyncio.Lock | None = None,
        lease: timedelta = DEFAULT_LEASE,
        worker_id: str | None = None,
        media_dir: Path | None = None,
        retention_months: int = DEFAULT_RETENTION_MONTHS,
        timezone: str = "Europe/Amsterdam",
    ) -> None:
        self._sessions = session_factory
        # Erasing pupils who left long ago needs the media folder (their files go too).
        self._media_dir = media_dir
        self._retention_months = retention_months
        self._timezone = ZoneInfo(timezone)
        self._clock = clock
        self._db_lock = db_lock
        self.sender = RateLimitedSender(
            bot, per_second=per_second, per_chat_per_second=per_chat_per_second
        )
        # What each kind of message says; the planners create only kinds that have a composer.
        self.composers = composers
        self.planner = Planner(composers.kinds)
        self.dispatcher = ReminderDispatcher(
            session_factory=session_factory,
            sender=self.sender,
            composers=composers,
            i18n=i18n,
            clock=clock,
            worker_id=worker_id or worker_name(),
            lease=lease,
            db_lock=db_lock,
        )
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def plan(self) -> int:
        async with self._db_lock or nullcontext(), self._sessions() as session:
            created = await self.planner.plan(session, now=self._clock.now())
            await session.commit()
        if created:
            log.info("planned %d reminders", created)
        return created

    async def dispatch(self) -> DispatchReport:
        return await self.dispatcher.run_once()

    async def tick(self) -> DispatchReport:
        """Plan and send what is due now (after a clock move in the demo, or at start)."""
        await self.plan()
        return await self.dispatch()

    async def housekeeping(self) -> None:
        now = self._clock.now()
        async with self._db_lock or nullcontext(), self._sessions() as session:
            updates = await forget_processed_before(session, moment=now - KEEP_PROCESSED_UPDATES)
            attempts = await forget_attempts_before(session, moment=now - KEEP_INVITE_ATTEMPTS)
            finished = await forget_finished_before(session, moment=now - KEEP_FINISHED_REMINDERS)
            erased = []
            if self._media_dir is not None:
                erased = await apply_retention(
                    session,
                    today=now.astimezone(self._timezone).date(),
                    media_dir=self._media_dir,
                    default_months=self._retention_months,
                )
            await session.commit()
        orphans = []
        if self._media_dir is not None:
            # Only reads rows; the file work runs in worker threads.
            async with self._sessions() as session:
                orphans = await sweep_orphans(
                    session, media_dir=self._media_dir, older_than=KEEP_ORPHAN_FILES, now=now
                )
        log.info(
            "housekeeping: forgot %d update ids, %d invite attempts, %d old reminders; "
            "erased %d pupils past the retention period; removed %d orphaned files",
            updates,
            attempts,
            finished,
            len(erased),
            len(orphans),
        )

    def start(self) -> None:
        """Start the jobs on the running event loop; the first plan and dispatch run at once."""
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            # APScheduler's default grace of 1 s would skip a run after a busy second; a late
            # run is harmless here, and overlapping runs of one job are never wanted.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        scheduler.add_job(
            self._tracked(self.plan),
            IntervalTrigger(seconds=PLAN_EVERY.total_seconds()),
            id="plan",
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self._tracked(self.dispatch),
            IntervalTrigger(seconds=DISPATCH_EVERY.total_seconds()),
            id="dispatch",
            next_run_time=datetime.now(UTC) + timedelta(seconds=5),
        )
        scheduler.add_job(
            self._tracked(self.housekeeping),
            CronTrigger(hour=3, minute=17, timezone=UTC),
            id="housekeeping",
        )
        scheduler.start()
        self._scheduler = scheduler

    def _tracked(self, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """The job as APScheduler runs it, known to `shutdown` while it runs."""

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                # One failed run (the database restarting, say) must not stop the next ones.
                log.exception("scheduled job %s failed", getattr(job, "__name__", job))
            finally:
                self._running.discard(task)

        run.__name__ = getattr(job, "__name__", "job")
        return run

    async def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        # A job cut off here is cut off like a crash would cut it, and the reminder rows make
        # that safe; cancelling (rather than waiting for a long batch) keeps shutdown quick.
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
