"""Group chats: the bot shows no personal data there and points to the private chat."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.filters.chat_member_updated import JOIN_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated, Message

from chat_ui.texts import fill
from language.i18n import _


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
    """Says once, when added to a group, that it only works privately."""
    if event.chat.type != "private":
        await bot.send_message(event.chat.id, await _pointer(bot))


async def command_in_group(message: Message, bot: Bot) -> None:
    """Answers commands with the pointer; a code posted here is not used: it is no secret now."""
    await message.reply(await _pointer(bot))


async def mentioned_in_group(message: Message, bot: Bot) -> None:
    """Answers a mention of the bot with the pointer; other group talk is ignored."""
    me = await bot.me()
    if me.username and f"@{me.username}".lower() in (message.text or "").lower():
        await message.reply(await _pointer(bot))


def build_router() -> Router:
    router = Router(name="group_chat")
    router.message.filter(F.chat.type.in_({"group", "supergroup", "channel"}))
    router.my_chat_member.register(
        added_to_group, ChatMemberUpdatedFilter(member_status_changed=JOIN_TRANSITION)
    )
    router.message.register(command_in_group, CommandStart())
    router.message.register(command_in_group, Command("help", "hulp", "taal", "annuleer"))
    router.message.register(mentioned_in_group, F.entities[...].type == "mention")
    return router
