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
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import DeleteMessage, SendMessage, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_WORK, button, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.media_intake import is_image_file, media_store, send_kept_file
from conversations.parent_summary import PARENT_AUDIENCE, announce_feedback
from language.i18n import _, current_locale, ngettext
from services.clock import Clock
from storage.accounts import Recipient, Viewer, recipient
from storage.evidence import (
    EvidenceRefusedError,
    ReviewItem,
    ReviewPage,
    decide_approval,
    give_teacher_feedback,
    review_counts,
    review_item,
    review_page,
    review_position,
)
from storage.models import Approval, EvidenceKind, Role
from storage.parents import parents_to_notify
from storage.reminders import DueReminder, previous_notice

log = logging.getLogger(__name__)

EVIDENCE_DIGEST = "evidence_digest"
MAX_LINE = 500
# A photo's caption holds 1024 characters: the card's parts are cut to stay well under it.
MAX_CAPTION_PART = 250
MAX_CARD = 1000
MAX_FEEDBACK_SHOWN = 4
# The first digest has no earlier one to count from.
FIRST_DIGEST_LOOKBACK = timedelta(days=1)

TYPED = F.text & ~F.text.startswith("/")


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


def _kind_icon(kind: EvidenceKind) -> str:
    return {EvidenceKind.PHOTO: "📷", EvidenceKind.VOICE: "🎤", EvidenceKind.VIDEO: "🎬"}.get(
        kind, "📎"
    )


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def _sharing_line(entry: ReviewItem) -> str:
    item, name = entry.item, _first_name(entry.pupil_name)
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
    lines = [
        bold(_("📥 Werk van je leerlingen"))
        + " · "
        + _("{n} van {total}").format(n=page.offset + 1, total=page.total)
    ]
    if page.pending:
        lines.append(
            ngettext(
                "⏳ {count} wacht op je akkoord voor de ouders",
                "⏳ {count} wachten op je akkoord voor de ouders",
                page.pending,
            ).format(count=page.pending)
        )
    day = item.created_at.astimezone(ZoneInfo(settings.timezone)).date()
    lines += [
        "",
        bold(fill("{name}", name=entry.pupil_name)),
        _kind_icon(item.kind) + " " + format_date(day, format="long", locale=current_locale()),
    ]
    goals = shorten(", ".join(text for _id, text in item.goals), MAX_CAPTION_PART)
    lines.append(fill(_("🎯 {goals}"), goals=goals) if goals else _("🎯 Geen doel"))
    if item.caption:
        lines.append(fill(_("💬 {caption}"), caption=shorten(item.caption, MAX_CAPTION_PART)))
    if item.outside_school:
        lines.append(_("🏠 Buiten school gemaakt"))
    lines.append(_sharing_line(entry))
    given: list[str] = []
    for feedback in item.feedback[-MAX_FEEDBACK_SHOWN:]:
        if feedback.top:
            given.append(fill(_("👍 Top: {text}"), text=shorten(feedback.top, 100)))
        if feedback.tip:
            given.append(fill(_("💡 Tip: {text}"), text=shorten(feedback.tip, 100)))
    # The newest tops & tips that fit in a photo's caption (the markup counts as well here,
    # so the real caption is shorter still).
    while given and len("\n".join(lines + given)) > MAX_CARD:
        given.pop(0)
    return "\n".join(lines + given)


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
        [
            button(_("👍 Top"), ReviewWrite(evidence_id=item.id, kind="top", offset=offset)),
            button(_("💡 Tip"), ReviewWrite(evidence_id=item.id, kind="tip", offset=offset)),
        ]
    )
    if item.files:
        label = {
            EvidenceKind.PHOTO: _("📷 Bekijk"),
            EvidenceKind.VOICE: _("🎤 Luister"),
            EvidenceKind.VIDEO: _("🎬 Bekijk"),
        }.get(item.kind, _("📎 Open"))
        rows.append([button(label, ReviewLook(evidence_id=item.id))])
    paging = []
    if offset > 0:
        paging.append(button(_("◀️ Vorige"), ReviewAt(offset=offset - 1)))
    if offset + 1 < page.total:
        paging.append(button(_("Volgende ▶️"), ReviewAt(offset=offset + 1)))
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


