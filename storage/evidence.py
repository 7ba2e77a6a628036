"""Evidence (bewijsstukken): pieces of work with their files and goals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from storage.media import StoredFile, StoredImage
from storage.media_files import record_media
from storage.models import Evidence, EvidenceFile, EvidenceGoal, EvidenceKind, School
from storage.reflections import own_goal_ids


@dataclass(frozen=True)
class NewEvidence:
    pupil_id: int
    kind: EvidenceKind
    files: Sequence[StoredImage | StoredFile]
    goal_ids: Sequence[int] = ()
    caption: str | None = None
    outside_school: bool = False
    shared_with_parents: bool | None = None  # None: the school's default
    media_group_id: str | None = None
    reflection_id: int | None = None
    original_names: Sequence[str | None] = ()


async def create_evidence(session: AsyncSession, *, school_id: int, new: NewEvidence) -> Evidence:
    """One evidence item with its files (rows for files already written to the media store)
    and goals; goals that are not the pupil's own are left out, never linked."""
    shared = new.shared_with_parents
    if shared is None:
        school = await session.get(School, school_id)
        shared = bool(school and school.evidence_shared_by_default)
    evidence = Evidence(
        pupil_id=new.pupil_id,
        kind=new.kind,
        caption=new.caption,
        outside_school=new.outside_school,
        shared_with_parents=shared,
        media_group_id=new.media_group_id,
        reflection_id=new.reflection_id,
    )
    session.add(evidence)
    await session.flush()
    for position, stored in enumerate(new.files):
        if isinstance(stored, StoredImage):
            main = await record_media(session, stored=stored.image)
            thumbnail = await record_media(session, stored=stored.thumbnail)
            thumbnail_id: int | None = thumbnail.id
        else:
            main = await record_media(session, stored=stored)
            thumbnail_id = None
        name = new.original_names[position] if position < len(new.original_names) else None
        session.add(
            EvidenceFile(
                evidence_id=evidence.id,
                media_file_id=main.id,
                thumbnail_file_id=thumbnail_id,
                original_name=name,
                position=position,
            )
        )
    for goal_id in await own_goal_ids(session, pupil_id=new.pupil_id, goal_ids=new.goal_ids):
        session.add(EvidenceGoal(evidence_id=evidence.id, goal_id=goal_id))
    await session.flush()
    return evidence
