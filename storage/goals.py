"""Goals of a period: what a pupil may choose, what they chose, and where they stand.

Every function that takes a `pupil_id` also takes ids that came from a button; they are checked
here against that pupil (their group, their period, their goals), so forged callback data
naming another pupil's goal finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Assessment,
    ChosenBy,
    Goal,
    GoalMode,
    GoalPrerequisite,
    GoalSet,
    Group,
    LearningLine,
    Period,
    PeriodGoal,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    ReflectionGoal,
    RubricDescriptor,
    RubricLevel,
)
from storage.policy import current_groups_of, is_pupil, teaches_pupil

LIVE_STATUSES = (PupilGoalStatus.ACTIVE, PupilGoalStatus.PROPOSED)
# Without a rubric, a goal is assessed on this many levels (names come from the catalogs).
DEFAULT_LEVELS = 4
# A prerequisite counts as reached at this level of a rubric or the default scale, or when
# the pupil's goal for it is marked achieved.
REACHED_LEVEL = 3


@dataclass(frozen=True)
class PupilContext:
    """Where a pupil is now: their group, its goal mode, and the current period."""

    pupil_id: int
    school_id: int
    group_id: int | None
    group_name: str | None
    goal_mode: GoalMode
    period_id: int | None
    period_name: str | None
    period_starts_on: date | None
    period_ends_on: date | None


@dataclass(frozen=True)
class GoalView:
    id: int
    code: str
    text: str
    line_id: int
    line_name: str
    line_position: int
    position: int
    goal_set_id: int


@dataclass(frozen=True)
class ChosenGoal:
    pupil_goal_id: int
    goal: GoalView
    status: PupilGoalStatus
    chosen_by: ChosenBy


@dataclass(frozen=True)
class TierOption:
    tier: int
    goal: GoalView
    blocked_by: tuple[str, ...]  # codes of prerequisites not reached yet


@dataclass(frozen=True)
class LineOffer:
    """One learning line of a teacher-led period: up to three prepared goals (tiers)."""

    line_id: int
    line_name: str
    options: tuple[TierOption, ...]
    chosen_goal_id: int | None


def _goal_view(goal: Goal, line: LearningLine) -> GoalView:
    return GoalView(
        id=goal.id,
        code=goal.code,
        text=goal.text,
        line_id=line.id,
        line_name=line.name,
        line_position=line.position,
        position=goal.position,
        goal_set_id=goal.goal_set_id,
    )


async def pupil_context(session: AsyncSession, *, pupil_id: int, today: date) -> PupilContext:
    pupil = await session.get(Person, pupil_id)
    assert pupil is not None and is_pupil(pupil)
    group = await session.scalar(
        select(Group)
        .where(Group.id.in_(current_groups_of(pupil_id)))
        .order_by(Group.school_year.desc(), Group.id)
        .limit(1)
    )
    period = await current_period(
        session, school_id=pupil.school_id, group_id=group.id if group else None, today=today
    )
    return PupilContext(
        pupil_id=pupil_id,
        school_id=pupil.school_id,
        group_id=group.id if group else None,
        group_name=group.name if group else None,
        goal_mode=group.goal_mode if group else GoalMode.PUPIL_LED,
        period_id=period.id if period else None,
        period_name=period.name if period else None,
        period_starts_on=period.starts_on if period else None,
        period_ends_on=period.ends_on if period else None,
    )


async def current_period(
    session: AsyncSession, *, school_id: int, group_id: int | None, today: date
) -> Period | None:
    """The group's own period if it has one today, else the school-wide one."""
    return await session.scalar(
        select(Period)
        .where(
            Period.school_id == school_id,
            or_(Period.group_id == group_id, Period.group_id.is_(None)),
            Period.starts_on <= today,
            Period.ends_on >= today,
        )
        .order_by(Period.group_id.is_(None), Period.starts_on.desc())
        .limit(1)
    )


