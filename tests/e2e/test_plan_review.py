"""A teacher's `/plannen`: the own plans of the active group's pupils, one card at a time,
with tops & tips that reach the pupil; other groups' plans stay out of reach."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conversations.parent_summary import compose_feedback_notice
from conversations.plan_review import PlanAt, PlanWrite
from language.i18n import use_locale
from sandbox import SandboxClient
from services.export import render_json
from storage.accounts import Recipient
from storage.invites import issue_invite
from storage.learning_plans import PlanStep, create_plan
from storage.models import (
    ChosenBy,
    Feedback,
    FeedbackTarget,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    LearningLine,
    LearningPlan,
    Period,
    Person,
    PupilGoal,
    Reminder,
    Role,
)
from storage.parents import give_feedback
from storage.reminders import DueReminder
from storage.subject_data import collect_pupil_data
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool
from tests.images import small_jpeg

SAM_IDEA = "Een vogelhuisje bouwen"
NOOR_IDEA = "Een podcast over de zee maken"
PARENT_TIP = "Vraag opa of hij helpt zagen"


@pytest.fixture(autouse=True)
async def roomy_chat_rate(telegram: SandboxClient) -> None:
    # A test taps faster than any teacher; Telegram's per-chat burst is not tested here.
    await telegram.set_limits(per_chat_burst=500)


async def noor_goal(session_factory, school: DemoSchool) -> int:
    """Noor's goal this period, for her plan to belong to."""
    async with session_factory() as session, session.begin():
        goal_set = GoalSet(school_id=school.school_id, name="Zaakvakken")
        session.add(goal_set)
        await session.flush()
        line = LearningLine(goal_set_id=goal_set.id, name="Taal", position=1)
        period = Period(
            school_id=school.school_id,
            name="Periode 2",
            starts_on=date.today() - timedelta(days=30),
            ends_on=date.today() + timedelta(days=30),
        )
        session.add_all([line, period])
        await session.flush()
        goal = Goal(
            goal_set_id=goal_set.id,
            learning_line_id=line.id,
            code="T4",
            text="Ik kan een verhaal vertellen",
            position=1,
        )
        session.add(goal)
        await session.flush()
        pupil_goal = PupilGoal(
            pupil_id=school.persons["P2"],
            goal_id=goal.id,
            period_id=period.id,
            chosen_by=ChosenBy.PUPIL,
        )
        session.add(pupil_goal)
        await session.flush()
        return pupil_goal.id


@pytest.fixture
async def plans(running_bot, school, session_factory) -> dict[str, int]:
    """Sam's plan (changed yesterday, with his mother's tip) and Noor's (changed today, for
    her goal): Noor's comes first."""
    goal = await noor_goal(session_factory, school)
    async with session_factory() as session, session.begin():
        sam = await create_plan(
            session,
            pupil_id=school.persons["P1"],
            pupil_goal_id=None,
            idea=SAM_IDEA,
            motivation="Er komen veel vogels in onze tuin",
            prior_knowledge="Ik heb al eens hout gezaagd",
            outcome="Ik kan meten en een bouwtekening lezen",
            needs="Hout, spijkers en een zaag",
            steps=[PlanStep("Tekening maken", "Opa", "maandag"), PlanStep("Zagen")],
        )
        noor = await create_plan(
            session,
            pupil_id=school.persons["P2"],
            pupil_goal_id=goal,
            idea=NOOR_IDEA,
            motivation="Ik praat graag",
        )
        assert sam is not None and noor is not None
        row = await session.get(LearningPlan, sam.id)
        assert row is not None
        row.updated_at = datetime.now(UTC) - timedelta(days=1)
        await give_feedback(
            session,
            parent_id=school.persons["O1"],
            pupil_id=school.persons["P1"],
            target=FeedbackTarget.PLAN,
            target_id=sam.id,
            top=None,
            tip=PARENT_TIP,
        )
        return {"sam": sam.id, "noor": noor.id}


