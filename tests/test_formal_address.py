"""Formal Dutch ("u") for the parents of a school that asks for it: the lookup, who gets it,
and the check that keeps locales/nl/LC_MESSAGES/formal.po in step with the code."""

from __future__ import annotations

from gettext import NullTranslations

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

import bot.catalogs
from bot.catalogs import extract, formal_problems, read_formal_catalog, update_formal
from chat_ui.i18n import viewer_is_addressed_formally
from language.i18n import FormalDutch, _, formal_address, load_i18n, use_locale
from storage.accounts import PersonRef, Viewer
from storage.models import Role

WANTS = "Wat wil je ontvangen?"


@pytest.fixture(scope="module")
def i18n():
    return load_i18n()


def _viewer(role: Role | None, *, formal_school: bool) -> Viewer:
    person = (
        PersonRef(1, "x", role, 1, "nl", parent_address_formal=formal_school)
        if role is not None
        else None
    )
    return Viewer(1, 1, "nl", person, (person,) if person else ())


def test_dutch_says_u_only_while_formal_address_is_on(i18n):
    with i18n.context(), use_locale("nl"):
        assert _(WANTS) == WANTS
        with formal_address(True):
            assert _(WANTS) == "Wat wilt u ontvangen?"
            # A text without "je" has no formal entry and stays as it is.
            assert _("Kies iets uit het menu.") == "Kies iets uit het menu."
            with formal_address(False):
                assert _(WANTS) == WANTS
        assert _(WANTS) == WANTS


def test_other_languages_keep_their_own_catalogs(i18n):
    with i18n.context(), formal_address(True):
        with use_locale("en"):
            assert _(WANTS) == "What would you like to receive?"
        with use_locale("pl"):
            assert "u ontvangen" not in _(WANTS)


def test_only_a_parent_of_a_formal_school_is_addressed_formally():
    assert viewer_is_addressed_formally(_viewer(Role.PARENT, formal_school=True))
    assert not viewer_is_addressed_formally(_viewer(Role.PARENT, formal_school=False))
    for role in (Role.PUPIL, Role.TEACHER, Role.ADMIN):
        assert not viewer_is_addressed_formally(_viewer(role, formal_school=True))
    assert not viewer_is_addressed_formally(_viewer(None, formal_school=True))
    assert not viewer_is_addressed_formally(None)


def test_plural_texts_have_formal_forms_too(tmp_path):
    catalog = Catalog(locale="nl", domain="formal")
    catalog.add(
        ("Je hebt {count} bericht.", "Je hebt {count} berichten."),
        string=("U heeft {count} bericht.", "U heeft {count} berichten."),
    )
    catalog.add("Kies je dag.", string="")  # not written yet: the ordinary text is used
    po_path = tmp_path / "formal.po"
    with po_path.open("wb") as file:
        write_po(file, catalog)
    dutch = FormalDutch(po_path, NullTranslations())  # type: ignore[arg-type]
    singular, plural = "Je hebt {count} bericht.", "Je hebt {count} berichten."
    with formal_address(True):
        assert dutch.ngettext(singular, plural, 1) == "U heeft {count} bericht."
        assert dutch.ngettext(singular, plural, 3) == "U heeft {count} berichten."
        assert dutch.gettext("Kies je dag.") == "Kies je dag."
    assert dutch.ngettext(singular, plural, 3) == plural


def _template(*entries: tuple[str, str, bool]) -> Catalog:
    """(text, module, marked `# parents`) per string of the code."""
    template = Catalog(locale="nl")
    for text, module, marked in entries:
        template.add(text, locations=[(module, 1)], auto_comments=["parents"] if marked else [])
    return template


def _formal(**entries: str) -> Catalog:
    catalog = Catalog(locale="nl", domain="formal")
    for text, formal in entries.items():
        catalog.add(text.replace("_", " "), string=formal)
    return catalog


def test_the_check_wants_a_formal_variant_for_every_parent_text_with_je():
    template = _template(
        ("Kies je taal", "bot/commands.py", True),  # marked for parents
        ("Wat wil je ontvangen?", "conversations/parent_settings.py", False),  # parent module
        ("Jullie groep", "handlers/parents.py", False),
        ("Kies je doelen", "conversations/goals.py", False),  # the pupil's, never formal
        ("Kies iets uit het menu.", "bot/commands.py", True),  # no "je"
        ("Jeroen komt", "bot/commands.py", True),  # "je" only inside a word
    )
    found = formal_problems(template, _formal(Kies_je_taal="Kies uw taal"))
    assert found == [
        "nl (formal): missing 'Jullie groep'",
        "nl (formal): missing 'Wat wil je ontvangen?'",
    ]


def test_the_check_reports_stale_entries_and_differing_placeholders_or_html():
    template = _template(
        ("Welkom, {name}! Je bent gekoppeld.", "handlers/parents.py", False),
        ("<b>Je kind</b>", "handlers/parents.py", False),
        ("Je gesprekken:", "handlers/parents.py", False),
    )
    formal = Catalog(locale="nl", domain="formal")
    formal.add("Welkom, {name}! Je bent gekoppeld.", string="Welkom, {naam}! U bent gekoppeld.")
    formal.add("<b>Je kind</b>", string="Uw kind")
    formal.add("Je gesprekken:", string="")
    formal.add("Je oude tekst", string="Uw oude tekst")
    assert formal_problems(template, formal) == [
        "nl (formal): not in code any more 'Je oude tekst'",
        "nl (formal): placeholders differ in 'Welkom, {name}! Je bent gekoppeld.'",
        "nl (formal): HTML differs in '<b>Je kind</b>'",
        "nl (formal): untranslated 'Je gesprekken:'",
    ]


def test_the_formal_catalog_of_the_code_is_complete():
    assert formal_problems(extract(), read_formal_catalog()) == []


def test_update_drops_what_left_the_code_and_never_writes_dutch(tmp_path, monkeypatch):
    path = tmp_path / "formal.po"
    monkeypatch.setattr(bot.catalogs, "formal_po_path", lambda: path)
    with path.open("wb") as file:
        write_po(file, _formal(Kies_je_taal="Kies uw taal", Je_oude_tekst="Uw oude tekst"))
    update_formal(
        _template(
            ("Kies je taal", "bot/commands.py", True),
            ("Wat wil je ontvangen?", "conversations/parent_settings.py", False),
            ("Kies je doelen", "conversations/goals.py", False),
        )
    )
    with path.open("rb") as file:
        updated = {message.id: message.string for message in read_po(file) if message.id}
    assert updated == {"Kies je taal": "Kies uw taal", "Wat wil je ontvangen?": ""}
