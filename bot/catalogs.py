"""Keeping the gettext catalogs in step with the code.

`portfolio-bot i18n update` extracts every `_()`/`__()` string into locales/messages.pot and
merges it into each language's .po (Dutch is the source language: its entries are filled with
the source text). `check` is what the tests run: the catalogs hold exactly the strings of the
code, every language is complete, and placeholders match.

nl and en are complete for everything. The parents' languages (tr, ar, pl, uk) must be
complete for what a parent sees: every string of a parent module (`PARENT_MODULES`) and every
string marked with a `# parents` comment on the line before it in shared code (help, /taal,
onboarding). Their other entries may stay empty; the bot then speaks English there.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR
from bot.settings import PARENT_LOCALES, PROJECT_ROOT

SOURCE_DIRS = ("bot", "handlers", "conversations", "scheduler", "storage")
SOURCE_LOCALE = "nl"
KEYWORDS = {"_": None, "__": None, "ngettext": (1, 2), "lazy_gettext": None}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
PARENT_TAG = "parents"
# Modules a parent sees as a whole; in other modules, mark single strings with `# parents`.
PARENT_MODULES = frozenset(
    {
        "handlers/parents.py",
        "conversations/parent_summary.py",
        "conversations/parent_settings.py",
        "conversations/progress_picture.py",
    }
)


def extract() -> Catalog:
    catalog = Catalog(project="leerling-portfolio-bot", domain=DOMAIN, locale=SOURCE_LOCALE)
    for folder in SOURCE_DIRS:
        path = PROJECT_ROOT / folder
        if not path.exists():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            str(path),
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=(PARENT_TAG,),
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
    for locale in sorted({*locales(), SOURCE_LOCALE, "en", *PARENT_LOCALES}):
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(locale) if path.exists() else Catalog(locale=locale, domain=DOMAIN)
        # A copy each time: `update` adopts the template's message objects, and filling the
        # Dutch entries below must not fill those of the languages merged after it.
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
        catalog.project, catalog.version = "leerling-portfolio-bot", "1"
        catalog.fuzzy = False
        if locale == SOURCE_LOCALE:
            for message in catalog:
                if message.id:
                    # Dutch is the source: its text is the message itself (both plural forms).
                    message.string = message.id
        with path.open("wb") as file:
            write_po(file, catalog, sort_output=True, width=100, ignore_obsolete=True)


def is_for_parents(message: Message) -> bool:
    """A string a parent sees: from a parent module, or marked `# parents`."""
    in_module = any(location in PARENT_MODULES for location, _line in message.locations)
    marked = any(comment.strip().startswith(PARENT_TAG) for comment in message.auto_comments)
    return in_module or marked


def problems() -> list[str]:
    """Everything that makes a catalog wrong; empty when all is well."""
    found: list[str] = []
    template = extract()
    code_ids = {message.id for message in template if message.id}
    parent_ids = {message.id for message in template if message.id and is_for_parents(message)}
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
            if not any(forms) and locale in PARENT_LOCALES and message.id not in parent_ids:
                continue  # not seen by parents: English is used instead
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
