"""'Mijn eigen plan': a pupil writes a plan for a self-chosen goal, one short question at a time.

The questions follow the school template (seed 003, "Mijn eigen plan" and its draaiboek): my
idea, why I want it, what I already know, what I can do afterwards, who and what I need, and
the timeline (what, with whom, when). Nothing is saved until the pupil presses ✅ Klaar, so
/annuleer (handled by `handlers.common`) leaves no half plan behind. Everything the dialogue
knows lives in the FSM state and data (in the database), so after a restart it asks the same
question again. Editing a part re-uses the question states with `mode: "edit"` in the data.

```mermaid
stateDiagram-v2
    state "plan list (a message with buttons, no state)" as plan_list
    state "plan shown (one message with ✏️ buttons, no state)" as plan_shown
    [*] --> plan_list: /mijnplan, /plan (has plans)
    [*] --> choosing_goal: /mijnplan (no plans yet), goals this period
    [*] --> idea: /mijnplan (no plans yet), no goals this period
    plan_list --> plan_shown: 📄 own plan (another pupil's gets an alert)
    plan_list --> choosing_goal: ➕ Nieuw plan (idea when no goals)
    choosing_goal --> idea: 🎯 own goal, 💡 Een eigen idee
    choosing_goal --> choosing_goal: goal not theirs (alert), text, not text
    idea --> motivation: text ≤ 300
    motivation --> prior_knowledge: text, Sla over
    prior_knowledge --> outcome: text, Sla over
    outcome --> needs: text, Sla over
    needs --> step_what: text, Sla over
    step_what --> step_who: text
    step_who --> step_when: text, Alleen
    step_when --> step_more: text, Deze week, Volgende week
    step_more --> step_what: ➕ Nog een stap (at most 8)
    step_more --> step_more: anything else
    step_more --> plan_shown: ✅ Klaar (saved now, all at once)
    step_what --> plan_shown: Sla over, ✅ Klaar (saved)
    plan_shown --> idea: ✏️ Idee, edit mode (✏️ Waarom .. ✏️ Nodig alike)
    plan_shown --> step_what: ✏️ Stappen, edit mode (a new timeline)
    idea --> plan_shown: edit mode - text (only that part saved), ↩️ Niet veranderen
    idea --> idea: too long, not text, a command (every question alike)
    plan_list --> [*]
    plan_shown --> [*]
    note right of step_what
        /annuleer (handlers.common) ends every state; nothing is saved.
        /mijnplan in a state asks the same question again.
    end note
```
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n.lazy_proxy import LazyProxy
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_MY_PLAN, main_menu, shorten
from chat_ui.texts import fill
from config.settings import Settings
from language.i18n import _, __, current_locale
from services.clock import school_today
from storage.accounts import Viewer
from storage.goals import ChosenGoal, chosen_goals, pupil_context
from storage.learning_plans import (
    FIELD_LIMITS,
    MAX_STEP_WHAT,
    MAX_STEP_WHEN,
    MAX_STEP_WHO,
    MAX_STEPS,
    PlanField,
    PlanStep,
    PlanView,
    create_plan,
    plan_of,
    plans_of,
    replace_steps,
    update_field,
)
from storage.models import Role

MODE_NEW = "new"
MODE_EDIT = "edit"
# Button texts are cut so a long idea or goal still fits on a phone screen.
BUTTON_TEXT_LENGTH = 40
LISTED_PLANS = 20
# A goal's text can be 500 characters; in the plan message a shorter version keeps the whole
# plan within one Telegram message.
GOAL_TEXT_LENGTH = 150


class LearningPlanDialogue(StatesGroup):
    choosing_goal = State()
    idea = State()
    motivation = State()
    prior_knowledge = State()
    outcome = State()
    needs = State()
    step_what = State()
    step_who = State()
    step_when = State()
    step_more = State()


FIELD_STATES: dict[PlanField, State] = {
    PlanField.IDEA: LearningPlanDialogue.idea,
    PlanField.MOTIVATION: LearningPlanDialogue.motivation,
    PlanField.PRIOR_KNOWLEDGE: LearningPlanDialogue.prior_knowledge,
    PlanField.OUTCOME: LearningPlanDialogue.outcome,
    PlanField.NEEDS: LearningPlanDialogue.needs,
}
FIELD_OF_STATE: dict[str | None, PlanField] = {
    state.state: field for field, state in FIELD_STATES.items()
}
# The template's order: each answer leads to the next question, the last one to the timeline.
FIELD_ORDER = list(FIELD_STATES)


class PlanPart(enum.StrEnum):
    IDEA = "idea"
    MOTIVATION = "motivation"
    PRIOR_KNOWLEDGE = "prior_knowledge"
    OUTCOME = "outcome"
    NEEDS = "needs"
    STEPS = "steps"


class PlanMenu(CallbackData, prefix="lp"):
    plan_id: int  # 0: start a new plan


class PlanGoal(CallbackData, prefix="lpg"):
    pupil_goal_id: int  # 0: an own idea, not linked to a goal


class PlanEdit(CallbackData, prefix="lpe"):
    plan_id: int
    part: PlanPart


# Reply-keyboard answers: the pupil may tap them or type the same words. They replace the main
# menu while a question is open, so a menu tap cannot be taken for an answer.
BUTTON_SKIP = __("Sla over")
BUTTON_KEEP = __("↩️ Niet veranderen")
BUTTON_CLEAR = __("🧹 Leeg maken")
BUTTON_ALONE = __("Alleen")
BUTTON_THIS_WEEK = __("Deze week")
BUTTON_NEXT_WEEK = __("Volgende week")
BUTTON_MORE = __("➕ Nog een stap")
BUTTON_DONE = __("✅ Klaar")


# --- texts and keyboards ------------------------------------------------------------------


def _field_question(field: PlanField) -> str:
    questions = {
        PlanField.IDEA: _(
            "💡 <b>Wat is je idee?</b> Wat wil je leren, maken of uitzoeken?\n"
            "Bijvoorbeeld: <i>Ik wil een vogelhuisje bouwen.</i>"
        ),
        PlanField.MOTIVATION: _(
            "❤️ <b>Waarom wil je dit graag?</b>\n"
            "Bijvoorbeeld: <i>Ik wil dit graag omdat er veel vogels in onze tuin komen.</i>"
        ),
        PlanField.PRIOR_KNOWLEDGE: _(
            "🧠 <b>Wat weet of kun je er al van?</b> Van school, thuis of je club.\n"
            "Bijvoorbeeld: <i>Ik heb met opa al eens hout gezaagd.</i>"
        ),
        PlanField.OUTCOME: _(
            "🚀 <b>Wat kun je als je plan klaar is?</b>\n"
            "Bijvoorbeeld: <i>Ik kan goed meten en een bouwtekening lezen.</i>"
        ),
        PlanField.NEEDS: _(
            "🧰 <b>Wie en wat heb je nodig?</b>\n"
            "Bijvoorbeeld: <i>Opa helpt me. Ik heb hout, spijkers en een zaag nodig.</i>"
        ),
    }
    return questions[field]


def _headings() -> dict[PlanField, str]:
    return {
        PlanField.IDEA: _("💡 <b>Mijn idee</b>"),
        PlanField.MOTIVATION: _("❤️ <b>Waarom ik dit wil</b>"),
        PlanField.PRIOR_KNOWLEDGE: _("🧠 <b>Wat ik al weet</b>"),
        PlanField.OUTCOME: _("🚀 <b>Wat ik hierna kan</b>"),
        PlanField.NEEDS: _("🧰 <b>Wie en wat ik nodig heb</b>"),
    }


def _goal_label(code: str | None, text: str, limit: int = BUTTON_TEXT_LENGTH) -> str:
    return shorten(f"{code} {text}" if code else text, limit)


def render_plan(plan: PlanView) -> str:
    """The whole plan as one message: bold headings, the timeline as a numbered list."""
    empty = _("<i>nog leeg</i>")
    lines = [_("📒 <b>Mijn eigen plan</b>")]
    if plan.goal_text is not None:
        lines.append(
            fill(
                _("🎯 Bij mijn doel: {goal}"),
                goal=_goal_label(plan.goal_code, plan.goal_text, GOAL_TEXT_LENGTH),
            )
        )
    for field, heading in _headings().items():
        value = plan.value(field)
        lines += ["", heading, fill("{value}", value=value) if value else empty]
    lines += ["", _("🗓 <b>Mijn draaiboek</b>")]
    if not plan.steps:
        lines.append(_("<i>nog geen stappen</i>"))
    lines += timeline_lines(plan.steps)
    return "\n".join(lines)


def timeline_lines(steps: Sequence[PlanStep]) -> list[str]:
    """The plan's timeline, a line per step with who and when under it: the pupil's own view
    and the teacher's card (conversations/plan_review.py) read it the same way."""
    lines: list[str] = []
    for number, step in enumerate(steps, start=1):
        lines.append(fill("{number}. {what}", number=number, what=step.what))
        details = [
            fill(template, value=value)
            for template, value in (("👥 {value}", step.who), ("📅 {value}", step.when))
            if value
        ]
        if details:
            lines.append("     " + "  ·  ".join(details))
    return lines


