"""The media directory: files stored by their content, and removed when nobody needs them.

`MediaStore` is the one way in. `store_image` runs the image pipeline (`media.images`) on a
photo, or an image sent as a file; `store_thumbnail` keeps only the thumbnail of an image, for
Telegram's thumbnail of a video. `store_file` takes documents, voice messages and videos: a
size check and a type check by magic bytes with an allow-list per kind (`media.sniffing`;
web pages, SVG, scripts and programs are refused with ACTIVE_CONTENT), then
`media.metadata.clean_file` takes the metadata out of MP4/MOV/M4A (location, device, dates; in
place, so the video still plays), PDF (author, tools, dates, XMP; also actions, JavaScript and
embedded files) and DOCX/XLSX/PPTX (document properties, external relationships); a file with
macros is refused (MACROS), one it cannot clean too (CANNOT_CLEAN, PASSWORD_PROTECTED,
UNPACKS_TOO_LARGE). Plain text, OpenDocument files (checked for macros), MP3/OGG audio and
WebM are stored as sent.
A video longer than `max_duration_seconds` (by Telegram's word or its own `mvhd`) is refused
with TOO_LONG. Nothing here touches Telegram; the rows are `storage.media_files`'.

Content-addressed under `root` as `ab/cd/<sha256>.<ext>`, the sha256 of the STORED (cleaned)
bytes; the extension follows from the stored MIME type, so `relative_path_for` is a pure
function of the `media_file` row. Files are written to a temporary file in the target folder,
fsynced and renamed into place before the caller commits the row, so a row never points at a
half-written file; a crash in between leaves an orphan that `sweep_orphans` removes after a
grace period (never younger files: their row may be about to commit). Identical uploads share
one file; storing an existing file refreshes its mtime so the sweep's grace period protects it
until the new row is committed. All decoding, hashing and disk work runs in
`asyncio.to_thread`, at most `max_concurrent` images at a time (a 40 MP image needs some
hundreds of MB while it is processed).

A kept file is passed on under `passed_on_name`: the name it arrived with, cleaned of what
hides or reorders what a name says, ending in the extension of what the file is, never the one
its name claimed (`storage.media_files.clean_file_name`, which cleans it when it is stored).

`delete_media_if_unused` is for when evidence is deleted: it deletes the row when nothing
refers to it any more, and removes the file only AFTER the caller's transaction commits, so a
rollback never leaves a row whose file is gone. A crash between that commit and the removal
leaves an orphan for the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import re
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from media.images import (
    MAX_PIXELS,
    MAX_SIDE,
    THUMB_SIDE,
    EncodedImage,
    ImageOptions,
    prepare_image,
)
from media.metadata import clean_file
from media.refusals import MAX_BYTES, MediaRefusedError, RefusalReason, check_size
from media.sniffing import ALLOWED_TYPES, identify_file
from storage.after_commit import run_after_commit
from storage.media_files import (
    StoredFile,
    StoredImage,
    clean_file_name,
    delete_unused_media_row,
    recorded_hashes,
)
from storage.models import MediaKind
from storage.types import utcnow

__all__ = [
    "EXTENSIONS",
    "TEMP_PREFIX",
    "MediaRef",
    "MediaStore",
    "delete_media_if_unused",
    "is_stored_name",
    "is_stored_path",
    "is_temp_name",
    "passed_on_name",
    "relative_path_for",
    "sweep_orphans",
    "write_atomically",
]

# --- where files live --------------------------------------------------------------------------

# Canonical MIME type -> extension of the stored file. The path of a stored file is derived
# from (sha256, MIME type), so an entry may be added but never changed once files exist.
EXTENSIONS: Final = MappingProxyType(
    {
        "image/jpeg": "jpg",
        "application/pdf": "pdf",
        "text/plain": "txt",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "application/vnd.oasis.opendocument.text": "odt",
        "application/vnd.oasis.opendocument.presentation": "odp",
        "application/vnd.oasis.opendocument.spreadsheet": "ods",
        "audio/mpeg": "mp3",
        "audio/ogg": "ogg",
        "audio/mp4": "m4a",
        "video/mp4": "mp4",
        "video/quicktime": "mov",
        "video/webm": "webm",
    }
)

_STORED_NAME = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{1,5}")
_RELATIVE_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.[a-z0-9]{1,5}")
TEMP_PREFIX: Final = ".tmp-"


def relative_path_for(sha256: str, mime_type: str) -> str:
    """Where a stored file lives under the media root: `ab/cd/abcd....ext`."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a sha256 hex digest")
    extension = EXTENSIONS.get(mime_type, "bin")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def is_stored_path(relative_path: str) -> bool:
    """Whether a relative path is one `relative_path_for` gives: `ab/cd/abcd....ext`, the
    folders being the start of the hash. Nothing else (no `..`, no absolute path) is."""
    match = _RELATIVE_PATH.fullmatch(relative_path)
    return match is not None and match[3][:2] == match[1] and match[3][2:4] == match[2]


