"""Talks (gesprekken): planning, moving, cancelling, the pupil's preparation, the agreements,
and the period summary the teacher reads the day before.

Who may do what is decided by `storage.policy`. A teacher plans talks only for pupils of
their own current groups and opens only the talks they organise (and still teach the pupil
of); a pupil sees their own talks, a parent those of their own children. Every id from a
button is checked again by these functions, so a forged button finds nothing and changes
nothing.

Messages to the people involved are durable reminder rows (`storage.reminders`), one per
person and moment. Their keys carry a version, `talk:{id}:v{n}:{moment}:{person}`: moving a
talk cancels the pending rows of every version and schedules version n+1, so even a talk moved
back to its first time gets fresh rows. Moments are computed from the school's wall time
(`SchoolCalendar.at`), so a daylight-saving change neither moves nor doubles a reminder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import goal_available_to, progress_of, pupil_context
from storage.models import (
    ChosenBy,
    Evidence,
    EvidenceFile,
    Goal,
    MediaFile,
    MediaKind,
    Observation,
    ObservationPupil,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    Reminder,
    ReminderStatus,
    Role,
    Talk,
    TalkEvidence,
    TalkKind,
    TalkParticipant,
    TalkStatus,
)
from storage.policy import linked_children, linked_parents, talks_visible_to, teaches_pupil
from storage.reminders import ReminderKind, cancel_pending, schedule_reminder
from storage.schooltime import SchoolCalendar, calendar_of

DAY_BEFORE = "day_before"
HOUR_BEFORE = "hour_before"

MAX_PLACE = 120
MAX_ANSWER = 1000
MAX_AGREEMENTS = 3000
MAX_EVIDENCE = 3
MAX_NEW_GOALS = 5
# A talk planned at short notice still gets its preparation when this much time is left.
PREPARATION_MIN_LEAD = timedelta(hours=4)
# ... and the teacher's brief this long before it, when the day before has passed.
LATE_BRIEF_LEAD = timedelta(hours=2)
# A talk shows in the teacher's and pupil's lists this long after it was due.
RECENT = timedelta(days=21)
# Parents' copy of the agreements is not worth sending a week late.
AGREEMENTS_STALE = timedelta(days=7)
PREPARATION_KEYS = ("proud", "went_well", "hard", "next")

_VERSION = re.compile(r"^talk:\d+:v(\d+):")


class TalkRefusedError(Exception):
    """Not this person's talk or pupil, not in this state, or a moment in the past."""


@dataclass(frozen=True)
class TalkView:
    id: int
    kind: TalkKind
    status: TalkStatus
    pupil_id: int
    pupil_name: str
    organiser_id: int | None
    organiser_name: str | None
    school_id: int
    scheduled_at: datetime
    duration_minutes: int
    place: str | None
    preparation: dict[str, Any]
    agreements: str | None
    evidence_ids: tuple[int, ...]

    @property
    def prepared(self) -> bool:
        return bool(self.preparation)


async def _view(session: AsyncSession, talk: Talk) -> TalkView:
    pupil = await session.get(Person, talk.pupil_id)
    assert pupil is not None
    organiser = await session.get(Person, talk.organiser_id) if talk.organiser_id else None
    evidence = (
        await session.scalars(
            select(TalkEvidence.evidence_id)
            .where(TalkEvidence.talk_id == talk.id)
            .order_by(TalkEvidence.evidence_id)
        )
    ).all()
    return TalkView(
        id=talk.id,
        kind=talk.kind,
        status=talk.status,
        pupil_id=talk.pupil_id,
        pupil_name=pupil.display_name,
        organiser_id=talk.organiser_id,
        organiser_name=organiser.display_name if organiser else None,
        school_id=pupil.school_id,
        scheduled_at=talk.scheduled_at,
        duration_minutes=talk.duration_minutes,
        place=talk.place,
        preparation=dict(talk.preparation or {}),
        agreements=talk.agreements,
        evidence_ids=tuple(evidence),
    )


