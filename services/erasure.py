"""Erasing a pupil for good (the right to erasure, art. 17): rows, files, and one audit entry
that does not name them.

The rows go first (`storage.erasure.erase_pupil_rows`); then the files the pupil's rows
referred to lose their media rows when nothing else uses them, and the media store removes
the files themselves only once the caller's transaction commits
(`media.store.delete_media_if_unused`), so a rollback never leaves a row whose file is gone.
Nothing here commits: the handler's or the command's transaction does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from media.store import delete_media_if_unused
from storage.audit import ACTION_ERASE, SUBJECT_PERSON, person_ref, record_audit
from storage.erasure import erase_pupil_rows


@dataclass(frozen=True)
class ErasureResult:
    person_id: int
    external_id_hash: str
    counts: dict[str, int]
    media_rows_removed: int
    audit_event_id: int


def external_id_hash(school_id: int, external_id: str) -> str:
    """A short hash of the school's own pupil number: lets the privacy officer check that a
    given pupil was erased (hash the number they know) without the log naming anyone."""
    return hashlib.sha256(f"{school_id}:{external_id.strip()}".encode()).hexdigest()[:16]


async def erase_pupil(
    session: AsyncSession,
    *,
    pupil_id: int,
    media_dir: Path,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    reason: str = "request",
) -> ErasureResult:
    """Erase a pupil for good: rows, files (those no one else uses), parents' links, the
    Telegram link, reminders, dialogue state. Writes one audit entry without the name.
    PrivacyError (storage.pupil_lookup) when the id is not a pupil's."""
    erased = await erase_pupil_rows(session, pupil_id=pupil_id)
    removed = 0
    for media_file_id in erased.media_file_ids:
        if await delete_media_if_unused(session, media_file_id=media_file_id, media_dir=media_dir):
            removed += 1
    counts = {**erased.counts, "files": removed}
    reference = external_id_hash(erased.school_id, erased.external_id)
    event = await record_audit(
        session,
        school_id=erased.school_id,
        actor_person_id=actor_person_id,
        actor_label=actor_label,
        action=ACTION_ERASE,
        subject_kind=SUBJECT_PERSON,
        subject_ref=person_ref(pupil_id),
        details={"reason": reason, "external_id_sha256": reference, "counts": counts},
    )
    return ErasureResult(pupil_id, reference, counts, removed, event.id)
