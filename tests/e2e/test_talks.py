"""Talks end to end: plan, move and cancel by a teacher; the pupil's preparation; the
agreements after the talk; what the reminders say; forged buttons changing nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from sqlalchemy import select

from conversations.media_intake import media_store
from conversations.talks.common import TalkCancel, TalkOpen, TalkPrepare, TalkPupil, TalkRecord
from storage.accounts import recipient
from storage.evidence import NewEvidence, create_evidence
from storage.models import (
    ChosenBy,
    Evidence,
    EvidenceKind,
    GoalSet,
    Person,
    PupilGoal,
    ReminderStatus,
    Talk,
    TalkEvidence,
    TalkKind,
    TalkParticipant,
    TalkStatus,
)
from storage.reminders import DueReminder, ReminderKind, ReminderRow, reminders_of
from storage.talks import plan_talk
from tests.e2e.test_observations import daan_elsewhere, joined
from tests.factories import build_curriculum
from tests.images import small_jpeg

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def next_monday_8() -> datetime:
    today = datetime.now(AMSTERDAM).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, time(8, 0), tzinfo=AMSTERDAM).astimezone(UTC)


def day_button(day: date) -> str:
    return format_skeleton("MMMEd", day, locale="nl")


async def pending(session_factory, **filters: Any) -> list[ReminderRow]:
    async with session_factory() as session:
        return await reminders_of(session, statuses=[ReminderStatus.PENDING], **filters)


async def deliver(running_bot, session_factory, row: ReminderRow, now: datetime) -> bool:
    """What the dispatcher does with a due row: compose in the recipient's language, send."""
    app = running_bot.app
    due = DueReminder(
        id=row.id,
        kind=row.kind,
        person_id=row.person_id,
        due_at=row.due_at,
        stale_at=None,
        payload=row.payload,
        attempts=0,
        idempotency_key=row.idempotency_key,
    )
    # The app's own composers: the brief reads the chosen photos from the bot's media folder.
    composer = app.reminders.composers.composer_for(row.kind)
    assert composer is not None
    async with session_factory() as session:
        to = await recipient(session, person_id=row.person_id)
        assert to is not None
        with app.i18n.context(), app.i18n.use_locale(to.locale or "nl"):
            methods = await composer(session, due, to, app.reminders.composers.context(now))
    if methods is None:
        return False
    for method in methods:
        await app.bot(method)
    return True


async def the_talk(session_factory) -> Talk:
    async with session_factory() as session:
        talks = (await session.scalars(select(Talk))).all()
        assert len(talks) == 1
        return talks[0]


