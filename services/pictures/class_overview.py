"""The class overview as a picture: a grid with a row per pupil and a column per learning
line, each cell coloured by the level the pupil reached on that line. Drawn with Pillow as a
PNG 1080 px wide (a phone's screen width) and at most 1280 px tall (Telegram shrinks taller
photos), with no text smaller than 22 px.

Columns carry numbers, not names: a line's name does not fit above a narrow column at a
readable size, and text turned sideways is hard to read on a phone. The names are listed
under the grid. A class of 30 fits on two pages of 15; more than `MAX_COLUMNS` lines make
more pages, side by side in the album.

The teacher's level fills the cell; the pupil's own level (no teacher's level yet) is an
outlined cell marked "ik": the difference is visible without colour too. The palette is soft
on purpose: this is a view for the teacher, not a ranking.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from services.pictures.fonts import Font, font
from storage.overview import LineColumn, PupilStanding, Standing

WIDTH = 1080
# Telegram scales a photo down until its longest side is 1280 px; a taller picture would
# arrive at half its width with half-size text. So a page is at most this tall, and a big
# group gets several pages (sent as one album).
MAX_HEIGHT = 1280
MARGIN = 36
NAME_COLUMN = 330
ROW_HEIGHT = 52
MAX_COLUMNS = 6
MIN_FONT_SIZE = 22
TITLE_SIZE = 36
TEXT_SIZE = 26
CELL_SIZE = 28
SMALL_SIZE = 22
BACKGROUND = (250, 249, 245)
STRIPE = (241, 239, 232)
INK = (38, 42, 50)
SOFT_INK = (88, 94, 106)
EMPTY = (228, 231, 228)
# From "just started" to "mastered": warm to green, never red.
PALETTE = ((247, 201, 150), (244, 226, 140), (166, 219, 160), (86, 178, 128))


@dataclass(frozen=True)
class PictureTexts:
    """The words on the picture, already translated by the caller."""

    title: str
    subtitle: str
    pupil_header: str
    lines_header: str
    levels_header: str
    own_mark: str  # "ik": the pupil's own level
    key_teacher: str
    key_own: str
    key_none: str
    key_no_goal: str
    default_levels: tuple[str, ...]


@dataclass
class Picture:
    png: bytes
    width: int
    height: int
    # Every font size used, so a test can check that nothing is too small to read.
    font_sizes: set[int] = field(default_factory=set)


class _Canvas:
    def __init__(self, height: int) -> None:
        self.image = Image.new("RGB", (WIDTH, height), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.sizes: set[int] = set()

    def font(self, size: int, *, bold: bool = False) -> Font:
        self.sizes.add(size)
        return font(size, bold=bold)

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        size: int,
        *,
        bold: bool = False,
        fill: tuple[int, int, int] = INK,
        anchor: str = "la",
    ) -> None:
        self.draw.text(xy, text, font=self.font(size, bold=bold), fill=fill, anchor=anchor)

    def width_of(self, text: str, size: int, *, bold: bool = False) -> float:
        return self.draw.textlength(text, font=self.font(size, bold=bold))

    def fitted(self, text: str, size: int, width: float, *, bold: bool = False) -> str:
        """The text, cut with "…" where it would run past `width`."""
        if self.width_of(text, size, bold=bold) <= width:
            return text
        while text and self.width_of(text + "…", size, bold=bold) > width:
            text = text[:-1]
        return text.rstrip() + "…"

    def wrapped(self, text: str, size: int, width: float) -> list[str]:
        lines: list[str] = []
        current = ""
        for word in text.split():
            candidate = f"{current} {word}".strip()
            if current and self.width_of(candidate, size) > width:
                lines.append(current)
                current = word
            else:
                current = candidate
        if current:
            lines.append(current)
        return lines or [""]


def colour_of(position: int, levels: int) -> tuple[int, int, int]:
    """Scales of 3, 4 or 5 levels share one palette: the top level is always the greenest."""
    if levels <= 1:
        return PALETTE[-1]
    step = round((min(position, levels) - 1) * (len(PALETTE) - 1) / (levels - 1))
    return PALETTE[max(0, min(step, len(PALETTE) - 1))]


def _scale_names(column: LineColumn, texts: PictureTexts) -> tuple[str, ...]:
    return tuple(
        name or (texts.default_levels[index] if index < len(texts.default_levels) else "")
        for index, name in enumerate(column.scale)
    )


def _legend_height(canvas: _Canvas, columns: Sequence[LineColumn], texts: PictureTexts) -> int:
    return _draw_legend(canvas, columns, texts, top=0, dry_run=True)


def _header_height() -> int:
    return MARGIN + TITLE_SIZE + 10 + TEXT_SIZE + 18


def rows_per_page(columns: Sequence[LineColumn], texts: PictureTexts) -> int:
    """How many pupils fit on one page under Telegram's 1280 px."""
    legend = _legend_height(_Canvas(1), columns, texts)
    room = MAX_HEIGHT - _header_height() - ROW_HEIGHT - 24 - legend - MARGIN
    return max(1, room // ROW_HEIGHT)


def draw_class_overview(
    columns: Sequence[LineColumn],
    pupils: Sequence[PupilStanding],
    texts: PictureTexts,
    *,
    first_number: int = 1,
    subtitle: str | None = None,
) -> Picture:
    """One page: up to `MAX_COLUMNS` lines (numbered from `first_number`) and these pupils."""
    columns = list(columns)[:MAX_COLUMNS]
    measure = _Canvas(1)
    header = _header_height()
    grid_top = header + ROW_HEIGHT
    legend_top = grid_top + ROW_HEIGHT * max(1, len(pupils)) + 24
    height = legend_top + _legend_height(measure, columns, texts) + MARGIN
    canvas = _Canvas(height)
    canvas.text(
        (MARGIN, MARGIN),
        canvas.fitted(texts.title, TITLE_SIZE, WIDTH - 2 * MARGIN, bold=True),
        TITLE_SIZE,
        bold=True,
    )
    canvas.text(
        (MARGIN, MARGIN + TITLE_SIZE + 10),
        canvas.fitted(subtitle or texts.subtitle, TEXT_SIZE, WIDTH - 2 * MARGIN),
        TEXT_SIZE,
        fill=SOFT_INK,
    )
    cell_width = (WIDTH - 2 * MARGIN - NAME_COLUMN) / max(1, len(columns))
    middle = header + ROW_HEIGHT / 2
    canvas.text(
        (MARGIN + 8, middle), texts.pupil_header, TEXT_SIZE, bold=True, fill=SOFT_INK, anchor="lm"
    )
    for index in range(len(columns)):
        centre = MARGIN + NAME_COLUMN + cell_width * (index + 0.5)
        radius = 21
        canvas.draw.ellipse(
            (centre - radius, middle - radius, centre + radius, middle + radius), fill=INK
        )
        canvas.text(
            (centre, middle),
            str(first_number + index),
            TEXT_SIZE,
            bold=True,
            fill=BACKGROUND,
            anchor="mm",
        )
    for row, standing in enumerate(pupils):
        top = grid_top + row * ROW_HEIGHT
        if row % 2 == 0:
            canvas.draw.rectangle((MARGIN, top, WIDTH - MARGIN, top + ROW_HEIGHT), fill=STRIPE)
        name = canvas.fitted(standing.pupil.name, TEXT_SIZE, NAME_COLUMN - 24)
        canvas.text((MARGIN + 8, top + ROW_HEIGHT / 2), name, TEXT_SIZE, anchor="lm")
        for index, column in enumerate(columns):
            left = MARGIN + NAME_COLUMN + cell_width * index
            _draw_cell(canvas, standing.cells.get(column.id), texts, left, top, cell_width)
    _draw_legend(canvas, columns, texts, top=legend_top, first_number=first_number)
    buffer = io.BytesIO()
    canvas.image.save(buffer, "PNG")
    return Picture(buffer.getvalue(), WIDTH, height, canvas.sizes | measure.sizes)


def _draw_cell(
    canvas: _Canvas,
    standing: Standing | None,
    texts: PictureTexts,
    left: float,
    top: float,
    width: float,
) -> None:
    box = (left + 6, top + 5, left + width - 6, top + ROW_HEIGHT - 5)
    middle = (left + width / 2, top + ROW_HEIGHT / 2)
    if standing is None:
        canvas.text(middle, "·", CELL_SIZE, bold=True, fill=SOFT_INK, anchor="mm")
        return
    if standing.position is None:
        canvas.draw.rounded_rectangle(box, radius=10, fill=EMPTY)
        canvas.text(middle, "–", CELL_SIZE, bold=True, fill=SOFT_INK, anchor="mm")
        return
    colour = colour_of(standing.position, standing.levels)
    number = str(standing.position)
    if standing.by_teacher:
        canvas.draw.rounded_rectangle(box, radius=10, fill=colour)
        canvas.text(middle, number, CELL_SIZE, bold=True, anchor="mm")
        return
    canvas.draw.rounded_rectangle(box, radius=10, fill=BACKGROUND, outline=colour, width=5)
    gap = 6
    number_width = canvas.width_of(number, CELL_SIZE, bold=True)
    start = middle[0] - (number_width + gap + canvas.width_of(texts.own_mark, SMALL_SIZE)) / 2
    canvas.text((start, middle[1]), number, CELL_SIZE, bold=True, anchor="lm")
    canvas.text(
        (start + number_width + gap, middle[1]),
        texts.own_mark,
        SMALL_SIZE,
        fill=SOFT_INK,
        anchor="lm",
    )


def _draw_legend(
    canvas: _Canvas,
    columns: Sequence[LineColumn],
    texts: PictureTexts,
    *,
    top: float,
    first_number: int = 1,
    dry_run: bool = False,
) -> int:
    """The line names (two to a row), the colour key and the marks; returns the height."""
    y = top
    half = (WIDTH - 2 * MARGIN) / 2
    for index, column in enumerate(columns):
        x = MARGIN + 8 + (index % 2) * half
        if not dry_run:
            canvas.text((x, y), str(first_number + index), TEXT_SIZE, bold=True)
            name = canvas.fitted(column.name, TEXT_SIZE, half - 60)
            canvas.text((x + 40, y), name, TEXT_SIZE)
        if index % 2 == 1 or index == len(columns) - 1:
            y += TEXT_SIZE + 12
    y += 14
    scales: dict[tuple[str, ...], list[int]] = {}
    for index, column in enumerate(columns):
        scales.setdefault(_scale_names(column, texts), []).append(first_number + index)
    for names, numbers in scales.items():
        x = MARGIN + 8.0
        if len(scales) > 1:
            # Lines of different goal sets may name their levels differently.
            label = ", ".join(str(number) for number in numbers) + ":"
            if not dry_run:
                canvas.text((x, y + 15), label, SMALL_SIZE, bold=True, fill=SOFT_INK, anchor="lm")
            x += canvas.width_of(label, SMALL_SIZE, bold=True) + 14
        for position, name in enumerate(names, start=1):
            label = f"{position} {name}"
            entry = canvas.width_of(label, TEXT_SIZE) + 40 + 24
            if x + entry > WIDTH - MARGIN:
                x = MARGIN + 8.0
                y += TEXT_SIZE + 16
            if not dry_run:
                colour = colour_of(position, len(names))
                canvas.draw.rounded_rectangle((x, y, x + 30, y + 30), radius=6, fill=colour)
                canvas.text((x + 40, y + 15), label, TEXT_SIZE, anchor="lm")
            x += entry
        y += TEXT_SIZE + 16
    y += 4
    marks = (texts.key_teacher, texts.key_own, texts.key_none, texts.key_no_goal)
    for index, mark in enumerate(marks):
        if not dry_run:
            x = MARGIN + 8 + (index % 2) * half
            canvas.text(
                (x, y), canvas.fitted(mark, SMALL_SIZE, half - 16), SMALL_SIZE, fill=SOFT_INK
            )
        if index % 2 == 1:
            y += SMALL_SIZE + 10
    return int(y - top)


def draw_class_overview_pages(
    columns: Sequence[LineColumn],
    pupils: Sequence[PupilStanding],
    texts: PictureTexts,
    *,
    page_label: str = "{page}/{pages}",
) -> list[Picture]:
    """The whole group: pages of at most `MAX_COLUMNS` lines and as many pupils as fit,
    shared out evenly (30 pupils: two pages of 15, not 17 and 13)."""
    column_chunks = [
        list(columns[start : start + MAX_COLUMNS]) for start in range(0, len(columns), MAX_COLUMNS)
    ] or [[]]
    pages: list[tuple[int, list[LineColumn], list[PupilStanding]]] = []
    for index, chunk in enumerate(column_chunks):
        fits = rows_per_page(chunk, texts)
        count = max(1, -(-len(pupils) // fits))
        size = -(-len(pupils) // count) if pupils else 0
        for start in range(0, max(1, len(pupils)), max(1, size)):
            pages.append((1 + index * MAX_COLUMNS, chunk, list(pupils[start : start + size])))
    total = len(pages)
    return [
        draw_class_overview(
            chunk,
            page_pupils,
            texts,
            first_number=first,
            subtitle=texts.subtitle
            + ("  ·  " + page_label.format(page=number, pages=total) if total > 1 else ""),
        )
        for number, (first, chunk, page_pupils) in enumerate(pages, start=1)
    ]