async def chosen_goals(
    session: AsyncSession,
    *,
    pupil_id: int,
    period_id: int,
    statuses: Sequence[PupilGoalStatus] = LIVE_STATUSES,
) -> list[ChosenGoal]:
    rows = (
        await session.execute(
            select(PupilGoal, Goal, LearningLine)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(
                PupilGoal.pupil_id == pupil_id,
                PupilGoal.period_id == period_id,
                PupilGoal.status.in_(statuses),
            )
            .order_by(LearningLine.position, Goal.position)
        )
    ).all()
    return [
        ChosenGoal(pupil_goal.id, _goal_view(goal, line), pupil_goal.status, pupil_goal.chosen_by)
        for pupil_goal, goal, line in rows
    ]


async def reached_goal_ids(session: AsyncSession, *, pupil_id: int) -> set[int]:
    """Goals the pupil has reached: achieved, or assessed at the 'reached' level or above."""
    achieved = set(
        (
            await session.scalars(
                select(PupilGoal.goal_id).where(
                    PupilGoal.pupil_id == pupil_id,
                    PupilGoal.status == PupilGoalStatus.ACHIEVED,
                )
            )
        ).all()
    )
    assessed = set(
        (
            await session.scalars(
                select(Assessment.goal_id)
                .outerjoin(RubricLevel, RubricLevel.id == Assessment.rubric_level_id)
                .where(
                    Assessment.pupil_id == pupil_id,
                    or_(
                        RubricLevel.position >= REACHED_LEVEL,
                        Assessment.level >= REACHED_LEVEL,
                    ),
                )
            )
        ).all()
    )
    return achieved | assessed


async def _blocked_by(
    session: AsyncSession, *, goal_ids: Sequence[int], reached: set[int]
) -> dict[int, tuple[str, ...]]:
    rows = (
        await session.execute(
            select(GoalPrerequisite.goal_id, Goal.id, Goal.code)
            .join(Goal, Goal.id == GoalPrerequisite.requires_goal_id)
            .where(GoalPrerequisite.goal_id.in_(goal_ids))
            .order_by(Goal.position)
        )
    ).all()
    blocked: dict[int, list[str]] = {}
    for goal_id, required_id, required_code in rows:
        if required_id not in reached:
            blocked.setdefault(goal_id, []).append(required_code)
    return {goal_id: tuple(codes) for goal_id, codes in blocked.items()}


