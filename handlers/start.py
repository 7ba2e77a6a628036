"""/start: the entry for newcomers (with or without a deep-linked code) and returning users."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import main_menu
from config.settings import Settings
from conversations.onboarding import ask_for_code, use_code, welcome_text
from storage.accounts import Viewer


async def start(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    viewer: Viewer,
) -> None:
    """Uses a deep-linked code, welcomes back a linked user, or asks a newcomer for the code."""
    if command.args:
        # A code via t.me/<bot>?start=CODE; a linked user may add a second person this way.
        await use_code(message, state, session, settings, command.args)
    elif viewer.person is not None:
        await state.clear()
        await message.answer(await welcome_text(session, viewer), reply_markup=main_menu(viewer))
    else:
        await ask_for_code(message, state)


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    return router
