"""'Mijn eigen plan' end to end: a whole plan, editing, wrong input, forged buttons, a restart,
/annuleer and a teacher who tries it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import select

from conversations.learning_plan import PlanEdit, PlanGoal, PlanMenu, PlanPart
from sandbox import SandboxClient
from storage.fsm import dialogue_states
from storage.learning_plans import MAX_STEPS, PlanStep, create_plan
from storage.models import (
    ChosenBy,
    Goal,
    GoalSet,
    LearningLine,
    LearningPlan,
    LearningPlanStep,
    Period,
    PupilGoal,
)
from tests.factories import DemoSchool
from tests.images import small_jpeg


@pytest.fixture(autouse=True)
async def roomy_chat_rate(telegram: SandboxClient) -> None:
    # A test answers faster than any child types; Telegram's per-chat burst is not tested here.
    await telegram.set_limits(per_chat_burst=500)


async def give_goals(session_factory, school: DemoSchool) -> dict[str, int]:
    """A school-wide period around today with one goal for each pupil: pupil key -> pupil goal."""
    async with session_factory() as session, session.begin():
        goal_set = GoalSet(school_id=school.school_id, name="Zaakvakken")
        session.add(goal_set)
        await session.flush()
        line = LearningLine(goal_set_id=goal_set.id, name="Techniek", position=1)
        today = date.today()
        period = Period(
            school_id=school.school_id,
            name="Periode 2",
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=30),
        )
        session.add_all([line, period])
        await session.flush()
        goals = {}
        for key, code, text in (("P1", "T1", "Ik kan bouwen"), ("P2", "T2", "Ik kan solderen")):
            goal = Goal(
                goal_set_id=goal_set.id, learning_line_id=line.id, code=code, text=text, position=1
            )
            session.add(goal)
            await session.flush()
            pupil_goal = PupilGoal(
                pupil_id=school.persons[key],
                goal_id=goal.id,
                period_id=period.id,
                chosen_by=ChosenBy.PUPIL,
            )
            session.add(pupil_goal)
            await session.flush()
            goals[key] = pupil_goal.id
    return goals


async def saved_plan(session_factory, pupil_id: int, idea: str = "Een podcast maken") -> int:
    async with session_factory() as session, session.begin():
        plan = await create_plan(
            session,
            pupil_id=pupil_id,
            pupil_goal_id=None,
            idea=idea,
            motivation="Ik praat graag",
            steps=[PlanStep("Onderwerp kiezen", "Alleen", "maandag")],
        )
    assert plan is not None
    return plan.id


async def joined(telegram: SandboxClient, school: DemoSchool, key: str = "P1"):
    user = await telegram.create_user("Sam" if key == "P1" else "Noor")
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def answer(user, text: str) -> dict[str, Any]:
    await user.send_text(text)
    [reply] = await user.wait_for_reply()
    return reply


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


async def plans(session_factory) -> list[LearningPlan]:
    async with session_factory() as session:
        return list((await session.scalars(select(LearningPlan).order_by(LearningPlan.id))).all())


async def steps_of(session_factory, plan_id: int) -> list[tuple[int, str, str | None, str | None]]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(LearningPlanStep)
            .where(LearningPlanStep.learning_plan_id == plan_id)
            .order_by(LearningPlanStep.position)
        )
        return [(step.position, step.what, step.who, step.when_text) for step in rows]


async def no_dialogue_left(session_factory) -> bool:
    async with session_factory() as session:
        return await dialogue_states(session) == []


T = TypeVar("T")


async def settled(read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """The bot replies before its transaction commits, so rows are read until they settle;
    after 5 s the last reading is returned and the test's own assertions say what is wrong."""
    for _ in range(100):
        value = await read()
        if done(value):
            break
        await asyncio.sleep(0.05)
    return value


