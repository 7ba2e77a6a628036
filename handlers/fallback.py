"""Anything no other handler took: a hint, never silence."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import main_menu
from config.settings import Settings
from conversations.onboarding import ask_for_code, use_code
from language.i18n import _
from storage.accounts import Viewer
from storage.invites import looks_like_code


async def unknown_text(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, viewer: Viewer
) -> None:
    """A newcomer who pastes their code without /start is helped; others see the menu."""
    assert message.text is not None
    if viewer.person is None:
        if looks_like_code(message.text):
            await use_code(message, state, session, settings, message.text)
        else:
            await ask_for_code(message, state)
        return
    await message.answer(
        # parents
        _("Dat begrijp ik niet. Kies iets uit het menu, of typ /help."),
        reply_markup=main_menu(viewer),
    )


async def unknown_message(message: Message, viewer: Viewer) -> None:
    """Stickers, polls, locations and the like."""
    await message.answer(
        # parents
        _("Daar kan ik niets mee. Kies iets uit het menu, of typ /help."),
        reply_markup=main_menu(viewer),
    )


async def stale_button(query: CallbackQuery) -> None:
    """A button of an old message, or callback data that was tampered with."""
    # parents
    await query.answer(_("Deze knop werkt niet meer. Kies opnieuw uit het menu."), show_alert=True)


async def tap_outside_private_chat(query: CallbackQuery) -> None:
    """A button on a message elsewhere: in a group, or sent inline (then the tap has no
    message, only an inline_message_id). Its spinner stops with a short word; nothing else
    happens there."""
    # parents
    await query.answer(_("Deze knop werkt niet meer. Kies opnieuw uit het menu."))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_text, F.text)
    router.message.register(unknown_message)
    router.callback_query.register(stale_button)
    return router


def build_outside_router() -> Router:
    """The last router of all: taps that no private chat's router could take."""
    router = Router(name="fallback_outside")
    router.callback_query.register(tap_outside_private_chat)
    return router
