"""Evidence in storage: the pupil's pages, changes only by the owner, and deleting with files."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from media.store import MediaStore, delete_media_if_unused
from storage.evidence import (
    NewEvidence,
    create_evidence,
    delete_evidence,
    evidence_goals,
    evidence_of,
    evidence_page,
    evidence_position,
    set_caption,
    set_goals,
    set_sharing,
)
from storage.models import (
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    MediaFile,
    Role,
)
from tests.factories import build_curriculum, build_school, give_goal
from tests.images import small_jpeg


async def setup(session_factory, tmp_path):
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school)
    sam, noor = school.persons["P1"], school.persons["P2"]
    for code in ("1.1a", "RN"):
        await give_goal(
            session_factory,
            pupil_id=sam,
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
        )
    store = MediaStore(tmp_path / "media")
    return school, curriculum, sam, noor, store


async def add(session_factory, school, pupil_id, store, colour, goal_ids=()) -> int:
    image = await store.store_image(small_jpeg((100, 80), colour))
    async with session_factory() as session, session.begin():
        evidence = await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=pupil_id, kind=EvidenceKind.PHOTO, files=[image], goal_ids=goal_ids
            ),
        )
        return evidence.id


async def test_pages_are_newest_first_and_filter_by_goal(session_factory, tmp_path):
    school, curriculum, sam, noor, store = await setup(session_factory, tmp_path)
    forces, own = curriculum.goals["1.1a"], curriculum.goals["RN"]
    first = await add(session_factory, school, sam, store, "red", [forces])
    second = await add(session_factory, school, sam, store, "green", [own])
    third = await add(session_factory, school, sam, store, "blue", [forces, own])
    await add(session_factory, school, noor, store, "black")
    async with session_factory() as session, session.begin():
        # Distinct times, so the order does not rest on the ids alone.
        for offset, evidence_id in enumerate((first, second, third)):
            row = await session.get(Evidence, evidence_id)
            assert row is not None
            row.created_at = row.created_at + timedelta(minutes=offset)
        session.add(
            Feedback(
                author_role=Role.TEACHER,
                target=FeedbackTarget.EVIDENCE,
                pupil_id=sam,
                evidence_id=third,
                top="Mooi netjes",
            )
        )
    async with session_factory() as session:
        page = await evidence_page(session, pupil_id=sam, offset=0, limit=2)
        assert page.total == 3 and [item.id for item in page.items] == [third, second]
        assert page.items[0].feedback[0].top == "Mooi netjes"
        assert page.items[0].files[0].thumbnail_file_id is not None
        rest = await evidence_page(session, pupil_id=sam, offset=2, limit=2)
        assert [item.id for item in rest.items] == [first]
        only_forces = await evidence_page(session, pupil_id=sam, goal_id=forces, offset=0, limit=9)
        assert [item.id for item in only_forces.items] == [third, first]
        assert {goal_id for goal_id, _text in await evidence_goals(session, pupil_id=sam)} == {
            forces,
            own,
        }
        assert await evidence_position(session, pupil_id=sam, evidence_id=first) == 2
        assert await evidence_position(session, pupil_id=noor, evidence_id=first) == 0


async def test_only_the_owner_sees_or_changes_an_item(session_factory, tmp_path):
    school, curriculum, sam, noor, store = await setup(session_factory, tmp_path)
    evidence_id = await add(session_factory, school, sam, store, "red")
    async with session_factory() as session, session.begin():
        assert await evidence_of(session, pupil_id=noor, evidence_id=evidence_id) is None
        assert not await set_sharing(session, pupil_id=noor, evidence_id=evidence_id, shared=True)
        assert not await set_caption(session, pupil_id=noor, evidence_id=evidence_id, caption="x")
        assert not await set_goals(session, pupil_id=noor, evidence_id=evidence_id, goal_ids=[])
        assert await delete_evidence(session, pupil_id=noor, evidence_id=evidence_id) is None
    async with session_factory() as session, session.begin():
        assert await set_sharing(session, pupil_id=sam, evidence_id=evidence_id, shared=True)
        assert await set_caption(session, pupil_id=sam, evidence_id=evidence_id, caption="Veer")
        # A goal that is not Sam's is never linked.
        foreign = curriculum.goals["1.5a"]
        goal_ids = [curriculum.goals["1.1a"], foreign]
        assert await set_goals(session, pupil_id=sam, evidence_id=evidence_id, goal_ids=goal_ids)
    async with session_factory() as session:
        view = await evidence_of(session, pupil_id=sam, evidence_id=evidence_id)
        assert view is not None
        assert view.shared_with_parents and view.caption == "Veer"
        assert [goal_id for goal_id, _text in view.goals] == [curriculum.goals["1.1a"]]


async def test_deleting_removes_rows_and_unused_files(session_factory, tmp_path):
    school, _curriculum, sam, _noor, store = await setup(session_factory, tmp_path)
    kept = await add(session_factory, school, sam, store, "red")
    # The same picture twice: the second item shares the first one's files.
    shared_copy = await add(session_factory, school, sam, store, "red")
    gone = await add(session_factory, school, sam, store, "blue")
    files_before = {path for path in store.root.rglob("*") if path.is_file()}

    for evidence_id in (gone, shared_copy):
        async with session_factory() as session, session.begin():
            media_ids = await delete_evidence(session, pupil_id=sam, evidence_id=evidence_id)
            assert media_ids is not None and len(media_ids) == 2
            for media_id in media_ids:
                await delete_media_if_unused(session, media_file_id=media_id, media_dir=store.root)

    files_after = {path for path in store.root.rglob("*") if path.is_file()}
    assert len(files_before - files_after) == 2  # only the blue picture and its thumbnail
    async with session_factory() as session:
        assert [e.id for e in (await session.scalars(select(Evidence))).all()] == [kept]
        assert await session.scalar(select(func.count()).select_from(EvidenceFile)) == 1
        assert await session.scalar(select(func.count()).select_from(EvidenceGoal)) == 0
        assert await session.scalar(select(func.count()).select_from(MediaFile)) == 2
