"""The teacher's look at their pupils' own plans (`/plannen`): tops & tips on "Mijn eigen plan".

One card at a time, the plans of the active group's pupils (`/groep` chooses it), the plan
a pupil changed last first. The card shows the whole plan and the newest tops & tips it had,
from parents and teachers. A top or a tip is one typed line; the pupil hears about it through
the same feedback notice as tops & tips on work. The card is text only, so turning a page
edits it in place; after a top or tip the card comes again below the typed line.

```mermaid
stateDiagram-v2
    [*] --> card: /plannen
    card --> card: ◀️ / ▶️
    card --> writing: 👍 Top / 💡 Tip
    writing --> card: one line of text (saved; the pupil is told)
    writing --> writing: not text, or too long
    writing --> [*]: /annuleer
```

Every id in a button is checked again in storage (`storage.learning_plans.plan_for_teacher`
and `give_teacher_plan_feedback`): a teacher acts only on plans of pupils of their own
current groups.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import TYPED
from conversations.learning_plan import timeline_lines
from conversations.review_card import (
    MAX_FEEDBACK_SHOWN,
    Card,
    Given,
    Picked,
    Prompts,
    ReviewCards,
    Typed,
    edit_in_place,
    feedback_row,
    not_text,
    paging_row,
    position,
    with_newest,
)
from conversations.work_card import school_day
from language.i18n import _, __
from storage.accounts import PersonRef
from storage.learning_plans import (
    PlanFeedback,
    PlanField,
    TeacherPlanPage,
    give_teacher_plan_feedback,
    plan_for_teacher,
    plan_position_for_teacher,
    plans_for_teacher,
)
from storage.models import Role
from storage.overview import GroupRef, active_group

MAX_FEEDBACK_TEXT = 100
# Telegram takes 4096 characters: a whole plan (all its parts and eight steps at their
# longest) stays under this, and older tops & tips make room for the newest.
MAX_CARD = 3800
MAX_GOAL_TEXT = 150


class PlanAt(CallbackData, prefix="pla"):
    """Show the card at this page."""

    offset: int


class PlanWrite(CallbackData, prefix="plw"):
    plan_id: int
    kind: str  # "top" or "tip"


class PlanReviewFeedback(StatesGroup):
    writing = State()


def _feedback_line(feedback: PlanFeedback) -> list[str]:
    templates = {
        Role.PARENT: (_("👍 Top van een ouder: {text}"), _("💡 Tip van een ouder: {text}")),
        Role.TEACHER: (
            _("👍 Top van een leerkracht: {text}"),
            _("💡 Tip van een leerkracht: {text}"),
        ),
    }
    top_template, tip_template = templates.get(
        feedback.author_role, (_("👍 Top: {text}"), _("💡 Tip: {text}"))
    )
    lines = []
    if feedback.top:
        lines.append(fill(top_template, text=shorten(feedback.top, MAX_FEEDBACK_TEXT)))
    if feedback.tip:
        lines.append(fill(tip_template, text=shorten(feedback.tip, MAX_FEEDBACK_TEXT)))
    return lines


def card_text(page: TeacherPlanPage, group: GroupRef, settings: Settings) -> str:
    """The card of one plan, as HTML within one message."""
    assert page.entry is not None
    plan = page.entry.plan
    lines = [
        fill(_("📒 <b>Plannen van {group}</b>"), group=group.name)
        + " · "
        + position(page.offset, page.total),
        "",
        bold(page.entry.pupil_name),
        fill(_("✏️ Bijgewerkt op {day}"), day=school_day(plan.updated_at, settings.timezone)),
    ]
    if plan.goal_text is not None:
        goal = f"{plan.goal_code} {plan.goal_text}" if plan.goal_code else plan.goal_text
        lines.append(fill(_("🎯 Bij het doel: {goal}"), goal=shorten(goal, MAX_GOAL_TEXT)))
    headings = {
        PlanField.IDEA: _("💡 <b>Idee:</b> {value}"),
        PlanField.MOTIVATION: _("❤️ <b>Waarom:</b> {value}"),
        PlanField.PRIOR_KNOWLEDGE: _("🧠 <b>Weet of kan al:</b> {value}"),
        PlanField.OUTCOME: _("🚀 <b>Kan daarna:</b> {value}"),
        PlanField.NEEDS: _("🧰 <b>Heeft nodig:</b> {value}"),
    }
    lines.append("")
    for field, template in headings.items():
        value = plan.value(field)
        lines.append(
            fill(template, value=value) if value else template.format(value=_("<i>nog leeg</i>"))
        )
    lines += ["", _("🗓 <b>Draaiboek</b>")]
    if not plan.steps:
        lines.append(_("<i>nog geen stappen</i>"))
    lines += timeline_lines(plan.steps)
    lines += ["", _("<b>Tops & tips</b>")]
    given = [
        line
        for feedback in page.entry.feedback[-MAX_FEEDBACK_SHOWN:]
        for line in _feedback_line(feedback)
    ]
    if not given:
        return "\n".join([*lines, _("<i>Nog geen tops & tips. Geef jij de eerste?</i>")])
    return with_newest(lines, given, MAX_CARD, at_least=1)


def card_keyboard(page: TeacherPlanPage) -> InlineKeyboardMarkup:
    assert page.entry is not None
    plan_id, offset = page.entry.plan.id, page.offset
    rows = [feedback_row(lambda kind: PlanWrite(plan_id=plan_id, kind=kind))]
    paging = paging_row(offset, page.total, lambda at: PlanAt(offset=at))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def card(session: AsyncSession, teacher: PersonRef, settings: Settings, offset: int) -> Card:
    """The card at `offset` (past the end: the last one), or why there is none."""
    group = await active_group(session, teacher_id=teacher.id)
    if group is None:
        return Card(_("Je hebt nog geen leerlingen. De beheerder zet je in een groep."))
    page = await plans_for_teacher(session, teacher_id=teacher.id, group_id=group.id, offset=offset)
    if page.entry is None:
        return Card(
            fill(
                _(
                    "In {group} heeft nog niemand een eigen plan gemaakt. Zodra een leerling "
                    "dat doet met /mijnplan, zie je het hier. 📒"
                ),
                group=group.name,
            )
        )
    return Card(card_text(page, group, settings), card_keyboard(page))


# --- handlers ---------------------------------------------------------------------------------


async def _pick(session: AsyncSession, teacher: PersonRef, button: PlanWrite) -> Picked | None:
    entry = await plan_for_teacher(session, teacher_id=teacher.id, plan_id=button.plan_id)
    if entry is None:
        return None
    return Picked(entry.pupil_name, {"plan_id": entry.plan.id})


async def _give(session: AsyncSession, teacher: PersonRef, typed: Typed) -> Given | None:
    try:
        plan_id = int(typed.about["plan_id"])
    except (KeyError, TypeError, ValueError):
        plan_id = 0
    feedback = await give_teacher_plan_feedback(
        session, teacher_id=teacher.id, plan_id=plan_id, top=typed.top, tip=typed.tip
    )
    if feedback is None:
        return None
    entry = await plan_for_teacher(session, teacher_id=teacher.id, plan_id=plan_id)
    group = await active_group(session, teacher_id=teacher.id)
    offset = await plan_position_for_teacher(
        session,
        teacher_id=teacher.id,
        group_id=group.id if group is not None else None,
        plan_id=plan_id,
    )
    return Given(feedback.id, feedback.pupil_id, entry.pupil_name if entry else "", offset)


# /plannen (registered with the teacher's commands) and ◀️ / ▶️: a text card, edited in place.
PROMPTS = Prompts(
    top=__("Typ je top voor {name} over dit plan: wat is er goed aan? Eén regel is genoeg."),
    tip=__("Typ je tip voor {name} over dit plan: wat kan nog beter? Eén regel is genoeg."),
)
PLANS = ReviewCards(card, edit_in_place, PlanReviewFeedback.writing, PROMPTS, _pick, _give)


def build_router() -> Router:
    """The card's buttons and the typing step; `/plannen` itself is registered with the other
    teacher commands (handlers/teacher.py), before their answer for other roles."""
    router = Router(name="plan_review")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(PLANS.page_turned, PlanAt.filter(), teacher)
    router.callback_query.register(PLANS.write_started, PlanWrite.filter(), teacher)
    router.message.register(PLANS.feedback_typed, PlanReviewFeedback.writing, TYPED, teacher)
    # Commands are left to their own handlers (/annuleer, /help ...).
    router.message.register(not_text, PlanReviewFeedback.writing, ~F.text.startswith("/"), teacher)
    return router
