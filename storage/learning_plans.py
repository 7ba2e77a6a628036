"""'Mijn eigen plan': a pupil's own learning plan, with its timeline (draaiboek).

Every function takes the `pupil_id` of the person asking and looks plans up through it, so a
plan id or goal id from forged button data that belongs to another pupil finds nothing
(None) and changes nothing. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Goal, LearningPlan, LearningPlanStep, PupilGoal
from storage.types import utcnow

# The limits keep the whole plan, shown back as one message, under Telegram's 4096
# characters (8 steps included); the step limits stay within the columns' sizes.
MAX_IDEA = 300
MAX_ANSWER = 300
MAX_STEP_WHAT = 120
MAX_STEP_WHO = 40
MAX_STEP_WHEN = 40
MAX_STEPS = 8


class PlanField(enum.StrEnum):
    """The text parts of a plan, named as their columns."""

    IDEA = "idea"
    MOTIVATION = "motivation"
    PRIOR_KNOWLEDGE = "prior_knowledge"
    OUTCOME = "outcome"
    NEEDS = "needs"


FIELD_LIMITS = {
    PlanField.IDEA: MAX_IDEA,
    PlanField.MOTIVATION: MAX_ANSWER,
    PlanField.PRIOR_KNOWLEDGE: MAX_ANSWER,
    PlanField.OUTCOME: MAX_ANSWER,
    PlanField.NEEDS: MAX_ANSWER,
}


@dataclass(frozen=True)
class PlanStep:
    """One line of the draaiboek: what, with whom, when (position is its place in the list)."""

    what: str
    who: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class PlanView:
    id: int
    pupil_id: int
    pupil_goal_id: int | None
    goal_code: str | None
    goal_text: str | None
    idea: str
    motivation: str | None
    prior_knowledge: str | None
    outcome: str | None
    needs: str | None
    steps: tuple[PlanStep, ...]
    updated_at: datetime

    def value(self, field: PlanField) -> str | None:
        result: str | None = getattr(self, field.value)
        return result


@dataclass(frozen=True)
class PlanSummary:
    """A line of the pupil's list of plans."""

    id: int
    idea: str
    goal_code: str | None
    step_count: int
    updated_at: datetime


def _checked(field: PlanField, value: str | None) -> str | None:
    """Guards the limits the dialogue already enforces; a violation is a bug, not input."""
    if value is not None and len(value) > FIELD_LIMITS[field]:
        raise ValueError(f"{field} is longer than {FIELD_LIMITS[field]} characters")
    if field is PlanField.IDEA and not value:
        raise ValueError("a plan needs an idea")
    return value


def _checked_steps(steps: Sequence[PlanStep]) -> Sequence[PlanStep]:
    if len(steps) > MAX_STEPS:
        raise ValueError(f"a plan has at most {MAX_STEPS} steps")
    for step in steps:
        if (
            not step.what
            or len(step.what) > MAX_STEP_WHAT
            or len(step.who or "") > MAX_STEP_WHO
            or len(step.when or "") > MAX_STEP_WHEN
        ):
            raise ValueError("a step needs a 'what' and must fit the limits")
    return steps


async def _own_plan(session: AsyncSession, *, pupil_id: int, plan_id: int) -> LearningPlan | None:
    return await session.scalar(
        select(LearningPlan).where(LearningPlan.id == plan_id, LearningPlan.pupil_id == pupil_id)
    )


async def _view(session: AsyncSession, plan: LearningPlan) -> PlanView:
    steps = (
        await session.scalars(
            select(LearningPlanStep)
            .where(LearningPlanStep.learning_plan_id == plan.id)
            .order_by(LearningPlanStep.position)
        )
    ).all()
    goal = None
    if plan.pupil_goal_id is not None:
        goal = await session.scalar(
            select(Goal)
            .join(PupilGoal, PupilGoal.goal_id == Goal.id)
            .where(PupilGoal.id == plan.pupil_goal_id)
        )
    return PlanView(
        id=plan.id,
        pupil_id=plan.pupil_id,
        pupil_goal_id=plan.pupil_goal_id,
        goal_code=goal.code if goal else None,
        goal_text=goal.text if goal else None,
        idea=plan.idea,
        motivation=plan.motivation,
        prior_knowledge=plan.prior_knowledge,
        outcome=plan.outcome,
        needs=plan.needs,
        steps=tuple(PlanStep(step.what, step.who, step.when_text) for step in steps),
        updated_at=plan.updated_at,
    )


