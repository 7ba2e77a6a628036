"""Finding the pupil a data-subject request is about: by number or name for an admin, by id
from a button, or by the day they left school for retention. Never anyone of another school.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, Role
from storage.observations import normalise
from storage.policy import is_pupil, pupil_at_school, pupils_of_school

# Lookups by name list at most this many matches.
MAX_MATCHES = 10


class PrivacyError(Exception):
    """A pupil cannot be found, or is not a pupil of this school; the message says why."""


@dataclass(frozen=True)
class PupilMatch:
    id: int
    external_id: str
    name: str
    school_id: int
    left_school_on: date | None


def _match(person: Person) -> PupilMatch:
    return PupilMatch(
        person.id, person.external_id, person.display_name, person.school_id, person.left_school_on
    )


async def require_pupil(session: AsyncSession, *, pupil_id: int) -> Person:
    """The pupil's row; PrivacyError when the id is not a pupil's (export and erasure are for
    pupils only)."""
    person = await session.get(Person, pupil_id)
    if person is None or not is_pupil(person):
        raise PrivacyError("not a pupil")
    return person


async def find_pupils(session: AsyncSession, *, school_id: int, query: str) -> list[PupilMatch]:
    """Pupils of one school by external id (exact, case ignored) or else by name (the whole
    name, else part of it; accents and case ignored). Never anyone of another school."""
    wanted = query.strip()
    if not wanted:
        return []
    pupils = pupils_of_school(school_id)
    by_id = (
        await session.scalars(pupils.where(func.lower(Person.external_id) == wanted.lower()))
    ).all()
    if by_id:
        return [_match(person) for person in by_id]
    key = normalise(wanted)
    everyone = (await session.scalars(pupils.order_by(Person.display_name, Person.id))).all()
    whole = [person for person in everyone if normalise(person.display_name) == key]
    if whole:
        return [_match(person) for person in whole]
    return [_match(person) for person in everyone if key in normalise(person.display_name)][
        :MAX_MATCHES
    ]


async def pupil_of_school(
    session: AsyncSession, *, school_id: int, pupil_id: int
) -> PupilMatch | None:
    """The pupil with this id when they belong to this school (an admin's own), else None:
    an id from a button is never trusted."""
    person = await pupil_at_school(session, school_id=school_id, pupil_id=pupil_id)
    return _match(person) if person is not None else None


async def pupils_who_left_before(
    session: AsyncSession, *, school_id: int, cutoff: date
) -> list[PupilMatch]:
    """Pupils of one school who left before `cutoff`, longest gone first."""
    pupils = (
        await session.scalars(
            select(Person)
            .where(
                Person.school_id == school_id,
                Person.role == Role.PUPIL,
                Person.left_school_on.is_not(None),
                Person.left_school_on < cutoff,
            )
            .order_by(Person.left_school_on, Person.id)
        )
    ).all()
    return [_match(person) for person in pupils]
