"""Opening "Mijn eigen plan": the pupil's plans, one plan shown, a new plan started, a part
chosen to change, and the goal a new plan is for."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import main_menu, shorten
from chat_ui.texts import fill
from config.settings import Settings
from conversations.learning_plan.common import (
    FIELD_STATES,
    GOAL_TEXT_LENGTH,
    LISTED_PLANS,
    MODE_EDIT,
    MODE_NEW,
    LearningPlanDialogue,
    PlanEdit,
    PlanGoal,
    PlanMenu,
    PlanPart,
    Turn,
    goal_label,
)
from conversations.learning_plan.plan import show_plan
from conversations.learning_plan.questions import ask, goal_choices
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef, Viewer
from storage.goals import ChosenGoal
from storage.learning_plans import PlanField, plan_of, plans_of


async def _start_new(turn: Turn) -> None:
    goals = await goal_choices(turn.session, turn.pupil, turn.settings, turn.clock)
    await turn.state.set_state(
        LearningPlanDialogue.choosing_goal if goals else LearningPlanDialogue.idea
    )
    await turn.state.set_data({"mode": MODE_NEW, "answers": {}, "steps": []})
    intro = _(
        "✨ <b>Mijn eigen plan</b>\n"
        "Ik stel je een paar korte vragen, één voor één. Pas aan het eind bewaar ik je plan. "
        "Stoppen kan altijd met /annuleer."
    )
    await ask(turn, prefix=intro)


async def _button_too_old(query: CallbackQuery) -> None:
    # Telegram gives no message with a press on a very old message: nothing to answer under.
    await query.answer(_("Deze knop werkt niet meer. Typ /mijnplan."), show_alert=True)


async def show_plans(message: Message, turn: Turn) -> None:
    """/mijnplan: the pupil's plans to open, or straight into a new plan when there are none."""
    if await turn.state.get_state() in LearningPlanDialogue:
        # A pupil who types /mijnplan again mid-way most likely lost track; losing the answers
        # would hurt more than one more question.
        await ask(
            turn, prefix=_("Je was nog bezig met je plan. Ga gewoon verder, of stop met /annuleer.")
        )
        return
    await turn.state.clear()
    plans = await plans_of(turn.session, pupil_id=turn.pupil.id)
    if not plans:
        await _start_new(turn)
        return
    rows = [
        [
            InlineKeyboardButton(
                text="📄 " + shorten(plan.idea),
                callback_data=PlanMenu(plan_id=plan.id).pack(),
            )
        ]
        for plan in plans[:LISTED_PLANS]
    ]
    rows.append(
        [InlineKeyboardButton(text=_("➕ Nieuw plan"), callback_data=PlanMenu(plan_id=0).pack())]
    )
    await message.answer(
        _("📒 <b>Mijn eigen plannen</b>\nKies een plan om te bekijken, of begin een nieuw plan."),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def not_for_this_role(message: Message, viewer: Viewer) -> None:
    """/mijnplan from a teacher, parent, admin or someone not linked yet."""
    await message.answer(
        _("Mijn eigen plan is er voor leerlingen. Kies iets uit het menu, of typ /help."),
        reply_markup=main_menu(viewer),
    )


async def menu_pressed(
    query: CallbackQuery,
    callback_data: PlanMenu,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """A plan of the list (checked to be this pupil's) or ➕ Nieuw plan."""
    if not isinstance(query.message, Message):
        await _button_too_old(query)
        return
    turn = Turn(query.message, state, session, viewer, person, settings, clock)
    if callback_data.plan_id == 0:
        await query.answer()
        await _start_new(turn)
        return
    plan = await plan_of(session, pupil_id=person.id, plan_id=callback_data.plan_id)
    if plan is None:
        await query.answer(_("Dit plan ken ik niet."), show_alert=True)
        return
    await query.answer()
    await show_plan(turn, plan)


async def edit_pressed(
    query: CallbackQuery,
    callback_data: PlanEdit,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """✏️ under a plan: ask that one part again; the plan id is checked to be this pupil's."""
    plan = await plan_of(session, pupil_id=person.id, plan_id=callback_data.plan_id)
    if plan is None:
        await query.answer(_("Dit plan ken ik niet."), show_alert=True)
        return
    if not isinstance(query.message, Message):
        await _button_too_old(query)
        return
    await query.answer()
    if callback_data.part is PlanPart.STEPS:
        await state.set_state(LearningPlanDialogue.step_what)
    else:
        await state.set_state(FIELD_STATES[PlanField(callback_data.part.value)])
    await state.set_data({"mode": MODE_EDIT, "plan_id": plan.id, "steps": []})
    await ask(Turn(query.message, state, session, viewer, person, settings, clock))


async def goal_chosen(
    query: CallbackQuery,
    callback_data: PlanGoal,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """One of the pupil's goals of this period, or an own idea; any other goal is refused."""
    chosen: ChosenGoal | None = None
    if callback_data.pupil_goal_id != 0:
        goals = await goal_choices(session, person, settings, clock)
        chosen = next((g for g in goals if g.pupil_goal_id == callback_data.pupil_goal_id), None)
        if chosen is None:
            await query.answer(
                _("Dit doel ken ik niet. Kies een van je eigen doelen."), show_alert=True
            )
            return
    if not isinstance(query.message, Message):
        await _button_too_old(query)
        return
    await query.answer()
    await state.update_data(pupil_goal_id=chosen.pupil_goal_id if chosen else None)
    await state.set_state(LearningPlanDialogue.idea)
    # The buttons go, so a second tap cannot choose again; the choice stays readable.
    await query.message.edit_text(
        fill(
            _("🎯 Je plan hoort bij: {goal}"),
            goal=goal_label(chosen.goal.code, chosen.goal.text, GOAL_TEXT_LENGTH),
        )
        if chosen
        else _("💡 Je plan gaat over een eigen idee.")
    )
    await ask(Turn(query.message, state, session, viewer, person, settings, clock))
