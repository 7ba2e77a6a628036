"""How a plan reads: the whole plan in one message with ✏️ buttons under it, and its
timeline (also on the teacher's card, `conversations/plan_review.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from chat_ui.keyboards import main_menu
from chat_ui.texts import fill
from conversations.learning_plan.common import (
    GOAL_TEXT_LENGTH,
    PlanEdit,
    PlanPart,
    Turn,
    goal_label,
)
from language.i18n import _
from storage.learning_plans import PlanField, PlanStep, PlanView


def _headings() -> dict[PlanField, str]:
    return {
        PlanField.IDEA: _("💡 <b>Mijn idee</b>"),
        PlanField.MOTIVATION: _("❤️ <b>Waarom ik dit wil</b>"),
        PlanField.PRIOR_KNOWLEDGE: _("🧠 <b>Wat ik al weet</b>"),
        PlanField.OUTCOME: _("🚀 <b>Wat ik hierna kan</b>"),
        PlanField.NEEDS: _("🧰 <b>Wie en wat ik nodig heb</b>"),
    }


def render_plan(plan: PlanView) -> str:
    """The whole plan as one message: bold headings, the timeline as a numbered list."""
    empty = _("<i>nog leeg</i>")
    lines = [_("📒 <b>Mijn eigen plan</b>")]
    if plan.goal_text is not None:
        lines.append(
            fill(
                _("🎯 Bij mijn doel: {goal}"),
                goal=goal_label(plan.goal_code, plan.goal_text, GOAL_TEXT_LENGTH),
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


async def show_plan(turn: Turn, plan: PlanView, *, intro: str | None = None) -> None:
    if intro is not None:
        # The questions took the main menu away; this brings it back.
        await turn.message.answer(intro, reply_markup=main_menu(turn.viewer))
    await turn.message.answer(render_plan(plan), reply_markup=_edit_keyboard(plan.id))


async def plan_gone(turn: Turn) -> None:
    await turn.state.clear()
    await turn.message.answer(
        _("Dit plan kan ik niet meer vinden."), reply_markup=main_menu(turn.viewer)
    )
