"""Long polling that confirms a batch of updates only once all of them are handled.

aiogram's polling confirms an update to Telegram (by asking for the ones after it) either
before handling it (`handle_as_tasks=True`: a bot killed mid-update loses that update) or
handles one update after the other (`handle_as_tasks=False`: safe, but every update waits for
all the round trips of the one before). `BatchPoller` is a polling loop of its own, built on
the public `Bot.get_updates` and `Dispatcher.feed_update`: each batch that getUpdates returns
is handled with its updates side by side and confirmed with the next getUpdates only when
every one of them finished. That is as safe as one after the other (an update not committed
comes again, and the claimed update ids make one that did harmless), while their round trips
overlap.

Order is kept where it matters: the updates of one user take turns in the order Telegram
sent them (bot.middlewares.DialogueLock, a first-come lock per user), and on SQLite all
updates do (its one-writer lock in UpdateTransaction). A batch is at most 100 updates.

A stop (`BatchPoller.stop`, on SIGTERM or Ctrl+C) ends the long poll at once, gives the
batch in hand a grace period to commit and then confirms it; a batch still unfinished after
that is cut off (its transactions roll back) and none of it is confirmed: it comes again.

The updates of a batch are read one by one (`GetUpdatesAsSent`): one that does not fit
aiogram's model (a shape of a newer or older Bot API) is logged by its id, type and the
fields that did not fit, and skipped; it is confirmed with the rest, so it holds up no one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from pydantic import ValidationError

from bot.observability import log_unreadable_update
from storage.updates import LARGEST_UPDATE_ID

log = logging.getLogger(__name__)

T = TypeVar("T")

# Long enough for the one getUpdates that confirms the last batch at a stop, short enough
# not to hold up a shutdown when Telegram is unreachable.
CONFIRM_TIMEOUT = 5


class StoppedError(Exception):
    """The step in hand was cut off by `BatchPoller.stop`."""


class GetUpdatesAsSent(GetUpdates):
    """getUpdates, answering with the updates as the JSON objects Telegram sent.

    aiogram's own reads the whole answer into `Update`s at once, so one update it cannot read
    fails the whole call, and every call after it, until Telegram drops that update a day
    later: every other user waits that long. Read one by one (`read_batch`), the bad one is
    skipped. Still a GetUpdates: left to the polling loop's backoff (bot.middlewares)."""

    __returning__ = list[Any]


def read_batch(bot: Bot, batch: list[Any]) -> tuple[list[Update], int | None]:
    """The updates of a batch that could be read, and the highest update id in it, of those
    that could not be read too (None when there is none at all)."""
    updates: list[Update] = []
    highest: int | None = None
    for raw in batch:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if isinstance(update_id, int) and not isinstance(update_id, bool):
            highest = update_id if highest is None else max(highest, update_id)
        try:
            updates.append(Update.model_validate(raw, context={"bot": bot}))
        except ValidationError as error:
            log_unreadable_update(raw, error)
    return updates, highest


def failure_reason(error: Exception) -> str:
    """An error of getUpdates as it may be logged: an answer that could not be read is not
    quoted (it holds what people wrote)."""
    if isinstance(error, ClientDecodeError):
        return error.message
    return str(error)


