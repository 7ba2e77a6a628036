"""Daily reflections: saving one, counting, and looking back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Date, Integer, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.goals import LIVE_STATUSES
from storage.models import (
    Goal,
    Group,
    LearningLine,
    Period,
    PupilGoal,
    Reflection,
    ReflectionGoal,
    WeekPlan,
    WeekPlanItem,
)
from storage.policy import current_groups_of


def _reflection_goals() -> Any:
    """The goals a reflection offers, as (id, text): the pupil's live goals of the current
    period (their group's own period that day, else the school's), this week's plan first, in
    plan order, then by learning line and goal.

    One statement, built once: every reflection starts with it, and the five queries it
    replaces (pupil, group, period, goals, plan) cost more to build and load than to run.
    """
    pupil_id = bindparam("pupil_id", type_=Integer)
    today = bindparam("today", type_=Date)
    group_id = (
        select(Group.id)
        .where(Group.id.in_(current_groups_of(pupil_id)))
        .order_by(Group.school_year.desc(), Group.id)
        .limit(1)
        .scalar_subquery()
    )
    period_id = (
        select(Period.id)
        .where(
            Period.school_id == bindparam("school_id", type_=Integer),
            or_(Period.group_id == group_id, Period.group_id.is_(None)),
            Period.starts_on <= today,
            Period.ends_on >= today,
        )
        .order_by(Period.group_id.is_(None), Period.starts_on.desc())
        .limit(1)
        .scalar_subquery()
    )
    planned = aliased(PupilGoal)
    # A goal's place in this week's plan: the plan lists goals by position, then as added.
    first_plan_item = (
        select(func.min(WeekPlanItem.id))
        .join(WeekPlan, WeekPlan.id == WeekPlanItem.week_plan_id)
        .join(planned, planned.id == WeekPlanItem.pupil_goal_id)
        .where(
            WeekPlan.pupil_id == pupil_id,
            WeekPlan.week_start == bindparam("week_start", type_=Date),
            planned.goal_id == Goal.id,
        )
        .correlate(Goal)
        .scalar_subquery()
    )
    return (
        select(Goal.id, Goal.text)
        .select_from(PupilGoal)
        .join(Goal, Goal.id == PupilGoal.goal_id)
        .join(LearningLine, LearningLine.id == Goal.learning_line_id)
        .where(
            PupilGoal.pupil_id == pupil_id,
            PupilGoal.period_id == period_id,
            PupilGoal.status.in_(LIVE_STATUSES),
        )
        .order_by(
            first_plan_item.is_(None),
            case((first_plan_item.is_not(None), Goal.position)),
            first_plan_item,
            LearningLine.position,
            Goal.position,
        )
    )


_REFLECTION_GOALS = _reflection_goals()


async def reflection_goals(
    session: AsyncSession, *, pupil_id: int, school_id: int, today: date, week_start: date
) -> list[tuple[int, str]]:
    """See `_reflection_goals`."""
    rows = await session.execute(
        _REFLECTION_GOALS,
        {"pupil_id": pupil_id, "school_id": school_id, "today": today, "week_start": week_start},
    )
    return [(goal_id, text) for goal_id, text in rows]


class ReflectionError(Exception):
    """A goal in the reflection is not one of the pupil's own (forged or stale button)."""


@dataclass(frozen=True)
class ReflectionAnswers:
    goal_ids: tuple[int, ...]
    other_work: str | None
    how_it_went: int
    effort: int
    wellbeing: int
    text: str | None = None
    voice_file_id: int | None = None
    next_step: str | None = None


async def own_goal_ids(
    session: AsyncSession, *, pupil_id: int, goal_ids: Sequence[int]
) -> set[int]:
    """The subset of goal ids that are live goals of this pupil (in any current period)."""
    if not goal_ids:
        return set()
    found = await session.scalars(_OWN_GOAL_IDS, {"pupil_id": pupil_id, "goal_ids": goal_ids})
    return set(found.all())