def _edit_keyboard(plan_id: int) -> InlineKeyboardMarkup:
    labels = [
        (PlanPart.IDEA, _("✏️ Idee")),
        (PlanPart.MOTIVATION, _("✏️ Waarom")),
        (PlanPart.PRIOR_KNOWLEDGE, _("✏️ Wat ik weet")),
        (PlanPart.OUTCOME, _("✏️ Wat ik kan")),
        (PlanPart.NEEDS, _("✏️ Nodig")),
        (PlanPart.STEPS, _("✏️ Stappen")),
    ]
    buttons = [
        InlineKeyboardButton(text=label, callback_data=PlanEdit(plan_id=plan_id, part=part).pack())
        for part, label in labels
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 2] for i in range(0, 6, 2)])


def _answer_keyboard(
    rows: list[list[LazyProxy]],
) -> ReplyKeyboardMarkup | ReplyKeyboardRemove:
    if not rows:
        # No suggestion: still take the main menu away, its buttons are no answer.
        return ReplyKeyboardRemove()
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(label)) for label in row] for row in rows],
        resize_keyboard=True,
    )


def _goal_keyboard(goals: list[ChosenGoal]) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text="🎯 " + _goal_label(choice.goal.code, choice.goal.text),
                callback_data=PlanGoal(pupil_goal_id=choice.pupil_goal_id).pack(),
            )
        ]
        for choice in goals
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text=_("💡 Een eigen idee"), callback_data=PlanGoal(pupil_goal_id=0).pack()
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _week_of(day: date, weeks_ahead: int) -> str:
    """A dated "when", so the draaiboek still says which week it meant a month later."""
    monday = day - timedelta(days=day.weekday()) + timedelta(weeks=weeks_ahead)
    # Stored as plain text like a typed answer (escaped when shown), hence no `fill` here.
    return _("week van {date}").format(
        date=format_date(monday, format="d MMMM", locale=current_locale())
    )


