"""The one clock of the app: real time, or real time moved by an offset in the demo.

Everything that asks "what time is it?" for school purposes (handlers, dialogues, the reminders
and scheduled prompts) is given this clock, never the system's: the app holds one (`App.clock`),
the handlers receive it as `clock` from the dispatcher's workflow data, and nothing falls back to
`datetime.now`. So the demo can jump to "next school day 15:30" and show what happens then
without waiting a day, and a test can run the bot at any moment it likes (`real_now=`).
The clock keeps running after a move: only the offset to real time changes.

Moves are small phrases, in English or Dutch, because they are typed in the demo page:

* ``next school day 15:30`` / ``volgende schooldag 15:30`` (the time is optional)
* ``next Monday 08:30`` / ``volgende maandag 8:30`` (any weekday)
* ``tomorrow 14:30`` / ``morgen``, ``today 16:00`` / ``vandaag 16:00``
* ``+1 day``, ``+3 days``, ``+2 hours``, ``+30 min``, ``+1 week`` (also ``dag``, ``uur``, ``week``)
* ``now`` / ``nu`` / ``reset``: back to real time
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.settings import Settings

DEFAULT_TIME = time(8, 30)

WEEKDAYS = {
    "monday": 1,
    "maandag": 1,
    "tuesday": 2,
    "dinsdag": 2,
    "wednesday": 3,
    "woensdag": 3,
    "thursday": 4,
    "donderdag": 4,
    "friday": 5,
    "vrijdag": 5,
    "saturday": 6,
    "zaterdag": 6,
    "sunday": 7,
    "zondag": 7,
}
_UNITS = {
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "minuut": "minutes",
    "minuten": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "uur": "hours",
    "uren": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "dag": "days",
    "dagen": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "weken": "weeks",
}
_RESET = {"now", "nu", "reset", "real time", "echte tijd"}
_NEXT = r"(?:next|volgende|komende)"
_SCHOOL_DAY = r"(?:school\s*day|schooldag)"
_TIME = r"(?:\s+(?:at\s+|om\s+)?(?P<time>\d{1,2}[:.]\d{2}))?"
_RELATIVE = re.compile(r"^\+\s*(?P<amount>\d{1,3})\s*(?P<unit>[a-z]+)$")
_NEXT_SCHOOL_DAY = re.compile(rf"^{_NEXT}\s+{_SCHOOL_DAY}{_TIME}$")
_NEXT_WEEKDAY = re.compile(rf"^{_NEXT}\s+(?P<weekday>[a-z]+){_TIME}$")
_NAMED_DAY = re.compile(rf"^(?P<day>tomorrow|morgen|today|vandaag){_TIME}$")

# The most a demo may jump in one go; beyond a school year nothing is left to show.
MAX_OFFSET = timedelta(days=366)


class ClockError(ValueError):
    """A move the clock does not understand; the message says what it does understand."""


@dataclass(frozen=True)
class ClockView:
    """What the demo page shows: the clock's local time and how far it is from real time."""

    now: datetime
    offset_seconds: int
    timezone: str
    moved: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "now": self.now.isoformat(),
            "epoch_ms": int(self.now.timestamp() * 1000),
            "offset_seconds": self.offset_seconds,
            "timezone": self.timezone,
            "moved": self.moved,
        }


class Clock:
    """Real time plus an offset; `now()` is aware UTC like every timestamp in the database."""

    def __init__(
        self,
        timezone: str = "Europe/Amsterdam",
        *,
        school_days: Iterable[int] = (1, 2, 3, 4, 5),
        real_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.timezone = ZoneInfo(timezone)
        self.school_days = frozenset(school_days)
        self._real_now = real_now or (lambda: datetime.now(UTC))
        self._offset = timedelta(0)

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return self._real_now() + self._offset

    def local_now(self) -> datetime:
        return self.now().astimezone(self.timezone)

    def today(self) -> date:
        return self.local_now().date()

    def reset(self) -> None:
        self._offset = timedelta(0)

    def set_now(self, moment: datetime) -> None:
        """Make the clock show `moment` now (it runs on from there)."""
        if moment.tzinfo is None:
            raise ValueError("naive datetime given; the clock needs an aware moment")
        offset = moment - self._real_now()
        if abs(offset) > MAX_OFFSET:
            raise ClockError("that is more than a year away from today")
        self._offset = offset

    def move(self, command: str) -> datetime:
        """Move the clock as `command` says; returns the new local time."""
        phrase = " ".join(command.strip().lower().split())
        if phrase in _RESET:
            self.reset()
            return self.local_now()
        self.set_now(self._target(phrase))
        return self.local_now()

    def view(self) -> ClockView:
        return ClockView(
            now=self.local_now(),
            offset_seconds=round(self._offset.total_seconds()),
            timezone=str(self.timezone),
            moved=self._offset != timedelta(0),
        )

    def next_school_day(self, after: date) -> date:
        day = after + timedelta(days=1)
        while day.isoweekday() not in self.school_days:
            day += timedelta(days=1)
        return day

    def _target(self, phrase: str) -> datetime:
        local = self.local_now()
        relative = _RELATIVE.match(phrase)
        if relative is not None:
            unit = _UNITS.get(relative["unit"])
            if unit is None:
                raise ClockError(f'unknown unit "{relative["unit"]}" (use min, hours, days, weeks)')
            return local + timedelta(**{unit: int(relative["amount"])})
        match = _NEXT_SCHOOL_DAY.match(phrase)
        if match is not None:
            return self._at(self.next_school_day(local.date()), match["time"])
        match = _NAMED_DAY.match(phrase)
        if match is not None:
            days = 1 if match["day"] in {"tomorrow", "morgen"} else 0
            return self._at(local.date() + timedelta(days=days), match["time"])
        match = _NEXT_WEEKDAY.match(phrase)
        if match is not None and match["weekday"] in WEEKDAYS:
            wanted = WEEKDAYS[match["weekday"]]
            ahead = (wanted - local.isoweekday()) % 7 or 7
            return self._at(local.date() + timedelta(days=ahead), match["time"])
        raise ClockError(
            f'"{phrase}" is not a move I know; try "next school day 15:30", '
            '"next Monday 08:30", "+1 day", "+2 hours" or "now"'
        )

    def _at(self, day: date, typed_time: str | None) -> datetime:
        at = DEFAULT_TIME if typed_time is None else _parse_time(typed_time)
        return datetime.combine(day, at, tzinfo=self.timezone)


def _parse_time(text: str) -> time:
    hours, minutes = (int(part) for part in re.split(r"[:.]", text))
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ClockError(f'"{text}" is not a time of day such as 15:30')
    return time(hours, minutes)


def school_now(settings: Settings, clock: Clock) -> datetime:
    """What time it is at school: the school's timezone, not the server's (UTC) or the phone's."""
    return clock.now().astimezone(ZoneInfo(settings.timezone))


def school_today(settings: Settings, clock: Clock) -> date:
    return school_now(settings, clock).date()
