"""The one way bulk and scheduled messages leave the bot: within Telegram's limits, retried
where a retry can help, and with one clear outcome per message.

Telegram allows a bot about 30 messages a second in total and about one a second per chat;
beyond that it answers 429 with ``retry_after``, and a bot that keeps pushing is blocked for
longer. The sender therefore keeps two token buckets (aiolimiter) of its own, one for the bot
and one per chat, and treats a 429 that still slips through as an order to stop *everything*
for ``retry_after`` seconds: flood control is counted per bot, not per chat.

Outcomes of :meth:`RateLimitedSender.send`:

* the method's result: delivered exactly once (never dropped for a 429);
* :class:`Unreachable`: the person blocked the bot, deleted their account or never started
  it; retrying cannot help, the caller marks the person unreachable;
* :class:`DeliveryFailed`: Telegram refused the message itself, or the network kept failing
  after ``max_attempts`` tries, or a flood storm did not end.

The sender has no user-facing text: callers compose the messages.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    CopyMessages,
    ForwardMessages,
    SendChatAction,
    SendMediaGroup,
    TelegramMethod,
)
from aiolimiter import AsyncLimiter

from scheduler import metrics

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[Any]]
OnStart = Callable[[], Awaitable[Any]]

# The fraction of Telegram's one-second burst the sender leaves unused (see __init__).
HEADROOM = 0.1

# Bad requests that mean the chat itself is gone or was never there: the person cannot be
# reached, exactly as after a block, so they must not be counted as a broken message.
_CHAT_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated")


class DeliveryError(Exception):
    """A message did not reach its chat."""

    def __init__(self, message: str, *, method: str, chat_id: int | str | None) -> None:
        super().__init__(message)
        self.method = method
        self.chat_id = chat_id


# The two outcomes are named for what they mean to the caller; other modules rely on the names.
class Unreachable(DeliveryError):  # noqa: N818
    """The chat cannot receive messages from the bot (blocked, deactivated, not found)."""


class DeliveryFailed(DeliveryError):  # noqa: N818
    """Telegram refused this message, or it could not be delivered after every retry."""


class FloodStorm(DeliveryFailed):
    """Telegram kept answering 429 for one message far longer than any normal flood wait."""


@dataclass
class SenderStats:
    """What the sender did since it was created; read by the benchmark and by metrics."""

    sent: int = 0  # API calls that succeeded
    messages: int = 0  # messages those calls carried (an album of n counts n)
    flood_waits: int = 0  # 429s received and obeyed
    flood_wait_seconds: float = 0.0  # sum of their retry_after
    network_retries: int = 0  # retries after a network error or a 5xx
    unreachable: int = 0
    failed: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def message_count(method: TelegramMethod[Any]) -> int:
    """How many messages a call puts into its chat, as Telegram's limits count them.

    Only calls that make new messages (or redraw one: an edit) count against the per-chat
    limit. Deleting a message, answering a callback or showing "typing..." puts nothing new
    on the person's screen and Telegram does not hold them to the one-message-a-second rule;
    counting them per chat would only slow down cleaning up after a bulk send.
    """
    if isinstance(method, SendMediaGroup):
        return len(method.media)
    if isinstance(method, CopyMessages | ForwardMessages):
        return len(method.message_ids)
    if isinstance(method, SendChatAction):
        return 0
    name = type(method).__name__
    return 1 if name.startswith(("Send", "Copy", "Forward", "Edit")) else 0


def _global_limiter(rate: float, *, headroom: float = 0.0) -> AsyncLimiter:
    """A second's worth of burst, as Telegram allows the bot as a whole, less ``headroom``
    (a fraction), but at least one whole message: aiolimiter never hands out more than its
    capacity at once, so 0.5/s becomes "1 per 2 s" rather than "0.5 per 1 s"."""
    capacity = max(1.0, rate * (1 - headroom))
    return AsyncLimiter(capacity, capacity / rate)


def _chat_limiter(rate: float) -> AsyncLimiter:
    """One message per 1/rate seconds and no burst: a person's phone should not buzz twice
    in a second because a bucket happened to be full."""
    return AsyncLimiter(1, 1 / rate)


class _ChatSlot:
    __slots__ = ("limiter", "lock", "users")

    def __init__(self, rate: float) -> None:
        self.limiter = _chat_limiter(rate)
        # One message per chat on its way at a time: keeps the chat's messages in order and
        # stops a long global queue from piling up per-chat tokens that would later go out
        # as one burst into that chat.
        self.lock = asyncio.Lock()
        self.users = 0


class RateLimitedSender:
    """Executes aiogram method objects within Telegram's limits; safe for concurrent use."""

    def __init__(
        self,
        bot: Bot,
        *,
        per_second: float = 30.0,
        per_chat_per_second: float = 1.0,
        max_attempts: int = 6,
        sleep: Sleep = asyncio.sleep,
        max_flood_waits: int = 50,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        chat_cache_size: int | None = None,
    ) -> None:
        if per_second <= 0 or per_chat_per_second <= 0:
            raise ValueError("rates must be greater than 0")
        if max_attempts < 1 or max_flood_waits < 1:
            raise ValueError("max_attempts and max_flood_waits must be at least 1")
        self._bot = bot
        self.per_second = per_second
        self.per_chat_per_second = per_chat_per_second
        self._max_attempts = max_attempts
        self._max_flood_waits = max_flood_waits
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        # Two buckets at the bot's rate. Admission decides when a message may get ready
        # (``on_start``: the caller records it in its database); pacing decides when it
        # leaves, right before the request. Telegram counts requests as they arrive, so the
        # bucket that matters must sit after every variable delay: with one bucket before a
        # commit of a few to tens of milliseconds, messages arrived bunched and drew 429s.
        # Admission keeps the number of ready-but-unsent messages (uncertain after a crash)
        # to about a second's worth instead of a whole batch.
        self._admission = _global_limiter(per_second)
        # The pacing bucket holds a tenth less than Telegram's. At full speed both buckets
        # run nearly empty, and a request that the event loop or the network delays by a
        # millisecond or two more than the one before it finds Telegram's bucket a fraction
        # short: a 429 and a second's pause for everyone. Being a few messages short of the
        # burst absorbs up to ~100 ms of such jitter and costs nothing in the long run, since
        # the rate is the same.
        self._pacing = _global_limiter(per_second, headroom=HEADROOM)
        # After a flood wait Telegram's bucket is full again: this many messages that were
        # already through pacing when it began may then go at once.
        self._burst = max(1, math.floor(self._pacing.max_rate))
        self._chats: OrderedDict[int | str, _ChatSlot] = OrderedDict()
        # A chat's bucket is free again 1 / rate seconds after its last message; in that time
        # the whole bot touches at most per_second * that many chats, so an LRU at least that
        # big (times a margin) only ever forgets buckets that are free anyway. It stays a few
        # thousand entries however many chats there are.
        drain = 1 / per_chat_per_second
        self._chat_cache_size = chat_cache_size or max(1024, math.ceil(4 * per_second * drain))
        # Flood control: set = sending allowed. Cleared for the length of a 429's retry_after.
        self._open = asyncio.Event()
        self._open.set()
        self._pause_epoch = 0
        self._pause_started = 0.0
        self._pause_needed = 0.0
        self._after_pause_passes = 0
        self.stats = SenderStats()

    # ------------------------------------------------------------------ sending

    async def send(self, method: TelegramMethod[T], *, on_start: OnStart | None = None) -> T:
        """Deliver ``method`` once; raises :class:`Unreachable` or :class:`DeliveryFailed`.

        ``on_start`` is awaited once, when the limits admit the message, just before its
        first request: a caller records there that the message may be on its way (a crash
        before it means the message certainly was not sent). It is called after the wait in
        the queue, not before, so that a crash does not make every queued message uncertain.
        """
        count = message_count(method)
        chat_id = getattr(method, "chat_id", None)
        if count == 0 or not isinstance(chat_id, int | str):
            return await self._deliver(method, max(count, 1), None, on_start)
        slot = self._chat_slot(chat_id)
        slot.users += 1
        try:
            async with slot.lock:
                return await self._deliver(method, count, slot.limiter, on_start)
        finally:
            slot.users -= 1

    async def _deliver(
        self,
        method: TelegramMethod[T],
        count: int,
        chat_limiter: AsyncLimiter | None,
        on_start: OnStart | None,
    ) -> T:
        name = type(method).__name__
        chat_id = getattr(method, "chat_id", None)
        network_failures = 0
        flood_waits = 0
        if chat_limiter is not None:
            # Taken once, not per attempt: a refused or lost request put nothing in the chat,
            # and a retry comes after a backoff or flood wait that is longer than a chat's
            # interval anyway.
            await self._take(chat_limiter, count)
        await self._admit(count)
        if on_start is not None:
            await on_start()
        while True:
            await self._pace(count)
            try:
                result = await self._bot(method)
            except TelegramRetryAfter as error:
                flood_waits += 1
                self.stats.flood_waits += 1
                self.stats.flood_wait_seconds += error.retry_after
                metrics.FLOOD_WAITS.inc()
                if flood_waits >= self._max_flood_waits:
                    self.stats.failed += 1
                    raise FloodStorm(
                        f"{name} to {chat_id}: still flood-limited after {flood_waits} waits "
                        f"({error.retry_after} s asked last); Telegram may have restricted the "
                        "bot, look at its other traffic before sending more",
                        method=name,
                        chat_id=chat_id,
                    ) from error
                await self._obey_flood_control(error.retry_after)
                continue
            except TelegramForbiddenError as error:
                self.stats.unreachable += 1
                raise Unreachable(error.message, method=name, chat_id=chat_id) from error
            except TelegramBadRequest as error:
                if any(marker in error.message.lower() for marker in _CHAT_GONE):
                    self.stats.unreachable += 1
                    raise Unreachable(error.message, method=name, chat_id=chat_id) from error
                self.stats.failed += 1
                raise DeliveryFailed(error.message, method=name, chat_id=chat_id) from error
            except TelegramEntityTooLarge as error:
                # A network error by aiogram's classes, but the same file will be too large
                # on every try.
                self.stats.failed += 1
                raise DeliveryFailed(error.message, method=name, chat_id=chat_id) from error
            except (TelegramNetworkError, TelegramServerError, ClientDecodeError) as error:
                # ClientDecodeError: a proxy in between answered with an HTML error page.
                network_failures += 1
                if network_failures >= self._max_attempts:
                    self.stats.failed += 1
                    raise DeliveryFailed(
                        f"{name} to {chat_id}: gave up after {network_failures} attempts: {error}",
                        method=name,
                        chat_id=chat_id,
                    ) from error
                self.stats.network_retries += 1
                await self._sleep(self._backoff(network_failures))
                continue
            except TelegramAPIError as error:
                # 401, 404, a migrated group, ...: the same call will fail the same way.
                self.stats.failed += 1
                raise DeliveryFailed(error.message, method=name, chat_id=chat_id) from error
            self.stats.sent += 1
            self.stats.messages += message_count(method)
            self.stats.by_method[name] = self.stats.by_method.get(name, 0) + 1
            if message_count(method):
                metrics.MESSAGES_SENT.labels(method=name).inc()
            return result

    def _backoff(self, failures: int) -> float:
        """Exponential with jitter, so that many senders hit by one outage do not all come
        back in the same instant."""
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    # ----------------------------------------------------------------- limiting

    @staticmethod
    async def _take(limiter: AsyncLimiter, count: int) -> None:
        # One token at a time: aiolimiter serves its smallest requests first, so an album
        # asking for ten at once could wait behind single messages for ever.
        for _ in range(count):
            await limiter.acquire(1)

    async def _admit(self, count: int) -> None:
        await self._open.wait()
        await self._take(self._admission, count)
        # Admitted while a flood wait began: get ready after it, pacing decides the moment.
        await self._open.wait()

    async def _pace(self, count: int) -> None:
        while True:
            await self._open.wait()
            epoch = self._pause_epoch
            await self._take(self._pacing, count)
            if self._open.is_set() and epoch == self._pause_epoch:
                return
            # A flood wait began while we queued: our bucket went on handing out tokens that
            # Telegram never saw used. After the pause Telegram's own bucket is full again,
            # so one bucket's worth of these may go at once; the rest queue anew.
            await self._open.wait()
            if self._after_pause_passes >= count:
                self._after_pause_passes -= count
                return

    async def _obey_flood_control(self, retry_after: float) -> None:
        """Stop all sending for ``retry_after`` seconds (at least), then let it resume.

        The first task that sees a 429 holds the pause; 429s of messages that were already
        on their way extend it instead of starting one pause each.
        """
        loop = asyncio.get_running_loop()
        if not self._open.is_set():
            elapsed = loop.time() - self._pause_started
            self._pause_needed = max(self._pause_needed, elapsed + retry_after)
            return
        self._open.clear()
        self._pause_epoch += 1
        self._pause_started = loop.time()
        self._pause_needed = float(retry_after)
        slept = 0.0
        try:
            # Counting what we asked to sleep (not the clock) lets tests pass a sleep that
            # returns at once; with the real sleep both agree.
            while slept < self._pause_needed:
                step = self._pause_needed - slept
                await self._sleep(step)
                slept += step
        finally:
            self._after_pause_passes = self._burst
            self._open.set()

    def _chat_slot(self, chat_id: int | str) -> _ChatSlot:
        slot = self._chats.get(chat_id)
        if slot is not None:
            self._chats.move_to_end(chat_id)
            return slot
        slot = self._chats[chat_id] = _ChatSlot(self.per_chat_per_second)
        if len(self._chats) > self._chat_cache_size:
            self._evict(keep=chat_id)
        return slot

    def _evict(self, *, keep: int | str) -> None:
        # Never forget a chat with messages queued: a fresh bucket for it would let a second
        # message through within the same second.
        excess = len(self._chats) - self._chat_cache_size
        victims: list[int | str] = []
        for key, slot in self._chats.items():
            if len(victims) >= excess:
                break
            if slot.users == 0 and key != keep:
                victims.append(key)
        for key in victims:
            del self._chats[key]

    @property
    def paused(self) -> bool:
        """True while a flood wait is being obeyed."""
        return not self._open.is_set()

    @property
    def chats_tracked(self) -> int:
        return len(self._chats)
