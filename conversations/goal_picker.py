"""Finding a goal among all of the school's: goal set -> learning line -> the line's goals.

A pupil looks for a goal this way in `/doelen` (a harder one, or in a group where pupils choose
their own), and a teacher after a talk, for the pupil's new goals. The dialogues differ in what
a tap on a goal does; the way to the goals is the same, with each dialogue's own buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, shorten
from conversations.card import checked
from language.i18n import _
from storage.accounts import PersonRef
from storage.goals import GoalChoice, goal_sets_of, lines_of

Rows = list[list[InlineKeyboardButton]]


class OpensSet(Protocol):
    """A goal set's button: the set to open."""

    set_id: int


@dataclass(frozen=True)
class GoalPicker:
    """One dialogue's buttons on the way to a goal."""

    open_set: Callable[[int], CallbackData]  # a goal set's id -> its learning lines
    open_line: Callable[[int], CallbackData]  # a learning line's id -> its goals
    all_sets: CallbackData  # ⬅️ back to the goal sets
    # What the card shows above the question (the goals picked so far), from the data.
    above: Callable[[dict[str, Any]], str] | None = None

    async def sets(self, session: AsyncSession, *, school_id: int) -> Rows:
        """A row per goal set of the school."""
        goal_sets = await goal_sets_of(session, school_id=school_id)
        return [
            [button(shorten(goal_set.name), self.open_set(goal_set.id))] for goal_set in goal_sets
        ]

    async def set_opened(
        self,
        query: CallbackQuery,
        callback_data: OpensSet,
        state: FSMContext,
        session: AsyncSession,
        person: PersonRef,
    ) -> None:
        """The learning lines of one goal set (of the school: any other id is refused)."""
        lines = await checked(
            query,
            await lines_of(session, school_id=person.school_id, goal_set_id=callback_data.set_id)
            or None,
        )
        if lines is None:
            return
        rows = [[button(shorten(line.name), self.open_line(line.id))] for line in lines]
        rows.append([button(_("⬅️ Terug"), self.all_sets)])
        text = _("Kies een leerlijn:")
        if self.above is not None:
            text = self.above(await state.get_data()) + "\n\n" + text
        await edit_card(query, text, InlineKeyboardMarkup(inline_keyboard=rows))

    def back_to_set(self, choices: Sequence[GoalChoice]) -> list[InlineKeyboardButton]:
        """⬅️ back from a line's goals to the lines of its set."""
        return [button(_("⬅️ Terug"), self.open_set(choices[0].goal.goal_set_id))]
