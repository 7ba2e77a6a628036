"""Shared videos for a parent's summary: the parents' rule (shared, and approved where the
school asks for it) and only the parent's own child; the kept file as the pupil sent it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from media.store import MediaStore
from storage.evidence import NewEvidence, create_evidence, decide_approval, videos_for_parent
from storage.media_files import StoredVideo
from storage.models import EvidenceKind, MediaKind, School
from tests.factories import build_school
from tests.images import small_jpeg
from tests.videos import phone_mp4


async def add_video(
    session_factory, school, store: MediaStore, *, caption: str, shared: bool, seconds: int = 7
):
    video = await store.store_file(
        phone_mp4(seconds=seconds), kind=MediaKind.VIDEO, declared_mime="video/mp4"
    )
    thumbnail = await store.store_thumbnail(small_jpeg((640, 360)))
    async with session_factory() as session, session.begin():
        evidence = await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=school.persons["P1"],
                kind=EvidenceKind.VIDEO,
                files=[StoredVideo(video, thumbnail)],
                caption=caption,
                shared_with_parents=shared,
            ),
        )
        return evidence.id


async def test_a_parent_gets_only_the_shared_videos_of_their_own_child(session_factory, tmp_path):
    school = await build_school(session_factory)
    store = MediaStore(tmp_path / "media")
    await add_video(session_factory, school, store, caption="Gedeeld", shared=True)
    await add_video(
        session_factory, school, store, caption="Alleen school", shared=False, seconds=9
    )
    now = datetime.now(UTC)
    window = {"since": now - timedelta(days=1), "until": now + timedelta(minutes=1)}

    async with session_factory() as session:
        mine = await videos_for_parent(
            session, parent_id=school.persons["O1"], pupil_id=school.persons["P1"], **window
        )
        stranger = await videos_for_parent(
            session, parent_id=school.persons["X2"], pupil_id=school.persons["P1"], **window
        )
        teacher = await videos_for_parent(
            session, parent_id=school.persons["T1"], pupil_id=school.persons["P1"], **window
        )
        last_week = await videos_for_parent(
            session,
            parent_id=school.persons["O1"],
            pupil_id=school.persons["P1"],
            since=now - timedelta(days=14),
            until=now - timedelta(days=7),
        )
    assert [video.caption for video in mine] == ["Gedeeld"]
    assert mine[0].file.kind is MediaKind.VIDEO and mine[0].file.duration_seconds == 7
    assert stranger == [] and teacher == [] and last_week == []


async def test_a_video_waiting_for_approval_reaches_the_parent_only_once_approved(
    session_factory, tmp_path
):
    school = await build_school(session_factory)
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.shared_work_needs_approval = True
    store = MediaStore(tmp_path / "media")
    evidence_id = await add_video(session_factory, school, store, caption="Proef", shared=True)
    now = datetime.now(UTC)
    ask = {
        "parent_id": school.persons["O1"],
        "pupil_id": school.persons["P1"],
        "since": now - timedelta(days=1),
        "until": now + timedelta(minutes=1),
    }
    async with session_factory() as session:
        assert await videos_for_parent(session, **ask) == []
    async with session_factory() as session, session.begin():
        await decide_approval(
            session, teacher_id=school.persons["T1"], evidence_id=evidence_id, approve=True, now=now
        )
    async with session_factory() as session:
        assert [video.evidence_id for video in await videos_for_parent(session, **ask)] == [
            evidence_id
        ]
