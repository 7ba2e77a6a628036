"""A teacher prepares a group's period: the period itself, up to three levels (tiers) of goals
per learning line, and the activities pupils choose from in their week plan.

Who may do what is decided here, on every call: the teacher must be in the group now, the
period must be the group's own or the school's (and not over yet), the goal must come from a
goal set of the group's school, and an activity must be the group's own list for a goal
prepared in that period. Ids come from buttons and may be forged or stale: anything that
does not fit finds nothing (None) and changes nothing.

Pupils are never worse off for a change here: a pupil who chose a goal keeps it when its tier
is replaced or cleared, and a week plan keeps an activity's text when the activity is removed
(`WeekPlanItem.text`; its `activity_id` becomes NULL).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import ACTION_PERIOD_CREATE, ACTION_PERIOD_GOAL, record_audit
from storage.goals import LIVE_STATUSES, GoalView
from storage.models import (
    Activity,
    Goal,
    GoalMode,
    GoalSet,
    Group,
    LearningLine,
    Period,
    PeriodGoal,
    PupilGoal,
    WeekPlanItem,
)
from storage.overview import GroupRef, groups_of_teacher
from storage.policy import pupils_taught_by
from storage.schooltime import SchoolCalendar, calendar_of

TIERS = (1, 2, 3)
PERIOD_WEEKS = (6, 7, 8)
# In its last two weeks a period is "nearly over": the teacher may turn to the next one.
NEARLY_OVER_DAYS = 14
# How many start dates a new period is offered (the first school day, then one per week).
START_OPTIONS = 4
MAX_ACTIVITY_TEXT = 200
# The list, with every name in full, must fit in one message (and on a phone).
MAX_ACTIVITIES_PER_GOAL = 12
SUBJECT_PERIOD = "period"


@dataclass(frozen=True)
class PeriodRef:
    id: int
    name: str
    starts_on: date
    ends_on: date
    own: bool  # the group's own period rather than the school's


@dataclass(frozen=True)
class Workspace:
    """What a teacher prepares: one of their groups in one period it sees."""

    school_id: int
    group: GroupRef
    period: PeriodRef
    # Only a teacher-led group's pupils pick from the prepared levels in /doelen; the
    # activities are offered in every group's week plan.
    teacher_led: bool


@dataclass(frozen=True)
class PeriodChoice:
    """The periods a teacher may prepare now for a group."""

    group: GroupRef
    current: PeriodRef | None
    next: PeriodRef | None

    def nearly_over(self, today: date) -> bool:
        return self.current is not None and (self.current.ends_on - today).days < (NEARLY_OVER_DAYS)


@dataclass(frozen=True)
class PreparedTier:
    tier: int
    goal: GoalView


@dataclass(frozen=True)
class LinePreparation:
    line_id: int
    line_name: str
    goal_set_name: str
    tiers: tuple[PreparedTier, ...]  # at most one per tier, by tier

    def at(self, tier: int) -> PreparedTier | None:
        return next((prepared for prepared in self.tiers if prepared.tier == tier), None)


@dataclass(frozen=True)
class TierChange:
    line_id: int
    tier: int
    goal: GoalView | None  # None: the tier was cleared
    # Pupils of the group who chose a goal that left the offer; they keep working on it.
    pupils_keeping: int


@dataclass(frozen=True)
class ActivityItem:
    id: int
    text: str
    in_plans: int  # week plan items made from it


class ActivityOutcome(enum.StrEnum):
    ADDED = "added"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    DUPLICATE = "duplicate"
    FULL = "full"


@dataclass(frozen=True)
class RemovedActivity:
    goal_id: int
    text: str
    in_plans: int


def _period_ref(period: Period) -> PeriodRef:
    return PeriodRef(
        period.id, period.name, period.starts_on, period.ends_on, period.group_id is not None
    )


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


def clean_activity_text(text: str) -> str:
    """One line, single spaces: what a teacher typed, as pupils will see it on a button."""
    return " ".join(text.split())


# --- the group and its periods ---------------------------------------------------------------


async def teacher_group(
    session: AsyncSession, *, teacher_id: int, group_id: int
) -> GroupRef | None:
    """The group, when the teacher is in it now; None for anyone else's (or a left) group."""
    groups = await groups_of_teacher(session, teacher_id=teacher_id)
    return next((group for group in groups if group.id == group_id), None)


