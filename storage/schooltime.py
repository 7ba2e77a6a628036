"""A school's calendar: its timezone, school days, holidays and quiet hours.

Everything the scheduler plans is expressed in the school's wall-clock time ("14:30 on school
days") and turned into aware UTC only at the last moment, per date. That is what keeps a
reminder at 14:30 across the daylight-saving changes: the UTC moment moves, the school time
does not, and an idempotency key per school date means a repeated planner run never doubles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Holiday, School


@dataclass(frozen=True)
class SchoolCalendar:
    school_id: int
    timezone: ZoneInfo
    school_days: frozenset[int]
    holidays: tuple[tuple[date, date], ...]
    reflection_time: time
    quiet_start: time
    quiet_end: time
    parent_summary_weekday: int
    parent_summary_time: time
    unobserved_days: int
    locale: str

    def is_holiday(self, day: date) -> bool:
        return any(start <= day <= end for start, end in self.holidays)

    def is_school_day(self, day: date) -> bool:
        return day.isoweekday() in self.school_days and not self.is_holiday(day)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.timezone).date()

    def at(self, day: date, wall_time: time) -> datetime:
        """`wall_time` on `day` at school, as aware UTC.

        A wall time that does not exist (the hour skipped in March) falls an hour later, and
        one that happens twice (October) takes the first: zoneinfo's fold=0 rules.
        """
        local = datetime.combine(day, wall_time, tzinfo=self.timezone)
        # Round-tripping through UTC normalises a non-existent wall time.
        return local.astimezone(UTC)

    def school_days_between(self, first: date, last: date) -> list[date]:
        days = []
        day = first
        while day <= last:
            if self.is_school_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def first_school_day_of_week(self, day: date) -> date | None:
        monday = day - timedelta(days=day.weekday())
        days = self.school_days_between(monday, monday + timedelta(days=6))
        return days[0] if days else None

    def school_days_before(self, last: date, count: int) -> date:
        """The school day `count` school days before `last` (or the earliest one found)."""
        day = last
        found = 0
        for _ in range(count * 3 + 14):
            day -= timedelta(days=1)
            if self.is_school_day(day):
                found += 1
                if found == count:
                    break
        return day


def in_quiet_hours(moment: datetime, *, start: time, end: time, timezone: ZoneInfo) -> bool:
    """Whether `moment` falls in the quiet hours [start, end) at school, across midnight too."""
    local = moment.astimezone(timezone).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(moment: datetime, *, start: time, end: time, timezone: ZoneInfo) -> datetime:
    """The first moment after the quiet hours that contain `moment` (aware UTC)."""
    local = moment.astimezone(timezone)
    day = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)
    return datetime.combine(day, end, tzinfo=timezone).astimezone(UTC)


def _calendar(school: School, holidays: list[Holiday]) -> SchoolCalendar:
    return SchoolCalendar(
        school_id=school.id,
        timezone=ZoneInfo(school.timezone),
        school_days=frozenset(school.school_days or (1, 2, 3, 4, 5)),
        holidays=tuple(sorted((h.starts_on, h.ends_on) for h in holidays)),
        reflection_time=school.reflection_time,
        quiet_start=school.quiet_hours_start,
        quiet_end=school.quiet_hours_end,
        parent_summary_weekday=school.parent_summary_weekday,
        parent_summary_time=school.parent_summary_time,
        unobserved_days=school.unobserved_days,
        locale=school.locale,
    )


async def school_calendars(session: AsyncSession) -> list[SchoolCalendar]:
    schools = (await session.scalars(select(School).order_by(School.id))).all()
    holidays = (await session.scalars(select(Holiday))).all()
    return [_calendar(s, [h for h in holidays if h.school_id == s.id]) for s in schools]


async def calendar_of(session: AsyncSession, *, school_id: int) -> SchoolCalendar | None:
    school = await session.get(School, school_id)
    if school is None:
        return None
    holidays = (await session.scalars(select(Holiday).where(Holiday.school_id == school_id))).all()
    return _calendar(school, list(holidays))