async def teacher_offer(session: AsyncSession, *, context: PupilContext) -> list[LineOffer]:
    """The goals the teacher prepared for this period, per line, with the pupil's choice."""
    if context.period_id is None or context.group_id is None:
        return []
    rows = (
        await session.execute(
            select(PeriodGoal.tier, Goal, LearningLine)
            .join(Goal, Goal.id == PeriodGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(
                PeriodGoal.period_id == context.period_id,
                PeriodGoal.group_id == context.group_id,
            )
            .order_by(LearningLine.position, LearningLine.id, PeriodGoal.tier)
        )
    ).all()
    reached = await reached_goal_ids(session, pupil_id=context.pupil_id)
    blocked = await _blocked_by(session, goal_ids=[goal.id for _, goal, _ in rows], reached=reached)
    chosen = {
        choice.goal.id
        for choice in await chosen_goals(
            session, pupil_id=context.pupil_id, period_id=context.period_id
        )
    }
    lines: dict[int, tuple[LearningLine, list[TierOption]]] = {}
    for tier, goal, line in rows:
        lines.setdefault(line.id, (line, []))[1].append(
            TierOption(tier, _goal_view(goal, line), blocked.get(goal.id, ()))
        )
    return [
        LineOffer(
            line.id,
            line.name,
            tuple(options),
            next((option.goal.id for option in options if option.goal.id in chosen), None),
        )
        for line, options in lines.values()
    ]


class GoalChoiceError(Exception):
    """The goal is not one this pupil may choose now (forged or stale button)."""


async def choose_offered_goal(
    session: AsyncSession, *, context: PupilContext, goal_id: int
) -> ChosenGoal:
    """Teacher-led: take one of the prepared tiers of a line; another tier of that line is
    replaced, so the pupil has one goal per line."""
    offer = await teacher_offer(session, context=context)
    line = next((line for line in offer if any(o.goal.id == goal_id for o in line.options)), None)
    if line is None or context.period_id is None:
        raise GoalChoiceError(goal_id)
    other_tiers = [o.goal.id for o in line.options if o.goal.id != goal_id]
    if other_tiers:
        await session.execute(
            update(PupilGoal)
            .where(
                PupilGoal.pupil_id == context.pupil_id,
                PupilGoal.period_id == context.period_id,
                PupilGoal.goal_id.in_(other_tiers),
                PupilGoal.status.in_(LIVE_STATUSES),
            )
            .values(status=PupilGoalStatus.DROPPED)
        )
    return await _upsert_choice(
        session,
        context=context,
        goal_id=goal_id,
        status=PupilGoalStatus.ACTIVE,
        chosen_by=ChosenBy.PUPIL,
    )


async def propose_goal(session: AsyncSession, *, context: PupilContext, goal_id: int) -> ChosenGoal:
    """Pupil-led (or a harder goal than offered): the pupil proposes, a teacher confirms."""
    if context.period_id is None or not await goal_available_to(
        session, school_id=context.school_id, goal_id=goal_id
    ):
        raise GoalChoiceError(goal_id)
    return await _upsert_choice(
        session,
        context=context,
        goal_id=goal_id,
        status=PupilGoalStatus.PROPOSED,
        chosen_by=ChosenBy.PUPIL,
    )


async def _upsert_choice(
    session: AsyncSession,
    *,
    context: PupilContext,
    goal_id: int,
    status: PupilGoalStatus,
    chosen_by: ChosenBy,
) -> ChosenGoal:
    assert context.period_id is not None
    pupil_goal = await session.scalar(
        select(PupilGoal).where(
            PupilGoal.pupil_id == context.pupil_id,
            PupilGoal.period_id == context.period_id,
            PupilGoal.goal_id == goal_id,
        )
    )
    if pupil_goal is None:
        pupil_goal = PupilGoal(
            pupil_id=context.pupil_id,
            period_id=context.period_id,
            goal_id=goal_id,
            chosen_by=chosen_by,
            status=status,
        )
        session.add(pupil_goal)
    elif pupil_goal.status not in (PupilGoalStatus.ACTIVE, PupilGoalStatus.ACHIEVED):
        pupil_goal.status = status
        pupil_goal.chosen_by = chosen_by
    await session.flush()
    goal, line = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(Goal.id == goal_id)
        )
    ).one()
    return ChosenGoal(pupil_goal.id, _goal_view(goal, line), pupil_goal.status, chosen_by)


async def own_pupil_goal(
    session: AsyncSession, *, pupil_id: int, pupil_goal_id: int
) -> PupilGoal | None:
    """One of the pupil's live goals, or None for anyone else's (or a dropped one)."""
    pupil_goal = await session.get(PupilGoal, pupil_goal_id)
    if (
        pupil_goal is None
        or pupil_goal.pupil_id != pupil_id
        or pupil_goal.status not in LIVE_STATUSES
    ):
        return None
    return pupil_goal


async def goal_available_to(session: AsyncSession, *, school_id: int, goal_id: int) -> bool:
    found = await session.scalar(
        select(Goal.id)
        .join(GoalSet, GoalSet.id == Goal.goal_set_id)
        .where(Goal.id == goal_id, GoalSet.school_id == school_id)
    )
    return found is not None


async def _pupil_goal_with_goal(
    session: AsyncSession, pupil_goal_id: int
) -> tuple[PupilGoal, GoalView] | None:
    row = (
        await session.execute(
            select(PupilGoal, Goal, LearningLine)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(PupilGoal.id == pupil_goal_id)
        )
    ).one_or_none()
    if row is None:
        return None
    pupil_goal, goal, line = row
    return pupil_goal, _goal_view(goal, line)


