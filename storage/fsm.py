"""aiogram FSM storage in the bot's own database, so dialogues survive a restart.

aiogram reads the state from storage on every event, so several processes sharing one
database see the same dialogue state. Inside an update the update's own session is used
(see storage.session_scope); outside one, a short transaction of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import FsmRecord
from storage.session_scope import current_session


class SqlStorage(BaseStorage):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        shared = current_session.get()
        if shared is not None:
            yield shared
            return
        async with self._session_factory() as own, own.begin():
            yield own

    async def _record(self, session: AsyncSession, key: StorageKey) -> FsmRecord | None:
        return await session.get(FsmRecord, self._key_builder.build(key))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._session() as session:
            record = await self._record(session, key)
            if record is None:
                if value is None:
                    return
                session.add(FsmRecord(key=self._key_builder.build(key), state=value, data={}))
            else:
                record.state = value
            await self._forget_if_empty(session, key)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session() as session:
            record = await self._record(session, key)
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._session() as session:
            record = await self._record(session, key)
            if record is None:
                if not data:
                    return
                session.add(
                    FsmRecord(key=self._key_builder.build(key), state=None, data=dict(data))
                )
            else:
                # A new dict, so SQLAlchemy sees the JSON column changed.
                record.data = dict(data)
            await self._forget_if_empty(session, key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session() as session:
            record = await self._record(session, key)
            return dict(record.data) if record else {}

    async def _forget_if_empty(self, session: AsyncSession, key: StorageKey) -> None:
        """A finished dialogue leaves no row behind: least data."""
        await session.flush()
        record = await self._record(session, key)
        if record is not None and record.state is None and not record.data:
            await session.delete(record)
            await session.flush()

    async def close(self) -> None:
        """The engine belongs to the app; nothing to close here."""


async def dialogue_states(session: AsyncSession) -> list[FsmRecord]:
    return list((await session.scalars(select(FsmRecord))).all())
