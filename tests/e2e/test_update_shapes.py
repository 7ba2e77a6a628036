"""Updates as Telegram sends them (tests/data/updates/*.json, written as the Bot API documents
them), the odd ones included, fed through the sandbox to the bot in both run modes, while the
pupil is idle and in the middle of a reflection.

For each: no exception in the log, the right answer or silence, no row changed but the
update's own (processed_update) and what the update is about, and the dialogue goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App, build_app
from bot.observability import JsonFormatter, configure_logging, pin_library_loggers
from bot.runner import build_webhook_app
from config.settings import Settings
from sandbox import SandboxClient, SandboxUser
from storage.models import Base, Person
from tests.conftest import TOKEN
from tests.e2e.conftest import RunningBot
from tests.factories import DemoSchool, build_curriculum, give_goal

SHAPES = Path(__file__).resolve().parents[1] / "data" / "updates"
# The pupil of the shapes: Sam de Vries (P1 of the demo school), as Telegram user 700100.
SAM = 700100
GOAL = "Je kunt soorten krachten herkennen"
# Words of what Sam wrote in the shapes, which never reach the log.
DIARY_WORDS = ("geheime", "dagboek", "rekenen")
DELIVERY_SECONDS = 15.0


def shape(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SHAPES / f"{name}.json").read_text())
    return loaded


# ------------------------------------------------------------------------------ the bot


class LiveBot(Protocol):
    app: App | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def settled(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebhookBot:
    """The bot as `portfolio-bot run --webhook` serves it: Telegram (the sandbox) posts each
    update and waits for the answer, which comes once the update committed."""

    def __init__(self, settings: Settings) -> None:
        port = free_port()
        self.port = port
        self.settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
        self.app: App | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.app = build_app(self.settings, token=TOKEN)
        self._runner = web.AppRunner(build_webhook_app(self.app, secret="a-shared-secret"))
        await self._runner.setup()  # registers the webhook with the sandbox
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.app is not None and self._runner is not None
        await self._runner.cleanup()
        await self.app.close()
        self.app = None

    async def settled(self) -> None:
        """Nothing to wait for: the sandbox counts an update delivered once it is answered."""


@pytest.fixture(params=["polling", "webhook"])
async def live_bot(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[LiveBot]:
    bot: LiveBot = RunningBot(settings) if request.param == "polling" else WebhookBot(settings)
    await bot.start()
    yield bot
    if bot.app is not None:
        await bot.stop()


async def delivered(telegram: SandboxClient, bot: LiveBot) -> None:
    """Until every queued update was confirmed by the bot (polling: asked past it; webhook:
    answered 2xx, or given up on), and what the bot was doing with them is committed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELIVERY_SECONDS
    while pending := await telegram.pending_updates():
        kinds = [sorted(update)[-1] for update in pending]
        assert loop.time() < deadline, f"still not delivered: {kinds}"
        await asyncio.sleep(0.05)
    await bot.settled()


# ----------------------------------------------------------------------------- the log


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line (INFO and up), as JSON lines, with the library levels the bot sets."""
    pin_library_loggers()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def log_lines(captured: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.getvalue().splitlines()]


def assert_no_exception_logged(
    captured: io.StringIO, recorded: pytest.WarningsRecorder | None = None
) -> None:
    failures = [
        f"{line['logger']}: {line['msg']}"
        for line in log_lines(captured)
        if line["level"] in ("error", "critical") or "exc" in line
    ]
    assert not failures, failures
    if recorded is not None:
        # aiogram's warning about an update type it does not know: plain text on stderr,
        # outside the JSON log, with the whole update in it.
        runtime = [str(w.message)[:80] for w in recorded if issubclass(w.category, RuntimeWarning)]
        assert not runtime, runtime


# ---------------------------------------------------------------------------- the rows


async def rows(
    session_factory: async_sessionmaker[AsyncSession], *, leave_out: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Every row of every table but processed_update (each update's own), as text; columns
    named `table.column` in `leave_out` are left out."""
    found: dict[str, list[str]] = {}
    async with session_factory() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "processed_update":
                continue
            columns = [c for c in table.columns if f"{table.name}.{c.name}" not in leave_out]
            result = await session.execute(select(*columns))
            found[table.name] = sorted(repr(tuple(row)) for row in result)
    return found


async def unreachable_since(
    session_factory: async_sessionmaker[AsyncSession], person_id: int
) -> datetime | None:
    async with session_factory() as session:
        return await session.scalar(select(Person.unreachable_since).where(Person.id == person_id))


async def last_call_id(telegram: SandboxClient) -> int:
    calls = await telegram.calls()
    return calls[-1]["id"] if calls else 0


async def calls_since(telegram: SandboxClient, mark: int) -> list[str]:
    """The bot's Bot API calls after `mark`, but its polling."""
    return [
        call["method"]
        for call in await telegram.calls(since_id=mark)
        if call["method"] != "getUpdates"
    ]


# ------------------------------------------------------------------------------ the pupil


