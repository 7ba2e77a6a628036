"""Polling in batches: side by side, each user's updates in order, confirmed only when done;
a stop lets the batch in hand commit (or cuts it off, unconfirmed, after its grace)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import Message
from aiogram.utils.backoff import BackoffConfig

from bot.middlewares import DialogueLock
from bot.polling import BatchPoller
from sandbox import SandboxClient, TelegramSandbox
from tests.conftest import TOKEN


class Recorder:
    """Handles each text slowly, noting who said what in which order and how many at once."""

    def __init__(self) -> None:
        self.seen: dict[int, list[str]] = defaultdict(list)
        self.at_once = 0
        self.most_at_once = 0
        self.cut_off = 0
        self.release = asyncio.Event()
        self.release.set()
        self.changed = asyncio.Condition()

    @property
    def handled(self) -> int:
        return sum(len(texts) for texts in self.seen.values())

    async def wait_until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(done)

    async def _note(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def handle(self, message: Message) -> None:
        assert message.from_user is not None and message.text is not None
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        await self._note()
        try:
            await asyncio.sleep(0.05)
            await self.release.wait()
            self.seen[message.from_user.id].append(message.text)
        except asyncio.CancelledError:
            self.cut_off += 1
            raise
        finally:
            self.at_once -= 1
            await self._note()


def polling(
    recorder: Recorder, side_by_side: int, backoff: BackoffConfig | None = None
) -> BatchPoller:
    storage, isolation = MemoryStorage(), SimpleEventIsolation()
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation, disable_fsm=True)
    # As in the bot: the per-user lock is what keeps one user's updates in order.
    dispatcher.fsm = DialogueLock(storage=storage, events_isolation=isolation)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.message.register(recorder.handle)
    if backoff is None:
        return BatchPoller(dispatcher, side_by_side=side_by_side)
    return BatchPoller(dispatcher, side_by_side=side_by_side, backoff_config=backoff)


def bot_for(sandbox: TelegramSandbox) -> Bot:
    return Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url)))


async def run(poller: BatchPoller, bot: Bot, polling_timeout: int = 1) -> asyncio.Task[None]:
    return asyncio.create_task(poller.run(bot, polling_timeout=polling_timeout))


async def test_a_batch_is_handled_side_by_side_and_each_users_updates_in_order(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor", "Daan")]
    # Sent before the bot polls: they come as one batch.
    for round_ in range(4):
        for user in users:
            await user.send_text(f"{user.id}-{round_}")
    recorder = Recorder()
    poller, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(poller, bot)
    try:
        await recorder.wait_until(lambda: recorder.handled == 12)
        for user in users:
            assert recorder.seen[user.id] == [f"{user.id}-{n}" for n in range(4)]
        # Different users' updates overlapped; one user's never did.
        assert 1 < recorder.most_at_once <= 3
    finally:
        await poller.stop()
        await task
        await bot.session.close()
    assert await telegram.pending_updates() == []


async def test_a_batch_is_confirmed_only_when_all_of_it_was_handled(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor")]
    for user in users:
        await user.send_text("hallo")
    recorder = Recorder()
    recorder.release.clear()  # the handlers wait: the batch never finishes
    poller, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(poller, bot)
    try:
        await recorder.wait_until(lambda: recorder.at_once == 2)
    finally:
        # A bot stopped mid-batch (as one that is killed) has confirmed none of it.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert recorder.cut_off == 2
    assert len(await telegram.pending_updates()) == 2


async def test_one_side_by_side_handles_a_batch_one_after_the_other(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor")]
    for user in users:
        await user.send_text("hallo")
        await user.send_text("nog eens")
    recorder = Recorder()
    poller, bot = polling(recorder, side_by_side=1), bot_for(sandbox)
    task = await run(poller, bot)
    try:
        await recorder.wait_until(lambda: recorder.handled == 4)
        assert recorder.most_at_once == 1
    finally:
        await poller.stop()
        await task
        await bot.session.close()


async def test_a_stop_mid_batch_lets_the_batch_commit_and_confirms_it(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor")]
    for user in users:
        await user.send_text("hallo")
    recorder = Recorder()
    recorder.release.clear()
    poller, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(poller, bot)
    try:
        await recorder.wait_until(lambda: recorder.at_once == 2)
        stopping = asyncio.create_task(poller.stop(grace=10))
        await asyncio.sleep(0.2)
        assert not stopping.done(), "the stop waits for the batch in hand"
        recorder.release.set()
        await asyncio.wait_for(stopping, 5)
        await asyncio.wait_for(task, 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert recorder.handled == 2 and recorder.cut_off == 0
    # The long poll that would have confirmed the batch never came: the stop confirmed it.
    assert await telegram.pending_updates() == []


async def test_a_stop_cuts_off_a_batch_that_outlasts_its_grace_and_confirms_none_of_it(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor")]
    for user in users:
        await user.send_text("hallo")
    recorder = Recorder()
    recorder.release.clear()  # never released
    poller, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(poller, bot)
    try:
        await recorder.wait_until(lambda: recorder.at_once == 2)
        await asyncio.wait_for(poller.stop(grace=0.2), 5)
        assert task.done() and task.exception() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert recorder.cut_off == 2 and recorder.handled == 0
    assert len(await telegram.pending_updates()) == 2


async def test_a_stop_ends_the_long_poll_at_once(sandbox: TelegramSandbox, telegram: SandboxClient):
    user = await telegram.create_user("Sam")
    await user.send_text("hallo")
    recorder = Recorder()
    poller, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(poller, bot, polling_timeout=20)
    try:
        await recorder.wait_until(lambda: recorder.handled == 1)
        await asyncio.sleep(0.2)  # well into the next long poll
        started = time.monotonic()
        await asyncio.wait_for(poller.stop(), 5)
        assert time.monotonic() - started < 2
        assert task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert await telegram.pending_updates() == []


async def test_polling_backs_off_when_getupdates_fails_and_goes_on(
    sandbox: TelegramSandbox, telegram: SandboxClient, caplog
):
    await telegram.inject_fault("getUpdates", status=500, count=2)
    user = await telegram.create_user("Sam")
    await user.send_text("hallo")
    recorder = Recorder()
    quick = BackoffConfig(min_delay=0.05, max_delay=0.2, factor=2, jitter=0.1)
    poller, bot = polling(recorder, side_by_side=5, backoff=quick), bot_for(sandbox)
    with caplog.at_level(logging.WARNING, logger="bot.polling"):
        task = await run(poller, bot)
        try:
            await recorder.wait_until(lambda: recorder.handled == 1)
        finally:
            await poller.stop()
            await task
            await bot.session.close()
    assert sum("getUpdates failed" in record.getMessage() for record in caplog.records) == 2


async def test_a_stop_before_polling_starts_ends_it_as_it_starts(sandbox: TelegramSandbox):
    poller, bot = polling(Recorder(), side_by_side=1), bot_for(sandbox)
    try:
        await poller.stop()
        await asyncio.wait_for(poller.run(bot), 1)
    finally:
        await bot.session.close()
