"""Keeping the gettext catalogs in step with the code.

`portfolio-bot i18n update` extracts every `_()`/`__()` string into locales/messages.pot and
merges it into each language's .po (Dutch is the source language: its entries are filled with
the source text). `check` is what the tests run: the catalogs hold exactly the strings of the
code, every language is complete, and placeholders match.

nl and en are complete for everything. The parents' languages (tr, ar, pl, uk) must be
complete for what a parent sees: every string of a parent module (`PARENT_MODULES`) and every
string marked with a `# parents` comment on the line before it in shared code (help, /taal,
onboarding). Their other entries may stay empty; the bot then speaks English there.

Formal Dutch (`locales/nl/LC_MESSAGES/formal.po`, for schools that say "u" to parents) is
written by hand: every parent string that says "je", "jij", "jou", "jouw" or "jullie" needs an
entry there (msgid the ordinary text, msgstr the formal one; an msgstr equal to the msgid
means "checked, stays as it is", e.g. a question the parent asks the child). `update` drops
entries whose text left the code and adds empty ones for new texts; it never fills them in.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from config.settings import PARENT_LOCALES, PROJECT_ROOT
from language.i18n import DOMAIN, FORMAL_DOMAIN, FORMAL_LOCALE, LOCALES_DIR

SOURCE_DIRS = (
    "bot",
    "handlers",
    "conversations",
    "scheduler",
    "chat_ui",
    "services",
    "language",
    "media",
    "storage",
)
SOURCE_LOCALE = "nl"
KEYWORDS = {"_": None, "__": None, "ngettext": (1, 2), "lazy_gettext": None}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_INFORMAL = re.compile(r"\b(?:je|jij|jou|jouw|jullie)\b", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[a-z]+[^>]*>")
FORMAL_HEADER = """\
# Formal Dutch ("u") for the parents of schools that ask for it (School.parent_address_formal).
# msgid: the ordinary Dutch text of the code; msgstr: the same text, addressing the parent
# with "u". Written by hand; `portfolio-bot i18n update` only drops entries that left the
# code and adds empty ones for new texts. An msgstr equal to its msgid: checked, stays as is."""
PARENT_TAG = "parents"
# Modules (or packages, by their folder) a parent sees as a whole; in other modules, mark single
# strings with `# parents`.
PARENT_MODULES = (
    "handlers/parents.py",
    "conversations/parent_summary",
    "conversations/parent_feedback.py",
    "conversations/parent_settings.py",
    "services/pictures/progress.py",
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


def formal_po_path() -> Path:
    return LOCALES_DIR / FORMAL_LOCALE / "LC_MESSAGES" / f"{FORMAL_DOMAIN}.po"


def read_formal_catalog() -> Catalog:
    path = formal_po_path()
    if not path.exists():
        return Catalog(locale=FORMAL_LOCALE, domain=FORMAL_DOMAIN, header_comment=FORMAL_HEADER)
    with path.open("rb") as file:
        return read_po(file, locale=FORMAL_LOCALE, domain=FORMAL_DOMAIN)


def _sources(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, tuple) else (str(message.id),)


def _forms(message: Message) -> tuple[str, ...]:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return tuple(str(form or "") for form in strings)


def needs_formal_variant(message: Message) -> bool:
    """A parent string that says "je" (or jij, jou, jouw, jullie) to its reader."""
    return (
        bool(message.id)
        and is_for_parents(message)
        and any(_INFORMAL.search(source) for source in _sources(message))
    )


def update_formal(template: Catalog) -> None:
    """Keep the formal catalog in step with the code, without writing any Dutch for it."""
    formal = read_formal_catalog()
    in_code = {message.id: message for message in template if message.id}
    for message in list(formal):
        if not message.id:
            continue
        source = in_code.get(message.id)
        if source is None:
            formal.delete(message.id, context=message.context)
        else:
            message.locations = list(source.locations)
            message.auto_comments = list(source.auto_comments)
    for message in template:
        if needs_formal_variant(message) and message.id not in formal:
            formal.add(
                message.id,
                string=("", "") if isinstance(message.id, tuple) else "",
                locations=message.locations,
                auto_comments=message.auto_comments,
            )
    formal.project, formal.version = "leerling-portfolio-bot", "1"
    formal.header_comment = FORMAL_HEADER
    formal.fuzzy = False
    with formal_po_path().open("wb") as file:
        write_po(file, formal, sort_output=True, width=100, ignore_obsolete=True)


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
    update_formal(template)


def is_for_parents(message: Message) -> bool:
    """A string a parent sees: from a parent module, or marked `# parents`."""
    in_module = any(location.startswith(PARENT_MODULES) for location, _line in message.locations)
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
    return found + formal_problems(template, read_formal_catalog())


def formal_problems(template: Catalog, formal: Catalog) -> list[str]:
    """What is wrong with the formal Dutch: a parent string with "je" and no formal wording,
    an entry for a text the code no longer has, or placeholders or HTML that differ."""
    where = f"{FORMAL_LOCALE} ({FORMAL_DOMAIN})"
    found: list[str] = []
    code_ids = {message.id for message in template if message.id}
    formal_ids = {message.id for message in formal if message.id}
    needed = [m.id for m in template if needs_formal_variant(m) and m.id not in formal_ids]
    found += [f"{where}: missing {text!r}" for text in sorted(needed, key=str)]
    found += [
        f"{where}: not in code any more {text!r}" for text in sorted(formal_ids - code_ids, key=str)
    ]
    for message in formal:
        if not message.id or message.id not in code_ids:
            continue
        sources, forms = _sources(message), _forms(message)
        if not all(forms):
            found.append(f"{where}: untranslated {message.id!r}")
        elif message.fuzzy:
            found.append(f"{where}: fuzzy {message.id!r}")
        elif not _same_placeholders(sources, forms):
            found.append(f"{where}: placeholders differ in {message.id!r}")
        elif any(_HTML_TAG.findall(form) != _HTML_TAG.findall(sources[-1]) for form in forms):
            found.append(f"{where}: HTML differs in {message.id!r}")
    return found


def _same_placeholders(sources: tuple[str, ...], forms: tuple[str, ...]) -> bool:
    """The translation uses the source's placeholders; a singular form may leave {count} out."""
    wanted = set(_PLACEHOLDER.findall(sources[-1]))
    used = [set(_PLACEHOLDER.findall(form)) for form in forms]
    return used[-1] == wanted and all(placeholders <= wanted for placeholders in used)