@pytest.fixture(params=["idle", "mid-dialogue"])
def moment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Pupil:
    """Sam, joined, and (mid-dialogue) halfway through a reflection: the goal chosen, the
    feeling still to pick."""

    def __init__(self, user: SandboxUser, card: dict[str, Any] | None) -> None:
        self.user = user
        self.card = card

    async def goes_on(self) -> None:
        """The next step is answered as if nothing had come in between."""
        if self.card is None:
            await self.user.send_text("/help")
            [help_text] = await self.user.wait_for_reply(timeout=10)
            assert "/reflectie" in help_text["text"]
            return
        await self.user.press("😀 Top", message_id=self.card["message_id"])
        edited = await self.user.wait_for_edit(self.card["message_id"], timeout=10)
        assert "💪" in str(edited.get("reply_markup")), "the reflection did not go on"


@pytest.fixture
async def sam(
    live_bot: LiveBot,
    telegram: SandboxClient,
    school: DemoSchool,
    session_factory: async_sessionmaker[AsyncSession],
    moment: str,
) -> Pupil:
    curriculum = await build_curriculum(session_factory, school)
    await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1a"],
    )
    user = await telegram.create_user("Sam", user_id=SAM)
    await user.send_text(f"/start {school.codes['P1']}")
    [welcome] = await user.wait_for_reply(timeout=10)
    assert "Sam de Vries" in welcome["text"]
    card = None
    if moment == "mid-dialogue":
        await user.send_text("/reflectie")
        [card] = await user.wait_for_reply(timeout=10)
        await user.press(GOAL, message_id=card["message_id"])
        await user.wait_for_edit(card["message_id"], timeout=10)
    await delivered(telegram, live_bot)
    return Pupil(user, card)


# ---------------------------------------------------------------------------- the tests

# Shapes that get no answer and change nothing, with how the sandbox must queue them:
# Telegram delivers a type the bot did not ask for when the update was created before the
# bot's allowed_updates; update ids are Telegram's own, so keeping one is a test's doing.
QUIET = {
    # A post in a channel the bot is in (even one naming it): a channel is not a chat.
    "channel_post": {"predating_allowed_updates": True},
    # Made administrator of a channel: no pointer to the private chat posted there.
    "my_chat_member_channel_administrator": {},
    # Someone else promoted in that channel.
    "chat_member_channel_administrator": {"predating_allowed_updates": True},
    # Shapes Telegram never sends: refused before anything is written.
    "message_from_bot": {},
    "message_without_from": {},
    "update_id_2_63": {"keep_update_id": True},
    # An update type of a later Bot API than this aiogram knows: skipped, no warning.
    "unknown_update_type": {"predating_allowed_updates": True},
    # A message aiogram cannot read (a forward from an origin of a later Bot API): skipped,
    # logged without its words, confirmed with the rest.
    "message_unreadable": {},
}


@pytest.mark.parametrize("name", list(QUIET))
async def test_a_shape_gets_silence_and_changes_nothing(
    name: str,
    live_bot: LiveBot,
    telegram: SandboxClient,
    sam: Pupil,
    session_factory: async_sessionmaker[AsyncSession],
    captured_logs: io.StringIO,
    recwarn: pytest.WarningsRecorder,
):
    before = await rows(session_factory)
    mark = await last_call_id(telegram)
    await telegram.enqueue_raw_update(shape(name), **QUIET[name])
    await delivered(telegram, live_bot)
    assert await calls_since(telegram, mark) == []
    assert await rows(session_factory) == before
    await sam.goes_on()
    assert_no_exception_logged(captured_logs, recwarn)
    if isinstance(live_bot, WebhookBot):
        # Every delivery was answered 2xx: Telegram has nothing to deliver again.
        assert (await telegram.overview())["webhook"].get("last_error_message") is None


async def test_a_message_with_a_field_of_a_later_bot_api_is_answered_as_usual(
    live_bot: LiveBot,
    telegram: SandboxClient,
    sam: Pupil,
    session_factory: async_sessionmaker[AsyncSession],
    captured_logs: io.StringIO,
):
    before = await rows(session_factory)
    await telegram.enqueue_raw_update(shape("message_future_field"))
    [help_text] = await sam.user.wait_for_reply(timeout=10)
    assert "/reflectie" in help_text["text"]
    await delivered(telegram, live_bot)
    assert await rows(session_factory) == before
    await sam.goes_on()
    assert_no_exception_logged(captured_logs)


async def test_a_tap_on_an_inline_message_is_answered_and_nothing_else_happens(
    live_bot: LiveBot,
    telegram: SandboxClient,
    sam: Pupil,
    session_factory: async_sessionmaker[AsyncSession],
    captured_logs: io.StringIO,
):
    tap = shape("callback_query_inline_message")
    before = await rows(session_factory)
    mark = await last_call_id(telegram)
    await telegram.enqueue_raw_update(tap)
    await delivered(telegram, live_bot)
    answer = await telegram.callback_answer(tap["callback_query"]["id"])
    assert answer["answered"], "the button's spinner never stops"
    assert answer["answer"]["text"] and not answer["answer"]["show_alert"]
    assert await calls_since(telegram, mark) == ["answerCallbackQuery"]
    assert await rows(session_factory) == before
    await sam.goes_on()
    assert_no_exception_logged(captured_logs)


