"""Logging in to the hub over HTTP as a browser does: the login form with its XSRF field."""

from __future__ import annotations

import html
import re

import httpx


def form_field(page: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}"\s+value="([^"]*)"', page)
    assert m, f"no {name} field in:\n{page[:2000]}"
    return html.unescape(m.group(1))


def log_in(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    """Load the login page and submit its form, as a browser does; no redirects followed."""
    page = browser.get("/hub/login")
    assert page.status_code == 200, page.text
    xsrf = form_field(page.text, "_xsrf")
    assert browser.cookies.get("_xsrf"), "the login page sets an _xsrf cookie"
    return browser.post(
        "/hub/login", data={"username": username, "password": password, "_xsrf": xsrf}
    )
