"""The database side of stored media: `media_file` rows, and what refers to them.

`StoredFile` (with `StoredImage` and `StoredVideo`, which group the files of one upload) is a
file the media store has written, as `record_media` records it. `media.store` writes a file
BEFORE its row is committed, so a crash in between leaves a file without a row; its orphan
sweep asks `recorded_hashes` which files still have one. When evidence is deleted,
`delete_unused_media_row` deletes the row of a file nothing refers to any more, and
`media.store.delete_media_if_unused` removes the file itself only after the caller's
transaction commits (see `storage.after_commit`).

Which columns refer to `media_file` is read from the model's foreign keys (today
evidence_file.media_file_id and .thumbnail_file_id, reflection.voice_file_id,
observation.voice_file_id and .photo_file_id), so a new reference is covered the day it is
added. Like every storage function these never commit.

`clean_file_name` is the one rule for the name a kept file is known by: the name a pupil's
file arrived with is stored (evidence_file.original_name, VARCHAR(255)) and passed on only as
it makes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Column, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base, MediaFile, MediaKind
from storage.types import utcnow

__all__ = [
    "StoredFile",
    "StoredImage",
    "StoredVideo",
    "clean_file_name",
    "delete_unused_media_row",
    "media_in_use",
    "media_references",
    "record_media",
    "recorded_hashes",
]

# How many sha256 values go into one IN (...).
_HASH_BATCH = 500

# What file systems allow, and what evidence_file.original_name (VARCHAR(255)) holds.
MAX_FILE_NAME_BYTES: Final = 255
# Format characters (bidi overrides, isolates and marks, zero-width characters), controls,
# surrogates, private and unassigned code points, line and paragraph separators: in a name
# they only hide or reorder what it says ("verslag\u202etxt.bat" shows as "verslagtab.txt").
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Characters Windows does not allow in a file name.
_RESERVED_CHARACTERS: Final = frozenset('<>:"|?*')
_PATH_SEPARATORS: Final = re.compile(r"[/\\]")
# The extension a name claims: short, without spaces ("Deel 1. Krachten" has none).
_CLAIMED_EXTENSION: Final = re.compile(r"\.[^.\s]{1,16}$")
_WINDOWS_DEVICES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}
)
# Enough for every real script; more is "zalgo" text painting over the lines around it.
_MAX_COMBINING_RUN: Final = 4


def _visible_characters(name: str) -> str:
    kept: list[str] = []
    combining_run = 0
    for char in name:
        category = unicodedata.category(char)
        if category in _DROPPED_CATEGORIES:
            continue
        if category in ("Mn", "Me"):
            combining_run += 1
            if combining_run > _MAX_COMBINING_RUN:
                continue
        else:
            combining_run = 0
        if category == "Zs":
            char = " "
        elif char in _RESERVED_CHARACTERS:
            char = "_"
        kept.append(char)
    return " ".join("".join(kept).split())


def clean_file_name(name: str | None, extension: str) -> str | None:
    """The name a file is stored and passed on under; None when nothing of it is left.

    One name, not a path (what follows the last slash or backslash), NFC, without the characters
    that hide or reorder what it says (see `_DROPPED_CATEGORIES`) and those Windows refuses,
    without leading dots (no hidden file, no "..") or trailing dots and spaces, and ending in
    `extension`, the one of what the file IS: the extension the name claimed is replaced
    ("evil.html" kept as text is "evil.txt", a PDF called "x.exe" is "x.pdf"). At most
    `MAX_FILE_NAME_BYTES` bytes of UTF-8, the extension kept. Cleaning a clean name changes
    nothing."""
    if not name:
        return None
    name = _PATH_SEPARATORS.split(unicodedata.normalize("NFC", name))[-1]
    stem = _CLAIMED_EXTENSION.sub("", _visible_characters(name).strip(". ")).strip(". ")
    suffix = "." + extension
    if stem.lower().endswith(suffix.lower()):
        stem = stem[: -len(suffix)].rstrip(". ")  # "foto.pdf.exe" is "foto.pdf", not .pdf.pdf
    if stem.split(".", 1)[0].upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    room = MAX_FILE_NAME_BYTES - len(suffix.encode())
    # Cut at a byte, then drop the half character the cut may leave.
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(". ")
    return stem + suffix if stem else None


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file on disk, as `record_media` needs it for its row."""

    sha256: str
    relative_path: str
    kind: MediaKind
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A stored image: the main picture, its thumbnail and, if kept, the full resolution."""

    image: StoredFile
    thumbnail: StoredFile
    original: StoredFile | None
    source_format: str

    @property
    def files(self) -> tuple[StoredFile, ...]:
        kept = (self.original,) if self.original is not None else ()
        return (self.image, self.thumbnail, *kept)


@dataclass(frozen=True, slots=True)
class StoredVideo:
    """A stored video and, when Telegram made one, its cleaned thumbnail."""

    video: StoredFile
    thumbnail: StoredFile | None


def media_references() -> list[Column[Any]]:
    """Every column that holds a media_file id, read from the model's foreign keys."""
    media_table = MediaFile.__table__
    return [
        foreign_key.parent
        for table in Base.metadata.sorted_tables
        for foreign_key in table.foreign_keys
        if foreign_key.column.table is media_table
    ]


async def record_media(session: AsyncSession, *, stored: StoredFile) -> MediaFile:
    """The row of a stored file, created when it is new (identical uploads share one row).

    INSERT ... ON CONFLICT DO NOTHING, then a SELECT: two updates storing the same file at
    the same time on PostgreSQL both end with the one row, without an IntegrityError.
    """
    values = {
        "sha256": stored.sha256,
        "kind": stored.kind,
        "mime_type": stored.mime_type,
        "size_bytes": stored.size_bytes,
        "width": stored.width,
        "height": stored.height,
        "duration_seconds": stored.duration_seconds,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(MediaFile).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    )
    return (await session.execute(select(MediaFile).filter_by(sha256=stored.sha256))).scalar_one()


async def media_in_use(session: AsyncSession, *, media_file_id: int) -> bool:
    """Whether any row (evidence, reflection, observation, ...) refers to this file."""
    checks = [exists().where(column == media_file_id) for column in media_references()]
    return bool((await session.execute(select(or_(*checks)))).scalar())


async def delete_unused_media_row(session: AsyncSession, *, media_file_id: int) -> MediaFile | None:
    """Delete the row of a file nothing refers to; return it (its columns stay readable), or
    None when the row is gone already or still in use.

    On PostgreSQL a reference added meanwhile by a concurrent transaction makes the DELETE
    fail inside a savepoint: the file then counts as in use.
    """
    row = await session.get(MediaFile, media_file_id)
    if row is None or await media_in_use(session, media_file_id=media_file_id):
        return None
    if session.get_bind().dialect.name != "postgresql":
        # SQLite has one writer at a time, so no reference can appear between the check and
        # the delete. A savepoint is not used there: pysqlite begins no transaction before a
        # SAVEPOINT that follows only SELECTs, and RELEASE would then commit for the caller.
        await session.delete(row)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                await session.delete(row)
        except IntegrityError:
            return None
    return row


async def recorded_hashes(session: AsyncSession, sha256s: Sequence[str]) -> set[str]:
    """Which of these sha256 values have a media_file row."""
    known: set[str] = set()
    for start in range(0, len(sha256s), _HASH_BATCH):
        batch = list(sha256s[start : start + _HASH_BATCH])
        rows = await session.execute(select(MediaFile.sha256).where(MediaFile.sha256.in_(batch)))
        known.update(rows.scalars())
    return known
