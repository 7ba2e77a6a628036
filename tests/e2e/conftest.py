"""End-to-end harness: the real app (aiogram, middlewares, database) polling the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import App, build_app
from bot.settings import Settings
from sandbox import SandboxClient, TelegramSandbox
from tests.factories import DemoSchool, build_school

TOKEN = "4242:e2e-test-token-not-a-secret"


class RunningBot:
    """The bot as a process would run it; `restart` throws away everything held in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: App | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.app = build_app(self.settings, token=TOKEN)
        self._task = asyncio.create_task(
            self.app.dispatcher.start_polling(
                self.app.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
            )
        )

    async def stop(self) -> None:
        assert self.app is not None and self._task is not None
        await self.app.dispatcher.stop_polling()
        await self._task
        await self.app.close()
        self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    sandbox = TelegramSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def settings(db_url: str, sandbox: TelegramSandbox, tmp_path) -> Settings:
    return Settings(
        bot_token=None,
        database_url=db_url,
        telegram_api_url=sandbox.base_url,
        media_dir=tmp_path / "media",
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
async def telegram(sandbox: TelegramSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url, TOKEN) as client:
        yield client


@pytest.fixture
async def school(session_factory) -> DemoSchool:
    return await build_school(session_factory)
