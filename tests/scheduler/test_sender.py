"""The rate-limited sender against the sandbox over HTTP: limits, 429s, errors, outcomes.

Faults come from the sandbox (`inject_fault`), so what is asserted is what the Bot API saw:
how many calls, which answered what, and which messages arrived. Where a test only needs the
sender to wait (a flood wait, a backoff), it gets a sleep that returns at once and records
the seconds asked; where the sandbox's own rate limits are enforced, the real sleep.
"""

from __future__ import annotations

import asyncio
import io

import pytest
from aiogram.methods import (
    DeleteMessage,
    EditMessageText,
    SendChatAction,
    SendMediaGroup,
    SendMessage,
)
from aiogram.types import BufferedInputFile, InputMediaPhoto
from PIL import Image

from sandbox import SandboxClient, SandboxUser, TelegramSandbox
from scheduler.sender import (
    DeliveryFailed,
    FloodStorm,
    RateLimitedSender,
    Unreachable,
    message_count,
)


class ControlledSleep:
    """Records each sleep and returns at once, or waits for `release()` while held."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls: list[float] = []
        self._released = asyncio.Event()
        if not hold:
            self._released.set()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await self._released.wait()
        await asyncio.sleep(0)

    def release(self) -> None:
        self._released.set()


async def until(condition, what: str, seconds: float = 10.0) -> None:
    """Wait for something the test caused to happen (not a speed check)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def texts_in(user: SandboxUser) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in await user.messages()]


async def sends(telegram: SandboxClient, method: str = "sendMessage") -> list[dict]:
    return await telegram.calls(method)


@pytest.fixture
async def user(telegram: SandboxClient) -> SandboxUser:
    return await telegram.create_user("Sanne")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "JPEG")
    return buffer.getvalue()


# ------------------------------------------------------------------------ flood control


async def test_a_429_storm_is_obeyed_and_the_message_arrives_once(bot, telegram, user):
    await telegram.inject_fault("sendMessage", 429, count=5, retry_after=7)
    sleep = ControlledSleep()
    sender = RateLimitedSender(bot, sleep=sleep)

    message = await sender.send(SendMessage(chat_id=user.id, text="herinnering 1"))

    assert message.text == "herinnering 1"
    assert await texts_in(user) == ["herinnering 1"]
    assert [call["status"] for call in await sends(telegram)] == [429] * 5 + [200]
    assert sleep.calls == [7.0] * 5
    assert sender.stats.flood_waits == 5
    assert sender.stats.flood_wait_seconds == 35
    assert sender.stats.sent == 1
    assert sender.stats.failed == 0


async def test_a_429_pauses_every_chat_not_only_its_own(bot, telegram, user):
    other = await telegram.create_user("Noor")
    await telegram.inject_fault("sendMessage", 429, count=1, retry_after=3)
    sleep = ControlledSleep(hold=True)
    sender = RateLimitedSender(bot, sleep=sleep)

    first = asyncio.create_task(sender.send(SendMessage(chat_id=user.id, text="voor Sanne")))
    await until(lambda: sleep.calls, "the flood wait to begin")
    second = asyncio.create_task(sender.send(SendMessage(chat_id=other.id, text="voor Noor")))
    # Plenty of time for the second message to leave, were it allowed to.
    await asyncio.sleep(0.3)
    assert sender.paused
    assert [call["status"] for call in await sends(telegram)] == [429]
    assert not second.done()

    sleep.release()
    await asyncio.gather(first, second)
    assert [call["status"] for call in await sends(telegram)] == [429, 200, 200]
    assert await texts_in(user) == ["voor Sanne"]
    assert await texts_in(other) == ["voor Noor"]
    assert sleep.calls == [3.0]
    assert not sender.paused


async def test_an_endless_flood_storm_ends_in_a_clear_error(bot, telegram, user):
    await telegram.inject_fault("sendMessage", 429, count=10, retry_after=1)
    sender = RateLimitedSender(bot, sleep=ControlledSleep(), max_flood_waits=3)

    with pytest.raises(FloodStorm, match="still flood-limited after 3 waits"):
        await sender.send(SendMessage(chat_id=user.id, text="komt niet aan"))

    assert len(await sends(telegram)) == 3
    assert sender.stats.failed == 1
    assert await texts_in(user) == []


# ---------------------------------------------------------------- network and 5xx errors


