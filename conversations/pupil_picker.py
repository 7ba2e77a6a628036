"""Pupils as buttons, two a row, a page at a time: how every dialogue asks "which pupil?"
(a teacher's note, a talk to plan). A typed part of a name narrows the buttons to the pupils
it fits; "Alle leerlingen" shows everyone again."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup

from chat_ui.keyboards import button, in_rows
from conversations.card import arrows, paged
from language.i18n import _

PUPILS_PER_PAGE = 8


def pupil_keyboard(
    shown: list[dict[str, Any]],
    *,
    page: int,
    pick: Callable[[int], CallbackData],
    turn: Callable[[int], CallbackData],
    picked: Collection[int] = (),
    filtered: bool = False,
    done: CallbackData | None = None,
) -> InlineKeyboardMarkup:
    """The pupils `shown` (each `{"id", "name"}`), ✅ before those `picked`; `pick` and `turn`
    make the dialogue's own callback data for a pupil and a page, `done` its "Verder"."""
    one_page = paged(shown, page, PUPILS_PER_PAGE)
    rows = in_rows(
        [
            button(("✅ " if pupil["id"] in picked else "") + pupil["name"], pick(pupil["id"]))
            for pupil in one_page.shown
        ],
        2,
    )
    nav = arrows(one_page, turn)
    if filtered:
        nav.append(button(_("Alle leerlingen"), turn(0)))
    if nav:
        rows.append(nav)
    if done is not None:
        rows.append([button(_("Verder ➡️"), done)])
    return InlineKeyboardMarkup(inline_keyboard=rows)
