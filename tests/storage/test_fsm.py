"""The SQL FSM storage: dialogue state survives a new storage object (a restart)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event

from storage.fsm import SqlStorage, dialogue_states
from storage.session_scope import current_session
from storage.updates import commit_update


class Dialogue(StatesGroup):
    step = State()


KEY = StorageKey(bot_id=1, chat_id=10, user_id=10)


async def test_state_and_data_survive_a_new_storage(session_factory):
    first = SqlStorage(session_factory)
    await first.set_state(KEY, Dialogue.step)
    await first.update_data(KEY, {"goal_ids": [3, 4]})

    second = SqlStorage(session_factory)
    assert await second.get_state(KEY) == "Dialogue:step"
    assert await second.get_data(KEY) == {"goal_ids": [3, 4]}
    assert await second.get_state(StorageKey(bot_id=1, chat_id=11, user_id=11)) is None


async def test_a_finished_dialogue_leaves_no_row(session_factory):
    storage = SqlStorage(session_factory)
    await storage.set_state(KEY, Dialogue.step)
    await storage.set_data(KEY, {"x": 1})
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    async with session_factory() as session:
        assert await dialogue_states(session) == []


async def test_one_update_reads_the_row_once_and_a_changed_list_is_written(session_factory):
    """Inside an update (a shared session) the row is read once, however often aiogram asks,
    and appending to a list read from the data still reaches the database."""
    storage = SqlStorage(session_factory)
    await storage.set_data(KEY, {"picked": [1]})
    selects: list[str] = []
    async with session_factory() as session:
        engine = session.get_bind()

        def count(_conn, _cursor, statement, *_args) -> None:
            if statement.startswith("SELECT") and "fsm_state" in statement:
                selects.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        token = current_session.set(session)
        try:
            data = await storage.get_data(KEY)
            data["picked"].append(2)  # in place, as dialogues do
            await storage.set_data(KEY, data)
            await storage.set_state(KEY, Dialogue.step)
            assert await storage.get_state(KEY) == "Dialogue:step"
            await storage.get_data(KEY)
            await commit_update(session)
        finally:
            current_session.reset(token)
            event.remove(engine, "before_cursor_execute", count)
    assert len(selects) == 1
    assert await SqlStorage(session_factory).get_data(KEY) == {"picked": [1, 2]}


async def test_an_update_writes_its_dialogue_only_when_it_changed_and_commits(session_factory):
    """The update's end writes the changed dialogue in its own transaction; a step that changed
    nothing writes nothing, and a step rolled back leaves the dialogue as it was."""
    storage = SqlStorage(session_factory)
    await storage.set_state(KEY, Dialogue.step)
    writes: list[str] = []
    async with session_factory() as session:
        engine = session.get_bind()

        def count(_conn, _cursor, statement, *_args) -> None:
            if "fsm_state" in statement and not statement.startswith("SELECT"):
                writes.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        token = current_session.set(session)
        try:
            await storage.set_state(KEY, Dialogue.step)  # the same state: no change
            await storage.set_data(KEY, {})
            await commit_update(session)
            assert writes == []

            await storage.set_data(KEY, {"x": 1})
            await session.rollback()  # the step failed: nothing of it is written
        finally:
            current_session.reset(token)
            event.remove(engine, "before_cursor_execute", count)
    assert writes == []
    assert await SqlStorage(session_factory).get_data(KEY) == {}

    async with session_factory() as session:
        token = current_session.set(session)
        try:
            await storage.set_data(KEY, {"x": 2})
            await commit_update(session)
        finally:
            current_session.reset(token)
    fresh = SqlStorage(session_factory)
    assert await fresh.get_state(KEY) == "Dialogue:step"
    assert await fresh.get_data(KEY) == {"x": 2}