async def talk_by_id(session: AsyncSession, *, talk_id: int) -> TalkView | None:
    """The talk as it is now, for the reminders (which check it is still as announced)."""
    talk = await session.get(Talk, talk_id, populate_existing=True)
    return await _view(session, talk) if talk is not None else None


async def _own_talk(session: AsyncSession, *, teacher_id: int, talk_id: int) -> Talk | None:
    """A talk this teacher organised, about a pupil they still teach."""
    talk = await session.get(Talk, talk_id, populate_existing=True)
    if talk is None or talk.organiser_id != teacher_id:
        return None
    if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=talk.pupil_id):
        return None
    return talk


async def teacher_talk(session: AsyncSession, *, teacher_id: int, talk_id: int) -> TalkView | None:
    talk = await _own_talk(session, teacher_id=teacher_id, talk_id=talk_id)
    return await _view(session, talk) if talk is not None else None


# --- who is involved ---------------------------------------------------------------------


async def parents_of(session: AsyncSession, *, pupil_id: int) -> list[int]:
    parents = linked_parents(pupil_id)
    return list((await session.scalars(parents.order_by(*parents.selected_columns))).all())


async def participants_of(session: AsyncSession, *, talk_id: int) -> list[int]:
    return list(
        (
            await session.scalars(
                select(TalkParticipant.person_id)
                .where(TalkParticipant.talk_id == talk_id)
                .order_by(TalkParticipant.person_id)
            )
        ).all()
    )


async def _invitees(session: AsyncSession, talk: Talk) -> list[int]:
    """Everyone involved except the teacher who planned it (they know already)."""
    return [
        person_id
        for person_id in await participants_of(session, talk_id=talk.id)
        if person_id != talk.organiser_id
    ]


# --- moments and reminder rows -----------------------------------------------------------


@dataclass(frozen=True)
class TalkMoments:
    """When the talk's reminders go out (aware UTC); None: that one is skipped."""

    preparation: datetime | None
    day_before: datetime | None
    brief: datetime | None
    hour_before: datetime | None


def talk_moments(calendar: SchoolCalendar, *, scheduled_at: datetime, now: datetime) -> TalkMoments:
    """The preparation two school days before and the day-before messages the school day
    before, both at the school's reflection time (never at night); the last reminder an hour
    before. A moment already past is skipped, except that a talk planned at short notice
    still gets its preparation now and the teacher's brief two hours before."""
    talk_day = calendar.local_date(scheduled_at)
    at_school = calendar.reflection_time
    preparation: datetime | None = calendar.at(calendar.school_days_before(talk_day, 2), at_school)
    if preparation is not None and preparation <= now:
        preparation = now if scheduled_at - now >= PREPARATION_MIN_LEAD else None
    day_before: datetime | None = calendar.at(calendar.school_days_before(talk_day, 1), at_school)
    brief = day_before
    if day_before is not None and day_before <= now:
        day_before = None
        late = scheduled_at - LATE_BRIEF_LEAD
        brief = late if late > now else None
    hour_before: datetime | None = scheduled_at - timedelta(hours=1)
    if hour_before is not None and hour_before <= now:
        hour_before = None
    return TalkMoments(preparation, day_before, brief, hour_before)


def _prefix(talk_id: int) -> str:
    return f"talk:{talk_id}:"


async def _next_version(session: AsyncSession, talk_id: int) -> int:
    keys = (
        await session.scalars(
            select(Reminder.idempotency_key).where(
                Reminder.idempotency_key.startswith(f"talk:{talk_id}:v", autoescape=True)
            )
        )
    ).all()
    versions = [int(match.group(1)) for key in keys if (match := _VERSION.match(key))]
    return max(versions, default=0) + 1