async def test_a_full_plan_with_two_steps_is_saved_and_shown_as_one_message(
    running_bot, telegram, school, session_factory
):
    goals = await give_goals(session_factory, school)
    sam = await joined(telegram, school)

    first = await answer(sam, "/mijnplan")
    assert "Mijn eigen plan" in first["text"] and "/annuleer" in first["text"]
    assert buttons(first) == ["🎯 T1 Ik kan bouwen", "💡 Een eigen idee"]  # not Noor's goal
    await sam.press("🎯 T1 Ik kan bouwen", message_id=first["message_id"])
    chosen = await sam.wait_for_edit(first["message_id"])
    assert "T1 Ik kan bouwen" in chosen["text"] and buttons(chosen) == []
    [question] = await sam.wait_for_reply()
    assert "Wat is je idee?" in question["text"] and "Bijvoorbeeld" in question["text"]
    assert sam.reply_keyboard() is None  # the menu is away: a tap cannot become an answer

    question = await answer(sam, "Een vogelhuisje bouwen")
    assert "Waarom" in question["text"] and sam.reply_keyboard() == [["Sla over"]]
    question = await answer(sam, "Er komen veel vogels in onze tuin")
    assert "Wat weet" in question["text"]
    question = await answer(sam, "Sla over")
    assert "Wat kun je" in question["text"]
    question = await answer(sam, "Meten en zagen")
    assert "Wie en wat" in question["text"]
    question = await answer(sam, "Opa helpt, ik heb hout nodig")
    assert "draaiboek" in question["text"] and "Stap 1" in question["text"]
    question = await answer(sam, "Een tekening maken")
    assert "Met wie" in question["text"] and sam.reply_keyboard() == [["Alleen"]]
    question = await answer(sam, "Alleen")
    assert "Wanneer" in question["text"]
    assert sam.reply_keyboard() == [["Deze week", "Volgende week"]]
    question = await answer(sam, "Deze week")
    assert "Stap 1" in question["text"]
    assert sam.reply_keyboard() == [["➕ Nog een stap", "✅ Klaar"]]
    question = await answer(sam, "➕ Nog een stap")
    assert "Stap 2" in question["text"]
    await answer(sam, "Zagen en timmeren")
    await answer(sam, "met opa")
    await answer(sam, "woensdag")
    assert await plans(session_factory) == []  # nothing is saved before ✅ Klaar

    await sam.send_text("✅ Klaar")
    saved, shown = await sam.wait_for_reply(count=2)
    assert "bewaard" in saved["text"]
    assert sam.reply_keyboard() not in (None, [["➕ Nog een stap", "✅ Klaar"]])  # menu back
    for part in (
        "Mijn eigen plan",
        "T1 Ik kan bouwen",
        "Een vogelhuisje bouwen",
        "nog leeg",  # what I already know was skipped
        "1. Een tekening maken",
        "2. Zagen en timmeren",
        "met opa",
        "woensdag",
    ):
        assert part in shown["text"]
    assert {"bold"} <= {entity["type"] for entity in shown["entities"]}
    assert {"✏️ Idee", "✏️ Waarom", "✏️ Stappen"} <= set(buttons(shown))

    [plan] = await settled(lambda: plans(session_factory), lambda rows: len(rows) == 1)
    assert plan.pupil_id == school.persons["P1"] and plan.pupil_goal_id == goals["P1"]
    assert (plan.idea, plan.motivation, plan.prior_knowledge) == (
        "Een vogelhuisje bouwen",
        "Er komen veel vogels in onze tuin",
        None,
    )
    assert (plan.outcome, plan.needs) == ("Meten en zagen", "Opa helpt, ik heb hout nodig")
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    monday = today - timedelta(days=today.weekday())
    this_week = "week van " + format_date(monday, format="d MMMM", locale="nl")
    assert await steps_of(session_factory, plan.id) == [
        (1, "Een tekening maken", "Alleen", this_week),
        (2, "Zagen en timmeren", "met opa", "woensdag"),
    ]
    assert await settled(lambda: no_dialogue_left(session_factory), bool)


