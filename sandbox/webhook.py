"""Webhook delivery: POST each update to the bot's URL like Telegram does.

Updates of one chat are delivered strictly in order (the next waits until the previous one was
accepted or given up on), different chats in parallel up to ``max_connections``. A delivery
that fails is retried a few times with a short exponential backoff and then dropped, with the
error recorded for ``getWebhookInfo``. A 2xx answer may carry a Bot API call (aiogram's
"reply into webhook"), which is executed as if the bot had made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import aiohttp

from .params import read_multipart_payload
from .state import BotState, WebhookConfig

if TYPE_CHECKING:
    from .server import TelegramSandbox

log = logging.getLogger(__name__)


class WebhookDeliverer:
    def __init__(
        self,
        sandbox: TelegramSandbox,
        state: BotState,
        config: WebhookConfig,
        session: aiohttp.ClientSession,
    ) -> None:
        self.sandbox = sandbox
        self.state = state
        self.config = config
        self.session = session
        self._queues: dict[int | None, deque[int]] = {}
        self._tasks: dict[int | None, asyncio.Task[None]] = {}
        self._semaphore = asyncio.Semaphore(config.max_connections)
        self._closed = False

    def start(self) -> None:
        for update_id, (_update, chat_id) in list(self.state.updates.items()):
            self.enqueue(update_id, chat_id)

    def enqueue(self, update_id: int, chat_id: int | None) -> None:
        if self._closed:
            return
        self._queues.setdefault(chat_id, deque()).append(update_id)
        if chat_id not in self._tasks:
            self._tasks[chat_id] = asyncio.create_task(self._drain(chat_id))

    @property
    def in_flight(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def stop(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()

    async def _drain(self, chat_id: int | None) -> None:
        queue = self._queues[chat_id]
        try:
            while queue and not self._closed:
                update_id = queue[0]
                entry = self.state.updates.get(update_id)
                if entry is not None and self.state.is_allowed(entry[0]):
                    await self._deliver(entry[0])
                self.state.updates.pop(update_id, None)
                queue.popleft()
        finally:
            if self._tasks.get(chat_id) is asyncio.current_task():
                del self._tasks[chat_id]
                if not queue:
                    self._queues.pop(chat_id, None)

    async def _deliver(self, update: dict[str, Any]) -> None:
        limits = self.sandbox.limits
        headers = {"Content-Type": "application/json"}
        if self.config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.config.secret_token
        body = json.dumps(update, ensure_ascii=False).encode("utf-8")
        attempts = max(1, limits.webhook_attempts)
        for attempt in range(attempts):
            error = await self._attempt(body, headers, limits.webhook_timeout)
            if error is None:
                return
            self.config.last_error_date = int(time.time())
            self.config.last_error_message = error
            if attempt + 1 < attempts:
                await asyncio.sleep(limits.webhook_backoff * (2**attempt))
        log.warning(
            "webhook gave up on update %s after %s attempts", update.get("update_id"), attempts
        )

    async def _attempt(self, body: bytes, headers: dict[str, str], seconds: float) -> str | None:
        try:
            async with (
                self._semaphore,
                self.session.post(
                    self.config.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=seconds),
                ) as response,
            ):
                if not 200 <= response.status < 300:
                    return f"Wrong response from the webhook: {response.status} {response.reason}"
                await self._run_reply(response)
                return None
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"

    async def _run_reply(self, response: aiohttp.ClientResponse) -> None:
        params: dict[str, Any]
        uploads: dict[str, Any] = {}
        if response.content_type == "multipart/form-data":
            reader = aiohttp.MultipartReader(response.headers, response.content)
            params, uploads = await read_multipart_payload(reader)
        elif response.content_type == "application/json":
            try:
                data = json.loads(await response.read() or b"{}")
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            params = data
        else:
            return
        method = params.pop("method", None)
        if isinstance(method, str) and method:
            await self.sandbox.execute(self.state, method, params, uploads, source="webhook-reply")
