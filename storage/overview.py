"""The teacher's class overview: where each pupil of a group stands per learning line, who
has not reflected this week, wellbeing signals, open goal proposals; the teacher's active
group; and teacher assessments (a rubric level given to a pupil for a goal).

Who may see what is decided by `storage.policy`: every function takes the teacher's id and
answers only about groups the teacher is in now, so a forged group or pupil id finds nothing.
Wellbeing signals are for teachers only: nothing here is offered to a pupil or parent view.

The overview runs a fixed number of queries whatever the size of the group (no query per
pupil): a teacher opens it on a phone between lessons, on a database with a year of data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import (
    DEFAULT_LEVELS,
    GoalView,
    LevelView,
    current_period,
    levels_for,
    pupil_context,
)
from storage.models import (
    Assessment,
    ChosenBy,
    Goal,
    Group,
    LearningLine,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    RubricLevel,
)
from storage.observations import PupilRef, pupils_of_teacher
from storage.policy import groups_taught_by, teaches_pupil

# Wellbeing is answered 1 (😟) to 4 (😀); 2 (😐) and below count as low.
LOW_WELLBEING = 2
# This many low answers in a row, the latest ones, put a pupil on the teacher's list.
LOW_ANSWERS_IN_A_ROW = 3
# Only answers of the last four weeks count: a signal is about how a pupil is doing now, and
# the bound lets the index on (pupil, date) skip the rest of the year.
WELLBEING_WINDOW_DAYS = 28
# Goals that count for "where a pupil stands": the ones the pupil works on or finished
# (a proposal is listed on its own until a teacher confirms it).
STANDING_STATUSES = (PupilGoalStatus.ACTIVE, PupilGoalStatus.ACHIEVED)
ACTIVE_GROUP_KEY = "active_group_id"


# --- the active group ---------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRef:
    id: int
    name: str


async def groups_of_teacher(session: AsyncSession, *, teacher_id: int) -> list[GroupRef]:
    """The teacher's current groups, by name; empty for anyone not a teacher."""
    rows = await session.execute(
        select(Group.id, Group.name)
        .where(Group.id.in_(groups_taught_by(teacher_id)))
        .order_by(Group.name, Group.id)
    )
    return [GroupRef(group_id, name) for group_id, name in rows]


async def active_group(session: AsyncSession, *, teacher_id: int) -> GroupRef | None:
    """The group the teacher chose with /groep, else their first group; None without groups.

    A stored choice of a group the teacher has left (a new school year) falls back quietly.
    """
    groups = await groups_of_teacher(session, teacher_id=teacher_id)
    if not groups:
        return None
    teacher = await session.get(Person, teacher_id)
    assert teacher is not None
    chosen = (teacher.preferences or {}).get(ACTIVE_GROUP_KEY)
    return next((group for group in groups if group.id == chosen), groups[0])


async def set_active_group(
    session: AsyncSession, *, teacher_id: int, group_id: int
) -> GroupRef | None:
    """Make one of the teacher's own groups the active one; None (nothing changed) otherwise."""
    group = next(
        (g for g in await groups_of_teacher(session, teacher_id=teacher_id) if g.id == group_id),
        None,
    )
    if group is None:
        return None
    teacher = await session.get(Person, teacher_id)
    assert teacher is not None
    # A new dict, not an in-place change: the JSON column only notices assignment.
    teacher.preferences = {**(teacher.preferences or {}), ACTIVE_GROUP_KEY: group.id}
    await session.flush()
    return group


async def active_group_id(session: AsyncSession, *, teacher_id: int) -> int | None:
    """Only the id, for queries that list pupils of the active group."""
    group = await active_group(session, teacher_id=teacher_id)
    return group.id if group is not None else None


# --- the overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineColumn:
    """A learning line the group works on this period, with the scale its goal set uses."""

    id: int
    name: str
    goal_set_id: int
    # Level names by position (1 first); None where the default scale's name is meant.
    scale: tuple[str | None, ...]


@dataclass(frozen=True)
class Standing:
    """Where one pupil stands on one line: their goal on it and its latest level."""

    goal_code: str
    goal_text: str
    position: int | None  # None: a goal, but no level given yet
    by_teacher: bool  # the teacher's level; else the pupil's own (or none)
    levels: int  # how many levels the scale has


@dataclass(frozen=True)
class PupilStanding:
    pupil: PupilRef
    cells: dict[int, Standing]  # line id -> standing; a line without a goal is absent