async def open_proposal(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int
) -> tuple[str, GoalView] | None:
    """(The pupil's name, the goal) of a proposal this teacher may still decide; None once it
    is decided, withdrawn, or the pupil is no longer theirs (the message is then not needed)."""
    found = await _pupil_goal_with_goal(session, pupil_goal_id)
    if found is None or found[0].status is not PupilGoalStatus.PROPOSED:
        return None
    pupil_goal, goal = found
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil_goal.pupil_id):
        return None
    pupil = await session.get(Person, pupil_goal.pupil_id)
    return (pupil.display_name if pupil else ""), goal


async def decision_on(
    session: AsyncSession, *, pupil_id: int, pupil_goal_id: int
) -> tuple[PupilGoalStatus, GoalView] | None:
    """What became of the pupil's own proposal (confirmed or not yet), for telling them."""
    found = await _pupil_goal_with_goal(session, pupil_goal_id)
    if found is None or found[0].pupil_id != pupil_id:
        return None
    return found[0].status, found[1]


async def decide_proposal(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int, approve: bool
) -> tuple[int, GoalView] | None:
    """A teacher of the pupil's group confirms or declines a proposed goal.

    Returns (pupil id, goal) when decided, None when this teacher may not decide it or it was
    decided already (a second tap, or another mentor was quicker)."""
    found = await _pupil_goal_with_goal(session, pupil_goal_id)
    if found is None:
        return None
    pupil_goal, goal = found
    if pupil_goal.status is not PupilGoalStatus.PROPOSED:
        return None
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil_goal.pupil_id):
        return None
    pupil_goal.status = PupilGoalStatus.ACTIVE if approve else PupilGoalStatus.REJECTED
    pupil_goal.confirmed_by_id = teacher_id
    await session.flush()
    return pupil_goal.pupil_id, goal


async def goal_sets_of(session: AsyncSession, *, school_id: int) -> list[GoalSet]:
    return list(
        (
            await session.scalars(
                select(GoalSet).where(GoalSet.school_id == school_id).order_by(GoalSet.name)
            )
        ).all()
    )


async def lines_of(
    session: AsyncSession, *, school_id: int, goal_set_id: int
) -> list[LearningLine]:
    return list(
        (
            await session.scalars(
                select(LearningLine)
                .join(GoalSet, GoalSet.id == LearningLine.goal_set_id)
                .where(GoalSet.id == goal_set_id, GoalSet.school_id == school_id)
                .order_by(LearningLine.position)
            )
        ).all()
    )


@dataclass(frozen=True)
class GoalChoice:
    goal: GoalView
    blocked_by: tuple[str, ...]
    chosen: bool


async def goals_of_line(
    session: AsyncSession, *, context: PupilContext, line_id: int
) -> list[GoalChoice]:
    rows = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(GoalSet, GoalSet.id == Goal.goal_set_id)
            .where(LearningLine.id == line_id, GoalSet.school_id == context.school_id)
            .order_by(Goal.position)
        )
    ).all()
    return await _choices(session, context=context, rows=rows)


async def search_goals(
    session: AsyncSession, *, context: PupilContext, words: str, limit: int = 8
) -> list[GoalChoice]:
    """Goals whose text or code contains every typed word (case-insensitive)."""
    terms = [term for term in words.lower().split() if len(term) >= 2][:5]
    if not terms:
        return []
    conditions = [
        or_(func.lower(Goal.text).contains(term), func.lower(Goal.code) == term) for term in terms
    ]
    rows = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(GoalSet, GoalSet.id == Goal.goal_set_id)
            .where(GoalSet.school_id == context.school_id, and_(*conditions))
            .order_by(GoalSet.name, LearningLine.position, Goal.position)
            .limit(limit)
        )
    ).all()
    return await _choices(session, context=context, rows=rows)


async def _choices(
    session: AsyncSession, *, context: PupilContext, rows: Sequence[tuple[Goal, LearningLine]]
) -> list[GoalChoice]:
    reached = await reached_goal_ids(session, pupil_id=context.pupil_id)
    blocked = await _blocked_by(session, goal_ids=[goal.id for goal, _ in rows], reached=reached)
    chosen: set[int] = set()
    if context.period_id is not None:
        chosen = {
            choice.goal.id
            for choice in await chosen_goals(
                session, pupil_id=context.pupil_id, period_id=context.period_id
            )
        }
    return [
        GoalChoice(_goal_view(goal, line), blocked.get(goal.id, ()), goal.id in chosen)
        for goal, line in rows
    ]


