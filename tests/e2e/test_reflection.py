"""The daily reflection end to end: six taps, wrong input, a restart, cancelling."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from conversations.reflection import PickGoal
from storage.models import Reflection, ReflectionGoal
from tests.factories import build_curriculum, give_goal


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


async def reflections(session_factory) -> list[Reflection]:
    async with session_factory() as session:
        return list((await session.scalars(select(Reflection).order_by(Reflection.id))).all())


async def test_a_full_reflection_takes_six_taps_and_writes_one_row(pupil, session_factory):
    await pupil.send_text("✍️ Reflectie")
    [card] = await pupil.wait_for_reply()
    assert "Waar heb je vandaag aan gewerkt?" in card["text"]
    taps = [
        "Je kunt soorten krachten herkennen",
        "😀 Top",
        "💪💪💪",
        "🙂",
        "Nee, klaar",
        "Weet ik nog niet",
    ]
    for tap in taps[:4]:
        await pupil.press(tap, message_id=card["message_id"])
        await pupil.wait_for_edit(card["message_id"])
    await pupil.press(taps[4], message_id=card["message_id"])
    [next_step] = await pupil.wait_for_reply()
    await pupil.press(taps[5], message_id=next_step["message_id"])
    [summary] = await pupil.wait_for_reply()
    assert "hard gewerkt" in summary["text"] and "krachten herkennen" in summary["text"]
    assert "eerste keer" in summary["text"]

    [row] = await reflections(session_factory)
    assert (row.how_it_went, row.effort, row.wellbeing) == (4, 3, 3)
    assert row.next_step is None and row.text is None
    async with session_factory() as session:
        goal_ids = (await session.scalars(select(ReflectionGoal.goal_id))).all()
    assert goal_ids == [pupil.curriculum.goals["1.1a"]]


async def test_typing_where_a_button_is_expected_gets_a_gentle_re_ask(pupil, session_factory):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await pupil.press("Je kunt soorten krachten herkennen", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.send_text("goed")
    hint, again = await pupil.wait_for_reply(count=2)
    assert "knoppen" in hint["text"] and "Hoe ging het?" in again["text"]
    await pupil.press("🙂 Goed", message_id=again["message_id"])
    await pupil.wait_for_edit(again["message_id"])
    await pupil.press("💪💪", message_id=again["message_id"])
    await pupil.wait_for_edit(again["message_id"])
    await pupil.press("😐", message_id=again["message_id"])
    await pupil.wait_for_edit(again["message_id"])
    # Typing at "anything to tell?" is taken as the story itself.
    await pupil.send_text("Ik heb een proefje gedaan met een veer.")
    [next_step] = await pupil.wait_for_reply()
    assert "volgende stap" in next_step["text"]
    from tests.images import small_jpeg

    await pupil.send_photo(small_jpeg())
    [hint] = await pupil.wait_for_reply()
    assert "tekst" in hint["text"]
    await pupil.send_text("x" * 400)
    [too_long] = await pupil.wait_for_reply()
    assert "korter" in too_long["text"]
    await pupil.send_text("Morgen de veer opnieuw meten")
    [summary] = await pupil.wait_for_reply()
    assert "gewerkt" in summary["text"]
    [row] = await reflections(session_factory)
    assert row.text == "Ik heb een proefje gedaan met een veer."
    assert row.next_step == "Morgen de veer opnieuw meten"
    assert (row.how_it_went, row.effort, row.wellbeing) == (3, 2, 2)


async def test_the_bot_restarted_mid_reflection_resumes_at_the_same_step(
    pupil, running_bot, session_factory
):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await pupil.press("Je kunt soorten krachten herkennen", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("😟 Lastig", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])

    await running_bot.restart()

    await pupil.press("💪💪💪💪", message_id=card["message_id"])
    edited = await pupil.wait_for_edit(card["message_id"])
    assert "Hoe voel je je nu?" in edited["text"]
    await pupil.press("😀", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("Nee, klaar", message_id=card["message_id"])
    [next_step] = await pupil.wait_for_reply()
    await pupil.press("Weet ik nog niet", message_id=next_step["message_id"])
    await pupil.wait_for_reply()
    [row] = await reflections(session_factory)
    assert (row.how_it_went, row.effort, row.wellbeing) == (1, 4, 4)


async def test_cancelling_saves_no_half_reflection(pupil, session_factory):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await pupil.press("Je kunt soorten krachten herkennen", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("😀 Top", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.send_text("/annuleer")
    [stopped] = await pupil.wait_for_reply()
    assert "gestopt" in stopped["text"].lower()
    assert await reflections(session_factory) == []
    # The old card's buttons no longer do anything.
    query = await pupil.press("💪", message_id=card["message_id"])
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert "al beantwoord" in answer["text"]


async def test_a_second_reflection_on_a_day_adds_and_counts(pupil, session_factory):
    for _round in range(2):
        await pupil.send_text("/reflectie")
        [card] = await pupil.wait_for_reply()
        for tap in ("Je kunt soorten krachten herkennen", "🙂 Goed", "💪💪💪", "🙂"):
            await pupil.press(tap, message_id=card["message_id"])
            await pupil.wait_for_edit(card["message_id"])
        await pupil.press("Nee, klaar", message_id=card["message_id"])
        [next_step] = await pupil.wait_for_reply()
        await pupil.press("Weet ik nog niet", message_id=next_step["message_id"])
        [summary] = await pupil.wait_for_reply()
    assert "2 keer" in summary["text"]
    assert len(await reflections(session_factory)) == 2


async def test_a_forged_goal_button_is_refused(pupil, school, session_factory):
    other_pupils_goal = pupil.curriculum.goals["1.5a"]
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    query = await pupil.press_raw(card["message_id"], PickGoal(goal_id=other_pupils_goal).pack())
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]


async def test_something_else_and_several_goals(pupil, session_factory):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await pupil.press("➕ Meer doelen tegelijk", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("Je kunt soorten krachten herkennen", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("Ik neem de regie over mijn eigen leren", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    await pupil.press("Verder ➡️", message_id=card["message_id"])
    await pupil.wait_for_edit(card["message_id"])
    for tap in ("😀 Top", "💪", "😀"):
        await pupil.press(tap, message_id=card["message_id"])
        await pupil.wait_for_edit(card["message_id"])
    await pupil.press("Nee, klaar", message_id=card["message_id"])
    [next_step] = await pupil.wait_for_reply()
    await pupil.press("Weet ik nog niet", message_id=next_step["message_id"])
    [summary] = await pupil.wait_for_reply()
    assert "opgeschreven" in summary["text"]  # effort 1: kind words, no praise for marks
    async with session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(ReflectionGoal))
    assert count == 2


async def finish_after_extra(pupil, card_id: int) -> dict:
    [next_step] = await pupil.wait_for_reply()
    await pupil.press("Weet ik nog niet", message_id=next_step["message_id"])
    [summary] = await pupil.wait_for_reply()
    return summary


async def answer_scales(pupil, card_id: int) -> None:
    for tap in ("Je kunt soorten krachten herkennen", "🙂 Goed", "💪💪💪", "🙂"):
        await pupil.press(tap, message_id=card_id)
        await pupil.wait_for_edit(card_id)


async def test_a_photo_becomes_evidence_tagged_with_the_goal(pupil, settings, session_factory):
    import io

    from PIL import Image

    from storage.models import Evidence, EvidenceFile, EvidenceGoal, MediaFile

    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await answer_scales(pupil, card["message_id"])
    await pupil.press("📷 Foto van mijn werk", message_id=card["message_id"])
    [ask] = await pupil.wait_for_reply()
    assert "foto" in ask["text"].lower()
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), "teal").save(buffer, format="JPEG")
    await pupil.send_photo(buffer.getvalue())
    summary = await finish_after_extra(pupil, card["message_id"])
    assert "portfolio" in summary["text"]

    [reflection] = await reflections(session_factory)
    async with session_factory() as session:
        [evidence] = (await session.scalars(select(Evidence))).all()
        goals = (await session.scalars(select(EvidenceGoal.goal_id))).all()
        files = (await session.scalars(select(EvidenceFile))).all()
        media = (await session.scalars(select(MediaFile))).all()
    assert evidence.reflection_id == reflection.id and evidence.pupil_id == reflection.pupil_id
    assert evidence.shared_with_parents is False  # the school's default
    assert goals == [pupil.curriculum.goals["1.1a"]]
    assert len(files) == 1 and files[0].thumbnail_file_id is not None
    assert len(media) == 2
    stored = list((settings.media_dir).rglob("*.jpg"))
    assert len(stored) == 2


async def test_a_voice_message_is_kept_with_the_reflection(pupil, session_factory):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await answer_scales(pupil, card["message_id"])
    # An Ogg page whose first packet is an Opus identification header, as phones record.
    voice = b"OggS\x00\x02" + bytes(22) + b"OpusHead" + bytes(200)
    await pupil.send_voice(voice, duration=3)
    await finish_after_extra(pupil, card["message_id"])
    [row] = await reflections(session_factory)
    assert row.voice_file_id is not None


async def test_a_broken_photo_gets_a_clear_answer_and_nothing_is_kept(pupil, session_factory):
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    await answer_scales(pupil, card["message_id"])
    await pupil.send_document(b"not an image at all", "werk.jpg", "image/jpeg")
    [hint] = await pupil.wait_for_reply()
    assert "knoppen" in hint["text"] or "Tik" in hint["text"]
