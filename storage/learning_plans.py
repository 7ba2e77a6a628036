"""'Mijn eigen plan': a pupil's own learning plan, with its timeline (draaiboek).

Every function takes the `pupil_id` of the person asking and looks plans up through it, so a
plan id or goal id from forged button data that belongs to another pupil finds nothing
(None) and changes nothing. A teacher's functions (/plannen) take the teacher's id instead
and ask `storage.policy` whether the plan's pupil is theirs now. Nothing here commits: the
caller owns the transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Feedback,
    FeedbackTarget,
    Goal,
    LearningPlan,
    LearningPlanStep,
    Person,
    PupilGoal,
    Role,
)
from storage.policy import is_teacher, pupils_taught_by, teaches_pupil
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


# --- the teacher's look at the plans (/plannen): tops & tips --------------------------------

MAX_TEACHER_FEEDBACK = 500


@dataclass(frozen=True)
class PlanFeedback:
    """A top and/or tip on a plan, from a parent or a teacher."""

    top: str | None
    tip: str | None
    author_role: Role
    created_at: datetime


@dataclass(frozen=True)
class TeacherPlan:
    """One plan as a teacher sees it in /plannen."""

    plan: PlanView
    pupil_name: str
    feedback: tuple[PlanFeedback, ...]  # oldest first


@dataclass(frozen=True)
class TeacherPlanPage:
    entry: TeacherPlan | None
    offset: int  # of the plan shown (a page past the end shows the last one)
    total: int


def _plans_of_group(teacher_id: int, group_id: int) -> ColumnElement[bool]:
    return LearningPlan.pupil_id.in_(pupils_taught_by(teacher_id, group_id=group_id))


def _teacher_order() -> tuple[ColumnElement[Any], ...]:
    """The plans pupils worked on last come first."""
    return (LearningPlan.updated_at.desc(), LearningPlan.id.desc())


async def _teacher_plan(session: AsyncSession, plan: LearningPlan) -> TeacherPlan:
    pupil = await session.get(Person, plan.pupil_id)
    feedback = (
        await session.scalars(
            select(Feedback)
            .where(Feedback.learning_plan_id == plan.id)
            .order_by(Feedback.created_at, Feedback.id)
        )
    ).all()
    return TeacherPlan(
        plan=await _view(session, plan),
        pupil_name=pupil.display_name if pupil is not None else "",
        feedback=tuple(
            PlanFeedback(row.top, row.tip, row.author_role, row.created_at) for row in feedback
        ),
    )


async def plans_for_teacher(
    session: AsyncSession, *, teacher_id: int, group_id: int | None, offset: int
) -> TeacherPlanPage:
    """The plans of the pupils of one of the teacher's current groups, one per page, the
    most recently changed first. A group the teacher is not in (or none) shows nothing."""
    if group_id is None or not await is_teacher(session, teacher_id):
        return TeacherPlanPage(None, 0, 0)
    mine = _plans_of_group(teacher_id, group_id)
    total = await session.scalar(select(func.count(LearningPlan.id)).where(mine)) or 0
    if total == 0:
        return TeacherPlanPage(None, 0, 0)
    offset = min(max(offset, 0), total - 1)
    plan = await session.scalar(
        select(LearningPlan).where(mine).order_by(*_teacher_order()).offset(offset).limit(1)
    )
    entry = await _teacher_plan(session, plan) if plan is not None else None
    return TeacherPlanPage(entry, offset, total)


async def plan_for_teacher(
    session: AsyncSession, *, teacher_id: int, plan_id: int
) -> TeacherPlan | None:
    """One plan for a teacher; None unless its pupil is in one of the teacher's groups now."""
    plan = await session.get(LearningPlan, plan_id)
    if plan is None or not await teaches_pupil(
        session, teacher_id=teacher_id, pupil_id=plan.pupil_id
    ):
        return None
    return await _teacher_plan(session, plan)


async def plan_position_for_teacher(
    session: AsyncSession, *, teacher_id: int, group_id: int | None, plan_id: int
) -> int:
    """The page of a plan in the teacher's /plannen (0 when it is not there)."""
    if group_id is None or not await is_teacher(session, teacher_id):
        return 0
    # One group's plan ids are few, and reading them cannot disagree with the ordering.
    ids = (
        await session.scalars(
            select(LearningPlan.id)
            .where(_plans_of_group(teacher_id, group_id))
            .order_by(*_teacher_order())
        )
    ).all()
    return ids.index(plan_id) if plan_id in ids else 0


async def give_teacher_plan_feedback(
    session: AsyncSession, *, teacher_id: int, plan_id: int, top: str | None, tip: str | None
) -> Feedback | None:
    """A teacher's top and/or tip on a plan of one of their pupils; None (nothing saved) when
    the plan is gone, is not of a pupil the teacher teaches now, or nothing was said."""
    top = (top or "").strip()[:MAX_TEACHER_FEEDBACK] or None
    tip = (tip or "").strip()[:MAX_TEACHER_FEEDBACK] or None
    if top is None and tip is None:
        return None
    plan = await session.get(LearningPlan, plan_id)
    if plan is None or not await teaches_pupil(
        session, teacher_id=teacher_id, pupil_id=plan.pupil_id
    ):
        return None
    feedback = Feedback(
        author_id=teacher_id,
        author_role=Role.TEACHER,
        target=FeedbackTarget.PLAN,
        pupil_id=plan.pupil_id,
        learning_plan_id=plan.id,
        top=top,
        tip=tip,
    )
    session.add(feedback)
    await session.flush()
    return feedback
