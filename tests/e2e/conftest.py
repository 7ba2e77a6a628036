"""End-to-end harness: the real app (aiogram, middlewares, database) polling the sandbox.

`sandbox` and `telegram` (the control client for the bot's token) live in tests/conftest.py,
shared with the scheduler's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App, build_app
from config.settings import Settings
from sandbox import TelegramSandbox
from tests.conftest import TOKEN
from tests.factories import DemoSchool, build_school

SETTLE_SECONDS = 10.0


class RunningBot:
    """The bot as a process would run it; `restart` throws away everything held in memory.

    It counts the updates being handled, so a test can wait until the transaction of the
    update that sent a reply has committed (`settled`): the reply leaves before the commit.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: App | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _count_updates(self, app: App) -> None:
        handle = app.dispatcher.feed_update

        async def counted(bot: Any, update: Any, **kwargs: Any) -> Any:
            self._in_flight += 1
            self._idle.clear()
            try:
                return await handle(bot, update, **kwargs)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

        app.dispatcher.feed_update = counted  # type: ignore[method-assign]

    async def settled(self) -> None:
        await asyncio.wait_for(self._idle.wait(), SETTLE_SECONDS)

    async def start(self) -> None:
        self.app = build_app(self.settings, token=TOKEN)
        self._count_updates(self.app)
        # Batches as bot.runner.poll handles them (bot.polling.BatchPoller).
        self._task = asyncio.create_task(self.app.poller.run(self.app.bot, polling_timeout=1))

    async def stop(self) -> None:
        assert self.app is not None and self._task is not None
        await self.app.stop_polling()  # as a SIGTERM does: the update in hand commits first
        await self._task
        await self.app.close()
        self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


# The tests' users are scripts and tap through a dialogue far faster than a person: the flood
# guard (bot.middlewares.FloodGuard) would silence them. tests/e2e/test_flood.py runs it as
# configured by default.
SCRIPTED_USERS_FLOOD_UPDATES = 10_000


@pytest.fixture
def settings(db_url: str, sandbox: TelegramSandbox, tmp_path) -> Settings:
    return Settings(
        bot_token=None,
        database_url=db_url,
        telegram_api_url=sandbox.base_url,
        media_dir=tmp_path / "media",
        flood_updates=SCRIPTED_USERS_FLOOD_UPDATES,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def running_bot(settings: Settings) -> AsyncIterator[RunningBot]:
    bot = RunningBot(settings)
    await bot.start()
    yield bot
    if bot.app is not None:
        await bot.stop()


@pytest.fixture
async def school(session_factory) -> DemoSchool:
    return await build_school(session_factory)


class _SettledSession:
    def __init__(self, factory: async_sessionmaker[AsyncSession], bot: RunningBot | None) -> None:
        self._factory = factory
        self._bot = bot
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        if self._bot is not None:
            await self._bot.settled()
        self._session = self._factory()
        return await self._session.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.__aexit__(*exc)  # type: ignore[arg-type]


@pytest.fixture
def session_factory(session_factory, request):
    """Sessions that first wait for the bot to finish the updates in hand, so what a test
    reads is what the bot committed (the reply to an update is sent before its commit)."""
    bot = request.getfixturevalue("running_bot") if "running_bot" in request.fixturenames else None

    def open_session() -> _SettledSession:
        return _SettledSession(session_factory, bot)

    return open_session
