"""Typed text is cleaned once, at the door, and ordinary text of any script passes unchanged."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.sanitize import MAX_COMBINING_RUN, clean_text


@pytest.mark.parametrize(
    "text",
    [
        "Sam werkte goed samen #samenwerken",
        "Noor heeft ‘breuken’ uitgelegd – top!",
        "Çocuğum bu hafta çok çalıştı.",  # Turkish
        "أحسنت يا نور، عمل رائع",  # Arabic, right to left without any control characters
        "Дякую, вчителько!",  # Ukrainian
        "Świetna robota, Zosia!",  # Polish
        "Tiếng Việt có dấu",  # Vietnamese: stacked accents
        "👩‍👧 familie-emoji met ZWJ, 👍🏽 huidskleur",
        "twee\nregels",
        "\u200fRLM mark stays",
    ],
)
def test_ordinary_text_in_any_language_is_left_alone(text: str):
    assert clean_text(text) == unicodedata.normalize("NFC", text)


def test_a_right_to_left_override_cannot_disguise_a_name():
    assert clean_text("Sam \u202egpj.exe") == "Sam gpj.exe"
    assert clean_text("\u2066isolate\u2069 \u202aembed\u202c") == "isolate embed"


def test_control_characters_and_invisible_spaces_are_removed():
    assert clean_text("bel\x07 nu\x00\x1b[31m rood") == "bel nu[31m rood"
    assert clean_text("zero\u200bwidth\ufeff") == "zerowidth"
    assert clean_text("tab\there\r\nnext") == "tab here\nnext"
    assert clean_text("a\n\n\n\n\nb") == "a\n\nb"


def test_zalgo_is_tamed_but_letters_stay():
    zalgo = "Z" + "\u0336\u0335\u0334\u0337\u0338\u0321\u0322\u0327\u0328" * 5 + "o"
    cleaned = clean_text(zalgo)
    assert cleaned.startswith("Z") and cleaned.endswith("o")
    assert sum(unicodedata.combining(char) > 0 for char in cleaned) <= MAX_COMBINING_RUN


def test_decomposed_and_composed_accents_become_the_same_text():
    assert clean_text("e\u0301cole") == clean_text("\u00e9cole") == "\u00e9cole"


@given(st.text(max_size=300))
def test_cleaning_is_idempotent_and_leaves_nothing_dangerous(text: str):
    once = clean_text(text)
    assert clean_text(once) == once
    assert not any(unicodedata.category(char) in ("Cc", "Cs") and char != "\n" for char in once)
    assert not any(0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069 for char in once)
