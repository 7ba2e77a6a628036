"""Hostile and odd input: a clear answer, nothing stored that should not be, no crash."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sandbox import SandboxClient
from storage.models import Observation, Reflection
from tests.e2e.test_observations import joined

STALE = "Deze knop werkt niet meer"


def _private(user_id: int, name: str) -> dict[str, Any]:
    return {
        "message_id": 900_000 + int(time.time() * 1000) % 100_000,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": name},
        "from": {"id": user_id, "is_bot": False, "first_name": name},
    }


async def _count(session_factory, model) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_overrides_zalgo_and_control_characters_are_cleaned_from_a_note(
    running_bot, telegram, school, session_factory
):
    teacher = await joined(telegram, school, "T1", "Anouk")
    zalgo = "g" + "\u0336\u0335\u0334\u0337\u0338\u0321\u0322" * 6 + "oed"
    await teacher.send_text(f"/obs Sam werkte \u202egpj.exe\u202c {zalgo}\x07 #inzet")
    [ask] = await teacher.wait_for_reply()
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()
    async with session_factory() as session:
        [note] = (await session.scalars(select(Observation))).all()
    assert "\u202e" not in note.text and "\x07" not in note.text
    assert "gpj.exe" in note.text
    assert sum(unicodedata.combining(char) > 0 for char in note.text) <= 4


async def test_forged_and_foreign_callback_data_change_nothing(
    running_bot, telegram, school, session_factory
):
    pupil = await joined(telegram, school, "P1", "Sam")
    menu = pupil.last_bot_message()
    before = await _count(session_factory, Reflection)
    for data in ("", "x" * 64, "rg:999999", "rsc:how:99", "pfo:-1", "onf:1", "gdc:1:1", "💥"):
        query = await pupil.press_raw(menu["message_id"], data)
        # Always answered (no endless spinner); a foreign id shows only the pupil's own things.
        await pupil.wait_for_callback_answer(query["id"])
    assert await _count(session_factory, Reflection) == before
    # Another pupil's teacher-only button (a note about Noor) from Sam's chat: refused.
    query = await pupil.press_raw(menu["message_id"], f"onf:{school.persons['P2']}")
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert answer["text"] and answer["show_alert"]
    assert await _count(session_factory, Observation) == 0
    assert not [m for m in await pupil.messages() if "Noor" in str(m.get("text"))]


async def test_update_types_the_bot_does_not_handle_get_a_hint_or_are_ignored(
    running_bot, telegram: SandboxClient, school, session_factory
):
    pupil = await joined(telegram, school, "P1", "Sam")
    sticker = {
        **_private(pupil.id, "Sam"),
        "sticker": {
            "file_id": "sticker-1",
            "file_unique_id": "s1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    }
    await telegram.enqueue_raw_update({"message": sticker})
    [hint] = await pupil.wait_for_reply()
    assert "Daar kan ik niets mee" in hint["text"]

    poll = {
        **_private(pupil.id, "Sam"),
        "poll": {
            "id": "poll-1",
            "question": "Pizza?",
            "options": [
                {"persistent_id": "1", "text": "ja", "voter_count": 0},
                {"persistent_id": "2", "text": "nee", "voter_count": 0},
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        },
    }
    await telegram.enqueue_raw_update({"message": poll})
    [hint] = await pupil.wait_for_reply()
    assert "Daar kan ik niets mee" in hint["text"]

    edited = {**_private(pupil.id, "Sam"), "edit_date": int(time.time()), "text": "/reflectie"}
    channel = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": -1001234, "type": "channel", "title": "Nieuws"},
        "text": "Iedereen hallo",
    }
    await telegram.enqueue_raw_update({"edited_message": edited})
    await telegram.enqueue_raw_update({"channel_post": channel})
    # Both fetched and acknowledged, and neither starts anything: an edited "/reflectie" is
    # not a new request, a channel is not a private chat.
    await pupil.send_text("/help")
    [help_text] = await pupil.wait_for_reply()
    assert "/reflectie" in help_text["text"]
    await running_bot.settled()
    # Polling confirms a batch with the getUpdates after it, a moment after its last update.
    for _ in range(100):
        if not await telegram.pending_updates():
            break
        await asyncio.sleep(0.02)
    assert await telegram.pending_updates() == []
    texts = [str(m.get("text")) for m in await pupil.messages()]
    assert not [text for text in texts if "Hoe ging het" in text or "Waar werkte" in text]
    assert await _count(session_factory, Reflection) == 0


async def test_a_note_longer_than_allowed_is_answered_kindly_and_not_cut(
    running_bot, telegram, school, session_factory
):
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs Sam " + "heel " * 500)
    [answer] = await teacher.wait_for_reply()
    assert "korter" in answer["text"]
    assert await _count(session_factory, Observation) == 0


_texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=200
)


async def test_fuzzed_texts_and_callback_data_never_break_the_bot(
    running_bot, telegram, school, session_factory
):
    """Random text and callback data, as a pupil in the middle of a reflection; after each
    batch the bot still answers a plain /help, and no update failed."""
    pupil = await joined(telegram, school, "P1", "Sam")
    menu = pupil.last_bot_message()
    failures: list[str] = []

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(text=_texts, data=st.text(max_size=64))
    def check(text: str, data: str) -> None:
        if text.strip():  # Telegram does not deliver empty messages
            examples.append((text, data))

    examples: list[tuple[str, str]] = []  # drawn by hypothesis, sent in order below
    check()
    await pupil.send_text("/reflectie")
    await pupil.wait_for_reply()
    for text, data in examples:
        await pupil.send_text(text)
        await pupil.wait_for_reply(timeout=10)
        forged = data.encode()[:64].decode(errors="ignore")  # Telegram's 64-byte limit
        query = await pupil.press_raw(menu["message_id"], forged)
        try:
            await pupil.wait_for_callback_answer(query["id"])
        except TimeoutError:
            failures.append(repr(data))
    assert not failures
    await pupil.send_text("/annuleer")
    await pupil.wait_for_reply()
    await pupil.send_text("/help")
    [help_text] = await pupil.wait_for_reply()
    assert "/reflectie" in help_text["text"]
