"""The app factory: settings -> engine -> sessions -> bot -> dispatcher.

No module-level bot, engine or dispatcher: the CLI, the tests and the benchmarks all build
the very same app with `build_app`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.middlewares import (
    DialogueLock,
    FloodGuard,
    HoldTapAnswers,
    PostponeOnReplyLimit,
    RetryReplies,
    TapAnswers,
    UpdateTransaction,
)
from bot.observability import UpdateLogMiddleware
from bot.polling import BatchPoller
from bot.sanitize import CleanInput
from bot.session import BotApiSession
from chat_ui.i18n import ViewerLocaleMiddleware
from config.settings import Settings, invite_secret_of, with_invite_secret
from conversations import admin_notices, evidence_review, goals, parent_summary, prompts
from conversations.media_intake import media_store
from conversations.talks import composers as talk_composers
from handlers import get_routers
from handlers.group_chat import may_hold_invite_code
from language.i18n import load_i18n
from scheduler.composers import ComposerRegistry
from scheduler.service import ReminderService
from services.clock import Clock
from storage.db import create_engine, create_sessionmaker
from storage.fsm import SqlStorage
from storage.invites import rewrap_plain_hashes

log = logging.getLogger(__name__)


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
    # Long polling (bot.runner.poll); webhook mode does without it.
    poller: BatchPoller
    # School time (real time, or moved in the demo); see services.clock.
    clock: Clock = field(default_factory=Clock)

    async def stop_polling(self, *, grace: float = 10.0) -> None:
        """Stop after the updates in hand have committed (at most `grace` seconds)."""
        await self.poller.stop(grace=grace)

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
    # The app's settings carry the invite secret (from INVITE_SECRET or, without a token,
    # the kept file), so what redeems a code needs no file or environment of its own.
    settings = with_invite_secret(settings)
    engine = create_engine(settings.database_url)
    session_factory = create_sessionmaker(engine)
    if bot is None:
        bot = build_bot(settings, token=token or settings.bot_token or "")
    storage, isolation = _fsm_backend(settings, session_factory)
    # events_isolation: one update per user at a time, so two quick taps cannot both read the
    # same dialogue state and race each other. aiogram's own FSM middleware is replaced by
    # DialogueLock, in its place, which leaves reading the state to the update's transaction.
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation, disable_fsm=True)
    dispatcher.fsm = DialogueLock(storage=storage, events_isolation=isolation)
    i18n = load_i18n(default_locale=settings.default_locale)
    # First of ours: a flooding account is turned away before its update costs a lock, a log
    # line or any SQL, so the others do not wait for it.
    flood_guard = FloodGuard(
        i18n,
        updates=settings.flood_updates,
        window=settings.flood_window_seconds,
        silence=settings.flood_silence_seconds,
        always_handle=may_hold_invite_code,
    )
    dispatcher.update.outer_middleware(flood_guard)
    dispatcher.shutdown.register(flood_guard.close)
    dispatcher.update.outer_middleware(dispatcher.fsm)

    # SQLite has one writer: updates and the reminder jobs of this process take turns.
    db_lock = asyncio.Lock() if settings.is_sqlite else None
    dispatcher.update.outer_middleware(CleanInput())
    # Outside the transaction, so that it also times (and counts) the commit and duplicates.
    dispatcher.update.outer_middleware(UpdateLogMiddleware())
    # Outside the transaction: a held answer goes out after the commit.
    dispatcher.update.outer_middleware(TapAnswers())
    # Outside the transaction: a reply held up by Telegram's flood limit waits here, with the
    # transaction (and SQLite's one writer) free for the others.
    dispatcher.update.outer_middleware(PostponeOnReplyLimit())
    dispatcher.update.outer_middleware(UpdateTransaction(session_factory, lock=db_lock))
    dispatcher.update.outer_middleware(ViewerLocaleMiddleware(i18n))
    dispatcher.include_routers(*get_routers())
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
        composers=composer_registry(settings, clock),
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
        # Polling confirms each batch of updates once all are handled (bot.polling); a batch's
        # updates are handled side by side: on PostgreSQL up to 20 (the pool holds 30), on
        # SQLite the whole batch (at most 100), which takes turns on the one-writer lock
        # anyway: an update whose reply waits for Telegram's flood limit waits outside that
        # lock (PostponeOnReplyLimit) while the others go on.
        BatchPoller(dispatcher, side_by_side=100 if settings.is_sqlite else 20),
        clock,
    )


async def rewrap_invite_codes(app: App) -> None:
    """At start-up: invite codes stored by a version before the invite secret get their keyed
    hash, so that no plain hash stays in the database (storage.invites)."""
    async with app.session_factory() as session, session.begin():
        rewrapped = await rewrap_plain_hashes(session, secret=invite_secret_of(app.settings))
    if rewrapped:
        log.info("invite codes now hashed with the invite secret: %d", rewrapped)


def composer_registry(settings: Settings, clock: Clock) -> ComposerRegistry:
    """What each kind of scheduled message says: every feature adds its composers. They get
    this app's settings, media folder and clock, never the environment's."""
    registry = ComposerRegistry(settings=settings, media=media_store(settings), clock=clock)
    prompts.register_composers(registry)
    admin_notices.register_composers(registry)
    talk_composers.register_composers(registry)
    parent_summary.register_composers(registry)
    evidence_review.register_composers(registry)
    goals.register_composers(registry)
    return registry
