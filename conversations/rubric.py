"""A goal's rubric on a card: each level with what it looks like, and a button per level.

A pupil reads it to say where they stand (`/mijndoelen`, "📍 Waar sta ik?"), a teacher to give
a level (`/niveau`): the same levels, the same words, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup

from chat_ui.keyboards import button
from chat_ui.texts import bold, fill
from language.i18n import _
from storage.goals import LevelView


def default_level_names() -> tuple[str, ...]:
    """The scale of a goal set without a rubric of its own."""
    return (_("beginner"), _("in ontwikkeling"), _("gevorderd"), _("expert"))


def level_title(level: LevelView) -> str:
    """The rubric's own name for the level, else the default scale's in the reader's language."""
    if level.name:
        return level.name
    defaults = default_level_names()
    return defaults[level.position - 1] if 0 < level.position <= len(defaults) else "–"


def rubric_card(
    intro: Sequence[str], levels: Sequence[LevelView], pick: Callable[[int], CallbackData]
) -> tuple[str, InlineKeyboardMarkup]:
    """`intro`, then each level in bold with its descriptor; a button per level (🟢 as many
    as its position), whose data `pick` makes from the position."""
    lines = list(intro)
    for level in levels:
        line = bold(level_title(level))
        if level.descriptor:
            line += fill(": {text}", text=level.descriptor)
        lines.append(line)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [button(f"{'🟢' * level.position} {level_title(level)}", pick(level.position))]
            for level in levels
        ]
    )
    return "\n".join(lines), keyboard
