"""The one typeface of the bot's pictures (progress picture, class overview).

DejaVu Sans covers Latin (Turkish and Polish letters included), Cyrillic and Arabic. With
libraqm, Pillow shapes Arabic properly; without it the callers keep Arabic out of the picture.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import ImageFont, features

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def shaping_available() -> bool:
    return bool(features.check("raqm"))


@cache
def font_path(bold: bool) -> Path | None:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    return None


@cache
def font(size: int, *, bold: bool = False) -> Font:
    path = font_path(bold)
    if path is None:
        # Without DejaVu, Pillow's own scalable font still draws Latin text at this size.
        return ImageFont.load_default(size)
    layout = ImageFont.Layout.RAQM if shaping_available() else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=layout)
