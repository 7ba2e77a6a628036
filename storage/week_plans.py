"""The week plan: per goal, the activities a pupil chose for this week, ticked when done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import own_pupil_goal
from storage.models import Activity, Goal, PupilGoal, WeekPlan, WeekPlanItem
from storage.types import utcnow

MAX_ITEMS_PER_GOAL = 6


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class ActivityView:
    id: int
    text: str
    own: bool  # the pupil's own idea rather than the teacher's list


@dataclass(frozen=True)
class PlanItem:
    id: int
    pupil_goal_id: int
    goal_id: int
    goal_text: str
    text: str
    done: bool


async def activities_for(
    session: AsyncSession, *, pupil_id: int, pupil_goal_id: int, group_id: int | None
) -> list[ActivityView]:
    """The teacher's activities for this goal in the pupil's group, then the pupil's own."""
    pupil_goal = await own_pupil_goal(session, pupil_id=pupil_id, pupil_goal_id=pupil_goal_id)
    if pupil_goal is None:
        return []
    activities = (
        await session.scalars(
            select(Activity)
            .where(
                Activity.goal_id == pupil_goal.goal_id,
                or_(
                    Activity.pupil_goal_id == pupil_goal.id,
                    (Activity.group_id == group_id) & Activity.pupil_goal_id.is_(None),
                ),
            )
            .order_by(Activity.pupil_goal_id.is_not(None), Activity.id)
        )
    ).all()
    return [ActivityView(a.id, a.text, a.pupil_goal_id is not None) for a in activities]


async def plan_items(session: AsyncSession, *, pupil_id: int, week_start: date) -> list[PlanItem]:
    rows = (
        await session.execute(
            select(WeekPlanItem, PupilGoal.goal_id, Goal.text)
            .join(WeekPlan, WeekPlan.id == WeekPlanItem.week_plan_id)
            .join(PupilGoal, PupilGoal.id == WeekPlanItem.pupil_goal_id)
            .join(Goal, Goal.id == PupilGoal.goal_id)
            .where(WeekPlan.pupil_id == pupil_id, WeekPlan.week_start == week_start)
            .order_by(Goal.position, WeekPlanItem.id)
        )
    ).all()
    return [
        PlanItem(
            item.id, item.pupil_goal_id, goal_id, goal_text, item.text, item.done_at is not None
        )
        for item, goal_id, goal_text in rows
    ]


async def _plan(session: AsyncSession, *, pupil_id: int, week_start: date) -> WeekPlan:
    plan = await session.scalar(
        select(WeekPlan).where(WeekPlan.pupil_id == pupil_id, WeekPlan.week_start == week_start)
    )
    if plan is None:
        plan = WeekPlan(pupil_id=pupil_id, week_start=week_start)
        session.add(plan)
        await session.flush()
    return plan


async def toggle_activity(
    session: AsyncSession,
    *,
    pupil_id: int,
    week_start: date,
    pupil_goal_id: int,
    activity_id: int,
    group_id: int | None,
) -> bool | None:
    """Put an offered activity in (True) or out of (False) this week's plan; None if not allowed."""
    offered = await activities_for(
        session, pupil_id=pupil_id, pupil_goal_id=pupil_goal_id, group_id=group_id
    )
    activity = next((a for a in offered if a.id == activity_id), None)
    if activity is None:
        return None
    plan = await _plan(session, pupil_id=pupil_id, week_start=week_start)
    existing = await session.scalar(
        select(WeekPlanItem).where(
            WeekPlanItem.week_plan_id == plan.id,
            WeekPlanItem.pupil_goal_id == pupil_goal_id,
            WeekPlanItem.activity_id == activity_id,
        )
    )
    if existing is not None:
        await session.delete(existing)
        await session.flush()
        return False
    session.add(
        WeekPlanItem(
            week_plan_id=plan.id,
            pupil_goal_id=pupil_goal_id,
            activity_id=activity_id,
            text=activity.text,
        )
    )
    await session.flush()
    return True


async def add_own_activity(
    session: AsyncSession,
    *,
    pupil_id: int,
    week_start: date,
    pupil_goal_id: int,
    text: str,
) -> PlanItem | None:
    """The pupil's own idea: kept as an activity of their goal and put in this week's plan."""
    pupil_goal = await own_pupil_goal(session, pupil_id=pupil_id, pupil_goal_id=pupil_goal_id)
    if pupil_goal is None:
        return None
    plan = await _plan(session, pupil_id=pupil_id, week_start=week_start)
    activity = Activity(
        goal_id=pupil_goal.goal_id,
        pupil_goal_id=pupil_goal.id,
        text=text,
        created_by_id=pupil_id,
    )
    session.add(activity)
    await session.flush()
    item = WeekPlanItem(
        week_plan_id=plan.id, pupil_goal_id=pupil_goal.id, activity_id=activity.id, text=text
    )
    session.add(item)
    await session.flush()
    goal = await session.get(Goal, pupil_goal.goal_id)
    assert goal is not None
    return PlanItem(item.id, pupil_goal.id, goal.id, goal.text, text, False)


async def toggle_done(session: AsyncSession, *, pupil_id: int, item_id: int) -> bool | None:
    """Tick (or untick) an item of the pupil's own plan; None if the item is not theirs."""
    item = await session.scalar(
        select(WeekPlanItem)
        .join(WeekPlan, WeekPlan.id == WeekPlanItem.week_plan_id)
        .where(WeekPlanItem.id == item_id, WeekPlan.pupil_id == pupil_id)
    )
    if item is None:
        return None
    item.done_at = None if item.done_at is not None else utcnow()
    await session.flush()
    return item.done_at is not None


async def week_goal_ids(session: AsyncSession, *, pupil_id: int, week_start: date) -> list[int]:
    """Goals in this week's plan, in plan order: the reflection offers them first."""
    items = await plan_items(session, pupil_id=pupil_id, week_start=week_start)
    return list(dict.fromkeys(item.goal_id for item in items))
