"""What day it is at school: dates are the school's, not the server's (UTC) or the phone's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.settings import Settings


class Clock(Protocol):
    def now(self) -> datetime: ...


def school_now(settings: Settings, clock: Clock | None = None) -> datetime:
    moment = clock.now() if clock is not None else datetime.now(UTC)
    return moment.astimezone(ZoneInfo(settings.timezone))


def school_today(settings: Settings, clock: Clock | None = None) -> date:
    return school_now(settings, clock).date()