async def test_editing_changes_only_that_part_and_shows_the_plan_again(
    running_bot, telegram, school, session_factory
):
    plan_id = await saved_plan(session_factory, school.persons["P1"])
    sam = await joined(telegram, school)

    listing = await answer(sam, "/mijnplan")
    assert buttons(listing) == ["📄 Een podcast maken", "➕ Nieuw plan"]
    await sam.press("📄 Een podcast maken", message_id=listing["message_id"])
    [shown] = await sam.wait_for_reply()
    assert "Ik praat graag" in shown["text"]

    await sam.press("✏️ Waarom", message_id=shown["message_id"])
    [question] = await sam.wait_for_reply()
    assert "Ik praat graag" in question["text"] and "Waarom" in question["text"]
    assert sam.reply_keyboard() == [["↩️ Niet veranderen"], ["🧹 Leeg maken"]]
    await sam.send_text("Ik wil later op de radio")
    changed, again = await sam.wait_for_reply(count=2)
    assert "Aangepast" in changed["text"]
    assert "Ik wil later op de radio" in again["text"] and "Ik praat graag" not in again["text"]

    [plan] = await settled(
        lambda: plans(session_factory), lambda rows: rows[0].motivation != "Ik praat graag"
    )
    assert plan.motivation == "Ik wil later op de radio" and plan.idea == "Een podcast maken"
    assert await steps_of(session_factory, plan_id) == [
        (1, "Onderwerp kiezen", "Alleen", "maandag")
    ]

    # The steps are made anew; the old ones stay until ✅ Klaar.
    await sam.press("✏️ Stappen", message_id=again["message_id"])
    [question] = await sam.wait_for_reply()
    assert "Stap 1" in question["text"] and sam.reply_keyboard() == [["↩️ Niet veranderen"]]
    await answer(sam, "Vragen bedenken")
    await answer(sam, "met Noor")
    question = await answer(sam, "Volgende week")
    assert "Stap 1" in question["text"]
    assert await steps_of(session_factory, plan_id) == [
        (1, "Onderwerp kiezen", "Alleen", "maandag")
    ]
    await sam.send_text("✅ Klaar")
    _, again = await sam.wait_for_reply(count=2)
    assert "1. Vragen bedenken" in again["text"] and "Onderwerp kiezen" not in again["text"]
    [(position, what, who, when)] = await settled(
        lambda: steps_of(session_factory, plan_id), lambda rows: rows[0][1] != "Onderwerp kiezen"
    )
    assert (position, what, who) == (1, "Vragen bedenken", "met Noor")
    assert when is not None and when.startswith("week van ")
    [plan] = await plans(session_factory)
    assert plan.motivation == "Ik wil later op de radio"
    assert await settled(lambda: no_dialogue_left(session_factory), bool)


async def test_wrong_input_at_a_text_question_gets_a_gentle_answer(
    running_bot, telegram, school, session_factory
):
    sam = await joined(telegram, school)
    question = await answer(sam, "/plan")  # no goals this period: straight to the idea
    assert "Wat is je idee?" in question["text"]

    too_long = await answer(sam, "vogelhuisje " * 30)
    assert "Korter graag" in too_long["text"] and "300" in too_long["text"]
    await sam.send_photo(small_jpeg())
    [again] = await sam.wait_for_reply()
    assert "tekst" in again["text"] and "Wat is je idee?" in again["text"]
    skipped = await answer(sam, "Sla over")
    assert "niet overslaan" in skipped["text"]
    command = await answer(sam, "/vogels")
    assert "/annuleer" in command["text"]

    question = await answer(sam, "Een vogelhuisje bouwen")
    assert "Waarom" in question["text"]
    # /mijnplan again half-way keeps the answers and asks the same question.
    again = await answer(sam, "/mijnplan")
    assert "nog bezig" in again["text"] and "Waarom" in again["text"]
    question = await answer(sam, "Omdat het kan")
    assert "Wat weet" in question["text"]
    assert await plans(session_factory) == []


async def test_forged_buttons_are_refused_and_change_nothing(
    running_bot, telegram, school, session_factory
):
    goals = await give_goals(session_factory, school)
    noors_plan = await saved_plan(session_factory, school.persons["P2"], idea="Noors idee")
    sam = await joined(telegram, school)

    first = await answer(sam, "/mijnplan")
    forged_goal = PlanGoal(pupil_goal_id=goals["P2"]).pack()
    query = await sam.press_raw(first["message_id"], forged_goal)
    refused = await sam.wait_for_callback_answer(query["id"])
    assert refused["show_alert"] and "ken ik niet" in refused["text"]
    # Still choosing a goal: typing gets the goal buttons again.
    still = await answer(sam, "doel van Noor")
    assert "knoppen" in still["text"] and "🎯 T1 Ik kan bouwen" in buttons(still)

    for forged in (
        PlanEdit(plan_id=noors_plan, part=PlanPart.IDEA).pack(),
        PlanMenu(plan_id=noors_plan).pack(),
    ):
        query = await sam.press_raw(first["message_id"], forged)
        refused = await sam.wait_for_callback_answer(query["id"])
        assert refused["show_alert"] and "ken ik niet" in refused["text"]

    [plan] = await plans(session_factory)
    assert plan.idea == "Noors idee" and plan.pupil_id == school.persons["P2"]
    assert plan.pupil_goal_id is None


