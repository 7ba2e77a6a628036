"""`/gesprek`: a teacher's talks (plan, open, move, cancel, wrap up); a pupil's or parent's own.

The dialogues live in `conversations/talks/`; this router is their entry point and
includes their router, so `handlers/__init__.py` needs one line for all of it.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_TALKS, main_menu
from conversations.talks import build_router as talk_dialogues
from conversations.talks.planning import begin_planning
from conversations.talks.preparation import own_list
from conversations.talks.talk_card import teacher_list
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef, Viewer
from storage.models import Role

COMMANDS = ("gesprek", "gesprekken", "talk")


async def teacher_talks(
    message: Message,
    command: CommandObject,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """/gesprek: the list with "Nieuw gesprek"; /gesprek Sam plans a talk with Sam."""
    name = (command.args or "").strip()
    if name:
        await begin_planning(bot, message.chat.id, state, session, person, clock, name)
        return
    text, keyboard = await teacher_list(session, person, clock)
    await message.answer(text, reply_markup=keyboard)


async def teacher_talks_button(
    message: Message, session: AsyncSession, person: PersonRef, clock: Clock
) -> None:
    """ "🗣 Gesprekken": the teacher's list, as /gesprek without a name."""
    text, keyboard = await teacher_list(session, person, clock)
    await message.answer(text, reply_markup=keyboard)


async def own_talks(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef, clock: Clock
) -> None:
    """A pupil's own talks, or a parent's (those they take part in)."""
    text, keyboard = await own_list(session, person, clock)
    await message.answer(text, reply_markup=keyboard or main_menu(viewer))


async def not_for_you(message: Message, viewer: Viewer) -> None:
    await message.answer(
        _("Gesprekken zijn er voor leerlingen, ouders en leerkrachten."),
        reply_markup=main_menu(viewer),
    )


def build_router() -> Router:
    router = Router(name="talk_entry")
    router.message.register(teacher_talks, Command(*COMMANDS), HasRole(Role.TEACHER))
    router.message.register(teacher_talks_button, F.text == BUTTON_TALKS, HasRole(Role.TEACHER))
    router.message.register(own_talks, Command(*COMMANDS), HasRole(Role.PUPIL, Role.PARENT))
    router.message.register(not_for_you, Command(*COMMANDS))
    router.include_router(talk_dialogues())
    return router
