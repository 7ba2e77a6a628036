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

from contextlib import suppress
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.evidence_review import MAX_LINE
from conversations.learning_plan import timeline_lines
from conversations.parent_summary import announce_feedback
from language.i18n import _, current_locale
from services.clock import Clock
from storage.accounts import Viewer, recipient
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

MAX_FEEDBACK_SHOWN = 4
MAX_FEEDBACK_TEXT = 100
# Telegram takes 4096 characters: a whole plan (all its parts and eight steps at their
# longest) stays under this, and older tops & tips make room for the newest.
MAX_CARD = 3800
MAX_GOAL_TEXT = 150

TYPED = F.text & ~F.text.startswith("/")


class PlanAt(CallbackData, prefix="pla"):
    """Show the card at this page."""

    offset: int


class PlanWrite(CallbackData, prefix="plw"):
    plan_id: int
    kind: str  # "top" or "tip"


class PlanReviewFeedback(StatesGroup):
    writing = State()


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


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
        + _("{n} van {total}").format(n=page.offset + 1, total=page.total),
        "",
        bold(page.entry.pupil_name),
    ]
    changed = plan.updated_at.astimezone(ZoneInfo(settings.timezone)).date()
    lines.append(
        fill(
            _("✏️ Bijgewerkt op {day}"),
            day=format_date(changed, format="long", locale=current_locale()),
        )
    )
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
    # The newest tops & tips that fit in one message (the markup counts here as well, so the
    # text Telegram counts is shorter still).
    while len(given) > 1 and len("\n".join(lines + given)) > MAX_CARD:
        given.pop(0)
    return "\n".join(lines + given)


