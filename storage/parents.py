"""Parents: their children (which pupil a parent may see is decided by `storage.policy`),
their preferences for what arrives and when, and tops & tips they give.

Preferences live in `Person.preferences` (JSON) under fixed keys that the reminder planner
and dispatcher read as well; `ParentPreferences` is the typed view with the school's settings
as defaults, so a parent who never opened /instellingen gets exactly what the school set.
Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.accounts import PersonRef, Recipient, children_of
from storage.models import (
    Account,
    AccountPerson,
    Evidence,
    Feedback,
    FeedbackTarget,
    LearningPlan,
    Person,
    Reminder,
    Role,
    School,
)
from storage.policy import (
    is_parent,
    is_parent_of,
    linked_parents,
    work_is_visible_to_parents,
    work_visible_to_parents_clause,
)
from storage.reminders import ReminderKind
from storage.schooltime import in_quiet_hours as quiet_at

# The keys in Person.preferences; the reminder planner and dispatcher read the same keys.
WEEKLY_SUMMARY = "weekly_summary"
SUMMARY_WEEKDAY = "summary_weekday"
SUMMARY_TIME = "summary_time"
TALK_REMINDERS = "talk_reminders"
FEEDBACK_NOTICES = "feedback_notices"
QUIET_START = "quiet_start"
QUIET_END = "quiet_end"

MAX_FEEDBACK = 500
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: object) -> time | None:
    """ "07:30" -> time(7, 30); anything else (a typo in the JSON, None) -> None."""
    if not isinstance(value, str):
        return None
    match = _HHMM.fullmatch(value.strip())
    return time(int(match[1]), int(match[2])) if match else None


def hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


@dataclass(frozen=True)
class ParentPreferences:
    """What a parent receives and when. Times are in the school's timezone."""

    weekly_summary: bool
    summary_weekday: int  # ISO weekday, 1 = Monday
    summary_time: time
    talk_reminders: bool
    feedback_notices: bool
    quiet_start: time
    quiet_end: time

    @classmethod
    def defaults(cls, school: School) -> ParentPreferences:
        return cls(
            weekly_summary=True,
            summary_weekday=school.parent_summary_weekday,
            summary_time=school.parent_summary_time,
            talk_reminders=True,
            feedback_notices=True,
            quiet_start=school.quiet_hours_start,
            quiet_end=school.quiet_hours_end,
        )

    @classmethod
    def from_person(cls, person: Person, school: School) -> ParentPreferences:
        """The parent's own choices over the school's defaults; a broken value is ignored."""
        stored: dict[str, Any] = dict(person.preferences or {})
        base = cls.defaults(school)
        weekday = stored.get(SUMMARY_WEEKDAY)
        return cls(
            weekly_summary=_bool(stored.get(WEEKLY_SUMMARY), base.weekly_summary),
            summary_weekday=weekday
            if isinstance(weekday, int) and not isinstance(weekday, bool) and 1 <= weekday <= 7
            else base.summary_weekday,
            summary_time=parse_hhmm(stored.get(SUMMARY_TIME)) or base.summary_time,
            talk_reminders=_bool(stored.get(TALK_REMINDERS), base.talk_reminders),
            feedback_notices=_bool(stored.get(FEEDBACK_NOTICES), base.feedback_notices),
            quiet_start=parse_hhmm(stored.get(QUIET_START)) or base.quiet_start,
            quiet_end=parse_hhmm(stored.get(QUIET_END)) or base.quiet_end,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            WEEKLY_SUMMARY: self.weekly_summary,
            SUMMARY_WEEKDAY: self.summary_weekday,
            SUMMARY_TIME: hhmm(self.summary_time),
            TALK_REMINDERS: self.talk_reminders,
            FEEDBACK_NOTICES: self.feedback_notices,
            QUIET_START: hhmm(self.quiet_start),
            QUIET_END: hhmm(self.quiet_end),
        }