async def test_plan_move_and_cancel_a_driehoeksgesprek(
    running_bot, telegram, school, session_factory
):
    now = next_monday_8()
    running_bot.app.clock.set_now(now)
    monday = now.astimezone(AMSTERDAM).date()
    wednesday = monday + timedelta(days=2)
    daan = await daan_elsewhere(session_factory, school)
    teacher = await joined(telegram, school, "T1", "Anouk")
    sam = await joined(telegram, school, "P1", "Sam")
    parent = await joined(telegram, school, "O1", "Marieke")

    await teacher.send_text("/gesprek")
    [listed] = await teacher.wait_for_reply()
    assert "nog geen gesprekken" in listed["text"]
    await teacher.press("➕ Nieuw gesprek", message_id=listed["message_id"])
    [card] = await teacher.wait_for_reply()
    assert "Met wie is het gesprek" in card["text"]
    buttons = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert "Sam de Vries" in buttons and not any("Daan" in text for text in buttons)
    # Another group's pupil, forged into a button, is refused.
    query = await teacher.press_raw(card["message_id"], TalkPupil(pupil_id=daan).pack())
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]

    await teacher.press("Sam de Vries", message_id=card["message_id"])
    [kind] = await teacher.wait_for_reply()
    assert "Wat voor gesprek met Sam de Vries" in kind["text"]
    await teacher.press("Driehoeksgesprek", message_id=kind["message_id"])
    [day] = await teacher.wait_for_reply()
    assert "Op welke dag" in day["text"]
    await teacher.send_text("ergens volgende maand")
    [unclear] = await teacher.wait_for_reply()
    assert "Dat snap ik niet" in unclear["text"] and "3-12 14:00" in unclear["text"]
    await teacher.send_text("1-1-2020 10:00")
    [past, day] = await teacher.wait_for_reply(count=2)
    assert "al voorbij" in past["text"] and "Op welke dag" in day["text"]
    await teacher.press(day_button(wednesday), message_id=day["message_id"])
    [at] = await teacher.wait_for_reply()
    assert "Hoe laat" in at["text"]
    await teacher.press("14:00", message_id=at["message_id"])
    [place] = await teacher.wait_for_reply()
    assert "Waar is het gesprek" in place["text"]
    await teacher.send_text("Lokaal 12")
    [planned] = await teacher.wait_for_reply()
    assert "Gepland ✅" in planned["text"] and "Lokaal 12" in planned["text"]
    assert "Sam de Vries en de ouders krijgen een uitnodiging" in planned["text"]

    talk = await the_talk(session_factory)
    scheduled = datetime.combine(wednesday, time(14, 0), tzinfo=AMSTERDAM).astimezone(UTC)
    assert talk.kind is TalkKind.TRIPARTITE and talk.scheduled_at == scheduled
    assert talk.place == "Lokaal 12" and talk.organiser_id == school.persons["T1"]
    async with session_factory() as session:
        people = set(
            (
                await session.scalars(
                    select(TalkParticipant.person_id).where(TalkParticipant.talk_id == talk.id)
                )
            ).all()
        )
    assert people == {school.persons[key] for key in ("T1", "P1", "O1")}

    # The invitations, as the dispatcher would send them.
    for row in await pending(session_factory, kinds=[ReminderKind.TALK_INVITATION]):
        assert await deliver(running_bot, session_factory, row, now)
    [invited] = await sam.wait_for_reply()
    assert "Uitnodiging" in invited["text"] and "Juf Anouk" in invited["text"]
    assert "14:00" in invited["text"] and "Lokaal 12" in invited["text"]
    [invited] = await parent.wait_for_reply()
    assert "driehoeksgesprek over Sam de Vries met Juf Anouk" in invited["text"]
    old_reminders = await pending(session_factory, person_id=school.persons["P1"])

    # Another teacher cannot open it, not even with a forged button.
    bram = await joined(telegram, school, "X1", "Bram")
    query = await bram.press_raw(
        bram.last_bot_message()["message_id"], TalkOpen(talk_id=talk.id).pack()
    )
    answer = await bram.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]
    query = await bram.press_raw(
        bram.last_bot_message()["message_id"], TalkCancel(talk_id=talk.id, sure=True).pack()
    )
    answer = await bram.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]
    assert (await the_talk(session_factory)).status is TalkStatus.PLANNED

    # Moved to Thursday 10:15, typed.
    await teacher.press("🕒 Verzetten", message_id=planned["message_id"])
    [day] = await teacher.wait_for_reply()
    thursday = monday + timedelta(days=3)
    await teacher.send_text(f"{thursday.day}-{thursday.month} 10:15")
    [moved] = await teacher.wait_for_reply()
    assert "Verzet ✅" in moved["text"] and "10:15" in moved["text"]
    talk = await the_talk(session_factory)
    assert talk.scheduled_at == datetime.combine(
        thursday, time(10, 15), tzinfo=AMSTERDAM
    ).astimezone(UTC)
    # The old rows are cancelled, and one that was already claimed sends nothing.
    for row in old_reminders:
        assert not await deliver(running_bot, session_factory, row, now)
    invitations = await pending(
        session_factory, person_id=school.persons["P1"], kinds=[ReminderKind.TALK_INVITATION]
    )
    assert [row.payload["moved"] for row in invitations] == [True]
    assert await deliver(running_bot, session_factory, invitations[0], now)
    [moved_notice] = await sam.wait_for_reply()
    assert "Verzet" in moved_notice["text"] and "10:15" in moved_notice["text"]

    # Cancelled: the pending rows go, the invitees get a notice.
    await teacher.press("✖️ Afzeggen", message_id=moved["message_id"])
    sure = await teacher.wait_for_edit(moved["message_id"])
    assert "Wil je dit gesprek afzeggen?" in sure["text"]
    await teacher.press("Ja, afzeggen", message_id=moved["message_id"])
    done = await teacher.wait_for_edit(moved["message_id"])
    assert "Afgezegd" in done["text"]
    talk = await the_talk(session_factory)
    assert talk.status is TalkStatus.CANCELLED
    left = await pending(session_factory)
    assert sorted((row.kind, row.person_id) for row in left) == sorted(
        [
            (ReminderKind.TALK_CANCELLED, school.persons["P1"]),
            (ReminderKind.TALK_CANCELLED, school.persons["O1"]),
        ]
    )
    for row in left:
        assert await deliver(running_bot, session_factory, row, now)
    [notice] = await parent.wait_for_reply()
    assert "gaat niet door" in notice["text"]
    # A cancelled talk cannot be opened to move it.
    await teacher.send_text("/gesprek")
    [listed] = await teacher.wait_for_reply()
    assert "nog geen gesprekken" in listed["text"]


