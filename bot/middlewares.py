"""Outer middlewares: one database transaction per update, de-duplication, and the viewer.

Order (registered in bot.app): aiogram's own (errors, user context, FSM) -> UpdateTransaction
-> ViewerMiddleware -> locale. Handlers get `session` and `viewer` as arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.accounts import load_viewer
from storage.session_scope import current_session
from storage.updates import claim_update

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateTransaction(BaseMiddleware):
    """Opens the update's session, skips updates already handled, commits once at the end.

    SQLite allows one writer at a time; handling its updates one by one in this process avoids
    "database is locked" errors under load at the cost of concurrency, which a single school
    does not need. PostgreSQL updates run concurrently.
    """

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, serialize: bool
    ) -> None:
        self._session_factory = session_factory
        self._lock = asyncio.Lock() if serialize else None

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        guard: AbstractAsyncContextManager[Any] = self._lock or nullcontext()
        async with guard, self._session_factory() as session:
            token = current_session.set(session)
            try:
                bot_id = data["bot"].id
                try:
                    if not await claim_update(session, bot_id=bot_id, update_id=event.update_id):
                        log.info("update %s was handled before; skipped", event.update_id)
                        return UNHANDLED
                except IntegrityError:
                    # Another replica is handling (or just handled) this very update.
                    await session.rollback()
                    return UNHANDLED
                data["session"] = session
                result = await handler(event, data)
                await session.commit()
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)


class ViewerMiddleware(BaseMiddleware):
    """Loads who is talking: the account, its persons and the active one."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession | None = data.get("session")
        if user is not None and session is not None and not user.is_bot:
            data["viewer"] = await load_viewer(session, telegram_user_id=user.id)
        else:
            data["viewer"] = None
        return await handler(event, data)
