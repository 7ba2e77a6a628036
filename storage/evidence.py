"""Evidence (bewijsstukken): pieces of work with their files and goals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.media_files import (
    StoredFile,
    StoredImage,
    StoredVideo,
    clean_file_name,
    record_media,
)
from storage.models import (
    Approval,
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    Goal,
    MediaFile,
    MediaKind,
    Person,
    Role,
    School,
)
from storage.policy import (
    is_parent_of,
    is_teacher,
    pupils_taught_by,
    teaches_pupil,
    work_visible_to_parents_clause,
)
from storage.reflections import own_goal_ids


def approval_on_share(school: School | None, shared: bool) -> Approval:
    """The approval an item gets when the pupil (un)shares it: with the school's setting on,
    shared work waits for a teacher; unshared work needs nothing."""
    if shared and school is not None and school.shared_work_needs_approval:
        return Approval.PENDING
    return Approval.NOT_NEEDED


@dataclass(frozen=True)
class NewEvidence:
    pupil_id: int
    kind: EvidenceKind
    files: Sequence[StoredImage | StoredVideo | StoredFile]
    goal_ids: Sequence[int] = ()
    caption: str | None = None
    outside_school: bool = False
    shared_with_parents: bool | None = None  # None: the school's default
    media_group_id: str | None = None
    reflection_id: int | None = None
    original_names: Sequence[str | None] = ()


async def create_evidence(session: AsyncSession, *, school_id: int, new: NewEvidence) -> Evidence:
    """One evidence item with its files (rows for files already written to the media store)
    and goals; goals that are not the pupil's own are left out, never linked. A file's
    original name is kept clean (`clean_file_name`), with the extension of the stored file."""
    school = await session.get(School, school_id)
    shared = new.shared_with_parents
    if shared is None:
        shared = bool(school and school.evidence_shared_by_default)
    evidence = Evidence(
        pupil_id=new.pupil_id,
        kind=new.kind,
        caption=new.caption,
        outside_school=new.outside_school,
        shared_with_parents=shared,
        approval=approval_on_share(school, shared),
        media_group_id=new.media_group_id,
        reflection_id=new.reflection_id,
    )
    session.add(evidence)
    await session.flush()
    for position, stored in enumerate(new.files):
        thumbnail: StoredFile | None
        if isinstance(stored, StoredImage):
            kept, thumbnail = stored.image, stored.thumbnail
        elif isinstance(stored, StoredVideo):
            kept, thumbnail = stored.video, stored.thumbnail
        else:
            kept, thumbnail = stored, None
        main = await record_media(session, stored=kept)
        thumbnail_id = (
            (await record_media(session, stored=thumbnail)).id if thumbnail is not None else None
        )
        name = clean_file_name(
            new.original_names[position] if position < len(new.original_names) else None,
            # The stored file's path ends in the extension of what it is (`media.store`).
            kept.relative_path.rsplit(".", 1)[-1],
        )
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
    width: int | None = None
    height: int | None = None
    duration_seconds: int | None = None


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
    approval: Approval
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
        approval=evidence.approval,
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
                width=media.width,
                height=media.height,
                duration_seconds=media.duration_seconds,
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
    """Whether parents may see it; False when the item is not this pupil's. Sharing asks for
    a teacher's approval when the school wants that; un-sharing forgets any decision, so
    sharing again asks again."""
    evidence = await _own(session, pupil_id=pupil_id, evidence_id=evidence_id)
    if evidence is None:
        return False
    if shared != evidence.shared_with_parents:
        school = await session.scalar(
            select(School).join(Person, Person.school_id == School.id).where(Person.id == pupil_id)
        )
        evidence.shared_with_parents = shared
        evidence.approval = approval_on_share(school, shared)
        evidence.approved_by_id = None
        evidence.approval_decided_at = None
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


# --- the teacher's review (/werk): tops & tips and approval ---------------------------------


class EvidenceRefusedError(Exception):
    """The teacher may not act on this item (not their pupil's, gone, or not waiting)."""


@dataclass(frozen=True)
class ThumbnailRef:
    sha256: str
    mime_type: str


@dataclass(frozen=True)
class ReviewItem:
    """One item as a teacher sees it in /werk."""

    item: EvidenceView
    pupil_id: int
    pupil_name: str
    thumbnail: ThumbnailRef | None  # the first file's, for the card


@dataclass(frozen=True)
class ReviewPage:
    item: ReviewItem | None
    offset: int  # of the item shown (a page past the end shows the last one)
    total: int
    pending: int


def _waiting() -> ColumnElement[bool]:
    return and_(Evidence.approval == Approval.PENDING, Evidence.shared_with_parents.is_(True))


def _review_order() -> tuple[ColumnElement[Any], ...]:
    """Work waiting for approval first, then newest first."""
    return (case((_waiting(), 0), else_=1), Evidence.created_at.desc(), Evidence.id.desc())


async def review_page(session: AsyncSession, *, teacher_id: int, offset: int) -> ReviewPage:
    """The work of the teacher's pupils, one item per page: what waits for approval first
    (oldest first, it has waited longest), then the rest newest first."""
    if not await is_teacher(session, teacher_id):
        return ReviewPage(None, 0, 0, 0)
    mine = Evidence.pupil_id.in_(pupils_taught_by(teacher_id))
    total = await session.scalar(select(func.count(Evidence.id)).where(mine)) or 0
    pending = await session.scalar(select(func.count(Evidence.id)).where(mine, _waiting())) or 0
    if total == 0:
        return ReviewPage(None, 0, 0, 0)
    offset = min(max(offset, 0), total - 1)
    evidence_id = await session.scalar(
        select(Evidence.id).where(mine).order_by(*_review_order()).offset(offset).limit(1)
    )
    item = await _review_item(session, evidence_id) if evidence_id is not None else None
    return ReviewPage(item, offset, total, pending)


async def _review_item(session: AsyncSession, evidence_id: int) -> ReviewItem | None:
    view = await _view(session, evidence_id)
    if view is None:
        return None
    evidence = await session.get(Evidence, evidence_id)
    assert evidence is not None
    pupil = await session.get(Person, evidence.pupil_id)
    thumbnail = None
    first = view.files[0] if view.files else None
    if first is not None:
        media = (
            await session.get(MediaFile, first.thumbnail_file_id)
            if first.thumbnail_file_id is not None
            else None
        )
        if media is not None:
            thumbnail = ThumbnailRef(media.sha256, media.mime_type)
        elif first.kind is MediaKind.IMAGE:
            thumbnail = ThumbnailRef(first.sha256, first.mime_type)
    return ReviewItem(view, evidence.pupil_id, pupil.display_name if pupil else "", thumbnail)


async def review_item(
    session: AsyncSession, *, teacher_id: int, evidence_id: int
) -> ReviewItem | None:
    """One item for a teacher; None when it is not the work of one of their pupils."""
    pupil_id = await session.scalar(select(Evidence.pupil_id).where(Evidence.id == evidence_id))
    if pupil_id is None or not await teaches_pupil(
        session, teacher_id=teacher_id, pupil_id=pupil_id
    ):
        return None
    return await _review_item(session, evidence_id)


async def review_position(session: AsyncSession, *, teacher_id: int, evidence_id: int) -> int:
    """The page of an item in the teacher's review (0 when it is not there)."""
    # Reading the ordered ids of one class is cheap, and cannot disagree with the ordering.
    if not await is_teacher(session, teacher_id):
        return 0
    mine = Evidence.pupil_id.in_(pupils_taught_by(teacher_id))
    ids = (await session.scalars(select(Evidence.id).where(mine).order_by(*_review_order()))).all()
    return ids.index(evidence_id) if evidence_id in ids else 0


async def decide_approval(
    session: AsyncSession, *, teacher_id: int, evidence_id: int, approve: bool, now: datetime
) -> Evidence:
    """A teacher lets shared work through to parents, or keeps it at school. Only work that
    waits, of the teacher's own pupils; anything else raises and changes nothing."""
    evidence = await session.get(Evidence, evidence_id)
    if evidence is None or not await teaches_pupil(
        session, teacher_id=teacher_id, pupil_id=evidence.pupil_id
    ):
        raise EvidenceRefusedError("not their pupil's")
    if evidence.approval is not Approval.PENDING or not evidence.shared_with_parents:
        raise EvidenceRefusedError("not waiting")
    evidence.approval = Approval.APPROVED if approve else Approval.PRIVATE
    evidence.approved_by_id = teacher_id
    evidence.approval_decided_at = now
    await session.flush()
    return evidence


MAX_TEACHER_FEEDBACK = 500


async def give_teacher_feedback(
    session: AsyncSession,
    *,
    teacher_id: int,
    evidence_id: int,
    top: str | None,
    tip: str | None,
) -> Feedback:
    """A teacher's top and/or tip on a piece of work of one of their pupils."""
    top = (top or "").strip()[:MAX_TEACHER_FEEDBACK] or None
    tip = (tip or "").strip()[:MAX_TEACHER_FEEDBACK] or None
    if top is None and tip is None:
        raise EvidenceRefusedError("empty")
    evidence = await session.get(Evidence, evidence_id)
    if evidence is None or not await teaches_pupil(
        session, teacher_id=teacher_id, pupil_id=evidence.pupil_id
    ):
        raise EvidenceRefusedError("not their pupil's")
    feedback = Feedback(
        author_id=teacher_id,
        author_role=Role.TEACHER,
        target=FeedbackTarget.EVIDENCE,
        pupil_id=evidence.pupil_id,
        evidence_id=evidence.id,
        top=top,
        tip=tip,
    )
    session.add(feedback)
    await session.flush()
    return feedback


@dataclass(frozen=True)
class ReviewCounts:
    new: int  # items of the teacher's pupils since the moment asked about
    pending: int  # shared items waiting for approval, whenever they came


async def review_counts(session: AsyncSession, *, teacher_id: int, since: datetime) -> ReviewCounts:
    """What the teacher's daily digest tells."""
    if not await is_teacher(session, teacher_id):
        return ReviewCounts(0, 0)
    mine = Evidence.pupil_id.in_(pupils_taught_by(teacher_id))
    new = (
        await session.scalar(
            select(func.count(Evidence.id)).where(mine, Evidence.created_at >= since)
        )
        or 0
    )
    pending = await session.scalar(select(func.count(Evidence.id)).where(mine, _waiting())) or 0
    return ReviewCounts(new, pending)


# --- videos a parent may see -----------------------------------------------------------------

# A summary carries at most this many videos (each may be up to 20 MB).
MAX_PARENT_VIDEOS = 3


@dataclass(frozen=True)
class SharedVideo:
    evidence_id: int
    file: EvidenceFileView
    caption: str | None
    goals: tuple[str, ...]


async def videos_for_parent(
    session: AsyncSession,
    *,
    parent_id: int,
    pupil_id: int,
    since: datetime,
    until: datetime,
    limit: int = MAX_PARENT_VIDEOS,
) -> list[SharedVideo]:
    """The videos a child shared between `since` and `until`, oldest first, for a parent of
    that child; nobody else gets any, and only what the parents' rule lets through."""
    if not await is_parent_of(session, parent_id=parent_id, pupil_id=pupil_id):
        return []
    ids = (
        await session.scalars(
            select(Evidence.id)
            .where(
                Evidence.pupil_id == pupil_id,
                Evidence.kind == EvidenceKind.VIDEO,
                work_visible_to_parents_clause(),
                Evidence.created_at >= since,
                Evidence.created_at < until,
            )
            .order_by(Evidence.created_at, Evidence.id)
        )
    ).all()
    videos: list[SharedVideo] = []
    for evidence_id in ids:
        view = await _view(session, evidence_id)
        if view is None:
            continue
        for file in view.files:
            if file.kind is MediaKind.VIDEO and len(videos) < limit:
                goals = tuple(text for _id, text in view.goals)
                videos.append(SharedVideo(view.id, file, view.caption, goals))
    return videos
