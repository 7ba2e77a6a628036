"""In-memory state of the sandbox: one :class:`BotState` per bot token.

Everything here is plain data plus :class:`Signal`, a tiny broadcast primitive that long-poll
handlers (``getUpdates``, ``/sandbox/.../wait``) sleep on. All mutation happens on the event
loop thread, so no locks are needed: a waiter registers itself synchronously before it
awaits, which rules out lost wake-ups.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .limits import TokenBucket
from .media import StoredFile


class Signal:
    """Wakes every current waiter: ``Condition.notify_all`` that needs no lock or await."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next notification; False when ``seconds`` passed first."""
        if seconds <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)
        return True


@dataclass
class UserRecord:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "nl"
    # Telegram refuses to let a bot open a conversation: the user must have written first.
    started: bool = False
    blocked: bool = False

    def as_user(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class MessageMeta:
    from_bot: bool
    # Reply keyboards are not echoed back in Message objects, so they are kept here.
    keyboard: dict[str, Any] | None = None
    deleted: bool = False


class ChatState:
    def __init__(
        self,
        chat_id: int,
        chat_type: str,
        *,
        user: UserRecord | None = None,
        title: str | None = None,
    ) -> None:
        self.id = chat_id
        self.type = chat_type
        self.user = user
        self.title = title
        self.members: list[int] = []
        self.bot_member = chat_type == "private"
        self.messages: dict[int, dict[str, Any]] = {}
        self.meta: dict[int, MessageMeta] = {}
        self.next_message_id = 1
        self.events: list[dict[str, Any]] = []
        self.signal = Signal()
        self.reply_keyboard: dict[str, Any] | None = None
        self.menu_button: dict[str, Any] | None = None
        self.chat_instance = str(secrets.randbits(62))

    def chat_object(self) -> dict[str, Any]:
        if self.type == "private" and self.user is not None:
            data: dict[str, Any] = {"id": self.id, "type": "private"}
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
            return data
        return {"id": self.id, "type": self.type, "title": self.title or ""}

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    @property
    def seq(self) -> int:
        return len(self.events)

    def add_event(self, kind: str, *, from_bot: bool, **data: Any) -> dict[str, Any]:
        event = {"seq": self.seq + 1, "type": kind, "from_bot": from_bot, "time": time.time()}
        event.update(data)
        self.events.append(event)
        self.signal.notify()
        return event

    def store(self, message: dict[str, Any], meta: MessageMeta) -> None:
        self.messages[message["message_id"]] = message
        self.meta[message["message_id"]] = meta

    def live_messages(self) -> list[tuple[dict[str, Any], MessageMeta]]:
        return [
            (message, self.meta[mid])
            for mid, message in self.messages.items()
            if not self.meta[mid].deleted
        ]


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Fault:
    method: str
    status: int | str
    count: int
    retry_after: int = 1
    delay: float = 70.0
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "status": self.status,
            "count": self.count,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "description": self.description,
        }


@dataclass
class CallbackRecord:
    id: str
    user_id: int
    # None for a tap on an inline message (a raw update's): it is in no chat the sandbox knows.
    chat_id: int | None
    message_id: int | None
    data: str
    created: float
    answer: dict[str, Any] | None = None


# Kept in step with Telegram: these types are only delivered when asked for explicitly.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


@dataclass
class BotState:
    token: str
    bot_id: int
    bot_user: dict[str, Any]
    users: dict[int, UserRecord] = field(default_factory=dict)
    chats: dict[int, ChatState] = field(default_factory=dict)
    # Unconfirmed updates in update_id order, with the chat used to keep webhook order.
    updates: dict[int, tuple[dict[str, Any], int | None]] = field(default_factory=dict)
    updates_signal: Signal = field(default_factory=Signal)
    next_update_id: int = 1
    poll_generation: int = 0
    allowed_updates: list[str] | None = None
    # Ids of updates delivered whatever allowed_updates says: Telegram's setting "doesn't
    # affect updates created before the call", so a bot may still get a type it did not ask for.
    predating_allowed_updates: set[int] = field(default_factory=set)
    webhook: WebhookConfig | None = None
    files: dict[str, StoredFile] = field(default_factory=dict)
    files_by_path: dict[str, StoredFile] = field(default_factory=dict)
    calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100_000))
    call_counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    faults: list[Fault] = field(default_factory=list)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    default_menu_button: dict[str, Any] = field(default_factory=lambda: {"type": "commands"})
    callbacks: dict[str, CallbackRecord] = field(default_factory=dict)
    global_bucket: TokenBucket | None = None
    chat_buckets: dict[int, TokenBucket] = field(default_factory=dict)
    file_counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    media_group_counter: itertools.count[int] = field(
        default_factory=lambda: itertools.count(13_000_000_000_000_000)
    )

    def is_allowed(self, update: dict[str, Any]) -> bool:
        if update.get("update_id") in self.predating_allowed_updates:
            return True
        kind = update_type(update)
        if not self.allowed_updates:
            return kind not in OPT_IN_UPDATES
        return kind in self.allowed_updates

    def store_file(self, stored: StoredFile) -> StoredFile:
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def next_file_path(self, folder: str, extension: str) -> str:
        return f"{folder}/file_{next(self.file_counter)}.{extension}"
