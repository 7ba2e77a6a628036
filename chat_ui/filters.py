"""Filters shared by the routers."""

from __future__ import annotations

from typing import Any

from aiogram.filters import BaseFilter
from aiogram.types import TelegramObject

from storage.accounts import PersonRef, Viewer
from storage.models import Role


class HasRole(BaseFilter):
    """The active person has one of these roles (a menu button of another role does nothing).

    When it passes, the handler receives that person as `person`: aiogram merges a filter's
    dict into the handler's keyword arguments, so a handler behind this filter takes
    `person: PersonRef` and never has to narrow `viewer.person` itself.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    async def __call__(
        self, event: TelegramObject, viewer: Viewer | None = None, **_: Any
    ) -> bool | dict[str, PersonRef]:
        if viewer is None or viewer.person is None or viewer.person.role not in self.roles:
            return False
        return {"person": viewer.person}
