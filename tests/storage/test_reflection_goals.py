"""The goals a reflection offers, read in one statement: the same as reading them step by step
(the pupil's group, its period that day, the live goals, this week's plan first)."""

from __future__ import annotations

from datetime import date, timedelta

from storage.goals import chosen_goals, pupil_context
from storage.models import Goal, Period, PupilGoalStatus, WeekPlan, WeekPlanItem
from storage.reflections import reflection_goals
from storage.week_plans import monday_of, week_goal_ids
from tests.factories import Curriculum, DemoSchool, build_curriculum, build_school, give_goal

TODAY = date(2026, 11, 25)  # a Wednesday inside the sample period
WEEK = monday_of(TODAY)


async def step_by_step(session, school: DemoSchool, pupil: str, today: date) -> list[int]:
    """The reading the one statement replaced, kept here as its specification."""
    pupil_id = school.persons[pupil]
    context = await pupil_context(session, pupil_id=pupil_id, today=today)
    if context.period_id is None:
        return []
    choices = await chosen_goals(session, pupil_id=pupil_id, period_id=context.period_id)
    this_week = await week_goal_ids(session, pupil_id=pupil_id, week_start=monday_of(today))
    order = {goal_id: index for index, goal_id in enumerate(this_week)}
    choices.sort(key=lambda choice: order.get(choice.goal.id, len(order)))
    return [choice.goal.id for choice in choices]


async def offered(session, school: DemoSchool, pupil: str, today: date = TODAY) -> list[int]:
    goals = await reflection_goals(
        session,
        pupil_id=school.persons[pupil],
        school_id=school.school_id,
        today=today,
        week_start=monday_of(today),
    )
    ids = [goal_id for goal_id, _text in goals]
    assert ids == await step_by_step(session, school, pupil, today)
    return ids


async def _setup(session_factory) -> tuple[DemoSchool, Curriculum]:
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school, today=TODAY)
    return school, curriculum


async def _plan(session_factory, school: DemoSchool, pupil_goal_ids: list[int]) -> None:
    async with session_factory() as session, session.begin():
        plan = WeekPlan(pupil_id=school.persons["P1"], week_start=WEEK)
        session.add(plan)
        await session.flush()
        for pupil_goal_id in pupil_goal_ids:
            session.add(
                WeekPlanItem(week_plan_id=plan.id, pupil_goal_id=pupil_goal_id, text="Oefenen")
            )


async def test_goals_come_by_learning_line_and_position_with_texts(session_factory):
    school, curriculum = await _setup(session_factory)
    for code in ("1.2b", "1.1c", "1.1a"):
        await give_goal(
            session_factory,
            pupil_id=school.persons["P1"],
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
        )
    async with session_factory() as session:
        ids = await offered(session, school, "P1")
        texts = dict(
            await reflection_goals(
                session,
                pupil_id=school.persons["P1"],
                school_id=school.school_id,
                today=TODAY,
                week_start=WEEK,
            )
        )
        goal = await session.get(Goal, curriculum.goals["1.1a"])
    assert ids == [curriculum.goals[code] for code in ("1.1a", "1.1c", "1.2b")]
    assert goal is not None and texts[goal.id] == goal.text


async def test_this_weeks_plan_comes_first_in_plan_order(session_factory):
    school, curriculum = await _setup(session_factory)
    pupil_goal = {
        code: await give_goal(
            session_factory,
            pupil_id=school.persons["P1"],
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
        )
        for code in ("1.1a", "1.1c", "1.2b", "1.2d")
    }
    # Planned in this order; a goal planned twice counts once, at its first item.
    await _plan(
        session_factory, school, [pupil_goal["1.2d"], pupil_goal["1.1c"], pupil_goal["1.2d"]]
    )
    async with session_factory() as session:
        ids = await offered(session, school, "P1")
        # Last week's plan orders nothing this week.
        next_week = await offered(session, school, "P1", TODAY + timedelta(days=7))
    planned = [ids[0], ids[1]]
    assert set(planned) == {curriculum.goals["1.1c"], curriculum.goals["1.2d"]}
    assert ids[2:] == [curriculum.goals["1.1a"], curriculum.goals["1.2b"]]
    assert next_week == [curriculum.goals[code] for code in ("1.1a", "1.1c", "1.2b", "1.2d")]


async def test_only_live_goals_of_this_pupil_in_the_groups_period_of_the_day(session_factory):
    school, curriculum = await _setup(session_factory)
    for code, status in (
        ("1.1a", PupilGoalStatus.ACTIVE),
        ("1.1b", PupilGoalStatus.PROPOSED),
        ("1.1c", PupilGoalStatus.DROPPED),
        ("1.2a", PupilGoalStatus.ACHIEVED),
        ("1.2b", PupilGoalStatus.REJECTED),
    ):
        await give_goal(
            session_factory,
            pupil_id=school.persons["P1"],
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
            status=status,
        )
    await give_goal(
        session_factory,
        pupil_id=school.persons["P2"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.2d"],
    )
    # A school-wide period over the same days: the group's own period wins.
    async with session_factory() as session, session.begin():
        school_wide = Period(
            school_id=school.school_id,
            group_id=None,
            name="Schoolperiode",
            starts_on=TODAY - timedelta(days=30),
            ends_on=TODAY + timedelta(days=90),
        )
        session.add(school_wide)
        await session.flush()
    await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=school_wide.id,
        goal_id=curriculum.goals["1.2d"],
    )
    async with session_factory() as session:
        assert await offered(session, school, "P1") == [
            curriculum.goals["1.1a"],
            curriculum.goals["1.1b"],
        ]
        # After the group's period the school's period is the one of the day.
        after = TODAY + timedelta(days=60)
        assert await offered(session, school, "P1", after) == [curriculum.goals["1.2d"]]
        # And before any period there is nothing to offer.
        assert await offered(session, school, "P1", TODAY - timedelta(days=365)) == []
        # Another pupil's goals are their own.
        assert await offered(session, school, "P2") == [curriculum.goals["1.2d"]]
