"""The teacher's look at their pupils' work (`/werk`): tops & tips, and the approval queue.

One card at a time, work that waits for approval first, then the newest. The card shows the
thumbnail (a photo message) when the work has one, else it is a text card; turning a page
replaces the card (delete and send: a photo card cannot become a text card by editing), so
the chat holds one card. A top or a tip is one typed line; the pupil hears about it through
the same feedback notice parents' tops & tips use. Where the school asks for it
(`School.shared_work_needs_approval`), shared work waits here until a teacher lets it
through to parents or keeps it at school: other children may be in a photo.

```mermaid
stateDiagram-v2
    [*] --> card: /werk, or the button under the daily digest
    card --> card: ◀️ / ▶️, ✅ Mag naar ouders, 🔒 Alleen op school, 📷 Bekijk
    card --> writing: 👍 Top / 💡 Tip
    writing --> card: one line of text (saved; the pupil is told)
    writing --> writing: not text
    writing --> [*]: /annuleer
```

Every id in a button is checked again in storage (`storage.evidence.review_item` and
friends): a teacher acts only on work of pupils of their own current groups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import DeleteMessage, SendMessage, TelegramMethod
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_WORK, button, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import TYPED, refuse
from conversations.media_intake import media_store
from conversations.parent_feedback import PARENT_AUDIENCE, announce_feedback
from conversations.review_card import (
    MAX_FEEDBACK_SHOWN,
    Card,
    Given,
    Picked,
    Prompts,
    ReviewCards,
    Typed,
    feedback_row,
    first_name,
    not_text,
    paging_row,
    position,
    replace_card,
    send_card,
    with_newest,
)
from conversations.work_card import FilesButton, about_lines, day_line, files_label
from language.i18n import _, __, ngettext
from scheduler.composers import ComposerContext, ComposerRegistry
from services.clock import Clock
from storage.accounts import PersonRef, Recipient
from storage.evidence import (
    EvidenceRefusedError,
    EvidenceView,
    ReviewItem,
    ReviewPage,
    decide_approval,
    give_teacher_feedback,
    review_counts,
    review_item,
    review_page,
    review_position,
)
from storage.models import Approval, Role
from storage.parents import parents_to_notify
from storage.reminders import DueReminder, ReminderKind, previous_notice

log = logging.getLogger(__name__)

# A photo's caption holds 1024 characters: the card's parts are cut to stay well under it.
MAX_CAPTION_PART = 250
MAX_CARD = 1000
# The first digest has no earlier one to count from.
FIRST_DIGEST_LOOKBACK = timedelta(days=1)


class ReviewAt(CallbackData, prefix="rvp"):
    """Show the card at this page."""

    offset: int


class OpenReview(CallbackData, prefix="rvo"):
    """The digest's button: /werk from the start."""


class ReviewLook(CallbackData, prefix="rvl"):
    evidence_id: int


class ReviewWrite(CallbackData, prefix="rvw"):
    evidence_id: int
    kind: str  # "top" or "tip"
    offset: int


class ReviewDecide(CallbackData, prefix="rvd"):
    evidence_id: int
    approve: bool
    offset: int


class ReviewFeedback(StatesGroup):
    writing = State()


def _sharing_line(entry: ReviewItem) -> str:
    item, name = entry.item, first_name(entry.pupil_name)
    if not item.shared_with_parents:
        return _("🔒 Alleen voor school")
    if item.approval is Approval.PENDING:
        return fill(_("⏳ {name} wil dit delen met de ouders. Mag dat?"), name=name)
    if item.approval is Approval.PRIVATE:
        return fill(_("🔒 {name} wilde dit delen; het blijft op school."), name=name)
    return _("👨‍👩‍👧 Gedeeld met ouders")


def card_text(page: ReviewPage, settings: Settings) -> str:
    """The card of one item, as HTML short enough for a photo's caption."""
    assert page.item is not None
    entry = page.item
    item = entry.item
    lines = [bold(_("📥 Werk van je leerlingen")) + " · " + position(page.offset, page.total)]
    if page.pending:
        lines.append(
            ngettext(
                "⏳ {count} wacht op je akkoord voor de ouders",
                "⏳ {count} wachten op je akkoord voor de ouders",
                page.pending,
            ).format(count=page.pending)
        )
    lines += ["", bold(fill("{name}", name=entry.pupil_name)), day_line(item, settings.timezone)]
    lines += about_lines(item, MAX_CAPTION_PART)
    lines.append(_sharing_line(entry))
    given: list[str] = []
    for feedback in item.feedback[-MAX_FEEDBACK_SHOWN:]:
        if feedback.top:
            given.append(fill(_("👍 Top: {text}"), text=shorten(feedback.top, 100)))
        if feedback.tip:
            given.append(fill(_("💡 Tip: {text}"), text=shorten(feedback.tip, 100)))
    return with_newest(lines, given, MAX_CARD)