async def test_server_errors_and_dropped_connections_are_retried_and_arrive_once(
    bot, telegram, user
):
    await telegram.inject_fault("sendMessage", 500, count=2)
    await telegram.inject_fault("sendMessage", "drop", count=1)
    await telegram.inject_fault("sendMessage", 502, count=1)
    sleep = ControlledSleep()
    sender = RateLimitedSender(bot, sleep=sleep, max_attempts=6, backoff_base=0.5)

    await sender.send(SendMessage(chat_id=user.id, text="toch aangekomen"))

    assert [call["status"] for call in await sends(telegram)] == [500, 500, 0, 502, 200]
    assert await texts_in(user) == ["toch aangekomen"]
    assert sender.stats.network_retries == 4
    # Exponential backoff with jitter: each wait within [ceiling / 2, ceiling].
    for failures, seconds in enumerate(sleep.calls, start=1):
        ceiling = 0.5 * 2 ** (failures - 1)
        assert ceiling / 2 <= seconds <= ceiling


async def test_after_max_attempts_the_sender_gives_up(bot, telegram, user):
    await telegram.inject_fault("sendMessage", 503, count=10)
    sender = RateLimitedSender(bot, sleep=ControlledSleep(), max_attempts=3)

    with pytest.raises(DeliveryFailed, match="gave up after 3 attempts"):
        await sender.send(SendMessage(chat_id=user.id, text="komt niet aan"))

    assert [call["status"] for call in await sends(telegram)] == [503, 503, 503]
    assert sender.stats.failed == 1
    assert sender.stats.network_retries == 2


async def test_on_start_runs_once_right_before_the_first_request(bot, telegram, user):
    await telegram.inject_fault("sendMessage", 500, count=2)
    sender = RateLimitedSender(bot, sleep=ControlledSleep())
    seen_by_sandbox: list[int] = []

    async def on_start() -> None:
        seen_by_sandbox.append(len(await sends(telegram)))

    await sender.send(SendMessage(chat_id=user.id, text="hallo"), on_start=on_start)

    assert seen_by_sandbox == [0]
    assert len(await sends(telegram)) == 3


# ------------------------------------------------------------------ refusals: no retries


async def test_a_user_who_blocked_the_bot_is_unreachable_after_one_call(bot, telegram, user):
    await user.block()
    sleep = ControlledSleep()
    sender = RateLimitedSender(bot, sleep=sleep)

    with pytest.raises(Unreachable, match="blocked"):
        await sender.send(SendMessage(chat_id=user.id, text="hallo"))

    assert [call["status"] for call in await sends(telegram)] == [403]
    assert sleep.calls == []
    assert sender.stats.unreachable == 1
    assert sender.stats.failed == 0


async def test_a_user_who_never_started_the_bot_is_unreachable(bot, telegram):
    stranger = await telegram.create_user("Daan", started=False)
    sender = RateLimitedSender(bot, sleep=ControlledSleep())

    with pytest.raises(Unreachable):
        await sender.send(SendMessage(chat_id=stranger.id, text="hallo"))

    assert len(await sends(telegram)) == 1


async def test_a_chat_that_does_not_exist_is_unreachable_after_one_call(bot, telegram):
    sender = RateLimitedSender(bot, sleep=ControlledSleep())

    with pytest.raises(Unreachable, match="chat not found") as raised:
        await sender.send(SendMessage(chat_id=999_999_999_999, text="hallo"))

    assert raised.value.chat_id == 999_999_999_999
    assert [call["status"] for call in await sends(telegram)] == [400]


async def test_other_bad_requests_fail_at_once(bot, telegram, user):
    sleep = ControlledSleep()
    sender = RateLimitedSender(bot, sleep=sleep)

    with pytest.raises(DeliveryFailed, match="too long") as raised:
        await sender.send(SendMessage(chat_id=user.id, text="x" * 5000))

    assert not isinstance(raised.value, Unreachable)
    assert [call["status"] for call in await sends(telegram)] == [400]
    assert sleep.calls == []
    assert sender.stats.failed == 1


# ------------------------------------------------------------- limits, with the sandbox's


async def obeyed_every_429(telegram: SandboxClient, sender: RateLimitedSender) -> None:
    calls = await telegram.calls()
    refused = sum(1 for call in calls if call["status"] == 429)
    assert refused == sender.stats.flood_waits
    assert sender.stats.failed == 0