def _visible_to(group: Group) -> ColumnElement[bool]:
    """Periods a group's pupils live in: the group's own and the school's."""
    return and_(
        Period.school_id == group.school_id,
        or_(Period.group_id == group.id, Period.group_id.is_(None)),
    )


async def period_choice(
    session: AsyncSession, *, teacher_id: int, group_id: int, today: date
) -> PeriodChoice | None:
    """The period pupils are in today (as /doelen finds it) and the first one after it."""
    ref = await teacher_group(session, teacher_id=teacher_id, group_id=group_id)
    group = await session.get(Group, group_id)
    if ref is None or group is None:
        return None
    current = await session.scalar(
        select(Period)
        .where(_visible_to(group), Period.starts_on <= today, Period.ends_on >= today)
        .order_by(Period.group_id.is_(None), Period.starts_on.desc())
        .limit(1)
    )
    after = current.ends_on if current is not None else today
    upcoming = await session.scalar(
        select(Period)
        .where(_visible_to(group), Period.starts_on > after)
        .order_by(Period.starts_on, Period.group_id.is_(None))
        .limit(1)
    )
    return PeriodChoice(
        ref,
        _period_ref(current) if current is not None else None,
        _period_ref(upcoming) if upcoming is not None else None,
    )


async def workspace(
    session: AsyncSession, *, teacher_id: int, group_id: int, period_id: int, today: date
) -> Workspace | None:
    """The group and period a button names, when this teacher may prepare them now."""
    ref = await teacher_group(session, teacher_id=teacher_id, group_id=group_id)
    group = await session.get(Group, group_id)
    period = await session.get(Period, period_id)
    if ref is None or group is None or period is None:
        return None
    if period.school_id != group.school_id or period.group_id not in (None, group.id):
        return None
    if period.ends_on < today:
        return None  # a finished period is history, not something to prepare
    return Workspace(
        group.school_id, ref, _period_ref(period), group.goal_mode is GoalMode.TEACHER_LED
    )


# --- a new period --------------------------------------------------------------------------


def period_end(calendar: SchoolCalendar, start: date, weeks: int) -> date | None:
    """The last school day of `weeks` weeks from `start`; None for a length not on offer."""
    if weeks not in PERIOD_WEEKS:
        return None
    end = start + timedelta(days=weeks * 7 - 1)
    while end > start and not calendar.is_school_day(end):
        end -= timedelta(days=1)
    return end if end > start else None


async def start_options(
    session: AsyncSession, *, teacher_id: int, group_id: int, today: date
) -> list[date]:
    """School days a new period may start on: the first free one, then one a week later each.

    Free means after every period of the group that has not ended yet, so periods never
    overlap: pupils then always know which goals count.
    """
    ref = await teacher_group(session, teacher_id=teacher_id, group_id=group_id)
    group = await session.get(Group, group_id)
    calendar = await calendar_of(session, school_id=group.school_id) if group else None
    if ref is None or group is None or calendar is None:
        return []
    last_end = await session.scalar(
        select(func.max(Period.ends_on)).where(_visible_to(group), Period.ends_on >= today)
    )
    earliest = max(today, last_end + timedelta(days=1)) if last_end is not None else today
    first = earliest
    # Far enough to step over a long summer holiday, and no further.
    while not calendar.is_school_day(first) and first < earliest + timedelta(weeks=12):
        first += timedelta(days=1)
    if not calendar.is_school_day(first):
        return []
    options = [first]
    monday = first - timedelta(days=first.weekday())
    for _week in range(12):
        if len(options) == START_OPTIONS:
            break
        monday += timedelta(weeks=1)
        day = calendar.first_school_day_of_week(monday)
        if day is not None:
            options.append(day)
    return options


async def school_calendar_of_group(
    session: AsyncSession, *, teacher_id: int, group_id: int
) -> SchoolCalendar | None:
    if await teacher_group(session, teacher_id=teacher_id, group_id=group_id) is None:
        return None
    group = await session.get(Group, group_id)
    assert group is not None
    return await calendar_of(session, school_id=group.school_id)


