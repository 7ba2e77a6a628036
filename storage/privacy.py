"""The rights of the data subject (AVG/GDPR), retention, and the audit log.

- `collect_pupil_data`: everything the bot keeps about one pupil, as plain frozen data, for
  the export (right of access, art. 15). Teachers' private notes only when asked for.
- `erase_pupil`: removes the pupil's person row and everything that hangs off it (the
  database's ON DELETE CASCADE does most of it; what a cascade cannot know is done here:
  notes about several pupils, reminders that name the pupil only in their payload, the
  Telegram account, dialogue state, and the files on disk). Irreversible by design: nothing
  is kept aside. The audit entry it writes holds only a non-identifying reference.
- `apply_retention`: erases pupils who left the school more than N months ago.
- `record_audit` / `latest_audit`: who exported, erased or changed what (never reads).

Like every storage function these never commit. Files are removed by
`storage.media_files.delete_media_if_unused` only once the caller's transaction commits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from media.pipeline import relative_path_for
from storage.media_files import delete_media_if_unused
from storage.models import (
    Account,
    AccountPerson,
    Activity,
    Assessment,
    AuditEvent,
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    Feedback,
    FeedbackTarget,
    FsmRecord,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    Guardianship,
    InviteAttempt,
    LearningLine,
    LearningPlan,
    LearningPlanStep,
    MediaFile,
    Observation,
    ObservationPupil,
    ObservationTag,
    Period,
    Person,
    PupilGoal,
    Reflection,
    ReflectionGoal,
    Reminder,
    Role,
    RubricLevel,
    School,
    Talk,
    TalkEvidence,
    TalkParticipant,
    WeekPlan,
    WeekPlanItem,
)
from storage.observations import normalise
from storage.policy import is_pupil, pupil_at_school, pupils_of_school
from storage.types import utcnow

# Audit actions written here; other modules may add their own (a short dotted name).
ACTION_EXPORT = "pupil.export"
ACTION_ERASE = "pupil.erase"
ACTION_PEOPLE_IMPORT = "people.import"
ACTION_GOALS_IMPORT = "goals.import"
ACTION_INVITE = "invite.issue"
# A teacher made a period for a group, or set or cleared a prepared goal (storage.period_goals).
ACTION_PERIOD_CREATE = "period.create"
ACTION_PERIOD_GOAL = "period.goal"
# Who acted when no person did.
ACTOR_CLI = "cli"
ACTOR_RETENTION = "retention"
SUBJECT_PERSON = "person"
# What replaces the erased pupil's name in notes that stay for other pupils.
REDACTED = "[…]"
# Months after leaving school before a pupil is erased, when neither the school nor the
# RETENTION_MONTHS setting says otherwise.
DEFAULT_RETENTION_MONTHS = 24
# Lookups by name list at most this many matches.
MAX_MATCHES = 10


class PrivacyError(Exception):
    """A pupil cannot be found, or is not a pupil of this school; the message says why."""


# --- the audit log -----------------------------------------------------------------------------


def person_ref(person_id: int) -> str:
    """The subject reference of a person: an id, never a name, so it survives erasure
    without identifying anyone once the row is gone."""
    return f"{SUBJECT_PERSON}:{person_id}"


def external_id_hash(school_id: int, external_id: str) -> str:
    """A short hash of the school's own pupil number: lets the privacy officer check that a
    given pupil was erased (hash the number they know) without the log naming anyone."""
    return hashlib.sha256(f"{school_id}:{external_id.strip()}".encode()).hexdigest()[:16]


async def record_audit(
    session: AsyncSession,
    *,
    school_id: int | None,
    action: str,
    subject_kind: str,
    subject_ref: str | None,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Write one audit entry. The actor is a person (their role becomes the label unless one
    is given) or a label alone ("cli", "retention", "scheduler"). Put ids and counts in
    `details`, never names or free text: the log outlives the people it mentions."""
    label = actor_label
    if label is None and actor_person_id is not None:
        role = await session.scalar(select(Person.role).where(Person.id == actor_person_id))
        label = role.value if role is not None else None
    event = AuditEvent(
        at=at or utcnow(),
        school_id=school_id,
        actor_person_id=actor_person_id,
        actor_label=(label or "system")[:40],
        action=action[:60],
        subject_kind=subject_kind[:40],
        subject_ref=subject_ref[:64] if subject_ref is not None else None,
        details=dict(details or {}),
    )
    session.add(event)
    await session.flush()
    return event


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_name: str | None  # the acting person's name while they exist
    actor_label: str
    action: str
    subject_kind: str
    subject_ref: str | None
    subject_name: str | None  # the subject's name while they exist (same school only)
    details: dict[str, Any]