@dataclass(frozen=True)
class WellbeingSignal:
    pupil: PupilRef
    answers: tuple[int, ...]  # newest first
    last_on: date


@dataclass(frozen=True)
class Proposal:
    pupil_goal_id: int
    pupil: PupilRef
    goal: GoalView


@dataclass(frozen=True)
class ClassOverview:
    group: GroupRef
    period_name: str | None
    week_start: date
    lines: list[LineColumn]
    pupils: list[PupilStanding]
    not_reflected: list[PupilRef]
    wellbeing: list[WellbeingSignal]
    proposals: list[Proposal]


def _view(goal: Goal, line: LearningLine) -> GoalView:
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


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def class_overview(
    session: AsyncSession, *, teacher_id: int, group_id: int, today: date
) -> ClassOverview | None:
    """Everything the overview shows for one of the teacher's groups; None for any other."""
    group = next(
        (g for g in await groups_of_teacher(session, teacher_id=teacher_id) if g.id == group_id),
        None,
    )
    if group is None:
        return None
    pupils = await pupils_of_teacher(session, teacher_id=teacher_id, group_id=group_id)
    teacher = await session.get(Person, teacher_id)
    assert teacher is not None
    period = await current_period(
        session, school_id=teacher.school_id, group_id=group_id, today=today
    )
    lines: list[LineColumn] = []
    standings = [PupilStanding(pupil, {}) for pupil in pupils]
    if period is not None and pupils:
        lines, standings = await _standings(session, pupils=pupils, period_id=period.id)
    week_start = monday_of(today)
    return ClassOverview(
        group=group,
        period_name=period.name if period is not None else None,
        week_start=week_start,
        lines=lines,
        pupils=standings,
        not_reflected=await not_reflected(session, pupils=pupils, since=week_start, until=today),
        wellbeing=await wellbeing_signals(session, pupils=pupils, today=today),
        proposals=await open_proposals(session, pupils=pupils),
    )


async def _standings(
    session: AsyncSession, *, pupils: Sequence[PupilRef], period_id: int
) -> tuple[list[LineColumn], list[PupilStanding]]:
    pupil_ids = [pupil.id for pupil in pupils]
    goal_rows = (
        await session.execute(
            select(PupilGoal.pupil_id, Goal, LearningLine)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(
                PupilGoal.pupil_id.in_(pupil_ids),
                PupilGoal.period_id == period_id,
                PupilGoal.status.in_(STANDING_STATUSES),
            )
            .order_by(Goal.goal_set_id, LearningLine.position, LearningLine.id, Goal.position)
        )
    ).all()
    if not goal_rows:
        return [], [PupilStanding(pupil, {}) for pupil in pupils]
    goal_ids = {goal.id for _, goal, _ in goal_rows}
    goal_set_ids = {goal.goal_set_id for _, goal, _ in goal_rows}
    rubric: dict[int, dict[int, str]] = {}
    for goal_set_id, position, name in await session.execute(
        select(RubricLevel.goal_set_id, RubricLevel.position, RubricLevel.name).where(
            RubricLevel.goal_set_id.in_(goal_set_ids)
        )
    ):
        rubric.setdefault(goal_set_id, {})[position] = name
    scales: dict[int, tuple[str | None, ...]] = {
        goal_set_id: tuple(rubric[goal_set_id][p] for p in sorted(rubric[goal_set_id]))
        if goal_set_id in rubric
        else (None,) * DEFAULT_LEVELS
        for goal_set_id in goal_set_ids
    }
    # The latest level per pupil, goal and assessor kind, in one query (a window function;
    # SQLite has them since 3.25).
    ranked = (
        select(
            Assessment.pupil_id,
            Assessment.goal_id,
            Assessment.by_role,
            Assessment.level,
            Assessment.rubric_level_id,
            Assessment.assessed_at,
            Assessment.id,
            func.row_number()
            .over(
                partition_by=(Assessment.pupil_id, Assessment.goal_id, Assessment.by_role),
                order_by=(Assessment.assessed_at.desc(), Assessment.id.desc()),
            )
            .label("rank"),
        )
        .where(Assessment.pupil_id.in_(pupil_ids), Assessment.goal_id.in_(goal_ids))
        .subquery()
    )
    # (pupil, goal, by) -> (position, sort key: when and id of the assessment)
    latest: dict[tuple[int, int, ChosenBy], tuple[int | None, tuple[float, int]]] = {}
    for (
        pupil_id,
        goal_id,
        by_role,
        level,
        position,
        assessed_at,
        assessment_id,
    ) in await session.execute(
        select(
            ranked.c.pupil_id,
            ranked.c.goal_id,
            ranked.c.by_role,
            ranked.c.level,
            RubricLevel.position,
            ranked.c.assessed_at,
            ranked.c.id,
        )
        .outerjoin(RubricLevel, RubricLevel.id == ranked.c.rubric_level_id)
        .where(ranked.c.rank == 1)
    ):
        latest[(pupil_id, goal_id, ChosenBy(by_role))] = (
            position or level,
            (assessed_at.timestamp(), assessment_id),
        )

    lines: dict[int, LineColumn] = {}
    cells: dict[int, dict[int, tuple[tuple[int, float, int, int], Standing]]] = {}
    for pupil_id, goal, line in goal_rows:
        scale = scales[line.goal_set_id]
        lines.setdefault(line.id, LineColumn(line.id, line.name, line.goal_set_id, scale))
        teacher_level = latest.get((pupil_id, goal.id, ChosenBy.TEACHER))
        chosen = teacher_level or latest.get((pupil_id, goal.id, ChosenBy.PUPIL))
        standing = Standing(
            goal_code=goal.code,
            goal_text=goal.text,
            position=chosen[0] if chosen else None,
            by_teacher=teacher_level is not None,
            levels=len(scale),
        )
        # Several goals on one line: a teacher's level before the pupil's own, then the goal
        # assessed last tells where the pupil stands, else the furthest goal on the line.
        when, assessment_id = chosen[1] if chosen else (0.0, 0)
        rank = 2 if teacher_level else 1 if chosen else 0
        key = (rank, when, assessment_id, goal.position)
        pupil_cells = cells.setdefault(pupil_id, {})
        current = pupil_cells.get(line.id)
        if current is None or key > current[0]:
            pupil_cells[line.id] = (key, standing)
    result = [
        PupilStanding(
            pupil, {line_id: standing for line_id, (_, standing) in cells.get(pupil.id, {}).items()}
        )
        for pupil in pupils
    ]
    return list(lines.values()), result


