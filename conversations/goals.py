"""Choosing goals for the period (`/doelen`), in the group's way.

```mermaid
stateDiagram-v2
    [*] --> offer: /doelen, teacher-led group
    [*] --> browse: /doelen, pupil-led group
    offer --> offer: pick a level (⭐ .. ⭐⭐⭐) per line, next line
    offer --> browse: "Moeilijker doel kiezen" (own learning line)
    browse --> browse: goal set -> line -> goals (paged)
    browse --> search: "Zoeken"
    search --> browse: typed words -> matching goals
    browse --> [*]: goal proposed, mentor asked to confirm
    offer --> [*]: "Klaar"
```

Teacher-led: the teacher prepared up to three levels per learning line; one tap picks one and
replaces another level of that line. Pupil-led (and harder goals in a teacher-led group): the
pupil proposes, a mentor confirms or declines with one tap. Goals whose prerequisites are not
reached are shown with ⏳ and may still be chosen: the teacher sees them in the proposal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, edit_card, main_menu, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import arrows, checked, paged, refuse
from conversations.goal_picker import GoalPicker
from language.i18n import _
from scheduler.composers import ComposerContext, ComposerRegistry
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Recipient, Viewer, teachers_to_notify
from storage.goals import (
    GoalChoice,
    GoalChoiceError,
    LineOffer,
    PupilContext,
    choose_offered_goal,
    chosen_goals,
    decide_proposal,
    decision_on,
    goals_of_line,
    open_proposal,
    propose_goal,
    pupil_context,
    search_goals,
    teacher_offer,
)
from storage.models import GoalMode, PupilGoalStatus, Role
from storage.reminders import DueReminder, ReminderKind, schedule_reminder

log = logging.getLogger(__name__)

# Reminder kinds: the mentor asked about a proposed goal, the pupil told the decision.

PAGE_SIZE = 6
TIER_STARS = {1: "⭐", 2: "⭐⭐", 3: "⭐⭐⭐"}


class ChoosingGoals(StatesGroup):
    offer = State()
    browse = State()
    search = State()


class OfferLine(CallbackData, prefix="gol"):
    index: int


class OfferPick(CallbackData, prefix="gop"):
    goal_id: int
    index: int


class BrowseSets(CallbackData, prefix="gbs"):
    pass


class BrowseSet(CallbackData, prefix="gbt"):
    set_id: int


class BrowseLine(CallbackData, prefix="gbl"):
    line_id: int
    page: int


class Propose(CallbackData, prefix="gpp"):
    goal_id: int


class StartSearch(CallbackData, prefix="gsr"):
    pass


class Finished(CallbackData, prefix="gfin"):
    pass


class OpenMyGoals(CallbackData, prefix="gmine"):
    """The goal review prompt's button: the same as /mijndoelen (handled in handlers.pupil)."""


class Decide(CallbackData, prefix="gdc"):
    pupil_goal_id: int
    approve: bool


def proposal_gone() -> str:
    """A teacher's answer to a proposal that is no longer theirs to decide on."""
    return _("Dit voorstel is al beoordeeld, of het is niet van jouw leerling.")


PICKER = GoalPicker(
    open_set=lambda set_id: BrowseSet(set_id=set_id),
    open_line=lambda line_id: BrowseLine(line_id=line_id, page=0),
    all_sets=BrowseSets(),
)


async def _context(
    session: AsyncSession, pupil: PersonRef, settings: Settings, clock: Clock
) -> PupilContext:
    return await pupil_context(session, pupil_id=pupil.id, today=school_today(settings, clock))


