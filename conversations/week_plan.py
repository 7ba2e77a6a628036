"""The week plan (`/weekplan`): per goal, the activities of this week, ticked when done.

```mermaid
stateDiagram-v2
    [*] --> plan: /weekplan (the plan as one message with tick buttons)
    plan --> plan: tick an activity (inkleuren)
    plan --> choose: "Plannen" / "Activiteit toevoegen"
    choose --> choose: per goal: toggle the teacher's activities, next goal
    choose --> own_activity: "Eigen activiteit"
    own_activity --> choose: typed
    choose --> plan: "Klaar"
```
"""

from __future__ import annotations

from datetime import date

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_WEEK_PLAN, button, edit_card
from chat_ui.texts import bold, fill
from config.settings import Settings
from language.i18n import _
from services.clock import Clock, school_today
from storage.accounts import PersonRef
from storage.goals import ChosenGoal, PupilContext, chosen_goals, pupil_context
from storage.models import PupilGoalStatus, Role
from storage.week_plans import (
    activities_for,
    add_own_activity,
    monday_of,
    plan_items,
    toggle_activity,
    toggle_done,
)

MAX_ACTIVITY_TEXT = 200


class PlanningWeek(StatesGroup):
    choose = State()
    own_activity = State()


class Tick(CallbackData, prefix="wt"):
    item_id: int


class Plan(CallbackData, prefix="wp"):
    index: int  # which goal of the period to plan


class ToggleActivity(CallbackData, prefix="wa"):
    index: int
    activity_id: int


class OwnActivity(CallbackData, prefix="wo"):
    index: int


class ShowPlan(CallbackData, prefix="ws"):
    pass


class OpenWeekPlan(CallbackData, prefix="wopen"):
    """The Monday prompt's button: the same as /weekplan."""


async def _goals(
    session: AsyncSession, pupil: PersonRef, settings: Settings, clock: Clock
) -> tuple[PupilContext, list[ChosenGoal], date]:
    today = school_today(settings, clock)
    context = await pupil_context(session, pupil_id=pupil.id, today=today)
    goals: list[ChosenGoal] = []
    if context.period_id is not None:
        goals = await chosen_goals(
            session,
            pupil_id=pupil.id,
            period_id=context.period_id,
            statuses=(PupilGoalStatus.ACTIVE,),
        )
    return context, goals, monday_of(today)