def passed_on_name(name: str | None, mime_type: str) -> str | None:
    """The name a kept file of this type goes out under; None when nothing usable is left of
    the name it came with (the caller names it). "evil.html" kept as text is "evil.txt"."""
    return clean_file_name(name, EXTENSIONS.get(mime_type, "bin"))


def is_stored_name(name: str) -> bool:
    """Whether a file name is one this module writes (the orphan sweep touches nothing else)."""
    return _STORED_NAME.fullmatch(name) is not None


def is_temp_name(name: str) -> bool:
    """Whether a file name is that of a write in progress (or one a crash interrupted)."""
    return name.startswith(TEMP_PREFIX)


class MediaRef(Protocol):
    """Anything that names a stored file: a `StoredFile` or a `MediaFile` row."""

    @property
    def sha256(self) -> str: ...

    @property
    def mime_type(self) -> str: ...


# --- writing -----------------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; not every platform allows it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(root: Path, relative_path: str, data: bytes) -> None:
    """Put `data` at root/relative_path via a synced temporary file and a rename."""
    target = root / relative_path
    if target.exists():
        # Content-addressed: the file is complete already. A fresh mtime keeps the orphan
        # sweep away from it until the caller's new row is committed.
        with contextlib.suppress(OSError):
            os.utime(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


class MediaStore:
    """The media directory: stores cleaned images and checked, cleaned files by their sha256."""

    def __init__(
        self,
        root: Path,
        *,
        max_side: int = MAX_SIDE,
        thumb_side: int = THUMB_SIDE,
        max_pixels: int = MAX_PIXELS,
        max_bytes: int = MAX_BYTES,
        keep_original: bool = False,
        heif: bool = True,
        max_concurrent: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.options = ImageOptions(
            max_side=max_side,
            thumb_side=thumb_side,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            keep_original=keep_original,
            heif=heif,
        )
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 2)

    async def store_image(self, data: bytes, *, filename: str | None = None) -> StoredImage:
        """Clean and store an image (a photo, or an image sent as a file)."""
        check_size(data, self.options.max_bytes)
        async with self._slots:
            return await asyncio.to_thread(self._store_image_sync, data, filename)

    async def store_thumbnail(self, data: bytes) -> StoredFile:
        """Clean and store only the small picture of an image (Telegram's thumbnail of a
        video): the full-size image would be a file nobody uses."""
        check_size(data, self.options.max_bytes)
        async with self._slots:
            return await asyncio.to_thread(self._store_thumbnail_sync, data)

    async def store_file(
        self,
        data: bytes,
        *,
        kind: MediaKind,
        filename: str | None = None,
        declared_mime: str | None = None,
        duration_seconds: int | None = None,
        max_duration_seconds: int | None = None,
    ) -> StoredFile:
        """Store a document, voice message or video after checking and cleaning it.

        `duration_seconds` is what Telegram said; without it the file's own is recorded.
        Longer than `max_duration_seconds` (either way) is refused with TOO_LONG."""
        if kind not in ALLOWED_TYPES:
            raise ValueError(f"{kind} is not stored with store_file; use store_image")
        check_size(data, self.options.max_bytes)
        return await asyncio.to_thread(
            self._store_file_sync,
            data,
            kind,
            filename,
            declared_mime,
            duration_seconds,
            max_duration_seconds,
        )

    def path_of(self, ref: MediaRef | str) -> Path:
        """The absolute path of a stored file, from a StoredFile, MediaFile or relative path."""
        if isinstance(ref, str):
            if not is_stored_path(ref):
                raise ValueError("not a stored media path")
            return self.root / ref
        return self.root / relative_path_for(ref.sha256, ref.mime_type)

    async def read(self, relative_path: str) -> bytes:
        return await asyncio.to_thread(self.path_of(relative_path).read_bytes)

    def _store_image_sync(self, data: bytes, filename: str | None) -> StoredImage:
        prepared = prepare_image(data, options=self.options, filename=filename)
        image = self._put(prepared.image, MediaKind.IMAGE)
        thumbnail = self._put(prepared.thumbnail, MediaKind.THUMBNAIL)
        original = None
        if prepared.original is not None:
            original = self._put(prepared.original, MediaKind.IMAGE)
        return StoredImage(image, thumbnail, original, prepared.source_format)

    def _store_thumbnail_sync(self, data: bytes) -> StoredFile:
        prepared = prepare_image(data, options=self.options)
        return self._put(prepared.thumbnail, MediaKind.THUMBNAIL)

    def _store_file_sync(
        self,
        data: bytes,
        kind: MediaKind,
        filename: str | None,
        declared_mime: str | None,
        duration_seconds: int | None,
        max_duration_seconds: int | None,
    ) -> StoredFile:
        mime_type = identify_file(
            data,
            kind=kind,
            declared_mime=declared_mime,
            filename=filename,
            max_bytes=self.options.max_bytes,
        )
        cleaned = clean_file(data, mime_type)
        known = [d for d in (duration_seconds, cleaned.duration_seconds) if d is not None]
        if max_duration_seconds is not None and known and max(known) > max_duration_seconds:
            raise MediaRefusedError(
                RefusalReason.TOO_LONG, f"{max(known)} s", limit=max_duration_seconds
            )
        return self._write(
            cleaned.data,
            kind,
            mime_type,
            duration_seconds=duration_seconds
            if duration_seconds is not None
            else cleaned.duration_seconds,
        )

    def _put(self, encoded: EncodedImage, kind: MediaKind) -> StoredFile:
        return self._write(
            encoded.data, kind, encoded.mime_type, width=encoded.width, height=encoded.height
        )

    def _write(
        self,
        data: bytes,
        kind: MediaKind,
        mime_type: str,
        *,
        width: int | None = None,
        height: int | None = None,
        duration_seconds: int | None = None,
    ) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        relative_path = relative_path_for(sha256, mime_type)
        write_atomically(self.root, relative_path, data)
        return StoredFile(
            sha256=sha256,
            relative_path=relative_path,
            kind=kind,
            mime_type=mime_type,
            size_bytes=len(data),
            width=width,
            height=height,
            duration_seconds=duration_seconds,
        )


# --- removing files nobody needs ---------------------------------------------------------------


async def delete_media_if_unused(
    session: AsyncSession, *, media_file_id: int, media_dir: Path
) -> bool:
    """Delete the row of a file nothing refers to; its file goes once the caller commits.

    Returns whether the row was deleted (see `storage.media_files.delete_unused_media_row`).
    """
    row = await delete_unused_media_row(session, media_file_id=media_file_id)
    if row is None:
        return False
    path = Path(media_dir) / relative_path_for(row.sha256, row.mime_type)
    # A few unlink calls after the commit are cheap enough for the event loop's thread.
    run_after_commit(session, functools.partial(remove_unless_touched, path, since=time.time()))
    return True


def remove_unless_touched(path: Path, *, since: float) -> bool:
    """Remove a file unless it was written or touched after `since` (a new upload of the
    same bytes refreshes the mtime: its row is on its way)."""
    try:
        if path.stat().st_mtime > since:
            return False
        path.unlink()
    except OSError:
        # Gone already, or not ours to remove: never fail a commit over it. A file left
        # behind without a row is an orphan, and the sweep tries again.
        return False
    return True


def _old_files(media_dir: Path, cutoff: float) -> list[tuple[Path, str | None]]:
    """Files of ours older than `cutoff`: (path, sha256), or (path, None) for a temp file."""
    found: list[tuple[Path, str | None]] = []
    if not media_dir.is_dir():
        return found
    # Only the two shard levels this store writes, and only names it writes: a media_dir
    # pointed at the wrong folder must not cost anyone their files.
    for first in os.scandir(media_dir):
        if not (first.is_dir(follow_symlinks=False) and _is_shard(first.name)):
            continue
        for second in os.scandir(first.path):
            if not (second.is_dir(follow_symlinks=False) and _is_shard(second.name)):
                continue
            for entry in os.scandir(second.path):
                if not entry.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                        continue
                    if is_stored_name(entry.name):
                        found.append((Path(entry.path), entry.name.split(".", 1)[0]))
                    elif is_temp_name(entry.name):
                        found.append((Path(entry.path), None))
    return found


def _is_shard(name: str) -> bool:
    return len(name) == 2 and all(char in "0123456789abcdef" for char in name)


async def sweep_orphans(
    session: AsyncSession,
    *,
    media_dir: Path,
    older_than: timedelta,
    now: datetime | None = None,
) -> list[Path]:
    """Remove files under `media_dir` that no media_file row refers to and that are older
    than the grace period `older_than`; also stale temp files of interrupted writes.
    Returns the removed paths."""
    cutoff = (now or utcnow()).timestamp() - older_than.total_seconds()
    candidates = await asyncio.to_thread(_old_files, Path(media_dir), cutoff)
    orphans = [path for path, sha256 in candidates if sha256 is None]
    stored = [(path, sha256) for path, sha256 in candidates if sha256 is not None]
    known = await recorded_hashes(session, [sha256 for _, sha256 in stored])
    orphans.extend(path for path, sha256 in stored if sha256 not in known)

    def remove() -> list[Path]:
        # Re-checked against the cutoff: a dedup hit may have touched the file meanwhile.
        return [path for path in orphans if remove_unless_touched(path, since=cutoff)]

    return await asyncio.to_thread(remove)
