"""The sandbox's chat page: its files, its config and clock endpoints, with and without the
hooks the demo sets, and the control-API additions it relies on (users with chosen ids,
update ids that continue after a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox import SandboxClient, SandboxError, TelegramSandbox
from sandbox.page import PageHooks

TOKEN = "5555:page-test-token-not-a-secret"


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    sandbox = TelegramSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def http(sandbox: TelegramSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        yield client


@pytest.fixture
async def control(sandbox: TelegramSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url, TOKEN) as client:
        yield client


async def test_the_page_and_its_files_are_served(http: httpx.AsyncClient):
    root = await http.get("/", follow_redirects=False)
    assert root.status_code == 302 and root.headers["location"] == "/chat/"
    page = await http.get("/chat/?token=1:x", follow_redirects=True)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert 'src="static/chat.js"' in page.text
    script = await http.get("/chat/static/chat.js")
    assert script.status_code == 200 and "/wait?after=" in script.text
    style = await http.get("/chat/static/chat.css")
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    escape = await http.get("/chat/static/..%2Fserver.py")
    assert escape.status_code in {403, 404}


async def test_without_hooks_the_picker_lists_the_tokens_users(
    http: httpx.AsyncClient, control: SandboxClient
):
    missing = await http.get("/chat/api/config")
    assert missing.status_code == 400 and "token" in missing.json()["description"]
    await control.create_user("Sam", "de Vries", language_code="en")
    commands = [{"command": "start", "description": "Begin"}]
    await http.post(f"/bot{TOKEN}/setMyCommands", json={"commands": commands})
    config = (await http.get("/chat/api/config", params={"token": TOKEN})).json()["result"]
    assert config["token"] == TOKEN
    assert config["bot"]["id"] == 5555
    assert config["clock"] is None
    [person] = config["people"]
    assert person["name"] == "Sam de Vries"
    assert person["role"] == "telegram"
    assert person["language_code"] == "en"
    assert config["commands"] == {"": commands}
    no_clock = await http.post("/chat/api/clock", json={"move": "+1 day"})
    assert no_clock.status_code == 404


async def test_with_hooks_the_picker_lists_the_embedders_people(
    sandbox: TelegramSandbox, http: httpx.AsyncClient, control: SandboxClient
):
    sam = await control.create_user("Sam")
    stranger = await control.create_user("Someone")
    moves: list[str | None] = []

    async def people() -> list[dict[str, Any]]:
        return [
            {"user_id": sam.id, "name": "Sam de Vries", "role": "pupil", "detail": "Groep 6a"},
            # Not (yet) a sandbox user: left out, since the page could not act as them.
            {"user_id": 999, "name": "Nog niet", "role": "pupil", "detail": ""},
        ]

    async def clock(move: str | None) -> dict[str, Any]:
        moves.append(move)
        if move == "bad":
            raise ValueError("not a move I know")
        return {"moved": move is not None}

    sandbox.page.configure(
        PageHooks(token=TOKEN, people=people, clock=clock, title="Demo", notes=["n"])
    )
    config = (await http.get("/chat/api/config")).json()["result"]
    assert config["title"] == "Demo" and config["notes"] == ["n"]
    assert [(p["name"], p["role"]) for p in config["people"]] == [
        ("Sam de Vries", "pupil"),
        ("Someone", "telegram"),
    ]
    assert config["people"][1]["user_id"] == stranger.id
    assert config["clock"] == {"moved": False}
    moved = await http.post("/chat/api/clock", json={"move": "+1 day"})
    assert moved.json() == {"ok": True, "result": {"moved": True}}
    bad = await http.post("/chat/api/clock", json={"move": "bad"})
    assert bad.status_code == 400 and bad.json()["description"] == "not a move I know"
    empty = await http.post("/chat/api/clock", json={})
    assert empty.status_code == 400
    assert moves == [None, "+1 day", "bad"]


async def test_users_can_be_created_with_a_chosen_id(control: SandboxClient):
    first = await control.create_user("Eerst")
    chosen = await control.create_user("Terug", user_id=first.id + 1)
    assert chosen.id == first.id + 1
    later = await control.create_user("Later")
    assert later.id not in {first.id, chosen.id}, "generated ids skip the chosen one"
    with pytest.raises(SandboxError) as taken:
        await control.create_user("Dubbel", user_id=chosen.id)
    assert taken.value.status == 409
    with pytest.raises(SandboxError):
        await control.create_user("Nul", user_id=0)


async def test_update_ids_can_continue_after_a_restart(
    sandbox: TelegramSandbox, control: SandboxClient
):
    sandbox.resume_update_ids(TOKEN, 41)
    user = await control.create_user("Noor")
    await user.send_text("hallo")
    [update] = await control.pending_updates()
    assert update["update_id"] == 42
    sandbox.resume_update_ids(TOKEN, 10)  # never backwards
    await user.send_text("nog eens")
    assert [u["update_id"] for u in await control.pending_updates()] == [42, 43]
