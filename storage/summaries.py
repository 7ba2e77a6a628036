"""One child's week, as a parent may see it: the data behind the weekly summary.

Privacy is decided by `storage.policy`: `child_week` returns None unless the reader is a
parent of the child, and it only ever reads evidence the child shared with parents and
observations a teacher marked as visible to pupil and parents. The conversation layer turns
this into words and pictures; nothing here knows about Telegram.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import DEFAULT_LEVELS, levels_for, progress_of, pupil_context
from storage.models import (
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    EvidenceKind,
    Goal,
    LearningPlan,
    MediaFile,
    MediaKind,
    Observation,
    ObservationPupil,
    Person,
    Reflection,
    ReflectionGoal,
    Role,
    School,
    Talk,
    TalkStatus,
)
from storage.policy import is_parent_of, notes_visible_to, work_visible_to_parents_clause

# Telegram shows at most 10 items in one album.
MAX_PHOTOS = 10
MAX_NOTES = 3
TALKS_AHEAD = timedelta(weeks=4)


def week_start_of(day: date) -> date:
    """The Monday of the week a day falls in."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class GoalWeek:
    """A goal the child named in this week's reflections, and how many times."""

    goal_id: int
    text: str
    times: int


@dataclass(frozen=True)
class GoalLevel:
    """Where the child stands on one goal of the period (the teacher's view first)."""

    goal_id: int
    text: str
    line_name: str
    line_position: int
    level: int | None  # position on the scale, None: not assessed yet
    level_name: str | None  # the rubric's name as written; None: the default scale
    levels_total: int
    by_teacher: bool


@dataclass(frozen=True)
class SharedPhoto:
    evidence_id: int
    sha256: str
    mime_type: str
    caption: str | None  # on the first photo of an item only
    goals: tuple[str, ...]


@dataclass(frozen=True)
class SharedNote:
    author_name: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class UpcomingTalk:
    id: int
    kind: str
    scheduled_at: datetime
    place: str | None


@dataclass(frozen=True)
class ChildWeek:
    pupil_id: int
    pupil_name: str
    first_name: str
    school_timezone: str
    parent_address_formal: bool
    week_start: date
    week_end: date  # inclusive (Sunday)
    period_name: str | None
    reflections: int
    goals_worked: tuple[GoalWeek, ...]
    effort: tuple[int, ...]
    wellbeing: tuple[int, ...]
    levels: tuple[GoalLevel, ...]
    photos: tuple[SharedPhoto, ...]
    other_shared: int  # shared documents, voice messages, videos (not in the album)
    notes: tuple[SharedNote, ...]
    talks: tuple[UpcomingTalk, ...]
    has_plan: bool

    @property
    def is_empty(self) -> bool:
        return not (self.reflections or self.photos or self.other_shared or self.notes)


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


