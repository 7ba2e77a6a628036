"""Outer middlewares: one database transaction per update, de-duplication, the viewer, and
the Bot API side of a conversation (retries, answers to taps).

Order (registered in bot.app): aiogram's own (errors, user context) -> DialogueLock ->
UpdatesInFlight -> CleanInput -> the update's log line -> TapAnswers -> UpdateTransaction
(which also loads the viewer) -> locale. Handlers get `session` and `viewer` as arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from contextvars import ContextVar
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetUpdates,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.fsm import SqlStorage
from storage.session_scope import current_session
from storage.updates import open_update

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DialogueLock(FSMContextMiddleware):
    """aiogram's FSM middleware, minus its early read of the dialogue state.

    aiogram takes the user's lock (one update per user at a time) and then reads the state
    for the state filters, before any of our middlewares run: with the state in the database
    that read was a transaction of its own, a second one per update. Here only the lock is
    taken and the `state` context handed on; `UpdateTransaction` reads the state inside the
    update's own transaction, after the update id is claimed (a duplicate reads nothing).
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context = self.resolve_event_context(data["bot"], data)
        data["fsm_storage"] = self.storage
        if context is None:
            return await handler(event, data)
        async with self.events_isolation.lock(key=context.key):
            data["state"] = context
            return await handler(event, data)


class UpdateTransaction(BaseMiddleware):
    """Opens the update's session, skips updates already handled, loads who is talking and
    their dialogue state, and commits once at the end.

    Handlers get `session` and `viewer` (None for a bot or an update without a user).

    SQLite allows one writer at a time; handling its updates one by one in this process avoids
    "database is locked" errors under load at the cost of concurrency, which a single school
    does not need. PostgreSQL updates run concurrently.
    """

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, lock: asyncio.Lock | None
    ) -> None:
        self._session_factory = session_factory
        self._lock = lock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        state: FSMContext | None = data.get("state")
        storage = data.get("fsm_storage")
        # With the dialogues in the database, the state is read in the same trip as the claim
        # (the Redis store reads its own, below).
        dialogue_key = (
            storage.row_key(state.key)
            if state is not None and isinstance(storage, SqlStorage)
            else None
        )
        guard: AbstractAsyncContextManager[Any] = self._lock or nullcontext()
        async with guard, self._session_factory() as session:
            token = current_session.set(session)
            try:
                try:
                    opening = await open_update(
                        session,
                        bot_id=data["bot"].id,
                        update_id=event.update_id,
                        telegram_user_id=user.id if user is not None and not user.is_bot else None,
                        dialogue_key=dialogue_key,
                    )
                except IntegrityError:
                    # Another replica is handling (or just handled) this very update.
                    await session.rollback()
                    return UNHANDLED
                if opening is None:
                    log.info("update %s was handled before; skipped", event.update_id)
                    return UNHANDLED
                data["session"] = session
                data["viewer"] = opening.viewer
                if state is not None:
                    # For the state filters (see DialogueLock): read in this transaction, so
                    # the state a handler acts on is the one it commits its changes against.
                    data["raw_state"] = await state.get_state()
                result = await handler(event, data)
                await session.commit()
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)


