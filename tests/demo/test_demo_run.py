"""`portfolio-bot demo` in-process: the demo database, the people linked through the bot, the
page's people list and clock, and `--keep` continuing where the last run stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.demo import Demo, demo_paths
from bot.runner import SANDBOX_TOKEN
from config.settings import Settings
from sandbox import SandboxClient
from services.errors import UserError


def demo_settings(folder: Path) -> Settings:
    return Settings(
        bot_token=None,
        database_url=f"sqlite+aiosqlite:///{folder / 'portfolio.db'}",
        media_dir=folder / "media",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    running = Demo(demo_settings(tmp_path), keep=False, port=0, handle_signals=False)
    await running.start()
    yield running
    await running.stop()


async def page_config(demo: Demo) -> dict:
    async with httpx.AsyncClient(base_url=demo.sandbox.base_url) as http:
        response = await http.get("/chat/api/config")
    body = response.json()
    assert body["ok"], body
    return body["result"]


def test_the_demo_has_its_own_database_next_to_the_configured_one(tmp_path: Path):
    database, media = demo_paths(demo_settings(tmp_path))
    assert database == tmp_path / "demo.db"
    assert media == tmp_path / "demo-media"
    on_postgres = demo_settings(tmp_path).model_copy(
        update={"database_url": "postgresql+asyncpg://u@h/school"}
    )
    assert demo_paths(on_postgres)[0].name == "demo.db"
    clash = demo_settings(tmp_path).model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    )
    with pytest.raises(UserError, match="another name"):
        demo_paths(clash)


async def test_everyone_has_joined_and_the_page_lists_them(demo: Demo, tmp_path: Path):
    assert demo.url.endswith("/chat/")
    assert (tmp_path / "demo.db").exists()
    assert not (tmp_path / "portfolio.db").exists(), "a real school's database stays untouched"
    config = await page_config(demo)
    assert config["token"] == SANDBOX_TOKEN
    people = config["people"]
    roles = [person["role"] for person in people]
    assert roles.count("pupil") == 8 and roles.count("teacher") == 2 and roles.count("parent") == 8
    sam = next(person for person in people if person["name"] == "Sam de Vries")
    assert sam["detail"] == "Groep 6a"
    assert sam["language_code"] == "nl"
    peter = next(person for person in people if person["name"] == "Peter Jansen")
    assert peter["detail"] == "ouder van Noor Jansen"
    assert config["commands"][""], "the bot's command menu is there for the page's / button"
    assert config["clock"]["moved"] is False
    assert any("prompts" in note for note in config["notes"])

    async with SandboxClient(demo.sandbox.base_url, SANDBOX_TOKEN) as control:
        # Each chat opens with the welcome the bot gave on `/start CODE`, and the role's menu.
        messages = await control.messages(sam["user_id"])
        assert messages[0]["text"].startswith("/start ")
        assert "Sam de Vries" in messages[1]["text"]
        chat = await control.chat(sam["user_id"])
        assert chat["reply_keyboard"] is not None


async def test_the_page_moves_the_apps_clock(demo: Demo):
    assert demo.app is not None
    async with httpx.AsyncClient(base_url=demo.sandbox.base_url) as http:
        moved = (await http.post("/chat/api/clock", json={"move": "next monday 08:30"})).json()
        assert moved["ok"]
        assert moved["result"]["moved"] is True
        assert demo.app.clock.local_now().isoweekday() == 1
        assert demo.app.dispatcher["clock"] is demo.app.clock
        wrong = await http.post("/chat/api/clock", json={"move": "volgende eeuw"})
        assert wrong.status_code == 400
        assert "next school day" in wrong.json()["description"]
        back = (await http.post("/chat/api/clock", json={"move": "now"})).json()
        assert back["result"]["moved"] is False


async def test_moving_the_clock_to_reflection_time_brings_the_prompt(demo: Demo):
    assert demo.app is not None
    sam = next(p for p in (await page_config(demo))["people"] if p["name"] == "Sam de Vries")
    async with httpx.AsyncClient(base_url=demo.sandbox.base_url) as http:
        moved = await http.post("/chat/api/clock", json={"move": "next school day 14:35"})
        assert moved.json()["ok"]
    async with SandboxClient(demo.sandbox.base_url, SANDBOX_TOKEN) as control:
        texts = [str(message.get("text")) for message in await control.messages(sam["user_id"])]
    assert any("Hoe ging het vandaag" in text for text in texts)


async def test_keep_continues_the_same_demo(tmp_path: Path):
    settings = demo_settings(tmp_path)
    first = Demo(settings, keep=False, port=0, handle_signals=False)
    await first.start()
    try:
        noor = next(p for p in (await page_config(first))["people"] if p["name"] == "Noor Jansen")
        async with SandboxClient(first.sandbox.base_url, SANDBOX_TOKEN) as control:
            user = await control.create_user("ignored")  # a newcomer made in the page
            await user.send_text("/start")
            await user.wait_for_reply()
    finally:
        await first.stop()

    again = Demo(settings, keep=True, port=0, handle_signals=False)
    status = await again.start()
    try:
        assert not status.fresh
        people = (await page_config(again))["people"]
        assert len([p for p in people if p["role"] != "telegram"]) == 18
        noor_again = next(p for p in people if p["name"] == "Noor Jansen")
        assert noor_again["user_id"] == noor["user_id"], "the same Telegram user as before"
        async with SandboxClient(again.sandbox.base_url, SANDBOX_TOKEN) as control:
            # Update ids continue after the last run's: the bot must not skip these as seen.
            messages = await control.messages(noor["user_id"])
            assert messages[0]["text"] == "/start"
            assert "Noor Jansen" in messages[1]["text"]
            newcomer = await control.create_user("Nieuw")
            assert newcomer.id not in {p["user_id"] for p in people}
            await newcomer.send_text("/help")
            [answer] = await newcomer.wait_for_reply()
            assert answer["text"]
    finally:
        await again.stop()

    fresh = Demo(settings, keep=False, port=0, handle_signals=False)
    status = await fresh.start()
    try:
        assert status.fresh
        people = (await page_config(fresh))["people"]
        assert len(people) == 18, "a fresh demo forgets the newcomer"
    finally:
        await fresh.stop()


def test_the_demo_command_line():
    from bot.cli import build_parser

    args = build_parser().parse_args(["demo", "--keep", "--port", "9000"])
    assert (args.keep, args.port) == (True, 9000)
    args = build_parser().parse_args(["demo"])
    assert (args.keep, args.port) == (False, None)
