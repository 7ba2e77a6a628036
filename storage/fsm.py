"""aiogram FSM storage in the bot's own database, so dialogues survive a restart.

aiogram reads the state from storage on every event, so several processes sharing one
database see the same dialogue state. Inside an update the update's own session is used
(see storage.session_scope); outside one, a short transaction of its own.
"""

from __future__ import annotations

import copy
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
from sqlalchemy.orm.attributes import flag_modified

from storage.models import FsmRecord
from storage.session_scope import current_session

# Where a session keeps the dialogue rows it has read (see SqlStorage._record).
_CACHE = "fsm_records"


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
        """The key's row, read at most once per session.

        aiogram asks for the state and the data several times per update. SQLAlchemy's
        identity map holds rows only weakly, so without this cache every ask was a SELECT
        (six per tap in the load bench); a missing row is remembered as None too.
        """
        built = self._key_builder.build(key)
        cache: dict[str, FsmRecord | None] = session.info.setdefault(_CACHE, {})
        if built not in cache:
            cache[built] = await session.get(FsmRecord, built)
        return cache[built]

    def _remember(self, session: AsyncSession, key: StorageKey, record: FsmRecord | None) -> None:
        session.info.setdefault(_CACHE, {})[self._key_builder.build(key)] = record

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._session() as session:
            record = await self._record(session, key)
            if record is None:
                if value is None:
                    return
                record = FsmRecord(key=self._key_builder.build(key), state=value, data={})
                session.add(record)
                self._remember(session, key, record)
            else:
                record.state = value
            self._forget_if_empty(session, key, record)

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
                record = FsmRecord(
                    key=self._key_builder.build(key), state=None, data=copy.deepcopy(dict(data))
                )
                session.add(record)
                self._remember(session, key, record)
            else:
                # A deep copy, marked changed: a dialogue that appended to a list it read must
                # not have changed the row's loaded value too (SQLAlchemy would then see no
                # difference and write nothing).
                record.data = copy.deepcopy(dict(data))
                flag_modified(record, "data")
            self._forget_if_empty(session, key, record)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session() as session:
            record = await self._record(session, key)
            return copy.deepcopy(record.data) if record else {}

    def _forget_if_empty(self, session: AsyncSession, key: StorageKey, record: FsmRecord) -> None:
        """A finished dialogue leaves no row behind: least data.

        Nothing is flushed here: the state and the data of one step reach the database as one
        statement when the update's transaction commits.
        """
        if record.state is not None or record.data:
            return
        if record in session.new:
            session.expunge(record)
        else:
            session.sync_session.delete(record)
        self._remember(session, key, None)

    async def close(self) -> None:
        """The engine belongs to the app; nothing to close here."""


async def dialogue_states(session: AsyncSession) -> list[FsmRecord]:
    return list((await session.scalars(select(FsmRecord))).all())
