"""Builders of test data, written through the same storage code the bot uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.invites import issue_invite
from storage.models import (
    Activity,
    ChosenBy,
    Goal,
    GoalMode,
    Group,
    GroupMembership,
    Guardianship,
    Period,
    PeriodGoal,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Role,
    School,
)
from tests.conftest import INVITE_SECRET


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
                session, person_id=person_id, valid_for=valid_for, secret=INVITE_SECRET
            )
    return demo


async def _person(
    session: AsyncSession, school: School, external_id: str, role: Role, name: str
) -> Person:
    person = Person(school_id=school.id, external_id=external_id, role=role, display_name=name)
    session.add(person)
    await session.flush()
    return person


@dataclass
class Curriculum:
    period_id: int
    goals: dict[str, int]  # goal code -> goal id
    activities: dict[str, int]  # activity text -> id


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


async def build_curriculum(
    session_factory: async_sessionmaker[AsyncSession],
    school: DemoSchool,
    *,
    mode: GoalMode = GoalMode.TEACHER_LED,
    today: date | None = None,
) -> Curriculum:
    """Both sample goal sets, a period of six weeks that started a week ago, the teacher's
    prepared tiers for two physics lines, and two activities for goal 1.1a."""
    from services.importing.goal_sets import import_goal_set

    today = today or datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    async with session_factory() as session, session.begin():
        school_row = await session.get(School, school.school_id)
        assert school_row is not None
        for name in ("goalset-natuurkunde-vwo3-h1.csv", "goalset-vaardigheden.csv"):
            await import_goal_set(session, school=school_row, path=SAMPLES / name, name=None)
        group = await session.get(Group, school.group_id)
        assert group is not None
        group.goal_mode = mode
        period = Period(
            school_id=school.school_id,
            group_id=school.group_id,
            name="Periode 2",
            starts_on=today - timedelta(days=7),
            ends_on=today + timedelta(days=35),
        )
        session.add(period)
        await session.flush()
        goals = {
            code: goal_id
            for code, goal_id in (await session.execute(select(Goal.code, Goal.id))).all()
        }
        for tier, code in enumerate(("1.1a", "1.1b", "1.1c"), start=1):
            session.add(
                PeriodGoal(
                    period_id=period.id, group_id=school.group_id, goal_id=goals[code], tier=tier
                )
            )
        for tier, code in enumerate(("1.2a", "1.2b", "1.2d"), start=1):
            session.add(
                PeriodGoal(
                    period_id=period.id, group_id=school.group_id, goal_id=goals[code], tier=tier
                )
            )
        activities = {}
        for text in ("Oefenblad krachten", "Proefje met een veer"):
            activity = Activity(goal_id=goals["1.1a"], group_id=school.group_id, text=text)
            session.add(activity)
            await session.flush()
            activities[text] = activity.id
        return Curriculum(period.id, goals, activities)


async def give_goal(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    pupil_id: int,
    period_id: int,
    goal_id: int,
    status: PupilGoalStatus = PupilGoalStatus.ACTIVE,
) -> int:
    async with session_factory() as session, session.begin():
        pupil_goal = PupilGoal(
            pupil_id=pupil_id,
            period_id=period_id,
            goal_id=goal_id,
            chosen_by=ChosenBy.TEACHER,
            status=status,
        )
        session.add(pupil_goal)
        await session.flush()
        return pupil_goal.id
