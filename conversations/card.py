"""One card per dialogue: each step's question on one message that button steps edit in place.

A dialogue describes its steps once: the FSM state of each step, and one function that gives
a step's text and buttons from the dialogue's data (so asking again shows exactly the same).
Showing a step, asking it again after an unexpected answer, and keeping an answer (typed,
spoken or photographed) before asking the next step are the same in every dialogue, so they
live here. The card's message id is kept in the FSM data (`card`), so after a restart the
dialogue edits the same message.

Also here: the short answers every dialogue gives the same way (too long, a choice that is
not one's own), and a long list shown a page at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiogram import Bot, F
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from chat_ui.keyboards import button
from config.settings import Settings
from conversations.media_intake import keep_photo, keep_voice, kept_or_explained
from language.i18n import _

Question = tuple[str, InlineKeyboardMarkup | None]
# Typed text that is not a command: "/annuleer" in the middle of a step is a command.
TYPED = F.text & ~F.text.startswith("/")
Found = TypeVar("Found")
Item = TypeVar("Item")


@dataclass(frozen=True)
class CardDialogue:
    """The steps of one dialogue and how each is asked."""

    states: Mapping[str, State]
    question: Callable[[str, dict[str, Any]], Question]
    # The steps whose question is the card, edited in place by the next button step; None:
    # every step. A question outside them (one answered by typing) is a message of its own.
    card_steps: Collection[str] | None = None

    def _on_card(self, step: str) -> bool:
        return self.card_steps is None or step in self.card_steps

    def step_of(self, current: str | None, default: str | None = None) -> str:
        """The step of an FSM state (`default` for a state of no step here)."""
        for name, value in self.states.items():
            if value.state == current:
                return name
        if default is None:
            raise KeyError(current)
        return default

    async def show(
        self, bot: Bot, chat_id: int, state: FSMContext, step: str, *, new_message: bool = False
    ) -> None:
        """Asks `step`: on the card when there is one (unless `new_message`), else below."""
        data = await state.get_data()
        text, keyboard = self.question(step, data)
        await state.set_state(self.states[step])
        card = data.get("card")
        if card and not new_message and self._on_card(step):
            await bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=card, reply_markup=keyboard
            )
            return
        sent = await bot.send_message(chat_id, text, reply_markup=keyboard)
        await state.update_data(card=sent.message_id if self._on_card(step) else None)

    async def answered(
        self, message: Message, bot: Bot, state: FSMContext, next_step: str, **answers: Any
    ) -> None:
        """Keeps the answers in the dialogue's data; the next step comes below the message."""
        await state.update_data(**answers)
        await self.show(bot, message.chat.id, state, next_step, new_message=True)

    async def ask_again(self, message: Message, bot: Bot, state: FSMContext, step: str) -> None:
        """Text (or anything) where a button was expected: a gentle word, and the buttons
        again below it."""
        await message.answer(_("Tik op een van de knoppen hieronder. 👇"))
        await self.show(bot, message.chat.id, state, step, new_message=True)

    def typed_answer(
        self, next_step: str, key: str, limit: int
    ) -> Callable[[Message, Bot, FSMContext], Awaitable[None]]:
        """The handler of a step answered by typing: the text, trimmed, kept in the data as
        `key` (over `limit` characters: nothing kept, the user asked for less)."""

        async def typed(message: Message, bot: Bot, state: FSMContext) -> None:
            text = await typed_within(message, limit)
            if text is not None:
                await self.answered(message, bot, state, next_step, **{key: text})

        return typed

    def spoken_answer(
        self, next_step: str
    ) -> Callable[[Message, Bot, FSMContext, Settings], Awaitable[None]]:
        """The handler of a voice message as the answer: the file is stored now (its row is
        written when the dialogue saves), kept in the data as `voice`."""

        async def spoken(message: Message, bot: Bot, state: FSMContext, settings: Settings) -> None:
            assert message.voice is not None
            stored = await kept_or_explained(message, keep_voice(bot, message.voice, settings))
            if stored is not None:
                await self.answered(message, bot, state, next_step, voice=stored)

        return spoken

    async def photo_answered(
        self,
        message: Message,
        bot: Bot,
        state: FSMContext,
        settings: Settings,
        next_step: str,
        *,
        several: bool = False,
        **answers: Any,
    ) -> None:
        """A photo as the answer: cleaned and stored now, kept in the data as `photo` (or
        added to `photos` when the step takes `several`), with any other `answers`."""
        assert message.photo is not None
        stored = await kept_or_explained(message, keep_photo(bot, message.photo, settings))
        if stored is None:
            return
        if several:
            answers["photos"] = [*(await state.get_data()).get("photos", []), stored]
        else:
            answers["photo"] = stored
        await self.answered(message, bot, state, next_step, **answers)


async def too_long(message: Message, limit: int) -> None:
    """A typed answer over its limit: nothing is kept, the user is asked for less."""
    await message.answer(
        _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(limit=limit)
    )


async def typed_within(message: Message, limit: int) -> str | None:
    """The typed answer, trimmed; None (the user asked for less) when it is over `limit`."""
    assert message.text is not None
    if len(message.text) > limit:
        await too_long(message, limit)
        return None
    return message.text.strip()


def toggled(picked: Sequence[int], item_id: int) -> list[int]:
    """The ticked ids with `item_id` ticked, or unticked when it was."""
    if item_id in picked:
        return [other for other in picked if other != item_id]
    return [*picked, item_id]


async def one_offered(
    query: CallbackQuery, options: Sequence[Mapping[str, Any]], item_id: int
) -> bool:
    """Whether the tapped id is one of the `options` (each with an "id") the card offered;
    one that is not (forged, or of an older card) is kindly refused. Answers the tap."""
    offered = item_id in {option["id"] for option in options}
    return await checked(query, item_id if offered else None) is not None


async def refuse(query: CallbackQuery, text: str | None = None) -> None:
    """A button whose ids the policy does not allow (forged, stale, or someone else's)."""
    await query.answer(text or _("Die keuze ken ik niet."), show_alert=True)


async def checked(
    query: CallbackQuery, found: Found | None, refusal: str | None = None
) -> Found | None:
    """What a button names, as storage found it for this person; None (the user kindly told,
    `refusal` or "Die keuze ken ik niet.") when it found nothing. Answers the tap either way."""
    if found is None:
        await refuse(query, refusal)
        return None
    await query.answer()
    return found


@dataclass(frozen=True)
class Paged(Generic[Item]):
    """One page of a list that is too long for one card."""

    shown: Sequence[Item]
    page: int  # from 0; a page past either end is the nearest real one
    pages: int


def paged(items: Sequence[Item], page: int, size: int) -> Paged[Item]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 0), pages - 1)
    return Paged(items[page * size : (page + 1) * size], page, pages)


def arrows(shown: Paged[Any], turn: Callable[[int], CallbackData]) -> list[InlineKeyboardButton]:
    """⬅️ / ➡️ to the page before and after, where there is one; `turn` makes a page's data."""
    navigation = []
    if shown.page > 0:
        navigation.append(button("⬅️", turn(shown.page - 1)))
    if shown.page + 1 < shown.pages:
        navigation.append(button("➡️", turn(shown.page + 1)))
    return navigation
