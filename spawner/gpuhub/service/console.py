"""The web console: HTML pages served by the gpuhub service behind JupyterHub OAuth.

"Services → gpuhub" in the hub's menu opens the service prefix ``P``: "My GPUs" for a
browser (a client that does not ask for HTML is redirected to the API index, as before).
Admins also have ``P console/pool``, ``queue``, ``usage``, ``quotas``, ``groups`` and
``reservations``; others get a 403 page naming the scope they lack. ``P console/statements``
is everyone's (a user's own charges, anyone's for admins). Each page is the same
HTML shell: a ``#gpuhub-console`` element whose ``data-*`` attributes say which page, who
is looking and where the API is, and the bundle (``extensions/console``, built into
``static/`` at wheel build time: nothing is fetched from elsewhere), which calls the
REST API with the OAuth cookie and the ``_xsrf`` cookie as ``X-XSRFToken`` header.
"""

from __future__ import annotations

import logging
import os
from html import escape
from pathlib import Path
from typing import Any

from jupyterhub.utils import url_path_join
from tornado import web

from .base import ADMIN_SCOPE, BaseHandler

log = logging.getLogger("gpuhub.service")

#: Where the built bundle lies (console.js, console.js.map, console.css).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Admin pages: name in the URL (``P console/NAME``) and data-page → title.
ADMIN_PAGES = {
    "pool": "Pool",
    "queue": "Queue",
    "usage": "Usage",
    "quotas": "Quotas",
    "groups": "Groups",
    "reservations": "Reservations",
}

#: Pages for everyone (the API answers each person with their own): name → title.
USER_PAGES = {
    "statements": "Statements",
}

#: Only this origin: scripts, styles, API calls; no frames but the hub's own pages.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)

SHELL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · gpuhub</title>
<link rel="stylesheet" href="{css}">
<script defer src="{js}"></script>
</head>
<body>
{body}
</body>
</html>
"""


def static_url(base: str, name: str) -> str:
    """The URL of a bundle file with its content hash (``?v=``), cached for long."""
    version = web.StaticFileHandler.get_version({"static_path": str(STATIC_DIR)}, name)
    url = url_path_join(base, "static", name)
    return f"{url}?v={version}" if version else url


def secure_headers(handler: web.RequestHandler) -> None:
    """The console's security headers: a strict CSP, no sniffing, no referrer elsewhere."""
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "same-origin")


class ConsoleHandler(BaseHandler):
    """``GET`` of a console page: the HTML shell (admins only on admin pages)."""

    def initialize(self, page: str, base: str, hub: str, admin_only: bool = False) -> None:
        """``page``: the data-page name; ``base``: the service prefix; ``hub``: the hub's
        prefix (``/hub/``); ``admin_only``: 403 for users without the admin scope."""
        self.page = page
        self.base = base
        self.hub = hub
        self.admin_only = admin_only

    def set_default_headers(self) -> None:
        """Security headers on every answer, errors included."""
        secure_headers(self)

    def render_page(self, title: str, body: str, status: int = 200) -> None:
        """Finish with an HTML page of the console."""
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            SHELL.format(
                title=escape(title),
                css=escape(static_url(self.base, "console.css")),
                js=escape(static_url(self.base, "console.js")),
                body=body,
            )
        )

    def get(self) -> None:
        """The shell, or the 403 page for a non-admin on an admin page."""
        if self.admin_only and not self.is_admin:
            self.forbidden()
            return
        self.xsrf_token  # noqa: B018 - sets the _xsrf cookie the API calls send back
        attrs = {
            "page": self.page,
            "base": self.base,
            "api": url_path_join(self.base, "api/v1"),
            "user": self.user_name,
            "admin": "true" if self.is_admin else "false",
            "hub": self.hub,
        }
        data = " ".join(f'data-{k}="{escape(v)}"' for k, v in attrs.items())
        missing = "" if (STATIC_DIR / "console.js").exists() else (
            "<p class='gh-error'>The console's bundle is missing: build it with "
            "<code>npm run build</code> in extensions/console (scripts/setup does).</p>"
        )  # fmt: skip
        title = ADMIN_PAGES.get(self.page) or USER_PAGES.get(self.page, "My GPUs")
        body = (
            f'<div id="gpuhub-console" {data}>'
            f"<noscript>The gpuhub console needs JavaScript.</noscript>{missing}</div>"
        )
        self.render_page(title, body)

    def forbidden(self) -> None:
        """A 403 page naming the reason, with a way back to the user's own page."""
        what = ADMIN_PAGES.get(self.page, self.page)
        body = (
            '<main class="gh-forbidden">'
            "<h1>403: for gpuhub admins only</h1>"
            f"<p>The {escape(what)} page needs the <code>{ADMIN_SCOPE}</code> scope "
            f"(gpuhub admins); {escape(self.user_name)} does not have it.</p>"
            f'<p><a href="{escape(self.base)}">My GPUs</a> · '
            f'<a href="{escape(self.hub)}home">Hub home</a></p>'
            "</main>"
        )
        log.info("refused %s %s: not an admin", self.request.method, self.request.path)
        self.render_page("Forbidden", body, status=403)


class HomeHandler(ConsoleHandler):
    """``GET P``: "My GPUs" for browsers; other clients are sent to the API index."""

    async def admit(self) -> None:
        """Clients that ask for HTML get the page (browsers log in through the hub);
        others go to ``P api/v1`` unasked, as before the console."""
        asks_html = "text/html" in self.request.headers.get("Accept", "")
        if self.request.method in ("GET", "HEAD") and not asks_html:
            self._refuse_body_unread()
            self.redirect(url_path_join(self.base, "api/v1"))
            return
        await super().admit()


class ConsoleStaticHandler(web.StaticFileHandler):
    """The bundle; with the ``?v=`` hash its answers are cached for a long time."""

    def set_default_headers(self) -> None:
        """No sniffing, and the console's CSP (for the source map and CSS too)."""
        secure_headers(self)


def console_routes(prefix: str) -> list[tuple[Any, ...]]:
    """The console's routes under the service ``prefix`` (before the catch-all 404)."""
    base = prefix if prefix.endswith("/") else prefix + "/"
    hub = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/")
    where = {"base": base, "hub": hub}
    routes: list[tuple[Any, ...]] = [(prefix + "?", HomeHandler, {"page": "me", **where})]
    for page in ADMIN_PAGES:
        path = url_path_join(base, "console", page)
        routes.append((path, ConsoleHandler, {"page": page, "admin_only": True, **where}))
    for page in USER_PAGES:
        path = url_path_join(base, "console", page)
        routes.append((path, ConsoleHandler, {"page": page, **where}))
    routes.append((url_path_join(base, "static/(.*)"), ConsoleStaticHandler,
                   {"path": str(STATIC_DIR)}))  # fmt: skip
    return routes
