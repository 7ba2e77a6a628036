"""The questions of the plan, one at a time: each state's question with the answers to tap
(a reply keyboard instead of the main menu), and what a typed answer must be."""

from __future__ import annotations

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n.lazy_proxy import LazyProxy
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.texts import fill
from config.settings import Settings
from conversations.learning_plan.common import (
    BUTTON_ALONE,
    BUTTON_CLEAR,
    BUTTON_DONE,
    BUTTON_KEEP,
    BUTTON_MORE,
    BUTTON_NEXT_WEEK,
    BUTTON_SKIP,
    BUTTON_THIS_WEEK,
    FIELD_OF_STATE,
    MODE_EDIT,
    LearningPlanDialogue,
    PlanGoal,
    Turn,
    goal_label,
)
from language.i18n import _
from services.clock import Clock, school_today
from storage.accounts import PersonRef
from storage.goals import ChosenGoal, chosen_goals, pupil_context
from storage.learning_plans import MAX_STEPS, PlanField, plan_of


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
                text="🎯 " + goal_label(choice.goal.code, choice.goal.text),
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


async def goal_choices(
    session: AsyncSession, pupil: PersonRef, settings: Settings, clock: Clock
) -> list[ChosenGoal]:
    """The pupil's own goals of this period: the only goals a plan may be linked to."""
    context = await pupil_context(session, pupil_id=pupil.id, today=school_today(settings, clock))
    if context.period_id is None:
        return []
    return await chosen_goals(session, pupil_id=context.pupil_id, period_id=context.period_id)


async def ask(turn: Turn, *, prefix: str = "") -> None:
    """Asks the question of the current state: the next one, or the same one again after a
    wrong answer or a restart (everything needed is in the FSM state and data)."""
    current = await turn.state.get_state()
    data = await turn.state.get_data()
    editing = data.get("mode") == MODE_EDIT
    rows: list[list[LazyProxy]] = []
    markup: ReplyKeyboardMarkup | ReplyKeyboardRemove | InlineKeyboardMarkup
    if current == LearningPlanDialogue.choosing_goal.state:
        goals = await goal_choices(turn.session, turn.pupil, turn.settings, turn.clock)
        text = _("🎯 Hoort je plan bij een van je doelen? Kies een doel, of kies een eigen idee.")
        markup = _goal_keyboard(goals)
    elif current in FIELD_OF_STATE:
        field = FIELD_OF_STATE[current]
        text = _field_question(field)
        if editing:
            plan = await plan_of(turn.session, pupil_id=turn.pupil.id, plan_id=data["plan_id"])
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
    await turn.message.answer(prefix + "\n\n" + text if prefix else text, reply_markup=markup)


async def typed_text(message: Message, limit: int) -> str | None:
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
