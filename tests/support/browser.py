"""Real-browser helpers: Debian's chromium driven by Playwright (never ``playwright
install``), logging in through the hub's login form, and a JupyterLab outside any hub.

The fixtures built on them (``artifacts``, ``shoot``, ``blank``) are in ``conftest.py``.
``blank`` pages come from a chromium with a profile of its worker's (:func:`cached_chromium`):
JupyterLab's scripts are compiled once per worker, not once per test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, BrowserType, Page, sync_playwright

from tests.support import http
from tests.support.hub import REPO, Hub, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 900}
#: What :func:`fresh_page` clears of each origin: all of its storage but the HTTP cache
STORAGE = "cookies,local_storage,indexeddb,websql,service_workers,cache_storage,file_systems"
#: Where the docs' screenshots live (written by tests when GPUHUB_DOC_SCREENSHOTS=1).
DOCS_IMAGES = REPO / "docs" / "how-to" / "images"


@contextmanager
def _chromium() -> Iterator[BrowserType]:
    """Playwright's driver, for Debian's chromium."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing; scripts/setup test installs Debian's chromium")
    with sync_playwright() as p:
        yield p.chromium


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, closed at the end."""
    with _chromium() as kind, closing(kind.launch(executable_path=CHROMIUM, args=ARGS)) as b:
        yield b


@contextmanager
def cached_chromium(profile: Path) -> Iterator[BrowserContext]:
    """Debian's chromium, headless, on the profile folder ``profile``: one browser
    context whose HTTP cache and V8 code cache outlive it, so that the next browser on
    the same folder loads JupyterLab's scripts without compiling them again (about
    1.5 CPU-seconds of each JupyterLab page load). Closed at the end; one browser at a
    time per folder. Pages come from :func:`fresh_page`."""
    with _chromium() as kind:
        context = kind.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, viewport=VIEWPORT
        )
        with closing(context):
            yield context


@contextmanager
def fresh_page(context: BrowserContext) -> Iterator[Page]:
    """A page of a :func:`cached_chromium` context that starts as a fresh context's does:
    no cookies, and no storage of any origin it visits (both cleared again at the end,
    for the next test). Only the caches of scripts and styles are kept."""
    context.clear_cookies()
    before = set(context.pages)
    origins: set[str] = set()

    def seen(frame) -> None:
        url = urlsplit(frame.url)
        if url.scheme in ("http", "https"):
            origins.add(f"{url.scheme}://{url.netloc}")

    def watch(page: Page) -> None:
        page.on("framenavigated", seen)

    context.on("page", watch)  # this page, and any a test's clicks open
    page = context.new_page()
    try:
        yield page
    finally:
        context.remove_listener("page", watch)
        cdp = context.new_cdp_session(page)
        for origin in sorted(origins):
            cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": STORAGE})
        cdp.detach()
        for opened in set(context.pages) - before:
            opened.close()
        context.clear_cookies()


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


@contextmanager
def standalone_lab(folder: Path, *, extension: bool = True) -> Iterator[str]:
    """A JupyterLab of this environment outside any hub (no gpuhub service), with the
    gpuhub server extension turned off unless ``extension``; its URL with the token.
    Stopped at the end."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "JUPYTER"))}
    env.update(HOME=str(folder), JUPYTER_CONFIG_DIR=str(folder / "config"))
    (folder / "config").mkdir(exist_ok=True)
    if not extension:
        (folder / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_gpuhub": False}}})
        )
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1"]
    cmd += [f"--port={port}", f"--IdentityProvider.token={token}", f"--notebook-dir={folder}"]
    log = open(folder / "lab.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, (folder / "lab.log").read_text(errors="replace")[-3000:]
            try:
                return http.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=60, step=0.25)
        yield f"{url}/lab?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