async def start(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/doelen: the goals of this period, chosen the way the group works."""
    context = await _context(session, person, settings, clock)
    if context.period_id is None:
        await message.answer(
            _("Er is nu geen periode om doelen voor te kiezen. Je leerkracht zet die klaar."),
            reply_markup=main_menu(viewer),
        )
        return
    if context.goal_mode is GoalMode.TEACHER_LED:
        offer = await teacher_offer(session, context=context)
        if offer:
            await state.set_state(ChoosingGoals.offer)
            text, keyboard = _offer_screen(offer, 0)
            await message.answer(text, reply_markup=keyboard)
            return
    await state.set_state(ChoosingGoals.browse)
    text, keyboard = await _sets_screen(session, context)
    await message.answer(text, reply_markup=keyboard)


def _offer_screen(offer: list[LineOffer], index: int) -> tuple[str, InlineKeyboardMarkup]:
    line = offer[index]
    lines = [
        fill(
            _("Leerlijn {number} van {total}: {line}"),
            number=index + 1,
            total=len(offer),
            line=line.line_name,
        ),
        _("Kies het niveau dat bij jou past:"),
        "",
    ]
    rows = []
    for option in line.options:
        mark = "✅ " if option.goal.id == line.chosen_goal_id else ""
        lock = "⏳ " if option.blocked_by else ""
        stars = TIER_STARS.get(option.tier, "⭐")
        lines.append(f"{stars} {escape(option.goal.text)}")
        if option.blocked_by:
            lines.append(
                "   " + fill(_("⏳ eerst nog: {codes}"), codes=", ".join(option.blocked_by))
            )
        rows.append(
            [
                button(
                    f"{mark}{lock}{stars} {shorten(option.goal.text, 40)}",
                    OfferPick(goal_id=option.goal.id, index=index),
                )
            ]
        )
    navigation = []
    if index > 0:
        navigation.append(button(_("⬅️ Vorige"), OfferLine(index=index - 1)))
    if index < len(offer) - 1:
        navigation.append(button(_("Volgende ➡️"), OfferLine(index=index + 1)))
    if navigation:
        rows.append(navigation)
    rows.append([button(_("🚀 Moeilijker doel kiezen"), BrowseSets())])
    rows.append([button(_("✅ Klaar"), Finished())])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def offer_line(
    query: CallbackQuery,
    callback_data: OfferLine,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Another learning line of the teacher's offer."""
    context = await _context(session, person, settings, clock)
    offer = await teacher_offer(session, context=context)
    if not 0 <= callback_data.index < len(offer):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    text, keyboard = _offer_screen(offer, callback_data.index)
    await edit_card(query, text, keyboard)


async def offer_pick(
    query: CallbackQuery,
    callback_data: OfferPick,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """One tap takes a prepared level of a line, then the next line is shown."""
    context = await _context(session, person, settings, clock)
    try:
        chosen = await choose_offered_goal(session, context=context, goal_id=callback_data.goal_id)
    except GoalChoiceError:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer(fill(_("Gekozen: {goal}"), goal=shorten(chosen.goal.text, 150)))
    offer = await teacher_offer(session, context=context)
    index = min(callback_data.index + 1, len(offer) - 1)
    if all(line.chosen_goal_id for line in offer):
        await edit_card(query, await _my_goals_text(session, context), _done_keyboard())
        return
    text, keyboard = _offer_screen(offer, index)
    await edit_card(query, text, keyboard)


def _done_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("🚀 Moeilijker doel kiezen"), BrowseSets())],
            [button(_("✅ Klaar"), Finished())],
        ]
    )


async def _my_goals_text(session: AsyncSession, context: PupilContext) -> str:
    assert context.period_id is not None
    choices = await chosen_goals(session, pupil_id=context.pupil_id, period_id=context.period_id)
    lines = [fill(_("Jouw doelen voor {period}:"), period=context.period_name or "")]
    for choice in choices:
        waiting = (
            " " + _("(wacht op je leerkracht)") if choice.status is PupilGoalStatus.PROPOSED else ""
        )
        lines.append(fill("• {goal}", goal=choice.goal.text) + waiting)
    if not choices:
        lines.append(_("Nog geen doelen gekozen."))
    return "\n".join(lines)


