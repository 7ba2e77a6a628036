"""Planners: turn each school's calendar into reminder rows for today.

A planner run is cheap and idempotent (one key per person, kind and school date), so the
scheduler simply runs all planners every few minutes and at start-up. Whatever ran before, ran
twice or ran late, the rows are the same; a prompt whose moment has passed is still created
and sent if it is not stale yet (after downtime), else dropped by the dispatcher.

Rules, per school and in its timezone:

* nothing on days that are not school days (weekends, holidays), except the parents' summary,
  which follows the parent's chosen weekday but skips weeks without any school day;
* prompts end (`stale_at`) when the school's quiet hours begin that day: a reflection prompt at
  21:00 is worse than none;
* one prompt of a kind per person per day; the composer also replaces an older unanswered one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audiences
from storage.models import Role
from storage.parents import parse_hhmm
from storage.reminders import ReminderKind, schedule_reminder
from storage.schooltime import SchoolCalendar, school_calendars

log = logging.getLogger(__name__)

# Before lessons: pupils plan the week at home or in the first lesson, teachers read the nudge
# before the day starts.
WEEK_PLAN_TIME = time(8, 15)
TEACHER_NUDGE_TIME = time(7, 45)
# After the last lesson: the day's work of the pupils, and what waits for approval.
EVIDENCE_DIGEST_TIME = time(15, 30)
# The goal review comes in the period's last week, this many school days before its end.
GOAL_REVIEW_LEAD = 4
PARENT_SUMMARY_VALID = timedelta(days=2)


def _weekday(value: object, fallback: int) -> int:
    return value if isinstance(value, int) and 1 <= value <= 7 else fallback


class Planner:
    """Plans the kinds that have a composer; others are not created at all."""

    def __init__(self, kinds: Collection[ReminderKind]) -> None:
        self.kinds = frozenset(kinds)

    async def plan(self, session: AsyncSession, *, now: datetime) -> int:
        created = 0
        for calendar in await school_calendars(session):
            created += await self.plan_school(session, calendar=calendar, now=now)
        return created

    async def plan_school(
        self, session: AsyncSession, *, calendar: SchoolCalendar, now: datetime
    ) -> int:
        today = calendar.local_date(now)
        created = 0
        if ReminderKind.PARENT_SUMMARY in self.kinds:
            created += await self._parent_summaries(session, calendar, today)
        if not calendar.is_school_day(today):
            return created
        end_of_day = calendar.at(today, calendar.quiet_start)
        if ReminderKind.REFLECTION_PROMPT in self.kinds:
            pupils = await audiences.pupils_without_reflection(
                session, school_id=calendar.school_id, on_date=today
            )
            created += await self._each(
                session,
                pupils,
                kind=ReminderKind.REFLECTION_PROMPT,
                key=f"reflection:{{person}}:{today}",
                due_at=calendar.at(today, calendar.reflection_time),
                stale_at=end_of_day,
                payload={"date": today.isoformat()},
                now=now,
            )
        if (
            ReminderKind.WEEK_PLAN_PROMPT in self.kinds
            and calendar.first_school_day_of_week(today) == today
        ):
            week_start = today - timedelta(days=today.weekday())
            pupils = await audiences.pupils_without_week_plan(
                session, school_id=calendar.school_id, week_start=week_start
            )
            created += await self._each(
                session,
                pupils,
                kind=ReminderKind.WEEK_PLAN_PROMPT,
                key=f"week_plan:{{person}}:{week_start}",
                due_at=calendar.at(today, WEEK_PLAN_TIME),
                stale_at=end_of_day,
                payload={"week_start": week_start.isoformat()},
                now=now,
            )
        if ReminderKind.TEACHER_NUDGE in self.kinds:
            teachers = await audiences.reachable_teachers(session, school_id=calendar.school_id)
            created += await self._each(
                session,
                teachers,
                kind=ReminderKind.TEACHER_NUDGE,
                key=f"unseen:{{person}}:{today}",
                due_at=calendar.at(today, TEACHER_NUDGE_TIME),
                stale_at=end_of_day,
                payload={"date": today.isoformat()},
                now=now,
            )
        if ReminderKind.EVIDENCE_DIGEST in self.kinds:
            # Planned for every reachable teacher; the composer sends nothing on a day
            # without new or waiting work.
            teachers = await audiences.reachable_teachers(session, school_id=calendar.school_id)
            created += await self._each(
                session,
                teachers,
                kind=ReminderKind.EVIDENCE_DIGEST,
                key=f"evidence_digest:{{person}}:{today}",
                due_at=calendar.at(today, EVIDENCE_DIGEST_TIME),
                stale_at=end_of_day,
                payload={"date": today.isoformat()},
                now=now,
            )
        created += await self._goal_reviews(session, calendar, today, now)
        return created

    async def _goal_reviews(
        self, session: AsyncSession, calendar: SchoolCalendar, today: date, now: datetime
    ) -> int:
        wanted = {
            ReminderKind.GOAL_REVIEW: Role.PUPIL,
            ReminderKind.GOAL_REVIEW_TEACHER: Role.TEACHER,
        }
        wanted = {kind: role for kind, role in wanted.items() if kind in self.kinds}
        if not wanted:
            return 0
        created = 0
        # Periods whose review day is today: GOAL_REVIEW_LEAD school days before the end.
        periods = await audiences.periods_ending(
            session, school_id=calendar.school_id, first=today, last=today + timedelta(days=21)
        )
        for period in periods:
            if calendar.school_days_before(period.ends_on, GOAL_REVIEW_LEAD) != today:
                continue
            for kind, role in wanted.items():
                members = await audiences.members_of_period(
                    session, school_id=calendar.school_id, period=period, role=role
                )
                created += await self._each(
                    session,
                    members,
                    kind=kind,
                    key=f"{kind}:{{person}}:{period.id}",
                    due_at=calendar.at(today, calendar.reflection_time),
                    stale_at=calendar.at(period.ends_on, calendar.quiet_start),
                    payload={"period_id": period.id, "ends_on": period.ends_on.isoformat()},
                    now=now,
                )
        return created

    async def _parent_summaries(
        self, session: AsyncSession, calendar: SchoolCalendar, today: date
    ) -> int:
        week_start = today - timedelta(days=today.weekday())
        if not calendar.school_days_between(week_start, week_start + timedelta(days=6)):
            return 0
        created = 0
        for link in await audiences.parents_with_children(session, school_id=calendar.school_id):
            prefs = link.preferences
            if prefs.get("weekly_summary") is False:
                continue
            weekday = _weekday(prefs.get("summary_weekday"), calendar.parent_summary_weekday)
            if today.isoweekday() != weekday:
                continue
            at = parse_hhmm(prefs.get("summary_time")) or calendar.parent_summary_time
            due_at = calendar.at(today, at)
            created += await schedule_reminder(
                session,
                kind=ReminderKind.PARENT_SUMMARY,
                person_id=link.parent_id,
                due_at=due_at,
                stale_at=due_at + PARENT_SUMMARY_VALID,
                idempotency_key=f"parent_summary:{link.parent_id}:{link.pupil_id}:{week_start}",
                payload={"pupil_id": link.pupil_id, "week_start": week_start.isoformat()},
            )
        return created

    @staticmethod
    async def _each(
        session: AsyncSession,
        persons: list[int],
        *,
        kind: ReminderKind,
        key: str,
        due_at: datetime,
        stale_at: datetime,
        payload: dict[str, object],
        now: datetime,
    ) -> int:
        if due_at >= stale_at or stale_at <= now:
            # Too late to be of use (the bot was down all afternoon): not worth a row.
            return 0
        created = 0
        for person in persons:
            created += await schedule_reminder(
                session,
                kind=kind,
                person_id=person,
                due_at=due_at,
                stale_at=stale_at,
                idempotency_key=key.format(person=person),
                payload=payload,
            )
        return created