async def send_card(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    offset: int,
) -> None:
    """The card at `offset` (past the end: the last one) as a new message."""
    assert viewer.person is not None
    page = await review_page(session, teacher_id=viewer.person.id, offset=offset)
    if page.item is None:
        await bot.send_message(
            chat_id,
            _("Er is nog geen werk van je leerlingen. Zodra ze iets bewaren, zie je het hier. 📥"),
        )
        return
    text, keyboard = card_text(page, settings), card_keyboard(page)
    photo = await _thumbnail(page, settings)
    if photo is not None:
        await bot.send_photo(
            chat_id, BufferedInputFile(photo, "werk.jpg"), caption=text, reply_markup=keyboard
        )
        return
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def _replace_card(
    query: CallbackQuery,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    offset: int,
) -> None:
    assert isinstance(query.message, Message)
    await _remove(bot, query.message.chat.id, query.message.message_id)
    await send_card(bot, query.message.chat.id, session, viewer, settings, offset)


async def _remove(bot: Bot, chat_id: int, message_id: int) -> None:
    # Too old to delete (48 hours) or gone already: the new card comes below it anyway.
    with suppress(TelegramBadRequest):
        await bot.delete_message(chat_id, message_id)


# --- handlers ---------------------------------------------------------------------------------


async def open_review(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """/werk: the first card."""
    await state.clear()
    await send_card(bot, message.chat.id, session, viewer, settings, 0)


async def opened_from_digest(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """The digest's button: the digest stays, the first card comes below it."""
    assert isinstance(query.message, Message)
    await query.answer()
    await state.clear()
    await send_card(bot, query.message.chat.id, session, viewer, settings, 0)


async def page_turned(
    query: CallbackQuery,
    callback_data: ReviewAt,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    await query.answer()
    await _replace_card(query, bot, session, viewer, settings, callback_data.offset)


async def look(
    query: CallbackQuery,
    callback_data: ReviewLook,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
) -> None:
    """The item's files at full size (or the document, the voice message, the video)."""
    assert viewer.person is not None and isinstance(query.message, Message)
    entry = await review_item(
        session, teacher_id=viewer.person.id, evidence_id=callback_data.evidence_id
    )
    if entry is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    store = media_store(settings)
    try:
        contents = [
            (file, await asyncio.to_thread(store.path_of(file).read_bytes))
            for file in entry.item.files
        ]
    except OSError:
        await query.answer(_("Dit bestand kan ik niet meer vinden."), show_alert=True)
        return
    await query.answer()
    chat_id = query.message.chat.id
    if len(contents) > 1 and all(is_image_file(file) for file, _data in contents):
        await bot.send_media_group(
            chat_id,
            [
                InputMediaPhoto(media=BufferedInputFile(data, f"werk-{index + 1}.jpg"))
                for index, (_file, data) in enumerate(contents[:10])
            ],
        )
        return
    for file, data in contents:
        await send_kept_file(bot, chat_id, file, data)


async def decided(
    query: CallbackQuery,
    callback_data: ReviewDecide,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """✅ Mag naar ouders / 🔒 Alleen op school. The card then shows what waits next."""
    assert viewer.person is not None
    entry = await review_item(
        session, teacher_id=viewer.person.id, evidence_id=callback_data.evidence_id
    )
    if entry is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    now = clock.now() if clock is not None else datetime.now(UTC)
    try:
        await decide_approval(
            session,
            teacher_id=viewer.person.id,
            evidence_id=entry.item.id,
            approve=callback_data.approve,
            now=now,
        )
    except EvidenceRefusedError:
        # Another teacher decided first, or the pupil stopped sharing it.
        await query.answer(_("Hierover is al beslist."), show_alert=True)
        await _replace_card(query, bot, session, viewer, settings, callback_data.offset)
        return
    await query.answer(
        _("De ouders kunnen het nu zien.")
        if callback_data.approve
        else _("Het blijft op school; de ouders zien het niet.")
    )
    await _replace_card(query, bot, session, viewer, settings, callback_data.offset)


async def write_started(
    query: CallbackQuery,
    callback_data: ReviewWrite,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
) -> None:
    """👍 Top / 💡 Tip: asks for one line."""
    assert viewer.person is not None and isinstance(query.message, Message)
    entry = await review_item(
        session, teacher_id=viewer.person.id, evidence_id=callback_data.evidence_id
    )
    if entry is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    kind = "tip" if callback_data.kind == "tip" else "top"
    await state.set_state(ReviewFeedback.writing)
    await state.set_data(
        {
            "evidence_id": entry.item.id,
            "kind": kind,
            "offset": callback_data.offset,
            "card": query.message.message_id,
        }
    )
    name = _first_name(entry.pupil_name)
    prompt = (
        fill(_("Typ je top voor {name}: wat ging goed? Eén regel is genoeg."), name=name)
        if kind == "top"
        else fill(
            _("Typ je tip voor {name}: wat kan een volgende keer beter? Eén regel is genoeg."),
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
        feedback = await give_teacher_feedback(
            session,
            teacher_id=viewer.person.id,
            evidence_id=int(data["evidence_id"]),
            top=None if is_tip else text,
            tip=text if is_tip else None,
        )
    except (EvidenceRefusedError, KeyError, ValueError):
        await state.clear()
        await message.answer(_("Die keuze ken ik niet."))
        return
    await state.clear()
    moment = clock.now() if clock is not None else datetime.now(UTC)
    pupil = await recipient(session, person_id=feedback.pupil_id)
    # The notice parents' tops & tips use too: one wording for the pupil.
    await announce_feedback(
        session,
        feedback_id=feedback.id,
        person_ids=[pupil.person_id] if pupil is not None else [],
        moment=moment,
    )
    # Parents who asked for feedback notices hear of it too; whether they may (the work
    # shared and approved, the notices still wanted) is decided when it is sent.
    parents = await parents_to_notify(session, pupil_id=feedback.pupil_id)
    await announce_feedback(
        session,
        feedback_id=feedback.id,
        person_ids=[parent.person_id for parent in parents],
        moment=moment,
        audience=PARENT_AUDIENCE,
    )
    evidence_id = feedback.evidence_id or 0
    entry = await review_item(session, teacher_id=viewer.person.id, evidence_id=evidence_id)
    name = _first_name(entry.pupil_name) if entry else ""
    await message.answer(
        fill(_("Bewaard ✅ {name} krijgt je tip te zien."), name=name)
        if is_tip
        else fill(_("Bewaard ✅ {name} krijgt je top te zien."), name=name)
    )
    # The card, now with the feedback, below the typed line; the old one goes.
    if data.get("card"):
        await _remove(bot, message.chat.id, int(data["card"]))
    offset = await review_position(session, teacher_id=viewer.person.id, evidence_id=evidence_id)
    await send_card(bot, message.chat.id, session, viewer, settings, offset)


async def not_text(message: Message) -> None:
    """A photo or sticker while the words of the top or tip are expected."""
    await message.answer(_("Typ je top of tip als tekst, of /annuleer om te stoppen."))


# --- the daily digest -----------------------------------------------------------------------


async def compose_evidence_digest(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> Sequence[TelegramMethod[Any]] | None:
    """How much new work came in since the previous digest, and how much waits for
    approval; nothing when both are zero. Replaces the previous digest's message."""
    previous = await previous_notice(
        session, person_id=reminder.person_id, kind=reminder.kind, before_id=reminder.id
    )
    since = previous.sent_at if previous is not None else now - FIRST_DIGEST_LOOKBACK
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


COMPOSERS = {EVIDENCE_DIGEST: compose_evidence_digest}


def build_router() -> Router:
    router = Router(name="evidence_review")
    teacher = HasRole(Role.TEACHER)
    router.message.register(open_review, Command("werk"), teacher)
    router.message.register(open_review, F.text == BUTTON_WORK, teacher)
    router.callback_query.register(opened_from_digest, OpenReview.filter(), teacher)
    router.callback_query.register(page_turned, ReviewAt.filter(), teacher)
    router.callback_query.register(look, ReviewLook.filter(), teacher)
    router.callback_query.register(decided, ReviewDecide.filter(), teacher)
    router.callback_query.register(write_started, ReviewWrite.filter(), teacher)
    router.message.register(feedback_typed, ReviewFeedback.writing, TYPED, teacher)
    # Commands are left to their own handlers (/annuleer, /help ...).
    router.message.register(not_text, ReviewFeedback.writing, ~F.text.startswith("/"), teacher)
    return router
