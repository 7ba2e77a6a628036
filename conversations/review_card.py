"""The teacher's paged review card, shared by `/werk` (the pupils' work) and `/plannen` (the
pupils' own plans): one pupil's item per card, ◀️ / ▶️ between them, 👍 Top / 💡 Tip under it.

A top or a tip is one typed line. While it is typed, the FSM data holds what it is about, the
kind and the card's message id; once saved, the pupil hears of it through the feedback notice
(the same words as for a parent's top or tip), and the card comes again, with it, below the
typed line while the old card goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n.lazy_proxy import LazyProxy
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button
from chat_ui.texts import fill
from config.settings import Settings
from conversations.card import checked, too_long
from conversations.parent_feedback import announce_feedback
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef, recipient

# One line: long enough for a real top or tip, short enough for the pupil's notice.
MAX_LINE = 500
MAX_FEEDBACK_SHOWN = 4


@dataclass(frozen=True)
class Card:
    """One card: text (a photo's caption when there is a photo) and its buttons."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None
    photo: bytes | None = None


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def position(offset: int, total: int) -> str:
    """ "3 van 12": where the card is among all."""
    return _("{n} van {total}").format(n=offset + 1, total=total)


def feedback_row(write: Callable[[str], CallbackData]) -> list[InlineKeyboardButton]:
    """👍 Top / 💡 Tip; `write` makes the button's data for "top" or "tip"."""
    return [button(_("👍 Top"), write("top")), button(_("💡 Tip"), write("tip"))]


def paging_row(
    offset: int, total: int, at: Callable[[int], CallbackData]
) -> list[InlineKeyboardButton]:
    """◀️ Vorige / Volgende ▶️ where there is a card before or after this one."""
    paging = []
    if offset > 0:
        paging.append(button(_("◀️ Vorige"), at(offset - 1)))
    if offset + 1 < total:
        paging.append(button(_("Volgende ▶️"), at(offset + 1)))
    return paging


def with_newest(lines: list[str], given: list[str], limit: int, *, at_least: int = 0) -> str:
    """The card's lines with the newest tops & tips that keep it within `limit` characters
    (the markup counts as well, so what Telegram counts is shorter still); never fewer than
    `at_least` of them."""
    given = list(given)
    while len(given) > at_least and len("\n".join(lines + given)) > limit:
        given.pop(0)
    return "\n".join(lines + given)


async def send_card(bot: Bot, chat_id: int, card: Card) -> None:
    """The card as a new message: a photo with its caption, or text."""
    if card.photo is not None:
        await bot.send_photo(
            chat_id,
            BufferedInputFile(card.photo, "werk.jpg"),
            caption=card.text,
            reply_markup=card.keyboard,
        )
        return
    await bot.send_message(chat_id, card.text, reply_markup=card.keyboard)


async def remove(bot: Bot, chat_id: int, message_id: int) -> None:
    # Too old to delete (48 hours) or gone already: the new card comes below it anyway.
    with suppress(TelegramBadRequest):
        await bot.delete_message(chat_id, message_id)


async def replace_card(query: CallbackQuery, bot: Bot, card: Card) -> None:
    """The card the button was on goes, the new one comes: a photo card cannot become a text
    card by editing."""
    assert isinstance(query.message, Message)
    await remove(bot, query.message.chat.id, query.message.message_id)
    await send_card(bot, query.message.chat.id, card)


async def edit_in_place(query: CallbackQuery, bot: Bot, card: Card) -> None:
    """A text card turned to another page in place."""
    assert isinstance(query.message, Message) and card.photo is None
    try:
        await query.message.edit_text(card.text, reply_markup=card.keyboard)
    except TelegramBadRequest as error:
        # Tapped twice: the card already shows this page.
        if "not modified" in str(error):
            return
        # Too old to edit, or not a text message: the card comes below it instead.
        await bot.send_message(query.message.chat.id, card.text, reply_markup=card.keyboard)


class AtPage(Protocol):
    """A ◀️ / ▶️ button's data: the page to show."""

    offset: int


class WriteAbout(Protocol):
    """A 👍 Top / 💡 Tip button's data: the item's id (its own field) and the kind."""

    kind: str  # "top" or "tip"


@dataclass(frozen=True)
class Prompts:
    """What the teacher is asked to type, with `{name}` for the pupil's first name (lazy
    texts: each is read in the teacher's language when asked)."""

    top: LazyProxy
    tip: LazyProxy


@dataclass(frozen=True)
class Picked:
    """The item a 👍 Top / 💡 Tip button names, as storage found it for the teacher."""

    pupil_name: str
    # What waits in the dialogue's data while the line is typed: the item's id, the page.
    about: dict[str, int]


@dataclass(frozen=True)
class Typed:
    """A top or a tip as typed (the other one None), about the item kept in the dialogue's
    data while it was typed."""

    about: dict[str, Any]
    top: str | None
    tip: str | None
    moment: datetime


@dataclass(frozen=True)
class Given:
    """A top or tip saved: who it is for, and the page its item is on now."""

    feedback_id: int
    pupil_id: int
    pupil_name: str
    offset: int


@dataclass(frozen=True)
class ReviewCards:
    """One review, as the handlers of its card: `card_at` makes the card at a page (past
    the end: the last one; or why there is none), `turn` shows another page on the card a
    button was on. A top or a tip is typed in the `writing` state after one of `prompts`;
    `pick` finds the item a button names (None: not the teacher's to see), `give` saves the
    line about the item in the data (None: not any more) and tells anyone but the pupil."""

    card_at: Callable[[AsyncSession, PersonRef, Settings, int], Awaitable[Card]]
    turn: Callable[[CallbackQuery, Bot, Card], Awaitable[None]]
    writing: State
    prompts: Prompts
    pick: Callable[[AsyncSession, PersonRef, Any], Awaitable[Picked | None]]
    give: Callable[[AsyncSession, PersonRef, Typed], Awaitable[Given | None]]

    async def open(
        self,
        message: Message,
        bot: Bot,
        state: FSMContext,
        session: AsyncSession,
        person: PersonRef,
        settings: Settings,
    ) -> None:
        """The command (or menu button): the first card."""
        await state.clear()
        await send_card(bot, message.chat.id, await self.card_at(session, person, settings, 0))

    async def page_turned(
        self,
        query: CallbackQuery,
        callback_data: AtPage,
        bot: Bot,
        session: AsyncSession,
        person: PersonRef,
        settings: Settings,
    ) -> None:
        """◀️ / ▶️: the card at that page."""
        await query.answer()
        card = await self.card_at(session, person, settings, callback_data.offset)
        await self.turn(query, bot, card)

    async def write_started(
        self,
        query: CallbackQuery,
        callback_data: WriteAbout,
        state: FSMContext,
        session: AsyncSession,
        person: PersonRef,
    ) -> None:
        """👍 Top / 💡 Tip: asks for one line."""
        picked = await checked(query, await self.pick(session, person, callback_data))
        if picked is None:
            return
        assert isinstance(query.message, Message)
        kind = "tip" if callback_data.kind == "tip" else "top"
        await state.set_state(self.writing)
        await state.set_data({**picked.about, "kind": kind, "card": query.message.message_id})
        template = self.prompts.tip if kind == "tip" else self.prompts.top
        await query.message.answer(fill(str(template), name=first_name(picked.pupil_name)))

    async def feedback_typed(
        self,
        message: Message,
        bot: Bot,
        state: FSMContext,
        session: AsyncSession,
        person: PersonRef,
        settings: Settings,
        clock: Clock,
    ) -> None:
        """Saves the top or tip, tells the pupil (through the reminder dispatcher, in their
        own language, outside quiet hours) and shows the card again with it."""
        assert message.text is not None
        text = " ".join(message.text.split())
        if not text:
            await not_text(message)
            return
        if len(text) > MAX_LINE:
            await too_long(message, MAX_LINE)
            return
        data = await state.get_data()
        is_tip = data.get("kind") == "tip"
        moment = clock.now()
        typed = Typed(data, None if is_tip else text, text if is_tip else None, moment)
        given = await self.give(session, person, typed)
        await state.clear()
        if given is None:
            # The pupil left the teacher's groups, or the item went, while they typed.
            await message.answer(_("Die keuze ken ik niet."))
            return
        # The notice parents' tops & tips use too: one wording for the pupil.
        pupil = await recipient(session, person_id=given.pupil_id)
        await announce_feedback(
            session,
            feedback_id=given.feedback_id,
            person_ids=[pupil.person_id] if pupil is not None else [],
            moment=moment,
        )
        name = first_name(given.pupil_name)
        await message.answer(
            fill(_("Bewaard ✅ {name} krijgt je tip te zien."), name=name)
            if is_tip
            else fill(_("Bewaard ✅ {name} krijgt je top te zien."), name=name)
        )
        # The card, now with the feedback, below the typed line; the old one goes.
        if data.get("card"):
            await remove(bot, message.chat.id, int(data["card"]))
        card = await self.card_at(session, person, settings, given.offset)
        await send_card(bot, message.chat.id, card)


async def not_text(message: Message) -> None:
    """A photo or sticker while the words of the top or tip are expected."""
    await message.answer(_("Typ je top of tip als tekst, of /annuleer om te stoppen."))
