"""The parents' languages: complete for parents, English elsewhere, never for pupils."""

from __future__ import annotations

import pytest

from bot.catalogs import extract, is_for_parents, read_catalog
from chat_ui.i18n import pick_locale
from config.settings import PARENT_LOCALES
from language.i18n import _, load_i18n, use_locale
from storage.accounts import PersonRef, Viewer
from storage.models import Role


def _viewer(role: Role | None, locale: str | None) -> Viewer:
    person = PersonRef(1, "x", role, 1, locale) if role is not None else None
    return Viewer(1, 1, locale, person, (person,) if person else ())


def test_a_parents_language_is_for_parents_and_newcomers_only():
    available = {"nl", "en", *PARENT_LOCALES}
    assert pick_locale(_viewer(Role.PARENT, "ar"), None, available, "nl") == "ar"
    assert pick_locale(_viewer(None, "tr"), None, available, "nl") == "tr"
    assert pick_locale(_viewer(Role.PUPIL, "tr"), None, available, "nl") == "nl"
    assert pick_locale(_viewer(Role.TEACHER, "uk"), None, available, "nl") == "nl"


def test_strings_a_parent_never_sees_fall_back_to_english():
    i18n = load_i18n()
    with i18n.context(), use_locale("pl"):
        assert _("/reflectie – vertel hoe het vandaag ging") == "/reflectie – tell how today went"
        assert _("Hulp") == "Pomoc"


@pytest.mark.parametrize("locale", PARENT_LOCALES)
def test_every_parent_facing_string_is_translated(locale):
    catalog = read_catalog(locale)
    parent_ids = [message.id for message in extract() if message.id and is_for_parents(message)]
    assert len(parent_ids) > 100
    missing = [i for i in parent_ids if not (catalog.get(i) and catalog.get(i).string)]
    assert missing == []