async def latest_audit(
    session: AsyncSession, *, school_id: int, limit: int = 20
) -> list[AuditEntry]:
    """The newest entries of one school, newest first."""
    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.school_id == school_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    ).all()
    person_ids = {event.actor_person_id for event in events if event.actor_person_id}
    person_ids |= {
        subject_id
        for event in events
        if (subject_id := _person_id_of(event.subject_ref)) is not None
    }
    names: dict[int, str] = {}
    if person_ids:
        names = dict(
            (
                await session.execute(
                    select(Person.id, Person.display_name).where(
                        Person.id.in_(person_ids), Person.school_id == school_id
                    )
                )
            ).all()
        )
    entries = []
    for event in events:
        subject_id = _person_id_of(event.subject_ref)
        entries.append(
            AuditEntry(
                id=event.id,
                at=event.at,
                actor_name=names.get(event.actor_person_id or 0),
                actor_label=event.actor_label,
                action=event.action,
                subject_kind=event.subject_kind,
                subject_ref=event.subject_ref,
                subject_name=names.get(subject_id) if subject_id is not None else None,
                details=dict(event.details or {}),
            )
        )
    return entries


def _person_id_of(subject_ref: str | None) -> int | None:
    if subject_ref is None or not subject_ref.startswith(f"{SUBJECT_PERSON}:"):
        return None
    number = subject_ref.split(":", 1)[1]
    return int(number) if number.isdigit() else None


# --- finding the pupil a request is about ------------------------------------------------------


@dataclass(frozen=True)
class PupilMatch:
    id: int
    external_id: str
    name: str
    school_id: int
    left_school_on: date | None


async def find_pupils(session: AsyncSession, *, school_id: int, query: str) -> list[PupilMatch]:
    """Pupils of one school by external id (exact, case ignored) or else by name (the whole
    name, else part of it; accents and case ignored). Never anyone of another school."""
    wanted = query.strip()
    if not wanted:
        return []
    pupils = pupils_of_school(school_id)
    by_id = (
        await session.scalars(pupils.where(func.lower(Person.external_id) == wanted.lower()))
    ).all()
    if by_id:
        return [_match(person) for person in by_id]
    key = normalise(wanted)
    everyone = (await session.scalars(pupils.order_by(Person.display_name, Person.id))).all()
    whole = [person for person in everyone if normalise(person.display_name) == key]
    if whole:
        return [_match(person) for person in whole]
    return [_match(person) for person in everyone if key in normalise(person.display_name)][
        :MAX_MATCHES
    ]


def _match(person: Person) -> PupilMatch:
    return PupilMatch(
        person.id, person.external_id, person.display_name, person.school_id, person.left_school_on
    )


async def pupil_of_school(
    session: AsyncSession, *, school_id: int, pupil_id: int
) -> PupilMatch | None:
    """The pupil with this id when they belong to this school (an admin's own), else None:
    an id from a button is never trusted."""
    person = await pupil_at_school(session, school_id=school_id, pupil_id=pupil_id)
    return _match(person) if person is not None else None


# --- collecting a pupil's data (the export) ------------------------------------------------------


@dataclass(frozen=True)
class StoredFileRef:
    """A file of the pupil in the media directory (images are already metadata-free)."""

    media_file_id: int
    sha256: str
    kind: str
    mime_type: str
    size_bytes: int
    width: int | None
    height: int | None
    relative_path: str  # under MEDIA_DIR


@dataclass(frozen=True)
class GoalRef:
    id: int
    code: str
    text: str


@dataclass(frozen=True)
class PupilInfo:
    id: int
    external_id: str
    name: str
    school: str
    locale: str | None
    groups: tuple[str, ...]
    parents: tuple[str, ...]
    has_telegram_account: bool
    left_school_on: date | None
    created_at: datetime


@dataclass(frozen=True)
class PupilGoalItem:
    id: int
    goal: GoalRef
    learning_line: str
    goal_set: str
    period: str
    period_starts_on: date
    period_ends_on: date
    status: str
    chosen_by: str
    level_aimed: str | None
    activities: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class AssessmentItem:
    id: int
    goal: GoalRef
    level: str | None
    by: str
    assessor: str | None
    note: str | None
    assessed_at: datetime


@dataclass(frozen=True)
class WeekPlanEntry:
    id: int
    goal: GoalRef
    text: str
    done_at: datetime | None


@dataclass(frozen=True)
class WeekPlanItemData:
    id: int
    week_start: date
    items: tuple[WeekPlanEntry, ...]


@dataclass(frozen=True)
class ReflectionItem:
    id: int
    on_date: date
    how_it_went: int | None
    effort: int | None
    quality: int | None
    wellbeing: int | None
    motivation: int | None
    minutes: int | None
    other_work: str | None
    text: str | None
    next_step: str | None
    goals: tuple[GoalRef, ...]
    voice: StoredFileRef | None
    created_at: datetime


@dataclass(frozen=True)
class FeedbackItem:
    id: int
    author_role: str
    target: str
    target_id: int | None  # the evidence, plan or pupil goal
    top: str | None
    tip: str | None
    created_at: datetime


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    kind: str
    caption: str | None
    outside_school: bool
    shared_with_parents: bool
    goals: tuple[GoalRef, ...]
    files: tuple[StoredFileRef, ...]
    original_names: tuple[str | None, ...]
    created_at: datetime


