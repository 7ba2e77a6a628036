"""Why a file is not stored: one exception type with a reason the chat can translate.

Every check in this package refuses with a `MediaRefusedError`; its `reason` (a
`RefusalReason`) is what the bot layer picks a friendly, translated message by, `detail` is for
the logs only. Nothing is written to disk when a file is refused.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["MAX_BYTES", "MediaRefusedError", "RefusalReason", "cannot_clean", "check_size"]

# Telegram lets a bot download files up to 20 MB: nothing larger can reach us that way.
MAX_BYTES: Final = 20 * 1024 * 1024


class RefusalReason(enum.StrEnum):
    """Why a file was not stored. Stable values: the bot layer picks a message by them."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"
    BROKEN = "broken"
    ANIMATED = "animated"
    HEIC_UNSUPPORTED = "heic_unsupported"
    TYPE_MISMATCH = "type_mismatch"
    IS_IMAGE = "is_image"
    CANNOT_CLEAN = "cannot_clean"
    PASSWORD_PROTECTED = "password_protected"
    UNPACKS_TOO_LARGE = "unpacks_too_large"
    TOO_LONG = "too_long"
    # Something a computer would run: a web page, an SVG, a script or a program.
    ACTIVE_CONTENT = "active_content"
    # An Office file with macros or embedded programs (VBA, Excel 4 macro sheets, ActiveX, OLE).
    MACROS = "macros"


class MediaRefusedError(Exception):
    """A file was refused; `reason` is for the user, `detail` only for logs, `limit` the
    number the user may hear (the longest video, in seconds, for TOO_LONG)."""

    def __init__(
        self, reason: RefusalReason, detail: str = "", *, limit: int | None = None
    ) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.limit = limit


def check_size(data: bytes, max_bytes: int) -> None:
    """Refuse an empty file (EMPTY) or one over `max_bytes` (TOO_LARGE)."""
    if not data:
        raise MediaRefusedError(RefusalReason.EMPTY)
    if len(data) > max_bytes:
        raise MediaRefusedError(RefusalReason.TOO_LARGE, f"{len(data)} bytes")


def cannot_clean(detail: str) -> MediaRefusedError:
    """The refusal for a file whose metadata cannot be taken out (malformed, in practice)."""
    return MediaRefusedError(RefusalReason.CANNOT_CLEAN, detail)
