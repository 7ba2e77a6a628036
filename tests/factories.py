"""Builders of test data, written through the same storage code the bot uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.invites import issue_invite
from storage.models import Group, GroupMembership, Guardianship, Person, Role, School


@dataclass
class DemoSchool:
    school_id: int
    group_id: int
    persons: dict[str, int] = field(default_factory=dict)  # external id -> person id
    codes: dict[str, str] = field(default_factory=dict)  # external id -> invite code


async def build_school(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    valid_for: timedelta = timedelta(days=14),
) -> DemoSchool:
    """A school with one group: a mentor, two pupils, a parent of the first pupil, an admin,
    and someone (X1) who is both a teacher and, as X2, the parent of the second pupil."""
    async with session_factory() as session, session.begin():
        school = School(name="De Regenboog")
        session.add(school)
        await session.flush()
        group = Group(school_id=school.id, name="Groep 6a", school_year="2026-2027")
        session.add(group)
        await session.flush()
        demo = DemoSchool(school_id=school.id, group_id=group.id)
        people = [
            ("T1", Role.TEACHER, "Juf Anouk"),
            ("P1", Role.PUPIL, "Sam de Vries"),
            ("P2", Role.PUPIL, "Noor Jansen"),
            ("O1", Role.PARENT, "Marieke de Vries"),
            ("A1", Role.ADMIN, "Beheer De Regenboog"),
            ("X1", Role.TEACHER, "Meester Bram"),
            ("X2", Role.PARENT, "Bram Jansen"),
        ]
        for external_id, role, name in people:
            person = await _person(session, school, external_id, role, name)
            demo.persons[external_id] = person.id
        for external_id in ("T1", "P1", "P2", "X1"):
            session.add(
                GroupMembership(
                    group_id=group.id,
                    person_id=demo.persons[external_id],
                    is_mentor=external_id == "T1",
                )
            )
        session.add(Guardianship(parent_id=demo.persons["O1"], pupil_id=demo.persons["P1"]))
        session.add(Guardianship(parent_id=demo.persons["X2"], pupil_id=demo.persons["P2"]))
        for external_id, person_id in demo.persons.items():
            demo.codes[external_id] = await issue_invite(
                session, person_id=person_id, valid_for=valid_for
            )
    return demo


async def _person(
    session: AsyncSession, school: School, external_id: str, role: Role, name: str
) -> Person:
    person = Person(school_id=school.id, external_id=external_id, role=role, display_name=name)
    session.add(person)
    await session.flush()
    return person
