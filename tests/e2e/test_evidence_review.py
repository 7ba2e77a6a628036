"""A teacher's `/werk`: their pupils' work with tops & tips, the approval queue for shared
photos (image consent), the one rule for what parents see, and the daily digest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App, build_app
from config.settings import Settings
from conversations.evidence_review import ReviewDecide, ReviewLook, ReviewWrite
from conversations.parent_summary import compose_feedback_notice
from language.i18n import use_locale
from media.store import MediaStore
from sandbox import SandboxClient, TelegramSandbox
from services.clock import Clock
from storage.accounts import Recipient
from storage.evidence import NewEvidence, create_evidence, set_sharing
from storage.models import (
    Account,
    AccountPerson,
    Approval,
    Evidence,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    Group,
    GroupMembership,
    MediaKind,
    Person,
    Reminder,
    Role,
    School,
)
from storage.observations import ItemKind, timeline
from storage.parents import (
    FeedbackRefusedError,
    change_preferences,
    feedback_targets,
    give_feedback,
)
from storage.reminders import DueReminder, ReminderStatus, reminders_of
from storage.summaries import child_week, week_start_of
from tests.conftest import TOKEN
from tests.factories import DemoSchool, build_school
from tests.images import small_jpeg

ZONE = ZoneInfo("Europe/Amsterdam")
POSTER = "Mijn krachtenposter"
CLASS_PHOTO = "Groepsfoto bij de knikkerbaan"
DRAFT = "Kladje, nog niet af"
OTHER_GROUP = "Werk van een ander"


async def needs_approval(session_factory, school: DemoSchool, on: bool = True) -> None:
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.shared_work_needs_approval = on


async def add_work(
    session_factory,
    school_id: int,
    pupil_id: int,
    media_dir,
    caption: str,
    *,
    shared: bool,
    kind: EvidenceKind = EvidenceKind.PHOTO,
    created_at: datetime | None = None,
) -> int:
    store = MediaStore(media_dir)
    if kind is EvidenceKind.PHOTO:
        files = [await store.store_image(small_jpeg((320, 240), "teal"))]
    else:
        pdf = (
            b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
            b"trailer<</Size 4/Root 1 0 R>>\nstartxref\n0\n%%EOF\n"
        )
        files = [await store.store_file(pdf, kind=MediaKind.DOCUMENT, filename="verslag.pdf")]
    async with session_factory() as session, session.begin():
        evidence = await create_evidence(
            session,
            school_id=school_id,
            new=NewEvidence(
                pupil_id=pupil_id,
                kind=kind,
                files=files,
                caption=caption,
                shared_with_parents=shared,
            ),
        )
        if created_at is not None:
            evidence.created_at = created_at
        return evidence.id


async def other_group_pupil(session_factory, school: DemoSchool) -> int:
    """Lisa, in a group Juf Anouk does not teach."""
    async with session_factory() as session, session.begin():
        group = Group(school_id=school.school_id, name="Groep 8", school_year="2026-2027")
        session.add(group)
        await session.flush()
        lisa = Person(
            school_id=school.school_id, external_id="P8", role=Role.PUPIL, display_name="Lisa Bos"
        )
        session.add(lisa)
        await session.flush()
        session.add(GroupMembership(group_id=group.id, person_id=lisa.id))
        return lisa.id


async def join(telegram, school: DemoSchool, external_id: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[external_id]}")
    await user.wait_for_reply()
    return user


async def evidence(session_factory, evidence_id: int) -> Evidence:
    async with session_factory() as session:
        row = await session.get(Evidence, evidence_id)
        assert row is not None
        return row


def labels(message: dict) -> list[str]:
    return [
        b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    ]


def body(message: dict) -> str:
    return message.get("text") or message.get("caption") or ""


@pytest.fixture
async def classroom(running_bot, school, session_factory, settings):
    """A school that asks for approval; Sam shared a poster (waiting) and kept a draft; Noor
    shared a group photo before the school turned approval on (no approval needed)."""
    school.work = {}
    school.work["class_photo"] = await add_work(
        session_factory,
        school.school_id,
        school.persons["P2"],
        settings.media_dir,
        CLASS_PHOTO,
        shared=True,
        created_at=datetime.now(UTC) - timedelta(hours=3),
    )
    await needs_approval(session_factory, school)
    school.work["draft"] = await add_work(
        session_factory,
        school.school_id,
        school.persons["P1"],
        settings.media_dir,
        DRAFT,
        shared=False,
        created_at=datetime.now(UTC) - timedelta(hours=2),
    )
    school.work["poster"] = await add_work(
        session_factory,
        school.school_id,
        school.persons["P1"],
        settings.media_dir,
        POSTER,
        shared=True,
        created_at=datetime.now(UTC) - timedelta(hours=4),
    )
    return school


async def test_shared_work_waits_and_the_teacher_lets_it_through(
    classroom, telegram, session_factory
):
    poster = await evidence(session_factory, classroom.work["poster"])
    assert poster.approval is Approval.PENDING
    assert (await evidence(session_factory, classroom.work["draft"])).approval is (
        Approval.NOT_NEEDED
    )
    anouk = await join(telegram, classroom, "T1", "Anouk")
    await anouk.send_text("/werk")
    [card] = await anouk.wait_for_reply()
    # What waits comes first (although it is the oldest), with its thumbnail.
    assert "photo" in card and POSTER in card["caption"] and "Sam de Vries" in card["caption"]
    assert "1 wacht op je akkoord" in card["caption"] and "Sam wil dit delen" in card["caption"]
    assert {"✅ Mag naar ouders", "🔒 Alleen op school", "👍 Top", "💡 Tip"} <= set(labels(card))
    assert "Volgende ▶️" in labels(card)

    await anouk.press("✅ Mag naar ouders", message_id=card["message_id"])
    [next_card] = await anouk.wait_for_reply()
    poster = await evidence(session_factory, classroom.work["poster"])
    assert poster.approval is Approval.APPROVED
    assert poster.approved_by_id == classroom.persons["T1"]
    assert poster.approval_decided_at is not None
    # Nothing waits any more: the card shows the newest work, the old card is gone.
    assert "wacht" not in body(next_card) and "✅ Mag naar ouders" not in labels(next_card)
    assert DRAFT in body(next_card)
    chat = await anouk.messages()
    assert not any(m["message_id"] == card["message_id"] for m in chat)

    await anouk.press("Volgende ▶️", message_id=next_card["message_id"])
    [third] = await anouk.wait_for_reply()
    assert "2 van 3" in body(third)
    assert CLASS_PHOTO in body(third)
    # The work itself at full size, under the card.
    await anouk.press("📷 Bekijk", message_id=third["message_id"])
    [full] = await anouk.wait_for_reply()
    assert "photo" in full


async def test_kept_at_school_never_reaches_a_parent(classroom, telegram, session_factory):
    anouk = await join(telegram, classroom, "T1", "Anouk")
    await anouk.send_text("/werk")
    [card] = await anouk.wait_for_reply()
    await anouk.press("🔒 Alleen op school", message_id=card["message_id"])
    await anouk.wait_for_reply()
    poster = await evidence(session_factory, classroom.work["poster"])
    assert poster.approval is Approval.PRIVATE and poster.shared_with_parents is True
    # The pupil reads why, on the portfolio card.
    sam = await join(telegram, classroom, "P1", "Sam")
    await sam.send_text("/portfolio")
    [portfolio] = await sam.wait_for_reply()
    await sam.press("Ouder ▶️", message_id=portfolio["message_id"])
    older = await sam.wait_for_edit(portfolio["message_id"])
    assert POSTER in older["text"] and "houdt dit op school" in older["text"]


async def test_a_parent_sees_approved_work_only(classroom, session_factory, settings):
    """The one rule, everywhere a parent looks: the summary (photos and other work), the
    timeline, tops & tips targets and feedback itself."""
    sam, marieke = classroom.persons["P1"], classroom.persons["O1"]
    document = await add_work(
        session_factory,
        classroom.school_id,
        sam,
        settings.media_dir,
        "Verslag",
        shared=True,
        kind=EvidenceKind.DOCUMENT,
    )
    private = await add_work(
        session_factory, classroom.school_id, sam, settings.media_dir, "Privé", shared=True
    )
    async with session_factory() as session, session.begin():
        row = await session.get(Evidence, private)
        assert row is not None
        row.approval = Approval.PRIVATE

    async def parent_view() -> tuple[set[int], int, set[int], set[int]]:
        async with session_factory() as session:
            now = datetime.now(UTC)
            week = await child_week(
                session,
                parent_id=marieke,
                pupil_id=sam,
                week_start=week_start_of(now.astimezone(ZONE).date()),
                now=now,
            )
            assert week is not None
            page = await timeline(
                session,
                viewer_id=marieke,
                viewer_role=Role.PARENT,
                pupil_id=sam,
                kinds=[ItemKind.EVIDENCE],
                per_page=20,
            )
            assert page is not None
            targets = await feedback_targets(session, parent_id=marieke, pupil_id=sam)
        return (
            {photo.evidence_id for photo in week.photos},
            week.other_shared,
            {item.id for item in page.items},
            {t.id for t in targets if t.kind is FeedbackTarget.EVIDENCE},
        )

    poster = classroom.work["poster"]
    assert await parent_view() == (set(), 0, set(), set())
    for hidden in (poster, private, document):
        async with session_factory() as session:
            with pytest.raises(FeedbackRefusedError):
                await give_feedback(
                    session,
                    parent_id=marieke,
                    pupil_id=sam,
                    target=FeedbackTarget.EVIDENCE,
                    target_id=hidden,
                    top="Mooi!",
                    tip=None,
                )
    async with session_factory() as session, session.begin():
        for approved in (poster, document):
            row = await session.get(Evidence, approved)
            assert row is not None
            row.approval = Approval.APPROVED
    photos, others, in_timeline, targets = await parent_view()
    assert photos == {poster} and others == 1
    assert in_timeline == targets == {poster, document}


async def test_sharing_later_in_the_portfolio_asks_again(classroom, telegram, session_factory):
    sam = await join(telegram, classroom, "P1", "Sam")
    await sam.send_text("/portfolio")
    [card] = await sam.wait_for_reply()
    assert DRAFT in card["text"]
    await sam.press("👨‍👩‍👧 Deel met ouders", message_id=card["message_id"])
    shared = await sam.wait_for_edit(card["message_id"])
    assert "wacht op je juf/meester" in shared["text"]
    assert (await evidence(session_factory, classroom.work["draft"])).approval is (Approval.PENDING)
    await sam.press("🔒 Niet meer delen met ouders", message_id=card["message_id"])
    unshared = await sam.wait_for_edit(card["message_id"])
    assert "Alleen voor school" in unshared["text"]
    draft = await evidence(session_factory, classroom.work["draft"])
    assert draft.approval is Approval.NOT_NEEDED and draft.shared_with_parents is False


async def test_a_top_from_the_teacher_reaches_the_pupil(
    classroom, running_bot, telegram, session_factory
):
    sam = await join(telegram, classroom, "P1", "Sam")
    anouk = await join(telegram, classroom, "T1", "Anouk")
    await anouk.send_text("/werk")
    [card] = await anouk.wait_for_reply()
    await anouk.press("👍 Top", message_id=card["message_id"])
    [prompt] = await anouk.wait_for_reply()
    assert "Typ je top voor Sam" in prompt["text"]
    await anouk.send_photo(small_jpeg())
    [again] = await anouk.wait_for_reply()
    assert "als tekst" in again["text"]
    await anouk.send_text("Heel duidelijk getekend, die pijlen!")
    saved, new_card = await anouk.wait_for_reply(count=2)
    assert "Bewaard ✅ Sam krijgt je top te zien" in saved["text"]
    assert "👍 Top: Heel duidelijk getekend" in body(new_card) and POSTER in body(new_card)

    async with session_factory() as session:
        [feedback] = (await session.scalars(select(Feedback))).all()
        [notice] = (
            await session.scalars(select(Reminder).where(Reminder.kind == "feedback_notice"))
        ).all()
    assert feedback.author_role is Role.TEACHER and feedback.author_id == classroom.persons["T1"]
    assert feedback.evidence_id == classroom.work["poster"] and feedback.tip is None
    assert feedback.target is FeedbackTarget.EVIDENCE
    assert notice.person_id == classroom.persons["P1"]
    due = DueReminder(
        notice.id, notice.kind, notice.person_id, notice.due_at, None, notice.payload, 0, "k"
    )
    async with session_factory() as session:
        with running_bot.app.i18n.context(), use_locale("nl"):
            [method] = await compose_feedback_notice(
                session,
                due,
                Recipient(classroom.persons["P1"], "Sam", 1, "nl"),
                running_bot.app.reminders.composers.context(datetime.now(UTC)),
            )
    assert "Juf Anouk gaf je feedback" in method.text and "die pijlen" in method.text

    # Sam finds it on the item in the portfolio.
    await sam.send_text("/portfolio")
    [portfolio] = await sam.wait_for_reply()
    await sam.press("Ouder ▶️", message_id=portfolio["message_id"])
    older = await sam.wait_for_edit(portfolio["message_id"])
    assert POSTER in older["text"] and "Top: Heel duidelijk getekend" in older["text"]


async def test_a_parent_hears_of_a_top_on_shared_work_only_when_they_may_see_it(
    classroom, running_bot, telegram, session_factory
):
    """Parents who keep "Berichten over feedback" on hear of a teacher's top on work they may
    see; the check is made when the notice is sent (the poster still waits for approval)."""
    await join(telegram, classroom, "O1", "Marieke")
    anouk = await join(telegram, classroom, "T1", "Anouk")
    sam, marieke = classroom.persons["P1"], classroom.persons["O1"]
    await anouk.send_text("/werk")
    [card] = await anouk.wait_for_reply()
    await anouk.press("👍 Top", message_id=card["message_id"])
    await anouk.wait_for_reply()
    await anouk.send_text("Heel duidelijk getekend, die pijlen!")
    await anouk.wait_for_reply(count=2)

    async with session_factory() as session:
        notices = (
            await session.scalars(select(Reminder).where(Reminder.kind == "feedback_notice"))
        ).all()
    [for_parent] = [row for row in notices if row.person_id == marieke]
    # Sam has not joined the bot yet; only his own parent is on the list, no one else's.
    assert {row.person_id for row in notices} == {marieke}
    due = DueReminder(
        for_parent.id,
        for_parent.kind,
        marieke,
        for_parent.due_at,
        None,
        for_parent.payload,
        0,
        "k",
    )

    async def composed() -> list:
        async with session_factory() as session:
            with running_bot.app.i18n.context(), use_locale("nl"):
                return (
                    await compose_feedback_notice(
                        session,
                        due,
                        Recipient(marieke, "Marieke", 2, "nl"),
                        running_bot.app.reminders.composers.context(datetime.now(UTC)),
                    )
                    or []
                )

    # The poster waits for the teacher's approval: nothing is announced yet.
    assert await composed() == []
    async with session_factory() as session, session.begin():
        poster = await session.get(Evidence, classroom.work["poster"])
        assert poster is not None
        poster.approval = Approval.APPROVED
    [method] = await composed()
    assert "Juf Anouk gaf Sam" in method.text and "die pijlen" in method.text
    assert POSTER in method.text
    # A parent who turned the notices off hears nothing.
    async with session_factory() as session, session.begin():
        await change_preferences(session, parent_id=marieke, feedback_notices=False)
    assert await composed() == []
    # Work the pupil stops sharing is not announced either.
    async with session_factory() as session, session.begin():
        await change_preferences(session, parent_id=marieke, feedback_notices=True)
        await set_sharing(session, pupil_id=sam, evidence_id=classroom.work["poster"], shared=False)
    assert await composed() == []


async def test_forged_buttons_for_another_groups_work_change_nothing(
    classroom, telegram, session_factory, settings
):
    lisa = await other_group_pupil(session_factory, classroom)
    theirs = await add_work(
        session_factory, classroom.school_id, lisa, settings.media_dir, OTHER_GROUP, shared=True
    )
    assert (await evidence(session_factory, theirs)).approval is Approval.PENDING
    anouk = await join(telegram, classroom, "T1", "Anouk")
    await anouk.send_text("/werk")
    [card] = await anouk.wait_for_reply()
    assert OTHER_GROUP not in body(card)
    for data in (
        ReviewDecide(evidence_id=theirs, approve=True, offset=0),
        ReviewWrite(evidence_id=theirs, kind="top", offset=0),
        ReviewLook(evidence_id=theirs),
    ):
        query = await anouk.press_raw(card["message_id"], data.pack())
        answer = await anouk.wait_for_callback_answer(query["id"])
        assert "ken ik niet" in answer["text"]
    forged = await evidence(session_factory, theirs)
    assert forged.approval is Approval.PENDING and forged.approved_by_id is None
    async with session_factory() as session:
        assert (await session.scalars(select(Feedback))).all() == []
    # A pupil cannot use the teacher's buttons at all.
    sam = await join(telegram, classroom, "P1", "Sam")
    await sam.send_text("/werk")
    [reply] = await sam.wait_for_reply()
    assert "Werk van je leerlingen" not in reply["text"]
    assert (await evidence(session_factory, classroom.work["poster"])).approval is (
        Approval.PENDING
    )


# --- the daily digest, with a stepped clock -----------------------------------------------------


class SteppedClock(Clock):
    def __init__(self, start: datetime) -> None:
        self.moment = start
        super().__init__("Europe/Amsterdam", real_now=lambda: self.moment)

    def go(self, local: datetime) -> None:
        self.moment = local.replace(tzinfo=ZONE).astimezone(UTC)


@pytest.fixture
async def digest_world(
    db_url: str,
    sandbox: TelegramSandbox,
    telegram: SandboxClient,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path,
) -> AsyncIterator[tuple[App, SteppedClock, DemoSchool, int]]:
    school = await build_school(session_factory)
    user = await telegram.create_user("Anouk")
    async with session_factory() as session, session.begin():
        account = Account(telegram_user_id=user.id, active_person_id=school.persons["T1"])
        session.add(account)
        await session.flush()
        session.add(AccountPerson(account_id=account.id, person_id=school.persons["T1"]))
        row = await session.get(School, school.school_id)
        assert row is not None
        row.shared_work_needs_approval = True
    settings = Settings(
        bot_token=None,
        database_url=db_url,
        telegram_api_url=sandbox.base_url,
        media_dir=tmp_path / "media",
        send_rate_per_second=1000,
        send_rate_per_chat=1000,
        _env_file=None,  # type: ignore[call-arg]
    )
    sandbox.limits.per_chat_rate = 0
    sandbox.limits.global_rate = 0
    clock = SteppedClock(datetime(2027, 3, 22, 0, 0, tzinfo=UTC))
    app = build_app(settings, token=TOKEN, clock=clock)
    yield app, clock, school, user.id
    await app.close()


async def test_the_digest_counts_new_and_waiting_work_on_school_days_only(
    digest_world, telegram, session_factory
):
    app, clock, school, chat = digest_world

    async def digests() -> list[dict]:
        return [m for m in await telegram.messages(chat) if "📥" in (m.get("text") or "")]

    async def day(local_day: str) -> list[str]:
        """The digests that arrived on the afternoon of a day (the morning's "not seen
        lately" list comes along as well, late: it is left out here)."""
        before = {m["message_id"] for m in await digests()}
        moment = datetime.fromisoformat(f"{local_day}T15:00")
        while moment <= datetime.fromisoformat(f"{local_day}T16:00"):
            clock.go(moment)
            await app.reminders.tick()
            moment += timedelta(minutes=15)
        return [m["text"] for m in await digests() if m["message_id"] not in before]

    # Monday: nothing yet, so no digest (the row is planned, the composer declines).
    assert await day("2027-03-22") == []
    # Tuesday: Sam shares a poster (it waits), Noor keeps a drawing.
    for pupil, caption, shared in (("P1", POSTER, True), ("P2", "Tekening", False)):
        await add_work(
            session_factory,
            school.school_id,
            school.persons[pupil],
            app.settings.media_dir,
            caption,
            shared=shared,
            created_at=datetime(2027, 3, 23, 10, 0, tzinfo=ZONE).astimezone(UTC),
        )
    [tuesday] = await day("2027-03-23")
    assert "2 nieuwe stukken werk" in tuesday and "1 gedeeld stuk wacht" in tuesday
    # Wednesday: nothing new, but the poster still waits; yesterday's digest is replaced.
    [wednesday] = await day("2027-03-24")
    assert "nieuw" not in wednesday and "1 gedeeld stuk wacht" in wednesday
    [digest] = await digests()
    assert "📥 Bekijk het werk" in labels(digest)
    # Once decided, and nothing new: no digest at all, and none at the weekend.
    async with session_factory() as session, session.begin():
        for row in (await session.scalars(select(Evidence))).all():
            row.approval = Approval.APPROVED if row.shared_with_parents else row.approval
    assert await day("2027-03-25") == []
    assert await day("2027-03-27") == []
    async with session_factory() as session:
        rows = await reminders_of(
            session, person_id=school.persons["T1"], kinds=["evidence_digest"]
        )
    assert [row.idempotency_key.rsplit(":", 1)[1] for row in rows] == [
        "2027-03-22",
        "2027-03-23",
        "2027-03-24",
        "2027-03-25",
    ]
    assert [row.status for row in rows] == [
        ReminderStatus.CANCELLED,
        ReminderStatus.SENT,
        ReminderStatus.SENT,
        ReminderStatus.CANCELLED,
    ]


async def test_unsharing_resets_the_approval(school, session_factory, tmp_path):
    await needs_approval(session_factory, school)
    item = await add_work(
        session_factory, school.school_id, school.persons["P1"], tmp_path, POSTER, shared=True
    )
    async with session_factory() as session, session.begin():
        row = await session.get(Evidence, item)
        assert row is not None and row.approval is Approval.PENDING
        row.approval, row.approved_by_id = Approval.APPROVED, school.persons["T1"]
    async with session_factory() as session, session.begin():
        assert await set_sharing(
            session, pupil_id=school.persons["P1"], evidence_id=item, shared=False
        )
    row = await evidence(session_factory, item)
    assert row.approval is Approval.NOT_NEEDED and row.approved_by_id is None
    await needs_approval(session_factory, school, on=False)
    async with session_factory() as session, session.begin():
        await set_sharing(session, pupil_id=school.persons["P1"], evidence_id=item, shared=True)
    assert (await evidence(session_factory, item)).approval is Approval.NOT_NEEDED


def test_the_school_setting_from_the_command_line(db_url, monkeypatch, capsys, tmp_path):
    import asyncio

    from bot.cli import main
    from storage.db import create_engine, create_sessionmaker

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    def needs() -> dict[str, bool]:
        async def read() -> dict[str, bool]:
            engine = create_engine(db_url)
            try:
                async with create_sessionmaker(engine)() as session:
                    rows = (await session.scalars(select(School))).all()
                    return {row.name: row.shared_work_needs_approval for row in rows}
            finally:
                await engine.dispose()

        return asyncio.run(read())

    assert main(["school", "create", "De Regenboog"]) == 0
    assert main(["school", "create", "De Klimop", "--needs-approval"]) == 0
    assert needs() == {"De Regenboog": False, "De Klimop": True}
    assert main(["school", "set", "--school", "de regenboog", "--needs-approval"]) == 0
    assert main(["school", "set", "--school", "De Klimop", "--no-needs-approval"]) == 0
    assert needs() == {"De Regenboog": True, "De Klimop": False}
    capsys.readouterr()
    assert main(["school", "set", "--school", "De Klimop"]) == 1
    assert "--needs-approval" in capsys.readouterr().err


def test_a_card_with_much_to_say_still_fits_in_a_photo_caption():
    from conversations.evidence_review import card_text
    from language.i18n import load_i18n
    from storage.evidence import EvidenceView, FeedbackView, ReviewItem, ReviewPage

    long = "Heel lang verhaal " * 40
    item = EvidenceView(
        id=1,
        kind=EvidenceKind.PHOTO,
        caption=long,
        outside_school=True,
        shared_with_parents=True,
        approval=Approval.PENDING,
        created_at=datetime.now(UTC),
        goals=tuple((index, long) for index in range(5)),
        files=(),
        feedback=tuple(FeedbackView(long, long, Role.TEACHER) for _ in range(6)),
    )
    page = ReviewPage(ReviewItem(item, 2, "Sam de Vries " * 8, None), 0, 3, 2)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    i18n = load_i18n()
    with i18n.context(), use_locale("nl"):
        text = card_text(page, settings)
    assert len(text) <= 1024
    # The newest tip stays; older tops & tips make room.
    assert "Sam wil dit delen" in text and "💡 Tip" in text


async def test_the_menu_buttons_open_the_work_and_the_talks(classroom, telegram):
    anouk = await join(telegram, classroom, "T1", "Anouk")
    await anouk.send_text("📥 Werk")
    [card] = await anouk.wait_for_reply()
    assert POSTER in body(card) and "👍 Top" in labels(card)
    await anouk.send_text("🗣 Gesprekken")
    [talks] = await anouk.wait_for_reply()
    assert "Nieuw gesprek" in str(talks.get("reply_markup"))
