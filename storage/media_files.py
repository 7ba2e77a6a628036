"""The database side of stored media: `media_file` rows, and removing files nobody needs.

`media.pipeline` writes a file BEFORE its row is committed, so a crash in between leaves a file
without a row; `sweep_orphans` removes such files once they are older than a grace period
(never younger ones: their row may be about to commit). `delete_media_if_unused` is for when
evidence is deleted: it deletes the row when nothing refers to it any more, and removes the
file only AFTER the caller's transaction commits, so a rollback never leaves a row whose file
is gone. A crash between that commit and the removal leaves an orphan for the sweep.

Which columns refer to `media_file` is read from the model's foreign keys (today
evidence_file.media_file_id and .thumbnail_file_id, reflection.voice_file_id,
observation.voice_file_id and .photo_file_id), so a new reference is covered the day it is
added. Like every storage function these never commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, event, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from media.pipeline import StoredFile, is_stored_name, is_temp_name, relative_path_for
from storage.models import Base, MediaFile
from storage.types import utcnow

# How many sha256 values go into one IN (...) while sweeping.
_SWEEP_BATCH = 500


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


async def delete_media_if_unused(
    session: AsyncSession, *, media_file_id: int, media_dir: Path
) -> bool:
    """Delete the row of a file nothing refers to; its file goes once the caller commits.

    Returns whether the row was deleted. On PostgreSQL a reference added meanwhile by a
    concurrent transaction makes the DELETE fail inside a savepoint: the file then counts as
    in use.
    """
    row = await session.get(MediaFile, media_file_id)
    if row is None or await media_in_use(session, media_file_id=media_file_id):
        return False
    path = Path(media_dir) / relative_path_for(row.sha256, row.mime_type)
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
            return False
    _PendingRemovals.of(session.sync_session).add(path, session.sync_session)
    return True


@dataclass
class _PendingRemovals:
    """Files to remove when the session's outermost transaction commits.

    Each entry remembers the transaction it was scheduled in, so a rolled-back savepoint
    forgets only its own entries; an outermost rollback or close forgets them all.
    """

    entries: list[tuple[Path, float, SessionTransaction | None]] = field(default_factory=list)

    _KEY = "storage.media_files.pending_removals"

    @classmethod
    def of(cls, session: Session) -> _PendingRemovals:
        pending = session.info.get(cls._KEY)
        if pending is None:
            pending = session.info[cls._KEY] = cls()
            event.listen(session, "after_commit", pending._after_commit)
            event.listen(session, "after_soft_rollback", pending._after_soft_rollback)
            event.listen(session, "after_transaction_end", pending._after_transaction_end)
        return pending

    def add(self, path: Path, session: Session) -> None:
        transaction = session.get_nested_transaction() or session.get_transaction()
        self.entries.append((path, time.time(), transaction))

    def _after_commit(self, session: Session) -> None:
        if session.get_nested_transaction() is not None:
            return  # a savepoint was released: wait for the outermost commit
        entries, self.entries = self.entries, []
        # Runs on the event loop's thread (inside commit); a few unlink calls are cheap.
        for path, scheduled_at, _ in entries:
            _remove_unless_touched(path, since=scheduled_at)

    def _after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        self.entries = [entry for entry in self.entries if previous not in _chain(entry[2])]

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            self.entries = []  # the outermost transaction ended without after_commit's work


def _chain(transaction: SessionTransaction | None) -> Iterator[SessionTransaction]:
    while transaction is not None:
        yield transaction
        transaction = transaction.parent


def _remove_unless_touched(path: Path, *, since: float) -> bool:
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
    for start in range(0, len(stored), _SWEEP_BATCH):
        batch = stored[start : start + _SWEEP_BATCH]
        known = set(
            (
                await session.execute(
                    select(MediaFile.sha256).where(MediaFile.sha256.in_([s for _, s in batch]))
                )
            ).scalars()
        )
        orphans.extend(path for path, sha256 in batch if sha256 not in known)

    def remove() -> list[Path]:
        # Re-checked against the cutoff: a dedup hit may have touched the file meanwhile.
        return [path for path in orphans if _remove_unless_touched(path, since=cutoff)]

    return await asyncio.to_thread(remove)