async def _sets_screen(
    session: AsyncSession, context: PupilContext
) -> tuple[str, InlineKeyboardMarkup]:
    rows = await PICKER.sets(session, school_id=context.school_id)
    rows.append([button(_("🔎 Zoeken op woord"), StartSearch())])
    rows.append([button(_("✅ Klaar"), Finished())])
    text = _("Welk doel wil je leren? Kies eerst een onderwerp, of zoek op een woord.")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def browse_sets(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """All goal sets of the school: the start of browsing (also for a harder goal)."""
    await query.answer()
    await state.set_state(ChoosingGoals.browse)
    context = await _context(session, person, settings, clock)
    text, keyboard = await _sets_screen(session, context)
    await edit_card(query, text, keyboard)


async def browse_line(
    query: CallbackQuery,
    callback_data: BrowseLine,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The goals of a line, a page at a time, marked ✅ chosen and ⏳ not ready yet."""
    context = await _context(session, person, settings, clock)
    choices = await goals_of_line(session, context=context, line_id=callback_data.line_id)
    if not choices:
        await refuse(query)
        return
    await query.answer()
    shown = paged(choices, callback_data.page, PAGE_SIZE)
    text, rows = _goal_list(choices[0].goal.line_name, shown.shown)
    navigation = arrows(shown, lambda page: BrowseLine(line_id=callback_data.line_id, page=page))
    if navigation:
        rows.append(navigation)
    rows.append(PICKER.back_to_set(choices))
    await edit_card(query, text, InlineKeyboardMarkup(inline_keyboard=rows))


def _goal_list(
    title: str, choices: Sequence[GoalChoice]
) -> tuple[str, list[list[InlineKeyboardButton]]]:
    lines = [bold(title), _("Tik op een doel om het te kiezen.")]
    rows = []
    for choice in choices:
        mark = "✅ " if choice.chosen else ("⏳ " if choice.blocked_by else "")
        line = fill("{mark}{code} {text}", mark=mark, code=choice.goal.code, text=choice.goal.text)
        if choice.blocked_by:
            line += " " + fill(_("(eerst nog: {codes})"), codes=", ".join(choice.blocked_by))
        lines.append(line)
        rows.append(
            [button(f"{mark}{shorten(choice.goal.text, 50)}", Propose(goal_id=choice.goal.id))]
        )
    if any(choice.blocked_by for choice in choices):
        lines.append(
            _("⏳ = daar hoort eerst een ander doel bij. Kiezen mag, je leerkracht kijkt mee.")
        )
    return "\n".join(lines), rows


async def start_search(query: CallbackQuery, state: FSMContext) -> None:
    """Asks for a word to search the goals with."""
    await query.answer()
    await state.set_state(ChoosingGoals.search)
    assert query.message is not None
    await query.message.answer(_("Typ een woord, bijvoorbeeld: breuken, samenwerken, kracht."))


async def search_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Goals matching the typed words."""
    assert message.text is not None
    context = await _context(session, person, settings, clock)
    found = await search_goals(session, context=context, words=message.text[:100])
    await state.set_state(ChoosingGoals.browse)
    if not found:
        await message.answer(
            _("Geen doel gevonden met dat woord. Probeer een ander woord."),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [button(_("🔎 Opnieuw zoeken"), StartSearch())],
                    [button(_("⬅️ Terug"), BrowseSets())],
                ]
            ),
        )
        return
    text, rows = _goal_list(_("Gevonden:"), found)
    rows.append([button(_("⬅️ Terug"), BrowseSets())])
    await message.answer(text, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def propose(
    query: CallbackQuery,
    callback_data: Propose,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The pupil proposes a goal; the mentor gets it with buttons to confirm or decline."""
    context = await _context(session, person, settings, clock)
    try:
        chosen = await propose_goal(session, context=context, goal_id=callback_data.goal_id)
    except GoalChoiceError:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    assert query.message is not None
    if chosen.status is not PupilGoalStatus.PROPOSED:
        await query.message.answer(
            fill(_("{goal} is al een van je doelen."), goal=chosen.goal.text)
        )
        return
    teachers = await teachers_to_notify(session, pupil_id=person.id)
    # The mentor is asked through the reminder queue: in their own language, and a pupil
    # proposing at nine in the evening does not wake the teacher (quiet hours wait).
    moment = clock.now()
    for teacher in teachers:
        await schedule_reminder(
            session,
            kind=ReminderKind.GOAL_PROPOSAL,
            person_id=teacher.person_id,
            due_at=moment,
            idempotency_key=(
                f"{ReminderKind.GOAL_PROPOSAL}:{chosen.pupil_goal_id}:"
                f"{teacher.person_id}:{moment.timestamp()}"
            ),
            payload={"pupil_goal_id": chosen.pupil_goal_id},
        )
    reply = fill(_("Je voorstel {goal} is naar je leerkracht gestuurd. 👍"), goal=chosen.goal.text)
    if not teachers:
        reply = fill(
            _("Je voorstel {goal} is bewaard. Je leerkracht ziet het zodra die de bot gebruikt."),
            goal=chosen.goal.text,
        )
    await query.message.answer(reply)


async def decide(
    query: CallbackQuery,
    callback_data: Decide,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """A teacher confirms or declines a pupil's proposal; the pupil hears it (queued, like
    the question: outside quiet hours, in the pupil's language)."""
    decided = await checked(
        query,
        await decide_proposal(
            session,
            teacher_id=person.id,
            pupil_goal_id=callback_data.pupil_goal_id,
            approve=callback_data.approve,
        ),
        proposal_gone(),
    )
    if decided is None:
        return
    pupil_id, goal = decided
    if query.message is not None and isinstance(query.message, Message):
        verdict = _("✅ Goedgekeurd") if callback_data.approve else _("✖️ Nu niet")
        await query.message.edit_text(fill("{goal}\n", goal=goal.text) + verdict)
    moment = clock.now()
    await schedule_reminder(
        session,
        kind=ReminderKind.GOAL_DECISION,
        person_id=pupil_id,
        due_at=moment,
        idempotency_key=f"{ReminderKind.GOAL_DECISION}:{callback_data.pupil_goal_id}",
        payload={"pupil_goal_id": callback_data.pupil_goal_id},
    )


# --- the messages between pupil and mentor, sent by the reminder dispatcher ------------------


async def compose_goal_proposal(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """The mentor's question about a proposed goal; nothing once it is decided already."""
    try:
        pupil_goal_id = int(reminder.payload["pupil_goal_id"])
    except (KeyError, TypeError, ValueError):
        return None
    proposal = await open_proposal(session, teacher_id=to.person_id, pupil_goal_id=pupil_goal_id)
    if proposal is None:
        return None
    pupil_name, goal = proposal
    text = fill(
        _("{pupil} wil graag aan dit doel werken:\n{goal}\nIs dat goed?"),
        pupil=pupil_name,
        goal=f"{goal.code} {goal.text}",
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(_("✅ Goed"), Decide(pupil_goal_id=pupil_goal_id, approve=True)),
                button(_("✖️ Nu niet"), Decide(pupil_goal_id=pupil_goal_id, approve=False)),
            ]
        ]
    )
    return [SendMessage(chat_id=to.telegram_user_id, text=text, reply_markup=keyboard)]


async def compose_goal_decision(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """The pupil hears what the mentor decided."""
    try:
        pupil_goal_id = int(reminder.payload["pupil_goal_id"])
    except (KeyError, TypeError, ValueError):
        return None
    decision = await decision_on(session, pupil_id=to.person_id, pupil_goal_id=pupil_goal_id)
    if decision is None:
        return None
    status, goal = decision
    if status is PupilGoalStatus.ACTIVE:
        text = fill(_("Je leerkracht vindt {goal} een goed doel. Succes! 💪"), goal=goal.text)
    elif status is PupilGoalStatus.REJECTED:
        text = fill(
            _("Je leerkracht wil {goal} nu nog niet als doel. Vraag gerust waarom."),
            goal=goal.text,
        )
    else:
        return None
    return [SendMessage(chat_id=to.telegram_user_id, text=text)]


def register_composers(registry: ComposerRegistry) -> None:
    """The mentor's question about a proposed goal, and the answer to the pupil."""
    registry.register(ReminderKind.GOAL_PROPOSAL, compose_goal_proposal)
    registry.register(ReminderKind.GOAL_DECISION, compose_goal_decision)


async def finished(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Shows the chosen goals and ends the choice."""
    await query.answer()
    await state.clear()
    context = await _context(session, person, settings, clock)
    if query.message is not None and isinstance(query.message, Message):
        await query.message.edit_text(await _my_goals_text(session, context))
        await query.message.answer(_("Kies iets uit het menu."), reply_markup=main_menu(viewer))


async def re_ask(message: Message) -> None:
    """Typing where buttons were expected while choosing goals."""
    await message.answer(_("Tik op een van de knoppen hierboven, of typ /annuleer om te stoppen."))


def build_router() -> Router:
    router = Router(name="goals")
    pupil = HasRole(Role.PUPIL)
    router.message.register(start, Command("doelen", "goals"), pupil)
    router.callback_query.register(offer_line, OfferLine.filter(), pupil)
    router.callback_query.register(offer_pick, OfferPick.filter(), pupil)
    router.callback_query.register(browse_sets, BrowseSets.filter(), pupil)
    router.callback_query.register(PICKER.set_opened, BrowseSet.filter(), pupil)
    router.callback_query.register(browse_line, BrowseLine.filter(), pupil)
    router.callback_query.register(start_search, StartSearch.filter(), pupil)
    router.callback_query.register(propose, Propose.filter(), pupil)
    router.callback_query.register(finished, Finished.filter(), pupil)
    router.callback_query.register(decide, Decide.filter(), HasRole(Role.TEACHER))
    router.message.register(
        search_typed, ChoosingGoals.search, F.text & ~F.text.startswith("/"), pupil
    )
    for state in (ChoosingGoals.offer, ChoosingGoals.browse):
        router.message.register(re_ask, state, ~F.text.startswith("/"))
    return router
