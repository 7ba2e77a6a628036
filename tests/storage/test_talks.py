"""Talks in storage: who may plan what, the reminder rows of plan / move / cancel, the
moments across daylight-saving changes, the preparation, the agreements and the brief."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conversations.talks.moments import MomentError, TypedMoment, parse_moment
from storage.models import (
    ChosenBy,
    Evidence,
    EvidenceKind,
    Observation,
    ObservationPupil,
    PupilGoal,
    Reflection,
    ReminderStatus,
    School,
    Talk,
    TalkKind,
    TalkStatus,
)
from storage.reminders import ReminderKind, mark_sent, reminders_of
from storage.schooltime import calendar_of
from storage.talks import (
    TalkRefusedError,
    cancel_talk,
    move_talk,
    period_summary,
    plan_talk,
    record_agreements,
    save_preparation,
    talk_moments,
    talks_of_parent,
    talks_of_pupil,
    talks_of_teacher,
    teacher_talk,
    trend,
)
from tests.factories import build_curriculum, build_school, give_goal
from tests.storage.test_observations import other_group

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def school_time(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=AMSTERDAM).astimezone(UTC)


async def rows(session_factory, talk_id: int, status: ReminderStatus | None = None):
    async with session_factory() as session:
        found = await reminders_of(session, statuses=[status] if status else None)
    return [row for row in found if row.idempotency_key.startswith(f"talk:{talk_id}:")]


# --- moments ---------------------------------------------------------------------------


async def test_moments_keep_school_time_across_the_october_change(session_factory):
    school = await build_school(session_factory)
    async with session_factory() as session:
        calendar = await calendar_of(session, school_id=school.school_id)
    assert calendar is not None
    # Monday 27 October 2025, the day after summer time ended.
    talk_at = school_time(date(2025, 10, 27), 10)
    moments = talk_moments(calendar, scheduled_at=talk_at, now=school_time(date(2025, 10, 1), 9))
    assert talk_at == datetime(2025, 10, 27, 9, 0, tzinfo=UTC)
    # Friday 14:30 in summer time is 12:30 UTC; Thursday (two school days before) too.
    assert moments.day_before == datetime(2025, 10, 24, 12, 30, tzinfo=UTC)
    assert moments.brief == moments.day_before
    assert moments.preparation == datetime(2025, 10, 23, 12, 30, tzinfo=UTC)
    assert moments.hour_before == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)

    # Monday 30 March 2026, the day after summer time began: Friday 14:30 is 13:30 UTC.
    spring = talk_moments(
        calendar,
        scheduled_at=school_time(date(2026, 3, 30), 10),
        now=school_time(date(2026, 3, 1), 9),
    )
    assert spring.day_before == datetime(2026, 3, 27, 13, 30, tzinfo=UTC)
    assert spring.hour_before == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


async def test_short_notice_moments(session_factory):
    school = await build_school(session_factory)
    async with session_factory() as session:
        calendar = await calendar_of(session, school_id=school.school_id)
    assert calendar is not None
    monday = date(2026, 11, 30)
    now = school_time(monday, 8)
    # Today at 15:00: no day-before reminder; preparation now, the brief two hours before.
    moments = talk_moments(calendar, scheduled_at=school_time(monday, 15), now=now)
    assert moments.day_before is None
    assert moments.preparation == now
    assert moments.brief == school_time(monday, 13)
    assert moments.hour_before == school_time(monday, 14)
    # In ninety minutes: no preparation, no brief, only the hour-before reminder.
    soon = talk_moments(calendar, scheduled_at=school_time(monday, 9, 30), now=now)
    assert soon.preparation is None and soon.brief is None and soon.day_before is None
    assert soon.hour_before == school_time(monday, 8, 30)


# --- planning, moving, cancelling --------------------------------------------------------


async def test_plan_move_back_and_cancel_keep_one_set_of_rows(session_factory):
    school = await build_school(session_factory)
    teacher, sam, parent = school.persons["T1"], school.persons["P1"], school.persons["O1"]
    now = school_time(date(2026, 11, 30), 8)  # a Monday
    first = school_time(date(2026, 12, 3), 14)  # Thursday
    async with session_factory() as session, session.begin():
        talk = await plan_talk(
            session,
            organiser_id=teacher,
            pupil_id=sam,
            kind=TalkKind.TRIPARTITE,
            scheduled_at=first,
            place="Lokaal 12",
            now=now,
        )
    pending = await rows(session_factory, talk.id, ReminderStatus.PENDING)
    by_kind = sorted((row.kind, row.person_id, row.due_at) for row in pending)
    tuesday_1430 = school_time(date(2026, 12, 1), 14, 30)
    wednesday_1430 = school_time(date(2026, 12, 2), 14, 30)
    hour_before = first - timedelta(hours=1)
    assert by_kind == sorted(
        [
            (ReminderKind.TALK_INVITATION, sam, now),
            (ReminderKind.TALK_INVITATION, parent, now),
            (ReminderKind.TALK_PREPARATION, sam, tuesday_1430),
            (ReminderKind.TALK_BRIEF, teacher, wednesday_1430),
            (ReminderKind.TALK_REMINDER, sam, wednesday_1430),
            (ReminderKind.TALK_REMINDER, parent, wednesday_1430),
            (ReminderKind.TALK_REMINDER, sam, hour_before),
            (ReminderKind.TALK_REMINDER, parent, hour_before),
            (ReminderKind.TALK_REMINDER, teacher, hour_before),
        ]
    )
    assert all(row.idempotency_key.startswith(f"talk:{talk.id}:v1:") for row in pending)
    assert all(row.payload["scheduled_at"] == first.isoformat() for row in pending)

    # Moved to Friday, then back to Thursday: each move cancels what was pending.
    async with session_factory() as session, session.begin():
        await move_talk(
            session,
            teacher_id=teacher,
            talk_id=talk.id,
            scheduled_at=school_time(date(2026, 12, 4), 9),
            now=now,
        )
    async with session_factory() as session, session.begin():
        moved = await move_talk(
            session, teacher_id=teacher, talk_id=talk.id, scheduled_at=first, now=now
        )
    assert moved.scheduled_at == first
    pending = await rows(session_factory, talk.id, ReminderStatus.PENDING)
    assert len(pending) == 9
    assert all(row.idempotency_key.startswith(f"talk:{talk.id}:v3:") for row in pending)
    invitations = [row for row in pending if row.kind == ReminderKind.TALK_INVITATION]
    assert all(row.payload["moved"] for row in invitations)
    cancelled = await rows(session_factory, talk.id, ReminderStatus.CANCELLED)
    assert len(cancelled) == 18

    # Another teacher cannot move or cancel it; the organiser can cancel it once.
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):
            await cancel_talk(session, teacher_id=school.persons["X1"], talk_id=talk.id, now=now)
        with pytest.raises(TalkRefusedError):
            await move_talk(
                session,
                teacher_id=school.persons["X1"],
                talk_id=talk.id,
                scheduled_at=first,
                now=now,
            )
    async with session_factory() as session, session.begin():
        await cancel_talk(session, teacher_id=teacher, talk_id=talk.id, now=now)
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):
            await cancel_talk(session, teacher_id=teacher, talk_id=talk.id, now=now)
    pending = await rows(session_factory, talk.id, ReminderStatus.PENDING)
    assert sorted((row.kind, row.person_id) for row in pending) == sorted(
        [(ReminderKind.TALK_CANCELLED, sam), (ReminderKind.TALK_CANCELLED, parent)]
    )


async def test_only_own_pupils_and_no_past(session_factory):
    school = await build_school(session_factory)
    others = await other_group(session_factory, school)
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):
            await plan_talk(
                session,
                organiser_id=school.persons["T1"],
                pupil_id=others["P3"],
                kind=TalkKind.LEARNING,
                scheduled_at=now + timedelta(days=2),
                place=None,
                now=now,
            )
        with pytest.raises(TalkRefusedError):  # a parent is no teacher
            await plan_talk(
                session,
                organiser_id=school.persons["O1"],
                pupil_id=school.persons["P1"],
                kind=TalkKind.LEARNING,
                scheduled_at=now + timedelta(days=2),
                place=None,
                now=now,
            )
        with pytest.raises(TalkRefusedError):
            await plan_talk(
                session,
                organiser_id=school.persons["T1"],
                pupil_id=school.persons["P1"],
                kind=TalkKind.LEARNING,
                scheduled_at=now - timedelta(minutes=1),
                place=None,
                now=now,
            )
        talk = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.LEARNING,
            scheduled_at=now + timedelta(days=2),
            place=None,
            now=now,
        )
    async with session_factory() as session:
        assert await teacher_talk(session, teacher_id=others["T2"], talk_id=talk.id) is None
        assert [
            t.id for t in await talks_of_teacher(session, teacher_id=school.persons["T1"], now=now)
        ] == [talk.id]
        assert await talks_of_teacher(session, teacher_id=others["T2"], now=now) == []
        assert [
            t.id for t in await talks_of_pupil(session, pupil_id=school.persons["P1"], now=now)
        ] == [talk.id]
        assert await talks_of_pupil(session, pupil_id=school.persons["P2"], now=now) == []
        # A leergesprek is not the parents' talk.
        assert await talks_of_parent(session, parent_id=school.persons["O1"], now=now) == []


# --- preparation, agreements, the brief ----------------------------------------------------


async def test_preparation_agreements_and_summary(session_factory):
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school)
    sam, teacher = school.persons["P1"], school.persons["T1"]
    await give_goal(
        session_factory,
        pupil_id=sam,
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["SW"],
    )
    today = datetime.now(AMSTERDAM).date()
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        mine = Evidence(pupil_id=sam, kind=EvidenceKind.PHOTO, caption="Poster vulkanen")
        noors = Evidence(pupil_id=school.persons["P2"], kind=EvidenceKind.PHOTO, caption="Noor")
        session.add_all([mine, noors])
        for offset, (effort, wellbeing) in enumerate([(1, 2), (2, 2), (3, 4), (4, 4)]):
            session.add(
                Reflection(
                    pupil_id=sam,
                    on_date=today - timedelta(days=4 - offset),
                    effort=effort,
                    wellbeing=wellbeing,
                )
            )
        note = Observation(author_id=teacher, text="Legde breuken uit", is_private=True)
        session.add(note)
        await session.flush()
        session.add(ObservationPupil(observation_id=note.id, pupil_id=sam))
        talk = await plan_talk(
            session,
            organiser_id=teacher,
            pupil_id=sam,
            kind=TalkKind.TRIPARTITE,
            scheduled_at=now + timedelta(days=3),
            place=None,
            now=now,
        )
        mine_id, noors_id = mine.id, noors.id
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):  # someone else's work
            await save_preparation(
                session,
                pupil_id=sam,
                talk_id=talk.id,
                answers={},
                evidence_ids=[noors_id],
                now=now,
            )
        with pytest.raises(TalkRefusedError):  # someone else's talk
            await save_preparation(
                session,
                pupil_id=school.persons["P2"],
                talk_id=talk.id,
                answers={},
                evidence_ids=[],
                now=now,
            )
    async with session_factory() as session, session.begin():
        prepared = await save_preparation(
            session,
            pupil_id=sam,
            talk_id=talk.id,
            answers={"proud": "Mijn poster", "hard": "Breuken", "next": " Delen "},
            evidence_ids=[mine_id],
            now=now,
        )
        # Not prepared late: the brief is still to come, nothing extra is scheduled.
        assert len(await reminders_of(session, kinds=[ReminderKind.TALK_BRIEF])) == 1
    assert prepared.preparation == {
        "proud": "Mijn poster",
        "went_well": None,
        "hard": "Breuken",
        "next": "Delen",
    }
    assert prepared.evidence_ids == (mine_id,)

    async with session_factory() as session:
        summary = await period_summary(session, pupil_id=sam, today=today, talk_id=talk.id)
    assert summary.period_name == "Periode 2"
    assert [goal.text for goal in summary.goals] == ["Ik werk samen met anderen aan een taak"]
    assert summary.reflections == 4 and summary.days_reflected == 4
    assert summary.effort.direction == 1 and summary.wellbeing.direction == 1
    assert summary.evidence == 1  # Noor's work is not Sam's
    assert [item.caption for item in summary.chosen_evidence] == ["Poster vulkanen"]
    assert summary.observations == 1 and summary.latest_notes == ("Legde breuken uit",)

    async with session_factory() as session, session.begin():
        recorded = await record_agreements(
            session,
            teacher_id=teacher,
            talk_id=talk.id,
            agreements="Sam oefent elke dag 10 minuten breuken.",
            goal_ids=[curriculum.goals["1.1a"], curriculum.goals["SW"]],
            today=today,
            now=now,
        )
    assert recorded.talk.status is TalkStatus.HELD
    assert set(recorded.new_goals) == {
        "Je kunt soorten krachten herkennen",
        "Ik werk samen met anderen aan een taak",
    }
    async with session_factory() as session:
        goals = (await session.scalars(select(PupilGoal).where(PupilGoal.talk_id == talk.id))).all()
        assert len(goals) == 2 and all(goal.confirmed_by_id == teacher for goal in goals)
        added = next(g for g in goals if g.goal_id == curriculum.goals["1.1a"])
        assert added.chosen_by is ChosenBy.TEACHER
        stored = await session.get(Talk, talk.id)
        assert stored is not None and stored.status is TalkStatus.HELD
        parents_rows = await reminders_of(session, kinds=[ReminderKind.TALK_AGREEMENTS])
        assert [(row.person_id, row.status) for row in parents_rows] == [
            (school.persons["O1"], ReminderStatus.PENDING)
        ]
        # Nothing else is pending for a talk that was held.
        pending = await reminders_of(session, statuses=[ReminderStatus.PENDING])
        assert [row.kind for row in pending] == [ReminderKind.TALK_AGREEMENTS]
        assert [
            t.id for t in await talks_of_parent(session, parent_id=school.persons["O1"], now=now)
        ] == [talk.id]
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):  # held already
            await record_agreements(
                session,
                teacher_id=teacher,
                talk_id=talk.id,
                agreements="nog eens",
                goal_ids=[],
                today=today,
                now=now,
            )


async def test_agreements_refuse_a_goal_of_another_school(session_factory):
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school)
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        other = School(name="De Zonnebloem")
        session.add(other)
        talk = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.LEARNING,
            scheduled_at=now + timedelta(hours=1),
            place=None,
            now=now,
        )
    async with session_factory() as session, session.begin():
        with pytest.raises(TalkRefusedError):
            await record_agreements(
                session,
                teacher_id=school.persons["T1"],
                talk_id=talk.id,
                agreements="Afspraak",
                goal_ids=[max(curriculum.goals.values()) + 1000],
                today=datetime.now(AMSTERDAM).date(),
                now=now,
            )
    async with session_factory() as session:
        stored = await session.get(Talk, talk.id)
        assert stored is not None and stored.status is TalkStatus.PLANNED


async def test_a_late_preparation_sends_the_brief_again(session_factory):
    school = await build_school(session_factory)
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        talk = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.LEARNING,
            scheduled_at=now + timedelta(days=4),
            place=None,
            now=now,
        )
        [brief] = await reminders_of(session, kinds=[ReminderKind.TALK_BRIEF])
        await mark_sent(session, reminder_id=brief.id, now=now, message_id=1)
    async with session_factory() as session, session.begin():
        await save_preparation(
            session,
            pupil_id=school.persons["P1"],
            talk_id=talk.id,
            answers={"proud": "Alles"},
            evidence_ids=[],
            now=now,
        )
    async with session_factory() as session:
        again = await reminders_of(
            session, kinds=[ReminderKind.TALK_BRIEF], statuses=[ReminderStatus.PENDING]
        )
    assert [(row.person_id, row.due_at) for row in again] == [(school.persons["T1"], now)]
    assert again[0].idempotency_key == f"talk:{talk.id}:v1:brief_prepared:{school.persons['T1']}"


def test_trend():
    assert trend([]).average is None
    assert trend([2, 2, 2]).direction == 0
    assert trend([1, 1, 3, 3]).direction == 1
    assert trend([4, 4, None, 2, 2]).direction == -1


@pytest.mark.parametrize(
    ("typed", "day", "at"),
    [
        ("di 3 dec 14:00", date(2026, 12, 3), time(14, 0)),
        ("3-12 14:00", date(2026, 12, 3), time(14, 0)),
        ("3/12/2026 om 9.30", date(2026, 12, 3), time(9, 30)),
        ("morgen 10:15", date(2026, 11, 27), time(10, 15)),
        ("Donderdag", date(2026, 12, 3), None),
        ("vrijdag 9 uur", date(2026, 11, 27), time(9, 0)),
        ("14:15", None, time(14, 15)),
        ("5 januari 8:30", date(2027, 1, 5), time(8, 30)),
        ("tomorrow at 2.30", date(2026, 11, 27), time(2, 30)),
    ],
)
def test_typed_moments(typed, day, at):
    # Thursday 26 November 2026.
    assert parse_moment(typed, today=date(2026, 11, 26)) == TypedMoment(day, at)


@pytest.mark.parametrize("typed", ["hallo", "31-2 10:00", "25:00", "", "om 9"])
def test_untyped_moments(typed):
    with pytest.raises(MomentError):
        parse_moment(typed, today=date(2026, 11, 26))