def card_keyboard(page: ReviewPage) -> InlineKeyboardMarkup:
    assert page.item is not None
    item = page.item.item
    offset = page.offset
    rows: list[list[InlineKeyboardButton]] = []
    if item.shared_with_parents and item.approval is Approval.PENDING:
        rows.append(
            [
                button(
                    _("✅ Mag naar ouders"),
                    ReviewDecide(evidence_id=item.id, approve=True, offset=offset),
                ),
                button(
                    _("🔒 Alleen op school"),
                    ReviewDecide(evidence_id=item.id, approve=False, offset=offset),
                ),
            ]
        )
    rows.append(
        feedback_row(lambda kind: ReviewWrite(evidence_id=item.id, kind=kind, offset=offset))
    )
    if item.files:
        rows.append([button(files_label(item.kind), ReviewLook(evidence_id=item.id))])
    paging = paging_row(offset, page.total, lambda at: ReviewAt(offset=at))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _thumbnail(page: ReviewPage, settings: Settings) -> bytes | None:
    assert page.item is not None
    ref = page.item.thumbnail
    if ref is None:
        return None
    try:
        return await asyncio.to_thread(media_store(settings).path_of(ref).read_bytes)
    except OSError:
        # A file the sweep removed: the card is still useful as text.
        log.warning("thumbnail of evidence %s is missing", page.item.item.id)
        return None


async def card(session: AsyncSession, teacher: PersonRef, settings: Settings, offset: int) -> Card:
    """The card at `offset` (past the end: the last one): the thumbnail, when the work has
    one, with the text as its caption."""
    page = await review_page(session, teacher_id=teacher.id, offset=offset)
    if page.item is None:
        return Card(
            _("Er is nog geen werk van je leerlingen. Zodra ze iets bewaren, zie je het hier. 📥")
        )
    photo = await _thumbnail(page, settings)
    return Card(card_text(page, settings), card_keyboard(page), photo)


# --- handlers ---------------------------------------------------------------------------------


async def _pick(session: AsyncSession, teacher: PersonRef, button: ReviewWrite) -> Picked | None:
    entry = await review_item(session, teacher_id=teacher.id, evidence_id=button.evidence_id)
    if entry is None:
        return None
    return Picked(entry.pupil_name, {"evidence_id": entry.item.id, "offset": button.offset})


async def _give(session: AsyncSession, teacher: PersonRef, typed: Typed) -> Given | None:
    try:
        feedback = await give_teacher_feedback(
            session,
            teacher_id=teacher.id,
            evidence_id=int(typed.about["evidence_id"]),
            top=typed.top,
            tip=typed.tip,
        )
    except (EvidenceRefusedError, KeyError, ValueError):
        return None
    # Parents who asked for feedback notices hear of it too; whether they may (the work
    # shared and approved, the notices still wanted) is decided when it is sent.
    parents = await parents_to_notify(session, pupil_id=feedback.pupil_id)
    await announce_feedback(
        session,
        feedback_id=feedback.id,
        person_ids=[parent.person_id for parent in parents],
        moment=typed.moment,
        audience=PARENT_AUDIENCE,
    )
    evidence_id = feedback.evidence_id or 0
    entry = await review_item(session, teacher_id=teacher.id, evidence_id=evidence_id)
    offset = await review_position(session, teacher_id=teacher.id, evidence_id=evidence_id)
    return Given(feedback.id, feedback.pupil_id, entry.pupil_name if entry else "", offset)


# /werk and ◀️ / ▶️: a photo card cannot become a text card, so a page replaces the card.
PROMPTS = Prompts(
    top=__("Typ je top voor {name}: wat ging goed? Eén regel is genoeg."),
    tip=__("Typ je tip voor {name}: wat kan een volgende keer beter? Eén regel is genoeg."),
)
REVIEW = ReviewCards(card, replace_card, ReviewFeedback.writing, PROMPTS, _pick, _give)


