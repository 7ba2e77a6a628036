"""Getting files from Telegram into the media store, and a kind word when one is refused.

Files are written to the store as soon as they arrive (content-addressed, so a repeat costs
nothing) and only described in the dialogue's FSM data; their rows are written when the
dialogue is saved. A dialogue that is cancelled leaves files without rows, which the orphan
sweep removes later.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.types import Document, Message, PhotoSize, Voice
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import _
from bot.settings import Settings
from storage.media import (
    MediaRefusedError,
    MediaStore,
    RefusalReason,
    StoredFile,
    StoredImage,
    looks_like_image,
)
from storage.media_files import record_media
from storage.models import MediaKind

T = TypeVar("T")

# Telegram lets bots download files up to 20 MB.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


def refusal_text(reason: RefusalReason) -> str:
    texts = {
        RefusalReason.EMPTY: _("Dit bestand is leeg. Probeer het nog eens."),
        RefusalReason.TOO_LARGE: _(
            "Dit bestand is te groot (meer dan 20 MB). Stuur een kleinere versie."
        ),
        RefusalReason.NOT_AN_IMAGE: _("Dit is geen foto die ik kan openen."),
        RefusalReason.UNSUPPORTED_FORMAT: _(
            "Dit soort bestand kan ik niet bewaren. Stuur een foto (JPG of PNG) of een PDF."
        ),
        RefusalReason.TOO_MANY_PIXELS: _("Deze afbeelding is veel te groot om te bewaren."),
        RefusalReason.TRUNCATED: _("Dit bestand is niet helemaal aangekomen. Stuur het opnieuw."),
        RefusalReason.BROKEN: _("Dit bestand is kapot. Stuur het opnieuw of maak een nieuwe foto."),
        RefusalReason.ANIMATED: _("Bewegende plaatjes kan ik niet bewaren. Stuur een gewone foto."),
        RefusalReason.HEIC_UNSUPPORTED: _(
            "Deze iPhone-foto kan ik niet openen. Stuur hem als gewone foto, niet als bestand."
        ),
        RefusalReason.TYPE_MISMATCH: _("Dit bestand is iets anders dan zijn naam zegt."),
        RefusalReason.IS_IMAGE: _("Dit is een foto; stuur hem als foto."),
    }
    return texts.get(reason, _("Dit bestand kan ik niet bewaren."))


@lru_cache(maxsize=8)
def _store_at(root: Path) -> MediaStore:
    return MediaStore(root)


def media_store(settings: Settings) -> MediaStore:
    """One store per media directory, so its limit on parallel image work is shared."""
    return _store_at(Path(settings.media_dir))


async def download(bot: Bot, file_id: str, file_size: int | None) -> bytes:
    if file_size is not None and file_size > TELEGRAM_DOWNLOAD_LIMIT:
        raise MediaRefusedError(RefusalReason.TOO_LARGE)
    telegram_file = await bot.get_file(file_id)
    if telegram_file.file_path is None:
        raise MediaRefusedError(RefusalReason.BROKEN)
    buffer = io.BytesIO()
    await bot.download_file(telegram_file.file_path, destination=buffer)
    return buffer.getvalue()


def largest(photos: list[PhotoSize]) -> PhotoSize:
    return max(photos, key=lambda size: size.width * size.height)


async def keep_photo(bot: Bot, photos: list[PhotoSize], settings: Settings) -> dict[str, Any]:
    """Download the largest size of a photo, clean and store it; FSM-ready description.

    Raises MediaRefusedError (with a reason for `refusal_text`) and stores nothing."""
    photo = largest(photos)
    data = await download(bot, photo.file_id, photo.file_size)
    return image_to_data(await media_store(settings).store_image(data))


async def keep_voice(bot: Bot, voice: Voice, settings: Settings) -> dict[str, Any]:
    data = await download(bot, voice.file_id, voice.file_size)
    stored = await media_store(settings).store_file(
        data,
        kind=MediaKind.VOICE,
        declared_mime=voice.mime_type or "audio/ogg",
        duration_seconds=voice.duration,
    )
    return file_to_data(stored)


# Extensions that say "picture": such a file goes through the image pipeline even when its
# bytes are not an image, so a text file renamed .jpg is refused as "not a photo".
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "heic", "heif", "avif"})


def is_image_document(document: Document, data: bytes) -> bool:
    name = (document.file_name or "").rsplit(".", 1)
    extension = name[1].lower() if len(name) == 2 else ""
    return (
        looks_like_image(data)
        or (document.mime_type or "").startswith("image/")
        or extension in IMAGE_EXTENSIONS
    )


async def keep_document(
    bot: Bot, document: Document, settings: Settings
) -> tuple[bool, dict[str, Any]]:
    """A file sent as a document: an image (cleaned, like a photo) or a document kept as it
    is. Returns (is_image, FSM-ready description); raises MediaRefusedError, storing nothing."""
    data = await download(bot, document.file_id, document.file_size)
    store = media_store(settings)
    if is_image_document(document, data):
        return True, image_to_data(await store.store_image(data, filename=document.file_name))
    stored = await store.store_file(
        data,
        kind=MediaKind.DOCUMENT,
        filename=document.file_name,
        declared_mime=document.mime_type,
    )
    return False, file_to_data(stored)


def file_to_data(stored: StoredFile) -> dict[str, Any]:
    return {**asdict(stored), "kind": stored.kind.value}


def file_from_data(data: dict[str, Any]) -> StoredFile:
    return StoredFile(**{**data, "kind": MediaKind(data["kind"])})


def image_to_data(stored: StoredImage) -> dict[str, Any]:
    return {
        "image": file_to_data(stored.image),
        "thumbnail": file_to_data(stored.thumbnail),
        "original": file_to_data(stored.original) if stored.original else None,
        "source_format": stored.source_format,
    }


def image_from_data(data: dict[str, Any]) -> StoredImage:
    return StoredImage(
        image=file_from_data(data["image"]),
        thumbnail=file_from_data(data["thumbnail"]),
        original=file_from_data(data["original"]) if data.get("original") else None,
        source_format=data["source_format"],
    )


async def record_file(session: AsyncSession, data: dict[str, Any]) -> int:
    """The row of a file kept during a dialogue; its id."""
    return (await record_media(session, stored=file_from_data(data))).id


async def kept_or_explained(message: Message, keeping: Awaitable[T]) -> T | None:
    """What `keeping` stored, or None after telling the user kindly why the file was refused."""
    try:
        return await keeping
    except MediaRefusedError as refused:
        await message.answer(refusal_text(refused.reason))
        return None