async def test_preparation_survives_a_restart_and_reaches_the_teacher(
    running_bot, telegram, school, session_factory
):
    await build_curriculum(session_factory, school)
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        stored = await media_store(running_bot.settings).store_image(small_jpeg())
        poster = await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=school.persons["P1"],
                kind=EvidenceKind.PHOTO,
                files=[stored],
                caption="Poster",
            ),
        )
        model = Evidence(pupil_id=school.persons["P1"], kind=EvidenceKind.PHOTO, caption="Maquette")
        session.add(model)
        talk = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.LEARNING,
            scheduled_at=now + timedelta(days=3),
            place=None,
            now=now,
        )
        noors = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P2"],
            kind=TalkKind.LEARNING,
            scheduled_at=now + timedelta(days=3),
            place=None,
            now=now,
        )
        poster_id = poster.id
    teacher = await joined(telegram, school, "T1", "Anouk")
    sam = await joined(telegram, school, "P1", "Sam")
    [row] = await pending(
        session_factory, kinds=[ReminderKind.TALK_PREPARATION], person_id=school.persons["P1"]
    )
    assert await deliver(running_bot, session_factory, row, now)
    [notice] = await sam.wait_for_reply()
    assert "Zullen we het voorbereiden?" in notice["text"]

    # Noor's talk, forged into Sam's button, is refused.
    query = await sam.press_raw(
        notice["message_id"], TalkPrepare(talk_id=noors.id, start=True).pack()
    )
    answer = await sam.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]

    await sam.press("Ja", message_id=notice["message_id"])
    [proud] = await sam.wait_for_reply()
    assert "trots" in proud["text"]
    await sam.send_text("Mijn poster over vulkanen")
    [went_well] = await sam.wait_for_reply()
    assert "Wat ging goed" in went_well["text"]
    await running_bot.restart()
    await sam.send_text("Samenwerken met Noor")
    [hard] = await sam.wait_for_reply()
    assert "lastig" in hard["text"]
    await sam.send_text("Breuken")
    [pick] = await sam.wait_for_reply()
    assert "Kies 1 tot 3" in pick["text"]
    await sam.press("📷 Poster", message_id=pick["message_id"])
    await sam.wait_for_edit(pick["message_id"])
    await sam.press("✅ Klaar", message_id=pick["message_id"])
    [next_step] = await sam.wait_for_reply()
    assert "hierna leren" in next_step["text"]
    await sam.send_text("Delen met breuken")
    [done] = await sam.wait_for_reply()
    assert "Klaar! Juf Anouk krijgt je voorbereiding" in done["text"]

    talk_row = await the_talk_by_id(session_factory, talk.id)
    assert talk_row.preparation == {
        "proud": "Mijn poster over vulkanen",
        "went_well": "Samenwerken met Noor",
        "hard": "Breuken",
        "next": "Delen met breuken",
    }
    async with session_factory() as session:
        shown = (
            await session.scalars(
                select(TalkEvidence.evidence_id).where(TalkEvidence.talk_id == talk.id)
            )
        ).all()
    assert list(shown) == [poster_id]

    # The teacher's brief the day before: the preparation and the period.
    [brief] = [
        row
        for row in await pending(session_factory, kinds=[ReminderKind.TALK_BRIEF])
        if row.payload["talk_id"] == talk.id
    ]
    assert await deliver(running_bot, session_factory, brief, now)
    message, photo = await teacher.wait_for_reply(count=2)
    assert photo.get("photo") and photo.get("caption") == "Poster"
    assert "Voorbereiding van Sam de Vries" in message["text"]
    assert "Mijn poster over vulkanen" in message["text"] and "📷 Poster" in message["text"]
    assert "Periode 2" in message["text"] and "Reflecties: 0" in message["text"]
    # Already prepared: a second preparation notice is not needed.
    assert not await deliver(running_bot, session_factory, row, now)

    await sam.send_text("/gesprek")
    [mine] = await sam.wait_for_reply()
    assert "Leergesprek met Juf Anouk" in mine["text"] and "Je hebt je voorbereid" in mine["text"]


