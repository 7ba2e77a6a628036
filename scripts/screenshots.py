"""Screenshots of the demo page as a pupil, a teacher and a parent, for docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs a fresh demo in a temporary folder (its own port, nothing of data/ is touched), plays
each person in headless Chromium (Debian's chromium, see tests/demo/browser.py) and writes
pupil.png, teacher.png and parent.png. Run it again whenever the bot or the page changes.
Emoji look as in Telegram with Debian's fonts-noto-color-emoji installed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo import Demo  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.demo.browser import chromium  # noqa: E402

if TYPE_CHECKING:
    from playwright.async_api import Page

VIEWPORT = {"width": 420, "height": 900}
TIMEOUT_MS = 15_000

# Who, and which menu buttons to try in turn (the first one the bot offers is pressed), so the
# script keeps working while the menus grow.
SHOTS = [
    ("pupil", "Sam de Vries", ["Mijn doelen", "Mijn groep"]),
    ("teacher", "Juf Anouk", ["Mijn groepen"]),
    ("parent", "Marieke de Vries", ["Mijn kinderen"]),
]


def work_photo() -> bytes:
    """A child's drawing of a lever, to show a photo in the pupil's chat."""
    image = Image.new("RGB", (800, 600), "#fdf6e3")
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 470, 800, 600), fill="#93c47d")
    pen.polygon([(380, 470), (420, 470), (400, 400)], fill="#8d6e63")
    pen.line((120, 330, 680, 470), fill="#5d4037", width=14)
    pen.rectangle((110, 250, 200, 330), fill="#e06666")
    pen.ellipse((600, 360, 700, 460), fill="#6fa8dc")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


async def press_first(page: Page, labels: list[str]) -> None:
    for label in labels:
        button = page.locator("#reply-keyboard .reply-button", has_text=label)
        if await button.count():
            before = await page.locator(".message.bot").count()
            await button.first.click()
            await page.wait_for_function(
                "(n) => document.querySelectorAll('.message.bot').length > n", arg=before
            )
            return
    raise RuntimeError(f"none of {labels} is in the bot's menu")


async def make(out: Path) -> list[Path]:
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot_token=None,
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'portfolio.db'}",
            media_dir=Path(folder) / "media",
            _env_file=None,  # type: ignore[call-arg]
        )
        photo = Path(folder) / "hefboom.jpg"
        photo.write_bytes(work_photo())
        demo = Demo(settings, keep=False, port=0, handle_signals=False)
        await demo.start()
        try:
            async with chromium() as browser:
                context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=2)
                context.set_default_timeout(TIMEOUT_MS)
                for role, name, buttons in SHOTS:
                    page = await context.new_page()
                    await page.goto(demo.url)
                    person = page.locator(f".person[data-role={role}]", has_text=name)
                    await person.locator(".person-open").click()
                    await page.locator(".message.bot").first.wait_for()
                    if role == "pupil":
                        # A photo of work first, then the screen the shot is about.
                        await page.locator("#photo-input").set_input_files(photo)
                        await page.wait_for_function(
                            "() => [...document.querySelectorAll('.message.user img')]"
                            ".some((img) => img.complete && img.naturalWidth > 0)"
                        )
                    await press_first(page, buttons)
                    if role == "teacher":
                        await page.locator("#clock-toggle").click()
                        await page.locator("[data-move='next school day 15:30']").click()
                        await page.locator("#clock-moved").wait_for()
                    # Let the last answer land and the chat scroll to its end.
                    await page.wait_for_timeout(1200)
                    await page.evaluate("document.getElementById('toast').hidden = true")
                    target = out / f"{role}.png"
                    await page.screenshot(path=str(target))
                    written.append(target)
                    await page.close()
                await context.close()
        finally:
            await demo.stop()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(make(args.out)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
