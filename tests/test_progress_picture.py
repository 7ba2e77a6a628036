"""The progress picture: readable on a phone, one card per goal, Arabic shaped or avoided."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from language.i18n import load_i18n, use_locale
from services.pictures import progress as progress_picture
from services.pictures.progress import WIDTH, draw_progress, picture_texts
from storage.summaries import GoalLevel

FORCES = GoalLevel(1, "Je kunt soorten krachten herkennen", "1.1 Krachten", 1, 3, None, 4, True)
VECTORS = GoalLevel(
    2, "Je kunt krachten als vectoren tekenen", "1.1 Krachten", 1, None, None, 4, False
)
OWN = GoalLevel(3, "Ik neem de regie over mijn eigen leren", "Regie", 2, 2, "brons", 3, True)


@pytest.fixture(scope="module")
def i18n():
    core = load_i18n()
    with core.context():
        yield core


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


def test_the_picture_is_phone_sized_and_grows_with_the_goals(i18n):
    with use_locale("nl"):
        texts = picture_texts("Sam", "Periode 2")
        one = _open(draw_progress([FORCES], texts))
        three = _open(draw_progress([FORCES, VECTORS, OWN], texts))
    assert one.width == three.width == WIDTH
    assert three.height > one.height
    # Bars are drawn: the reached level's green appears, the empty grey too.
    colours = {colour for _count, colour in three.convert("RGB").getcolors(1 << 20) or []}
    assert progress_picture.FILLED in colours and progress_picture.EMPTY in colours


def test_the_words_are_in_the_parents_language(i18n):
    with use_locale("uk"):
        texts = picture_texts("Sam", None)
    assert "Sam" in texts.title and texts.subtitle == "Цілі цього періоду"
    assert texts.default_levels[2] == "просунутий" and not texts.rtl
    with use_locale("ar"):
        texts = picture_texts("Sam", "Periode 2")
        data = draw_progress([FORCES, OWN], texts)
    assert texts.rtl and "مستوى" in texts.title
    assert _open(data).width == WIDTH


def test_without_shaping_arabic_words_are_drawn_in_english(i18n, monkeypatch):
    monkeypatch.setattr(progress_picture, "shaping_available", lambda: False)
    with use_locale("ar"):
        texts = picture_texts("Sam", "Periode 2")
        data = draw_progress([FORCES], texts)
    assert texts.title == "Where Sam stands now" and not texts.rtl
    assert _open(data).height > 0


def test_an_empty_period_still_draws(i18n):
    with use_locale("en"):
        image = _open(draw_progress([], picture_texts("Sam", None)))
    assert image.width == WIDTH and image.height >= 400
