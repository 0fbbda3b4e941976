"""Playwright driving Debian's Chromium against pytest-django's live server."""

import os
from pathlib import Path

import pytest

from tests.e2e.gakunin import IdPServer, federation_start
from tests.e2e.screenshots import Screenshots, screenshot_folder

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls made by
# the test itself (fixtures, assertions) are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("KURA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: bin/test installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Screenshots:
    """Screenshots for reviewing pages by eye, kept under var/screenshots/ when
    KURA_SCREENSHOTS asks for them (tests/e2e/screenshots.py); off otherwise."""
    try:
        return Screenshots(screenshot_folder(os.environ.get("KURA_SCREENSHOTS")))
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def gakunin(live_server, settings, tmp_path):
    """A GakuNin test federation (tests/e2e/gakunin.py) with Kura as its SP: the returned
    server is Example University's IdP, answering for its ``person``."""
    server = IdPServer()
    server.start()
    try:
        federation_start(server, live_server.url, settings, tmp_path)
        yield server
    finally:
        server.stop()