class BatchPoller:
    """Polls for one dispatcher, as described above, at most `side_by_side` updates at a time
    (each user's still in order). On PostgreSQL fewer than the connection pool holds; on SQLite
    the transactions take turns on the one writer, but a user waiting (for Telegram's per-chat
    limit, say) no longer holds up the others.

    One poller polls once: after `stop` (even one that came before `run`), `run` returns.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        side_by_side: int,
        backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
    ) -> None:
        self.dispatcher = dispatcher
        self.side_by_side = max(1, side_by_side)
        self.backoff_config = backoff_config
        self._stop_asked = False
        self._running = False
        self._stopped = asyncio.Event()
        # What the loop is waiting for, for `stop` to cut short: the long poll and a backoff
        # at once, the batch after its grace period.
        self._in_hand: asyncio.Task[Any] | None = None
        self._in_hand_is_batch = False

    async def run(
        self,
        bot: Bot,
        *,
        polling_timeout: int = 10,
        allowed_updates: list[str] | None = None,
        **data: Any,
    ) -> None:
        """Poll until `stop`. As aiogram's `start_polling` does, the dispatcher's startup and
        shutdown handlers run around it, and `data` reaches the handlers; `allowed_updates`
        defaults to the update types the routers handle."""
        if self._running:
            raise RuntimeError("this poller is already polling")
        if self._stop_asked:
            return
        self._running = True
        self._stopped.clear()
        if allowed_updates is None:
            allowed_updates = self.dispatcher.resolve_used_update_types()
        # What aiogram's start_polling hands to the startup and shutdown handlers, and to
        # every update (feed_update adds the dispatcher's own data).
        data = {"bots": (bot,), **data}
        lifecycle = {"dispatcher": self.dispatcher, **self.dispatcher.workflow_data, **data}
        try:
            await self.dispatcher.emit_startup(bot=bot, **lifecycle)
            try:
                await self._poll(bot, polling_timeout, allowed_updates, data)
            finally:
                await self.dispatcher.emit_shutdown(bot=bot, **lifecycle)
        finally:
            self._running = False
            self._stopped.set()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop polling and return once `run` has: the batch in hand gets up to `grace`
        seconds to commit."""
        self._stop_asked = True
        in_hand = self._in_hand
        if in_hand is not None:
            if self._in_hand_is_batch:
                await asyncio.wait({in_hand}, timeout=grace)
            in_hand.cancel()  # nothing happens to a finished one
        if self._running:
            await self._stopped.wait()

    async def _poll(
        self, bot: Bot, polling_timeout: int, allowed_updates: list[str], data: dict[str, Any]
    ) -> None:
        user = await bot.me()
        log.info("polling for bot @%s id=%d", user.username, bot.id)
        # The request may take as long as the long poll itself, and then some.
        request_timeout = int((bot.session.timeout or 0) + polling_timeout)
        backoff = Backoff(config=self.backoff_config)
        offset: int | None = None
        # True from a handled batch until a getUpdates carrying its offset has answered.
        unconfirmed = False
        try:
            while not self._stop_asked:
                try:
                    batch = await self._cut_short_by_stop(
                        bot(
                            GetUpdatesAsSent(
                                offset=offset,
                                timeout=polling_timeout,
                                allowed_updates=allowed_updates,
                            ),
                            request_timeout=request_timeout,
                        )
                    )
                except StoppedError:
                    break
                except Exception as error:
                    log.warning(
                        "getUpdates failed (%s: %s); trying again in %.1fs",
                        type(error).__name__,
                        failure_reason(error),
                        backoff.next_delay,
                    )
                    try:
                        await self._cut_short_by_stop(backoff.asleep())
                    except StoppedError:
                        break
                    continue
                unconfirmed = False
                if offset is not None and offset > LARGEST_UPDATE_ID:
                    # The last batch ended in an id no real update has (the middlewares
                    # refused it): that offset has now confirmed it, and carried on it would
                    # confirm, unseen, updates numbered as usual after it. Telegram sends
                    # the oldest update not yet confirmed to a getUpdates without one.
                    offset = None
                if not batch or self._stop_asked:
                    # Fetched as the stop came: not confirmed, so they come again.
                    backoff.reset()
                    continue
                updates, highest = read_batch(bot, cast(list[Any], batch))
                if highest is None:
                    # Not one update id to confirm the batch by: wait, as for a failure.
                    log.warning(
                        "getUpdates answered %d updates without an update_id; trying again "
                        "in %.1fs",
                        len(batch),
                        backoff.next_delay,
                    )
                    try:
                        await self._cut_short_by_stop(backoff.asleep())
                    except StoppedError:
                        break
                    continue
                backoff.reset()
                if updates:
                    try:
                        await self._cut_short_by_stop(
                            self._handle_batch(bot, updates, data), is_batch=True
                        )
                    except StoppedError:
                        log.warning(
                            "stopped before a batch of %d updates was handled; it comes again",
                            len(updates),
                        )
                        return
                offset = highest + 1
                unconfirmed = True
            if unconfirmed:
                await self._confirm(bot, offset)
        finally:
            log.info("polling stopped for bot @%s id=%d", user.username, bot.id)

    async def _cut_short_by_stop(
        self, step: Coroutine[Any, Any, T], *, is_batch: bool = False
    ) -> T:
        """Runs `step` as a task that `stop` may cancel (StoppedError, here). Cancelling the
        polling itself cancels the step as well."""
        task = asyncio.create_task(step)
        self._in_hand, self._in_hand_is_batch = task, is_batch
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and self._stop_asked and not (current and current.cancelling()):
                raise StoppedError from None
            raise
        finally:
            self._in_hand = None

    async def _confirm(self, bot: Bot, offset: int | None) -> None:
        # The long poll that would have carried the offset was cut short by the stop.
        # As sent: the one update it may bring along is not read, so it cannot fail the call.
        try:
            await bot(
                GetUpdatesAsSent(offset=offset, limit=1, timeout=0),
                request_timeout=CONFIRM_TIMEOUT,
            )
        except Exception as error:
            # Harmless: the batch comes again and its claimed update ids skip it.
            log.warning(
                "could not confirm the last batch (%s: %s)",
                type(error).__name__,
                failure_reason(error),
            )

    async def _handle_batch(self, bot: Bot, updates: list[Update], data: dict[str, Any]) -> None:
        if self.side_by_side == 1:
            for update in updates:
                await self._handle(bot, update, data)
            return
        turns = asyncio.Semaphore(self.side_by_side)  # first come, first served

        async def take_turn(update: Update) -> None:
            async with turns:
                await self._handle(bot, update, data)

        await asyncio.gather(*(take_turn(update) for update in updates))

    async def _handle(self, bot: Bot, update: Update, data: dict[str, Any]) -> None:
        # One bad update does not hold up the rest of its batch: its failure is logged (the
        # errors router has told the user already) and the batch goes on.
        try:
            response = await self.dispatcher.feed_update(bot, update, **data)
            if isinstance(response, TelegramMethod):
                # A method returned by a handler is carried out, as a webhook reply would be.
                await bot(response)
        except Exception:
            log.exception("update id=%d failed (bot id=%d)", update.update_id, bot.id)
