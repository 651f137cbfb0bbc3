"""Real-browser helpers: Debian's chromium driven by Playwright (never ``playwright
install``), and logging in through the hub's login form.

The fixtures built on them (``artifacts``, ``shoot``, ``blank``) are in ``conftest.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.hub import REPO, Hub

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Where the docs' screenshots live (written by tests when GPUHUB_DOC_SCREENSHOTS=1).
DOCS_IMAGES = REPO / "docs" / "how-to" / "images"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, closed at the end."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing; scripts/setup test installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, width: int = 1400, height: int = 900) -> Page:
    """A page in a fresh browser context (its own cookies)."""
    return browser.new_context(viewport={"width": width, "height": height}).new_page()


def log_in(page: Page, hub: Hub, user: str) -> Page:
    """Log ``user`` in through the hub's login form: the generated admin with the admin
    password, anyone else with the generated user password."""
    creds = hub.credentials()
    admin = user == creds["admin_user"]
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", creds["admin_password" if admin else "user_password"])
    page.click("[type=submit]")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=20000)
    return page