async def child_week(
    session: AsyncSession, *, parent_id: int, pupil_id: int, week_start: date, now: datetime
) -> ChildWeek | None:
    """The week starting on `week_start` (a Monday) of a parent's own child; None for a child
    that is not theirs."""
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=pupil_id):
        return None
    pupil = await session.get(Person, pupil_id)
    assert pupil is not None
    school = await session.get(School, pupil.school_id)
    assert school is not None
    zone = ZoneInfo(school.timezone)
    week_end = week_start + timedelta(days=6)
    since = datetime.combine(week_start, time(0), tzinfo=zone).astimezone(UTC)
    until = datetime.combine(week_end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)

    reflections = (
        await session.scalars(
            select(Reflection).where(
                Reflection.pupil_id == pupil_id,
                Reflection.on_date >= week_start,
                Reflection.on_date <= week_end,
            )
        )
    ).all()
    goal_rows = (
        await session.execute(
            select(Goal.id, Goal.text)
            .join(ReflectionGoal, ReflectionGoal.goal_id == Goal.id)
            .join(Reflection, Reflection.id == ReflectionGoal.reflection_id)
            .where(
                Reflection.pupil_id == pupil_id,
                Reflection.on_date >= week_start,
                Reflection.on_date <= week_end,
            )
        )
    ).all()
    counts = Counter(goal_id for goal_id, _text in goal_rows)
    texts = dict(goal_rows)
    goals_worked = tuple(
        GoalWeek(goal_id, texts[goal_id], times)
        for goal_id, times in sorted(counts.items(), key=lambda item: (-item[1], texts[item[0]]))
    )

    context = await pupil_context(session, pupil_id=pupil_id, today=week_end)
    levels = []
    for progress in await progress_of(session, context=context, since=week_start):
        scale = await levels_for(session, goal_id=progress.choice.goal.id)
        by_teacher = progress.teacher_level is not None
        level = progress.teacher_level if by_teacher else progress.self_level
        name = progress.teacher_level_name if by_teacher else progress.self_level_name
        goal = progress.choice.goal
        levels.append(
            GoalLevel(
                goal_id=goal.id,
                text=goal.text,
                line_name=goal.line_name,
                line_position=goal.line_position,
                level=level,
                level_name=name,
                levels_total=len(scale) or DEFAULT_LEVELS,
                by_teacher=by_teacher,
            )
        )

    photos, other_shared = await _shared_work(session, pupil_id=pupil_id, since=since, until=until)
    notes = await _shareable_notes(session, pupil_id=pupil_id, since=since, until=until)
    talks = (
        await session.scalars(
            select(Talk)
            .where(
                Talk.pupil_id == pupil_id,
                Talk.status == TalkStatus.PLANNED,
                Talk.scheduled_at >= now,
                Talk.scheduled_at <= now + TALKS_AHEAD,
            )
            .order_by(Talk.scheduled_at)
            .limit(3)
        )
    ).all()
    has_plan = await session.scalar(
        select(LearningPlan.id).where(LearningPlan.pupil_id == pupil_id).limit(1)
    )
    return ChildWeek(
        pupil_id=pupil_id,
        pupil_name=pupil.display_name,
        first_name=_first_name(pupil.display_name),
        school_timezone=school.timezone,
        parent_address_formal=school.parent_address_formal,
        week_start=week_start,
        week_end=week_end,
        period_name=context.period_name,
        reflections=len(reflections),
        goals_worked=goals_worked,
        effort=tuple(r.effort for r in reflections if r.effort is not None),
        wellbeing=tuple(r.wellbeing for r in reflections if r.wellbeing is not None),
        levels=tuple(levels),
        photos=photos,
        other_shared=other_shared,
        notes=notes,
        talks=tuple(
            UpcomingTalk(talk.id, str(talk.kind), talk.scheduled_at, talk.place) for talk in talks
        ),
        has_plan=has_plan is not None,
    )


async def _shared_work(
    session: AsyncSession, *, pupil_id: int, since: datetime, until: datetime
) -> tuple[tuple[SharedPhoto, ...], int]:
    """This week's work the child shared: its photos (at most 10, oldest first, an item's
    caption on its first photo) and how many other shared items there are."""
    items = (
        await session.scalars(
            select(Evidence)
            .where(
                Evidence.pupil_id == pupil_id,
                # Only what the child chose to share (and a teacher let through, where the
                # school asks for that); nothing else ever reaches a parent.
                work_visible_to_parents_clause(),
                Evidence.created_at >= since,
                Evidence.created_at < until,
            )
            .order_by(Evidence.created_at, Evidence.id)
        )
    ).all()
    photos: list[SharedPhoto] = []
    others = 0
    for item in items:
        if item.kind is not EvidenceKind.PHOTO:
            others += 1
            continue
        goals = tuple(
            (
                await session.scalars(
                    select(Goal.text)
                    .join(EvidenceGoal, EvidenceGoal.goal_id == Goal.id)
                    .where(EvidenceGoal.evidence_id == item.id)
                    .order_by(Goal.position, Goal.id)
                )
            ).all()
        )
        files = (
            await session.execute(
                select(MediaFile.sha256, MediaFile.mime_type)
                .join(EvidenceFile, EvidenceFile.media_file_id == MediaFile.id)
                .where(EvidenceFile.evidence_id == item.id, MediaFile.kind == MediaKind.IMAGE)
                .order_by(EvidenceFile.position, EvidenceFile.id)
            )
        ).all()
        for index, (sha256, mime_type) in enumerate(files):
            if len(photos) >= MAX_PHOTOS:
                break
            photos.append(
                SharedPhoto(item.id, sha256, mime_type, item.caption if index == 0 else None, goals)
            )
    return tuple(photos), others


async def _shareable_notes(
    session: AsyncSession, *, pupil_id: int, since: datetime, until: datetime
) -> tuple[SharedNote, ...]:
    rows = (
        await session.execute(
            select(Observation, Person.display_name)
            .join(ObservationPupil, ObservationPupil.observation_id == Observation.id)
            .outerjoin(Person, Person.id == Observation.author_id)
            .where(
                ObservationPupil.pupil_id == pupil_id,
                # Private notes stay with the teachers; only notes marked for parents.
                *notes_visible_to(Role.PARENT),
                Observation.text.is_not(None),
                Observation.created_at >= since,
                Observation.created_at < until,
            )
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(MAX_NOTES)
        )
    ).all()
    return tuple(
        SharedNote(author or "", observation.text or "", observation.created_at)
        for observation, author in rows
    )