async def test_a_restart_mid_plan_resumes_at_the_same_question(
    running_bot, telegram, school, session_factory
):
    sam = await joined(telegram, school)
    await answer(sam, "/mijnplan")
    await answer(sam, "Leren jongleren")
    question = await answer(sam, "Het ziet er knap uit")
    assert "Wat weet" in question["text"]

    await running_bot.restart()

    question = await answer(sam, "Ik kan al met twee ballen")
    assert "Wat kun je" in question["text"]
    await answer(sam, "Sla over")
    question = await answer(sam, "Sla over")
    assert "Stap 1" in question["text"]
    await sam.send_text("Sla over")  # no draaiboek yet
    saved, shown = await sam.wait_for_reply(count=2)
    assert "bewaard" in saved["text"] and "nog geen stappen" in shown["text"]

    [plan] = await settled(lambda: plans(session_factory), lambda rows: len(rows) == 1)
    assert (plan.idea, plan.motivation, plan.prior_knowledge) == (
        "Leren jongleren",
        "Het ziet er knap uit",
        "Ik kan al met twee ballen",
    )
    assert await steps_of(session_factory, plan.id) == []


async def test_annuleer_saves_nothing(running_bot, telegram, school, session_factory):
    sam = await joined(telegram, school)
    await answer(sam, "/mijnplan")
    for text in ("Een boek schrijven", "Sla over", "Sla over", "Sla over", "Sla over"):
        await answer(sam, text)
    await answer(sam, "Hoofdstuk 1")
    await answer(sam, "Alleen")
    question = await answer(sam, "Deze week")
    assert "nog een stap" in question["text"]

    stopped = await answer(sam, "/annuleer")
    assert "gestopt" in stopped["text"].lower()
    assert await settled(lambda: no_dialogue_left(session_factory), bool)
    assert await plans(session_factory) == []


async def test_a_teacher_is_told_the_plan_is_for_pupils(
    running_bot, telegram, school, session_factory
):
    teacher = await joined_teacher(telegram, school)
    reply = await answer(teacher, "/mijnplan")
    assert "voor leerlingen" in reply["text"]
    assert await plans(session_factory) == []
    assert await no_dialogue_left(session_factory)


async def joined_teacher(telegram: SandboxClient, school: DemoSchool):
    user = await telegram.create_user("Anouk")
    await user.send_text(f"/start {school.codes['T1']}")
    await user.wait_for_reply()
    return user


async def test_the_draaiboek_holds_at_most_eight_steps(
    running_bot, telegram, school, session_factory
):
    sam = await joined(telegram, school)
    await answer(sam, "/mijnplan")
    for text in ("Een stripboek tekenen", "Sla over", "Sla over", "Sla over", "Sla over"):
        await answer(sam, text)
    for number in range(1, MAX_STEPS + 1):
        await answer(sam, f"Pagina {number} tekenen")
        await answer(sam, "Alleen")
        question = await answer(sam, "woensdag")
        if number < MAX_STEPS:
            await answer(sam, "➕ Nog een stap")
    assert "vol" in question["text"] and sam.reply_keyboard() == [["✅ Klaar"]]
    full = await answer(sam, "➕ Nog een stap")
    assert "past er niet in" in full["text"]

    await sam.send_text("✅ Klaar")
    _, shown = await sam.wait_for_reply(count=2)
    assert "8. Pagina 8 tekenen" in shown["text"]
    [plan] = await settled(lambda: plans(session_factory), lambda rows: len(rows) == 1)
    assert [step[0] for step in await steps_of(session_factory, plan.id)] == list(range(1, 9))
