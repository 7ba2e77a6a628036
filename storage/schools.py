"""Schools: creating one, finding the school or person a command is about, the school year,
and a fresh invite code for one person.

The functions never commit: the caller owns the transaction, so a command that creates a school
and imports its people in one go either does both or neither.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import issue_invite
from storage.models import AccountPerson, Person, School
from storage.types import utcnow

NAME_MAX_LENGTH = 200
# Dutch school years run from 1 August to 31 July.
SCHOOL_YEAR_START_MONTH = 8

_SCHOOL_YEAR_PATTERN = re.compile(r"^(\d{4})-(\d{4})$")


class SchoolError(Exception):
    """A school or person cannot be created or found as asked; the message says why."""


class NoSchoolYetError(SchoolError):
    """No school was named, and there is none at all."""


class SchoolAmbiguousError(SchoolError):
    """No school was named, and there are several."""


@dataclass(frozen=True)
class PersonInvite:
    person: Person
    code: str
    expires_at: datetime
    # Redeeming the code then moves the person to the Telegram account that redeems it.
    had_account: bool


@cache
def known_languages() -> frozenset[str]:
    """Two-letter ISO 639-1 codes Babel has a name for (nl, en, tr, ar, uk, so, ti, ...)."""
    codes = (str(code) for code in Locale("en").languages)
    return frozenset(code for code in codes if len(code) == 2 and code.isascii() and code.isalpha())


def current_school_year(today: date) -> str:
    """The school year `today` falls in, as "2026-2027"."""
    first = today.year if today.month >= SCHOOL_YEAR_START_MONTH else today.year - 1
    return f"{first}-{first + 1}"


def parse_school_year(text: str) -> str:
    """Check a school year typed by a person ("2026-2027"); return it normalised."""
    match = _SCHOOL_YEAR_PATTERN.match(text.strip())
    if match is None or int(match[2]) != int(match[1]) + 1:
        raise SchoolError(f'"{text}" is not a school year such as 2026-2027')
    return match[0]


async def create_school(session: AsyncSession, *, name: str, timezone: str, locale: str) -> School:
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not name:
        raise SchoolError("a school needs a name")
    if len(name) > NAME_MAX_LENGTH:
        raise SchoolError(f"a school name has at most {NAME_MAX_LENGTH} characters")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SchoolError(f'"{timezone}" is not a time zone such as Europe/Amsterdam') from None
    if locale not in known_languages():
        raise SchoolError(f'"{locale}" is not a two-letter language code such as nl or en')
    # Case-insensitive, so "De Regenboog" and "de regenboog" cannot both exist and confuse
    # every later --school lookup.
    existing = await session.scalar(select(School).where(func.lower(School.name) == name.lower()))
    if existing is not None:
        raise SchoolError(f'a school named "{existing.name}" already exists')
    school = School(name=name, timezone=timezone, locale=locale)
    session.add(school)
    await session.flush()
    return school


async def find_school(session: AsyncSession, *, name: str | None) -> School:
    """The school called `name`; without a name, the only school there is."""
    schools = list((await session.scalars(select(School).order_by(School.name))).all())
    if name is None:
        if len(schools) == 1:
            return schools[0]
        if not schools:
            raise NoSchoolYetError("there is no school yet; create one first")
        raise SchoolAmbiguousError(
            f"there are {len(schools)} schools ({_names(schools)}); say which one you mean"
        )
    wanted = " ".join(unicodedata.normalize("NFC", name).split())
    for school in schools:
        if school.name == wanted:
            return school
    for school in schools:
        if school.name.lower() == wanted.lower():
            return school
    known = f" (known: {_names(schools)})" if schools else " (there are no schools yet)"
    raise SchoolError(f'no school named "{name}"{known}')


async def all_schools(session: AsyncSession) -> list[School]:
    """Every school, by name."""
    return list((await session.scalars(select(School).order_by(School.name, School.id))).all())


async def find_person(session: AsyncSession, *, school: School, external_id: str) -> Person:
    person = await session.scalar(
        select(Person).where(
            Person.school_id == school.id, Person.external_id == external_id.strip()
        )
    )
    if person is None:
        raise SchoolError(f'no person with external id "{external_id}" in {school.name}')
    return person


async def invite_person(
    session: AsyncSession,
    *,
    school: School,
    external_id: str,
    valid_for: timedelta,
    invite_secret: bytes,
    now: datetime | None = None,
) -> PersonInvite:
    """A fresh code for one person (a lost slip, a new phone); earlier unused codes stop working."""
    now = now or utcnow()
    person = await find_person(session, school=school, external_id=external_id)
    if person.left_school_on is not None:
        raise SchoolError(
            f"{person.display_name} ({person.external_id}) left the school on "
            f"{person.left_school_on.isoformat()}; no new code"
        )
    account_id = await session.scalar(
        select(AccountPerson.account_id).where(AccountPerson.person_id == person.id)
    )
    code = await issue_invite(
        session, person_id=person.id, valid_for=valid_for, secret=invite_secret, now=now
    )
    return PersonInvite(
        person=person, code=code, expires_at=now + valid_for, had_account=account_id is not None
    )


def _names(schools: list[School]) -> str:
    shown = ", ".join(school.name for school in schools[:10])
    return shown + (", ..." if len(schools) > 10 else "")