def _add_steps(session: AsyncSession, plan_id: int, steps: Sequence[PlanStep]) -> None:
    for position, step in enumerate(steps, start=1):
        session.add(
            LearningPlanStep(
                learning_plan_id=plan_id,
                position=position,
                what=step.what,
                who=step.who,
                when_text=step.when,
            )
        )


async def create_plan(
    session: AsyncSession,
    *,
    pupil_id: int,
    pupil_goal_id: int | None,
    idea: str,
    motivation: str | None = None,
    prior_knowledge: str | None = None,
    outcome: str | None = None,
    needs: str | None = None,
    steps: Sequence[PlanStep] = (),
) -> PlanView | None:
    """Saves a whole plan at once; None (nothing saved) if the goal is not this pupil's."""
    if pupil_goal_id is not None:
        owner = await session.scalar(
            select(PupilGoal.pupil_id).where(PupilGoal.id == pupil_goal_id)
        )
        if owner != pupil_id:
            return None
    plan = LearningPlan(
        pupil_id=pupil_id,
        pupil_goal_id=pupil_goal_id,
        idea=_checked(PlanField.IDEA, idea),
        motivation=_checked(PlanField.MOTIVATION, motivation),
        prior_knowledge=_checked(PlanField.PRIOR_KNOWLEDGE, prior_knowledge),
        outcome=_checked(PlanField.OUTCOME, outcome),
        needs=_checked(PlanField.NEEDS, needs),
    )
    session.add(plan)
    await session.flush()
    _add_steps(session, plan.id, _checked_steps(steps))
    await session.flush()
    return await _view(session, plan)


async def plans_of(session: AsyncSession, *, pupil_id: int) -> list[PlanSummary]:
    """The pupil's plans, the most recently changed first."""
    step_count = (
        select(func.count(LearningPlanStep.id))
        .where(LearningPlanStep.learning_plan_id == LearningPlan.id)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(LearningPlan, Goal.code, step_count)
            .outerjoin(PupilGoal, PupilGoal.id == LearningPlan.pupil_goal_id)
            .outerjoin(Goal, Goal.id == PupilGoal.goal_id)
            .where(LearningPlan.pupil_id == pupil_id)
            .order_by(LearningPlan.updated_at.desc(), LearningPlan.id.desc())
        )
    ).all()
    return [
        PlanSummary(plan.id, plan.idea, code, count or 0, plan.updated_at)
        for plan, code, count in rows
    ]


async def plan_of(session: AsyncSession, *, pupil_id: int, plan_id: int) -> PlanView | None:
    """One plan of this pupil; None if there is no such plan or it is someone else's."""
    plan = await _own_plan(session, pupil_id=pupil_id, plan_id=plan_id)
    return None if plan is None else await _view(session, plan)


async def update_field(
    session: AsyncSession, *, pupil_id: int, plan_id: int, field: PlanField, value: str | None
) -> PlanView | None:
    """Changes one text part of the pupil's own plan (None empties an optional part)."""
    plan = await _own_plan(session, pupil_id=pupil_id, plan_id=plan_id)
    if plan is None:
        return None
    setattr(plan, field.value, _checked(field, value))
    plan.updated_at = utcnow()
    await session.flush()
    return await _view(session, plan)


async def replace_steps(
    session: AsyncSession, *, pupil_id: int, plan_id: int, steps: Sequence[PlanStep]
) -> PlanView | None:
    """Puts a new timeline in place of the old one, in one go."""
    plan = await _own_plan(session, pupil_id=pupil_id, plan_id=plan_id)
    if plan is None:
        return None
    _checked_steps(steps)
    await session.execute(
        delete(LearningPlanStep).where(LearningPlanStep.learning_plan_id == plan.id)
    )
    _add_steps(session, plan.id, steps)
    # The plan row itself does not change, so `onupdate` would not move the timestamp.
    plan.updated_at = utcnow()
    await session.flush()
    return await _view(session, plan)
