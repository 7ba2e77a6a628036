"""'Mijn eigen plan' in storage: saved whole, read back in order, and only by its own pupil."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from storage.learning_plans import (
    MAX_STEPS,
    PlanField,
    PlanStep,
    create_plan,
    plan_of,
    plans_of,
    replace_steps,
    update_field,
)
from storage.models import (
    ChosenBy,
    Goal,
    GoalSet,
    LearningLine,
    LearningPlan,
    LearningPlanStep,
    Period,
    PupilGoal,
)
from tests.factories import DemoSchool, build_school


async def give_goals(session_factory, school: DemoSchool) -> dict[str, int]:
    """A period around today with one goal for each pupil; returns pupil key -> pupil goal id."""
    async with session_factory() as session, session.begin():
        goal_set = GoalSet(school_id=school.school_id, name="Zaakvakken")
        session.add(goal_set)
        await session.flush()
        line = LearningLine(goal_set_id=goal_set.id, name="Techniek", position=1)
        today = date.today()
        period = Period(
            school_id=school.school_id,
            name="Periode 2",
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=30),
        )
        session.add_all([line, period])
        await session.flush()
        goal = Goal(
            goal_set_id=goal_set.id,
            learning_line_id=line.id,
            code="T1",
            text="Ik kan iets bouwen met een bouwtekening",
            position=1,
        )
        session.add(goal)
        await session.flush()
        ids = {}
        for key in ("P1", "P2"):
            pupil_goal = PupilGoal(
                pupil_id=school.persons[key],
                goal_id=goal.id,
                period_id=period.id,
                chosen_by=ChosenBy.PUPIL,
            )
            session.add(pupil_goal)
            await session.flush()
            ids[key] = pupil_goal.id
    return ids


@pytest.fixture
async def school(session_factory) -> DemoSchool:
    return await build_school(session_factory)


async def count(session, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def test_a_plan_is_saved_whole_and_read_back_in_order(session_factory, school):
    goals = await give_goals(session_factory, school)
    sam = school.persons["P1"]
    async with session_factory() as session, session.begin():
        plan = await create_plan(
            session,
            pupil_id=sam,
            pupil_goal_id=goals["P1"],
            idea="Een vogelhuisje bouwen",
            motivation="Er komen veel vogels in de tuin",
            needs="Hout en een zaag",
            steps=[PlanStep("Tekening maken", "Alleen", "maandag"), PlanStep("Zagen", "opa")],
        )
    assert plan is not None
    async with session_factory() as session:
        again = await plan_of(session, pupil_id=sam, plan_id=plan.id)
        assert again is not None
        assert again.idea == "Een vogelhuisje bouwen" and again.prior_knowledge is None
        assert again.goal_code == "T1" and again.pupil_goal_id == goals["P1"]
        assert again.steps == (
            PlanStep("Tekening maken", "Alleen", "maandag"),
            PlanStep("Zagen", "opa", None),
        )
        positions = (
            await session.scalars(
                select(LearningPlanStep.position).order_by(LearningPlanStep.position)
            )
        ).all()
        assert positions == [1, 2]
        [summary] = await plans_of(session, pupil_id=sam)
        assert (summary.id, summary.step_count, summary.goal_code) == (plan.id, 2, "T1")


async def test_another_pupil_cannot_read_or_change_a_plan(session_factory, school):
    sam, noor = school.persons["P1"], school.persons["P2"]
    async with session_factory() as session, session.begin():
        plan = await create_plan(
            session, pupil_id=sam, pupil_goal_id=None, idea="Leren jongleren", steps=[]
        )
    assert plan is not None
    async with session_factory() as session, session.begin():
        assert await plan_of(session, pupil_id=noor, plan_id=plan.id) is None
        assert await plans_of(session, pupil_id=noor) == []
        assert (
            await update_field(
                session, pupil_id=noor, plan_id=plan.id, field=PlanField.IDEA, value="Van mij!"
            )
            is None
        )
        assert (
            await replace_steps(session, pupil_id=noor, plan_id=plan.id, steps=[PlanStep("x")])
            is None
        )
        assert await plan_of(session, pupil_id=sam, plan_id=plan.id + 1000) is None
    async with session_factory() as session:
        unchanged = await plan_of(session, pupil_id=sam, plan_id=plan.id)
        assert unchanged is not None
        assert unchanged.idea == "Leren jongleren" and unchanged.steps == ()


async def test_a_plan_cannot_be_linked_to_someone_elses_goal(session_factory, school):
    goals = await give_goals(session_factory, school)
    async with session_factory() as session, session.begin():
        plan = await create_plan(
            session,
            pupil_id=school.persons["P1"],
            pupil_goal_id=goals["P2"],
            idea="Stiekem",
            steps=[PlanStep("iets")],
        )
        assert plan is None
        assert await count(session, LearningPlan) == 0
        assert await count(session, LearningPlanStep) == 0


async def test_one_field_and_the_steps_are_changed_on_their_own(session_factory, school):
    sam = school.persons["P1"]
    async with session_factory() as session, session.begin():
        plan = await create_plan(
            session,
            pupil_id=sam,
            pupil_goal_id=None,
            idea="Een podcast maken",
            motivation="Leuk",
            steps=[PlanStep("Onderwerp kiezen"), PlanStep("Opnemen")],
        )
    assert plan is not None
    async with session_factory() as session, session.begin():
        changed = await update_field(
            session, pupil_id=sam, plan_id=plan.id, field=PlanField.MOTIVATION, value=None
        )
        assert changed is not None and changed.motivation is None
        assert changed.idea == "Een podcast maken" and len(changed.steps) == 2
        replaced = await replace_steps(
            session, pupil_id=sam, plan_id=plan.id, steps=[PlanStep("Luisteren", "juf", "vrijdag")]
        )
        assert replaced is not None
        assert replaced.steps == (PlanStep("Luisteren", "juf", "vrijdag"),)
        assert replaced.updated_at >= plan.updated_at
    async with session_factory() as session:
        assert await count(session, LearningPlanStep) == 1


async def test_the_limits_guard_against_bugs(session_factory, school):
    async with session_factory() as session:
        with pytest.raises(ValueError):
            await create_plan(
                session,
                pupil_id=school.persons["P1"],
                pupil_goal_id=None,
                idea="x",
                steps=[PlanStep(str(n)) for n in range(MAX_STEPS + 1)],
            )
        with pytest.raises(ValueError):
            await create_plan(
                session, pupil_id=school.persons["P1"], pupil_goal_id=None, idea="x" * 301
            )
        with pytest.raises(ValueError):
            await create_plan(session, pupil_id=school.persons["P1"], pupil_goal_id=None, idea="")
