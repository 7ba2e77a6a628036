"""A piece of kept work on a card, and its files: what the pupil's portfolio (`/portfolio`),
the teacher's look at the work (`/werk`) and the "saved" message after tagging show alike.

The card is text (a teacher's card may be a photo's caption); the files themselves come on
request, with the button `files_label` names, as the Telegram messages that suit them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.types import BufferedInputFile, CallbackQuery, InputMediaPhoto, Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import shorten
from chat_ui.texts import fill
from config.settings import Settings
from conversations.card import refuse
from conversations.media_intake import is_image_file, media_store, send_kept_file
from language.i18n import _, current_locale
from storage.accounts import PersonRef
from storage.evidence import EvidenceFileView, EvidenceView
from storage.models import EvidenceKind

# An album holds at most ten photos.
MAX_ALBUM = 10


def kind_icon(kind: EvidenceKind) -> str:
    return {EvidenceKind.PHOTO: "📷", EvidenceKind.VOICE: "🎤", EvidenceKind.VIDEO: "🎬"}.get(
        kind, "📎"
    )


def school_day(moment: datetime, timezone: str) -> str:
    """A moment as the school's day, written out in the reader's language."""
    day = moment.astimezone(ZoneInfo(timezone)).date()
    return format_date(day, format="long", locale=current_locale())


def day_line(item: EvidenceView, timezone: str) -> str:
    """ "📷 3 december 2025": what it is and the day it was kept."""
    return kind_icon(item.kind) + " " + school_day(item.created_at, timezone)


def about_lines(item: EvidenceView, limit: int | None = None) -> list[str]:
    """Its goals, its caption and where it was made; `limit` cuts the goals and the caption
    (a photo's caption holds 1024 characters)."""
    goals = ", ".join(text for _id, text in item.goals)
    if limit is not None:
        goals = shorten(goals, limit)
    lines = [fill(_("🎯 {goals}"), goals=goals) if goals else _("🎯 Geen doel")]
    if item.caption:
        caption = shorten(item.caption, limit) if limit is not None else item.caption
        lines.append(fill(_("💬 {caption}"), caption=caption))
    if item.outside_school:
        lines.append(_("🏠 Buiten school gemaakt"))
    return lines


def files_label(kind: EvidenceKind) -> str:
    """The button that sends the item's files."""
    return {
        EvidenceKind.PHOTO: _("📷 Bekijk"),
        EvidenceKind.VOICE: _("🎤 Luister"),
        EvidenceKind.VIDEO: _("🎬 Bekijk"),
    }.get(kind, _("📎 Open"))


async def send_files(
    query: CallbackQuery, bot: Bot, files: tuple[EvidenceFileView, ...], settings: Settings
) -> None:
    """The item's files at full size, read from the media store: several photos as an album,
    anything else one message each. Answers the tap (an alert when a file is gone)."""
    assert isinstance(query.message, Message)
    store = media_store(settings)
    try:
        contents = [
            (file, await asyncio.to_thread(store.path_of(file).read_bytes)) for file in files
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
                for index, (_file, data) in enumerate(contents[:MAX_ALBUM])
            ],
        )
        return
    for file, data in contents:
        await send_kept_file(bot, chat_id, file, data)


class NamesWork(Protocol):
    """The data of a button `files_label` names: the work it is under."""

    evidence_id: int


@dataclass(frozen=True)
class FilesButton:
    """The handler of the button `files_label` names, for one kind of reader: `find` is the
    work as storage finds it for them (None: not theirs to see)."""

    find: Callable[[AsyncSession, PersonRef, int], Awaitable[EvidenceView | None]]

    async def tapped(
        self,
        query: CallbackQuery,
        callback_data: NamesWork,
        bot: Bot,
        session: AsyncSession,
        person: PersonRef,
        settings: Settings,
    ) -> None:
        """The item's files at full size (or the document, the voice message, the video)."""
        item = await self.find(session, person, callback_data.evidence_id)
        if item is None:
            await refuse(query)
            return
        await send_files(query, bot, item.files, settings)
