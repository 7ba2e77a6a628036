"""Filters shared by the routers."""

from __future__ import annotations

from typing import Any

from aiogram.filters import BaseFilter
from aiogram.types import TelegramObject

from storage.accounts import Viewer
from storage.models import Role


class HasRole(BaseFilter):
    """The active person has one of these roles (a menu button of another role does nothing)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    async def __call__(self, event: TelegramObject, viewer: Viewer | None = None, **_: Any) -> bool:
        return viewer is not None and viewer.person is not None and viewer.person.role in self.roles
