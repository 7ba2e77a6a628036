"""Choosing goals: teacher-led levels, pupil-led proposals, search, and forged buttons."""

from __future__ import annotations

from datetime import time

from sqlalchemy import select

from conversations.goals import Decide, OfferPick, Propose
from handlers.pupil import AssessLevel
from storage.models import (
    Assessment,
    GoalMode,
    PupilGoal,
    PupilGoalStatus,
    Reminder,
    ReminderStatus,
    School,
)
from storage.observations import create_observation
from tests.factories import build_curriculum, give_goal


async def joined(telegram, school, key: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def no_quiet_hours(session_factory, school) -> None:
    """Messages between pupil and mentor go out at once, whatever the time the test runs."""
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.quiet_hours_start = row.quiet_hours_end = time(0, 0)


async def goals_of(session_factory, pupil_id: int) -> dict[int, PupilGoalStatus]:
    async with session_factory() as session:
        rows = await session.execute(
            select(PupilGoal.goal_id, PupilGoal.status).where(PupilGoal.pupil_id == pupil_id)
        )
        return dict(rows.all())


async def test_teacher_led_the_pupil_picks_one_level_per_line(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school, mode=GoalMode.TEACHER_LED)
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    assert "Leerlijn 1 van 2" in screen["text"] and "⭐⭐⭐" in screen["text"]
    # 1.1b needs 1.1a first: shown, marked, and still allowed.
    assert "eerst nog: 1.1a" in screen["text"]

    tier2 = curriculum.goals["1.1b"]
    await pupil.press(OfferPick(goal_id=tier2, index=0).pack(), message_id=screen["message_id"])
    edited = await pupil.wait_for_edit(screen["message_id"])
    assert "Leerlijn 2 van 2" in edited["text"]
    await pupil.press("⬅️ Vorige", message_id=screen["message_id"])
    await pupil.wait_for_edit(screen["message_id"])
    tier1 = curriculum.goals["1.1a"]
    await pupil.press(OfferPick(goal_id=tier1, index=0).pack(), message_id=screen["message_id"])
    await pupil.wait_for_edit(screen["message_id"])

    chosen = await goals_of(session_factory, school.persons["P1"])
    assert chosen[tier1] is PupilGoalStatus.ACTIVE
    assert chosen[tier2] is PupilGoalStatus.DROPPED  # one level per line

    await pupil.press(
        OfferPick(goal_id=curriculum.goals["1.2a"], index=1).pack(),
        message_id=screen["message_id"],
    )
    done = await pupil.wait_for_edit(screen["message_id"])
    assert "Jouw doelen" in done["text"] and "evenwicht" in done["text"]


async def test_a_goal_not_on_offer_is_refused(running_bot, telegram, school, session_factory):
    curriculum = await build_curriculum(session_factory, school, mode=GoalMode.TEACHER_LED)
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    forged = OfferPick(goal_id=curriculum.goals["1.5d"], index=0).pack()
    query = await pupil.press_raw(screen["message_id"], forged)
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]
    assert await goals_of(session_factory, school.persons["P1"]) == {}


async def test_pupil_led_a_proposal_is_confirmed_by_the_mentor(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school, mode=GoalMode.PUPIL_LED)
    await no_quiet_hours(session_factory, school)
    mentor = await joined(telegram, school, "T1", "Anouk")
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    await pupil.press("Vaardigheden", message_id=screen["message_id"])
    await pupil.wait_for_edit(screen["message_id"])
    await pupil.press("Samenwerken", message_id=screen["message_id"])
    lines = await pupil.wait_for_edit(screen["message_id"])
    assert "Ik werk samen met anderen aan een taak" in lines["text"]
    await pupil.press("Ik werk samen met anderen aan een taak", message_id=screen["message_id"])
    [sent] = await pupil.wait_for_reply()
    assert "naar je leerkracht gestuurd" in sent["text"]
    goal_id = curriculum.goals["SW"]
    assert (await goals_of(session_factory, school.persons["P1"]))[goal_id] is (
        PupilGoalStatus.PROPOSED
    )

    # The question goes through the reminder queue, like every message to someone else.
    await running_bot.app.reminders.dispatch()
    [ask] = await mentor.wait_for_reply()
    assert "Sam de Vries" in ask["text"] and "samen" in ask["text"]
    await mentor.press("✅ Goed", message_id=ask["message_id"])
    await mentor.wait_for_edit(ask["message_id"])
    await running_bot.app.reminders.dispatch()
    [told] = await pupil.wait_for_reply()
    assert "goed doel" in told["text"]
    assert (await goals_of(session_factory, school.persons["P1"]))[goal_id] is (
        PupilGoalStatus.ACTIVE
    )

    # A second tap (or a teacher of another group) decides nothing.
    query = await mentor.press_raw(ask["message_id"], Decide(pupil_goal_id=1, approve=False).pack())
    answer = await mentor.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]


