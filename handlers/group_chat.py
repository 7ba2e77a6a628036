"""Group chats: the bot shows no personal data there and points to the private chat."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.filters.chat_member_updated import JOIN_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated, Message

from bot.i18n import _
from bot.texts import fill

router = Router(name="group_chat")
router.message.filter(F.chat.type.in_({"group", "supergroup", "channel"}))


async def _pointer(bot: Bot) -> str:
    me = await bot.me()
    return fill(
        _(
            "Ik werk alleen in een privégesprek, zodat niemand anders je portfolio ziet. "
            "Stuur me een bericht: @{username}"
        ),
        username=me.username or "",
    )


@router.my_chat_member(ChatMemberUpdatedFilter(member_status_changed=JOIN_TRANSITION))
async def added_to_group(event: ChatMemberUpdated, bot: Bot) -> None:
    """Says once, when added to a group, that it only works privately."""
    if event.chat.type != "private":
        await bot.send_message(event.chat.id, await _pointer(bot))


@router.message(CommandStart())
@router.message(Command("help", "hulp", "taal", "annuleer"))
async def command_in_group(message: Message, bot: Bot) -> None:
    """Answers commands with the pointer; a code posted here is not used: it is no secret now."""
    await message.reply(await _pointer(bot))


@router.message(F.entities[...].type == "mention")
async def mentioned_in_group(message: Message, bot: Bot) -> None:
    """Answers a mention of the bot with the pointer; other group talk is ignored."""
    me = await bot.me()
    if me.username and f"@{me.username}".lower() in (message.text or "").lower():
        await message.reply(await _pointer(bot))
