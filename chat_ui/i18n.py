"""The chat's language: which language a person is written to in, and "u" for parents.

The translations themselves (catalogs, `_`, `use_locale`) are in `language.i18n`, below every
layer that writes words; this module holds the aiogram middleware that picks the language of
the update's person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18nMiddleware

from config.settings import ALL_LOCALES, PARENT_LOCALES
from language.i18n import addresses_formally, formal_address
from storage.accounts import Viewer
from storage.models import Role


def viewer_is_addressed_formally(viewer: Viewer | None) -> bool:
    """Whoever the account's active person is decides: a teacher who is also a parent is
    written to with "u" only while acting as the parent."""
    person = viewer.person if viewer is not None else None
    return person is not None and addresses_formally(
        person.role, parent_address_formal=person.parent_address_formal
    )


def pick_locale(viewer: Viewer | None, user: User | None, available: set[str], default: str) -> str:
    """The person's own language, else the Telegram app's language if we have it, else nl.

    The parents' home languages are for parents (and newcomers, who may be parents): a pupil
    or teacher always gets a language the bot speaks completely."""
    person = viewer.person if viewer is not None else None
    if person is not None and person.role is not Role.PARENT:
        available = available - set(PARENT_LOCALES)
    if viewer is not None and viewer.locale in available:
        return str(viewer.locale)
    if user is not None and user.language_code:
        language = user.language_code.split("-")[0].lower()
        if language in available:
            return language
    return default


class ViewerLocaleMiddleware(I18nMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        viewer: Viewer | None = data.get("viewer")
        with formal_address(viewer_is_addressed_formally(viewer)):
            return await super().__call__(handler, event, data)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return pick_locale(
            data.get("viewer"),
            data.get("event_from_user"),
            set(self.i18n.available_locales) & set(ALL_LOCALES),
            self.i18n.default_locale,
        )