async def _plan_screen(
    session: AsyncSession, *, pupil_id: int, week_start: date, goals: list[ChosenGoal]
) -> tuple[str, InlineKeyboardMarkup]:
    items = await plan_items(session, pupil_id=pupil_id, week_start=week_start)
    lines = [bold(_("Mijn weekplan")) + fill(" ({week})", week=week_start.strftime("%d-%m"))]
    rows = []
    for goal in goals:
        goal_items = [item for item in items if item.pupil_goal_id == goal.pupil_goal_id]
        lines.append("")
        lines.append("🎯 " + bold(goal.goal.text))
        if not goal_items:
            lines.append("   " + _("(nog niets gepland)"))
        for item in goal_items:
            lines.append(fill("   {tick} {text}", tick="✅" if item.done else "⬜", text=item.text))
            rows.append(
                [button(("✅ " if item.done else "⬜ ") + item.text[:50], Tick(item_id=item.id))]
            )
    done = sum(item.done for item in items)
    if items:
        lines += ["", fill(_("{done} van {total} gedaan"), done=done, total=len(items))]
    rows.append([button(_("➕ Plannen"), Plan(index=0))])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def show(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """This week's plan with tick buttons; an empty plan starts the planning."""
    await state.clear()
    context, goals, week_start = await _goals(session, person, settings, clock)
    if not goals:
        await message.answer(_("Je hebt nog geen doelen voor deze periode. Kies ze met /doelen."))
        return
    items = await plan_items(session, pupil_id=person.id, week_start=week_start)
    if not items:
        await state.set_state(PlanningWeek.choose)
        text, keyboard = await _choose_screen(session, context, goals, 0, week_start)
        await message.answer(text, reply_markup=keyboard)
        return
    text, keyboard = await _plan_screen(
        session, pupil_id=person.id, week_start=week_start, goals=goals
    )
    await message.answer(text, reply_markup=keyboard)


async def show_from_prompt(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The Monday prompt's button: the same as /weekplan."""
    await query.answer()
    if isinstance(query.message, Message):
        await show(query.message, state, session, person, settings, clock)


async def _choose_screen(
    session: AsyncSession,
    context: PupilContext,
    goals: list[ChosenGoal],
    index: int,
    week_start: date,
) -> tuple[str, InlineKeyboardMarkup]:
    goal = goals[index]
    offered = await activities_for(
        session,
        pupil_id=context.pupil_id,
        pupil_goal_id=goal.pupil_goal_id,
        group_id=context.group_id,
    )
    planned = {
        item.text
        for item in await plan_items(session, pupil_id=context.pupil_id, week_start=week_start)
        if item.pupil_goal_id == goal.pupil_goal_id
    }
    lines = [
        fill(_("Doel {number} van {total}:"), number=index + 1, total=len(goals)),
        bold(goal.goal.text),
        "",
        _("Wat ga je deze week doen voor dit doel? Tik aan wat je kiest."),
    ]
    rows = [
        [
            button(
                ("✅ " if activity.text in planned else "") + activity.text[:50],
                ToggleActivity(index=index, activity_id=activity.id),
            )
        ]
        for activity in offered
    ]
    if not offered:
        lines.append(_("Je leerkracht heeft nog geen activiteiten klaargezet; bedenk er zelf een!"))
    rows.append([button(_("✍️ Eigen activiteit"), OwnActivity(index=index))])
    if index < len(goals) - 1:
        rows.append([button(_("Volgende doel ➡️"), Plan(index=index + 1))])
    rows.append([button(_("✅ Klaar"), ShowPlan())])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def plan_goal(
    query: CallbackQuery,
    callback_data: Plan,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The activities to choose from for one goal."""
    context, goals, week_start = await _goals(session, person, settings, clock)
    if not 0 <= callback_data.index < len(goals):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await state.set_state(PlanningWeek.choose)
    text, keyboard = await _choose_screen(session, context, goals, callback_data.index, week_start)
    await edit_card(query, text, keyboard)


async def activity_toggled(
    query: CallbackQuery,
    callback_data: ToggleActivity,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Puts an activity in this week's plan, or takes it out again."""
    context, goals, week_start = await _goals(session, person, settings, clock)
    if not 0 <= callback_data.index < len(goals):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    result = await toggle_activity(
        session,
        pupil_id=context.pupil_id,
        week_start=week_start,
        pupil_goal_id=goals[callback_data.index].pupil_goal_id,
        activity_id=callback_data.activity_id,
        group_id=context.group_id,
    )
    if result is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    text, keyboard = await _choose_screen(session, context, goals, callback_data.index, week_start)
    await edit_card(query, text, keyboard)


async def ask_own_activity(
    query: CallbackQuery, callback_data: OwnActivity, state: FSMContext
) -> None:
    """Asks for the pupil's own activity."""
    await query.answer()
    await state.set_state(PlanningWeek.own_activity)
    await state.update_data(goal_index=callback_data.index)
    assert query.message is not None
    await query.message.answer(
        _("Wat ga je doen? Typ het kort, bijvoorbeeld: oefenblad 3 maken met Noor.")
    )


async def own_activity_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Adds the typed activity to the plan and shows the goal's choices again."""
    assert message.text is not None
    text = message.text.strip()
    if len(text) > MAX_ACTIVITY_TEXT:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_ACTIVITY_TEXT
            )
        )
        return
    context, goals, week_start = await _goals(session, person, settings, clock)
    index = (await state.get_data()).get("goal_index", 0)
    if not 0 <= index < len(goals):
        await state.clear()
        await message.answer(_("Dat doel is er niet meer. Open /weekplan opnieuw."))
        return
    await add_own_activity(
        session,
        pupil_id=context.pupil_id,
        week_start=week_start,
        pupil_goal_id=goals[index].pupil_goal_id,
        text=text,
    )
    await state.set_state(PlanningWeek.choose)
    screen, keyboard = await _choose_screen(session, context, goals, index, week_start)
    await message.answer(screen, reply_markup=keyboard)


async def show_plan(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Planning done: the plan as one message with tick buttons."""
    await query.answer()
    await state.clear()
    context, goals, week_start = await _goals(session, person, settings, clock)
    text, keyboard = await _plan_screen(
        session, pupil_id=context.pupil_id, week_start=week_start, goals=goals
    )
    await edit_card(query, text, keyboard)


async def ticked(
    query: CallbackQuery,
    callback_data: Tick,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Ticks an activity as done ("inkleuren"), or unticks it."""
    done = await toggle_done(session, pupil_id=person.id, item_id=callback_data.item_id)
    if done is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer(_("Gedaan! 🎉") if done else _("Weer open gezet."))
    _context, goals, week_start = await _goals(session, person, settings, clock)
    text, keyboard = await _plan_screen(
        session, pupil_id=person.id, week_start=week_start, goals=goals
    )
    await edit_card(query, text, keyboard)


async def re_ask(message: Message) -> None:
    """Typing where buttons were expected while planning."""
    await message.answer(_("Tik op een van de knoppen hierboven, of typ /annuleer om te stoppen."))


def build_router() -> Router:
    router = Router(name="week_plan")
    pupil = HasRole(Role.PUPIL)
    router.message.register(show, Command("weekplan", "week"), pupil)
    router.message.register(show, F.text == BUTTON_WEEK_PLAN, pupil)
    router.callback_query.register(show_from_prompt, OpenWeekPlan.filter(), pupil)
    router.callback_query.register(plan_goal, Plan.filter(), pupil)
    router.callback_query.register(activity_toggled, ToggleActivity.filter(), pupil)
    router.callback_query.register(ask_own_activity, OwnActivity.filter(), pupil)
    router.callback_query.register(show_plan, ShowPlan.filter(), pupil)
    router.callback_query.register(ticked, Tick.filter(), pupil)
    router.message.register(
        own_activity_typed, PlanningWeek.own_activity, F.text & ~F.text.startswith("/"), pupil
    )
    router.message.register(re_ask, PlanningWeek.choose, ~F.text.startswith("/"))
    return router