async def test_a_burst_to_one_chat_arrives_once_each_and_in_order(
    bot, sandbox: TelegramSandbox, telegram, user
):
    # Telegram's 1 a second per chat, twenty times faster.
    await telegram.set_limits(per_chat_rate=20, per_chat_burst=2, global_rate=100)
    sender = RateLimitedSender(bot, per_second=100, per_chat_per_second=20)
    texts = [f"bericht {n}" for n in range(30)]

    await asyncio.gather(*(sender.send(SendMessage(chat_id=user.id, text=t)) for t in texts))

    assert await texts_in(user) == texts
    assert sender.stats.sent == 30
    await obeyed_every_429(telegram, sender)


async def test_a_burst_to_many_chats_arrives_once_each(bot, telegram):
    # Telegram's 30 a second in total, twice as fast; bursts as large as the sender's bucket.
    await telegram.set_limits(global_rate=60, global_burst=60, per_chat_rate=20, per_chat_burst=2)
    users = [await telegram.create_user(f"Leerling {n}") for n in range(40)]
    sender = RateLimitedSender(bot, per_second=60, per_chat_per_second=20)
    wanted = {user.id: [f"{user.id}: {n}" for n in range(3)] for user in users}

    await asyncio.gather(
        *(
            sender.send(SendMessage(chat_id=chat_id, text=text))
            for chat_id, texts in wanted.items()
            for text in texts
        )
    )

    for user in users:
        assert await texts_in(user) == wanted[user.id]
    assert sender.stats.sent == 120
    await obeyed_every_429(telegram, sender)


async def test_an_album_counts_as_one_message_per_item(bot, telegram, user):
    # The sandbox counts every photo of an album against the chat, as Telegram does; a
    # sender that counted an album as one would trip over it after the first.
    await telegram.set_limits(per_chat_rate=30, per_chat_burst=4)
    sender = RateLimitedSender(bot, per_second=30, per_chat_per_second=30)
    photo = jpeg()

    def album(label: str) -> SendMediaGroup:
        return SendMediaGroup(
            chat_id=user.id,
            media=[
                InputMediaPhoto(
                    media=BufferedInputFile(photo, f"{label}{n}.jpg"), caption=f"{label}{n}"
                )
                for n in range(3)
            ],
        )

    await asyncio.gather(*(sender.send(album(label)) for label in "abcd"))

    assert await texts_in(user) == [f"{label}{n}" for label in "abcd" for n in range(3)]
    assert sender.stats.messages == 12
    await obeyed_every_429(telegram, sender)


async def test_deleting_a_message_does_not_wait_for_the_chat_limit(bot, telegram, user):
    # One message per 100 s in a chat: a delete that counted would hang this test.
    sender = RateLimitedSender(bot, per_chat_per_second=0.01)
    sent = await sender.send(SendMessage(chat_id=user.id, text="weg ermee"))

    deleted = await asyncio.wait_for(
        sender.send(DeleteMessage(chat_id=user.id, message_id=sent.message_id)), 10
    )

    assert deleted is True
    assert await texts_in(user) == []


def test_what_counts_as_a_message():
    photo = InputMediaPhoto(media="file-id")
    assert message_count(SendMessage(chat_id=1, text="a")) == 1
    assert message_count(SendMediaGroup(chat_id=1, media=[photo, photo, photo])) == 3
    assert message_count(EditMessageText(chat_id=1, message_id=2, text="b")) == 1
    assert message_count(DeleteMessage(chat_id=1, message_id=2)) == 0
    assert message_count(SendChatAction(chat_id=1, action="typing")) == 0


# ------------------------------------------------------------------------ bounded memory


class StubBot:
    """Answers every call at once; `hold` keeps calls to one chat waiting."""

    def __init__(self) -> None:
        self.held_chat: int | None = None
        self.release = asyncio.Event()

    async def __call__(self, method):
        if method.chat_id == self.held_chat:
            await self.release.wait()
        return True


async def test_per_chat_buckets_stay_bounded_and_busy_ones_are_kept():
    stub = StubBot()
    stub.held_chat = 0
    sender = RateLimitedSender(stub, per_second=1e6, per_chat_per_second=1e6, chat_cache_size=16)
    busy = asyncio.create_task(sender.send(SendMessage(chat_id=0, text="wacht")))
    await until(lambda: sender.chats_tracked == 1, "the held send to start")
    queued = asyncio.create_task(sender.send(SendMessage(chat_id=0, text="daarna")))

    for chat_id in range(1, 2001):
        await sender.send(SendMessage(chat_id=chat_id, text="hallo"))

    assert sender.chats_tracked <= 16
    # Chat 0 still has messages on their way: its bucket and its order must survive.
    assert 0 in sender._chats
    stub.release.set()
    await asyncio.gather(busy, queued)
    assert sender.stats.sent == 2002
