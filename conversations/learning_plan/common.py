"""What the steps of "Mijn eigen plan" share: the states, the buttons, and a pupil's turn."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiogram.filters import BaseFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import shorten
from config.settings import Settings
from language.i18n import __
from services.clock import Clock
from storage.accounts import PersonRef, Viewer
from storage.learning_plans import PlanField

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


def goal_label(code: str | None, text: str, limit: int = BUTTON_TEXT_LENGTH) -> str:
    return shorten(f"{code} {text}" if code else text, limit)


@dataclass(frozen=True)
class Turn:
    """A pupil's message (or the message under their tap) in the dialogue, with everything
    answering it needs."""

    message: Message
    state: FSMContext
    session: AsyncSession
    viewer: Viewer  # for the main menu, given back when the questions are over
    pupil: PersonRef
    settings: Settings
    clock: Clock


class WithTurn(BaseFilter):
    """Hands each of the dialogue's message handlers its `turn` (next to the message itself,
    which aiogram passes first). Always passes; it comes after `HasRole`, which gives the
    pupil (`person`)."""

    async def __call__(
        self,
        message: Message,
        state: FSMContext,
        session: AsyncSession,
        viewer: Viewer,
        person: PersonRef,
        settings: Settings,
        clock: Clock,
    ) -> dict[str, Turn]:
        return {"turn": Turn(message, state, session, viewer, person, settings, clock)}