async def create_period(
    session: AsyncSession,
    *,
    teacher_id: int,
    group_id: int,
    start: date,
    weeks: int,
    name: str,
    today: date,
) -> Workspace | None:
    """A new period of the group, starting on one of the offered days and ending on a school
    day `weeks` weeks later; None (nothing made) for any other start or length.

    The same start and length again (a second tap on the button) gives the period made by
    the first, not a refusal and not a second period."""
    calendar = await school_calendar_of_group(session, teacher_id=teacher_id, group_id=group_id)
    end = period_end(calendar, start, weeks) if calendar is not None else None
    if end is None:
        return None
    made_already = await session.scalar(
        select(Period.id).where(
            Period.group_id == group_id, Period.starts_on == start, Period.ends_on == end
        )
    )
    if made_already is not None:
        return await workspace(
            session, teacher_id=teacher_id, group_id=group_id, period_id=made_already, today=today
        )
    if start not in await start_options(
        session, teacher_id=teacher_id, group_id=group_id, today=today
    ):
        return None
    group = await session.get(Group, group_id)
    assert group is not None
    period = Period(
        school_id=group.school_id,
        group_id=group.id,
        name=name[:100],
        starts_on=start,
        ends_on=end,
    )
    session.add(period)
    await session.flush()
    await record_audit(
        session,
        school_id=group.school_id,
        action=ACTION_PERIOD_CREATE,
        subject_kind=SUBJECT_PERIOD,
        subject_ref=f"{SUBJECT_PERIOD}:{period.id}",
        actor_person_id=teacher_id,
        details={"group_id": group.id, "starts_on": start.isoformat(), "weeks": weeks},
    )
    return await workspace(
        session, teacher_id=teacher_id, group_id=group_id, period_id=period.id, today=today
    )


# --- prepared goals ------------------------------------------------------------------------


async def line_preparations(session: AsyncSession, *, place: Workspace) -> list[LinePreparation]:
    """Every learning line of the school's goal sets, with what is prepared on it."""
    lines = (
        await session.execute(
            select(LearningLine, GoalSet.name)
            .join(GoalSet, GoalSet.id == LearningLine.goal_set_id)
            .where(GoalSet.school_id == place.school_id)
            .order_by(GoalSet.name, LearningLine.position, LearningLine.id)
        )
    ).all()
    prepared = await _prepared(session, place=place)
    return [
        LinePreparation(line.id, line.name, set_name, prepared.get(line.id, ()))
        for line, set_name in lines
    ]


async def _prepared(
    session: AsyncSession, *, place: Workspace, line_id: int | None = None
) -> dict[int, tuple[PreparedTier, ...]]:
    query = (
        select(PeriodGoal.tier, Goal, LearningLine)
        .join(Goal, Goal.id == PeriodGoal.goal_id)
        .join(LearningLine, LearningLine.id == Goal.learning_line_id)
        .where(PeriodGoal.period_id == place.period.id, PeriodGoal.group_id == place.group.id)
        .order_by(PeriodGoal.tier, PeriodGoal.id)
    )
    if line_id is not None:
        query = query.where(LearningLine.id == line_id)
    by_line: dict[int, dict[int, PreparedTier]] = {}
    for tier, goal, line in (await session.execute(query)).all():
        # Imported data may hold two goals at one tier of a line: pupils see the first.
        by_line.setdefault(line.id, {}).setdefault(tier, PreparedTier(tier, _goal_view(goal, line)))
    return {line: tuple(tiers.values()) for line, tiers in by_line.items()}


async def line_preparation(
    session: AsyncSession, *, place: Workspace, line_id: int
) -> LinePreparation | None:
    """One learning line of the school's goal sets; None for a line of another school."""
    row = (
        await session.execute(
            select(LearningLine, GoalSet.name)
            .join(GoalSet, GoalSet.id == LearningLine.goal_set_id)
            .where(LearningLine.id == line_id, GoalSet.school_id == place.school_id)
        )
    ).one_or_none()
    if row is None:
        return None
    line, set_name = row
    prepared = await _prepared(session, place=place, line_id=line.id)
    return LinePreparation(line.id, line.name, set_name, prepared.get(line.id, ()))


async def goals_of_line(session: AsyncSession, *, place: Workspace, line_id: int) -> list[GoalView]:
    """The goals of a line of the school's goal sets, in the line's order."""
    rows = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(GoalSet, GoalSet.id == Goal.goal_set_id)
            .where(LearningLine.id == line_id, GoalSet.school_id == place.school_id)
            .order_by(Goal.position, Goal.id)
        )
    ).all()
    return [_goal_view(goal, line) for goal, line in rows]


