"""The week plan: choose activities per goal, add your own, tick them off."""

from __future__ import annotations

from sqlalchemy import select

from conversations.week_plan import Tick
from storage.models import WeekPlanItem
from tests.factories import build_curriculum, give_goal


async def test_plan_the_week_and_tick_an_activity(running_bot, telegram, school, session_factory):
    curriculum = await build_curriculum(session_factory, school)
    await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1a"],
    )
    pupil = await telegram.create_user("Sam")
    await pupil.send_text(f"/start {school.codes['P1']}")
    await pupil.wait_for_reply()

    await pupil.send_text("📅 Weekplan")
    [screen] = await pupil.wait_for_reply()
    assert "Doel 1 van 1" in screen["text"]
    await pupil.press("Oefenblad krachten", message_id=screen["message_id"])
    edited = await pupil.wait_for_edit(screen["message_id"])
    assert "✅ Oefenblad krachten" in str(edited["reply_markup"])
    await pupil.press("✍️ Eigen activiteit", message_id=screen["message_id"])
    await pupil.wait_for_reply()
    await pupil.send_text("Filmpje over zwaartekracht kijken")
    [again] = await pupil.wait_for_reply()
    await pupil.press("✅ Klaar", message_id=again["message_id"])
    plan = await pupil.wait_for_edit(again["message_id"])
    assert "⬜ Oefenblad krachten" in plan["text"]
    assert "Filmpje over zwaartekracht kijken" in plan["text"]
    assert "0 van 2 gedaan" in plan["text"]

    await pupil.press("⬜ Oefenblad krachten", message_id=again["message_id"])
    ticked = await pupil.wait_for_edit(again["message_id"])
    assert "✅ Oefenblad krachten" in ticked["text"] and "1 van 2 gedaan" in ticked["text"]
    async with session_factory() as session:
        items = (await session.scalars(select(WeekPlanItem).order_by(WeekPlanItem.id))).all()
    assert [(item.text, item.done_at is not None) for item in items] == [
        ("Oefenblad krachten", True),
        ("Filmpje over zwaartekracht kijken", False),
    ]

    # Someone else's item id is refused.
    query = await pupil.press_raw(again["message_id"], Tick(item_id=items[0].id + 100).pack())
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]


async def test_without_goals_the_week_plan_points_to_goals(running_bot, telegram, school):
    pupil = await telegram.create_user("Noor")
    await pupil.send_text(f"/start {school.codes['P2']}")
    await pupil.wait_for_reply()
    await pupil.send_text("/weekplan")
    [reply] = await pupil.wait_for_reply()
    assert "/doelen" in reply["text"]
