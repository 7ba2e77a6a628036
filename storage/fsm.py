"""aiogram FSM storage in the bot's own database, so dialogues survive a restart.

aiogram reads the state from storage on every event, so several processes sharing one
database see the same dialogue state. Inside an update the update's own session is used
(see storage.session_scope); outside one, a short transaction of its own.

Every update reads its dialogue and most write it, so this is the hottest SQL of the bot: the
row is read at most once per session, as two plain columns, and whatever the dialogue changed
reaches the database as one statement (an upsert, or a DELETE when the dialogue ended) when
whoever owns the transaction calls `write_changed_dialogues` just before committing it
(`storage.updates.commit_update` for an update), in the same transaction as the step's own
data. A step that changes nothing writes nothing. What a session read and changed is kept in
the session (`session.info`) and goes with it: a rolled-back step's session is closed, not
used again, so its unwritten changes are dropped with it.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import Row, Table, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from storage.models import FsmRecord
from storage.session_scope import current_session
from storage.types import utcnow

# Where a session keeps the dialogues it has read, and the keys of those it changed.
_CACHE = "fsm_dialogues"
_CHANGED = "fsm_changed"


@dataclass
class _Dialogue:
    state: str | None
    data: dict[str, Any]
    stored: bool  # a row exists (as far as this session knows)


class SqlStorage(BaseStorage):
    """aiogram's storage interface on the dialogue table. Its helpers are module functions,
    not methods: a private method of ours on aiogram's class could clash with one of
    aiogram's own in a later release."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    def row_key(self, key: StorageKey) -> str:
        """The dialogue's key in the table (see `remember_read`)."""
        return self._key_builder.build(key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        built = self.row_key(key)
        async with _session(self._session_factory) as session:
            dialogue = await _dialogue(session, built)
            if dialogue.state != value:
                dialogue.state = value
                session.info.setdefault(_CHANGED, set()).add(built)

    async def get_state(self, key: StorageKey) -> str | None:
        async with _session(self._session_factory) as session:
            return (await _dialogue(session, self.row_key(key))).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self.row_key(key)
        async with _session(self._session_factory) as session:
            dialogue = await _dialogue(session, built)
            # A copy: a dialogue that goes on changing (or appending to a list in) what it
            # passed here must not change what is written.
            copied = _copy(dict(data))
            if dialogue.data != copied:
                dialogue.data = copied
                session.info.setdefault(_CHANGED, set()).add(built)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with _session(self._session_factory) as session:
            return _copy((await _dialogue(session, self.row_key(key))).data)

    async def close(self) -> None:
        """The engine belongs to the app; nothing to close here."""


@asynccontextmanager
async def _session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The update's session, or outside an update a short transaction of its own."""
    shared = current_session.get()
    if shared is not None:
        yield shared
        return
    async with session_factory() as own, own.begin():
        yield own
        await write_changed_dialogues(own)


async def _dialogue(session: AsyncSession, key: str) -> _Dialogue:
    """The key's dialogue, read at most once per session (aiogram asks for the state and the
    data several times per update); a missing row is remembered too."""
    cache: dict[str, _Dialogue] = session.info.setdefault(_CACHE, {})
    dialogue = cache.get(key)
    if dialogue is None:
        row = (await session.execute(READ, {"key": key})).first()
        remember_read(session, key, row)
        dialogue = cache[key]
    return dialogue


def remember_read(
    session: AsyncSession | Session, key: str, row: Row[*tuple[Any, ...]] | None
) -> None:
    """A dialogue row (or its absence) read by someone else in this session's transaction:
    `storage.updates.open_update` reads it in the same trip as the update's claim."""
    cache: dict[str, _Dialogue] = session.info.setdefault(_CACHE, {})
    cache[key] = (
        _Dialogue(row.state, row.data or {}, stored=True)
        if row is not None
        else _Dialogue(None, {}, stored=False)
    )


def _copy(value: Any) -> Any:
    """copy.deepcopy, quicker for what dialogue data is made of (JSON: dicts, lists and
    plain values), which it copies itself."""
    if value is None or isinstance(value, str | int | float):
        return value
    if type(value) is dict:
        return {name: _copy(item) for name, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


_TABLE: Table = FsmRecord.__table__  # type: ignore[assignment]
# Built once, as Core statements on the table: no ORM object to load, track and flush.
READ = select(_TABLE.c.state, _TABLE.c.data).where(_TABLE.c.key == bindparam("key"))
_FORGET = delete(_TABLE).where(_TABLE.c.key == bindparam("key"))


def _upsert(insert: Any) -> Any:
    statement = insert(_TABLE)
    # An upsert, not an UPDATE: the row may have gone meanwhile in this very transaction (the
    # erasure of a pupil forgets the dialogues that mention them), and the new step must not
    # be lost for that.
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.key],
        set_={
            "state": statement.excluded.state,
            "data": statement.excluded.data,
            "updated_at": statement.excluded.updated_at,
        },
    )


_WRITE = {True: _upsert(pg_insert), False: _upsert(sqlite_insert)}


async def write_changed_dialogues(session: AsyncSession) -> None:
    """Whatever dialogues the session changed, written in its transaction: called by whoever
    commits it, just before the commit. A finished dialogue (no state, no data) leaves no row
    behind: least data."""
    changed: set[str] | None = session.info.pop(_CHANGED, None)
    if not changed:
        return
    cache: dict[str, _Dialogue] = session.info[_CACHE]
    # Core on the session's own connection (its transaction): the ORM's execute path has
    # nothing to add to a prebuilt statement on a table.
    connection = await session.connection()
    write = _WRITE[connection.dialect.name == "postgresql"]
    for key in sorted(changed):
        dialogue = cache[key]
        if dialogue.state is None and not dialogue.data:
            if dialogue.stored:
                await connection.execute(_FORGET, {"key": key})
                dialogue.stored = False
            continue
        await connection.execute(
            write,
            {"key": key, "state": dialogue.state, "data": dialogue.data, "updated_at": utcnow()},
        )
        dialogue.stored = True


async def dialogue_states(session: AsyncSession) -> list[FsmRecord]:
    return list((await session.scalars(select(FsmRecord))).all())
