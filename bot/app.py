"""The app factory: settings -> engine -> sessions -> bot -> dispatcher.

No module-level bot, engine or dispatcher: the CLI, the tests and the benchmarks all build
the very same app with `build_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.middlewares import (
    DialogueLock,
    HoldTapAnswers,
    RetryReplies,
    TapAnswers,
    UpdatesInFlight,
    UpdateTransaction,
)
from bot.observability import UpdateLogMiddleware
from bot.polling import BatchPolling
from bot.responses import keep_response_models
from bot.sanitize import CleanInput
from bot.session import BotApiSession
from chat_ui.i18n import ViewerLocaleMiddleware
from config.settings import Settings
from conversations import evidence_review, goals, parent_summary, prompts
from conversations.talks import composers as talk_composers
from handlers import get_routers
from language.i18n import load_i18n
from scheduler.dispatcher import Composer
from scheduler.service import ReminderService
from services.clock import Clock
from storage.db import create_engine, create_sessionmaker
from storage.fsm import SqlStorage
from storage.talks import KIND_BRIEF


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    reminders: ReminderService
    # The scheduler's own connection to Telegram: bulk sending paces itself and must not be
    # held up by (or hold up) the conversation replies' flood-control waits.
    outbox_bot: Bot
    updates_in_flight: UpdatesInFlight
    # School time (real time, or moved in the demo); see bot.clock.
    clock: Clock = field(default_factory=Clock)

    async def stop_polling(self, *, grace: float = 10.0) -> None:
        """Stop after the update in hand has committed (at most `grace` seconds)."""
        await self.updates_in_flight.wait_idle(grace)
        await self.dispatcher.stop_polling()

    async def close(self) -> None:
        await self.reminders.shutdown()
        await self.outbox_bot.session.close()
        await self.dispatcher.storage.close()
        await self.dispatcher.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()


def build_bot(settings: Settings, *, token: str, api_url: str | None = None) -> Bot:
    session = BotApiSession(api=TelegramAPIServer.from_base(api_url or settings.telegram_api_url))
    return Bot(
        token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )


def _fsm_backend(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> tuple[BaseStorage, BaseEventIsolation]:
    key_builder = DefaultKeyBuilder(with_bot_id=True, with_destiny=True)
    if settings.redis_url:
        # Several replicas: state and the per-user lock must be shared between processes.
        from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

        storage = RedisStorage.from_url(settings.redis_url, key_builder=key_builder)
        return storage, RedisEventIsolation(storage.redis, key_builder=key_builder)
    return SqlStorage(session_factory, key_builder=key_builder), SimpleEventIsolation()


def build_app(
    settings: Settings,
    *,
    bot: Bot | None = None,
    token: str | None = None,
    clock: Clock | None = None,
) -> App:
    keep_response_models()
    engine = create_engine(settings.database_url)
    session_factory = create_sessionmaker(engine)
    if bot is None:
        bot = build_bot(settings, token=token or settings.bot_token or "")
    storage, isolation = _fsm_backend(settings, session_factory)
    # events_isolation: one update per user at a time, so two quick taps cannot both read the
    # same dialogue state and race each other. aiogram's own FSM middleware is replaced by
    # DialogueLock, in its place, which leaves reading the state to the update's transaction.
    # Polling confirms each batch of updates once all are handled (bot.polling); on
    # PostgreSQL a batch's updates are handled side by side, up to 20 (the pool holds 30).
    dispatcher = BatchPolling(
        side_by_side=1 if settings.is_sqlite else 20,
        storage=storage,
        events_isolation=isolation,
        disable_fsm=True,
    )
    dispatcher.fsm = DialogueLock(storage=storage, events_isolation=isolation)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    i18n = load_i18n(default_locale=settings.default_locale)

    # SQLite has one writer: updates and the reminder jobs of this process take turns.
    db_lock = asyncio.Lock() if settings.is_sqlite else None
    in_flight = UpdatesInFlight()
    dispatcher.update.outer_middleware(in_flight)
    dispatcher.update.outer_middleware(CleanInput())
    # Outside the transaction, so that it also times (and counts) the commit and duplicates.
    dispatcher.update.outer_middleware(UpdateLogMiddleware())
    # Outside the transaction: a held answer goes out after the commit.
    dispatcher.update.outer_middleware(TapAnswers())
    dispatcher.update.outer_middleware(UpdateTransaction(session_factory, lock=db_lock))
    dispatcher.update.outer_middleware(ViewerLocaleMiddleware(i18n))
    dispatcher.include_routers(*get_routers())
    check_pure_filters_inline(dispatcher)
    dispatcher["settings"] = settings
    dispatcher["session_factory"] = session_factory
    dispatcher["i18n_core"] = i18n
    clock = clock or Clock(settings.timezone)
    dispatcher["clock"] = clock
    bot.session.middleware(HoldTapAnswers())
    bot.session.middleware(RetryReplies())
    outbox_bot = Bot(
        token=bot.token,
        session=BotApiSession(api=bot.session.api),
        default=bot.default,
    )
    reminders = ReminderService(
        session_factory=session_factory,
        bot=outbox_bot,
        i18n=i18n,
        clock=clock,
        composers=composers(settings),
        per_second=settings.send_rate_per_second,
        per_chat_per_second=settings.send_rate_per_chat,
        db_lock=db_lock,
        lease=timedelta(seconds=settings.reminder_lease_seconds),
        media_dir=settings.media_dir,
        retention_months=settings.retention_months,
        timezone=settings.timezone,
    )
    return App(
        settings,
        engine,
        session_factory,
        bot,
        dispatcher,
        i18n,
        reminders,
        outbox_bot,
        in_flight,
        clock,
    )


def check_pure_filters_inline(dispatcher: Dispatcher) -> None:
    """Dialogue states and magic filters (`F.text == ...`) checked in the event loop.

    aiogram runs a filter that is not a coroutine on a worker thread (`asyncio.to_thread`):
    a thread hop for every such filter an update passes on its way through the routers, up to
    dozens for a message. These two kinds only compare attributes of the update, so they run
    in place; any other plain function is left to aiogram's thread.
    """
    for router in dispatcher.chain_tail:
        for observer in router.observers.values():
            for handler in (observer._handler, *observer.handlers):
                for check in handler.filters or ():
                    pure = check.magic is not None or isinstance(check.callback, State)
                    if pure and not check.awaitable:
                        check.callback = _in_place(check.callback)
                        check.awaitable = True


def _in_place(check: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    # The filter object keeps the parameters it read from the original check's signature.
    async def in_place(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return in_place


def composers(settings: Settings) -> Mapping[str, Composer]:
    """What each kind of scheduled message says (conversations/), by reminder kind."""
    # The parents' summary reads the shared photos from this app's media folder.
    return {
        **prompts.COMPOSERS,
        **talk_composers.COMPOSERS,
        # The teacher's brief shows the photos the pupil chose, from this app's media folder.
        KIND_BRIEF: partial(talk_composers.compose_brief, settings=settings),
        **parent_summary.composers_for(settings),
        **evidence_review.COMPOSERS,
        **goals.COMPOSERS,
    }