def card_keyboard(page: TeacherPlanPage) -> InlineKeyboardMarkup:
    assert page.entry is not None
    plan_id, offset = page.entry.plan.id, page.offset
    rows: list[list[InlineKeyboardButton]] = [
        [
            button(_("👍 Top"), PlanWrite(plan_id=plan_id, kind="top")),
            button(_("💡 Tip"), PlanWrite(plan_id=plan_id, kind="tip")),
        ]
    ]
    paging = []
    if offset > 0:
        paging.append(button(_("◀️ Vorige"), PlanAt(offset=offset - 1)))
    if offset + 1 < page.total:
        paging.append(button(_("Volgende ▶️"), PlanAt(offset=offset + 1)))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def card(
    session: AsyncSession, viewer: Viewer, settings: Settings, offset: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The card at `offset` (past the end: the last one), or why there is none."""
    assert viewer.person is not None
    group = await active_group(session, teacher_id=viewer.person.id)
    if group is None:
        return _("Je hebt nog geen leerlingen. De beheerder zet je in een groep."), None
    page = await plans_for_teacher(
        session, teacher_id=viewer.person.id, group_id=group.id, offset=offset
    )
    if page.entry is None:
        return (
            fill(
                _(
                    "In {group} heeft nog niemand een eigen plan gemaakt. Zodra een leerling "
                    "dat doet met /mijnplan, zie je het hier. 📒"
                ),
                group=group.name,
            ),
            None,
        )
    return card_text(page, group, settings), card_keyboard(page)


async def send_card(
    bot: Bot, chat_id: int, session: AsyncSession, viewer: Viewer, settings: Settings, offset: int
) -> None:
    text, keyboard = await card(session, viewer, settings, offset)
    await bot.send_message(chat_id, text, reply_markup=keyboard)


# --- handlers ---------------------------------------------------------------------------------


async def open_plans(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """/plannen: the first card."""
    await state.clear()
    await send_card(bot, message.chat.id, session, viewer, settings, 0)


async def page_turned(
    query: CallbackQuery,
    callback_data: PlanAt,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    assert isinstance(query.message, Message)
    await query.answer()
    text, keyboard = await card(session, viewer, settings, callback_data.offset)
    try:
        await query.message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as error:
        # Tapped twice: the card already shows this page.
        if "not modified" in str(error):
            return
        # Too old to edit, or not a text message: the card comes below it instead.
        await bot.send_message(query.message.chat.id, text, reply_markup=keyboard)


async def write_started(
    query: CallbackQuery,
    callback_data: PlanWrite,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
) -> None:
    """👍 Top / 💡 Tip: asks for one line."""
    assert viewer.person is not None and isinstance(query.message, Message)
    entry = await plan_for_teacher(
        session, teacher_id=viewer.person.id, plan_id=callback_data.plan_id
    )
    if entry is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    kind = "tip" if callback_data.kind == "tip" else "top"
    await state.set_state(PlanReviewFeedback.writing)
    await state.set_data({"plan_id": entry.plan.id, "kind": kind, "card": query.message.message_id})
    name = _first_name(entry.pupil_name)
    prompt = (
        fill(
            _("Typ je top voor {name} over dit plan: wat is er goed aan? Eén regel is genoeg."),
            name=name,
        )
        if kind == "top"
        else fill(
            _("Typ je tip voor {name} over dit plan: wat kan nog beter? Eén regel is genoeg."),
            name=name,
        )
    )
    await query.message.answer(prompt)


async def feedback_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """Saves the top or tip, tells the pupil (through the reminder dispatcher, in their own
    language, outside quiet hours) and shows the card again with it."""
    assert viewer.person is not None and message.text is not None
    text = " ".join(message.text.split())
    if not text:
        await not_text(message)
        return
    if len(text) > MAX_LINE:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_LINE
            )
        )
        return
    data = await state.get_data()
    is_tip = data.get("kind") == "tip"
    try:
        plan_id = int(data["plan_id"])
    except (KeyError, TypeError, ValueError):
        plan_id = 0
    feedback = await give_teacher_plan_feedback(
        session,
        teacher_id=viewer.person.id,
        plan_id=plan_id,
        top=None if is_tip else text,
        tip=text if is_tip else None,
    )
    await state.clear()
    if feedback is None:
        # The pupil left the teacher's groups, or the plan was removed, while they typed.
        await message.answer(_("Die keuze ken ik niet."))
        return
    moment = clock.now() if clock is not None else datetime.now(UTC)
    pupil = await recipient(session, person_id=feedback.pupil_id)
    # The notice tops & tips on work use too: one wording for the pupil.
    await announce_feedback(
        session,
        feedback_id=feedback.id,
        person_ids=[pupil.person_id] if pupil is not None else [],
        moment=moment,
    )
    entry = await plan_for_teacher(session, teacher_id=viewer.person.id, plan_id=plan_id)
    name = _first_name(entry.pupil_name) if entry else ""
    await message.answer(
        fill(_("Bewaard ✅ {name} krijgt je tip te zien."), name=name)
        if is_tip
        else fill(_("Bewaard ✅ {name} krijgt je top te zien."), name=name)
    )
    # The card, now with the feedback, below the typed line; the old one goes.
    if data.get("card"):
        # Too old to delete (48 hours) or gone already: the new card comes below it anyway.
        with suppress(TelegramBadRequest):
            await bot.delete_message(message.chat.id, int(data["card"]))
    group = await active_group(session, teacher_id=viewer.person.id)
    offset = await plan_position_for_teacher(
        session,
        teacher_id=viewer.person.id,
        group_id=group.id if group is not None else None,
        plan_id=plan_id,
    )
    await send_card(bot, message.chat.id, session, viewer, settings, offset)


async def not_text(message: Message) -> None:
    """A photo or sticker while the words of the top or tip are expected."""
    await message.answer(_("Typ je top of tip als tekst, of /annuleer om te stoppen."))


def build_router() -> Router:
    """The card's buttons and the typing step; `/plannen` itself is registered with the other
    teacher commands (handlers/teacher.py), before their answer for other roles."""
    router = Router(name="plan_review")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(page_turned, PlanAt.filter(), teacher)
    router.callback_query.register(write_started, PlanWrite.filter(), teacher)
    router.message.register(feedback_typed, PlanReviewFeedback.writing, TYPED, teacher)
    # Commands are left to their own handlers (/annuleer, /help ...).
    router.message.register(not_text, PlanReviewFeedback.writing, ~F.text.startswith("/"), teacher)
    return router
