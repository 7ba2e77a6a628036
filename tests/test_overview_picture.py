"""The class overview picture for a class of 30 on a generated school year: written to
tests/output/ to look at, and checked for what makes it readable on a phone."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bench._schoolyear import generate_school_year
from conversations.class_overview import picture_texts
from language.i18n import load_i18n
from services.pictures.class_overview import (
    BACKGROUND,
    INK,
    MARGIN,
    MAX_HEIGHT,
    MIN_FONT_SIZE,
    NAME_COLUMN,
    PALETTE,
    ROW_HEIGHT,
    SOFT_INK,
    STRIPE,
    WIDTH,
    _header_height,
    draw_class_overview_pages,
)
from storage.overview import class_overview

OUTPUT = Path(__file__).resolve().parent / "output"


def contrast(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    """The WCAG contrast ratio of two colours (4.5 is the bar for normal text)."""

    def luminance(colour: tuple[int, int, int]) -> float:
        channels = []
        for value in colour:
            c = value / 255
            channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
        red, green, blue = channels
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def test_the_picture_of_a_class_of_30_reads_well_on_a_phone(session_factory, db_url):
    year = await generate_school_year(session_factory, pupils=30, days=15)
    async with session_factory() as session:
        overview = await class_overview(
            session, teacher_id=year.teacher_id, group_id=year.group_id, today=year.last_day
        )
    assert overview is not None and len(overview.pupils) == 30 and len(overview.lines) == 6
    i18n = load_i18n()
    with i18n.context(), i18n.use_locale("nl"):
        pages = draw_class_overview_pages(
            overview.lines,
            overview.pupils,
            picture_texts(overview, "5 juni 2026"),
            page_label="blad {page} van {pages}",
        )

    # 30 pupils on two pages of 15, each kept whole by Telegram (longest side at most 1280 px,
    # so it is not scaled down) and as wide as a phone's screen.
    assert len(pages) == 2
    OUTPUT.mkdir(exist_ok=True)
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    for number, page in enumerate(pages, start=1):
        (OUTPUT / f"class-overview-{backend}-{number}.png").write_bytes(page.png)
        with Image.open(io.BytesIO(page.png)) as image:
            assert image.format == "PNG"
            assert image.size == (page.width, page.height)
            assert image.width == WIDTH >= 1080
            assert image.height <= MAX_HEIGHT
            assert len(page.png) < 10 * 1024 * 1024  # Telegram's limit for a photo
            assert min(page.font_sizes) >= MIN_FONT_SIZE >= 22
            # 15 pupils' rows under the header.
            assert _header_height() + ROW_HEIGHT * 16 < image.height
            # The first pupil's name is really drawn, at least 18 px tall (a 26 px font's
            # capitals and descenders): dark pixels in the name cell of the first row.
            top = _header_height() + ROW_HEIGHT
            cell = image.convert("L").crop((MARGIN, top, MARGIN + NAME_COLUMN, top + ROW_HEIGHT))
            dark_rows = [
                y
                for y in range(cell.height)
                if any(cell.getpixel((x, y)) < 110 for x in range(cell.width))
            ]
            assert dark_rows and dark_rows[-1] - dark_rows[0] >= 18

    # Text colours stand out from every background they are drawn on.
    for background in (BACKGROUND, STRIPE, *PALETTE):
        assert contrast(INK, background) >= 4.5
    for background in (BACKGROUND, STRIPE):
        assert contrast(SOFT_INK, background) >= 4.5


def test_a_very_large_group_still_fits_telegrams_limits():
    """120 pupils and 8 lines: every message within 4096 characters, every page of the
    picture within 1280 px, every pupil on the pages once."""
    from datetime import date

    from conversations.class_overview import overview_text
    from storage.observations import PupilRef
    from storage.overview import ClassOverview, GroupRef, LineColumn, PupilStanding, Standing

    lines = [LineColumn(index, f"Leerlijn {index}", 1, (None,) * 4) for index in range(1, 9)]
    pupils = [
        PupilStanding(
            PupilRef(index, f"Leerling met een lange naam {index}"),
            {
                line.id: Standing("A", "Doel", (index + line.id) % 4 + 1, index % 2 == 0, 4)
                for line in lines
            },
        )
        for index in range(120)
    ]
    everyone = [pupil.pupil for pupil in pupils]
    overview = ClassOverview(
        GroupRef(1, "Groep 8"), "Periode 1", date(2026, 11, 23), lines, pupils, everyone, [], []
    )
    i18n = load_i18n()
    with i18n.context(), i18n.use_locale("nl"):
        parts = overview_text(overview, several_groups=True)
        pages = draw_class_overview_pages(lines, pupils, picture_texts(overview, "vandaag"))
    assert len(parts) > 1 and all(len(part) <= 4096 for part in parts)
    assert all(part.count("<pre>") == part.count("</pre>") for part in parts)
    assert all(page.width == WIDTH and page.height <= MAX_HEIGHT for page in pages)
    # Two column blocks (6 + 2 lines), each with all 120 pupils spread over its pages.
    assert len(pages) % 2 == 0 and len(pages) >= 16
