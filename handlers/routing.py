"""Button presses skip the routers that cannot take them; chat types checked in place.

aiogram offers an update to each router in turn until one handles it; for a button press
that means walking, and filtering in, every feature router before the one whose button it is,
on every tap. Nearly all buttons carry `CallbackData` (`prefix:fields`), so which routers can
take a press is known from its prefix. `route_presses_by_prefix` gives each router whose
press handlers all carry CallbackData an ordinary router filter on its presses: the press's
prefix must be one of theirs. A router with a handler for any press (or with one below it)
gets none, and keeps its place in the order: the walk reaches the same handler as before,
it just passes the other routers after one cheap check each.

Router filters (`observer.filter(...)`) should be coroutines or aiogram `Filter`s: aiogram
runs a plain function, a magic filter (`F....`) included, on a worker thread, a thread hop
for every update the router sees. `ChatTypeIs` is the chat type check done in place.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiogram import Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, Message, TelegramObject

PRESS = "callback_query"


def press_prefixes(router: Router) -> dict[str, frozenset[str]] | None:
    """The CallbackData prefixes (by separator) that a router, with its sub-routers, has
    press handlers for; None when that cannot be told (a press handler without CallbackData)."""
    found: dict[str, set[str]] = {}
    for handler in router.observers[PRESS].handlers:
        own = [
            check.callback.callback_data
            for check in handler.filters or ()
            if isinstance(check.callback, CallbackQueryFilter)
        ]
        if not own:
            return None
        for callback_data in own:
            found.setdefault(callback_data.__separator__, set()).add(callback_data.__prefix__)
    for sub_router in router.sub_routers:
        nested = press_prefixes(sub_router)
        if nested is None:
            return None
        for separator, prefixes in nested.items():
            found.setdefault(separator, set()).update(prefixes)
    return {separator: frozenset(prefixes) for separator, prefixes in found.items()}


class PrefixIn(Filter):
    """A press whose callback data starts with one of these prefixes (by separator)."""

    def __init__(self, prefixes: Mapping[str, frozenset[str]]) -> None:
        self.prefixes = tuple(prefixes.items())

    async def __call__(self, query: CallbackQuery) -> bool:
        data = query.data
        if not data:
            return False
        return any(data.split(separator, 1)[0] in known for separator, known in self.prefixes)

    def __str__(self) -> str:
        return f"PrefixIn({dict(self.prefixes)!r})"


def route_presses_by_prefix(router: Router) -> None:
    """Give each sub-router (at the highest level where it can be told) a filter that lets
    through only the presses it has CallbackData for. Call it once all routers are included:
    a handler added later is not seen."""
    for sub_router in router.sub_routers:
        prefixes = press_prefixes(sub_router)
        if prefixes is None:
            # A handler for any press in here: look deeper, order untouched.
            route_presses_by_prefix(sub_router)
        else:
            sub_router.observers[PRESS].filter(PrefixIn(prefixes))


class ChatTypeIs(Filter):
    """The chat an update happened in is of one of these types (for a press: the chat of its
    message)."""

    def __init__(self, *chat_types: str) -> None:
        self.chat_types = frozenset(chat_types)

    async def __call__(self, event: TelegramObject) -> bool:
        if isinstance(event, Message):
            return event.chat.type in self.chat_types
        if isinstance(event, CallbackQuery) and event.message is not None:
            return event.message.chat.type in self.chat_types
        return False

    def __str__(self) -> str:
        return f"ChatTypeIs({', '.join(sorted(self.chat_types))})"