# Built once, as every reflection saved asks these (see `_reflection_goals`).
_OWN_GOAL_IDS = select(PupilGoal.goal_id).where(
    PupilGoal.pupil_id == bindparam("pupil_id"),
    PupilGoal.goal_id.in_(bindparam("goal_ids", expanding=True)),
    PupilGoal.status.in_(LIVE_STATUSES),
)
_TIMES_WORKED_ON = (
    select(func.count())
    .select_from(Reflection)
    .join(ReflectionGoal, ReflectionGoal.reflection_id == Reflection.id)
    .where(
        Reflection.pupil_id == bindparam("pupil_id"),
        ReflectionGoal.goal_id == bindparam("goal_id"),
        Reflection.on_date >= bindparam("since"),
        Reflection.on_date <= bindparam("until"),
    )
)


async def save_reflection(
    session: AsyncSession, *, pupil_id: int, on_date: date, answers: ReflectionAnswers
) -> Reflection:
    """A new row every time: a second reflection on one day adds to the first."""
    if set(answers.goal_ids) - await own_goal_ids(
        session, pupil_id=pupil_id, goal_ids=answers.goal_ids
    ):
        raise ReflectionError("goal not the pupil's own")
    return await save_checked_reflection(
        session, pupil_id=pupil_id, on_date=on_date, answers=answers
    )


async def save_checked_reflection(
    session: AsyncSession, *, pupil_id: int, on_date: date, answers: ReflectionAnswers
) -> Reflection:
    """`save_reflection` for goal ids the caller has just taken from `own_goal_ids` (the
    reflection dialogue does, to leave out a goal dropped while the pupil was answering):
    the same question is not asked of the database twice."""
    for scale in (answers.how_it_went, answers.effort, answers.wellbeing):
        if not 1 <= scale <= 4:
            raise ReflectionError(f"scale value {scale}")
    reflection = Reflection(
        pupil_id=pupil_id,
        on_date=on_date,
        how_it_went=answers.how_it_went,
        effort=answers.effort,
        wellbeing=answers.wellbeing,
        other_work=answers.other_work,
        text=answers.text,
        voice_file_id=answers.voice_file_id,
        next_step=answers.next_step,
    )
    session.add(reflection)
    await session.flush()
    for goal_id in dict.fromkeys(answers.goal_ids):
        session.add(ReflectionGoal(reflection_id=reflection.id, goal_id=goal_id))
    await session.flush()
    return reflection


async def times_worked_on(
    session: AsyncSession, *, pupil_id: int, goal_id: int, since: date, until: date
) -> int:
    """How many reflections between two dates (inclusive) name this goal."""
    count = await session.scalar(
        _TIMES_WORKED_ON,
        {"pupil_id": pupil_id, "goal_id": goal_id, "since": since, "until": until},
    )
    return int(count or 0)


async def has_reflected(session: AsyncSession, *, pupil_id: int, on_date: date) -> bool:
    found = await session.scalar(
        select(Reflection.id)
        .where(Reflection.pupil_id == pupil_id, Reflection.on_date == on_date)
        .limit(1)
    )
    return found is not None


@dataclass(frozen=True)
class ReflectionView:
    id: int
    on_date: date
    goals: tuple[str, ...]
    other_work: str | None
    how_it_went: int | None
    effort: int | None
    wellbeing: int | None
    next_step: str | None
    has_text: bool
    has_voice: bool


async def reflections_since(
    session: AsyncSession, *, pupil_id: int, since: date
) -> list[ReflectionView]:
    """The pupil's reflections from a date on, oldest first, with the goals they named."""
    reflections = (
        await session.scalars(
            select(Reflection)
            .where(Reflection.pupil_id == pupil_id, Reflection.on_date >= since)
            .order_by(Reflection.on_date, Reflection.created_at, Reflection.id)
        )
    ).all()
    goal_rows = (
        await session.execute(
            select(ReflectionGoal.reflection_id, Goal.text)
            .join(Goal, Goal.id == ReflectionGoal.goal_id)
            .where(ReflectionGoal.reflection_id.in_([r.id for r in reflections]))
            .order_by(Goal.position)
        )
    ).all()
    goals: dict[int, list[str]] = {}
    for reflection_id, text in goal_rows:
        goals.setdefault(reflection_id, []).append(text)
    return [
        ReflectionView(
            id=r.id,
            on_date=r.on_date,
            goals=tuple(goals.get(r.id, ())),
            other_work=r.other_work,
            how_it_went=r.how_it_went,
            effort=r.effort,
            wellbeing=r.wellbeing,
            next_step=r.next_step,
            has_text=bool(r.text),
            has_voice=r.voice_file_id is not None,
        )
        for r in reflections
    ]
