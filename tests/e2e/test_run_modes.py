"""The other ways to run: a webhook server, Redis for dialogue state, and the real command."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import threading
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
from aiohttp import web
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bot.app import build_app
from bot.runner import SANDBOX_TOKEN, build_webhook_app
from config.settings import Settings
from sandbox import SandboxClient
from tests.conftest import _pg_dsn
from tests.e2e.conftest import TOKEN, RunningBot
from tests.factories import DemoSchool

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_handles_a_pupil_joining(
    settings: Settings, telegram: SandboxClient, school: DemoSchool
):
    port = free_port()
    webhook_settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
    app = build_app(webhook_settings, token=TOKEN)
    runner = web.AppRunner(build_webhook_app(app, secret="a-shared-secret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        pupil = await telegram.create_user("Sam")
        await pupil.send_text(f"/start {school.codes['P1']}")
        [welcome] = await pupil.wait_for_reply()
        assert "Sam de Vries" in welcome["text"]
        assert pupil.reply_keyboard()[-1] == ["❓ Hulp", "🌐 Taal"]
    finally:
        await runner.cleanup()
        await app.close()


async def test_webhook_mode_answers_a_tap_in_the_reply_to_telegram(
    settings: Settings, telegram: SandboxClient, school: DemoSchool
):
    """The tap's answer rides on the HTTP reply to the delivery: no request of its own."""
    port = free_port()
    webhook_settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
    app = build_app(webhook_settings, token=TOKEN)
    runner = web.AppRunner(build_webhook_app(app, secret="a-shared-secret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        pupil = await telegram.create_user("Sam")
        await pupil.send_text(f"/start {school.codes['P1']}")
        await pupil.wait_for_reply()
        await pupil.send_text("🌐 Taal")
        [choice] = await pupil.wait_for_reply()
        query = await pupil.press("🇬🇧 English", message_id=choice["message_id"])
        await pupil.wait_for_callback_answer(query["id"])
        await pupil.wait_for_reply()
        assert pupil.reply_keyboard()[-1] == ["❓ Help", "🌐 Language"]
        answers = await telegram.calls("answerCallbackQuery")
        assert [call["source"] for call in answers] == ["webhook-reply"]
        assert answers[0]["ok"]
    finally:
        await runner.cleanup()
        await app.close()


async def test_webhook_mode_answers_a_tap_at_once_when_the_step_fails(
    settings: Settings, telegram: SandboxClient, school: DemoSchool
):
    """A failing step gets its error message, and its spinner stops all the same."""
    port = free_port()
    webhook_settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
    app = build_app(webhook_settings, token=TOKEN)
    runner = web.AppRunner(build_webhook_app(app, secret="a-shared-secret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        pupil = await telegram.create_user("Sam")
        await pupil.send_text(f"/start {school.codes['P1']}")
        await pupil.wait_for_reply()
        await pupil.send_text("🌐 Taal")
        [choice] = await pupil.wait_for_reply()
        # Telegram fails the step's new keyboard as often as it is tried: the step fails.
        await telegram.inject_fault("sendMessage", status=500, count=3)
        query = await pupil.press("🇬🇧 English", message_id=choice["message_id"])
        await pupil.wait_for_callback_answer(query["id"])
        [sorry] = await pupil.wait_for_reply()
        assert "Er is niets kwijtgeraakt" in sorry["text"]
        answers = await telegram.calls("answerCallbackQuery")
        assert [call["source"] for call in answers] == ["http"]
    finally:
        await telegram.clear_faults()
        await runner.cleanup()
        await app.close()


# How long the lock is held at most once an update waits for it, and how quickly a health check
# must be answered meanwhile.
LOCK_HELD_SECONDS = 2.0
HEALTH_CHECK_SECONDS = 0.5


class WriteLockHolder:
    """Another process holding the database's write lock (the command line's import, say): on
    SQLite its write transaction, on PostgreSQL a lock on the table of processed updates.

    It runs on a thread of its own, not in the event loop, so it lets go on time even while
    the loop is stuck: at most LOCK_HELD_SECONDS after `waiting` is set, or once released.
    """

    def __init__(self, db_url: str, waiting: threading.Event) -> None:
        self.db_url = db_url
        self.waiting = waiting
        self.held = threading.Event()
        self.release = threading.Event()
        self.released_at = float("inf")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if make_url(self.db_url).get_backend_name() == "sqlite":
            self._hold_sqlite()
        else:
            asyncio.run(self._hold_postgres())

    def _wait(self) -> None:
        self.waiting.wait(timeout=30)
        self.release.wait(timeout=LOCK_HELD_SECONDS)

    def _hold_sqlite(self) -> None:
        connection = sqlite3.connect(str(make_url(self.db_url).database), isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            self.held.set()
            self._wait()
            connection.execute("ROLLBACK")
            self.released_at = time.monotonic()
        finally:
            connection.close()

    async def _hold_postgres(self) -> None:
        connection = await asyncpg.connect(_pg_dsn(self.db_url))
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE processed_update IN EXCLUSIVE MODE")
                self.held.set()
                await asyncio.to_thread(self._wait)
            self.released_at = time.monotonic()
        finally:
            await connection.close()


def check_health_while_waiting(port: int, waiting: threading.Event) -> tuple[int, float, float]:
    """From a thread of its own (a load balancer's probe): GET /healthz once the update waits
    for the database. Returns the status, the seconds it took and when it was answered."""
    assert waiting.wait(timeout=30), "the update never reached the database"
    time.sleep(0.2)  # its claim now waits for the lock
    started = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    answered = time.monotonic()
    return response.status_code, answered - started, answered


async def test_webhook_mode_answers_health_checks_while_an_update_waits_for_the_database(
    db_url: str, settings: Settings, telegram: SandboxClient, school: DemoSchool
):
    """An update that must write waits while another process holds the write lock; the server
    meanwhile answers its health check at once (the wait happens off the event loop), and the
    update goes through once the lock is let go."""
    port = free_port()
    webhook_settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
    app = build_app(webhook_settings, token=TOKEN)
    claiming = threading.Event()

    def notice_claim(_connection, _cursor, statement: str, *_args) -> None:
        if "INSERT INTO processed_update" in statement:
            claiming.set()

    event.listen(app.engine.sync_engine, "before_cursor_execute", notice_claim)
    runner = web.AppRunner(build_webhook_app(app, secret="a-shared-secret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    holder = WriteLockHolder(db_url, claiming)
    try:
        pupil = await telegram.create_user("Sam")
        holder.thread.start()
        assert await asyncio.to_thread(holder.held.wait, 10)
        await pupil.send_text(f"/start {school.codes['P1']}")
        status, seconds, answered_at = await asyncio.to_thread(
            check_health_while_waiting, port, claiming
        )
        holder.release.set()
        [welcome] = await pupil.wait_for_reply()
        assert "Sam de Vries" in welcome["text"]
        await asyncio.to_thread(holder.thread.join, 10)
        assert status == 200
        assert seconds < HEALTH_CHECK_SECONDS, f"/healthz took {seconds:.2f} s"
        assert answered_at < holder.released_at, "answered only after the lock was let go"
    finally:
        holder.release.set()
        await runner.cleanup()
        await app.close()


async def redis_or_skip() -> redis.Redis:
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.ConnectionError):
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


async def test_redis_dialogue_state_survives_a_restart(
    settings: Settings, telegram: SandboxClient, school: DemoSchool
):
    client = await redis_or_skip()
    bot_id = TOKEN.split(":")[0]
    pattern = f"fsm:{bot_id}:*"

    async def forget() -> None:
        async for key in client.scan_iter(match=pattern):
            await client.delete(key)

    await forget()
    bot = RunningBot(settings.model_copy(update={"redis_url": REDIS_URL}))
    await bot.start()
    try:
        pupil = await telegram.create_user("Noor")
        await pupil.send_text("/start")
        await pupil.wait_for_reply()
        assert [key async for key in client.scan_iter(match=pattern)]
        await bot.restart()
        await pupil.send_text("hallo")
        [hint] = await pupil.wait_for_reply()
        assert "lijkt niet op een code" in hint["text"]
    finally:
        await bot.stop()
        await forget()
        await client.aclose()


async def test_the_run_command_without_a_token_serves_the_demo(tmp_path):
    """`portfolio-bot run` as README starts it, without BOT_TOKEN: the demo school in its own
    database, the sandbox with its chat page, and the bot answering; a second run continues
    the same demo (`--keep`)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "SANDBOX_PORT": str(port),
        "MEDIA_DIR": str(tmp_path / "media"),
    }
    env.pop("BOT_TOKEN", None)
    url = f"http://127.0.0.1:{port}"

    async def run_once() -> list[str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        seen: list[str] = []
        try:
            assert process.stdout is not None
            while not any(url in line for line in seen):
                line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
                assert line, f"the bot stopped before serving the sandbox: {seen}"
                seen.append(line.decode())
            async with httpx.AsyncClient(base_url=url) as http:
                page = await http.get("/chat/")
                assert page.status_code == 200 and "chat.js" in page.text
                config = (await http.get("/chat/api/config")).json()["result"]
            pupils = [person for person in config["people"] if person["role"] == "pupil"]
            assert len(pupils) == 8
            async with SandboxClient(url, SANDBOX_TOKEN) as client:
                user = await client.create_user("Daan")
                await user.send_text("/start")
                [ask] = await user.wait_for_reply(timeout=15)
                assert "ABCD-EFGH" in ask["text"]
                [welcome_back] = [
                    message
                    for message in await client.messages(pupils[0]["user_id"])
                    if message["sandbox"]["from_bot"]
                ]
                assert pupils[0]["name"] in welcome_back["text"]
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), timeout=15)
        assert process.returncode == 0, seen
        return seen

    first = await run_once()
    assert [line for line in first if url in line] == [
        f"Open {url}/chat/ in a browser. Stop with Ctrl+C.\n"
    ]
    assert any("a fresh demo school" in line for line in first)
    assert (tmp_path / "demo.db").exists()
    assert not (tmp_path / "bot.db").exists(), "a real school's database is left alone"
    second = await run_once()
    assert any("as you left it" in line for line in second)