# --- shared steps -----------------------------------------------------------------------------


def _pupil_id(viewer: Viewer) -> int:
    assert viewer.person is not None and viewer.person.role is Role.PUPIL
    return viewer.person.id


async def _goal_choices(
    session: AsyncSession, viewer: Viewer, settings: Settings
) -> list[ChosenGoal]:
    """The pupil's own goals of this period: the only goals a plan may be linked to."""
    context = await pupil_context(session, pupil_id=_pupil_id(viewer), today=school_today(settings))
    if context.period_id is None:
        return []
    return await chosen_goals(session, pupil_id=context.pupil_id, period_id=context.period_id)


async def _ask_current(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    *,
    prefix: str = "",
) -> None:
    """Asks the question of the current state: the next one, or the same one again after a
    wrong answer or a restart (everything needed is in the FSM state and data)."""
    current = await state.get_state()
    data = await state.get_data()
    editing = data.get("mode") == MODE_EDIT
    rows: list[list[LazyProxy]] = []
    markup: ReplyKeyboardMarkup | ReplyKeyboardRemove | InlineKeyboardMarkup
    if current == LearningPlanDialogue.choosing_goal.state:
        goals = await _goal_choices(session, viewer, settings)
        text = _("🎯 Hoort je plan bij een van je doelen? Kies een doel, of kies een eigen idee.")
        markup = _goal_keyboard(goals)
    elif current in FIELD_OF_STATE:
        field = FIELD_OF_STATE[current]
        text = _field_question(field)
        if editing:
            plan = await plan_of(session, pupil_id=_pupil_id(viewer), plan_id=data["plan_id"])
            value = plan.value(field) if plan else None
            now = fill(_("Nu staat er: <i>{value}</i>"), value=value) if value else None
            text = (now or _("Nu is dit nog leeg.")) + "\n\n" + text
            rows = [[BUTTON_KEEP]]
            if field is not PlanField.IDEA and value:
                rows.append([BUTTON_CLEAR])
        elif field is not PlanField.IDEA:
            rows = [[BUTTON_SKIP]]
        markup = _answer_keyboard(rows)
    elif current == LearningPlanDialogue.step_what.state:
        number = len(data.get("steps", [])) + 1
        text = fill(
            _(
                "🗓 <b>Stap {number}: wat ga je doen?</b>\n"
                "Bijvoorbeeld: <i>Een tekening maken van het huisje.</i>"
            ),
            number=number,
        )
        if number == 1 and editing:
            intro = _(
                "Je maakt je draaiboek opnieuw. "
                "De oude stappen blijven staan tot je op ✅ Klaar drukt."
            )
            text = intro + "\n\n" + text
            rows = [[BUTTON_KEEP]]
        elif number == 1:
            intro = _(
                "Nu maak je je <b>draaiboek</b>: de stappen van je plan. "
                "Per stap: wat ga je doen, met wie en wanneer?"
            )
            text = intro + "\n\n" + text
            rows = [[BUTTON_SKIP]]
        else:
            rows = [[BUTTON_DONE]]
        markup = _answer_keyboard(rows)
    elif current == LearningPlanDialogue.step_who.state:
        text = _(
            "👥 <b>Met wie doe je dat?</b>\n"
            "Bijvoorbeeld: <i>met opa</i> of <i>met Noor</i>. Of kies: Alleen."
        )
        markup = _answer_keyboard([[BUTTON_ALONE]])
    elif current == LearningPlanDialogue.step_when.state:
        text = _(
            "📅 <b>Wanneer doe je dat?</b>\n"
            "Bijvoorbeeld: <i>woensdag</i> of <i>voor de kerstvakantie</i>. Of kies een knop."
        )
        markup = _answer_keyboard([[BUTTON_THIS_WEEK, BUTTON_NEXT_WEEK]])
    elif current == LearningPlanDialogue.step_more.state:
        count = len(data.get("steps", []))
        if count >= MAX_STEPS:
            text = fill(
                _("👍 Je draaiboek is vol: {count} stappen. Druk op ✅ Klaar om te bewaren."),
                count=count,
            )
            markup = _answer_keyboard([[BUTTON_DONE]])
        else:
            text = fill(
                _("👍 Stap {number} staat in je draaiboek. Wil je nog een stap toevoegen?"),
                number=count,
            )
            markup = _answer_keyboard([[BUTTON_MORE, BUTTON_DONE]])
    else:
        return
    await message.answer(prefix + "\n\n" + text if prefix else text, reply_markup=markup)


