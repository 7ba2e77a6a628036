"""Headless Chromium for the demo page: Debian's /usr/bin/chromium driven by playwright-core.

Playwright's own browser download is never used (it cannot be fetched on CI machines); the
Debian package is (`.ci/run` installs it). Shared by tests/demo/test_browser.py and
scripts/screenshots.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags Chromium phones home at start-up, and on machines
# without outside network those connections are refused loudly.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


class BrowserMissingError(RuntimeError):
    """No Chromium or no playwright here; the message says what to install."""


def chromium_path() -> str:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissingError(
        "no Chromium found (Debian: apt-get install chromium; or set CHROMIUM=/path/to/chrome)"
    )


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium; playwright gives every launch a fresh, temporary profile."""
    executable = chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise BrowserMissingError(
            "the playwright package is missing (pip install -e '.[dev]')"
        ) from None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser
        finally:
            await browser.close()
