"""The SQL FSM storage: dialogue state survives a new storage object (a restart)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from storage.fsm import SqlStorage, dialogue_states


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
