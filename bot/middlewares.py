"""Outer middlewares: one database transaction per update, de-duplication, the viewer, and
the Bot API side of a conversation (retries, answers to taps).

Order (registered in bot.app): aiogram's own (errors, user context) -> FloodGuard ->
DialogueLock -> CleanInput -> the update's log line -> TapAnswers -> PostponeOnReplyLimit ->
UpdateTransaction (which also loads the viewer) -> locale. Handlers get `session` and `viewer`
as arguments.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ChatMemberStatus
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
    GetFile,
    GetMe,
    GetUpdates,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Chat, TelegramObject, Update, User
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.i18n import I18n
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat_ui.i18n import pick_locale, viewer_is_addressed_formally
from config.settings import ALL_LOCALES
from language.i18n import _, formal_address
from storage.accounts import Viewer
from storage.fsm import SqlStorage
from storage.session_scope import current_session
from storage.updates import LARGEST_UPDATE_ID, commit_update, open_update

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
    their dialogue state, and commits once at the end. An update no handler could take
    (`refusal_of`) is refused first; what an update says about reaching its user
    (`reachability_of`) is written with the claim.

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
        refusal = refusal_of(event, user)
        if refusal is not None:
            # Before the claim: nothing is written, no handler runs (the update's log line
            # says why, bot.observability).
            data["refused"] = refusal
            return UNHANDLED
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
                        reachable=reachability_of(event),
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
                await commit_update(session)  # with the dialogue state the step changed
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)


def refusal_of(update: Update, user: User | None) -> str | None:
    """Why an update is not handled at all, or None. No handler expects these, and some
    would fail the database; they are refused quietly:

    * an update id beyond what the database keeps (Telegram never sends one);
    * an update type this version of aiogram does not know (a newer Bot API's): aiogram
      would warn with the whole update, its words included, as plain text;
    * a message in a private chat, or a tap, without a person: from no one or from a bot
      (Telegram never sends one).
    """
    if not 0 <= update.update_id <= LARGEST_UPDATE_ID:
        return "update_id out of range"
    try:
        kind = update.event_type
    except UpdateTypeLookupError:
        return "unknown update type"
    needs_a_person = kind == "callback_query" or (
        kind in ("message", "edited_message") and _chat_type(update) == "private"
    )
    if needs_a_person and (user is None or user.is_bot):
        return "not from a person"
    return None


def reachability_of(update: Update) -> bool | None:
    """What an update says about the bot writing to its user: True after they wrote or
    tapped in the private chat, or unblocked the bot there; False when they blocked it; None
    for everything else (a tap on a message elsewhere, a group's update: a person who blocked
    the bot can still do those)."""
    if _chat_type(update) != "private":
        return None
    if update.message is not None or update.edited_message is not None:
        return True
    if update.callback_query is not None:
        return True
    if update.my_chat_member is not None:
        status = update.my_chat_member.new_chat_member.status
        if status == ChatMemberStatus.KICKED:
            return False
        if status == ChatMemberStatus.MEMBER:
            return True
    return None


def _chat_type(update: Update) -> str | None:
    """The type of the chat the update happened in (None: no chat, as on an inline message)."""
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.type
    if update.callback_query is not None:
        tapped = update.callback_query.message
        return tapped.chat.type if tapped is not None else None
    if update.my_chat_member is not None:
        return update.my_chat_member.chat.type
    return None


class RetryReplies(BaseRequestMiddleware):
    """Replies in a conversation survive Telegram's hiccups instead of failing the update.

    * 429 (a child tapping very fast exceeds the per-chat limit): Telegram says how long to
      wait and did not carry out the request, so it is sent again after that wait. Long waits
      are not worth holding the update for: those fail as before (the error handler says so).
      When the update has sent nothing yet, it waits without its transaction instead
      (PostponeOnReplyLimit): everyone else's updates go on meanwhile.
    * 5xx and network errors: tried again after a short backoff. Such a request may, rarely,
      have arrived after all; a reply shown twice is better than a dialogue step lost.

    getUpdates is left to the polling loop (bot.polling), which has its own backoff. Bulk
    messages do not come through here: the scheduler's rate-limited sender has its own bot and
    pacing.
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
                return await self.send_with_retries(make_request, bot, method)
            except TelegramBadRequest as error:
                if not _harmless(error):
                    raise
                # A tap answered too late (the bot was restarting), or an update handled again
                # after a crash redrawing the very same card: nothing is wrong for the user.
                log.info("%s: %s", type(method).__name__, error.message)
                return cast(Response[TelegramType], True)
        return await self.send_with_retries(make_request, bot, method)

    async def send_with_retries(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt == self.max_attempts or error.retry_after > self.max_wait:
                    raise
                wait = float(error.retry_after)
                # Rather than wait here, holding the update's transaction: see
                # PostponeOnReplyLimit (raises ReplyPostponedError when it may).
                postpone_update(wait)
            except (TelegramServerError, TelegramNetworkError):
                if attempt == self.max_attempts:
                    raise
                wait = self.backoff * 2 ** (attempt - 1)
            else:
                note_sent(method)
                return result
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


# --- a flood from one account costs the others nothing ---------------------------------------

FLOODS = Counter(
    "portfolio_floods_total",
    "Accounts warned for sending more than FLOOD_UPDATES updates within FLOOD_WINDOW_SECONDS",
)
FLOOD_IGNORED = Counter(
    "portfolio_flood_ignored_updates_total",
    "Updates ignored unread because their account was flooding the bot",
)
# How many accounts the flood guard keeps in mind; the one heard from least recently is
# forgotten first. A school has far fewer, so only a flood from more accounts than this gets
# past it.
FLOOD_ACCOUNTS = 10_000


class _Verdict(enum.Enum):
    HANDLE = "handle"
    IGNORE = "ignore"
    WARN = "warn"  # ignore, and warn: this update crossed the line


@dataclass
class _Pace:
    """What the flood guard keeps of one Telegram account, in this process only."""

    # When its latest counted updates were sent, oldest first (at most the limit).
    recent: deque[float]
    silent_until: float = 0.0
    # The album whose items are coming in: an album counts once.
    album: str | None = None
    # How the account was last answered (its language, "u"), for the warning.
    locale: str | None = None
    formal: bool = False
    # Its updates let through and not finished yet; the warning waits for them (`answered`).
    handling: int = 0
    answered: asyncio.Event | None = None


class FloodGuard(BaseMiddleware):
    """One account sending far more than a person types or taps (a script, a stuck key, a
    child holding a button) is answered for a while, then warned once and ignored for a while,
    at no cost to anyone else.

    More than `updates` updates of one Telegram user within `window` seconds: the update that
    crosses the line gets a short warning in the user's language (in the private chat only;
    in a group the bot says nothing), and every update of theirs in the next `silence` seconds
    is ignored. After that their updates count afresh.

    It comes first, before the user's lock, the input cleaning, the update's log line and the
    database: an ignored update costs a few dictionary operations, no SQL at all. Its update
    id is not even claimed (the claim is a write, on SQLite the one writer everybody waits
    for): such an update could only come again after this process stopped before confirming
    it, and a fresh process, knowing nothing of the flood, then answers it like any other.
    The warning is sent in the background, after the answers to the updates let through: it
    may have to wait for Telegram's per-chat limit, which the flooder used up, and nobody
    waits for it.

    What it knows lives in this process (a bounded dictionary, the least recently heard from
    account forgotten first): with several replicas each counts the updates it gets. Times
    are the sending times Telegram gives messages, so a backlog arriving at once after a
    restart is judged by when it was typed; taps carry none and count when they arrive.
    `always_handle` names updates that are never held back (a group message that may hold an
    invite code must be seen, flood or not).
    """

    def __init__(
        self,
        i18n: I18n,
        *,
        updates: int,
        window: float,
        silence: float,
        always_handle: Callable[[Update], bool] | None = None,
        accounts: int = FLOOD_ACCOUNTS,
    ) -> None:
        self.i18n = i18n
        self.updates = updates
        self.window = window
        self.silence = silence
        self.always_handle = always_handle
        self.accounts = accounts
        self._paces: OrderedDict[int, _Pace] = OrderedDict()
        self._warnings: set[asyncio.Task[None]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        if (
            user is None
            or user.is_bot
            # The bot blocked or unblocked: what the scheduler must know, never a flood.
            or event.my_chat_member is not None
            or (self.always_handle is not None and self.always_handle(event))
        ):
            return await handler(event, data)
        pace = self.pace_of(user.id)
        verdict = self.judge(pace, event)
        if verdict is not _Verdict.HANDLE:
            FLOOD_IGNORED.inc()
            if verdict is _Verdict.WARN:
                FLOODS.inc()
                log.warning(
                    "an account sent more than %d updates in %.0fs: ignored for %.0fs",
                    self.updates,
                    self.window,
                    self.silence,
                )
                self.warn(data, user, pace)
            return UNHANDLED
        pace.handling += 1
        try:
            result = await handler(event, data)
        finally:
            pace.handling -= 1
            if pace.handling == 0 and pace.answered is not None:
                pace.answered.set()
        viewer: Viewer | None = data.get("viewer")
        if viewer is not None:
            pace.locale = pick_locale(viewer, user, self.locales(), self.i18n.default_locale)
            pace.formal = viewer_is_addressed_formally(viewer)
        return result

    def pace_of(self, user_id: int) -> _Pace:
        pace = self._paces.get(user_id)
        if pace is None:
            pace = self._paces[user_id] = _Pace(recent=deque(maxlen=self.updates))
            if len(self._paces) > self.accounts:
                self._paces.popitem(last=False)
        else:
            self._paces.move_to_end(user_id)
        return pace

    def judge(self, pace: _Pace, update: Update) -> _Verdict:
        moment = _sent_at(update)
        if moment < pace.silent_until:
            return _Verdict.IGNORE
        album = update.message.media_group_id if update.message is not None else None
        if album is not None and album == pace.album:
            return _Verdict.HANDLE
        pace.album = album
        while pace.recent and pace.recent[0] <= moment - self.window:
            pace.recent.popleft()
        if len(pace.recent) >= self.updates:
            pace.recent.clear()  # after the silence the count starts afresh
            pace.silent_until = moment + self.silence
            return _Verdict.WARN
        pace.recent.append(moment)
        return _Verdict.HANDLE

    def locales(self) -> set[str]:
        return set(self.i18n.available_locales) & set(ALL_LOCALES)

    def warn(self, data: dict[str, Any], user: User, pace: _Pace) -> None:
        chat: Chat | None = data.get("event_chat")
        if chat is None or chat.type != "private":
            return
        locale = pace.locale or pick_locale(None, user, self.locales(), self.i18n.default_locale)
        with self.i18n.context(), self.i18n.use_locale(locale), formal_address(pace.formal):
            # parents
            text = _(
                "Rustig aan! 🐢 Dat zijn heel veel berichten tegelijk. "
                "Wacht even, dan kun je weer verder."
            )
        task = asyncio.create_task(_send_warning(data["bot"], chat.id, text, after=pace))
        self._warnings.add(task)
        task.add_done_callback(self._warnings.discard)

    async def close(self) -> None:
        """At shutdown: a warning still waiting for Telegram's limit is not sent."""
        for task in list(self._warnings):
            task.cancel()
        await asyncio.gather(*self._warnings, return_exceptions=True)


def _sent_at(update: Update) -> float:
    """When the person did what the update reports, as a Unix time."""
    if update.message is not None:
        return update.message.date.timestamp()
    edited = update.edited_message
    if edited is not None and edited.edit_date is not None:
        return float(edited.edit_date)  # Unix time already, unlike a message's date
    return time.time()


async def _send_warning(bot: Bot, chat_id: int, text: str, *, after: _Pace) -> None:
    """Sends the warning once the updates let through before it are answered: it comes last
    in the chat, and it is the warning, not one of their answers, that meets Telegram's
    per-chat limit and waits (in the background)."""
    if after.handling:
        after.answered = asyncio.Event()
        await after.answered.wait()
        after.answered = None
    try:
        await bot.send_message(chat_id, text)
    except TelegramAPIError as error:
        log.info("the flood warning was not sent: %s", error.message)


# --- a reply that must wait for Telegram waits outside the transaction -----------------------


class ReplyPostponedError(Exception):
    """Raised by RetryReplies in place of waiting out a 429; caught by PostponeOnReplyLimit."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"a reply waits {wait:.0f}s for Telegram's flood limit")
        self.wait = wait


@dataclass
class _Turn:
    """The update PostponeOnReplyLimit is handling, as RetryReplies sees it."""

    # The update's own task: a request sent from another one (a tap's answer on its way) is
    # never postponed, nobody would catch it there.
    task: asyncio.Task[Any] | None
    postponements_left: int
    # Something reached Telegram that a second run would send again (a message, not an edit).
    sent: bool = False


_turn: ContextVar[_Turn | None] = ContextVar("update_turn", default=None)


class PostponeOnReplyLimit(BaseMiddleware):
    """A reply refused by Telegram's flood limit (429, at most about one message a second per
    chat) waits with nothing held that others need.

    RetryReplies would wait out the 429 and send again, inside the handler: the update's
    transaction stays open meanwhile, and on SQLite the one-writer lock with it, so every
    other chat's update waited for one child's taps. Now, when the refused reply is the first
    thing the update would send, RetryReplies raises ReplyPostponedError instead: the transaction
    rolls back (nothing in it was seen by anyone yet) and releases the lock, the update waits
    here, and then it is handled again from the start (claim, state, handler, commit), as if
    it had just arrived. Only this user's lock (DialogueLock) is held while it waits, so their
    own updates keep their order; the poller goes on with everyone else's.

    Only with the dialogues in the database: Redis keeps a step's new state even when its
    transaction rolls back, so a second run would start from the wrong step. After
    `postponements` times, or once the update sent a message (a second run would send it
    again), a 429 is waited out in place, as before.
    """

    def __init__(self, *, postponements: int = 2) -> None:
        self.postponements = postponements

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(data.get("fsm_storage"), SqlStorage):
            return await handler(event, data)
        left = self.postponements
        while True:
            turn = _Turn(task=asyncio.current_task(), postponements_left=left)
            token = _turn.set(turn)
            try:
                return await handler(event, data)
            except ReplyPostponedError as postponed:
                left = turn.postponements_left
                log.info(
                    "a reply waits %.0fs for Telegram; the update is handled again then",
                    postponed.wait,
                )
                await asyncio.sleep(postponed.wait)
            finally:
                _turn.reset(token)


def postpone_update(wait: float) -> None:
    """Called by RetryReplies on a 429: raises ReplyPostponedError when the update in hand may be
    handled again later (see PostponeOnReplyLimit), else returns and the caller waits."""
    turn = _turn.get()
    if (
        turn is None
        or turn.sent
        or turn.postponements_left <= 0
        or turn.task is not asyncio.current_task()
    ):
        return
    turn.postponements_left -= 1
    raise ReplyPostponedError(wait)


def note_sent(method: TelegramMethod[Any]) -> None:
    """Called by RetryReplies after a request succeeded: a message sent cannot be taken back,
    so from now on the update in hand is not handled twice."""
    turn = _turn.get()
    if turn is not None and not isinstance(method, _REPEATABLE):
        turn.sent = True


# Requests a second run of an update may repeat: reads, and redraws that show the same again.
_REPEATABLE = (*_IDEMPOTENT_UI, GetFile, GetMe)