async def _school_goal(session: AsyncSession, *, school_id: int, goal_id: int) -> GoalView | None:
    row = (
        await session.execute(
            select(Goal, LearningLine)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(GoalSet, GoalSet.id == Goal.goal_set_id)
            .where(Goal.id == goal_id, GoalSet.school_id == school_id)
        )
    ).one_or_none()
    return _goal_view(*row) if row is not None else None


async def _pupils_keeping(
    session: AsyncSession, *, place: Workspace, teacher_id: int, goal_ids: list[int]
) -> int:
    """Pupils of the group whose live goal of this period is one of these."""
    if not goal_ids:
        return 0
    pupils_of_group = pupils_taught_by(teacher_id, group_id=place.group.id)
    count = await session.scalar(
        select(func.count(func.distinct(PupilGoal.pupil_id))).where(
            PupilGoal.period_id == place.period.id,
            PupilGoal.goal_id.in_(goal_ids),
            PupilGoal.status.in_(LIVE_STATUSES),
            PupilGoal.pupil_id.in_(pupils_of_group),
        )
    )
    return count or 0


async def _tier_rows(session: AsyncSession, *, place: Workspace, line_id: int) -> list[PeriodGoal]:
    return list(
        (
            await session.scalars(
                select(PeriodGoal)
                .join(Goal, Goal.id == PeriodGoal.goal_id)
                .where(
                    PeriodGoal.period_id == place.period.id,
                    PeriodGoal.group_id == place.group.id,
                    Goal.learning_line_id == line_id,
                )
            )
        ).all()
    )


async def _audit_tier(
    session: AsyncSession, *, place: Workspace, teacher_id: int, change: TierChange
) -> None:
    await record_audit(
        session,
        school_id=place.school_id,
        action=ACTION_PERIOD_GOAL,
        subject_kind=SUBJECT_PERIOD,
        subject_ref=f"{SUBJECT_PERIOD}:{place.period.id}",
        actor_person_id=teacher_id,
        details={
            "group_id": place.group.id,
            "line_id": change.line_id,
            "tier": change.tier,
            "goal_id": change.goal.id if change.goal is not None else None,
        },
    )


async def set_tier(
    session: AsyncSession, *, place: Workspace, teacher_id: int, tier: int, goal_id: int
) -> TierChange | None:
    """Put a goal of the school at a tier of its line; what was at that tier leaves the
    offer. A goal already at another tier of the line moves. None: not a tier, not a goal
    of the school."""
    if tier not in TIERS:
        return None
    goal = await _school_goal(session, school_id=place.school_id, goal_id=goal_id)
    if goal is None:
        return None
    rows = await _tier_rows(session, place=place, line_id=goal.line_id)
    replaced = [row for row in rows if row.tier == tier and row.goal_id != goal.id]
    for row in replaced:
        await session.delete(row)
    # Deleted first: the one-goal-per-tier rule holds at every moment, not just at commit.
    await session.flush()
    own = next((row for row in rows if row.goal_id == goal.id), None)
    if own is None:
        session.add(
            PeriodGoal(
                period_id=place.period.id,
                group_id=place.group.id,
                goal_id=goal.id,
                tier=tier,
                prepared_by_id=teacher_id,
            )
        )
    else:
        own.tier = tier
        own.prepared_by_id = teacher_id
    await session.flush()
    change = TierChange(
        goal.line_id,
        tier,
        goal,
        await _pupils_keeping(
            session, place=place, teacher_id=teacher_id, goal_ids=[row.goal_id for row in replaced]
        ),
    )
    await _audit_tier(session, place=place, teacher_id=teacher_id, change=change)
    return change


async def clear_tier(
    session: AsyncSession, *, place: Workspace, teacher_id: int, line_id: int, tier: int
) -> TierChange | None:
    """Take a tier of a line off the offer; None when the tier or line is not one (or
    nothing was prepared there)."""
    if tier not in TIERS or await line_preparation(session, place=place, line_id=line_id) is None:
        return None
    rows = [
        row for row in await _tier_rows(session, place=place, line_id=line_id) if row.tier == tier
    ]
    if not rows:
        return None
    goal_ids = [row.goal_id for row in rows]
    await session.execute(delete(PeriodGoal).where(PeriodGoal.id.in_([row.id for row in rows])))
    await session.flush()
    change = TierChange(
        line_id,
        tier,
        None,
        await _pupils_keeping(session, place=place, teacher_id=teacher_id, goal_ids=goal_ids),
    )
    await _audit_tier(session, place=place, teacher_id=teacher_id, change=change)
    return change