@dataclass(frozen=True)
class LevelView:
    id: int | None  # None: the default scale of a goal set without a rubric
    position: int
    name: str | None  # None: use the translated default name for this position
    descriptor: str | None


async def levels_for(session: AsyncSession, *, goal_id: int) -> list[LevelView]:
    goal = await session.get(Goal, goal_id)
    assert goal is not None
    levels = (
        await session.execute(
            select(RubricLevel, RubricDescriptor.text)
            .outerjoin(
                RubricDescriptor,
                and_(
                    RubricDescriptor.rubric_level_id == RubricLevel.id,
                    RubricDescriptor.goal_id == goal_id,
                ),
            )
            .where(RubricLevel.goal_set_id == goal.goal_set_id)
            .order_by(RubricLevel.position)
        )
    ).all()
    if not levels:
        return [LevelView(None, position, None, None) for position in range(1, DEFAULT_LEVELS + 1)]
    return [LevelView(level.id, level.position, level.name, text) for level, text in levels]


async def record_self_assessment(
    session: AsyncSession, *, pupil_id: int, pupil_goal_id: int, position: int
) -> LevelView | None:
    """The pupil says where they stand on one of their own goals; None if not theirs."""
    pupil_goal = await own_pupil_goal(session, pupil_id=pupil_id, pupil_goal_id=pupil_goal_id)
    if pupil_goal is None:
        return None
    levels = await levels_for(session, goal_id=pupil_goal.goal_id)
    level = next((level for level in levels if level.position == position), None)
    if level is None:
        return None
    session.add(
        Assessment(
            pupil_id=pupil_id,
            goal_id=pupil_goal.goal_id,
            rubric_level_id=level.id,
            level=None if level.id is not None else position,
            by_role=ChosenBy.PUPIL,
            assessor_id=pupil_id,
        )
    )
    await session.flush()
    return level


@dataclass(frozen=True)
class GoalProgress:
    choice: ChosenGoal
    self_level: int | None
    self_level_name: str | None
    teacher_level: int | None
    teacher_level_name: str | None
    days_worked: int


async def progress_of(
    session: AsyncSession, *, context: PupilContext, since: date
) -> list[GoalProgress]:
    """Each goal of the period with the latest self and teacher level and days worked on."""
    if context.period_id is None:
        return []
    choices = await chosen_goals(session, pupil_id=context.pupil_id, period_id=context.period_id)
    result = []
    for choice in choices:
        latest: dict[ChosenBy, tuple[int | None, str | None]] = {}
        for by_role in ChosenBy:
            row = (
                await session.execute(
                    select(Assessment.level, RubricLevel.position, RubricLevel.name)
                    .outerjoin(RubricLevel, RubricLevel.id == Assessment.rubric_level_id)
                    .where(
                        Assessment.pupil_id == context.pupil_id,
                        Assessment.goal_id == choice.goal.id,
                        Assessment.by_role == by_role,
                    )
                    .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                    .limit(1)
                )
            ).one_or_none()
            if row is not None:
                level, position, name = row
                latest[by_role] = (position or level, name)
        days = await session.scalar(
            select(func.count(func.distinct(Reflection.on_date)))
            .join(ReflectionGoal, ReflectionGoal.reflection_id == Reflection.id)
            .where(
                Reflection.pupil_id == context.pupil_id,
                ReflectionGoal.goal_id == choice.goal.id,
                Reflection.on_date >= since,
            )
        )
        self_level = latest.get(ChosenBy.PUPIL, (None, None))
        teacher_level = latest.get(ChosenBy.TEACHER, (None, None))
        result.append(
            GoalProgress(
                choice, self_level[0], self_level[1], teacher_level[0], teacher_level[1], days or 0
            )
        )
    return result