async def test_blocking_the_bot_marks_unreachable_and_only_a_message_or_unblocking_undoes_it(
    live_bot: LiveBot,
    telegram: SandboxClient,
    school: DemoSchool,
    sam: Pupil,
    session_factory: async_sessionmaker[AsyncSession],
    captured_logs: io.StringIO,
):
    person = school.persons["P1"]
    but_reachability = frozenset({"person.unreachable_since"})
    before = await rows(session_factory, leave_out=but_reachability)
    mark = await last_call_id(telegram)

    await telegram.enqueue_raw_update(shape("my_chat_member_kicked"))
    await delivered(telegram, live_bot)
    blocked_at = await unreachable_since(session_factory, person)
    assert blocked_at is not None, "blocking the bot left Sam reachable"

    # A tap on a message elsewhere says nothing about the private chat; blocking again
    # changes nothing either.
    await telegram.enqueue_raw_update(shape("callback_query_inline_message"))
    await telegram.enqueue_raw_update(shape("my_chat_member_kicked"))
    await delivered(telegram, live_bot)
    assert await unreachable_since(session_factory, person) == blocked_at

    await telegram.enqueue_raw_update(shape("my_chat_member_member"))
    await delivered(telegram, live_bot)
    assert await unreachable_since(session_factory, person) is None
    assert await calls_since(telegram, mark) == ["answerCallbackQuery"]
    assert await rows(session_factory, leave_out=but_reachability) == before

    # Blocked once more, a message of his own says he is back.
    await telegram.enqueue_raw_update(shape("my_chat_member_kicked"))
    await delivered(telegram, live_bot)
    assert await unreachable_since(session_factory, person) is not None
    await sam.goes_on()
    await delivered(telegram, live_bot)
    assert await unreachable_since(session_factory, person) is None
    assert_no_exception_logged(captured_logs)


async def test_an_unreadable_update_is_logged_by_type_and_field_only(
    live_bot: LiveBot,
    telegram: SandboxClient,
    sam: Pupil,
    captured_logs: io.StringIO,
):
    unreadable = await telegram.enqueue_raw_update(shape("message_unreadable"))
    unknown = await telegram.enqueue_raw_update(
        shape("unknown_update_type"), predating_allowed_updates=True
    )
    # Whatever became of them by then (delivered is asserted below): the log has no words.
    with contextlib.suppress(AssertionError):
        await delivered(telegram, live_bot)
    text = captured_logs.getvalue()
    written = [word for word in DIARY_WORDS if word in text]
    assert not written, f"what Sam wrote is in the log: {written}"
    await delivered(telegram, live_bot)
    await sam.goes_on()
    lines = log_lines(captured_logs)
    [skipped] = [line for line in lines if line.get("outcome") == "unreadable"]
    assert skipped["update_id"] == unreadable and skipped["type"] == "message"
    assert skipped["problems"] == ["message.forward_origin: union_tag_invalid"]
    [refused] = [line for line in lines if line.get("update_id") == unknown and "outcome" in line]
    assert refused["outcome"] == "refused" and refused["type"] == "unknown"


async def test_an_unreadable_update_in_a_polled_batch_holds_up_no_one(
    settings: Settings,
    telegram: SandboxClient,
    school: DemoSchool,
    session_factory: async_sessionmaker[AsyncSession],
    captured_logs: io.StringIO,
):
    """Queued while the bot is down, the pupils' messages and the unreadable one between them
    come in one batch: the others are answered, and all of it is confirmed."""
    sam = await telegram.create_user("Sam", user_id=SAM)
    noor = await telegram.create_user("Noor")
    await sam.send_text(f"/start {school.codes['P1']}")
    await telegram.enqueue_raw_update(shape("message_unreadable"))
    await noor.send_text(f"/start {school.codes['P2']}")
    bot = RunningBot(settings)
    await bot.start()
    try:
        [welcome_sam] = await sam.wait_for_reply(timeout=10)
        [welcome_noor] = await noor.wait_for_reply(timeout=10)
        assert "Sam de Vries" in welcome_sam["text"] and "Noor Jansen" in welcome_noor["text"]
        await delivered(telegram, bot)  # the unreadable one confirmed with the rest
    finally:
        await bot.stop()
    assert_no_exception_logged(captured_logs)


def test_a_warning_is_one_json_line_of_the_log(capsys: pytest.CaptureFixture[str]):
    """With LOG_FORMAT=json a library's warning is a line of the log like any other, not
    plain text of its own among the JSON lines."""
    settings = Settings(log_format="json", _env_file=None)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # as in a fresh process
    # An earlier test may have left warnings captured; catch_warnings would then put the
    # plain printer back for its duration, and configure_logging sees nothing to do.
    logging.captureWarnings(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            configure_logging(settings)
            try:
                warnings.warn("Detected unknown update type.", RuntimeWarning, stacklevel=1)
            finally:
                logging.captureWarnings(False)
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    [entry] = [json.loads(line) for line in lines]
    assert entry["logger"] == "py.warnings" and entry["level"] == "warning"
    assert "Detected unknown update type." in entry["msg"]
