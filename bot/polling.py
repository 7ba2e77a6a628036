"""Long polling that confirms a batch of updates only once all of them are handled.

aiogram's polling confirms an update to Telegram (by asking for the ones after it) either
before handling it (`handle_as_tasks=True`: a bot killed mid-update loses that update) or
handles one update after the other (`handle_as_tasks=False`: safe, but every update waits for
all the round trips of the one before). Here each batch that getUpdates returns is handled
with its updates side by side and confirmed with the next getUpdates only when every one of
them finished: as safe as one after the other (an update not committed comes again, and the
claimed update ids make one that did harmless), while their round trips overlap.

Order is kept where it matters: the updates of one user take turns in the order Telegram
sent them (bot.middlewares.DialogueLock, a first-come lock per user), and on SQLite all
updates do (its one-writer lock in UpdateTransaction). A batch is at most 100 updates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig

log = logging.getLogger(__name__)


class BatchPolling(Dispatcher):
    """The bot's dispatcher; `start_polling` handles each batch as described above, at most
    `side_by_side` updates at a time (1: one after the other, as on SQLite, where updates take
    turns anyway; PostgreSQL: fewer than the connection pool holds)."""

    def __init__(self, *, side_by_side: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.side_by_side = max(1, side_by_side)

    async def _polling(
        self,
        bot: Bot,
        polling_timeout: int = 30,
        handle_as_tasks: bool = True,
        backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
        allowed_updates: list[str] | None = None,
        tasks_concurrency_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        # handle_as_tasks and tasks_concurrency_limit are aiogram's choices this class replaces.
        user = await bot.me()
        log.info("polling for bot @%s id=%d", user.username, bot.id)
        get_updates = GetUpdates(timeout=polling_timeout, allowed_updates=allowed_updates)
        # The request may take as long as the long poll itself, and then some.
        request_timeout = int((bot.session.timeout or 0) + polling_timeout)
        backoff = Backoff(config=backoff_config)
        try:
            while True:
                try:
                    updates = await bot(get_updates, request_timeout=request_timeout)
                except Exception as error:
                    log.warning(
                        "getUpdates failed (%s: %s); trying again in %.1fs",
                        type(error).__name__,
                        error,
                        backoff.next_delay,
                    )
                    await backoff.asleep()
                    continue
                backoff.reset()
                if not updates:
                    continue
                await self._handle_batch(bot, updates, kwargs)
                get_updates.offset = updates[-1].update_id + 1
        finally:
            log.info("polling stopped for bot @%s id=%d", user.username, bot.id)

    async def _handle_batch(self, bot: Bot, updates: list[Update], data: dict[str, Any]) -> None:
        # _process_update logs and swallows a handler's failure: one bad update does not hold
        # up the rest of its batch.
        if self.side_by_side == 1:
            for update in updates:
                await self._process_update(bot=bot, update=update, **data)
            return
        turns = asyncio.Semaphore(self.side_by_side)  # first come, first served

        async def handle(update: Update) -> None:
            async with turns:
                await self._process_update(bot=bot, update=update, **data)

        await asyncio.gather(*(handle(update) for update in updates))
