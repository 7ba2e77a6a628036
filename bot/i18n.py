"""Translations: gettext catalogs under locales/, compiled in memory from the .po files.

The .po files are the single source of truth in git; compiling them at start-up (a few ms)
means no stale .mo file can ever be used. `_` marks and translates a string now; `__` is the
lazy form for filters (reply-keyboard buttons are matched in the user's own language).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware, get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.settings import ALL_LOCALES, PARENT_LOCALES, PROJECT_ROOT
from storage.accounts import Viewer
from storage.models import Role

LOCALES_DIR = PROJECT_ROOT / "locales"
DOMAIN = "messages"

__all__ = [
    "DOMAIN",
    "LOCALES_DIR",
    "ViewerLocaleMiddleware",
    "_",
    "__",
    "current_locale",
    "load_i18n",
    "ngettext",
    "use_locale",
]


def load_i18n(*, path: Path = LOCALES_DIR, default_locale: str = "nl") -> I18n:
    """Compile the .po files and load them into aiogram's I18n.

    aiogram's I18n reads .mo files from a folder and must not be subclassed (its "current
    instance" lookup is per class), so the catalogs are compiled into a cache folder named by
    the hash of the .po files: a changed catalog gets a fresh folder, an unchanged one is reused.
    """
    po_files = sorted(path.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    digest = hashlib.sha256()
    for po_path in po_files:
        digest.update(po_path.parent.parent.name.encode())
        digest.update(po_path.read_bytes())
    digest.update(b"partial-v1")  # how partial catalogs are compiled (below)
    compiled = Path(tempfile.gettempdir()) / f"portfolio-bot-locales-{digest.hexdigest()[:16]}"
    for po_path in po_files:
        locale = po_path.parent.parent.name
        mo_path = compiled / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if mo_path.exists():
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=locale)
        if locale in PARENT_LOCALES:
            # A parents' language is complete only for what parents see. An entry without
            # every form is left out, so gettext falls back to English (below) and never
            # shows the Dutch source text.
            for message in list(catalog):
                forms = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.id and not all(forms):
                    catalog.delete(message.id, context=message.context)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a second process starting at the same
        # moment never reads half a file.
        partial = mo_path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(buffer.getvalue())
        partial.replace(mo_path)
    i18n = I18n(path=compiled, default_locale=default_locale, domain=DOMAIN)
    english = i18n.locales.get("en")
    for locale, translation in i18n.locales.items():
        if locale in PARENT_LOCALES and english is not None:
            translation.add_fallback(english)
    return i18n


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
    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return pick_locale(
            data.get("viewer"),
            data.get("event_from_user"),
            set(self.i18n.available_locales) & set(ALL_LOCALES),
            self.i18n.default_locale,
        )


def current_locale() -> str:
    return get_i18n().current_locale


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Speak another language for a moment: after /taal, or to someone other than the sender."""
    with get_i18n().use_locale(locale):
        yield
