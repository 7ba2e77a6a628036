"""Button presses go straight to the routers that know the button.

aiogram offers an update to each router in turn until one handles it; for a button press
that means walking, and filtering in, every feature router before the one whose button it is,
on every tap. Nearly all buttons carry `CallbackData` (`prefix:fields`), so which routers can
take a press is known from its prefix. `PrefixRouter` offers a press only to those, in their
original order, plus every router that cannot be told from its handlers (one with a handler
for any press, or outer middlewares of its own for presses): the same router handles it as
before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED
from aiogram.dispatcher.event.telegram import TelegramEventObserver
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, TelegramObject

_PRESS = "callback_query"


class PrefixRouter(Router):
    """A router whose sub-routers get only the button presses they have a handler for."""

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        # Built at the first press: sub-routers are all included by then, and fixed.
        self._by_prefix: dict[str, tuple[Router, ...]] | None = None
        self._for_any: tuple[Router, ...] = ()

    def routers_for(self, data: str | None) -> Sequence[Router]:
        if self._by_prefix is None:
            self._build_index()
        assert self._by_prefix is not None
        prefix = (data or "").split(":", 1)[0]
        return self._by_prefix.get(prefix, self._for_any)

    def _build_index(self) -> None:
        prefixes = {router: press_prefixes(router) for router in self.sub_routers}
        known = {prefix for found in prefixes.values() if found for prefix in found}
        self._by_prefix = {
            prefix: tuple(
                router
                for router in self.sub_routers
                if prefixes[router] is None or prefix in (prefixes[router] or ())
            )
            for prefix in known
        }
        self._for_any = tuple(router for router in self.sub_routers if prefixes[router] is None)

    async def _propagate_event(
        self,
        observer: TelegramEventObserver | None,
        update_type: str,
        event: TelegramObject,
        **kwargs: Any,
    ) -> Any:
        if update_type != _PRESS or not isinstance(event, CallbackQuery):
            return await super()._propagate_event(observer, update_type, event, **kwargs)
        # aiogram's Router._propagate_event, over the routers that know this press.
        response = UNHANDLED
        if observer:
            passed, data = await observer.check_root_filters(event, **kwargs)
            if not passed:
                return UNHANDLED
            kwargs.update(data)
            response = await observer.trigger(event, **kwargs)
            if response is REJECTED:
                return UNHANDLED
            if response is not UNHANDLED:
                return response
        for router in self.routers_for(event.data):
            response = await router.propagate_event(update_type=update_type, event=event, **kwargs)
            if response is not UNHANDLED:
                break
        return response


def press_prefixes(router: Router) -> frozenset[str] | None:
    """The callback-data prefixes a router (with its sub-routers) can handle; None when that
    cannot be told: a press handler without CallbackData, or outer middlewares for presses
    (they run for every press offered to the router, handled or not)."""
    observer = router.observers[_PRESS]
    if len(observer.outer_middleware):
        return None
    found: set[str] = set()
    for handler in observer.handlers:
        own = [
            check.callback.callback_data.__prefix__
            for check in handler.filters or ()
            if isinstance(check.callback, CallbackQueryFilter)
        ]
        if not own:
            return None
        found.update(own)
    for sub_router in router.sub_routers:
        nested = press_prefixes(sub_router)
        if nested is None:
            return None
        found |= nested
    return frozenset(found)