async def _schedule(session: AsyncSession, talk: Talk, *, now: datetime, moved: bool) -> int:
    """All reminder rows of the talk as it is now; returns the version they carry."""
    pupil = await session.get(Person, talk.pupil_id)
    assert pupil is not None
    calendar = await calendar_of(session, school_id=pupil.school_id)
    assert calendar is not None
    version = await _next_version(session, talk.id)
    base = f"talk:{talk.id}:v{version}"
    payload = {
        "talk_id": talk.id,
        "version": version,
        "scheduled_at": talk.scheduled_at.isoformat(),
    }
    stale = talk.scheduled_at
    moments = talk_moments(calendar, scheduled_at=talk.scheduled_at, now=now)
    invitees = await _invitees(session, talk)
    for person_id in invitees:
        await schedule_reminder(
            session,
            kind=ReminderKind.TALK_INVITATION,
            person_id=person_id,
            due_at=now,
            idempotency_key=f"{base}:invitation:{person_id}",
            payload={**payload, "moved": moved},
            stale_at=stale,
        )
    everyone = [*invitees, *([talk.organiser_id] if talk.organiser_id else [])]
    for person_id in everyone:
        # The organiser's day-before message is the brief, which says the same and more.
        if moments.day_before is not None and person_id != talk.organiser_id:
            await schedule_reminder(
                session,
                kind=ReminderKind.TALK_REMINDER,
                person_id=person_id,
                due_at=moments.day_before,
                idempotency_key=f"{base}:{DAY_BEFORE}:{person_id}",
                payload={**payload, "moment": DAY_BEFORE},
                stale_at=stale,
            )
        if moments.hour_before is not None:
            await schedule_reminder(
                session,
                kind=ReminderKind.TALK_REMINDER,
                person_id=person_id,
                due_at=moments.hour_before,
                idempotency_key=f"{base}:{HOUR_BEFORE}:{person_id}",
                payload={**payload, "moment": HOUR_BEFORE},
                stale_at=stale,
            )
    if moments.preparation is not None:
        await schedule_reminder(
            session,
            kind=ReminderKind.TALK_PREPARATION,
            person_id=talk.pupil_id,
            due_at=moments.preparation,
            idempotency_key=f"{base}:preparation:{talk.pupil_id}",
            payload=payload,
            stale_at=stale,
        )
    if moments.brief is not None and talk.organiser_id is not None:
        await schedule_reminder(
            session,
            kind=ReminderKind.TALK_BRIEF,
            person_id=talk.organiser_id,
            due_at=moments.brief,
            idempotency_key=f"{base}:brief:{talk.organiser_id}",
            payload=payload,
            stale_at=stale,
        )
    return version


# --- planning, moving, cancelling --------------------------------------------------------


async def plan_talk(
    session: AsyncSession,
    *,
    organiser_id: int,
    pupil_id: int,
    kind: TalkKind,
    scheduled_at: datetime,
    place: str | None,
    now: datetime,
) -> TalkView:
    """A new talk with its participants (parents too for a driehoeksgesprek) and reminders."""
    if not await teaches_pupil(session, teacher_id=organiser_id, pupil_id=pupil_id):
        raise TalkRefusedError("pupil")
    if scheduled_at <= now:
        raise TalkRefusedError("past")
    talk = Talk(
        kind=kind,
        pupil_id=pupil_id,
        organiser_id=organiser_id,
        scheduled_at=scheduled_at,
        place=(place or "").strip()[:MAX_PLACE] or None,
        status=TalkStatus.PLANNED,
        preparation={},
    )
    session.add(talk)
    await session.flush()
    people = {pupil_id, organiser_id}
    if kind is TalkKind.TRIPARTITE:
        people.update(await parents_of(session, pupil_id=pupil_id))
    session.add_all(TalkParticipant(talk_id=talk.id, person_id=p) for p in sorted(people))
    await session.flush()
    await _schedule(session, talk, now=now, moved=False)
    return await _view(session, talk)


