"""Keeping the gettext catalogs in step with the code.

`portfolio-bot i18n update` extracts every `_()`/`__()` string into locales/messages.pot and
merges it into each language's .po (Dutch is the source language: its entries are filled with
the source text). `check` is what the tests run: the catalogs hold exactly the strings of the
code, every language is complete, and placeholders match.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR
from bot.settings import PROJECT_ROOT

SOURCE_DIRS = ("bot", "handlers", "conversations", "scheduler", "storage")
SOURCE_LOCALE = "nl"
KEYWORDS = {"_": None, "__": None, "ngettext": (1, 2), "lazy_gettext": None}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def extract() -> Catalog:
    catalog = Catalog(project="leerling-portfolio-bot", domain=DOMAIN, locale=SOURCE_LOCALE)
    for folder in SOURCE_DIRS:
        path = PROJECT_ROOT / folder
        if not path.exists():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            str(path), method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            catalog.add(
                message,
                locations=[(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str) -> Catalog:
    with po_path(locale).open("rb") as file:
        return read_po(file, locale=locale)


def locales() -> list[str]:
    return sorted(
        path.parent.parent.name for path in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )


def update() -> None:
    template = extract()
    with (LOCALES_DIR / f"{DOMAIN}.pot").open("wb") as file:
        write_po(file, template, omit_header=False, sort_output=True, width=100)
    for locale in sorted({*locales(), SOURCE_LOCALE, "en"}):
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(locale) if path.exists() else Catalog(locale=locale, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version = "leerling-portfolio-bot", "1"
        catalog.fuzzy = False
        if locale == SOURCE_LOCALE:
            for message in catalog:
                if message.id:
                    # Dutch is the source: its text is the message itself (both plural forms).
                    message.string = message.id
        with path.open("wb") as file:
            write_po(file, catalog, sort_output=True, width=100, ignore_obsolete=True)


def problems() -> list[str]:
    """Everything that makes a catalog wrong; empty when all is well."""
    found: list[str] = []
    code_ids = {message.id for message in extract() if message.id}
    for locale in locales():
        catalog = read_catalog(locale)
        ids = {message.id for message in catalog if message.id}
        found += [f"{locale}: missing {text!r}" for text in sorted(code_ids - ids, key=str)]
        found += [
            f"{locale}: not in code any more {text!r}" for text in sorted(ids - code_ids, key=str)
        ]
        for message in catalog:
            if not message.id:
                continue
            sources = tuple(message.id) if isinstance(message.id, tuple) else (str(message.id),)
            forms = tuple(
                str(form or "")
                for form in (
                    message.string if isinstance(message.string, tuple) else (message.string,)
                )
            )
            if not all(forms):
                found.append(f"{locale}: untranslated {message.id!r}")
            elif message.fuzzy:
                found.append(f"{locale}: fuzzy {message.id!r}")
            elif not _same_placeholders(sources, forms):
                found.append(f"{locale}: placeholders differ in {message.id!r}")
    return found


def _same_placeholders(sources: tuple[str, ...], forms: tuple[str, ...]) -> bool:
    """The translation uses the source's placeholders; a singular form may leave {count} out."""
    wanted = set(_PLACEHOLDER.findall(sources[-1]))
    used = [set(_PLACEHOLDER.findall(form)) for form in forms]
    return used[-1] == wanted and all(placeholders <= wanted for placeholders in used)
