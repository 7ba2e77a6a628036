"""Group chats: the bot shows no personal data there and points to the private chat.

An invite code posted in a group is revoked the moment the bot reads it, whatever else the
message is (conversations.admin_notices); nothing is said about it in the group.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandStart, Filter
from aiogram.filters.chat_member_updated import JOIN_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated, Message, Update
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.texts import fill
from config.settings import Settings, invite_secret_of
from conversations.admin_notices import codes_in, revoke_codes_seen_in_group
from handlers.routing import ChatTypeIs
from language.i18n import _
from services.clock import Clock

GROUP_CHATS = ("group", "supergroup")


async def _pointer(bot: Bot) -> str:
    me = await bot.me()
    return fill(
        _(
            "Ik werk alleen in een privégesprek, zodat niemand anders je portfolio ziet. "
            "Stuur me een bericht: @{username}"
        ),
        username=me.username or "",
    )


async def added_to_group(event: ChatMemberUpdated, bot: Bot) -> None:
    """Says once, when added to a group, that it only works privately. In a channel (made
    its administrator, say) it says nothing: a channel is no place to talk to the bot."""
    if event.chat.type in GROUP_CHATS:
        await bot.send_message(event.chat.id, await _pointer(bot))


def _words(message: Message) -> str:
    return message.text or message.caption or ""


class HoldsCodeShape(Filter):
    """A message with something shaped like an invite code in its text or caption."""

    async def __call__(self, message: Message) -> bool:
        return bool(codes_in(_words(message)))


def may_hold_invite_code(update: Update) -> bool:
    """A group message (or an edit of one) that may hold an invite code: never held back by
    the flood guard (bot.middlewares.FloodGuard), or a flood could slip a code past."""
    message = update.message or update.edited_message
    return (
        message is not None and message.chat.type in GROUP_CHATS and bool(codes_in(_words(message)))
    )


async def code_in_group(
    message: Message, session: AsyncSession, settings: Settings, clock: Clock
) -> None:
    """Revokes the valid codes in the message (the admins hear of it in private), then lets
    the message go on to the handlers below: a command still gets the pointer, other talk
    still gets silence, so the group learns nothing about the code."""
    await revoke_codes_seen_in_group(
        session, text=_words(message), secret=invite_secret_of(settings), now=clock.now()
    )
    raise SkipHandler


async def command_in_group(message: Message, bot: Bot) -> None:
    """Answers commands with the pointer; a code in one was revoked first (code_in_group)."""
    await message.reply(await _pointer(bot))


async def mentioned_in_group(message: Message, bot: Bot) -> None:
    """Answers a mention of the bot with the pointer; other group talk is ignored."""
    me = await bot.me()
    if me.username and f"@{me.username}".lower() in (message.text or "").lower():
        await message.reply(await _pointer(bot))


def build_router() -> Router:
    router = Router(name="group_chat")
    router.message.filter(ChatTypeIs(*GROUP_CHATS))
    router.message.register(code_in_group, HoldsCodeShape())
    router.edited_message.register(code_in_group, ChatTypeIs(*GROUP_CHATS), HoldsCodeShape())
    router.my_chat_member.register(
        added_to_group, ChatMemberUpdatedFilter(member_status_changed=JOIN_TRANSITION)
    )
    router.message.register(command_in_group, CommandStart())
    router.message.register(command_in_group, Command("help", "hulp", "taal", "annuleer"))
    router.message.register(mentioned_in_group, F.entities[...].type == "mention")
    return router
