"""Small real images made with Pillow for tests."""

from __future__ import annotations

import io

from PIL import Image


def small_jpeg(size: tuple[int, int] = (64, 48), color: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()
