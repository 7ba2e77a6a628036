"""The browser chat page: a Telegram-like client for the sandbox's simulated users.

The page (``sandbox/static/``) plays users exactly as scripted users do, through the control
API under ``/sandbox/{token}/`` (send, press, long-poll ``wait``, download files). This module
only serves the files and two small endpoints the control API has no business knowing:

==========================================  =================================================
``GET  /``, ``/chat``                        redirect to ``/chat/``
``GET  /chat/``                              the page (``?token=`` picks a bot without hooks)
``GET  /chat/static/{file}``                 its script and style sheet
``GET  /chat/api/config``                    ``{token, bot, people, commands, clock, notes}``
``POST /chat/api/clock``                     ``{"move": "next school day 15:30"}`` -> clock
==========================================  =================================================

Without :class:`PageHooks` the picker lists the token's sandbox users. With hooks (set by
``bot.demo``) it lists the demo school's people with their role, each mapped to the sandbox
user that is linked to them, and the clock panel moves the app's clock.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import TelegramSandbox

STATIC_DIR = Path(__file__).resolve().parent / "static"

PeopleHook = Callable[[], Awaitable[list[dict[str, Any]]]]
# Called with None to read the clock, with a phrase to move it; raises ValueError for a
# phrase it does not understand (the message is shown to the user).
ClockHook = Callable[[str | None], Awaitable[dict[str, Any]]]


@dataclass
class PageHooks:
    """What an embedding program (the demo) tells the page about its bot and people.

    ``people`` returns dicts with ``user_id`` (a sandbox user of ``token``), ``name``,
    ``role`` (``pupil``, ``teacher``, ``parent``, ``admin``, or anything else) and
    ``detail`` (a short line such as "Groep 6a").
    """

    token: str
    people: PeopleHook
    clock: ClockHook | None = None
    title: str = "Telegram sandbox"
    # Short lines shown under the clock: what moving it does (and does not do yet).
    notes: list[str] = field(default_factory=list)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


class ChatPage:
    def __init__(self, sandbox: TelegramSandbox) -> None:
        self.sandbox = sandbox
        self.hooks: PageHooks | None = None

    def configure(self, hooks: PageHooks | None) -> None:
        self.hooks = hooks

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._to_page)
        app.router.add_get("/chat", self._to_page)
        app.router.add_get("/chat/", self.index)
        app.router.add_get("/chat/api/config", self.config)
        app.router.add_post("/chat/api/clock", self.clock)
        app.router.add_static("/chat/static/", STATIC_DIR, append_version=False)

    async def _to_page(self, request: web.Request) -> web.StreamResponse:
        target = "/chat/" + (f"?{request.query_string}" if request.query_string else "")
        raise web.HTTPFound(target)

    async def index(self, request: web.Request) -> web.StreamResponse:
        # no-store: a page left open across demo restarts must not run a stale script.
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    def _token(self, request: web.Request) -> str | None:
        if self.hooks is not None:
            return self.hooks.token
        return request.query.get("token") or None

    async def config(self, request: web.Request) -> web.Response:
        token = self._token(request)
        if token is None:
            return _json(
                {"ok": False, "description": "open the page as /chat/?token=<bot token>"}, 400
            )
        try:
            state = self.sandbox.state(token)
        except ValueError:
            return _json({"ok": False, "description": "malformed bot token"}, 400)
        people: list[dict[str, Any]] = []
        if self.hooks is not None:
            people = [
                person for person in await self.hooks.people() if person["user_id"] in state.users
            ]
        listed = {person["user_id"] for person in people}
        # Users the page (or a test) made that belong to no demo person: newcomers.
        for user in state.users.values():
            if user.id not in listed:
                name = " ".join(filter(None, [user.first_name, user.last_name]))
                people.append(
                    {"user_id": user.id, "name": name, "role": "telegram", "detail": "no code yet"}
                )
        for person in people:
            # The page picks the command menu in the user's Telegram language.
            person["language_code"] = state.users[person["user_id"]].language_code
        clock = None
        if self.hooks is not None and self.hooks.clock is not None:
            clock = await self.hooks.clock(None)
        return _json(
            {
                "ok": True,
                "result": {
                    "token": token,
                    "title": self.hooks.title if self.hooks else "Telegram sandbox",
                    "bot": state.bot_user,
                    "people": people,
                    "commands": self._commands(token),
                    "clock": clock,
                    "notes": self.hooks.notes if self.hooks else [],
                },
            }
        )

    def _commands(self, token: str) -> dict[str, list[dict[str, Any]]]:
        """The bot's command menu per language ("" is the default), for the "/" button."""
        menus: dict[str, list[dict[str, Any]]] = {}
        for key, commands in self.sandbox.state(token).commands.items():
            scope, _, language = key.rpartition("|")
            if json.loads(scope).get("type") == "default":
                menus[language] = commands
        return menus

    async def clock(self, request: web.Request) -> web.Response:
        if self.hooks is None or self.hooks.clock is None:
            return _json({"ok": False, "description": "this sandbox has no clock"}, 404)
        try:
            body = await request.json()
        except ValueError:
            return _json({"ok": False, "description": "body is not valid JSON"}, 400)
        move = body.get("move") if isinstance(body, dict) else None
        if not isinstance(move, str) or not move.strip():
            return _json({"ok": False, "description": 'give {"move": "..."}'}, 400)
        try:
            view = await self.hooks.clock(move)
        except ValueError as error:
            return _json({"ok": False, "description": str(error)}, 400)
        return _json({"ok": True, "result": view})