async def _typed_text(message: Message, limit: int) -> str | None:
    """The typed answer, or None after a gentle word about what is wrong with it."""
    text = (message.text or "").strip()
    if not text:
        await message.answer(_("Ik zie geen letters. Typ je antwoord, graag."))
        return None
    if text.startswith("/"):
        # An unknown command is no answer; the known ones were handled by other routers.
        await message.answer(
            _("Dat is een opdracht, geen antwoord. Typ je antwoord, of stop met /annuleer.")
        )
        return None
    if len(text) > limit:
        await message.answer(
            fill(
                _(
                    "Oei, dat is wat lang. Korter graag (max {limit} tekens, jij had er "
                    "{count}). Stoppen kan met /annuleer."
                ),
                limit=limit,
                count=len(text),
            )
        )
        return None
    return text


async def _show_plan(
    message: Message, viewer: Viewer, plan: PlanView, *, intro: str | None = None
) -> None:
    if intro is not None:
        # The questions took the main menu away; this brings it back.
        await message.answer(intro, reply_markup=main_menu(viewer))
    await message.answer(render_plan(plan), reply_markup=_edit_keyboard(plan.id))


async def _plan_gone(message: Message, state: FSMContext, viewer: Viewer) -> None:
    await state.clear()
    await message.answer(_("Dit plan kan ik niet meer vinden."), reply_markup=main_menu(viewer))


