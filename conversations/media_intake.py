"""Getting files from Telegram into the media store, a kind word when one is refused, and
sending a kept file back out.

Files are written to the store as soon as they arrive (content-addressed, so a repeat costs
nothing) and only described in the dialogue's FSM data; their rows are written when the
dialogue is saved. A dialogue that is cancelled leaves files without rows, which the orphan
sweep removes later.

Videos (a video, a round video message, or a video sent as a file): one longer than
`Settings.max_video_seconds` is refused before it is downloaded when Telegram tells its
length, else by the length the file itself states; Telegram's own thumbnail goes through the
image pipeline and becomes the item's thumbnail.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.types import (
    BufferedInputFile,
    Document,
    Message,
    PhotoSize,
    Video,
    VideoNote,
    Voice,
)
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from language.i18n import _, ngettext
from media.refusals import MediaRefusedError, RefusalReason
from media.sniffing import looks_like_image
from media.store import EXTENSIONS, MediaStore, passed_on_name
from storage.evidence import EvidenceFileView
from storage.media_files import StoredFile, StoredImage, StoredVideo, record_media
from storage.models import MediaKind

T = TypeVar("T")

# Telegram lets bots download files up to 20 MB.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


def video_limit_text(seconds: int) -> str:
    """ "2 minuten", "90 seconden": the longest video, as a pupil reads it."""
    if seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("{count} minuut", "{count} minuten", minutes).format(count=minutes)
    return ngettext("{count} seconde", "{count} seconden", seconds).format(count=seconds)


def refusal_text(reason: RefusalReason, *, limit: int | None = None) -> str:
    if reason is RefusalReason.TOO_LONG and limit is not None:
        return _(
            "Deze video is te lang. Een video mag hooguit {limit} duren. "
            "Maak hem korter en stuur hem opnieuw."
        ).format(limit=video_limit_text(limit))
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
        RefusalReason.CANNOT_CLEAN: _(
            "Dit bestand kan ik niet goed lezen, dus ik bewaar het niet. "
            "Sla het opnieuw op en stuur het nog eens."
        ),
        RefusalReason.PASSWORD_PROTECTED: _(
            "Dit bestand zit op slot met een wachtwoord. Haal het slot eraf en stuur het opnieuw."
        ),
        RefusalReason.UNPACKS_TOO_LARGE: _(
            "Er zit te veel in dit bestand om te bewaren. Stuur een kleinere versie."
        ),
        RefusalReason.TOO_LONG: _("Deze video is te lang. Maak hem korter en stuur hem opnieuw."),
        RefusalReason.ACTIVE_CONTENT: _(
            "In dit bestand zit code, zoals in een programma of een webpagina. "
            "Zulke bestanden bewaar ik niet. Stuur je werk als foto, PDF of Word-bestand."
        ),
        RefusalReason.MACROS: _(
            "In dit bestand zitten macro's: kleine programmaatjes. Die bewaar ik niet. "
            "Sla je werk op als PDF of als gewoon Word-bestand (.docx) en stuur het opnieuw."
        ),
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


async def _keep_thumbnail(
    bot: Bot, thumbnail: PhotoSize | None, settings: Settings
) -> dict[str, Any] | None:
    """Telegram's thumbnail of a video, cleaned like any picture; None when there is none or
    it cannot be used (the video is kept without one)."""
    if thumbnail is None:
        return None
    try:
        data = await download(bot, thumbnail.file_id, thumbnail.file_size)
        return file_to_data(await media_store(settings).store_thumbnail(data))
    except MediaRefusedError:
        return None


def _check_length(duration: int | None, settings: Settings) -> None:
    if duration is not None and duration > settings.max_video_seconds:
        raise MediaRefusedError(
            RefusalReason.TOO_LONG, f"{duration} s", limit=settings.max_video_seconds
        )


async def _keep_video_file(
    bot: Bot,
    settings: Settings,
    *,
    file_id: str,
    file_size: int | None,
    duration: int | None,
    width: int | None,
    height: int | None,
    mime_type: str | None,
    file_name: str | None,
    thumbnail: PhotoSize | None,
) -> dict[str, Any]:
    _check_length(duration, settings)  # before the download: nothing to fetch for a refusal
    data = await download(bot, file_id, file_size)
    stored = await media_store(settings).store_file(
        data,
        kind=MediaKind.VIDEO,
        filename=file_name,
        declared_mime=mime_type,
        duration_seconds=duration,
        max_duration_seconds=settings.max_video_seconds,
    )
    if width and height:
        stored = replace(stored, width=width, height=height)
    return {
        "video": file_to_data(stored),
        "thumbnail": await _keep_thumbnail(bot, thumbnail, settings),
    }


async def keep_video(bot: Bot, video: Video, settings: Settings) -> dict[str, Any]:
    """A video: checked, cleaned of its metadata and stored, with Telegram's thumbnail.
    Raises MediaRefusedError (too long, too large, not a well-formed video), storing nothing."""
    return await _keep_video_file(
        bot,
        settings,
        file_id=video.file_id,
        file_size=video.file_size,
        duration=video.duration,
        width=video.width,
        height=video.height,
        mime_type=video.mime_type or "video/mp4",
        file_name=video.file_name,
        thumbnail=video.thumbnail,
    )


async def keep_video_note(bot: Bot, note: VideoNote, settings: Settings) -> dict[str, Any]:
    """A round video message: square, so its `length` is both width and height."""
    return await _keep_video_file(
        bot,
        settings,
        file_id=note.file_id,
        file_size=note.file_size,
        duration=note.duration,
        width=note.length,
        height=note.length,
        mime_type="video/mp4",
        file_name=None,
        thumbnail=note.thumbnail,
    )


VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm"})


def is_video_document(document: Document) -> bool:
    """A video sent as a file: it is kept as a video (cleaned, length checked)."""
    return (document.mime_type or "").startswith("video/") or _extension(
        document.file_name
    ) in VIDEO_EXTENSIONS


async def keep_video_document(bot: Bot, document: Document, settings: Settings) -> dict[str, Any]:
    return await _keep_video_file(
        bot,
        settings,
        file_id=document.file_id,
        file_size=document.file_size,
        duration=None,  # a file has no length in Telegram's eyes: the file's own is checked
        width=None,
        height=None,
        mime_type=document.mime_type,
        file_name=document.file_name,
        thumbnail=document.thumbnail,
    )


def video_from_data(data: dict[str, Any]) -> StoredVideo:
    thumbnail = data.get("thumbnail")
    return StoredVideo(
        video=file_from_data(data["video"]),
        thumbnail=file_from_data(thumbnail) if thumbnail else None,
    )


def _extension(name: str | None) -> str:
    parts = (name or "").rsplit(".", 1)
    return parts[1].lower() if len(parts) == 2 else ""


# Extensions that say "picture": such a file goes through the image pipeline even when its
# bytes are not an image, so a text file renamed .jpg is refused as "not a photo".
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "heic", "heif", "avif"})


def is_image_document(document: Document, data: bytes) -> bool:
    return (
        looks_like_image(data)
        or (document.mime_type or "").startswith("image/")
        or _extension(document.file_name) in IMAGE_EXTENSIONS
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
        await message.answer(refusal_text(refused.reason, limit=refused.limit))
        return None


# --- sending kept work back -------------------------------------------------------------------

# Telegram's limits for a round video message: what is shaped like one is sent as one.
VIDEO_NOTE_MAX_SIDE = 640
VIDEO_NOTE_MAX_SECONDS = 60


def is_round_video(file: EvidenceFileView) -> bool:
    """A square MP4 of at most a minute: how a round video message is kept (its `length` as
    width and height), so it goes back out round."""
    return (
        file.kind is MediaKind.VIDEO
        and file.mime_type == "video/mp4"
        and file.width is not None
        and file.width == file.height
        and file.width <= VIDEO_NOTE_MAX_SIDE
        and (file.duration_seconds or 0) <= VIDEO_NOTE_MAX_SECONDS
    )


def is_image_file(file: EvidenceFileView) -> bool:
    return file.kind in {MediaKind.IMAGE, MediaKind.THUMBNAIL}


async def send_kept_file(bot: Bot, chat_id: int, file: EvidenceFileView, data: bytes) -> None:
    """One kept file as the Telegram message that suits it: a photo, a voice message, a
    (round) video, or a document. Telegram plays MP4 only: other videos go as a document."""
    if is_image_file(file):
        await bot.send_photo(chat_id, BufferedInputFile(data, "werk.jpg"))
    elif file.kind is MediaKind.VOICE:
        await bot.send_voice(chat_id, BufferedInputFile(data, "bericht.ogg"))
    elif is_round_video(file):
        await bot.send_video_note(
            chat_id,
            BufferedInputFile(data, "rondje.mp4"),
            duration=file.duration_seconds,
            length=file.width,
        )
    elif file.kind is MediaKind.VIDEO and file.mime_type == "video/mp4":
        await bot.send_video(
            chat_id,
            BufferedInputFile(
                data, passed_on_name(file.original_name, file.mime_type) or "video.mp4"
            ),
            duration=file.duration_seconds,
            width=file.width,
            height=file.height,
            supports_streaming=True,
        )
    else:
        # Cleaned again on the way out: rows stored before names were cleaned still exist.
        fallback = "bestand." + EXTENSIONS.get(file.mime_type, "bin")
        name = passed_on_name(file.original_name, file.mime_type) or fallback
        await bot.send_document(chat_id, BufferedInputFile(data, name))