class RetryReplies(BaseRequestMiddleware):
    """Replies in a conversation survive Telegram's hiccups instead of failing the update.

    * 429 (a child tapping very fast exceeds the per-chat limit): Telegram says how long to
      wait and did not carry out the request, so it is sent again after that wait. Long waits
      are not worth holding the update for: those fail as before (the error handler says so).
    * 5xx and network errors: tried again after a short backoff. Such a request may, rarely,
      have arrived after all; a reply shown twice is better than a dialogue step lost.

    getUpdates is left to aiogram's polling loop, which has its own backoff. Bulk messages do
    not come through here: the scheduler's rate-limited sender has its own bot and pacing.
    """

    def __init__(
        self, *, max_wait: float = 10.0, max_attempts: int = 3, backoff: float = 0.5
    ) -> None:
        self.max_wait = max_wait
        self.max_attempts = max_attempts
        self.backoff = backoff

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)  # type: ignore[arg-type]
        redraw = isinstance(method, _IDEMPOTENT_UI)  # a plain bool: keeps `method` generic
        if redraw:
            try:
                return await self._send(make_request, bot, method)
            except TelegramBadRequest as error:
                if not _harmless(error):
                    raise
                # A tap answered too late (the bot was restarting), or an update handled again
                # after a crash redrawing the very same card: nothing is wrong for the user.
                log.info("%s: %s", type(method).__name__, error.message)
                return cast(Response[TelegramType], True)
        return await self._send(make_request, bot, method)

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt == self.max_attempts or error.retry_after > self.max_wait:
                    raise
                wait = float(error.retry_after)
            except (TelegramServerError, TelegramNetworkError):
                if attempt == self.max_attempts:
                    raise
                wait = self.backoff * 2 ** (attempt - 1)
            log.info("%s failed; trying again in %.1fs", type(method).__name__, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


# Calls whose "failure" after a restart can mean the user already sees the right thing.
_IDEMPOTENT_UI = (AnswerCallbackQuery, EditMessageText, EditMessageReplyMarkup)
_HARMLESS = ("query is too old", "query ID is invalid", "message is not modified")


def _harmless(error: TelegramBadRequest) -> bool:
    return any(text in error.message for text in _HARMLESS)


class _TapAnswer:
    """An update's answer to a tap (see TapAnswers): held for the webhook reply, or on its way
    while the step goes on."""

    def __init__(self, *, webhook: bool) -> None:
        self.webhook = webhook
        self.open = True
        self.held: AnswerCallbackQuery | None = None
        self.sending: asyncio.Future[Any] | None = None

    @property
    def taken(self) -> bool:
        return self.held is not None or self.sending is not None

    async def settle(self) -> None:
        """Wait for an answer on its way; its failure is logged, not raised."""
        if self.sending is None:
            return
        try:
            await self.sending
        except TelegramAPIError as error:
            # Only the spinner is at stake; the update's own outcome matters more.
            log.info("answerCallbackQuery: %s", error.message)


_tap_answer: ContextVar[_TapAnswer | None] = ContextVar("tap_answer", default=None)


class TapAnswers(BaseMiddleware):
    """A tap's answer (answerCallbackQuery, which stops the button's spinner) does not hold up
    the step it answers.

    * Webhook mode: the answer goes back in the HTTP reply to Telegram's delivery of the tap,
      not as a request of its own (Telegram carries out one method given in that reply). Every
      tap costs one request fewer, and the answer arrives once the step committed, just before
      Telegram learns the update was handled. When the step fails, or returns a method of its
      own for the reply, the answer is sent as a request after all.
    * Polling: the answer is sent at once, and the step goes on with its own calls (the card's
      edit) while it travels; the update waits for it only at its end, after the commit. Two
      round trips to Telegram per tap overlap instead of following each other.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        answer = _TapAnswer(webhook=bool(data.get("webhook_reply")))
        token = _tap_answer.set(answer)
        try:
            result = await handler(event, data)
        except Exception:
            answer.open = False
            await _send_held(data["bot"], answer)
            await answer.settle()
            raise
        finally:
            answer.open = False
            _tap_answer.reset(token)
        await answer.settle()
        if answer.held is None:
            return result
        if isinstance(result, TelegramMethod):
            await _send_held(data["bot"], answer)
            return result
        return answer.held


class HoldTapAnswers(BaseRequestMiddleware):
    """The Bot API side of TapAnswers: an update's first answerCallbackQuery is held for the
    webhook reply, or sent without waiting (and reported as done either way)."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        answer = _tap_answer.get()
        is_answer = isinstance(method, AnswerCallbackQuery)  # a plain bool: keeps `method` generic
        if answer is None or not answer.open or answer.taken or not is_answer:
            return await make_request(bot, method)
        if answer.webhook:
            answer.held = cast(AnswerCallbackQuery, method)
        else:
            answer.sending = asyncio.ensure_future(make_request(bot, method))
        return cast(Response[TelegramType], True)


async def _send_held(bot: Bot, answer: _TapAnswer) -> None:
    if answer.held is None:
        return
    method, answer.held = answer.held, None
    try:
        await bot(method)
    except TelegramAPIError as error:
        log.info("answerCallbackQuery: %s", error.message)


class UpdatesInFlight(BaseMiddleware):
    """Counts the updates being handled, so a stop can wait for them to commit.

    Stopping in the middle of an update is safe (it was not confirmed to Telegram and comes
    again), but the pupil would then see the same reply twice; waiting a moment avoids that.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