def _bool(value: object, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def quiet_hours_of(preferences: ParentPreferences, school: School) -> tuple[time, time]:
    """(start, end) of the parent's quiet hours in the school's timezone; the school's own
    quiet hours when the parent chose none (`preferences` already carries that default)."""
    del school  # the defaults were taken from the school when the preferences were read
    return preferences.quiet_start, preferences.quiet_end


def in_quiet_hours(moment: datetime, preferences: ParentPreferences, school: School) -> bool:
    """Whether `moment` (aware) falls in the quiet hours; they may run past midnight."""
    start, end = quiet_hours_of(preferences, school)
    return quiet_at(moment, start=start, end=end, timezone=ZoneInfo(school.timezone))


async def preferences_of(session: AsyncSession, *, parent_id: int) -> ParentPreferences | None:
    """The preferences of a parent; None for anyone who is not a parent."""
    if not await is_parent(session, parent_id):
        return None
    row = (
        await session.execute(
            select(Person, School)
            .join(School, School.id == Person.school_id)
            .where(Person.id == parent_id)
        )
    ).one_or_none()
    if row is None:
        return None
    person, school = row
    return ParentPreferences.from_person(person, school)


async def save_preferences(
    session: AsyncSession, *, parent_id: int, preferences: ParentPreferences
) -> bool:
    """Store all keys (a new dict, so the JSON column is seen as changed); False if the
    person is not a parent. Other keys in `preferences` are kept."""
    if not await is_parent(session, parent_id):
        return False
    person = await session.get(Person, parent_id)
    assert person is not None
    person.preferences = {**(person.preferences or {}), **preferences.as_json()}
    await session.flush()
    return True


async def change_preferences(
    session: AsyncSession, *, parent_id: int, **changes: Any
) -> ParentPreferences | None:
    """Change some fields (names of `ParentPreferences`); the new preferences, or None."""
    current = await preferences_of(session, parent_id=parent_id)
    if current is None:
        return None
    if "summary_weekday" in changes and not 1 <= int(changes["summary_weekday"]) <= 7:
        raise ValueError("weekday must be 1-7")
    updated = replace(current, **changes)
    await save_preferences(session, parent_id=parent_id, preferences=updated)
    return updated


# --- children and parents --------------------------------------------------------------------


async def children_of_parent(session: AsyncSession, *, parent_id: int) -> list[PersonRef]:
    return await children_of(session, parent_id=parent_id)


async def parents_to_notify(session: AsyncSession, *, pupil_id: int) -> list[Recipient]:
    """Every linked, reachable parent of a pupil (two parents both get the summary)."""
    rows = (
        await session.execute(
            select(Person, Account.telegram_user_id)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .where(Person.id.in_(linked_parents(pupil_id)), Person.unreachable_since.is_(None))
            .order_by(Person.display_name, Person.id)
        )
    ).all()
    return [
        Recipient(person.id, person.display_name, telegram_user_id, person.locale)
        for person, telegram_user_id in rows
    ]


# --- tops & tips --------------------------------------------------------------------------------


class FeedbackRefusedError(Exception):
    """The parent may not give feedback on this item (not their child's, or not shared)."""


@dataclass(frozen=True)
class FeedbackTargetView:
    kind: FeedbackTarget
    id: int
    label: str  # the caption or the plan's idea, as written


async def feedback_targets(
    session: AsyncSession, *, parent_id: int, pupil_id: int, evidence_limit: int = 6
) -> list[FeedbackTargetView]:
    """What a parent may give tops & tips on: the child's plans and the newest shared work."""
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=pupil_id):
        return []
    plans = (
        await session.scalars(
            select(LearningPlan)
            .where(LearningPlan.pupil_id == pupil_id)
            .order_by(LearningPlan.updated_at.desc(), LearningPlan.id.desc())
            .limit(5)
        )
    ).all()
    evidence = (
        await session.scalars(
            select(Evidence)
            .where(Evidence.pupil_id == pupil_id, work_visible_to_parents_clause())
            .order_by(Evidence.created_at.desc(), Evidence.id.desc())
            .limit(evidence_limit)
        )
    ).all()
    return [FeedbackTargetView(FeedbackTarget.PLAN, plan.id, plan.idea) for plan in plans] + [
        FeedbackTargetView(FeedbackTarget.EVIDENCE, item.id, item.caption or "")
        for item in evidence
    ]


async def give_feedback(
    session: AsyncSession,
    *,
    parent_id: int,
    pupil_id: int,
    target: FeedbackTarget,
    target_id: int,
    top: str | None,
    tip: str | None,
) -> Feedback:
    """A parent's top and/or tip on their child's plan or a piece of work the child shared.
    Ids come from buttons: each is checked against the parent and the child here."""
    top = (top or "").strip()[:MAX_FEEDBACK] or None
    tip = (tip or "").strip()[:MAX_FEEDBACK] or None
    if top is None and tip is None:
        raise FeedbackRefusedError("empty")
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=pupil_id):
        raise FeedbackRefusedError("not their child")
    feedback = Feedback(
        author_id=parent_id,
        author_role=Role.PARENT,
        target=target,
        pupil_id=pupil_id,
        top=top,
        tip=tip,
    )
    if target is FeedbackTarget.EVIDENCE:
        evidence = await session.get(Evidence, target_id)
        if (
            evidence is None
            or evidence.pupil_id != pupil_id
            or not work_is_visible_to_parents(evidence)
        ):
            raise FeedbackRefusedError("not shared")
        feedback.evidence_id = evidence.id
    elif target is FeedbackTarget.PLAN:
        plan = await session.get(LearningPlan, target_id)
        if plan is None or plan.pupil_id != pupil_id:
            raise FeedbackRefusedError("not their plan")
        feedback.learning_plan_id = plan.id
    else:
        raise FeedbackRefusedError("parents give feedback on work or the plan")
    session.add(feedback)
    await session.flush()
    return feedback


