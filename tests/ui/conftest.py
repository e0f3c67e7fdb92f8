"""Browser fixtures: Playwright driving Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, Request, async_playwright

#: Debian's `chromium` package; Playwright is told to use it instead of downloading one.
CHROMIUM = "/usr/bin/chromium"


@dataclass
class PageWatch:
    """What a page did besides drawing: dialogs it opened, errors it logged, URLs it asked."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    async def on_dialog(self, dialog: Dialog) -> None:
        """Record a dialog (alert, confirm...) and dismiss it."""
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_request(self, request: Request) -> None:
        """Record a request the page made."""
        self.requests.append(request)

    def on_console(self, message: ConsoleMessage) -> None:
        """Record console errors (CSP violations are reported there)."""
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium; fails (never skips) saying what to install when it is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium "
            "(the browser tests drive Debian's Chromium and never download one)",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def watch() -> PageWatch:
    """The record of the test's page."""
    return PageWatch()


@pytest.fixture
async def page(browser: Browser, watch: PageWatch) -> AsyncIterator[Page]:
    """A fresh page (its own context: no shared storage) whose dialogs and errors are kept."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    opened.on("dialog", watch.on_dialog)
    opened.on("console", watch.on_console)
    opened.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
    opened.on("request", watch.on_request)
    try:
        yield opened
    finally:
        await context.close()