async def move_talk(
    session: AsyncSession, *, teacher_id: int, talk_id: int, scheduled_at: datetime, now: datetime
) -> TalkView:
    talk = await _own_talk(session, teacher_id=teacher_id, talk_id=talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        raise TalkRefusedError("talk")
    if scheduled_at <= now:
        raise TalkRefusedError("past")
    await cancel_pending(session, key_prefix=_prefix(talk.id), reason="talk moved")
    talk.scheduled_at = scheduled_at
    await session.flush()
    await _schedule(session, talk, now=now, moved=True)
    return await _view(session, talk)


async def cancel_talk(
    session: AsyncSession, *, teacher_id: int, talk_id: int, now: datetime
) -> TalkView:
    """Cancels the talk and its pending reminders; the invitees get a notice."""
    talk = await _own_talk(session, teacher_id=teacher_id, talk_id=talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        raise TalkRefusedError("talk")
    await cancel_pending(session, key_prefix=_prefix(talk.id), reason="talk cancelled")
    talk.status = TalkStatus.CANCELLED
    await session.flush()
    # Nobody needs to hear about a talk whose time has passed.
    if talk.scheduled_at > now:
        for person_id in await _invitees(session, talk):
            await schedule_reminder(
                session,
                kind=ReminderKind.TALK_CANCELLED,
                person_id=person_id,
                due_at=now,
                idempotency_key=f"talk:{talk.id}:cancelled:{person_id}",
                payload={"talk_id": talk.id, "scheduled_at": talk.scheduled_at.isoformat()},
                stale_at=talk.scheduled_at,
            )
    return await _view(session, talk)


# --- lists -------------------------------------------------------------------------------


def _listed(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Planned talks (still to come, or not yet wrapped up) and recently held ones."""
    return (
        or_(Talk.status == TalkStatus.PLANNED, Talk.scheduled_at >= now - RECENT),
        Talk.status != TalkStatus.CANCELLED,
    )


async def _views(session: AsyncSession, talks: Sequence[Talk]) -> list[TalkView]:
    return [await _view(session, talk) for talk in talks]


async def talks_of_teacher(
    session: AsyncSession, *, teacher_id: int, now: datetime, limit: int = 12
) -> list[TalkView]:
    """The teacher's own talks: the planned ones (soonest first), then recently held ones."""
    talks = (
        await session.scalars(
            select(Talk)
            .where(Talk.organiser_id == teacher_id, *_listed(now))
            .order_by(Talk.status != TalkStatus.PLANNED, Talk.scheduled_at)
            .limit(limit * 2)
        )
    ).all()
    views = []
    for talk in talks:
        if await teaches_pupil(session, teacher_id=teacher_id, pupil_id=talk.pupil_id):
            views.append(await _view(session, talk))
    return views[:limit]


async def talks_of_pupil(
    session: AsyncSession, *, pupil_id: int, now: datetime, limit: int = 8
) -> list[TalkView]:
    talks = (
        await session.scalars(
            select(Talk)
            .where(Talk.pupil_id == pupil_id, *_listed(now))
            .order_by(Talk.status != TalkStatus.PLANNED, Talk.scheduled_at.desc())
            .limit(limit)
        )
    ).all()
    return await _views(session, talks)


async def talks_of_parent(
    session: AsyncSession, *, parent_id: int, now: datetime, limit: int = 8
) -> list[TalkView]:
    """The talks a parent takes part in (driehoeksgesprekken), of their own children only."""
    talks = (
        await session.scalars(
            select(Talk)
            .where(
                Talk.pupil_id.in_(linked_children(parent_id)),
                *talks_visible_to(parent_id, Role.PARENT),
                *_listed(now),
            )
            .order_by(Talk.status != TalkStatus.PLANNED, Talk.scheduled_at.desc())
            .limit(limit)
        )
    ).all()
    return await _views(session, talks)


# --- the pupil's preparation -------------------------------------------------------------


async def talk_to_prepare(session: AsyncSession, *, pupil_id: int, talk_id: int) -> TalkView | None:
    """The pupil's own planned talk; None for anyone else's, a cancelled or a held one."""
    talk = await session.get(Talk, talk_id, populate_existing=True)
    if talk is None or talk.pupil_id != pupil_id or talk.status is not TalkStatus.PLANNED:
        return None
    return await _view(session, talk)


@dataclass(frozen=True)
class EvidenceChoice:
    id: int
    caption: str | None
    kind: str
    created_at: datetime


async def evidence_choices(
    session: AsyncSession, *, pupil_id: int, limit: int = 8
) -> list[EvidenceChoice]:
    """The pupil's newest work, to pick what to show in the talk."""
    rows = (
        await session.scalars(
            select(Evidence)
            .where(Evidence.pupil_id == pupil_id)
            .order_by(Evidence.created_at.desc(), Evidence.id.desc())
            .limit(limit)
        )
    ).all()
    return [EvidenceChoice(e.id, e.caption, e.kind.value, e.created_at) for e in rows]


async def save_preparation(
    session: AsyncSession,
    *,
    pupil_id: int,
    talk_id: int,
    answers: dict[str, str | None],
    evidence_ids: Sequence[int],
    now: datetime,
) -> TalkView:
    """The pupil's answers and 1-3 pieces of their own work; other ids are refused.

    Prepared after the teacher's brief went out: the brief is sent once more, now."""
    talk = await session.get(Talk, talk_id, populate_existing=True)
    if talk is None or talk.pupil_id != pupil_id or talk.status is not TalkStatus.PLANNED:
        raise TalkRefusedError("talk")
    wanted = list(dict.fromkeys(evidence_ids))
    if len(wanted) > MAX_EVIDENCE:
        raise TalkRefusedError("evidence")
    own = set(
        (
            await session.scalars(
                select(Evidence.id).where(Evidence.pupil_id == pupil_id, Evidence.id.in_(wanted))
            )
        ).all()
    )
    if own != set(wanted):
        raise TalkRefusedError("evidence")
    talk.preparation = {
        key: (answers.get(key) or "").strip()[:MAX_ANSWER] or None for key in PREPARATION_KEYS
    }
    for old in (
        await session.scalars(select(TalkEvidence).where(TalkEvidence.talk_id == talk.id))
    ).all():
        await session.delete(old)
    await session.flush()
    session.add_all(TalkEvidence(talk_id=talk.id, evidence_id=e) for e in wanted)
    await session.flush()
    await _brief_again(session, talk, now=now)
    return await _view(session, talk)


async def _brief_again(session: AsyncSession, talk: Talk, *, now: datetime) -> None:
    if talk.organiser_id is None or talk.scheduled_at <= now:
        return
    version = await _next_version(session, talk.id) - 1
    base = f"talk:{talk.id}:v{version}"
    sent = await session.scalar(
        select(Reminder.id).where(
            Reminder.idempotency_key == f"{base}:brief:{talk.organiser_id}",
            Reminder.status.in_((ReminderStatus.SENT, ReminderStatus.UNCERTAIN)),
        )
    )
    if sent is None:
        return
    await schedule_reminder(
        session,
        kind=ReminderKind.TALK_BRIEF,
        person_id=talk.organiser_id,
        due_at=now,
        idempotency_key=f"{base}:brief_prepared:{talk.organiser_id}",
        payload={
            "talk_id": talk.id,
            "version": version,
            "scheduled_at": talk.scheduled_at.isoformat(),
        },
        stale_at=talk.scheduled_at,
    )


@dataclass(frozen=True)
class ChosenPhoto:
    """A photo the pupil chose to show, as stored in the media folder."""

    evidence_id: int
    sha256: str
    mime_type: str
    caption: str | None


async def chosen_photos(session: AsyncSession, *, talk_id: int) -> list[ChosenPhoto]:
    """The first image of each piece of work chosen for the talk (documents, voice: none)."""
    rows = (
        await session.execute(
            select(Evidence.id, Evidence.caption, MediaFile.sha256, MediaFile.mime_type)
            .join(TalkEvidence, TalkEvidence.evidence_id == Evidence.id)
            .join(Talk, Talk.id == TalkEvidence.talk_id)
            .join(EvidenceFile, EvidenceFile.evidence_id == Evidence.id)
            .join(MediaFile, MediaFile.id == EvidenceFile.media_file_id)
            .where(
                TalkEvidence.talk_id == talk_id,
                # Only the pupil's own work, whatever a row might say.
                Evidence.pupil_id == Talk.pupil_id,
                MediaFile.kind == MediaKind.IMAGE,
            )
            .order_by(Evidence.created_at, Evidence.id, EvidenceFile.position)
        )
    ).all()
    photos: dict[int, ChosenPhoto] = {}
    for evidence_id, caption, sha256, mime_type in rows:
        photos.setdefault(evidence_id, ChosenPhoto(evidence_id, sha256, mime_type, caption))
    return list(photos.values())


# --- after the talk ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedTalk:
    talk: TalkView
    new_goals: tuple[str, ...]  # texts of the goals added to the pupil's period


async def record_agreements(
    session: AsyncSession,
    *,
    teacher_id: int,
    talk_id: int,
    agreements: str,
    goal_ids: Sequence[int],
    today: date,
    now: datetime,
) -> RecordedTalk:
    """The talk is held: its agreements are kept, new goals go into the pupil's period
    (chosen by the teacher), and parents of a driehoeksgesprek get the agreements."""
    talk = await _own_talk(session, teacher_id=teacher_id, talk_id=talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        raise TalkRefusedError("talk")
    text = agreements.strip()[:MAX_AGREEMENTS]
    if not text:
        raise TalkRefusedError("agreements")
    wanted = list(dict.fromkeys(goal_ids))[:MAX_NEW_GOALS]
    context = await pupil_context(session, pupil_id=talk.pupil_id, today=today)
    if wanted and context.period_id is None:
        raise TalkRefusedError("period")
    for goal_id in wanted:
        if not await goal_available_to(session, school_id=context.school_id, goal_id=goal_id):
            raise TalkRefusedError("goal")
    for goal_id in wanted:
        assert context.period_id is not None
        pupil_goal = await session.scalar(
            select(PupilGoal).where(
                PupilGoal.pupil_id == talk.pupil_id,
                PupilGoal.period_id == context.period_id,
                PupilGoal.goal_id == goal_id,
            )
        )
        if pupil_goal is None:
            pupil_goal = PupilGoal(
                pupil_id=talk.pupil_id,
                period_id=context.period_id,
                goal_id=goal_id,
                chosen_by=ChosenBy.TEACHER,
                status=PupilGoalStatus.ACTIVE,
            )
            session.add(pupil_goal)
        elif pupil_goal.status is not PupilGoalStatus.ACHIEVED:
            pupil_goal.status = PupilGoalStatus.ACTIVE
        pupil_goal.confirmed_by_id = teacher_id
        pupil_goal.talk_id = talk.id
    await session.flush()
    added = await new_goals_of(session, talk_id=talk.id)
    await cancel_pending(session, key_prefix=_prefix(talk.id), reason="talk held")
    talk.status = TalkStatus.HELD
    talk.agreements = text
    await session.flush()
    if talk.kind is TalkKind.TRIPARTITE:
        parents = set(await parents_of(session, pupil_id=talk.pupil_id))
        for person_id in await participants_of(session, talk_id=talk.id):
            if person_id in parents:
                await schedule_reminder(
                    session,
                    kind=ReminderKind.TALK_AGREEMENTS,
                    person_id=person_id,
                    due_at=now,
                    idempotency_key=f"talk:{talk.id}:agreements:{person_id}",
                    payload={"talk_id": talk.id},
                    stale_at=now + AGREEMENTS_STALE,
                )
    return RecordedTalk(await _view(session, talk), tuple(added))


async def new_goals_of(session: AsyncSession, *, talk_id: int) -> list[str]:
    """Texts of the goals set in this talk."""
    return list(
        (
            await session.scalars(
                select(Goal.text)
                .join(PupilGoal, PupilGoal.goal_id == Goal.id)
                .where(PupilGoal.talk_id == talk_id)
                .order_by(Goal.position, Goal.id)
            )
        ).all()
    )


# --- the teacher's brief: the period in numbers ------------------------------------------


@dataclass(frozen=True)
class GoalLine:
    text: str
    self_level: int | None
    self_level_name: str | None
    teacher_level: int | None
    teacher_level_name: str | None
    days_worked: int


@dataclass(frozen=True)
class Trend:
    """An average on the 1-4 scale and whether the later half is higher (1) or lower (-1)."""

    average: float | None
    direction: int


@dataclass(frozen=True)
class PeriodSummary:
    period_name: str | None
    goals: tuple[GoalLine, ...]
    reflections: int
    days_reflected: int
    effort: Trend
    wellbeing: Trend
    evidence: int
    chosen_evidence: tuple[EvidenceChoice, ...]
    observations: int
    latest_notes: tuple[str, ...]


def trend(values: Sequence[int | None]) -> Trend:
    """Oldest first. A change of half a point between the halves counts as a trend."""
    known = [value for value in values if value is not None]
    if not known:
        return Trend(None, 0)
    average = sum(known) / len(known)
    if len(known) < 4:
        return Trend(average, 0)
    half = len(known) // 2
    early = sum(known[:half]) / half
    late = sum(known[half:]) / (len(known) - half)
    if late - early >= 0.5:
        return Trend(average, 1)
    if early - late >= 0.5:
        return Trend(average, -1)
    return Trend(average, 0)


async def period_summary(
    session: AsyncSession, *, pupil_id: int, today: date, talk_id: int | None = None
) -> PeriodSummary:
    """The pupil's current period (or the last six weeks without one) for the teacher."""
    context = await pupil_context(session, pupil_id=pupil_id, today=today)
    since = context.period_starts_on or today - timedelta(weeks=6)
    goals = tuple(
        GoalLine(
            p.choice.goal.text,
            p.self_level,
            p.self_level_name,
            p.teacher_level,
            p.teacher_level_name,
            p.days_worked,
        )
        for p in await progress_of(session, context=context, since=since)
    )
    reflections = (
        await session.execute(
            select(Reflection.on_date, Reflection.effort, Reflection.wellbeing)
            .where(Reflection.pupil_id == pupil_id, Reflection.on_date >= since)
            .order_by(Reflection.on_date, Reflection.id)
        )
    ).all()
    school = await session.get(Person, pupil_id)
    assert school is not None
    calendar = await calendar_of(session, school_id=school.school_id)
    assert calendar is not None
    start = calendar.at(since, datetime.min.time())
    evidence = await session.scalar(
        select(func.count())
        .select_from(Evidence)
        .where(Evidence.pupil_id == pupil_id, Evidence.created_at >= start)
    )
    chosen: tuple[EvidenceChoice, ...] = ()
    if talk_id is not None:
        rows = (
            await session.scalars(
                select(Evidence)
                .join(TalkEvidence, TalkEvidence.evidence_id == Evidence.id)
                .where(TalkEvidence.talk_id == talk_id, Evidence.pupil_id == pupil_id)
                .order_by(Evidence.created_at)
            )
        ).all()
        chosen = tuple(EvidenceChoice(e.id, e.caption, e.kind.value, e.created_at) for e in rows)
    about = (
        select(Observation)
        .join(ObservationPupil, ObservationPupil.observation_id == Observation.id)
        .where(ObservationPupil.pupil_id == pupil_id, Observation.created_at >= start)
    )
    observations = await session.scalar(select(func.count()).select_from(about.subquery()))
    latest = (
        await session.scalars(
            about.where(Observation.text.is_not(None))
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(3)
        )
    ).all()
    return PeriodSummary(
        period_name=context.period_name,
        goals=goals,
        reflections=len(reflections),
        days_reflected=len({row.on_date for row in reflections}),
        effort=trend([row.effort for row in reflections]),
        wellbeing=trend([row.wellbeing for row in reflections]),
        evidence=int(evidence or 0),
        chosen_evidence=chosen,
        observations=int(observations or 0),
        latest_notes=tuple(note.text or "" for note in latest),
    )
