"""Reading a day and a time a teacher typed: "di 3 dec 14:00", "morgen 9u", "3-12".

Pure functions of the text and today's date, so they are tested without a bot.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, time, timedelta


class MomentError(ValueError):
    """Typed text that is not a day or time the parser understands."""


@dataclass(frozen=True)
class TypedMoment:
    day: date | None
    at: time | None


MONTHS = {
    "jan": 1,
    "feb": 2,
    "mrt": 3,
    "maa": 3,
    "mar": 3,
    "apr": 4,
    "mei": 5,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "okt": 10,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
WEEKDAY_WORDS = {
    "ma": 1,
    "maandag": 1,
    "mon": 1,
    "monday": 1,
    "di": 2,
    "dinsdag": 2,
    "tue": 2,
    "tues": 2,
    "tuesday": 2,
    "wo": 3,
    "woensdag": 3,
    "wed": 3,
    "wednesday": 3,
    "do": 4,
    "donderdag": 4,
    "thu": 4,
    "thur": 4,
    "thurs": 4,
    "thursday": 4,
    "vr": 5,
    "vrijdag": 5,
    "fri": 5,
    "friday": 5,
    "za": 6,
    "zaterdag": 6,
    "sat": 6,
    "saturday": 6,
    "zo": 7,
    "zondag": 7,
    "sun": 7,
    "sunday": 7,
}
RELATIVE_DAYS = {
    "vandaag": 0,
    "today": 0,
    "morgen": 1,
    "tomorrow": 1,
    "overmorgen": 2,
}
# Words that may stand around a day and a time without meaning anything else.
FILLERS = {"om", "at", "op", "on", "de", "the", "uur", "u", "h", "volgende", "next", "komende"}
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})\b|\b(\d{1,2})\s*(?:uur|u|h)\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[-/](\d{1,2})(?:[-/](\d{2}|\d{4}))?\b")
_NAMED_DATE = re.compile(r"\b(\d{1,2})\s*([a-z]{3,})\.?(?:\s+(\d{4}))?\b")


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _month(word: str) -> int | None:
    return MONTHS.get(word[:3]) if len(word) >= 3 else None


def _dated(day: int, month: int, year: int | None, today: date) -> date:
    try:
        if year is not None:
            return date(year if year > 99 else 2000 + year, month, day)
        found = date(today.year, month, day)
    except ValueError as error:
        raise MomentError(str(error)) from None
    # "3 jan" typed in December means next year's.
    return found if found >= today else found.replace(year=today.year + 1)


def parse_moment(text: str, *, today: date) -> TypedMoment:
    """ "di 3 dec 14:00", "3-12 14:00", "morgen 10:15", "donderdag", "14.30", "9 uur"."""
    rest = " " + _plain(text).replace(",", " ") + " "
    at: time | None = None
    match = _TIME.search(rest)
    if match is not None:
        hours = int(match.group(1) or match.group(3))
        minutes = int(match.group(2) or 0)
        if not (0 <= hours <= 23 and 0 <= minutes <= 59):
            raise MomentError(text)
        at = time(hours, minutes)
        rest = rest[: match.start()] + " " + rest[match.end() :]
    day: date | None = None
    numeric = _NUMERIC_DATE.search(rest)
    named = _NAMED_DATE.search(rest)
    if numeric is not None:
        year = int(numeric.group(3)) if numeric.group(3) else None
        day = _dated(int(numeric.group(1)), int(numeric.group(2)), year, today)
        rest = rest[: numeric.start()] + " " + rest[numeric.end() :]
    elif named is not None and _month(named.group(2)) is not None:
        month = _month(named.group(2))
        assert month is not None
        year = int(named.group(3)) if named.group(3) else None
        day = _dated(int(named.group(1)), month, year, today)
        rest = rest[: named.start()] + " " + rest[named.end() :]
    weekday: int | None = None
    for word in rest.split():
        word = word.strip(".")
        if word in RELATIVE_DAYS and day is None:
            day = today + timedelta(days=RELATIVE_DAYS[word])
        elif word in WEEKDAY_WORDS:
            weekday = WEEKDAY_WORDS[word]
        elif word not in FILLERS:
            raise MomentError(text)
    if day is None and weekday is not None:
        # The next one after today ("vandaag" is today): "do" typed on a Thursday means next week.
        day = today + timedelta(days=(weekday - today.isoweekday() - 1) % 7 + 1)
    if day is None and at is None:
        raise MomentError(text)
    return TypedMoment(day, at)
