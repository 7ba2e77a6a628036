"""Fixtures for the scheduler: a real aiogram Bot talking to the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from sandbox import TelegramSandbox
from tests.conftest import TOKEN


class PlainHttpSession(AiohttpSession):
    """aiogram's close() sleeps 250 ms for TLS shutdown; the sandbox speaks plain HTTP."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def sandbox_bot(base_url: str, token: str = TOKEN) -> Bot:
    return Bot(token, session=PlainHttpSession(api=TelegramAPIServer.from_base(base_url)))


@pytest.fixture
async def bot(sandbox: TelegramSandbox) -> AsyncIterator[Bot]:
    real_bot = sandbox_bot(sandbox.base_url)
    yield real_bot
    await real_bot.session.close()
