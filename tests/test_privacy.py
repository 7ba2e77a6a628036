"""The rights of the data subject: the export zip, erasure, retention and the audit log.

A demo pupil (Sam) gets reflections, evidence with real images through the media pipeline,
notes (private, shareable, one also about Noor), a talk, a plan, tops & tips, reminders, a
Telegram account and a teacher's dialogue about him. Then the export is opened like a person
would (the HTML parsed, every image looked up, the JSON compared with the rows), and the
erasure is checked table by table, file by file, and for his name in every text column.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, String, Text, func, select

from bot.cli import main
from language.i18n import load_i18n
from media.store import MediaStore
from services.erasure import erase_pupil, external_id_hash
from services.export import export_bytes, export_locale
from services.retention import apply_retention, months_before
from storage.audit import ACTION_ERASE, ACTION_EXPORT, latest_audit, person_ref, record_export
from storage.db import create_engine, create_sessionmaker
from storage.erasure import redact_name
from storage.evidence import NewEvidence, create_evidence
from storage.invites import redeem_invite
from storage.learning_plans import PlanStep, create_plan
from storage.models import (
    Account,
    AccountPerson,
    Assessment,
    AuditEvent,
    Base,
    ChosenBy,
    Evidence,
    EvidenceFile,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    FsmRecord,
    Guardianship,
    MediaFile,
    Observation,
    ObservationPupil,
    Person,
    PupilGoal,
    Reflection,
    Reminder,
    Role,
    School,
    Talk,
    TalkKind,
)
from storage.observations import create_observation
from storage.pupil_lookup import PrivacyError
from storage.reflections import ReflectionAnswers, save_reflection
from storage.reminders import schedule_reminder
from storage.subject_data import collect_pupil_data
from storage.talks import plan_talk
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool, build_curriculum, build_school, give_goal
from tests.images import small_jpeg

PRIVATE_NOTE = "Sam lijkt moe; thuis is het onrustig"
SHAREABLE_NOTE = "Mooie proef met de veer gedaan"
SHARED_NOTE = "Sam de Vries en Noor bouwden samen een toren"
TRICKY_CAPTION = '<script>alert("x")</script> & <b>vet</b>'


@dataclass
class Portfolio:
    school: DemoSchool
    sam: int
    noor: int
    media_dir: Path
    private_note: int
    shareable_note: int
    shared_note: int
    shared_image_sha: str
    sam_only_shas: list[str]


async def build_portfolio(session_factory, tmp_path: Path) -> Portfolio:
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school)
    sam, noor = school.persons["P1"], school.persons["P2"]
    teacher, parent = school.persons["T1"], school.persons["O1"]
    for pupil in (sam, noor):
        for code in ("1.1a", "SW"):
            await give_goal(
                session_factory,
                pupil_id=pupil,
                period_id=curriculum.period_id,
                goal_id=curriculum.goals[code],
            )
    media_dir = tmp_path / "media"
    store = MediaStore(media_dir)
    red = await store.store_image(small_jpeg((120, 90), "red"))
    blue = await store.store_image(small_jpeg((90, 120), "blue"))
    green = await store.store_image(small_jpeg((100, 100), "green"))  # Sam's and Noor's
    note_photo = await store.store_image(small_jpeg((80, 80), "purple"))
    now = datetime.now(UTC)
    today = now.date()
    async with session_factory() as session, session.begin():
        forces = curriculum.goals["1.1a"]
        for offset, text in ((2, "Ik heb een veer gemeten <b>echt</b>"), (1, None)):
            await save_reflection(
                session,
                pupil_id=sam,
                on_date=today - timedelta(days=offset),
                answers=ReflectionAnswers(
                    goal_ids=(forces,),
                    other_work=None,
                    how_it_went=3,
                    effort=4,
                    wellbeing=2,
                    text=text,
                    next_step="Verder met de slinger",
                ),
            )
        await save_reflection(
            session,
            pupil_id=noor,
            on_date=today,
            answers=ReflectionAnswers(
                goal_ids=(), other_work=None, how_it_went=4, effort=3, wellbeing=4
            ),
        )
        first = await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=sam,
                kind=EvidenceKind.PHOTO,
                files=[red, green],
                goal_ids=[forces],
                caption="Mijn veer",
                shared_with_parents=True,
            ),
        )
        await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=sam,
                kind=EvidenceKind.PHOTO,
                files=[blue],
                caption=TRICKY_CAPTION,
                shared_with_parents=False,
                outside_school=True,
            ),
        )
        await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(pupil_id=noor, kind=EvidenceKind.PHOTO, files=[green]),
        )
        session.add(
            Feedback(
                author_id=parent,
                author_role=Role.PARENT,
                target=FeedbackTarget.EVIDENCE,
                pupil_id=sam,
                evidence_id=first.id,
                top="Wat netjes!",
            )
        )
        session.add(
            Assessment(
                pupil_id=sam,
                goal_id=forces,
                level=3,
                by_role=ChosenBy.TEACHER,
                assessor_id=teacher,
                note="Gaat de goede kant op",
            )
        )
        private = await create_observation(
            session, author_id=teacher, pupil_ids=[sam], text=PRIVATE_NOTE, is_private=True
        )
        from storage.media_files import record_media

        photo_row = await record_media(session, stored=note_photo.image)
        shareable = await create_observation(
            session,
            author_id=teacher,
            pupil_ids=[sam],
            text=SHAREABLE_NOTE + " #proef",
            is_private=False,
            photo_file_id=photo_row.id,
        )
        shared = await create_observation(
            session, author_id=teacher, pupil_ids=[sam, noor], text=SHARED_NOTE, is_private=False
        )
        sam_goal = await session.scalar(
            select(PupilGoal.id).where(PupilGoal.pupil_id == sam, PupilGoal.goal_id == forces)
        )
        await create_plan(
            session,
            pupil_id=sam,
            pupil_goal_id=sam_goal,
            idea="Een brug bouwen",
            motivation="Ik hou van bouwen",
            steps=[PlanStep(what="Tekening maken", who="Juf Anouk", when="maandag")],
        )
        talk = await plan_talk(
            session,
            organiser_id=teacher,
            pupil_id=sam,
            kind=TalkKind.TRIPARTITE,
            scheduled_at=now + timedelta(days=3),
            place="Lokaal 4",
            now=now,
        )
        talk_row = await session.get(Talk, talk.id)
        assert talk_row is not None
        talk_row.preparation = {"proud": "Mijn brug", "went_well": None}
        talk_row.agreements = "Elke week een proefje"
        await schedule_reminder(
            session,
            kind="parent_summary",
            person_id=parent,
            due_at=now + timedelta(days=1),
            idempotency_key=f"parent_summary:{parent}:{sam}:test",
            payload={"pupil_id": sam, "week_start": today.isoformat()},
        )
        await schedule_reminder(
            session,
            kind="parent_summary",
            person_id=school.persons["X2"],
            due_at=now + timedelta(days=1),
            idempotency_key=f"parent_summary:x2:{noor}:test",
            payload={"pupil_id": noor, "week_start": today.isoformat()},
        )
        # A teacher halfway through planning a talk about Sam; and someone else's dialogue.
        session.add(
            FsmRecord(
                key="fsm:4242:700:700:default",
                state="TalkPlan:kind",
                data={"pupil_id": sam, "pupil_name": "Sam de Vries"},
            )
        )
        session.add(FsmRecord(key="fsm:4242:701:701:default", state="X:y", data={"page": 1}))
        private_id, shareable_id, shared_id = private.id, shareable.id, shared.id
    for telegram_user_id, key in ((501, "P1"), (502, "O1"), (503, "P2")):
        async with session_factory() as session, session.begin():
            await redeem_invite(
                session,
                telegram_user_id=telegram_user_id,
                typed_code=school.codes[key],
                secret=INVITE_SECRET,
            )
    return Portfolio(
        school=school,
        sam=sam,
        noor=noor,
        media_dir=media_dir,
        private_note=private_id,
        shareable_note=shareable_id,
        shared_note=shared_id,
        shared_image_sha=green.image.sha256,
        sam_only_shas=[
            red.image.sha256,
            red.thumbnail.sha256,
            blue.image.sha256,
            blue.thumbnail.sha256,
            note_photo.image.sha256,
        ],
    )


class PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.sources: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag in ("img", "audio") and values.get("src"):
            self.sources.append(str(values["src"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag not in ("meta", "img", "br", "link", "input"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_zip(data: bytes) -> tuple[zipfile.ZipFile, PageReader, dict[str, Any]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    page = PageReader()
    page.feed(archive.read("index.html").decode("utf-8"))
    page.close()
    assert page.open == []
    return archive, page, json.loads(archive.read("data.json"))


async def exported(session_factory, portfolio: Portfolio, *, private: bool = False) -> bytes:
    i18n = load_i18n()
    async with session_factory() as session:
        data = await collect_pupil_data(
            session, pupil_id=portfolio.sam, include_private_notes=private
        )
    with i18n.context(), i18n.use_locale(export_locale(data)):
        return await export_bytes(data, media_dir=portfolio.media_dir)


async def test_the_export_zip_opens_and_matches_the_database(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)

    archive, page, data = read_zip(await exported(session_factory, portfolio))

    # The HTML: one page, no scripts, nothing fetched from elsewhere, every image inside.
    html = archive.read("index.html").decode("utf-8")
    assert "script" not in page.tags and "link" not in page.tags
    assert page.sources and all(not src.startswith(("http", "//", "/")) for src in page.sources)
    names = set(archive.namelist())
    for src in page.sources + [link for link in page.links if not link.startswith("#")]:
        assert src in names, src
    text = " ".join(page.text)
    assert "Portfolio van Sam de Vries" in text
    assert TRICKY_CAPTION in text  # shown as typed, as text ...
    assert "<script>" not in html  # ... never as markup
    assert "Ik heb een veer gemeten <b>echt</b>" in text
    assert SHAREABLE_NOTE in text and "Noor bouwden samen een toren" in text
    assert "Mijn brug" in text and "Elke week een proefje" in text and "Wat netjes!" in text
    assert PRIVATE_NOTE not in html and PRIVATE_NOTE not in json.dumps(data, ensure_ascii=False)
    assert "Noor Jansen" not in html  # another pupil's name is not Sam's data

    # The images are the stored, metadata-free files, byte for byte.
    async with session_factory() as session:
        for item in data["evidence"]:
            for file in item["files"]:
                stored = (portfolio.media_dir / file["sha256"][:2] / file["sha256"][2:4]).glob(
                    f"{file['sha256']}.*"
                )
                assert archive.read(file["path"]) == next(stored).read_bytes()

        # The JSON against the rows.
        assert data["format"] == "leerling-portfolio-bot export"
        assert data["pupil"]["id"] == portfolio.sam and data["pupil"]["external_id"] == "P1"
        assert data["pupil"]["parents"] == ["Marieke de Vries"]
        reflections = (
            await session.scalars(
                select(Reflection)
                .where(Reflection.pupil_id == portfolio.sam)
                .order_by(Reflection.on_date)
            )
        ).all()
        assert [(r["id"], r["text"], r["effort"]) for r in data["reflections"]] == [
            (r.id, r.text, r.effort) for r in reflections
        ]
        evidence = (
            await session.scalars(
                select(Evidence).where(Evidence.pupil_id == portfolio.sam).order_by(Evidence.id)
            )
        ).all()
        assert [(e["id"], e["caption"], e["shared_with_parents"]) for e in data["evidence"]] == [
            (e.id, e.caption, e.shared_with_parents) for e in evidence
        ]
        for item in data["evidence"]:
            shas = (
                await session.scalars(
                    select(MediaFile.sha256)
                    .join(EvidenceFile, EvidenceFile.media_file_id == MediaFile.id)
                    .where(EvidenceFile.evidence_id == item["id"])
                    .order_by(EvidenceFile.position)
                )
            ).all()
            assert [file["sha256"] for file in item["files"]] == list(shas)
        assert {o["id"] for o in data["observations"]} == {
            portfolio.shareable_note,
            portfolio.shared_note,
        }
        goals = (
            await session.scalars(select(PupilGoal.id).where(PupilGoal.pupil_id == portfolio.sam))
        ).all()
        assert sorted(g["id"] for g in data["goals"]) == sorted(goals)
        talk = await session.scalar(select(Talk).where(Talk.pupil_id == portfolio.sam))
        assert talk is not None
        [exported_talk] = data["talks"]
        assert (exported_talk["id"], exported_talk["agreements"]) == (talk.id, talk.agreements)
        assert "Marieke de Vries" in exported_talk["participants"]
        assert [p["idea"] for p in data["learning_plans"]] == ["Een brug bouwen"]
        assert [a["note"] for a in data["assessments"]] == ["Gaat de goede kant op"]
        photo_note = next(o for o in data["observations"] if o["id"] == portfolio.shareable_note)
        assert photo_note["photo"]["path"] in names and photo_note["tags"] == ["proef"]


async def test_private_notes_only_when_asked(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)

    _archive, page, data = read_zip(await exported(session_factory, portfolio, private=True))

    assert PRIVATE_NOTE in " ".join(page.text)
    assert data["include_private_notes"] is True
    assert portfolio.private_note in {o["id"] for o in data["observations"]}


async def test_the_export_speaks_english_for_an_english_pupil(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)
    async with session_factory() as session, session.begin():
        sam = await session.get(Person, portfolio.sam)
        assert sam is not None
        sam.locale = "en"

    archive, page, _data = read_zip(await exported(session_factory, portfolio))

    text = " ".join(page.text)
    assert "Portfolio of Sam de Vries" in text and "Reflections" in text
    assert '<html lang="en">' in archive.read("index.html").decode("utf-8")


async def count_rows(session, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(await session.scalar(query) or 0)


def stored_path(media_dir: Path, sha: str) -> Path:
    [path] = list((media_dir / sha[:2] / sha[2:4]).glob(f"{sha}.*")) or [
        media_dir / sha[:2] / sha[2:4] / f"{sha}.missing"
    ]
    return path


async def test_erasure_removes_rows_files_and_name_and_keeps_the_rest(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)
    sam, noor = portfolio.sam, portfolio.noor
    for sha in [*portfolio.sam_only_shas, portfolio.shared_image_sha]:
        assert stored_path(portfolio.media_dir, sha).exists()
    async with session_factory() as session:
        noor_before = [
            await count_rows(session, model, pupil_id=noor)
            for model in (Reflection, Evidence, PupilGoal, ObservationPupil)
        ]

    async with session_factory() as session, session.begin():
        result = await erase_pupil(
            session, pupil_id=sam, media_dir=portfolio.media_dir, actor_label="cli"
        )

    assert result.counts["reflections"] == 2 and result.counts["evidence"] == 2
    assert result.counts["observations_removed"] == 2
    assert result.counts["observations_unlinked"] == 1
    assert result.counts["reminders"] >= 2  # the talk's and the weekly summary's
    async with session_factory() as session:
        assert await session.get(Person, sam) is None
        for model in (Reflection, Evidence, PupilGoal, Assessment, Feedback, Talk):
            assert await count_rows(session, model, pupil_id=sam) == 0, model
        assert await count_rows(session, Guardianship, pupil_id=sam) == 0
        assert await count_rows(session, AccountPerson, person_id=sam) == 0
        assert await count_rows(session, Account, telegram_user_id=501) == 0
        assert await count_rows(session, Reminder, person_id=sam) == 0
        payloads = (await session.scalars(select(Reminder.payload))).all()
        assert all(payload.get("pupil_id") != sam for payload in payloads)
        assert all("talk_id" not in payload for payload in payloads)
        assert await session.get(Observation, portfolio.private_note) is None
        assert await session.get(Observation, portfolio.shareable_note) is None
        shared = await session.get(Observation, portfolio.shared_note)
        assert shared is not None and shared.text == "[…] en Noor bouwden samen een toren"
        links = (
            await session.scalars(
                select(ObservationPupil.pupil_id).where(
                    ObservationPupil.observation_id == portfolio.shared_note
                )
            )
        ).all()
        assert list(links) == [noor]
        assert [record.key for record in (await session.scalars(select(FsmRecord))).all()] == [
            "fsm:4242:701:701:default"
        ]

        # Noor's portfolio is untouched, the shared image too; the parent keeps an account.
        assert [
            await count_rows(session, model, pupil_id=noor)
            for model in (Reflection, Evidence, PupilGoal, ObservationPupil)
        ] == noor_before
        assert await count_rows(session, Reminder, person_id=portfolio.school.persons["X2"]) == 1
        parent = await session.get(Person, portfolio.school.persons["O1"])
        assert parent is not None
        assert await count_rows(session, Account, telegram_user_id=502) == 1
        assert await count_rows(session, Guardianship, parent_id=parent.id) == 0

        # The audit entry: that it happened, by whom, never the name.
        [event] = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == ACTION_ERASE))
        ).all()
        assert (event.actor_label, event.subject_ref) == ("cli", person_ref(sam))
        details = event.details
        assert details["external_id_sha256"] == external_id_hash(portfolio.school.school_id, "P1")

        # The name is nowhere in the database.
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                for value in row:
                    assert "Sam de Vries" not in json.dumps(value, ensure_ascii=False), table.name

    # Files: Sam's own are gone, the one Noor shares stays.
    for sha in portfolio.sam_only_shas:
        assert not stored_path(portfolio.media_dir, sha).exists(), sha
    assert stored_path(portfolio.media_dir, portfolio.shared_image_sha).exists()


async def test_erasure_is_for_pupils_only_and_rolls_back_with_the_transaction(
    session_factory, tmp_path
):
    portfolio = await build_portfolio(session_factory, tmp_path)
    async with session_factory() as session, session.begin():
        with pytest.raises(PrivacyError):
            await erase_pupil(
                session,
                pupil_id=portfolio.school.persons["T1"],
                media_dir=portfolio.media_dir,
                actor_label="cli",
            )

    session = session_factory()
    async with session:
        await session.begin()
        await erase_pupil(
            session, pupil_id=portfolio.sam, media_dir=portfolio.media_dir, actor_label="cli"
        )
        await session.rollback()
    async with session_factory() as session:
        assert await session.get(Person, portfolio.sam) is not None
        assert await count_rows(session, AuditEvent) == 0
    for sha in portfolio.sam_only_shas:
        assert stored_path(portfolio.media_dir, sha).exists()


async def test_retention_erases_pupils_who_left_long_enough_ago(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)
    today = date(2027, 6, 15)
    async with session_factory() as session, session.begin():
        other = School(name="De Klimop", retention_months=6)
        session.add(other)
        await session.flush()
        gone = Person(
            school_id=other.id,
            external_id="K1",
            role=Role.PUPIL,
            display_name="Kim Klimop",
            left_school_on=months_before(today, 7),
        )
        recent = Person(
            school_id=other.id,
            external_id="K2",
            role=Role.PUPIL,
            display_name="Kai Klimop",
            left_school_on=months_before(today, 5),
        )
        session.add_all([gone, recent])
        sam = await session.get(Person, portfolio.sam)
        noor = await session.get(Person, portfolio.noor)
        assert sam is not None and noor is not None
        noor.left_school_on = months_before(today, 25)  # past the 24-month default
        sam.left_school_on = months_before(today, 23)
        await session.flush()
        gone_id, recent_id = gone.id, recent.id

    async with session_factory() as session, session.begin():
        erased = await apply_retention(
            session, today=today, media_dir=portfolio.media_dir, default_months=24
        )
    assert sorted(result.person_id for result in erased) == sorted([portfolio.noor, gone_id])

    async with session_factory() as session, session.begin():
        assert await session.get(Person, portfolio.sam) is not None
        assert await session.get(Person, recent_id) is not None
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == ACTION_ERASE))
        ).all()
        assert {(e.actor_label, e.subject_ref) for e in events} == {
            ("retention", person_ref(portfolio.noor)),
            ("retention", person_ref(gone_id)),
        }
        assert (
            await apply_retention(
                session, today=today, media_dir=portfolio.media_dir, default_months=24
            )
            == []
        )


def test_months_before_and_redaction():
    assert months_before(date(2027, 3, 31), 1) == date(2027, 2, 28)
    assert months_before(date(2027, 1, 15), 24) == date(2025, 1, 15)
    assert redact_name("Sam en Noor; sam. Samen met SAM DE VRIES", "Sam de Vries") == (
        "[…] en Noor; […]. Samen met […]"
    )


async def test_audit_log_lists_exports_newest_first(session_factory, tmp_path):
    portfolio = await build_portfolio(session_factory, tmp_path)
    admin = portfolio.school.persons["A1"]
    async with session_factory() as session, session.begin():
        data = await collect_pupil_data(session, pupil_id=portfolio.sam)
        await record_export(session, data=data, actor_person_id=admin, via="chat")
        await erase_pupil(
            session, pupil_id=portfolio.noor, media_dir=portfolio.media_dir, actor_person_id=admin
        )
    async with session_factory() as session:
        entries = await latest_audit(session, school_id=portfolio.school.school_id)
    assert [entry.action for entry in entries] == [ACTION_ERASE, ACTION_EXPORT]
    erased, export = entries
    assert export.subject_name == "Sam de Vries" and export.actor_name == "Beheer De Regenboog"
    assert export.actor_label == "admin" and export.details["include_private_notes"] is False
    assert erased.subject_name is None  # Noor is gone: only the reference is left
    async with session_factory() as session:
        assert await latest_audit(session, school_id=portfolio.school.school_id + 99) == []


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def portfolio_in(db_url: str, tmp_path: Path) -> Portfolio:
    async def go() -> Portfolio:
        engine = create_engine(db_url)
        try:
            return await build_portfolio(create_sessionmaker(engine), tmp_path)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def audit_rows(db_url: str) -> list[AuditEvent]:
    async def go() -> list[AuditEvent]:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return list(
                    (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


def person_exists(db_url: str, person_id: int) -> bool:
    async def go() -> bool:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return await session.get(Person, person_id) is not None
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_cli_export_writes_the_zip_and_an_audit_entry(cli, db_url, tmp_path):
    portfolio = portfolio_in(db_url, tmp_path)

    code, out, err = cli("export", "P1", "--out", "sam.zip")

    assert (code, err) == (0, "")
    assert "sam.zip" in out and "without private notes" in out
    _archive, page, data = read_zip((tmp_path / "sam.zip").read_bytes())
    assert (tmp_path / "sam.zip").stat().st_mode & 0o077 == 0  # owner only
    assert PRIVATE_NOTE not in " ".join(page.text)
    assert data["pupil"]["external_id"] == "P1" and not data["include_private_notes"]
    [event] = audit_rows(db_url)
    assert (event.action, event.actor_label, event.subject_ref) == (
        ACTION_EXPORT,
        "cli",
        person_ref(portfolio.sam),
    )
    assert event.details == {"via": "cli", "include_private_notes": False, "files": 4}

    code, _, err = cli("export", "P1", "--out", "sam.zip")
    assert code == 1 and "--force" in err

    code, out, _ = cli(
        "export",
        "sam de vries",
        "--include-private-notes",
        "--locale",
        "en",
        "--force",
        "--out",
        "sam.zip",
    )
    assert code == 0 and "with private notes" in out
    _archive, page, _data = read_zip((tmp_path / "sam.zip").read_bytes())
    assert PRIVATE_NOTE in " ".join(page.text) and "Portfolio of Sam de Vries" in " ".join(
        page.text
    )
    assert cli("export", "P9")[0] == 1


def test_cli_erase_asks_for_yes_then_erases(cli, db_url, tmp_path):
    portfolio = portfolio_in(db_url, tmp_path)

    code, out, _ = cli("erase", "P1")
    assert code == 1 and "Would erase Sam de Vries (P1)" in out and "--yes" in out
    assert person_exists(db_url, portfolio.sam)

    code, out, err = cli("erase", "P1", "--yes")
    assert (code, err) == (0, "")
    assert "Erased pupil P1" in out and "Sam" not in out
    assert not person_exists(db_url, portfolio.sam)
    assert [e.action for e in audit_rows(db_url)] == [ACTION_ERASE]
    assert cli("erase", "P1", "--yes")[0] == 1


def test_cli_retention_dry_run_then_for_real(cli, db_url, tmp_path):
    portfolio = portfolio_in(db_url, tmp_path)

    async def set_left() -> None:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                noor = await session.get(Person, portfolio.noor)
                assert noor is not None
                noor.left_school_on = date.today() - timedelta(days=800)
        finally:
            await engine.dispose()

    asyncio.run(set_left())
    assert cli("retention", "--dry-run")[1].startswith("Would erase 1 pupils: P2 Noor Jansen")
    assert person_exists(db_url, portfolio.noor)
    code, out, _ = cli("retention")
    assert code == 0 and "Erased 1 pupils" in out and "Noor" not in out
    assert not person_exists(db_url, portfolio.noor) and person_exists(db_url, portfolio.sam)
    assert "No pupil" in cli("retention")[1]


def test_cli_changes_are_in_the_audit_log(cli, db_url):
    assert cli("school", "create", "De Regenboog")[0] == 0
    samples = Path(__file__).resolve().parents[1] / "samples"
    assert cli("import", "people", str(samples / "school-demo.csv"), "--codes-out", "c.csv")[0] == 0
    assert cli("import", "goals", str(samples / "goalset-vaardigheden.csv"))[0] == 0
    assert cli("invite", "P1")[0] == 0
    # Importing the same file again changes nothing, and logs nothing.
    assert cli("import", "goals", str(samples / "goalset-vaardigheden.csv"))[0] == 0

    events = audit_rows(db_url)
    assert [(e.action, e.actor_label) for e in events] == [
        ("people.import", "cli"),
        ("goals.import", "cli"),
        ("invite.issue", "cli"),
    ]
    assert events[0].details["people_created"] == 18
    assert events[2].subject_ref is not None and events[2].subject_ref.startswith("person:")
    assert "Sam" not in json.dumps([e.details for e in events])