async def opened_from_digest(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """The digest's button: the digest stays, the first card comes below it."""
    assert isinstance(query.message, Message)
    await query.answer()
    await state.clear()
    await send_card(bot, query.message.chat.id, await card(session, person, settings, 0))


async def _pupils_work(
    session: AsyncSession, teacher: PersonRef, evidence_id: int
) -> EvidenceView | None:
    entry = await review_item(session, teacher_id=teacher.id, evidence_id=evidence_id)
    return entry.item if entry is not None else None


LOOK = FilesButton(_pupils_work)


async def decided(
    query: CallbackQuery,
    callback_data: ReviewDecide,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """✅ Mag naar ouders / 🔒 Alleen op school. The card then shows what waits next."""
    entry = await review_item(session, teacher_id=person.id, evidence_id=callback_data.evidence_id)
    if entry is None:
        await refuse(query)
        return
    try:
        await decide_approval(
            session,
            teacher_id=person.id,
            evidence_id=entry.item.id,
            approve=callback_data.approve,
            now=clock.now(),
        )
    except EvidenceRefusedError:
        # Another teacher decided first, or the pupil stopped sharing it.
        await query.answer(_("Hierover is al beslist."), show_alert=True)
    else:
        await query.answer(
            _("De ouders kunnen het nu zien.")
            if callback_data.approve
            else _("Het blijft op school; de ouders zien het niet.")
        )
    await replace_card(query, bot, await card(session, person, settings, callback_data.offset))


# --- the daily digest -----------------------------------------------------------------------


async def compose_evidence_digest(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Sequence[TelegramMethod[Any]] | None:
    """How much new work came in since the previous digest, and how much waits for
    approval; nothing when both are zero. Replaces the previous digest's message."""
    previous = await previous_notice(
        session, person_id=reminder.person_id, kind=reminder.kind, before_id=reminder.id
    )
    since = previous.sent_at if previous is not None else context.now - FIRST_DIGEST_LOOKBACK
    counts = await review_counts(session, teacher_id=reminder.person_id, since=since)
    if not counts.new and not counts.pending:
        return None
    lines = [fill(_("Hoi {name}! 📥"), name=to.name)]
    if counts.new:
        lines.append(
            ngettext(
                "Je leerlingen bewaarden {count} nieuw stuk werk.",
                "Je leerlingen bewaarden {count} nieuwe stukken werk.",
                counts.new,
            ).format(count=counts.new)
        )
    if counts.pending:
        lines.append(
            ngettext(
                "⏳ {count} gedeeld stuk wacht op je akkoord voor de ouders.",
                "⏳ {count} gedeelde stukken wachten op je akkoord voor de ouders.",
                counts.pending,
            ).format(count=counts.pending)
        )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[button(_("📥 Bekijk het werk"), OpenReview())]]
    )
    methods: list[TelegramMethod[Any]] = [
        SendMessage(chat_id=to.telegram_user_id, text="\n".join(lines), reply_markup=keyboard)
    ]
    if previous is not None:
        # Yesterday's numbers are out of date: today's digest replaces that message.
        methods.append(
            DeleteMessage(chat_id=to.telegram_user_id, message_id=previous.telegram_message_id)
        )
    return methods


def register_composers(registry: ComposerRegistry) -> None:
    """The teacher's daily digest of new and waiting work."""
    registry.register(ReminderKind.EVIDENCE_DIGEST, compose_evidence_digest)


def build_router() -> Router:
    router = Router(name="evidence_review")
    teacher = HasRole(Role.TEACHER)
    router.message.register(REVIEW.open, Command("werk"), teacher)
    router.message.register(REVIEW.open, F.text == BUTTON_WORK, teacher)
    router.callback_query.register(opened_from_digest, OpenReview.filter(), teacher)
    router.callback_query.register(REVIEW.page_turned, ReviewAt.filter(), teacher)
    router.callback_query.register(LOOK.tapped, ReviewLook.filter(), teacher)
    router.callback_query.register(decided, ReviewDecide.filter(), teacher)
    router.callback_query.register(REVIEW.write_started, ReviewWrite.filter(), teacher)
    router.message.register(REVIEW.feedback_typed, ReviewFeedback.writing, TYPED, teacher)
    # Commands are left to their own handlers (/annuleer, /help ...).
    router.message.register(not_text, ReviewFeedback.writing, ~F.text.startswith("/"), teacher)
    return router
