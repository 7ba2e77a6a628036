"""Who gets a scheduled prompt: one query per audience for a whole school, never one per person.

Only persons the bot can reach are listed: linked to a Telegram account, not unreachable, and
(pupils) still at school in a current group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AccountPerson,
    Assessment,
    ChosenBy,
    GroupMembership,
    Period,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    Role,
    WeekPlan,
    WeekPlanItem,
)
from storage.policy import members_of_group, parent_child_links, pupils_taught_by


def _reachable(role: Role, school_id: int) -> Select[int]:
    linked = exists().where(AccountPerson.person_id == Person.id)
    current = exists().where(
        GroupMembership.person_id == Person.id, GroupMembership.ended_at.is_(None)
    )
    return (
        select(Person.id)
        .where(
            Person.school_id == school_id,
            Person.role == role,
            Person.unreachable_since.is_(None),
            Person.left_school_on.is_(None),
            linked,
            current,
        )
        .order_by(Person.id)
    )


async def pupils_without_reflection(
    session: AsyncSession, *, school_id: int, on_date: date
) -> list[int]:
    reflected = exists().where(Reflection.pupil_id == Person.id, Reflection.on_date == on_date)
    query = _reachable(Role.PUPIL, school_id).where(~reflected)
    return list((await session.scalars(query)).all())


async def pupils_without_week_plan(
    session: AsyncSession, *, school_id: int, week_start: date
) -> list[int]:
    planned = exists().where(
        WeekPlan.pupil_id == Person.id,
        WeekPlan.week_start == week_start,
        exists().where(WeekPlanItem.week_plan_id == WeekPlan.id),
    )
    query = _reachable(Role.PUPIL, school_id).where(~planned)
    return list((await session.scalars(query)).all())


async def reachable_teachers(session: AsyncSession, *, school_id: int) -> list[int]:
    return list((await session.scalars(_reachable(Role.TEACHER, school_id))).all())


async def reachable_admins(session: AsyncSession, *, school_id: int) -> list[int]:
    """The school's admins the bot can write to (admins are in no group)."""
    linked = exists().where(AccountPerson.person_id == Person.id)
    query = (
        select(Person.id)
        .where(
            Person.school_id == school_id,
            Person.role == Role.ADMIN,
            Person.unreachable_since.is_(None),
            Person.left_school_on.is_(None),
            linked,
        )
        .order_by(Person.id)
    )
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class ParentOfPupil:
    parent_id: int
    pupil_id: int
    preferences: dict[str, Any]


async def parents_with_children(session: AsyncSession, *, school_id: int) -> list[ParentOfPupil]:
    """Every linked, reachable parent with each of their children still at school."""
    linked = exists().where(AccountPerson.person_id == Person.id)
    pupil_at_school = (
        select(Person.id)
        .where(Person.role == Role.PUPIL, Person.left_school_on.is_(None))
        .scalar_subquery()
    )
    links = parent_child_links().subquery()
    rows = await session.execute(
        select(Person.id, links.c.pupil_id, Person.preferences)
        .join(links, links.c.parent_id == Person.id)
        .where(
            Person.school_id == school_id,
            Person.unreachable_since.is_(None),
            linked,
            links.c.pupil_id.in_(pupil_at_school),
        )
        .order_by(Person.id, links.c.pupil_id)
    )
    return [ParentOfPupil(p, c, dict(prefs or {})) for p, c, prefs in rows.all()]


@dataclass(frozen=True)
class EndingPeriod:
    id: int
    group_id: int | None
    ends_on: date


async def periods_ending(
    session: AsyncSession, *, school_id: int, first: date, last: date
) -> list[EndingPeriod]:
    rows = await session.execute(
        select(Period.id, Period.group_id, Period.ends_on)
        .where(Period.school_id == school_id, Period.ends_on.between(first, last))
        .order_by(Period.ends_on, Period.id)
    )
    return [EndingPeriod(*row) for row in rows.all()]


async def members_of_period(
    session: AsyncSession, *, school_id: int, period: EndingPeriod, role: Role
) -> list[int]:
    """The reachable pupils or teachers the period is for (its group, or the whole school)."""
    query = _reachable(role, school_id)
    if period.group_id is not None:
        query = query.where(Person.id.in_(members_of_group(period.group_id)))
    else:
        # A school-wide period: pupils whose group has no period of its own ending then.
        own_period = exists().where(
            GroupMembership.person_id == Person.id,
            GroupMembership.ended_at.is_(None),
            Period.group_id == GroupMembership.group_id,
            Period.ends_on == period.ends_on,
            Period.id != period.id,
        )
        query = query.where(~own_period)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class PeriodReview:
    """Where a teacher's pupils stand at the end of a period, for the review prompt."""

    period_name: str
    # Pupils of the teacher's groups with goals in the period, and those goals.
    pupils: int
    goals: int
    self_assessed: int
    waiting_for_teacher: int


async def period_review_for_teacher(
    session: AsyncSession, *, teacher_id: int, period_id: int
) -> PeriodReview | None:
    period = await session.get(Period, period_id)
    if period is None:
        return None
    pupil_ids = set((await session.scalars(pupils_taught_by(teacher_id))).all())
    goals = (
        await session.execute(
            select(PupilGoal.pupil_id, PupilGoal.goal_id, PupilGoal.status).where(
                PupilGoal.period_id == period_id, PupilGoal.pupil_id.in_(pupil_ids)
            )
        )
    ).all()
    assessed = set(
        (
            await session.execute(
                select(Assessment.pupil_id, Assessment.goal_id).where(
                    Assessment.pupil_id.in_(pupil_ids),
                    Assessment.by_role == ChosenBy.PUPIL,
                    Assessment.assessed_at >= datetime.combine(period.starts_on, time(), UTC),
                )
            )
        ).all()
    )
    live = [row for row in goals if row[2] in (PupilGoalStatus.ACTIVE, PupilGoalStatus.PROPOSED)]
    return PeriodReview(
        period_name=period.name,
        pupils=len({row[0] for row in live}),
        goals=len(live),
        self_assessed=sum((pupil, goal) in assessed for pupil, goal, _status in live),
        waiting_for_teacher=sum(row[2] is PupilGoalStatus.PROPOSED for row in live),
    )
