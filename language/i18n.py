"""Translations: gettext catalogs under locales/, compiled in memory from the .po files.

The .po files are the single source of truth in git; compiling them at start-up (a few ms)
means no stale .mo file can ever be used. `_` marks and translates a string now; `__` is the
lazy form for filters (reply-keyboard buttons are matched in the user's own language).

Formal Dutch: a school may address its parents with "u" (`School.parent_address_formal`).
`locales/nl/LC_MESSAGES/formal.po` holds, per ordinary Dutch text that says "je", its formal
wording; the Dutch translator consults it while `formal_address(True)` is in force, which the
locale middleware (chat_ui.i18n) and the scheduler's dispatcher set for such a parent. So no
call of `_()` needs to know about it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from gettext import GNUTranslations
from pathlib import Path

from aiogram.utils.i18n import I18n, get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from config.settings import PARENT_LOCALES, PROJECT_ROOT
from storage.models import Role

LOCALES_DIR = PROJECT_ROOT / "locales"
DOMAIN = "messages"
# The formal ("u") wording of Dutch texts for parents; msgid is the ordinary Dutch text.
FORMAL_DOMAIN = "formal"
FORMAL_LOCALE = "nl"

# Whether the person now being written to is a parent whose school says "u".
_formal_address: ContextVar[bool] = ContextVar("formal_address", default=False)

__all__ = [
    "DOMAIN",
    "FORMAL_DOMAIN",
    "LOCALES_DIR",
    "_",
    "__",
    "addresses_formally",
    "current_locale",
    "formal_address",
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
    formal_po = path / FORMAL_LOCALE / "LC_MESSAGES" / f"{FORMAL_DOMAIN}.po"
    ordinary = i18n.locales.get(FORMAL_LOCALE)
    if ordinary is not None and formal_po.exists():
        i18n.locales[FORMAL_LOCALE] = FormalDutch(formal_po, ordinary)
    return i18n


class FormalDutch(GNUTranslations):
    """The Dutch translator, which gives a text's formal wording while `formal_address` is on.

    Compiled in memory from formal.po; an entry without every form is left out, so the
    ordinary text is shown rather than an empty one. An entry equal to its msgid marks a text
    that was checked and stays as it is (for instance a question the parent asks the child)."""

    def __init__(self, po_path: Path, ordinary: GNUTranslations) -> None:
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=FORMAL_LOCALE)
        for message in list(catalog):
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.id and not all(forms):
                catalog.delete(message.id, context=message.context)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        super().__init__(buffer)
        self.ordinary = ordinary

    def gettext(self, message: str) -> str:
        if _formal_address.get():
            formal = super().gettext(message)
            if formal != message:
                return formal
        return self.ordinary.gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        if _formal_address.get():
            formal = super().ngettext(msgid1, msgid2, n)
            if formal not in (msgid1, msgid2):
                return formal
        return self.ordinary.ngettext(msgid1, msgid2, n)


def addresses_formally(role: Role | None, *, parent_address_formal: bool) -> bool:
    """Only a parent is ever written to with "u", and only when the school asks for it."""
    return role is Role.PARENT and parent_address_formal


@contextmanager
def formal_address(formal: bool) -> Iterator[None]:
    """Write to the person with "u" (in Dutch) for a while, or explicitly not."""
    token = _formal_address.set(formal)
    try:
        yield
    finally:
        _formal_address.reset(token)


def current_locale() -> str:
    return get_i18n().current_locale


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Speak another language for a moment: after /taal, or to someone other than the sender."""
    with get_i18n().use_locale(locale):
        yield