async def not_reflected(
    session: AsyncSession, *, pupils: Sequence[PupilRef], since: date, until: date
) -> list[PupilRef]:
    """The pupils (of a list the caller may see) without a reflection from `since` to `until`."""
    if not pupils:
        return []
    reflected = set(
        (
            await session.scalars(
                select(Reflection.pupil_id)
                .where(
                    Reflection.pupil_id.in_([pupil.id for pupil in pupils]),
                    Reflection.on_date >= since,
                    Reflection.on_date <= until,
                )
                .distinct()
            )
        ).all()
    )
    return [pupil for pupil in pupils if pupil.id not in reflected]


async def wellbeing_signals(
    session: AsyncSession, *, pupils: Sequence[PupilRef], today: date
) -> list[WellbeingSignal]:
    """Pupils whose last three wellbeing answers (of the last four weeks) were all low.

    For teachers only: the caller passes pupils the teacher may see.
    """
    if not pupils:
        return []
    ranked = (
        select(
            Reflection.pupil_id,
            Reflection.wellbeing,
            Reflection.on_date,
            func.row_number()
            .over(
                partition_by=Reflection.pupil_id,
                order_by=(Reflection.on_date.desc(), Reflection.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Reflection.pupil_id.in_([pupil.id for pupil in pupils]),
            Reflection.on_date > today - timedelta(days=WELLBEING_WINDOW_DAYS),
            Reflection.on_date <= today,
            Reflection.wellbeing.is_not(None),
        )
        .subquery()
    )
    answers: dict[int, list[tuple[int, date]]] = {}
    for pupil_id, wellbeing, on_date in await session.execute(
        select(ranked.c.pupil_id, ranked.c.wellbeing, ranked.c.on_date)
        .where(ranked.c.rank <= LOW_ANSWERS_IN_A_ROW)
        .order_by(ranked.c.pupil_id, ranked.c.rank)
    ):
        answers.setdefault(pupil_id, []).append((wellbeing, on_date))
    signals = []
    for pupil in pupils:
        latest = answers.get(pupil.id, [])
        if len(latest) == LOW_ANSWERS_IN_A_ROW and all(w <= LOW_WELLBEING for w, _ in latest):
            signals.append(WellbeingSignal(pupil, tuple(w for w, _ in latest), latest[0][1]))
    return signals


async def open_proposals(session: AsyncSession, *, pupils: Sequence[PupilRef]) -> list[Proposal]:
    """Goals these pupils proposed that no teacher has confirmed or declined yet."""
    if not pupils:
        return []
    by_id = {pupil.id: pupil for pupil in pupils}
    rows = await session.execute(
        select(PupilGoal.id, PupilGoal.pupil_id, Goal, LearningLine)
        .join(Goal, Goal.id == PupilGoal.goal_id)
        .join(LearningLine, LearningLine.id == Goal.learning_line_id)
        .where(
            PupilGoal.pupil_id.in_(list(by_id)),
            PupilGoal.status == PupilGoalStatus.PROPOSED,
        )
        .order_by(PupilGoal.created_at, PupilGoal.id)
    )
    return [
        Proposal(pupil_goal_id, by_id[pupil_id], _view(goal, line))
        for pupil_goal_id, pupil_id, goal, line in rows
    ]


# --- teacher assessments --------------------------------------------------------------------


@dataclass(frozen=True)
class GoalToAssess:
    pupil_goal_id: int
    goal: GoalView
    own_position: int | None
    teacher_position: int | None
    # The scale's level names by position; None where the default scale's name is meant.
    level_names: tuple[str | None, ...]


async def goals_to_assess(
    session: AsyncSession, *, teacher_id: int, pupil_id: int, today: date
) -> list[GoalToAssess] | None:
    """The pupil's goals of this period with the latest levels; None if not the teacher's."""
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil_id):
        return None
    context = await pupil_context(session, pupil_id=pupil_id, today=today)
    if context.period_id is None:
        return []
    rows = (
        await session.execute(
            select(PupilGoal.id, Goal, LearningLine)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(
                PupilGoal.pupil_id == pupil_id,
                PupilGoal.status.in_((PupilGoalStatus.ACTIVE, PupilGoalStatus.ACHIEVED)),
                PupilGoal.period_id == context.period_id,
            )
            .order_by(LearningLine.position, Goal.position)
        )
    ).all()
    result = []
    for pupil_goal_id, goal, line in rows:
        own, teacher = await _latest_positions(session, pupil_id=pupil_id, goal_id=goal.id)
        names = tuple(level.name for level in await levels_for(session, goal_id=goal.id))
        result.append(GoalToAssess(pupil_goal_id, _view(goal, line), own, teacher, names))
    return result


async def _latest_positions(
    session: AsyncSession, *, pupil_id: int, goal_id: int
) -> tuple[int | None, int | None]:
    positions: dict[ChosenBy, int | None] = {}
    for by_role in ChosenBy:
        row = (
            await session.execute(
                select(Assessment.level, RubricLevel.position)
                .outerjoin(RubricLevel, RubricLevel.id == Assessment.rubric_level_id)
                .where(
                    Assessment.pupil_id == pupil_id,
                    Assessment.goal_id == goal_id,
                    Assessment.by_role == by_role,
                )
                .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                .limit(1)
            )
        ).one_or_none()
        positions[by_role] = (row[1] or row[0]) if row is not None else None
    return positions[ChosenBy.PUPIL], positions[ChosenBy.TEACHER]


@dataclass(frozen=True)
class AssessmentTarget:
    """A pupil's goal a teacher may give a level for, with the levels to choose from."""

    pupil: PupilRef
    pupil_goal_id: int
    goal: GoalView
    levels: list[LevelView]
    own_position: int | None
    teacher_position: int | None


async def assessment_target(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int
) -> AssessmentTarget | None:
    """The goal behind a button, if it belongs to a pupil this teacher teaches now."""
    row = (
        await session.execute(
            select(PupilGoal, Goal, LearningLine, Person)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(Person, Person.id == PupilGoal.pupil_id)
            .where(PupilGoal.id == pupil_goal_id)
        )
    ).one_or_none()
    if row is None:
        return None
    pupil_goal, goal, line, pupil = row
    if pupil_goal.status not in (PupilGoalStatus.ACTIVE, PupilGoalStatus.ACHIEVED):
        return None
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil.id):
        return None
    own, teacher = await _latest_positions(session, pupil_id=pupil.id, goal_id=goal.id)
    return AssessmentTarget(
        PupilRef(pupil.id, pupil.display_name),
        pupil_goal.id,
        _view(goal, line),
        await levels_for(session, goal_id=goal.id),
        own,
        teacher,
    )


