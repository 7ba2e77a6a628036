"""Collecting everything the bot keeps about one pupil, for the export (the right of access,
art. 15): plain frozen data (`storage.subject_data_types`). Teachers' private notes only when
asked for; other pupils named in a shared note are left out (their data, not this pupil's).
Files are listed by their content hash and type; where they lie on disk is the media store's
business. Only reads; PrivacyError when the id is not a pupil's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AccountPerson,
    Activity,
    Assessment,
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    Feedback,
    FeedbackTarget,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    Guardianship,
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
    Role,
    RubricLevel,
    School,
    Talk,
    TalkEvidence,
    TalkParticipant,
    WeekPlan,
    WeekPlanItem,
)
from storage.pupil_lookup import require_pupil
from storage.subject_data_types import (
    AssessmentItem,
    EvidenceItem,
    FeedbackItem,
    GoalRef,
    LearningPlanItem,
    ObservationItem,
    PlanStepItem,
    PupilData,
    PupilGoalItem,
    PupilInfo,
    ReflectionItem,
    StoredFileRef,
    TalkItem,
    WeekPlanEntry,
    WeekPlanItemData,
)
from storage.types import utcnow


async def collect_pupil_data(
    session: AsyncSession,
    *,
    pupil_id: int,
    include_private_notes: bool = False,
    now: datetime | None = None,
) -> PupilData:
    """Everything the bot keeps about one pupil. Teachers' private notes only with
    `include_private_notes`; other pupils named in a shared note are left out (their data)."""
    person = await require_pupil(session, pupil_id=pupil_id)
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