async def the_talk_by_id(session_factory, talk_id: int) -> Talk:
    async with session_factory() as session:
        talk = await session.get(Talk, talk_id)
        assert talk is not None
        return talk


async def test_agreements_and_new_goals_after_the_talk(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school)
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        talk = await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.TRIPARTITE,
            scheduled_at=now + timedelta(minutes=30),
            place=None,
            now=now,
        )
        skills = await session.scalar(
            select(GoalSet.name).where(GoalSet.name.ilike("%vaardigheden%"))
        )
    assert skills is not None
    teacher = await joined(telegram, school, "T1", "Anouk")
    parent = await joined(telegram, school, "O1", "Marieke")
    sam = await joined(telegram, school, "P1", "Sam")
    await teacher.send_text("/gesprek")
    [listed] = await teacher.wait_for_reply()
    await teacher.press(listed["reply_markup"]["inline_keyboard"][0][0]["text"])
    [card] = await teacher.wait_for_reply()
    assert "Afspraken vastleggen" not in str(card["reply_markup"])  # not yet: it is to come
    query = await teacher.press_raw(card["message_id"], TalkRecord(talk_id=talk.id).pack())
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "na het gesprek" in answer["text"]

    running_bot.app.clock.set_now(now + timedelta(hours=1))
    await teacher.press("⬅️ Alle gesprekken", message_id=card["message_id"])
    listed = await teacher.wait_for_edit(card["message_id"])
    await teacher.press(listed["reply_markup"]["inline_keyboard"][0][0]["text"])
    [card] = await teacher.wait_for_reply()
    await teacher.press("📝 Afspraken vastleggen", message_id=card["message_id"])
    [ask] = await teacher.wait_for_reply()
    assert "Welke afspraken" in ask["text"]
    await teacher.send_text("Sam oefent elke dag tien minuten breuken.")
    [goals] = await teacher.wait_for_reply()
    assert "Nieuwe doelen voor Sam de Vries?" in goals["text"]
    await teacher.press(skills, message_id=goals["message_id"])
    lines = await teacher.wait_for_edit(goals["message_id"])
    await teacher.press(lines["reply_markup"]["inline_keyboard"][0][0]["text"])
    line = await teacher.wait_for_edit(goals["message_id"])
    first_goal = line["reply_markup"]["inline_keyboard"][0][0]["text"]
    await teacher.press(first_goal, message_id=goals["message_id"])
    picked = await teacher.wait_for_edit(goals["message_id"])
    assert "✅" in picked["text"]
    await teacher.press("💾 Opslaan", message_id=goals["message_id"])
    [saved] = await teacher.wait_for_reply()
    assert "Afspraken" in saved["text"] and "tien minuten breuken" in saved["text"]
    assert "De ouders krijgen de afspraken" in saved["text"]

    stored = await the_talk_by_id(session_factory, talk.id)
    assert stored.status is TalkStatus.HELD
    assert stored.agreements == "Sam oefent elke dag tien minuten breuken."
    async with session_factory() as session:
        new_goals = (
            await session.scalars(select(PupilGoal).where(PupilGoal.talk_id == talk.id))
        ).all()
    assert len(new_goals) == 1 and new_goals[0].chosen_by is ChosenBy.TEACHER
    assert new_goals[0].period_id == curriculum.period_id

    [row] = await pending(session_factory, kinds=[ReminderKind.TALK_AGREEMENTS])
    assert row.person_id == school.persons["O1"]
    assert await deliver(running_bot, session_factory, row, now)
    [told] = await parent.wait_for_reply()
    assert "Afspraken uit" in told["text"] and "tien minuten breuken" in told["text"]
    assert "Nieuwe doelen" in told["text"]

    await sam.send_text("/gesprek")
    [mine] = await sam.wait_for_reply()
    assert "tien minuten breuken" in mine["text"]
    await parent.send_text("/gesprek")
    [theirs] = await parent.wait_for_reply()
    assert "tien minuten breuken" in theirs["text"] and "Sam de Vries" in theirs["text"]


