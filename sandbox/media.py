"""Media handling for the sandbox: stored files and Telegram-like photo processing.

Telegram never hands a bot the original bytes of a *photo*: it re-encodes it as JPEG in a few
sizes and drops all metadata (EXIF GPS included). A *document* is kept byte-for-byte, even
when it is an image. Bots that promise schools "we strip location data" must therefore treat
the two paths differently, and the sandbox reproduces exactly that split.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps

PHOTO_MAX_SIDE = 1280
THUMB_MAX_SIDE = 90
# Telegram's thumbnails of videos and files are JPEGs of at most 320 px.
VIDEO_THUMB_MAX_SIDE = 320


class MediaError(ValueError):
    """Input that Telegram would refuse; the message is the Bot API description."""


@dataclass
class StoredFile:
    """One downloadable file as the Bot API knows it (one PhotoSize is one StoredFile)."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    kind: str
    mime_type: str | None = None
    file_name: str | None = None
    # The object a message embeds when this file_id is sent again (PhotoSize list for photos).
    media: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.data)


_KIND_PREFIX = {
    "photo": "AgAC",
    "document": "BQAC",
    "voice": "AwAC",
    "video": "BAAC",
    "video_note": "DQAC",
    "audio": "CQAC",
    "animation": "CgAC",
    "thumbnail": "AAMC",
}
_KIND_FOLDER = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "video": "videos",
    "video_note": "video_notes",
    "audio": "music",
    "animation": "animations",
    "thumbnail": "thumbnails",
}


def new_file_id(kind: str) -> str:
    return _KIND_PREFIX.get(kind, "BQAC") + secrets.token_urlsafe(24)


def unique_id_for(data: bytes) -> str:
    """Content-derived, like Telegram's: the same bytes always get the same unique id."""
    digest = hashlib.sha256(data).digest()
    return "AQAD" + base64.urlsafe_b64encode(digest[:9]).decode("ascii")


def folder_for(kind: str) -> str:
    return _KIND_FOLDER.get(kind, "documents")


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise MediaError("Bad Request: PHOTO_INVALID_DIMENSIONS")
            image.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("Bad Request: PHOTO_INVALID_DIMENSIONS") from exc
    except Exception as exc:
        raise MediaError("Bad Request: IMAGE_PROCESS_FAILED") from exc
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in {"RGBA", "LA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image, max_side: int) -> tuple[bytes, int, int]:
    copy = image.copy()
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # No exif=/icc_profile= arguments: the output carries no metadata at all.
    copy.save(buffer, format="JPEG", quality=87, optimize=True)
    return buffer.getvalue(), copy.width, copy.height


def photo_sizes(data: bytes, max_pixels: int) -> list[tuple[bytes, int, int]]:
    """Re-encode an uploaded photo into (jpeg bytes, width, height) sizes, smallest first."""
    image = _open_image(data, max_pixels)
    width, height = image.size
    if width <= 0 or height <= 0 or max(width, height) / min(width, height) > 20:
        raise MediaError("Bad Request: PHOTO_INVALID_DIMENSIONS")
    # Camera photos store rotation in EXIF; Telegram bakes it in before discarding EXIF.
    image = _to_rgb(ImageOps.exif_transpose(image))
    sizes = [_encode_jpeg(image, THUMB_MAX_SIDE)]
    if max(image.size) > 320:
        sizes.append(_encode_jpeg(image, 320))
    sizes.append(_encode_jpeg(image, PHOTO_MAX_SIDE))
    return sizes


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def thumbnail_jpeg(data: bytes, max_pixels: int) -> tuple[bytes, int, int]:
    """A video's thumbnail as Telegram makes one: a clean JPEG of at most 320 px. The sandbox
    cannot decode video, so the simulated user hands over a still picture for it."""
    image = _to_rgb(ImageOps.exif_transpose(_open_image(data, max_pixels)))
    return _encode_jpeg(image, VIDEO_THUMB_MAX_SIDE)
