"""Daily reflections: saving one, counting, and looking back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import LIVE_STATUSES
from storage.models import Goal, PupilGoal, Reflection, ReflectionGoal


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
    return set(
        (
            await session.scalars(
                select(PupilGoal.goal_id).where(
                    PupilGoal.pupil_id == pupil_id,
                    PupilGoal.goal_id.in_(goal_ids),
                    PupilGoal.status.in_(LIVE_STATUSES),
                )
            )
        ).all()
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
        select(func.count())
        .select_from(Reflection)
        .join(ReflectionGoal, ReflectionGoal.reflection_id == Reflection.id)
        .where(
            Reflection.pupil_id == pupil_id,
            ReflectionGoal.goal_id == goal_id,
            Reflection.on_date >= since,
            Reflection.on_date <= until,
        )
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