async def test_search_finds_goals_by_word(running_bot, telegram, school, session_factory):
    curriculum = await build_curriculum(session_factory, school, mode=GoalMode.PUPIL_LED)
    pupil = await joined(telegram, school, "P2", "Noor")
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    await pupil.press("🔎 Zoeken op woord", message_id=screen["message_id"])
    await pupil.wait_for_reply()
    await pupil.send_text("hefbomen")
    [found] = await pupil.wait_for_reply()
    assert "Je kunt verschillende hefbomen herkennen" in found["text"]
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    await pupil.press("🔎 Zoeken op woord", message_id=screen["message_id"])
    await pupil.wait_for_reply()
    await pupil.send_text("xylofoon")
    [nothing] = await pupil.wait_for_reply()
    assert "Geen doel gevonden" in nothing["text"]
    # A goal id of no school of ours is refused.
    query = await pupil.press_raw(found["message_id"], Propose(goal_id=999999).pack())
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]
    assert curriculum.goals


async def test_my_goals_and_self_assessment(running_bot, telegram, school, session_factory):
    curriculum = await build_curriculum(session_factory, school)
    mine = await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["SW"],
    )
    theirs = await give_goal(
        session_factory,
        pupil_id=school.persons["P2"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["SW"],
    )
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("🎯 Mijn doelen")
    [overview] = await pupil.wait_for_reply()
    assert "Samenwerken" in overview["text"] and "0 dagen aan gewerkt" in overview["text"]
    await pupil.press("📍 Waar sta ik? Ik werk samen met anderen aan een taak")
    [levels] = await pupil.wait_for_reply()
    assert "gevorderd" in levels["text"] and "afspraken" in levels["text"]  # the descriptors
    await pupil.press("🟢🟢🟢 gevorderd", message_id=levels["message_id"])
    saved = await pupil.wait_for_edit(levels["message_id"])
    assert "gevorderd" in saved["text"]

    forged = await pupil.press_raw(
        levels["message_id"], AssessLevel(pupil_goal_id=theirs, position=4).pack()
    )
    answer = await pupil.wait_for_callback_answer(forged["id"])
    assert answer["show_alert"]
    async with session_factory() as session:
        assessments = (await session.scalars(select(Assessment))).all()
    assert [(a.pupil_id, a.by_role.value) for a in assessments] == [(school.persons["P1"], "pupil")]
    await pupil.send_text("🎯 Mijn doelen")
    [overview] = await pupil.wait_for_reply()
    assert "ik: gevorderd" in overview["text"]
    assert mine


async def test_look_back_lists_the_last_two_weeks(running_bot, telegram, school, session_factory):
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("🔙 Terugkijken")
    [empty] = await pupil.wait_for_reply()
    assert "nog niet gereflecteerd" in empty["text"]


async def test_look_back_shows_the_notes_the_teacher_shared_and_never_the_private_ones(
    running_bot, telegram, school, session_factory
):
    """A note "for pupil and parents" reaches the pupil's look back; a private one never."""
    async with session_factory() as session, session.begin():
        for text, private in (("Je hielp Noor heel goed", False), ("GEHEIM zorgpunt", True)):
            await create_observation(
                session,
                author_id=school.persons["T1"],
                pupil_ids=[school.persons["P1"]],
                text=text,
                is_private=private,
            )
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("🔙 Terugkijken")
    [answer] = await pupil.wait_for_reply()
    assert "nog niet gereflecteerd" in answer["text"]
    assert "Wat je juf of meester zag" in answer["text"]
    assert "Je hielp Noor heel goed" in answer["text"]
    assert "GEHEIM" not in answer["text"]


async def test_a_proposal_in_quiet_hours_waits_for_the_morning(
    running_bot, telegram, school, session_factory
):
    """Quiet hours all day: the mentor's question stays in the queue and nothing arrives."""
    await build_curriculum(session_factory, school, mode=GoalMode.PUPIL_LED)
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.quiet_hours_start, row.quiet_hours_end = time(0, 0), time(23, 59, 59)
    mentor = await joined(telegram, school, "T1", "Anouk")
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/doelen")
    [screen] = await pupil.wait_for_reply()
    await pupil.press("Vaardigheden", message_id=screen["message_id"])
    await pupil.wait_for_edit(screen["message_id"])
    await pupil.press("Samenwerken", message_id=screen["message_id"])
    await pupil.wait_for_edit(screen["message_id"])
    await pupil.press("Ik werk samen met anderen aan een taak", message_id=screen["message_id"])
    [sent] = await pupil.wait_for_reply()
    assert "naar je leerkracht gestuurd" in sent["text"]

    await running_bot.app.reminders.dispatch()
    async with session_factory() as session:
        [question] = (
            await session.scalars(select(Reminder).where(Reminder.kind == "goal_proposal"))
        ).all()
    assert question.person_id == school.persons["T1"]
    assert question.status is ReminderStatus.PENDING and question.sent_at is None
    chat = await mentor.messages()
    assert not any("wil graag aan dit doel werken" in str(m.get("text", "")) for m in chat)