async def prepared_goal(
    session: AsyncSession, *, place: Workspace, goal_id: int
) -> PreparedTier | None:
    """A goal prepared for the group in this period (activities belong to those)."""
    row = (
        await session.execute(
            select(PeriodGoal.tier, Goal, LearningLine)
            .join(Goal, Goal.id == PeriodGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .join(GoalSet, GoalSet.id == Goal.goal_set_id)
            .where(
                PeriodGoal.period_id == place.period.id,
                PeriodGoal.group_id == place.group.id,
                PeriodGoal.goal_id == goal_id,
                GoalSet.school_id == place.school_id,
            )
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    tier, goal, line = row
    return PreparedTier(tier, _goal_view(goal, line))


# --- activities ----------------------------------------------------------------------------


async def activities_of(
    session: AsyncSession, *, place: Workspace, goal_id: int
) -> list[ActivityItem] | None:
    """The group's activities for a prepared goal, oldest first; None if not prepared."""
    if await prepared_goal(session, place=place, goal_id=goal_id) is None:
        return None
    in_plans = (
        select(func.count(WeekPlanItem.id))
        .where(WeekPlanItem.activity_id == Activity.id)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(Activity.id, Activity.text, in_plans)
            .where(
                Activity.goal_id == goal_id,
                Activity.group_id == place.group.id,
                Activity.pupil_goal_id.is_(None),
            )
            .order_by(Activity.id)
        )
    ).all()
    return [ActivityItem(activity_id, text, count or 0) for activity_id, text, count in rows]


async def add_activity(
    session: AsyncSession, *, place: Workspace, teacher_id: int, goal_id: int, text: str
) -> tuple[ActivityOutcome, ActivityItem | None] | None:
    """Add an activity to a prepared goal for the group; None if the goal is not prepared.

    The same name twice (capitals and spaces aside) is refused, as is an empty or very long
    one, and more than MAX_ACTIVITIES_PER_GOAL: pupils choose from a list on a phone.
    """
    existing = await activities_of(session, place=place, goal_id=goal_id)
    if existing is None:
        return None
    cleaned = clean_activity_text(text)
    if not cleaned:
        return ActivityOutcome.EMPTY, None
    if len(cleaned) > MAX_ACTIVITY_TEXT:
        return ActivityOutcome.TOO_LONG, None
    same = next(
        (
            item
            for item in existing
            if clean_activity_text(item.text).casefold() == cleaned.casefold()
        ),
        None,
    )
    if same is not None:
        return ActivityOutcome.DUPLICATE, same
    if len(existing) >= MAX_ACTIVITIES_PER_GOAL:
        return ActivityOutcome.FULL, None
    activity = Activity(
        goal_id=goal_id, group_id=place.group.id, text=cleaned, created_by_id=teacher_id
    )
    session.add(activity)
    await session.flush()
    return ActivityOutcome.ADDED, ActivityItem(activity.id, activity.text, 0)


async def remove_activity(
    session: AsyncSession, *, place: Workspace, activity_id: int
) -> RemovedActivity | None:
    """Take an activity off the group's list; week plans that hold it keep their item (its
    text stays, the link goes). None for an activity that is not the group's list for a goal
    prepared in this period."""
    activity = await session.get(Activity, activity_id)
    if (
        activity is None
        or activity.group_id != place.group.id
        or activity.pupil_goal_id is not None
        or await prepared_goal(session, place=place, goal_id=activity.goal_id) is None
    ):
        return None
    in_plans = await session.scalar(
        select(func.count(WeekPlanItem.id)).where(WeekPlanItem.activity_id == activity.id)
    )
    removed = RemovedActivity(activity.goal_id, activity.text, in_plans or 0)
    # The week plan items keep their text; ON DELETE SET NULL only drops their link.
    await session.delete(activity)
    await session.flush()
    return removed
