"""The app factory: settings -> engine -> sessions -> bot -> dispatcher.

No module-level bot, engine or dispatcher: the CLI, the tests and the benchmarks all build
the very same app with `build_app`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.i18n import ViewerLocaleMiddleware, load_i18n
from bot.middlewares import UpdateTransaction, ViewerMiddleware
from bot.settings import Settings
from handlers import get_routers
from storage.db import create_engine, create_sessionmaker
from storage.fsm import SqlStorage


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    # School time (real time, or moved in the demo); see bot.clock.
    clock: Clock = field(default_factory=Clock)

    async def close(self) -> None:
        await self.dispatcher.storage.close()
        await self.dispatcher.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()


def build_bot(settings: Settings, *, token: str, api_url: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url or settings.telegram_api_url))
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
    engine = create_engine(settings.database_url)
    session_factory = create_sessionmaker(engine)
    if bot is None:
        bot = build_bot(settings, token=token or settings.bot_token or "")
    storage, isolation = _fsm_backend(settings, session_factory)
    # events_isolation: one update per user at a time, so two quick taps cannot both read the
    # same dialogue state and race each other.
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    i18n = load_i18n(default_locale=settings.default_locale)

    dispatcher.update.outer_middleware(
        UpdateTransaction(session_factory, serialize=settings.is_sqlite)
    )
    dispatcher.update.outer_middleware(ViewerMiddleware())
    dispatcher.update.outer_middleware(ViewerLocaleMiddleware(i18n))
    dispatcher.include_routers(*get_routers())
    dispatcher["settings"] = settings
    dispatcher["session_factory"] = session_factory
    dispatcher["i18n_core"] = i18n
    clock = clock or Clock(settings.timezone)
    dispatcher["clock"] = clock
    return App(settings, engine, session_factory, bot, dispatcher, i18n, clock)