async def record_teacher_assessment(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int, position: int
) -> tuple[AssessmentTarget, LevelView, int] | None:
    """The teacher gives a level; None (nothing saved) for a goal or level not theirs to give.

    Returns the target, the level and the new assessment's id (for a note added after).
    """
    target = await assessment_target(session, teacher_id=teacher_id, pupil_goal_id=pupil_goal_id)
    if target is None:
        return None
    level = next((level for level in target.levels if level.position == position), None)
    if level is None:
        return None
    assessment = Assessment(
        pupil_id=target.pupil.id,
        goal_id=target.goal.id,
        rubric_level_id=level.id,
        level=None if level.id is not None else position,
        by_role=ChosenBy.TEACHER,
        assessor_id=teacher_id,
    )
    session.add(assessment)
    await session.flush()
    return target, level, assessment.id


async def add_assessment_note(
    session: AsyncSession, *, teacher_id: int, assessment_id: int, note: str
) -> bool:
    """A short explanation with the teacher's own, latest assessment."""
    assessment = await session.get(Assessment, assessment_id)
    if assessment is None or assessment.assessor_id != teacher_id:
        return False
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=assessment.pupil_id):
        return False
    assessment.note = note
    await session.flush()
    return True


# --- adjusting a pupil's proposal -----------------------------------------------------------


