"""The progress picture of the weekly summary: per learning line, the goals of the period and
the level the child reached on each, drawn with Pillow as a PNG that reads well on a phone.

Goal texts, line names and rubric level names stay as the school wrote them (Dutch); the
title and the words for the default scale come from the catalogs. Arabic needs shaping and
right-to-left layout, which Pillow only does with libraqm: where that is missing, the few
translated words of a right-to-left language are drawn in English instead, so the picture
never shows broken letters. DejaVu Sans covers Latin, Turkish, Polish, Cyrillic and Arabic.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from language.i18n import _, current_locale, use_locale
from services.pictures.fonts import Font, font, shaping_available
from storage.summaries import GoalLevel

WIDTH = 1080
MARGIN = 56
RTL_LOCALES = frozenset({"ar"})
BACKGROUND = (252, 250, 245)
INK = (40, 44, 52)
SOFT_INK = (110, 116, 128)
LINE_COLOUR = (46, 125, 95)
FILLED = (76, 175, 125)
EMPTY = (226, 230, 226)
CARD = (255, 255, 255)


@dataclass(frozen=True)
class PictureTexts:
    title: str
    subtitle: str
    not_yet: str
    default_levels: tuple[str, ...]
    rtl: bool


def default_level_names() -> tuple[str, ...]:
    return (_("beginner"), _("in ontwikkeling"), _("gevorderd"), _("expert"))


def picture_texts(name: str, period: str | None) -> PictureTexts:
    """The translated words of the picture, in the current locale (English instead of a
    right-to-left language when this Pillow cannot shape it)."""
    locale = current_locale()
    rtl = locale in RTL_LOCALES
    if rtl and not shaping_available():
        with use_locale("en"):
            return replace(picture_texts(name, period), rtl=False)
    return PictureTexts(
        title=_("Waar {name} nu staat").format(name=name),
        subtitle=period or _("Doelen van deze periode"),
        not_yet=_("nog niet beoordeeld"),
        default_levels=default_level_names(),
        rtl=rtl,
    )


def _wrap(draw: ImageDraw.ImageDraw, text: str, face: Font, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=face) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines or [""]


def _direction(rtl: bool) -> str | None:
    # Only raqm understands `direction`; basic layout must be given None.
    return "rtl" if rtl and shaping_available() else None


def draw_progress(levels: Sequence[GoalLevel], texts: PictureTexts) -> bytes:
    """A PNG: a title, then per learning line its goals with a bar of the scale's levels."""
    title_font, subtitle_font = font(52, bold=True), font(34)
    line_font, goal_font, level_font = font(36, bold=True), font(32), font(28)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    inner = WIDTH - 2 * MARGIN

    lines: dict[tuple[int, str], list[GoalLevel]] = {}
    for level in levels:
        lines.setdefault((level.line_position, level.line_name), []).append(level)

    # Lay out first (to know the height), then draw.
    blocks: list[tuple[str, object]] = [("title", texts.title), ("subtitle", texts.subtitle)]
    height = MARGIN + 64 + 52 + 24
    for (_position, line_name), goals in sorted(lines.items()):
        blocks.append(("line", line_name))
        height += 64
        for goal in goals:
            wrapped = _wrap(measure, goal.text, goal_font, inner - 40)
            blocks.append(("goal", (goal, wrapped)))
            height += 40 * len(wrapped) + 94 + 14  # the card and the gap below it (_draw_goal)
    height += MARGIN // 2

    image = Image.new("RGB", (WIDTH, max(height, 400)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for kind, value in blocks:
        if kind in ("title", "subtitle"):
            face = title_font if kind == "title" else subtitle_font
            colour = INK if kind == "title" else SOFT_INK
            text = str(value)
            if texts.rtl:
                draw.text(
                    (WIDTH - MARGIN, y),
                    text,
                    font=face,
                    fill=colour,
                    anchor="ra",
                    direction=_direction(True),
                )
            else:
                draw.text((MARGIN, y), text, font=face, fill=colour)
            y += 64 if kind == "title" else 76
        elif kind == "line":
            draw.rectangle((MARGIN, y + 8, MARGIN + 10, y + 48), fill=LINE_COLOUR)
            draw.text((MARGIN + 24, y + 6), str(value), font=line_font, fill=LINE_COLOUR)
            y += 64
        else:
            goal, wrapped = value  # type: ignore[misc]
            y = _draw_goal(draw, y, goal, wrapped, texts, goal_font, level_font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _draw_goal(
    draw: ImageDraw.ImageDraw,
    y: int,
    goal: GoalLevel,
    wrapped: list[str],
    texts: PictureTexts,
    goal_font: Font,
    level_font: Font,
) -> int:
    card_height = 40 * len(wrapped) + 94
    draw.rounded_rectangle(
        (MARGIN, y, WIDTH - MARGIN, y + card_height), radius=18, fill=CARD, outline=EMPTY
    )
    text_y = y + 14
    for line in wrapped:
        draw.text((MARGIN + 20, text_y), line, font=goal_font, fill=INK)
        text_y += 40
    total = max(goal.levels_total, 1)
    bar_width = 460
    gap = 8
    step = (bar_width - gap * (total - 1)) / total
    bar_y = text_y + 10
    for index in range(total):
        left = MARGIN + 20 + index * (step + gap)
        reached = goal.level is not None and index < goal.level
        draw.rounded_rectangle(
            (left, bar_y, left + step, bar_y + 30), radius=8, fill=FILLED if reached else EMPTY
        )
    if goal.level is None:
        label, colour = texts.not_yet, SOFT_INK
        rtl_label = texts.rtl
    else:
        # A rubric's own level name stays as the school wrote it (Dutch); the default scale
        # is named in the reader's language.
        if goal.level_name:
            label, rtl_label = goal.level_name, False
        else:
            names = texts.default_levels
            label = names[min(goal.level, len(names)) - 1] if goal.level >= 1 else ""
            rtl_label = texts.rtl
        colour = INK
    draw.text(
        (MARGIN + 20 + bar_width + 24, bar_y + 15),
        label,
        font=level_font,
        fill=colour,
        anchor="lm",
        direction=_direction(rtl_label),
    )
    return y + card_height + 14
