"""Evidence (bewijsstukken): pieces of work with their files and goals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.media import StoredFile, StoredImage
from storage.media_files import record_media
from storage.models import (
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    EvidenceKind,
    Feedback,
    Goal,
    MediaFile,
    MediaKind,
    Role,
    School,
)
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


# --- the pupil's own portfolio -----------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceFileView:
    media_file_id: int
    thumbnail_file_id: int | None
    kind: MediaKind
    mime_type: str
    sha256: str
    original_name: str | None


@dataclass(frozen=True)
class FeedbackView:
    top: str | None
    tip: str | None
    author_role: Role


@dataclass(frozen=True)
class EvidenceView:
    id: int
    kind: EvidenceKind
    caption: str | None
    outside_school: bool
    shared_with_parents: bool
    created_at: datetime
    goals: tuple[tuple[int, str], ...]  # (goal id, goal text)
    files: tuple[EvidenceFileView, ...]
    feedback: tuple[FeedbackView, ...]


@dataclass(frozen=True)
class EvidencePage:
    items: tuple[EvidenceView, ...]
    total: int


def _filtered(pupil_id: int, goal_id: int | None) -> Select[int]:
    query = select(Evidence.id).where(Evidence.pupil_id == pupil_id)
    if goal_id is not None:
        query = query.where(
            exists().where(EvidenceGoal.evidence_id == Evidence.id, EvidenceGoal.goal_id == goal_id)
        )
    return query


async def evidence_page(
    session: AsyncSession, *, pupil_id: int, goal_id: int | None = None, offset: int, limit: int
) -> EvidencePage:
    """The pupil's evidence, newest first (optionally only that of one goal)."""
    query = _filtered(pupil_id, goal_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    ids = (
        await session.scalars(
            query.order_by(Evidence.created_at.desc(), Evidence.id.desc())
            .offset(max(offset, 0))
            .limit(limit)
        )
    ).all()
    items = [await _view(session, evidence_id) for evidence_id in ids]
    return EvidencePage(items=tuple(item for item in items if item is not None), total=total)


async def evidence_of(
    session: AsyncSession, *, pupil_id: int, evidence_id: int
) -> EvidenceView | None:
    """One item of this pupil's portfolio; None when it is not theirs (or gone)."""
    owner = await session.scalar(select(Evidence.pupil_id).where(Evidence.id == evidence_id))
    if owner != pupil_id:
        return None
    return await _view(session, evidence_id)


async def _view(session: AsyncSession, evidence_id: int) -> EvidenceView | None:
    evidence = await session.get(Evidence, evidence_id, populate_existing=True)
    if evidence is None:
        return None
    goals = (
        await session.execute(
            select(Goal.id, Goal.text)
            .join(EvidenceGoal, EvidenceGoal.goal_id == Goal.id)
            .where(EvidenceGoal.evidence_id == evidence_id)
            .order_by(Goal.position, Goal.id)
        )
    ).all()
    files = (
        await session.execute(
            select(EvidenceFile, MediaFile)
            .join(MediaFile, MediaFile.id == EvidenceFile.media_file_id)
            .where(EvidenceFile.evidence_id == evidence_id)
            .order_by(EvidenceFile.position, EvidenceFile.id)
        )
    ).all()
    feedback = (
        await session.scalars(
            select(Feedback)
            .where(Feedback.evidence_id == evidence_id)
            .order_by(Feedback.created_at, Feedback.id)
        )
    ).all()
    return EvidenceView(
        id=evidence.id,
        kind=evidence.kind,
        caption=evidence.caption,
        outside_school=evidence.outside_school,
        shared_with_parents=evidence.shared_with_parents,
        created_at=evidence.created_at,
        goals=tuple((goal_id, text) for goal_id, text in goals),
        files=tuple(
            EvidenceFileView(
                media_file_id=row.media_file_id,
                thumbnail_file_id=row.thumbnail_file_id,
                kind=media.kind,
                mime_type=media.mime_type,
                sha256=media.sha256,
                original_name=row.original_name,
            )
            for row, media in files
        ),
        feedback=tuple(FeedbackView(f.top, f.tip, f.author_role) for f in feedback),
    )


async def _own(session: AsyncSession, *, pupil_id: int, evidence_id: int) -> Evidence | None:
    evidence = await session.get(Evidence, evidence_id)
    return evidence if evidence is not None and evidence.pupil_id == pupil_id else None


async def set_sharing(
    session: AsyncSession, *, pupil_id: int, evidence_id: int, shared: bool
) -> bool:
    """Whether parents may see it; False when the item is not this pupil's."""
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return False
    evidence.shared_with_parents = shared
    await session.flush()
    return True


async def set_caption(
    session: AsyncSession, *, pupil_id: int, evidence_id: int, caption: str | None
) -> bool:
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return False
    evidence.caption = caption
    await session.flush()
    return True


async def set_goals(
    session: AsyncSession, *, pupil_id: int, evidence_id: int, goal_ids: Sequence[int]
) -> bool:
    """Replace the goals. Ids that are neither the pupil's live goals nor already on the item
    are left out (a goal of an earlier period may stay, never be added)."""
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return False
    linked = set(
        (
            await session.scalars(
                select(EvidenceGoal.goal_id).where(EvidenceGoal.evidence_id == evidence_id)
            )
        ).all()
    )
    allowed = linked | await own_goal_ids(session, pupil_id=pupil_id, goal_ids=goal_ids)
    await session.execute(delete(EvidenceGoal).where(EvidenceGoal.evidence_id == evidence_id))
    for goal_id in sorted(allowed & set(goal_ids)):
        session.add(EvidenceGoal(evidence_id=evidence_id, goal_id=goal_id))
    await session.flush()
    return True


async def delete_evidence(
    session: AsyncSession, *, pupil_id: int, evidence_id: int
) -> list[int] | None:
    """Remove an item with its file and goal rows; the media ids it used, for the caller to
    pass to `delete_media_if_unused` (another item may share a file). None if not theirs."""
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return None
    media_ids: list[int] = []
    for main, thumbnail in (
        await session.execute(
            select(EvidenceFile.media_file_id, EvidenceFile.thumbnail_file_id).where(
                EvidenceFile.evidence_id == evidence_id
            )
        )
    ).all():
        media_ids.append(main)
        if thumbnail is not None:
            media_ids.append(thumbnail)
    # Explicit deletes, so no reference is left when the caller asks
    # `delete_media_if_unused`, whatever the database's cascade settings.
    await session.execute(delete(EvidenceFile).where(EvidenceFile.evidence_id == evidence_id))
    await session.execute(delete(EvidenceGoal).where(EvidenceGoal.evidence_id == evidence_id))
    await session.execute(delete(Feedback).where(Feedback.evidence_id == evidence_id))
    await session.delete(evidence)
    await session.flush()
    return list(dict.fromkeys(media_ids))


async def evidence_goals(session: AsyncSession, *, pupil_id: int) -> list[tuple[int, str]]:
    """(goal id, text) of the goals the pupil's evidence is tagged with: the filter's row."""
    rows = (
        await session.execute(
            select(Goal.id, Goal.text)
            .where(
                Goal.id.in_(
                    select(EvidenceGoal.goal_id)
                    .join(Evidence, Evidence.id == EvidenceGoal.evidence_id)
                    .where(Evidence.pupil_id == pupil_id)
                )
            )
            .order_by(Goal.position, Goal.id)
        )
    ).all()
    return [(goal_id, text) for goal_id, text in rows]


async def evidence_position(session: AsyncSession, *, pupil_id: int, evidence_id: int) -> int:
    """How many of the pupil's items are newer: the offset that shows this one (0 if the id
    is not theirs, so a forged id just opens the newest)."""
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return 0
    newer = select(Evidence.id).where(
        Evidence.pupil_id == pupil_id,
        (Evidence.created_at > evidence.created_at)
        | ((Evidence.created_at == evidence.created_at) & (Evidence.id > evidence.id)),
    )
    return await session.scalar(select(func.count()).select_from(newer.subquery())) or 0
