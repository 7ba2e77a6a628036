"""The other ways to run: a webhook server, Redis for dialogue state, and the real command."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import httpx
import pytest
import redis.asyncio as redis
from aiohttp import web

from bot.app import build_app
from bot.runner import SANDBOX_TOKEN, build_webhook_app
from config.settings import Settings
from sandbox import SandboxClient
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