@dataclass(frozen=True)
class FeedbackNotice:
    """A top or tip, as its notification shows it."""

    id: int
    pupil_id: int
    pupil_name: str
    author_name: str
    author_role: Role
    target: FeedbackTarget
    about: str  # the caption or the plan's idea
    top: str | None
    tip: str | None


async def feedback_notice(session: AsyncSession, *, feedback_id: int) -> FeedbackNotice | None:
    feedback = await session.get(Feedback, feedback_id)
    if feedback is None:
        return None
    pupil = await session.get(Person, feedback.pupil_id)
    author = await session.get(Person, feedback.author_id) if feedback.author_id else None
    about = ""
    if feedback.evidence_id is not None:
        evidence = await session.get(Evidence, feedback.evidence_id)
        about = (evidence.caption or "") if evidence else ""
    elif feedback.learning_plan_id is not None:
        plan = await session.get(LearningPlan, feedback.learning_plan_id)
        about = plan.idea if plan else ""
    return FeedbackNotice(
        id=feedback.id,
        pupil_id=feedback.pupil_id,
        pupil_name=pupil.display_name if pupil else "",
        author_name=author.display_name if author else "",
        author_role=feedback.author_role,
        target=feedback.target,
        about=about,
        top=feedback.top,
        tip=feedback.tip,
    )


async def feedback_notice_for_parent(
    session: AsyncSession, *, feedback_id: int, parent_id: int
) -> FeedbackNotice | None:
    """A teacher's top or tip on the child's work, for a parent who asked for such notices:
    None unless the work is (still) visible to parents and the parent is the child's. Asked
    at sending time, so work made private in the meantime is never announced."""
    feedback = await session.get(Feedback, feedback_id)
    if feedback is None or feedback.author_role is not Role.TEACHER or feedback.evidence_id is None:
        return None
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=feedback.pupil_id):
        return None
    preferences = await preferences_of(session, parent_id=parent_id)
    if preferences is None or not preferences.feedback_notices:
        return None
    evidence = await session.get(Evidence, feedback.evidence_id)
    if evidence is None or not work_is_visible_to_parents(evidence):
        return None
    return await feedback_notice(session, feedback_id=feedback_id)


# --- the plan's two feedback moments with parents -------------------------------------------

# The personal-plan template asks for two moments at which parents give feedback on the plan.
PLAN_FEEDBACK_MOMENTS = 2


def plan_feedback_key(plan_id: int, moment: int, parent_id: int) -> str:
    return f"{ReminderKind.PLAN_FEEDBACK_REQUEST}:{plan_id}:{moment}:{parent_id}"


async def plan_feedback_moments_used(session: AsyncSession, *, plan_id: int) -> int:
    """How many feedback moments the pupil has asked for on this plan (the request is a
    reminder row per parent; its key names the moment)."""
    keys = (
        await session.scalars(
            select(Reminder.idempotency_key).where(
                Reminder.kind == ReminderKind.PLAN_FEEDBACK_REQUEST,
                Reminder.idempotency_key.startswith(
                    f"{ReminderKind.PLAN_FEEDBACK_REQUEST}:{plan_id}:", autoescape=True
                ),
            )
        )
    ).all()
    moments = {key.split(":")[2] for key in keys if key.count(":") == 3}
    return len(moments)


@dataclass(frozen=True)
class PlanForParents:
    id: int
    pupil_id: int
    pupil_name: str
    idea: str
    outcome: str | None


async def plan_for_parent(
    session: AsyncSession, *, parent_id: int, plan_id: int
) -> PlanForParents | None:
    """A plan of one of the parent's own children; None for anyone else's."""
    row = (
        await session.execute(
            select(LearningPlan, Person.display_name)
            .join(Person, Person.id == LearningPlan.pupil_id)
            .where(LearningPlan.id == plan_id)
        )
    ).one_or_none()
    if row is None:
        return None
    plan, name = row
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=plan.pupil_id):
        return None
    return PlanForParents(plan.id, plan.pupil_id, name, plan.idea, plan.outcome)
