"""The demo page in headless Chromium: log in as a pupil, talk to the bot with buttons, send a
photo and a file from disk, receive a photo and a document, and a teacher in a second tab.

Skipped when Chromium or playwright is missing on a developer's machine; on CI (CI=true,
where .ci/run installs Debian's chromium) a missing browser fails instead.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.types import BufferedInputFile
from PIL import Image, ImageDraw

from bot.demo import Demo
from tests.demo.browser import BrowserMissingError, chromium, chromium_path
from tests.demo.test_demo_run import demo_settings

pytestmark = pytest.mark.timeout(60)

TIMEOUT_MS = 10_000
PHOTO_LOADED = """(selector) => [...document.querySelectorAll(selector)].some(
    (img) => img.complete && img.naturalWidth > 0)"""


def require_browser() -> None:
    try:
        chromium_path()
        import playwright.async_api  # noqa: F401
    except (BrowserMissingError, ImportError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {error}")
        pytest.skip(f"no headless browser here: {error}")


def drawing() -> bytes:
    image = Image.new("RGB", (640, 480), "#f4d35e")
    pen = ImageDraw.Draw(image)
    pen.ellipse((180, 100, 460, 380), fill="#ee964b")
    pen.rectangle((40, 40, 120, 440), fill="#0d3b66")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    require_browser()
    running = Demo(demo_settings(tmp_path), keep=False, port=0, handle_signals=False)
    await running.start()
    yield running
    await running.stop()


async def test_a_pupil_and_a_teacher_use_the_bot_in_the_browser(demo: Demo, tmp_path: Path):
    photo = tmp_path / "tekening.jpg"
    photo.write_bytes(drawing())
    notes = tmp_path / "verslag.txt"
    notes.write_text("Mijn verslag over krachten.\n", encoding="utf-8")

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 420, "height": 860})
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(demo.url)

        # The picker shows everyone with their role; log in as the first pupil.
        sam = page.locator(".person[data-role=pupil]", has_text="Sam de Vries")
        await sam.locator(".role", has_text="pupil").wait_for()
        assert await page.locator(".person[data-role=teacher]").count() == 2
        assert await page.locator(".person[data-role=parent]").count() == 8
        await sam.locator(".person-open").click()
        await page.locator("#me", has_text="Sam de Vries").wait_for()
        await page.locator(".message.bot", has_text="Sam de Vries").wait_for()

        # A dialogue with buttons: the reply keyboard, an inline keyboard, an edited message.
        await page.locator("#reply-keyboard .reply-button", has_text="Taal").click()
        question = page.locator(".message.bot", has=page.locator(".inline-button"))
        await question.wait_for()
        await question.locator(".inline-button", has_text="English").click()
        await page.locator(".message.bot .edited").first.wait_for()
        await page.locator(".message.bot", has_text="English").first.wait_for()
        await page.locator("#reply-keyboard .reply-button", has_text="Help").wait_for()

        # Typing works as in Telegram: the message appears, the bot answers in English now.
        await page.locator("#text").fill("/help")
        await page.keyboard.press("Enter")
        await page.locator(".message.user", has_text="/help").wait_for()
        await page.locator(".message.bot", has_text="/start").last.wait_for()

        # A photo from disk: shown in the chat as the sandbox stored it, and the bot answers.
        bot_messages = await page.locator(".message.bot").count()
        await page.locator("#photo-input").set_input_files(photo)
        await page.wait_for_function(PHOTO_LOADED, arg=".message.user img.photo")
        await page.wait_for_function(
            "(count) => document.querySelectorAll('.message.bot').length > count",
            arg=bot_messages,
        )
        # And a file.
        await page.locator("#file-input").set_input_files(notes)
        await page.locator(".message.user .document", has_text="verslag.txt").wait_for()

        # What the bot sends arrives live: a photo and a document.
        assert demo.app is not None
        sam_id = int(await sam.get_attribute("data-user-id") or 0)
        await demo.app.bot.send_photo(
            sam_id, BufferedInputFile(drawing(), "werk.jpg"), caption="Je werk van vandaag"
        )
        await demo.app.bot.send_document(
            sam_id, BufferedInputFile(b"%PDF-1.4\n", "overzicht.pdf"), caption="Overzicht"
        )
        await page.wait_for_function(PHOTO_LOADED, arg=".message.bot img.photo")
        document = page.locator(".message.bot .document", has_text="overzicht.pdf")
        await document.wait_for()
        assert "/files/" in (await document.get_attribute("href") or "")

        # A second tab is someone else, talking to the same bot at the same time.
        teacher_tab = await context.new_page()
        await teacher_tab.goto(demo.url)
        anouk = teacher_tab.locator(".person[data-role=teacher]", has_text="Juf Anouk")
        await anouk.locator(".person-open").click()
        await teacher_tab.locator("#reply-keyboard .reply-button", has_text="groepen").click()
        await teacher_tab.locator(".message.bot", has_text="Groep 6a").last.wait_for()
        assert await page.locator("#me", has_text="Sam de Vries").count() == 1

        assert errors == []
        await context.close()