@dataclass(frozen=True)
class ProposalChoice:
    """A proposal a teacher may adjust, with the other goals of its learning line."""

    proposal: Proposal
    alternatives: list[GoalView]


async def _open_proposal(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int
) -> tuple[PupilGoal, Proposal] | None:
    row = (
        await session.execute(
            select(PupilGoal, Goal, LearningLine, Person)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(Person, Person.id == PupilGoal.pupil_id)
            .where(PupilGoal.id == pupil_goal_id)
        )
    ).one_or_none()
    if row is None:
        return None
    pupil_goal, goal, line, pupil = row
    if pupil_goal.status is not PupilGoalStatus.PROPOSED:
        return None
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil.id):
        return None
    return pupil_goal, Proposal(
        pupil_goal.id, PupilRef(pupil.id, pupil.display_name), _view(goal, line)
    )


async def proposal_choice(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int
) -> ProposalChoice | None:
    """An open proposal of the teacher's pupil and what else its line offers; else None."""
    found = await _open_proposal(session, teacher_id=teacher_id, pupil_goal_id=pupil_goal_id)
    if found is None:
        return None
    _pupil_goal, proposal = found
    rows = await session.execute(
        select(Goal, LearningLine)
        .join(LearningLine, LearningLine.id == Goal.learning_line_id)
        .where(Goal.learning_line_id == proposal.goal.line_id, Goal.id != proposal.goal.id)
        .order_by(Goal.position, Goal.id)
    )
    return ProposalChoice(proposal, [_view(goal, line) for goal, line in rows])


async def adjust_proposal(
    session: AsyncSession, *, teacher_id: int, pupil_goal_id: int, goal_id: int
) -> tuple[Proposal, GoalView] | None:
    """The teacher sets another goal of the same line instead of the proposed one.

    The proposal is declined and the chosen goal becomes the pupil's, confirmed by this
    teacher. None (nothing changed) for a proposal or goal this teacher may not use.
    """
    found = await _open_proposal(session, teacher_id=teacher_id, pupil_goal_id=pupil_goal_id)
    if found is None:
        return None
    pupil_goal, proposal = found
    row = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(Goal.id == goal_id, Goal.learning_line_id == proposal.goal.line_id)
        )
    ).one_or_none()
    if row is None or goal_id == proposal.goal.id:
        return None
    goal, line = row
    pupil_goal.status = PupilGoalStatus.REJECTED
    pupil_goal.confirmed_by_id = teacher_id
    existing = await session.scalar(
        select(PupilGoal).where(
            PupilGoal.pupil_id == proposal.pupil.id,
            PupilGoal.period_id == pupil_goal.period_id,
            PupilGoal.goal_id == goal_id,
        )
    )
    if existing is None:
        session.add(
            PupilGoal(
                pupil_id=proposal.pupil.id,
                period_id=pupil_goal.period_id,
                goal_id=goal_id,
                chosen_by=ChosenBy.TEACHER,
                status=PupilGoalStatus.ACTIVE,
                confirmed_by_id=teacher_id,
            )
        )
    elif existing.status is not PupilGoalStatus.ACHIEVED:
        existing.status = PupilGoalStatus.ACTIVE
        existing.confirmed_by_id = teacher_id
    await session.flush()
    return proposal, _view(goal, line)
