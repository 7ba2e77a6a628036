"""Polling in batches: side by side, each user's updates in order, confirmed only when done."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import Message

from bot.middlewares import DialogueLock
from bot.polling import BatchPolling
from sandbox import SandboxClient, TelegramSandbox
from tests.conftest import TOKEN


class Recorder:
    """Handles each text slowly, noting who said what in which order and how many at once."""

    def __init__(self) -> None:
        self.seen: dict[int, list[str]] = defaultdict(list)
        self.at_once = 0
        self.most_at_once = 0
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
        finally:
            self.at_once -= 1
            await self._note()


def polling(recorder: Recorder, side_by_side: int) -> BatchPolling:
    storage, isolation = MemoryStorage(), SimpleEventIsolation()
    dispatcher = BatchPolling(
        side_by_side=side_by_side, storage=storage, events_isolation=isolation, disable_fsm=True
    )
    # As in the bot: the per-user lock is what keeps one user's updates in order.
    dispatcher.fsm = DialogueLock(storage=storage, events_isolation=isolation)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.message.register(recorder.handle)
    return dispatcher


def bot_for(sandbox: TelegramSandbox) -> Bot:
    return Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url)))


async def run(dispatcher: BatchPolling, bot: Bot) -> asyncio.Task[None]:
    return asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )


async def test_a_batch_is_handled_side_by_side_and_each_users_updates_in_order(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor", "Daan")]
    # Sent before the bot polls: they come as one batch.
    for round_ in range(4):
        for user in users:
            await user.send_text(f"{user.id}-{round_}")
    recorder = Recorder()
    dispatcher, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(dispatcher, bot)
    try:
        await recorder.wait_until(lambda: recorder.handled == 12)
        for user in users:
            assert recorder.seen[user.id] == [f"{user.id}-{n}" for n in range(4)]
        # Different users' updates overlapped; one user's never did.
        assert 1 < recorder.most_at_once <= 3
    finally:
        await dispatcher.stop_polling()
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
    dispatcher, bot = polling(recorder, side_by_side=5), bot_for(sandbox)
    task = await run(dispatcher, bot)
    try:
        await recorder.wait_until(lambda: recorder.at_once == 2)
    finally:
        # A bot stopped mid-batch (as one that is killed) has confirmed none of it.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert len(await telegram.pending_updates()) == 2


async def test_one_side_by_side_handles_a_batch_one_after_the_other(
    sandbox: TelegramSandbox, telegram: SandboxClient
):
    users = [await telegram.create_user(name) for name in ("Sam", "Noor")]
    for user in users:
        await user.send_text("hallo")
        await user.send_text("nog eens")
    recorder = Recorder()
    dispatcher, bot = polling(recorder, side_by_side=1), bot_for(sandbox)
    task = await run(dispatcher, bot)
    try:
        await recorder.wait_until(lambda: recorder.handled == 4)
        assert recorder.most_at_once == 1
    finally:
        await dispatcher.stop_polling()
        await task
        await bot.session.close()
