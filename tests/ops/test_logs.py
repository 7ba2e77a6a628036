"""Logs: one structured line per update, and never a name, a message text or a file."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.observability import JsonFormatter, configure_logging, pin_library_loggers
from config.settings import Settings
from tests.factories import build_curriculum, give_goal
from tests.images import small_jpeg

STORY = "Vandaag bouwde ik een katapult met mijn opa Hendrik"
CAPTION = "Mijn tekening van de zonnebloem"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything every logger writes, at DEBUG, through the JSON formatter, with the library
    levels the bot sets (configure_logging)."""
    pin_library_loggers()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_a_pupils_name_and_words_never_reach_the_logs(
    running_bot, telegram, school, session_factory, captured_logs
):
    curriculum = await build_curriculum(session_factory, school)
    await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1a"],
    )
    pupil = await telegram.create_user("Sam", last_name="de Vries")
    await pupil.send_text(f"/start {school.codes['P1']}")
    [welcome] = await pupil.wait_for_reply()
    assert "Sam de Vries" in welcome["text"]
    await pupil.send_text("/reflectie")
    [card] = await pupil.wait_for_reply()
    for tap in ("Je kunt soorten krachten herkennen", "😀 Top", "💪💪💪", "🙂"):
        await pupil.press(tap, message_id=card["message_id"])
        await pupil.wait_for_edit(card["message_id"])
    await pupil.send_text(STORY)
    [next_step] = await pupil.wait_for_reply()
    await pupil.press("Weet ik nog niet", message_id=next_step["message_id"])
    await pupil.wait_for_reply()
    await pupil.send_photo(small_jpeg(), caption=CAPTION)
    await pupil.wait_for_reply()
    await running_bot.settled()

    text = captured_logs.getvalue()
    for secret in ("Vries", "Sam", STORY, "katapult", "Hendrik", CAPTION, school.codes["P1"]):
        assert secret not in text, f"{secret!r} is in the logs"

    lines = [json.loads(line) for line in text.splitlines()]
    updates = [line for line in lines if line["logger"] == "bot.updates" and "outcome" in line]
    # /start, /reflectie, four taps, the story, one tap, the photo: one line each.
    ids = [line["update_id"] for line in updates]
    assert ids == sorted(set(ids))
    assert len(updates) == 9
    assert {line["outcome"] for line in updates} == {"handled"}
    assert updates[0]["command"] == "/start" and updates[0]["type"] == "message"
    assert updates[-1]["content"] == "photo"
    assert all(line["duration_ms"] >= 0 for line in updates)


def test_configure_logging_writes_json_lines(capsys):
    settings = Settings(log_format="json", _env_file=None)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # as in a fresh process
    try:
        configure_logging(settings)
        logging.getLogger("bot.test").info("hello %s", "world", extra={"update_id": 7})
        [line] = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entry = json.loads(line)
    assert entry["msg"] == "hello world" and entry["update_id"] == 7 and entry["level"] == "info"