async def test_english_times_and_a_refused_command(running_bot, telegram, school, session_factory):
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.COACH,
            scheduled_at=datetime.combine(
                now.astimezone(AMSTERDAM).date() + timedelta(days=10),
                time(14, 0),
                tzinfo=AMSTERDAM,
            ),
            place=None,
            now=now,
        )
    sam = await joined(telegram, school, "P1", "Sam")
    await sam.send_text("/taal")
    [choice] = await sam.wait_for_reply()
    await sam.press("🇬🇧 English", message_id=choice["message_id"])
    await sam.wait_for_reply(count=1)
    [row] = await pending(session_factory, kinds=[ReminderKind.TALK_INVITATION])
    assert await deliver(running_bot, session_factory, row, now)
    [invited] = await sam.wait_for_reply()
    assert "Invitation" in invited["text"] and "2:00" in invited["text"] and "PM" in invited["text"]
    admin = await joined(telegram, school, "A1", "Beheer")
    await admin.send_text("/gesprek")
    [refused] = await admin.wait_for_reply()
    assert "Gesprekken zijn er voor" in refused["text"]


async def test_reminders_say_when_and_respect_a_parents_choice(
    running_bot, telegram, school, session_factory
):
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        await plan_talk(
            session,
            organiser_id=school.persons["T1"],
            pupil_id=school.persons["P1"],
            kind=TalkKind.TRIPARTITE,
            scheduled_at=datetime.combine(
                now.astimezone(AMSTERDAM).date() + timedelta(days=10),
                time(9, 30),
                tzinfo=AMSTERDAM,
            ),
            place="Aula",
            now=now,
        )
    sam = await joined(telegram, school, "P1", "Sam")
    parent = await joined(telegram, school, "O1", "Marieke")
    async with session_factory() as session, session.begin():
        mother = await session.get(Person, school.persons["O1"])
        assert mother is not None
        mother.preferences = {"talk_reminders": False}
    reminders = await pending(session_factory, kinds=[ReminderKind.TALK_REMINDER])
    for row in reminders:
        if row.person_id == school.persons["P1"]:
            assert await deliver(running_bot, session_factory, row, now)
        if row.person_id == school.persons["O1"]:
            # She turned talk reminders off; the invitation still comes.
            assert not await deliver(running_bot, session_factory, row, now)
    day_before, hour_before = await sam.wait_for_reply(count=2)
    assert "Niet vergeten" in day_before["text"] and "09:30" in day_before["text"]
    assert "Over een uur" in hour_before["text"] and "Aula" in hour_before["text"]
    [invitation] = await pending(
        session_factory, kinds=[ReminderKind.TALK_INVITATION], person_id=school.persons["O1"]
    )
    assert await deliver(running_bot, session_factory, invitation, now)
    [invited] = await parent.wait_for_reply()
    assert "Uitnodiging" in invited["text"] and "09:30" in invited["text"]


async def test_a_name_after_the_command_and_a_restart_mid_planning(
    running_bot, telegram, school, session_factory
):
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/gesprek noor")
    [kind] = await teacher.wait_for_reply()
    assert "Wat voor gesprek met Noor Jansen" in kind["text"]
    await teacher.press("Leergesprek", message_id=kind["message_id"])
    [day] = await teacher.wait_for_reply()
    assert "Op welke dag" in day["text"]
    await running_bot.restart()
    await teacher.send_text("morgen 10:15")
    [place] = await teacher.wait_for_reply()
    assert "Waar is het gesprek" in place["text"]
    await teacher.send_text("Lokaal 3")
    [planned] = await teacher.wait_for_reply()
    assert "Gepland ✅" in planned["text"]
    talk = await the_talk(session_factory)
    tomorrow = datetime.now(AMSTERDAM).date() + timedelta(days=1)
    assert talk.pupil_id == school.persons["P2"] and talk.kind is TalkKind.LEARNING
    assert talk.scheduled_at == datetime.combine(
        tomorrow, time(10, 15), tzinfo=AMSTERDAM
    ).astimezone(UTC)
    assert "Noor Jansen krijgt een uitnodiging" in planned["text"]
