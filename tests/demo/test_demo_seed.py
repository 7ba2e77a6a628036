"""The demo school: seeded through storage, idempotent, and with something on every screen."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from services.demo_school import seed_demo_school
from storage.demo_school import DEMO_SCHOOL_NAME, demo_counts, demo_people, find_demo_school
from storage.invites import RedeemOutcome, redeem_invite
from storage.models import (
    Assessment,
    Feedback,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    Guardianship,
    Observation,
    Period,
    PeriodGoal,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    ReflectionGoal,
    Role,
    School,
    WeekPlan,
    WeekPlanItem,
)
from tests.conftest import INVITE_SECRET

THURSDAY = date(2026, 11, 26)


async def seed(session_factory, today: date = THURSDAY):
    async with session_factory() as session, session.begin():
        return await seed_demo_school(session, today=today, invite_secret=INVITE_SECRET)


async def count(session, model, *where) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_the_demo_school_has_its_people_and_goal_sets(session_factory):
    result = await seed(session_factory)
    assert result.created
    assert result.school_days == (1, 2, 3, 4, 5)
    async with session_factory() as session:
        counts = await demo_counts(session, school_id=result.school_id)
        assert counts["pupils"] == 8
        assert counts["teachers"] == 2
        assert counts["parents"] == 8
        assert counts["goal_sets"] == 2
        assert counts["periods"] == 1
        assert await count(session, Group) == 1
        names = set(await session.scalars(select(GoalSet.name)))
        assert names == {"Natuurkunde vwo3 h1", "Vaardigheden"}
        # Every pupil has a parent; the first teacher of the file is the group's mentor.
        assert await count(session, Guardianship) == 8
        mentors = await session.scalars(
            select(Person.external_id)
            .join(GroupMembership, GroupMembership.person_id == Person.id)
            .where(GroupMembership.is_mentor.is_(True))
        )
        assert list(mentors) == ["T1"]
    # One invite code per person, ready to be redeemed by the demo's sandbox users.
    assert sorted(result.codes) == sorted(
        [f"T{n}" for n in (1, 2)] + [f"P{n}" for n in range(1, 9)] + [f"O{n}" for n in range(1, 9)]
    )


async def test_every_screen_has_something_to_show(session_factory):
    result = await seed(session_factory)
    async with session_factory() as session:
        period = await session.scalar(select(Period))
        assert period is not None
        assert period.starts_on == THURSDAY - timedelta(days=14)
        assert period.ends_on == period.starts_on + timedelta(weeks=6)
        assert period.group_id is not None

        skills = await session.scalar(select(GoalSet.id).where(GoalSet.name == "Vaardigheden"))
        tiers = set(
            await session.scalars(
                select(PeriodGoal.tier)
                .join(Goal, Goal.id == PeriodGoal.goal_id)
                .where(PeriodGoal.period_id == period.id, Goal.goal_set_id == skills)
            )
        )
        assert tiers == {1, 2, 3}
        assert await count(session, PeriodGoal, PeriodGoal.prepared_by_id.is_not(None)) >= 8

        with_goals = set(await session.scalars(select(PupilGoal.pupil_id).distinct()))
        assert 6 <= len(with_goals) < 8, "most pupils chose goals, one has not yet"
        statuses = set(await session.scalars(select(PupilGoal.status)))
        assert {PupilGoalStatus.ACTIVE, PupilGoalStatus.PROPOSED} <= statuses
        assert await count(session, PupilGoal, PupilGoal.level_aimed_id.is_not(None)) >= 5

        reflections = (await session.scalars(select(Reflection))).all()
        days = {reflection.on_date for reflection in reflections}
        assert len(days) >= 5
        assert all(day < THURSDAY and day.isoweekday() <= 5 for day in days)
        assert all(day >= period.starts_on for day in days)
        for scale in ("how_it_went", "effort", "wellbeing"):
            values = {getattr(reflection, scale) for reflection in reflections}
            assert len(values) >= 3 and values <= {1, 2, 3, 4}, scale
        assert await count(session, ReflectionGoal) == len(reflections)

        assert await count(session, WeekPlan) == 2
        items = (await session.scalars(select(WeekPlanItem))).all()
        assert len(items) >= 4
        assert {item.done_at is None for item in items} == {True, False}

        assessments = (await session.scalars(select(Assessment))).all()
        assert {assessment.by_role.value for assessment in assessments} == {"pupil", "teacher"}
        assert any(a.rubric_level_id for a in assessments) and any(a.level for a in assessments)
        assert await count(session, Observation) >= 2
        assert await count(session, Feedback) >= 1

        counts = await demo_counts(session, school_id=result.school_id)
        assert counts["reflections"] == len(reflections)
        assert counts["assessments"] == len(assessments)


async def test_seeding_again_changes_nothing(session_factory):
    first = await seed(session_factory)
    async with session_factory() as session:
        before = await demo_counts(session, school_id=first.school_id)
    again = await seed(session_factory, today=THURSDAY + timedelta(days=3))
    assert not again.created
    assert again.codes == {}
    assert again.school_id == first.school_id
    async with session_factory() as session:
        assert await demo_counts(session, school_id=first.school_id) == before
        assert await count(session, School) == 1
        assert await find_demo_school(session) is not None


@pytest.mark.parametrize("today", [date(2026, 11, 30), date(2026, 9, 1), date(2027, 8, 2)])
async def test_any_day_works(session_factory, today: date):
    """A Monday, the first school day of the year (reflections reach back into the summer
    holiday's last weeks, as dates go), and the day the school year changes."""
    result = await seed(session_factory, today=today)
    async with session_factory() as session:
        group = await session.scalar(select(Group))
        assert group is not None
        assert group.school_year == (
            f"{today.year}-{today.year + 1}"
            if today.month >= 8
            else f"{today.year - 1}-{today.year}"
        )
        counts = await demo_counts(session, school_id=result.school_id)
        assert counts["reflections"] > 10
        days = set(await session.scalars(select(Reflection.on_date)))
        assert max(days) < today


async def test_the_picker_lists_everyone_with_role_and_detail(session_factory):
    result = await seed(session_factory)
    async with session_factory() as session, session.begin():
        person_id = await session.scalar(select(Person.id).where(Person.external_id == "P1"))
        outcome = await redeem_invite(
            session, telegram_user_id=77, typed_code=result.codes["P1"], secret=INVITE_SECRET
        )
        assert outcome.outcome is RedeemOutcome.LINKED and outcome.person_id == person_id
    async with session_factory() as session:
        school = await find_demo_school(session)
        assert school is not None and school.name == DEMO_SCHOOL_NAME
        people = await demo_people(session, school_id=result.school_id)
    assert [person.role for person in people[:8]] == [Role.PUPIL] * 8
    by_id = {person.external_id: person for person in people}
    assert len(by_id) == 18
    assert by_id["P1"].telegram_user_id == 77
    assert by_id["P2"].telegram_user_id is None
    assert by_id["P1"].detail == "Groep 6a"
    assert by_id["T1"].detail == "mentor Groep 6a"
    assert by_id["T2"].detail == "Groep 6a"
    assert by_id["O2"].detail == "ouder van Noor Jansen"
    assert by_id["O2"].locale == "en"