async def _start_new(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    goals = await _goal_choices(session, viewer, settings)
    await state.set_state(
        LearningPlanDialogue.choosing_goal if goals else LearningPlanDialogue.idea
    )
    await state.set_data({"mode": MODE_NEW, "answers": {}, "steps": []})
    intro = _(
        "✨ <b>Mijn eigen plan</b>\n"
        "Ik stel je een paar korte vragen, één voor één. Pas aan het eind bewaar ik je plan. "
        "Stoppen kan altijd met /annuleer."
    )
    await _ask_current(message, state, session, viewer, settings, prefix=intro)


async def _store_field(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    field: PlanField,
    value: str | None,
) -> None:
    data = await state.get_data()
    if data.get("mode") == MODE_EDIT:
        plan = await update_field(
            session, pupil_id=_pupil_id(viewer), plan_id=data["plan_id"], field=field, value=value
        )
        if plan is None:
            await _plan_gone(message, state, viewer)
            return
        await state.clear()
        await _show_plan(message, viewer, plan, intro=_("✅ Aangepast! Zo ziet je plan er nu uit:"))
        return
    answers = dict(data.get("answers", {}))
    answers[field.value] = value
    await state.update_data(answers=answers)
    position = FIELD_ORDER.index(field)
    if position + 1 < len(FIELD_ORDER):
        await state.set_state(FIELD_STATES[FIELD_ORDER[position + 1]])
    else:
        await state.set_state(LearningPlanDialogue.step_what)
    await _ask_current(message, state, session, viewer, settings)


# --- handlers ---------------------------------------------------------------------------------


async def show_plans(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """/mijnplan: the pupil's plans to open, or straight into a new plan when there are none."""
    if await state.get_state() in LearningPlanDialogue:
        # A pupil who types /mijnplan again mid-way most likely lost track; losing the answers
        # would hurt more than one more question.
        await _ask_current(
            message,
            state,
            session,
            viewer,
            settings,
            prefix=_("Je was nog bezig met je plan. Ga gewoon verder, of stop met /annuleer."),
        )
        return
    await state.clear()
    plans = await plans_of(session, pupil_id=_pupil_id(viewer))
    if not plans:
        await _start_new(message, state, session, viewer, settings)
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
    settings: Settings,
) -> None:
    """A plan of the list (checked to be this pupil's) or ➕ Nieuw plan."""
    if not isinstance(query.message, Message):
        await query.answer(_("Deze knop werkt niet meer. Typ /mijnplan."), show_alert=True)
        return
    if callback_data.plan_id == 0:
        await query.answer()
        await _start_new(query.message, state, session, viewer, settings)
        return
    plan = await plan_of(session, pupil_id=_pupil_id(viewer), plan_id=callback_data.plan_id)
    if plan is None:
        await query.answer(_("Dit plan ken ik niet."), show_alert=True)
        return
    await query.answer()
    await _show_plan(query.message, viewer, plan)


async def edit_pressed(
    query: CallbackQuery,
    callback_data: PlanEdit,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """✏️ under a plan: ask that one part again; the plan id is checked to be this pupil's."""
    plan = await plan_of(session, pupil_id=_pupil_id(viewer), plan_id=callback_data.plan_id)
    if plan is None:
        await query.answer(_("Dit plan ken ik niet."), show_alert=True)
        return
    if not isinstance(query.message, Message):
        await query.answer(_("Deze knop werkt niet meer. Typ /mijnplan."), show_alert=True)
        return
    await query.answer()
    if callback_data.part is PlanPart.STEPS:
        await state.set_state(LearningPlanDialogue.step_what)
    else:
        await state.set_state(FIELD_STATES[PlanField(callback_data.part.value)])
    await state.set_data({"mode": MODE_EDIT, "plan_id": plan.id, "steps": []})
    await _ask_current(query.message, state, session, viewer, settings)


async def goal_chosen(
    query: CallbackQuery,
    callback_data: PlanGoal,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """One of the pupil's goals of this period, or an own idea; any other goal is refused."""
    chosen: ChosenGoal | None = None
    if callback_data.pupil_goal_id != 0:
        goals = await _goal_choices(session, viewer, settings)
        chosen = next((g for g in goals if g.pupil_goal_id == callback_data.pupil_goal_id), None)
        if chosen is None:
            await query.answer(
                _("Dit doel ken ik niet. Kies een van je eigen doelen."), show_alert=True
            )
            return
    if not isinstance(query.message, Message):
        await query.answer(_("Deze knop werkt niet meer. Typ /mijnplan."), show_alert=True)
        return
    await query.answer()
    await state.update_data(pupil_goal_id=chosen.pupil_goal_id if chosen else None)
    await state.set_state(LearningPlanDialogue.idea)
    # The buttons go, so a second tap cannot choose again; the choice stays readable.
    await query.message.edit_text(
        fill(
            _("🎯 Je plan hoort bij: {goal}"),
            goal=_goal_label(chosen.goal.code, chosen.goal.text, GOAL_TEXT_LENGTH),
        )
        if chosen
        else _("💡 Je plan gaat over een eigen idee.")
    )
    await _ask_current(query.message, state, session, viewer, settings)


async def goal_expected(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """Text or anything else while the goal buttons wait."""
    await _ask_current(
        message,
        state,
        session,
        viewer,
        settings,
        prefix=_("Kies een van de knoppen, graag. Stoppen kan met /annuleer."),
    )


async def field_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """The answer to one of the plan's questions (idea, why, known, after, needs)."""
    field = FIELD_OF_STATE[await state.get_state()]
    text = await _typed_text(message, FIELD_LIMITS[field])
    if text is None:
        return
    await _store_field(message, state, session, viewer, settings, field, text)


async def field_emptied(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """Sla over (new plan) or 🧹 Leeg maken (editing): the part stays empty."""
    field = FIELD_OF_STATE[await state.get_state()]
    if field is PlanField.IDEA:
        await _ask_current(
            message,
            state,
            session,
            viewer,
            settings,
            prefix=_("Je idee kun je niet overslaan: daar gaat je plan over."),
        )
        return
    await _store_field(message, state, session, viewer, settings, field, None)


async def kept(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """↩️ Niet veranderen while editing a part or the steps: the plan stays as it was."""
    data = await state.get_data()
    if data.get("mode") != MODE_EDIT:
        await _ask_current(message, state, session, viewer, settings)
        return
    plan = await plan_of(session, pupil_id=_pupil_id(viewer), plan_id=data["plan_id"])
    if plan is None:
        await _plan_gone(message, state, viewer)
        return
    await state.clear()
    await _show_plan(message, viewer, plan, intro=_("Oké, er is niets veranderd."))


async def step_what_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    text = await _typed_text(message, MAX_STEP_WHAT)
    if text is None:
        return
    await state.update_data(step={"what": text})
    await state.set_state(LearningPlanDialogue.step_who)
    await _ask_current(message, state, session, viewer, settings)


async def step_who_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """Who helps with this step; the Alleen button arrives here as its text."""
    text = await _typed_text(message, MAX_STEP_WHO)
    if text is None:
        return
    data = await state.get_data()
    await state.update_data(step={**data.get("step", {}), "who": text})
    await state.set_state(LearningPlanDialogue.step_when)
    await _ask_current(message, state, session, viewer, settings)


async def _add_step(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    when: str,
) -> None:
    data = await state.get_data()
    step = {"what": "", "who": None, **data.get("step", {}), "when": when}
    steps = [*data.get("steps", []), step][:MAX_STEPS]
    await state.update_data(steps=steps, step={})
    await state.set_state(LearningPlanDialogue.step_more)
    await _ask_current(message, state, session, viewer, settings)


async def step_when_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    text = await _typed_text(message, MAX_STEP_WHEN)
    if text is None:
        return
    await _add_step(message, state, session, viewer, settings, text)


async def step_when_week(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """Deze week / Volgende week, saved as the date of that Monday."""
    weeks_ahead = 1 if message.text == str(BUTTON_NEXT_WEEK) else 0
    when = _week_of(school_today(settings), weeks_ahead)
    await _add_step(message, state, session, viewer, settings, when)


async def step_more(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """➕ Nog een stap, unless the draaiboek is full."""
    data = await state.get_data()
    if len(data.get("steps", [])) >= MAX_STEPS:
        await _ask_current(
            message,
            state,
            session,
            viewer,
            settings,
            prefix=fill(_("Meer dan {count} stappen past er niet in."), count=MAX_STEPS),
        )
        return
    await state.set_state(LearningPlanDialogue.step_what)
    await _ask_current(message, state, session, viewer, settings)


async def step_more_expected(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    await _ask_current(
        message,
        state,
        session,
        viewer,
        settings,
        prefix=_("Kies ➕ Nog een stap of ✅ Klaar. Stoppen kan met /annuleer."),
    )


async def _create_from(
    session: AsyncSession,
    pupil_id: int,
    answers: dict[str, str | None],
    steps: list[PlanStep],
    pupil_goal_id: int | None,
) -> PlanView | None:
    idea = answers.get(PlanField.IDEA)
    assert idea is not None  # the dialogue cannot reach the steps without an idea
    return await create_plan(
        session,
        pupil_id=pupil_id,
        pupil_goal_id=pupil_goal_id,
        idea=idea,
        motivation=answers.get(PlanField.MOTIVATION),
        prior_knowledge=answers.get(PlanField.PRIOR_KNOWLEDGE),
        outcome=answers.get(PlanField.OUTCOME),
        needs=answers.get(PlanField.NEEDS),
        steps=steps,
    )


async def steps_finished(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """✅ Klaar (or Sla over at the first step): the one moment a plan is written."""
    data = await state.get_data()
    steps = [PlanStep(s["what"], s.get("who"), s.get("when")) for s in data.get("steps", [])]
    pupil_id = _pupil_id(viewer)
    if data.get("mode") == MODE_EDIT:
        plan = await replace_steps(session, pupil_id=pupil_id, plan_id=data["plan_id"], steps=steps)
        intro = _("✅ Je draaiboek is aangepast! Zo ziet je plan er nu uit:")
    else:
        answers = data.get("answers", {})
        pupil_goal_id = data.get("pupil_goal_id")
        plan = await _create_from(session, pupil_id, answers, steps, pupil_goal_id)
        if plan is None and pupil_goal_id is not None:
            # The goal stopped being theirs while they typed: keep their work, without the link.
            plan = await _create_from(session, pupil_id, answers, steps, None)
        intro = _("✅ Je plan is bewaard! Zo ziet het eruit:")
    if plan is None:
        await _plan_gone(message, state, viewer)
        return
    await state.clear()
    await _show_plan(message, viewer, plan, intro=intro)


async def not_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """A photo, sticker or voice message where a typed answer was expected."""
    await _ask_current(
        message,
        state,
        session,
        viewer,
        settings,
        prefix=_("Ik kan hier alleen getypte tekst lezen. Typ je antwoord, graag. 🙂"),
    )


def build_router() -> Router:
    router = Router(name="learning_plan")
    pupils = Router(name="learning_plan_pupils")
    for observer in (pupils.message, pupils.callback_query):
        observer.filter(HasRole(Role.PUPIL))
    pupils.message.register(show_plans, Command("mijnplan", "plan"))
    pupils.message.register(show_plans, F.text == BUTTON_MY_PLAN)
    pupils.callback_query.register(menu_pressed, PlanMenu.filter())
    pupils.callback_query.register(edit_pressed, PlanEdit.filter())
    pupils.callback_query.register(
        goal_chosen, PlanGoal.filter(), LearningPlanDialogue.choosing_goal
    )
    pupils.message.register(goal_expected, LearningPlanDialogue.choosing_goal)

    field_states = StateFilter(*FIELD_STATES.values())
    pupils.message.register(kept, field_states, F.text == BUTTON_KEEP)
    pupils.message.register(
        field_emptied, field_states, (F.text == BUTTON_SKIP) | (F.text == BUTTON_CLEAR)
    )
    pupils.message.register(field_typed, field_states, F.text)

    what = LearningPlanDialogue.step_what
    pupils.message.register(kept, what, F.text == BUTTON_KEEP)
    pupils.message.register(steps_finished, what, (F.text == BUTTON_SKIP) | (F.text == BUTTON_DONE))
    pupils.message.register(step_what_typed, what, F.text)
    pupils.message.register(step_who_typed, LearningPlanDialogue.step_who, F.text)
    pupils.message.register(
        step_when_week,
        LearningPlanDialogue.step_when,
        (F.text == BUTTON_THIS_WEEK) | (F.text == BUTTON_NEXT_WEEK),
    )
    pupils.message.register(step_when_typed, LearningPlanDialogue.step_when, F.text)
    more = LearningPlanDialogue.step_more
    pupils.message.register(step_more, more, F.text == BUTTON_MORE)
    pupils.message.register(steps_finished, more, F.text == BUTTON_DONE)
    pupils.message.register(step_more_expected, more)
    pupils.message.register(not_text, StateFilter(LearningPlanDialogue))

    # Apart and after the pupils' router: a parent router's own handlers would run first.
    others = Router(name="learning_plan_others")
    others.message.register(not_for_this_role, Command("mijnplan", "plan"))
    router.include_routers(pupils, others)
    return router