@dataclass(frozen=True)
class ObservationItem:
    id: int
    author: str | None
    goal: GoalRef | None
    text: str | None
    tags: tuple[str, ...]
    is_private: bool
    photo: StoredFileRef | None
    voice: StoredFileRef | None
    created_at: datetime


@dataclass(frozen=True)
class PlanStepItem:
    position: int
    what: str
    who: str | None
    when: str | None


@dataclass(frozen=True)
class LearningPlanItem:
    id: int
    idea: str
    motivation: str | None
    prior_knowledge: str | None
    outcome: str | None
    needs: str | None
    goal: GoalRef | None
    steps: tuple[PlanStepItem, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TalkItem:
    id: int
    kind: str
    status: str
    scheduled_at: datetime
    duration_minutes: int
    place: str | None
    organiser: str | None
    participants: tuple[str, ...]
    preparation: dict[str, Any]
    notes: str | None
    agreements: str | None
    evidence_ids: tuple[int, ...]
    created_at: datetime


@dataclass(frozen=True)
class PupilData:
    """Everything about one pupil, in the order the export shows it."""

    pupil: PupilInfo
    school_locale: str
    school_timezone: str
    include_private_notes: bool
    exported_at: datetime
    goals: tuple[PupilGoalItem, ...]
    assessments: tuple[AssessmentItem, ...]
    week_plans: tuple[WeekPlanItemData, ...]
    reflections: tuple[ReflectionItem, ...]
    evidence: tuple[EvidenceItem, ...]
    feedback: tuple[FeedbackItem, ...]
    learning_plans: tuple[LearningPlanItem, ...]
    observations: tuple[ObservationItem, ...]
    talks: tuple[TalkItem, ...]
    files: tuple[StoredFileRef, ...] = field(default=())  # every file referred to above, once


async def collect_pupil_data(
    session: AsyncSession,
    *,
    pupil_id: int,
    include_private_notes: bool = False,
    now: datetime | None = None,
) -> PupilData:
    """Everything the bot keeps about one pupil. Teachers' private notes only with
    `include_private_notes`; other pupils named in a shared note are left out (their data)."""
    person = await session.get(Person, pupil_id)
    if person is None or not is_pupil(person):
        raise PrivacyError("not a pupil")
    school = await session.get(School, person.school_id)
    assert school is not None
    collect = _Collector(
        session,
        pupil_id,
        goals=await _goal_refs(session, pupil_id),
        names=await _names(session, person.school_id),
        levels=await _levels(session, person.school_id),
    )
    goals = await collect.goals()
    return PupilData(
        pupil=await collect.info(person, school),
        school_locale=school.locale,
        school_timezone=school.timezone,
        include_private_notes=include_private_notes,
        exported_at=now or utcnow(),
        goals=goals,
        assessments=await collect.assessments(),
        week_plans=await collect.week_plans(),
        reflections=await collect.reflections(),
        evidence=await collect.evidence(),
        feedback=await collect.feedback(),
        learning_plans=await collect.learning_plans({item.id: item.goal for item in goals}),
        observations=await collect.observations(include_private=include_private_notes),
        talks=await collect.talks(),
        files=tuple(collect.files.values()),
    )


class _Collector:
    """The queries of one export; remembers every file met on the way (each listed once)."""

    def __init__(
        self,
        session: AsyncSession,
        pupil_id: int,
        *,
        goals: dict[int, GoalRef],
        names: dict[int, str],
        levels: dict[int, str],
    ) -> None:
        self.session = session
        self.pupil_id = pupil_id
        self.goal_refs = goals
        self.names = names
        self.levels = levels
        self.files: dict[int, StoredFileRef] = {}

    async def file(self, media_file_id: int | None) -> StoredFileRef | None:
        if media_file_id is None:
            return None
        if media_file_id not in self.files:
            media = await self.session.get(MediaFile, media_file_id)
            if media is None:
                return None
            self.files[media_file_id] = StoredFileRef(
                media_file_id=media.id,
                sha256=media.sha256,
                kind=media.kind.value,
                mime_type=media.mime_type,
                size_bytes=media.size_bytes,
                width=media.width,
                height=media.height,
                relative_path=relative_path_for(media.sha256, media.mime_type),
            )
        return self.files[media_file_id]

    async def goal(self, goal_id: int | None) -> GoalRef | None:
        """A goal by id; notes may name a goal the pupil never had."""
        if goal_id is None:
            return None
        if goal_id not in self.goal_refs:
            goal = await self.session.get(Goal, goal_id)
            if goal is None:
                return None
            self.goal_refs[goal_id] = GoalRef(goal.id, goal.code, goal.text)
        return self.goal_refs[goal_id]

    async def info(self, person: Person, school: School) -> PupilInfo:
        session, pupil_id = self.session, self.pupil_id
        groups = (
            await session.execute(
                select(Group.name, Group.school_year)
                .join(GroupMembership, GroupMembership.group_id == Group.id)
                .where(GroupMembership.person_id == pupil_id)
                .order_by(Group.school_year, Group.name)
            )
        ).all()
        parents = (
            await session.scalars(
                select(Person.display_name)
                .join(Guardianship, Guardianship.parent_id == Person.id)
                .where(Guardianship.pupil_id == pupil_id)
                .order_by(Person.display_name)
            )
        ).all()
        account = await session.scalar(
            select(AccountPerson.account_id).where(AccountPerson.person_id == pupil_id)
        )
        return PupilInfo(
            id=person.id,
            external_id=person.external_id,
            name=person.display_name,
            school=school.name,
            locale=person.locale,
            groups=tuple(f"{name} ({year})" for name, year in groups),
            parents=tuple(parents),
            has_telegram_account=account is not None,
            left_school_on=person.left_school_on,
            created_at=person.created_at,
        )

    async def goals(self) -> tuple[PupilGoalItem, ...]:
        rows = (
            await self.session.execute(
                select(PupilGoal, LearningLine.name, GoalSet.name, Period)
                .join(Goal, Goal.id == PupilGoal.goal_id)
                .join(LearningLine, LearningLine.id == Goal.learning_line_id)
                .join(GoalSet, GoalSet.id == Goal.goal_set_id)
                .join(Period, Period.id == PupilGoal.period_id)
                .where(PupilGoal.pupil_id == self.pupil_id)
                .order_by(Period.starts_on, LearningLine.position, Goal.position, PupilGoal.id)
            )
        ).all()
        items = []
        for pupil_goal, line_name, set_name, period in rows:
            activities = (
                await self.session.scalars(
                    select(Activity.text)
                    .where(Activity.pupil_goal_id == pupil_goal.id)
                    .order_by(Activity.id)
                )
            ).all()
            items.append(
                PupilGoalItem(
                    id=pupil_goal.id,
                    goal=self.goal_refs[pupil_goal.goal_id],
                    learning_line=line_name,
                    goal_set=set_name,
                    period=period.name,
                    period_starts_on=period.starts_on,
                    period_ends_on=period.ends_on,
                    status=pupil_goal.status.value,
                    chosen_by=pupil_goal.chosen_by.value,
                    level_aimed=self.levels.get(pupil_goal.level_aimed_id or 0),
                    activities=tuple(activities),
                    created_at=pupil_goal.created_at,
                )
            )
        return tuple(items)

    async def assessments(self) -> tuple[AssessmentItem, ...]:
        rows = (
            await self.session.scalars(
                select(Assessment)
                .where(Assessment.pupil_id == self.pupil_id)
                .order_by(Assessment.assessed_at, Assessment.id)
            )
        ).all()
        return tuple(
            AssessmentItem(
                id=row.id,
                goal=self.goal_refs[row.goal_id],
                level=self.levels.get(row.rubric_level_id or 0)
                or (str(row.level) if row.level is not None else None),
                by=row.by_role.value,
                assessor=self.names.get(row.assessor_id or 0),
                note=row.note,
                assessed_at=row.assessed_at,
            )
            for row in rows
        )

    async def week_plans(self) -> tuple[WeekPlanItemData, ...]:
        plans = (
            await self.session.scalars(
                select(WeekPlan)
                .where(WeekPlan.pupil_id == self.pupil_id)
                .order_by(WeekPlan.week_start)
            )
        ).all()
        result = []
        for plan in plans:
            items = (
                await self.session.execute(
                    select(WeekPlanItem, PupilGoal.goal_id)
                    .join(PupilGoal, PupilGoal.id == WeekPlanItem.pupil_goal_id)
                    .where(WeekPlanItem.week_plan_id == plan.id)
                    .order_by(WeekPlanItem.id)
                )
            ).all()
            entries = tuple(
                WeekPlanEntry(item.id, self.goal_refs[goal_id], item.text, item.done_at)
                for item, goal_id in items
            )
            result.append(WeekPlanItemData(plan.id, plan.week_start, entries))
        return tuple(result)

    async def reflections(self) -> tuple[ReflectionItem, ...]:
        goals: dict[int, list[GoalRef]] = {}
        for reflection_id, goal_id in (
            await self.session.execute(
                select(ReflectionGoal.reflection_id, ReflectionGoal.goal_id)
                .join(Reflection, Reflection.id == ReflectionGoal.reflection_id)
                .where(Reflection.pupil_id == self.pupil_id)
                .order_by(ReflectionGoal.goal_id)
            )
        ).all():
            goals.setdefault(reflection_id, []).append(self.goal_refs[goal_id])
        rows = (
            await self.session.scalars(
                select(Reflection)
                .where(Reflection.pupil_id == self.pupil_id)
                .order_by(Reflection.on_date, Reflection.created_at, Reflection.id)
            )
        ).all()
        return tuple(
            [
                ReflectionItem(
                    id=row.id,
                    on_date=row.on_date,
                    how_it_went=row.how_it_went,
                    effort=row.effort,
                    quality=row.quality,
                    wellbeing=row.wellbeing,
                    motivation=row.motivation,
                    minutes=row.minutes,
                    other_work=row.other_work,
                    text=row.text,
                    next_step=row.next_step,
                    goals=tuple(goals.get(row.id, ())),
                    voice=await self.file(row.voice_file_id),
                    created_at=row.created_at,
                )
                for row in rows
            ]
        )

    async def evidence(self) -> tuple[EvidenceItem, ...]:
        rows = (
            await self.session.scalars(
                select(Evidence)
                .where(Evidence.pupil_id == self.pupil_id)
                .order_by(Evidence.created_at, Evidence.id)
            )
        ).all()
        items = []
        for row in rows:
            files = (
                await self.session.scalars(
                    select(EvidenceFile)
                    .where(EvidenceFile.evidence_id == row.id)
                    .order_by(EvidenceFile.position, EvidenceFile.id)
                )
            ).all()
            refs = [(await self.file(item.media_file_id), item.original_name) for item in files]
            goal_ids = (
                await self.session.scalars(
                    select(EvidenceGoal.goal_id)
                    .where(EvidenceGoal.evidence_id == row.id)
                    .order_by(EvidenceGoal.goal_id)
                )
            ).all()
            items.append(
                EvidenceItem(
                    id=row.id,
                    kind=row.kind.value,
                    caption=row.caption,
                    outside_school=row.outside_school,
                    shared_with_parents=row.shared_with_parents,
                    goals=tuple(self.goal_refs[goal_id] for goal_id in goal_ids),
                    files=tuple(ref for ref, _name in refs if ref is not None),
                    original_names=tuple(name for ref, name in refs if ref is not None),
                    created_at=row.created_at,
                )
            )
        return tuple(items)

    async def feedback(self) -> tuple[FeedbackItem, ...]:
        rows = (
            await self.session.scalars(
                select(Feedback)
                .where(Feedback.pupil_id == self.pupil_id)
                .order_by(Feedback.created_at, Feedback.id)
            )
        ).all()
        return tuple(
            FeedbackItem(
                id=row.id,
                author_role=row.author_role.value,
                target=row.target.value,
                target_id={
                    FeedbackTarget.EVIDENCE: row.evidence_id,
                    FeedbackTarget.PLAN: row.learning_plan_id,
                    FeedbackTarget.GOAL: row.pupil_goal_id,
                }[row.target],
                top=row.top,
                tip=row.tip,
                created_at=row.created_at,
            )
            for row in rows
        )

    async def learning_plans(
        self, pupil_goals: Mapping[int, GoalRef]
    ) -> tuple[LearningPlanItem, ...]:
        plans = (
            await self.session.scalars(
                select(LearningPlan)
                .where(LearningPlan.pupil_id == self.pupil_id)
                .order_by(LearningPlan.created_at, LearningPlan.id)
            )
        ).all()
        items = []
        for plan in plans:
            steps = (
                await self.session.scalars(
                    select(LearningPlanStep)
                    .where(LearningPlanStep.learning_plan_id == plan.id)
                    .order_by(LearningPlanStep.position, LearningPlanStep.id)
                )
            ).all()
            items.append(
                LearningPlanItem(
                    id=plan.id,
                    idea=plan.idea,
                    motivation=plan.motivation,
                    prior_knowledge=plan.prior_knowledge,
                    outcome=plan.outcome,
                    needs=plan.needs,
                    goal=pupil_goals.get(plan.pupil_goal_id or 0),
                    steps=tuple(
                        PlanStepItem(step.position, step.what, step.who, step.when_text)
                        for step in steps
                    ),
                    created_at=plan.created_at,
                    updated_at=plan.updated_at,
                )
            )
        return tuple(items)

    async def observations(self, *, include_private: bool) -> tuple[ObservationItem, ...]:
        query = (
            select(Observation)
            .join(ObservationPupil, ObservationPupil.observation_id == Observation.id)
            .where(ObservationPupil.pupil_id == self.pupil_id)
        )
        if not include_private:
            query = query.where(Observation.is_private.is_(False))
        notes = (
            await self.session.scalars(query.order_by(Observation.created_at, Observation.id))
        ).all()
        items = []
        for note in notes:
            tags = (
                await self.session.scalars(
                    select(ObservationTag.tag)
                    .where(ObservationTag.observation_id == note.id)
                    .order_by(ObservationTag.tag)
                )
            ).all()
            items.append(
                ObservationItem(
                    id=note.id,
                    author=self.names.get(note.author_id or 0),
                    goal=await self.goal(note.goal_id),
                    text=note.text,
                    tags=tuple(tags),
                    is_private=note.is_private,
                    photo=await self.file(note.photo_file_id),
                    voice=await self.file(note.voice_file_id),
                    created_at=note.created_at,
                )
            )
        return tuple(items)

    async def talks(self) -> tuple[TalkItem, ...]:
        talks = (
            await self.session.scalars(
                select(Talk)
                .where(Talk.pupil_id == self.pupil_id)
                .order_by(Talk.scheduled_at, Talk.id)
            )
        ).all()
        items = []
        for talk in talks:
            people = (
                await self.session.scalars(
                    select(TalkParticipant.person_id).where(TalkParticipant.talk_id == talk.id)
                )
            ).all()
            shown = (
                await self.session.scalars(
                    select(TalkEvidence.evidence_id)
                    .where(TalkEvidence.talk_id == talk.id)
                    .order_by(TalkEvidence.evidence_id)
                )
            ).all()
            items.append(
                TalkItem(
                    id=talk.id,
                    kind=talk.kind.value,
                    status=talk.status.value,
                    scheduled_at=talk.scheduled_at,
                    duration_minutes=talk.duration_minutes,
                    place=talk.place,
                    organiser=self.names.get(talk.organiser_id or 0),
                    participants=tuple(sorted(self.names[p] for p in people if p in self.names)),
                    preparation=dict(talk.preparation or {}),
                    notes=talk.notes,
                    agreements=talk.agreements,
                    evidence_ids=tuple(shown),
                    created_at=talk.created_at,
                )
            )
        return tuple(items)


async def _goal_refs(session: AsyncSession, pupil_id: int) -> dict[int, GoalRef]:
    """Every goal the pupil's rows refer to, by id."""
    used = (
        select(PupilGoal.goal_id)
        .where(PupilGoal.pupil_id == pupil_id)
        .union(
            select(Assessment.goal_id).where(Assessment.pupil_id == pupil_id),
            select(ReflectionGoal.goal_id)
            .join(Reflection, Reflection.id == ReflectionGoal.reflection_id)
            .where(Reflection.pupil_id == pupil_id),
            select(EvidenceGoal.goal_id)
            .join(Evidence, Evidence.id == EvidenceGoal.evidence_id)
            .where(Evidence.pupil_id == pupil_id),
        )
    )
    rows = (
        await session.execute(select(Goal.id, Goal.code, Goal.text).where(Goal.id.in_(used)))
    ).all()
    return {goal_id: GoalRef(goal_id, code, text) for goal_id, code, text in rows}


async def _names(session: AsyncSession, school_id: int) -> dict[int, str]:
    """Names of the school's teachers, parents and admins (authors, assessors, participants).
    Pupils are left out on purpose: another pupil's name is not this pupil's data."""
    rows = (
        await session.execute(
            select(Person.id, Person.display_name).where(
                Person.school_id == school_id, Person.role != Role.PUPIL
            )
        )
    ).all()
    return dict(rows)


async def _levels(session: AsyncSession, school_id: int) -> dict[int, str]:
    """Rubric level names of the school's goal sets, by id."""
    rows = (
        await session.execute(
            select(RubricLevel.id, RubricLevel.name)
            .join(GoalSet, GoalSet.id == RubricLevel.goal_set_id)
            .where(GoalSet.school_id == school_id)
        )
    ).all()
    return dict(rows)


async def record_export(
    session: AsyncSession,
    *,
    data: PupilData,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    via: str,
) -> AuditEvent:
    """The audit entry of an export: who, which pupil (by id), with or without private notes."""
    person = await session.get(Person, data.pupil.id)
    return await record_audit(
        session,
        school_id=person.school_id if person is not None else None,
        actor_person_id=actor_person_id,
        actor_label=actor_label,
        action=ACTION_EXPORT,
        subject_kind=SUBJECT_PERSON,
        subject_ref=person_ref(data.pupil.id),
        details={
            "via": via,
            "include_private_notes": data.include_private_notes,
            "files": len(data.files),
        },
    )


# --- erasure -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasurePreview:
    """What erasing a pupil removes, counted (for the confirmation and the audit entry)."""

    counts: dict[str, int]


@dataclass(frozen=True)
class ErasureResult:
    person_id: int
    external_id_hash: str
    counts: dict[str, int]
    media_rows_removed: int
    audit_event_id: int


async def erasure_preview(session: AsyncSession, *, pupil_id: int) -> ErasurePreview:
    async def count(query: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    own_notes = _notes_of(pupil_id)
    shared_notes = select(ObservationPupil.observation_id).where(
        ObservationPupil.observation_id.in_(own_notes),
        ObservationPupil.pupil_id != pupil_id,
    )
    counts = {
        "reflections": await count(select(Reflection.id).where(Reflection.pupil_id == pupil_id)),
        "evidence": await count(select(Evidence.id).where(Evidence.pupil_id == pupil_id)),
        "goals": await count(select(PupilGoal.id).where(PupilGoal.pupil_id == pupil_id)),
        "assessments": await count(select(Assessment.id).where(Assessment.pupil_id == pupil_id)),
        "week_plans": await count(select(WeekPlan.id).where(WeekPlan.pupil_id == pupil_id)),
        "learning_plans": await count(
            select(LearningPlan.id).where(LearningPlan.pupil_id == pupil_id)
        ),
        "feedback": await count(select(Feedback.id).where(Feedback.pupil_id == pupil_id)),
        "talks": await count(select(Talk.id).where(Talk.pupil_id == pupil_id)),
        "observations_removed": await count(
            select(Observation.id).where(
                Observation.id.in_(own_notes), Observation.id.not_in(shared_notes)
            )
        ),
        "observations_unlinked": await count(shared_notes.distinct()),
        "parent_links": await count(
            select(Guardianship.parent_id).where(Guardianship.pupil_id == pupil_id)
        ),
        "telegram_links": await count(
            select(AccountPerson.account_id).where(AccountPerson.person_id == pupil_id)
        ),
    }
    return ErasurePreview(counts)


def _notes_of(pupil_id: int) -> Any:
    return select(ObservationPupil.observation_id).where(ObservationPupil.pupil_id == pupil_id)


async def erase_pupil(
    session: AsyncSession,
    *,
    pupil_id: int,
    media_dir: Path,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    reason: str = "request",
) -> ErasureResult:
    """Erase a pupil for good: rows, files (those no one else uses), parents' links, the
    Telegram link, reminders, dialogue state. Writes one audit entry without the name.

    Most rows go by ON DELETE CASCADE from the person row (SQLite's foreign keys are on, see
    storage.db); this function handles what a cascade cannot: notes about several pupils keep
    their other pupils, reminders that mention the pupil only in their payload, files.
    """
    person = await session.get(Person, pupil_id)
    if person is None or not is_pupil(person):
        raise PrivacyError("not a pupil")
    school_id, name, external_id = person.school_id, person.display_name, person.external_id
    counts = dict((await erasure_preview(session, pupil_id=pupil_id)).counts)

    # Files first collected, removed last: the rows referring to them must be gone before
    # `delete_media_if_unused` can see that nothing needs them any more.
    media_ids: list[int] = []
    for main, thumbnail in (
        await session.execute(
            select(EvidenceFile.media_file_id, EvidenceFile.thumbnail_file_id)
            .join(Evidence, Evidence.id == EvidenceFile.evidence_id)
            .where(Evidence.pupil_id == pupil_id)
        )
    ).all():
        media_ids += [main] + ([thumbnail] if thumbnail is not None else [])
    media_ids += [
        voice
        for voice in (
            await session.scalars(
                select(Reflection.voice_file_id).where(Reflection.pupil_id == pupil_id)
            )
        ).all()
        if voice is not None
    ]

    # Notes: a note about this pupil alone goes; a note about several stays for the others,
    # without this pupil's link and with their name taken out of its text.
    note_ids = list((await session.scalars(_notes_of(pupil_id))).all())
    shared = set(
        (
            await session.scalars(
                select(ObservationPupil.observation_id).where(
                    ObservationPupil.observation_id.in_(note_ids),
                    ObservationPupil.pupil_id != pupil_id,
                )
            )
        ).all()
    )
    for note in (
        await session.scalars(select(Observation).where(Observation.id.in_(note_ids)))
    ).all():
        if note.id in shared:
            if note.text:
                note.text = redact_name(note.text, name)
            continue
        media_ids += [m for m in (note.photo_file_id, note.voice_file_id) if m is not None]
    alone = [note_id for note_id in note_ids if note_id not in shared]
    if alone:
        await session.execute(delete(Observation).where(Observation.id.in_(alone)))

    # Reminders addressed to the pupil cascade; these are about the pupil, addressed to
    # others (a parent's weekly summary, a talk's invitation, a feedback notice).
    counts["reminders"] = await _delete_reminders(session, pupil_id)

    # The Telegram side: an account that held only this pupil goes entirely (its user id is
    # personal data too), with its dialogue state and code attempts.
    accounts = (
        await session.scalars(
            select(Account)
            .join(AccountPerson, AccountPerson.account_id == Account.id)
            .where(AccountPerson.person_id == pupil_id)
        )
    ).all()
    telegram_ids = [account.telegram_user_id for account in accounts]
    await session.execute(delete(AccountPerson).where(AccountPerson.person_id == pupil_id))
    for account in accounts:
        others = await session.scalar(
            select(func.count())
            .select_from(AccountPerson)
            .where(AccountPerson.account_id == account.id)
        )
        if not others:
            await session.execute(
                delete(InviteAttempt).where(
                    InviteAttempt.telegram_user_id == account.telegram_user_id
                )
            )
            await session.execute(delete(Account).where(Account.id == account.id))
    counts["dialogues"] = await _forget_dialogues(session, pupil_id, name, telegram_ids)

    # The person row: the cascade takes reflections, evidence (with files' rows, goals,
    # feedback), goals, assessments, week and learning plans, talks, invites, memberships,
    # guardianships and the remaining note links.
    await session.execute(delete(Person).where(Person.id == pupil_id))
    await session.flush()

    removed = 0
    for media_file_id in dict.fromkeys(media_ids):
        if await delete_media_if_unused(session, media_file_id=media_file_id, media_dir=media_dir):
            removed += 1
    counts["files"] = removed
    reference = external_id_hash(school_id, external_id)
    event = await record_audit(
        session,
        school_id=school_id,
        actor_person_id=actor_person_id,
        actor_label=actor_label,
        action=ACTION_ERASE,
        subject_kind=SUBJECT_PERSON,
        subject_ref=person_ref(pupil_id),
        details={"reason": reason, "external_id_sha256": reference, "counts": counts},
    )
    return ErasureResult(pupil_id, reference, counts, removed, event.id)


def redact_name(text: str, name: str) -> str:
    """The pupil's full name and first name taken out of a text (whole words, case ignored)."""
    words = name.split()
    for variant in dict.fromkeys([name.strip(), *words[:1]]):
        if len(variant) < 2:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(variant)}(?!\w)", re.IGNORECASE)
        text = pattern.sub(REDACTED, text)
    return text


async def _delete_reminders(session: AsyncSession, pupil_id: int) -> int:
    payload = Reminder.payload
    conditions: list[ColumnElement[bool]] = [
        Reminder.person_id == pupil_id,
        payload["pupil_id"].as_integer() == pupil_id,
    ]
    for key, ids in (
        ("talk_id", select(Talk.id).where(Talk.pupil_id == pupil_id)),
        ("feedback_id", select(Feedback.id).where(Feedback.pupil_id == pupil_id)),
        ("plan_id", select(LearningPlan.id).where(LearningPlan.pupil_id == pupil_id)),
    ):
        conditions.append(payload[key].as_integer().in_(ids))
    reminder_ids = list((await session.scalars(select(Reminder.id).where(or_(*conditions)))).all())
    if reminder_ids:
        await session.execute(delete(Reminder).where(Reminder.id.in_(reminder_ids)))
    return len(reminder_ids)


async def _forget_dialogues(
    session: AsyncSession, pupil_id: int, name: str, telegram_ids: Sequence[int]
) -> int:
    """Dialogue state of the pupil's own chats, and of anyone's dialogue that holds the pupil
    (a teacher halfway through a note or a talk about them): it could not finish anyway."""
    users = {str(telegram_id) for telegram_id in telegram_ids}
    wanted = normalise(name)
    forgotten = 0
    for record in (await session.scalars(select(FsmRecord))).all():
        mine = bool(users & set(record.key.split(":")))
        named = bool(wanted) and wanted in normalise(_text_of(record.data))
        if mine or named or _mentions(record.data, pupil_id):
            await session.delete(record)
            forgotten += 1
    return forgotten


def _mentions(value: Any, pupil_id: int, key: str = "") -> bool:
    if isinstance(value, Mapping):
        return any(_mentions(item, pupil_id, str(name)) for name, item in value.items())
    if isinstance(value, list | tuple):
        return any(_mentions(item, pupil_id, key) for item in value)
    return "pupil" in key and value == pupil_id


def _text_of(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


# --- retention -----------------------------------------------------------------------------------


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier (the last day of a shorter month)."""
    total = day.year * 12 + (day.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class RetentionCandidate:
    pupil: PupilMatch
    school: str
    months: int
    cutoff: date


async def retention_candidates(
    session: AsyncSession, *, today: date, default_months: int
) -> list[RetentionCandidate]:
    """Pupils who left more than N months before `today` (N: the school's retention_months,
    else `default_months`)."""
    found = []
    for school in (await session.scalars(select(School).order_by(School.name))).all():
        months = school.retention_months or default_months
        cutoff = months_before(today, months)
        pupils = (
            await session.scalars(
                select(Person)
                .where(
                    Person.school_id == school.id,
                    Person.role == Role.PUPIL,
                    Person.left_school_on.is_not(None),
                    Person.left_school_on < cutoff,
                )
                .order_by(Person.left_school_on, Person.id)
            )
        ).all()
        found += [RetentionCandidate(_match(p), school.name, months, cutoff) for p in pupils]
    return found


async def apply_retention(
    session: AsyncSession,
    *,
    today: date,
    media_dir: Path,
    default_months: int = DEFAULT_RETENTION_MONTHS,
) -> list[ErasureResult]:
    """Erase every pupil past the retention period, each with an audit entry (actor
    "retention"). For the scheduler's daily housekeeping and `portfolio-bot retention`;
    `today` is the school's date. Running it twice erases nothing the second time; files go
    when the caller commits."""
    results = []
    for candidate in await retention_candidates(
        session, today=today, default_months=default_months
    ):
        results.append(
            await erase_pupil(
                session,
                pupil_id=candidate.pupil.id,
                media_dir=media_dir,
                actor_label=ACTOR_RETENTION,
                reason=f"retention:{candidate.months}",
            )
        )
    return results
