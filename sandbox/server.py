"""A local stand-in for the Telegram Bot API, served over real HTTP.

The real aiogram ``Bot`` talks to it through
``AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url))``; test code, the browser
chat page and load benchmarks play the *users* through the JSON control API under
``/sandbox/{token}/`` (see :mod:`sandbox.control` and :class:`sandbox.client.SandboxClient`).

Routes:

* ``POST|GET /bot{token}/{method}`` - the Bot API (JSON, multipart or urlencoded bodies).
* ``GET /file/bot{token}/{file_path}`` - file downloads, as in ``getFile``.
* ``/sandbox/...`` - the control API.
* ``/chat/...`` - the browser chat page that plays users through the control API
  (see :mod:`sandbox.page`).

Any token of the form ``<digits>:<secret>`` is accepted; the digits are the bot's user id and
every token has its own, independent, in-memory state. The sandbox never logs tokens (aiohttp's
access log is off because request paths contain them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from .botapi import BotApi
from .control import ControlApi
from .limits import SandboxLimits
from .page import ChatPage
from .params import MAX_BODY_BYTES, ApiError, Upload, read_request
from .state import BotState, ChatState, Fault, MessageMeta, WebhookConfig
from .webhook import WebhookDeliverer

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"^(\d{1,20}):([A-Za-z0-9_-]{1,100})$")
_SUMMARY_TEXT = 300


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )


class TelegramSandbox:
    """An in-memory Telegram Bot API server for tests, local runs and benchmarks."""

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        bot_username: str = "leerling_portfolio_bot",
        bot_first_name: str = "Leerling Portfolio",
        validate_responses: bool = True,
    ) -> None:
        self.limits = limits if limits is not None else SandboxLimits()
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.validate_responses = validate_responses
        self.closing = False
        self._closed_event = asyncio.Event()
        self.api = BotApi(self)
        self.control = ControlApi(self)
        self.page = ChatPage(self)
        self._states: dict[str, BotState] = {}
        self._deliverers: dict[str, WebhookDeliverer] = {}
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._user_ids = itertools.count(1_000_000_001)
        # Ids given explicitly (a restarted demo recreates its users with their old ids).
        self._claimed_user_ids: set[int] = set()
        self._group_ids = itertools.count(4_000_000_001)

    # ------------------------------------------------------------- lifecycle

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self.control.add_routes(app)
        self.page.add_routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 = a free port).

        Calling it on a running sandbox moves the listener to the new address and keeps all
        state, so ``async with TelegramSandbox() as s: await s.start(port=8081)`` works.
        """
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.closing = False
        self._closed_event = asyncio.Event()
        # handler_cancellation: an abandoned long poll (client gone) must not linger.
        runner = web.AppRunner(
            self.build_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1] if runner.addresses else port
        shown_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown_host}:{bound_port}"

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("sandbox is not running; await start() first")
        return self._base_url

    async def stop(self) -> None:
        self.closing = True
        self._closed_event.set()
        for state in self._states.values():
            state.updates_signal.notify()
            for chat in state.chats.values():
                chat.signal.notify()
        for deliverer in list(self._deliverers.values()):
            await deliverer.stop()
        self._deliverers.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------------- state

    def state(self, token: str) -> BotState:
        """The state of one bot token, created on first use."""
        state = self._states.get(token)
        if state is not None:
            return state
        match = TOKEN_PATTERN.match(token)
        if match is None:
            raise ValueError("malformed bot token")
        bot_id = int(match.group(1))
        state = BotState(
            token=token,
            bot_id=bot_id,
            bot_user={
                "id": bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            },
        )
        self._states[token] = state
        return state

    def new_user_id(self) -> int:
        while True:
            user_id = next(self._user_ids)
            if user_id not in self._claimed_user_ids:
                return user_id

    def claim_user_id(self, user_id: int) -> None:
        """Reserve an id chosen by the caller, so that generated ids never collide with it."""
        self._claimed_user_ids.add(user_id)

    def resume_update_ids(self, token: str, after: int) -> None:
        """Number new updates after ``after``: a bot that keeps its database across sandbox
        restarts skips update ids it has seen, as it should with the real Telegram."""
        state = self.state(token)
        state.next_update_id = max(state.next_update_id, after + 1)

    def new_group_id(self) -> int:
        return -next(self._group_ids)

    def control_view(self, message: dict[str, Any], meta: MessageMeta) -> dict[str, Any]:
        """A message as the control API shows it: Bot API JSON plus sandbox-only facts."""
        view = dict(message)
        view["sandbox"] = {"from_bot": meta.from_bot, "keyboard": meta.keyboard}
        return view

    def enqueue_update(
        self,
        state: BotState,
        payload: dict[str, Any],
        chat: ChatState | None,
        *,
        update_id: int | None = None,
    ) -> int:
        """Queue an update for the bot; numbered in sequence unless `update_id` is given (a
        test's stand-in for a number Telegram never uses; the sequence goes on unchanged)."""
        if update_id is None:
            update_id = state.next_update_id
            state.next_update_id += 1
        update = {"update_id": update_id, **payload}
        chat_id = chat.id if chat is not None else None
        state.updates[update_id] = (update, chat_id)
        state.updates_signal.notify()
        deliverer = self._deliverers.get(state.token)
        if deliverer is not None:
            deliverer.enqueue(update_id, chat_id)
        return update_id

    async def set_webhook(
        self, state: BotState, config: WebhookConfig, *, drop_pending: bool
    ) -> None:
        await self.delete_webhook(state, drop_pending=drop_pending)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        state.webhook = config
        # A running long poll must notice and answer 409.
        state.updates_signal.notify()
        deliverer = WebhookDeliverer(self, state, config, self._http)
        self._deliverers[state.token] = deliverer
        deliverer.start()

    async def delete_webhook(self, state: BotState, *, drop_pending: bool) -> None:
        deliverer = self._deliverers.pop(state.token, None)
        if deliverer is not None:
            await deliverer.stop()
        state.webhook = None
        if drop_pending:
            state.updates.clear()

    def webhook_info(self, state: BotState) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(state.updates),
        }
        config = state.webhook
        if config is not None:
            info["url"] = config.url
            info["max_connections"] = config.max_connections
            if config.ip_address:
                info["ip_address"] = config.ip_address
            if config.allowed_updates is not None:
                info["allowed_updates"] = config.allowed_updates
            if config.last_error_date is not None:
                info["last_error_date"] = config.last_error_date
                info["last_error_message"] = config.last_error_message
        return info

    # ------------------------------------------------------------- bot api

    def take_fault(self, state: BotState, method: str) -> Fault | None:
        name = method.lower()
        for fault in state.faults:
            # "*" skips getUpdates: a polling bot calls it constantly and would swallow the
            # fault meant for the call under test.
            matches = fault.method.lower() == name or (fault.method == "*" and name != "getupdates")
            if matches and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    state.faults.remove(fault)
                return fault
        return None

    async def execute(
        self,
        state: BotState,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, Upload],
        *,
        source: str = "http",
        fault: Fault | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Run a call (or its injected fault), log it, and return (HTTP status, JSON body)."""
        started = time.time()
        name = method
        try:
            if fault is not None:
                raise await self._fault_error(fault)
            name, result = await self.api.call(state, method, params, uploads)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except asyncio.CancelledError:
            # The client gave up (timeout fault, abandoned long poll); benchmarks want to see it.
            self._record(state, name, params, uploads, started, 499, "client closed request", fault)
            raise
        except Exception as exc:
            log.exception("sandbox failed on %s", method)
            status = 500
            body = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: {type(exc).__name__}",
            }
        description = None if body["ok"] else body.get("description")
        self._record(state, name, params, uploads, started, status, description, fault, source)
        return status, body

    def _record(
        self,
        state: BotState,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, Upload],
        started: float,
        status: int,
        description: str | None,
        fault: Fault | None,
        source: str = "http",
    ) -> None:
        state.calls.append(
            {
                "id": next(state.call_counter),
                "method": method,
                "params": _summarize(params, uploads),
                "time": started,
                "duration_ms": round((time.time() - started) * 1000, 3),
                "status": status,
                "ok": status == 200,
                "description": description,
                "source": source,
                "fault": fault.as_dict() if fault is not None else None,
            }
        )

    async def _fault_error(self, fault: Fault) -> ApiError:
        if fault.status == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed_event.wait(), fault.delay)
            return ApiError(504, fault.description or "Gateway Timeout")
        if fault.status == 429:
            seconds = fault.retry_after
            return ApiError(
                429,
                fault.description or f"Too Many Requests: retry after {seconds}",
                {"retry_after": seconds},
            )
        status = int(fault.status)
        return ApiError(status, fault.description or _default_description(status))

    async def _handle_bot_api(self, request: web.Request) -> web.StreamResponse:
        try:
            state = self.state(request.match_info["token"])
        except ValueError:
            return json_response(ApiError(401, "Unauthorized").body(), status=401)
        method = request.match_info["method"]
        try:
            params, uploads = await read_request(request)
        except ApiError as exc:
            return json_response(exc.body(), status=exc.status)
        fault = self.take_fault(state, method)
        if fault is not None and fault.status == "drop":
            self._record(state, method, params, uploads, time.time(), 0, "dropped", fault)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        status, body = await self.execute(state, method, params, uploads, fault=fault)
        return json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        try:
            state = self.state(request.match_info["token"])
        except ValueError:
            return json_response(ApiError(401, "Unauthorized").body(), status=401)
        stored = state.files_by_path.get(request.match_info["path"])
        if stored is None:
            return json_response(ApiError(404, "Not Found").body(), status=404)
        if stored.size > self.limits.max_download_bytes:
            return json_response(bad_request_body("file is too big"), status=400)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )


def bad_request_body(reason: str) -> dict[str, Any]:
    return ApiError(400, f"Bad Request: {reason}").body()


def _default_description(status: int) -> str:
    return {
        400: "Bad Request: injected fault",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict: terminated by other getUpdates request",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }.get(status, f"Error {status}")


def _summarize(params: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            if value.startswith("attach://") and value[9:] in uploads:
                upload = uploads[value[9:]]
                summary[key] = {"file": upload.filename, "size": len(upload.data)}
                continue
            if value[:1] in "{[":
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        if isinstance(value, str) and len(value) > _SUMMARY_TEXT:
            value = value[:_SUMMARY_TEXT] + "…"
        summary[key] = value
    for name, upload in uploads.items():
        if name not in params and all(v != f"attach://{name}" for v in params.values()):
            summary[name] = {"file": upload.filename, "size": len(upload.data)}
    return summary