async def join(telegram: SandboxClient, school: DemoSchool, key: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


def labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


async def teacher_feedback(session_factory) -> list[Feedback]:
    async with session_factory() as session:
        return list(
            (
                await session.scalars(
                    select(Feedback)
                    .where(Feedback.author_role == Role.TEACHER)
                    .order_by(Feedback.id)
                )
            ).all()
        )


async def test_a_teacher_pages_through_the_plans_and_gives_a_top_and_a_tip(
    plans, running_bot, telegram, school, session_factory
):
    await join(telegram, school, "P1", "Sam")  # only a pupil in the bot can be told
    anouk = await join(telegram, school, "T1", "Anouk")
    await anouk.send_text("/plannen")
    [card] = await anouk.wait_for_reply()
    # The plan changed last comes first, with its goal and all its parts.
    assert "Plannen van Groep 6a" in card["text"] and "1 van 2" in card["text"]
    assert "Noor Jansen" in card["text"] and NOOR_IDEA in card["text"]
    assert "T4 Ik kan een verhaal vertellen" in card["text"]
    assert "Ik praat graag" in card["text"] and "nog geen stappen" in card["text"]
    assert "Nog geen tops & tips" in card["text"]
    assert labels(card) == ["👍 Top", "💡 Tip", "Volgende ▶️"]

    await anouk.press("Volgende ▶️", message_id=card["message_id"])
    sam_card = await anouk.wait_for_edit(card["message_id"])
    text = sam_card["text"]
    assert "2 van 2" in text and "Sam de Vries" in text and SAM_IDEA in text
    for part in ("veel vogels", "hout gezaagd", "bouwtekening", "een zaag"):
        assert part in text
    assert "1. Tekening maken" in text and "👥 Opa" in text and "📅 maandag" in text
    assert "2. Zagen" in text
    assert f"💡 Tip van een ouder: {PARENT_TIP}" in text
    assert labels(sam_card) == ["👍 Top", "💡 Tip", "◀️ Vorige"]

    await anouk.press("👍 Top", message_id=card["message_id"])
    [prompt] = await anouk.wait_for_reply()
    assert "Typ je top voor Sam" in prompt["text"]
    await anouk.send_photo(small_jpeg())
    [again] = await anouk.wait_for_reply()
    assert "als tekst" in again["text"]
    await anouk.send_text("Wat een   duidelijk draaiboek!")
    saved, new_card = await anouk.wait_for_reply(count=2)
    assert "Bewaard ✅ Sam krijgt je top te zien" in saved["text"]
    assert "2 van 2" in new_card["text"] and SAM_IDEA in new_card["text"]
    assert "👍 Top van een leerkracht: Wat een duidelijk draaiboek!" in new_card["text"]
    assert PARENT_TIP in new_card["text"]
    # One card in the chat: the old one went.
    assert not any(m["message_id"] == card["message_id"] for m in await anouk.messages())

    [top] = await teacher_feedback(session_factory)
    assert (top.author_id, top.target, top.learning_plan_id, top.pupil_id) == (
        school.persons["T1"],
        FeedbackTarget.PLAN,
        plans["sam"],
        school.persons["P1"],
    )
    assert (top.top, top.tip, top.evidence_id) == ("Wat een duidelijk draaiboek!", None, None)
    async with session_factory() as session:
        [notice] = (
            await session.scalars(select(Reminder).where(Reminder.kind == "feedback_notice"))
        ).all()
    assert notice.person_id == school.persons["P1"]
    assert notice.idempotency_key == f"feedback_notice:{top.id}:{school.persons['P1']}"
    due = DueReminder(
        notice.id, notice.kind, notice.person_id, notice.due_at, None, notice.payload, 0, "k"
    )
    async with session_factory() as session:
        with running_bot.app.i18n.context(), use_locale("nl"):
            [method] = await compose_feedback_notice(
                session,
                due,
                Recipient(school.persons["P1"], "Sam", 1, "nl"),
                running_bot.app.reminders.composers.context(datetime.now(UTC)),
            )
    assert "Juf Anouk gaf je feedback over het plan" in method.text
    assert SAM_IDEA in method.text and "duidelijk draaiboek" in method.text

    # A tip on Noor's plan, from the card shown again.
    await anouk.press("◀️ Vorige", message_id=new_card["message_id"])
    noor_card = await anouk.wait_for_edit(new_card["message_id"])
    assert NOOR_IDEA in noor_card["text"]
    await anouk.press("💡 Tip", message_id=new_card["message_id"])
    [prompt] = await anouk.wait_for_reply()
    assert "Typ je tip voor Noor" in prompt["text"]
    await anouk.send_text("Kies eerst één vis om over te vertellen")
    saved, last_card = await anouk.wait_for_reply(count=2)
    assert "Bewaard ✅ Noor krijgt je tip te zien" in saved["text"]
    assert "1 van 2" in last_card["text"]
    assert "Tip van een leerkracht: Kies eerst" in last_card["text"]
    _, tip = await teacher_feedback(session_factory)
    assert (tip.learning_plan_id, tip.top, tip.tip) == (
        plans["noor"],
        None,
        "Kies eerst één vis om over te vertellen",
    )

    # Sam's export holds the teacher's top on his plan.
    async with session_factory() as session:
        exported = json.loads(
            render_json(await collect_pupil_data(session, pupil_id=school.persons["P1"]))
        )
    assert {
        (item["author_role"], item["target"], item["target_id"], item["top"])
        for item in exported["feedback"]
    } >= {("teacher", "plan", plans["sam"], "Wat een duidelijk draaiboek!")}


async def test_a_restart_while_typing_the_top_keeps_the_step(
    plans, running_bot, telegram, school, session_factory
):
    anouk = await join(telegram, school, "T1", "Anouk")
    await anouk.send_text("/plannen")
    [card] = await anouk.wait_for_reply()
    await anouk.press("👍 Top", message_id=card["message_id"])
    [prompt] = await anouk.wait_for_reply()
    assert "Typ je top voor Noor" in prompt["text"]

    await running_bot.restart()

    await anouk.send_text("Lang verhaal " * 50)
    [too_long] = await anouk.wait_for_reply()
    assert "hooguit 500 tekens" in too_long["text"]
    await anouk.send_text("Een podcast, wat een goed idee!")
    saved, _card = await anouk.wait_for_reply(count=2)
    assert "Bewaard ✅ Noor krijgt je top te zien" in saved["text"]
    [top] = await teacher_feedback(session_factory)
    assert top.learning_plan_id == plans["noor"] and top.top == "Een podcast, wat een goed idee!"


async def other_group_teacher(session_factory, school: DemoSchool) -> str:
    """Meester Joost, who teaches Groep 8 only: his invite code."""
    async with session_factory() as session, session.begin():
        group = Group(school_id=school.school_id, name="Groep 8", school_year="2026-2027")
        joost = Person(
            school_id=school.school_id,
            external_id="T8",
            role=Role.TEACHER,
            display_name="Meester Joost",
        )
        session.add_all([group, joost])
        await session.flush()
        session.add(GroupMembership(group_id=group.id, person_id=joost.id, is_mentor=True))
        return await issue_invite(
            session, person_id=joost.id, valid_for=timedelta(days=14), secret=INVITE_SECRET
        )


async def test_a_teacher_of_another_group_reaches_none_of_these_plans(
    plans, telegram, school, session_factory
):
    code = await other_group_teacher(session_factory, school)
    joost = await telegram.create_user("Joost")
    await joost.send_text(f"/start {code}")
    await joost.wait_for_reply()
    await joost.send_text("/plannen")
    [reply] = await joost.wait_for_reply()
    assert "In Groep 8 heeft nog niemand een eigen plan gemaakt" in reply["text"]
    assert SAM_IDEA not in reply["text"] and not labels(reply)

    for data in (
        PlanWrite(plan_id=plans["sam"], kind="top"),
        PlanWrite(plan_id=plans["noor"], kind="tip"),
    ):
        query = await joost.press_raw(reply["message_id"], data.pack())
        answer = await joost.wait_for_callback_answer(query["id"])
        assert answer["show_alert"] and "ken ik niet" in answer["text"]
    # Typing now is no top: no dialogue was started.
    await joost.send_text("Mooi plan!")
    await joost.wait_for_reply()
    query = await joost.press_raw(reply["message_id"], PlanAt(offset=1).pack())
    await joost.wait_for_callback_answer(query["id"])
    for message in await joost.messages():
        assert SAM_IDEA not in (message.get("text") or "")
        assert NOOR_IDEA not in (message.get("text") or "")
    assert await teacher_feedback(session_factory) == []

    # A pupil gets the kind no the other teacher commands give.
    sam = await join(telegram, school, "P1", "Sam")
    await sam.send_text("/plannen")
    [no] = await sam.wait_for_reply()
    assert "Dat kan alleen een leerkracht" in no["text"]


def test_a_plan_with_much_to_say_still_fits_in_one_message():
    from config.settings import Settings
    from conversations.plan_review import card_text
    from language.i18n import load_i18n
    from storage.learning_plans import (
        MAX_ANSWER,
        MAX_IDEA,
        MAX_STEP_WHAT,
        MAX_STEP_WHEN,
        MAX_STEP_WHO,
        MAX_STEPS,
        PlanFeedback,
        PlanView,
        TeacherPlan,
        TeacherPlanPage,
    )
    from storage.overview import GroupRef

    def long(limit: int) -> str:
        return ("Heel lang verhaal " * 40)[:limit]

    plan = PlanView(
        id=1,
        pupil_id=2,
        pupil_goal_id=3,
        goal_code="1.1a",
        goal_text=long(300),
        idea=long(MAX_IDEA),
        motivation=long(MAX_ANSWER),
        prior_knowledge=long(MAX_ANSWER),
        outcome=long(MAX_ANSWER),
        needs=long(MAX_ANSWER),
        steps=tuple(
            PlanStep(long(MAX_STEP_WHAT), long(MAX_STEP_WHO), long(MAX_STEP_WHEN))
            for _ in range(MAX_STEPS)
        ),
        updated_at=datetime.now(UTC),
    )
    older = [PlanFeedback(long(500), None, Role.PARENT, datetime.now(UTC)) for _ in range(5)]
    newest = PlanFeedback(None, "Nieuwste tip", Role.TEACHER, datetime.now(UTC))
    feedback = (*older, newest)
    page = TeacherPlanPage(TeacherPlan(plan, "Sam de Vries " * 8, feedback), 0, 3)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with load_i18n().context(), use_locale("nl"):
        text = card_text(page, GroupRef(1, "Groep 6a"), settings)
    assert len(text) <= 4096
    # The newest tip stays; older tops make room (without the room, three would be shown).
    assert "Tip van een leerkracht: Nieuwste tip" in text
    assert text.count("Top van een ouder") < 3
