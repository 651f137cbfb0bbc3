"""A person logs in to the embedded default, with the real authenticator and a browser's
cookies, and reaches the gpuhub API through JupyterHub's OAuth. The hub runs as a person
would start it: not quiet, so it prints where it is and how to log in.
"""

from __future__ import annotations

import re
import stat

import httpx
import pytest

from tests.support import http
from tests.support.hub import Hub
from tests.support.login import form_field, log_in

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
LOGIN_COOKIE = "jupyterhub-hub-login"


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The embedded default as a person starts it (GPUHUB_QUIET unset: the banner shows)."""
    h = Hub(tmp_path_factory.mktemp("login"), env={"GPUHUB_QUIET": ""})
    try:
        h.start()
        yield h
    finally:
        h.stop()


@pytest.fixture
def browser(hub):
    """A fresh cookie jar, like a new private browser window."""
    with http.client(base_url=hub.url, headers=BROWSER, timeout=30) as client:
        yield client


# -- helpers ---------------------------------------------------------------------------


def open_in_browser(browser: httpx.Client, url: str) -> tuple[httpx.Response, bool]:
    """GET ``url`` following redirects; if the hub asks to authorize the service, agree
    (as a person would click *Authorize*). Returns the final response and whether it asked."""
    r = browser.get(url, follow_redirects=True)
    asked = "oauth2/authorize" in str(r.url) and "Authorize access" in r.text
    if asked:
        scopes = re.findall(r'name="scopes"\s+value="([^"]*)"', r.text)
        r = browser.post(
            str(r.url),
            data={"_xsrf": form_field(r.text, "_xsrf"), "scopes": scopes},
            follow_redirects=True,
        )
    return r, asked


# -- tests -----------------------------------------------------------------------------


def test_startup_prints_where_and_how_to_log_in(hub):
    creds = hub.credentials()
    path = hub.state / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(creds) == {"admin_user", "admin_password", "user_password"}
    assert len(creds["admin_password"]) >= 32 and len(creds["user_password"]) >= 12
    log = hub.log_path.read_text(errors="replace")
    assert log.count(f"gpuhub is starting on {hub.url}/hub/login") == 1  # the hub, not the service
    assert f"admin:  user '{creds['admin_user']}', password {creds['admin_password']}" in log
    assert f"users:  any user name, password {creds['user_password']}" in log
    assert f"(credentials are kept in {path})" in log
    assert "The GPU pool is simulated." in log
    # the embedded default (local servers): Ctrl-C stops them too
    assert "Ctrl-C stops the hub and users' servers, and releases their GPU leases." in log


def test_admin_logs_in_with_the_generated_password(hub, browser):
    creds = hub.credentials()
    r = log_in(browser, creds["admin_user"], creds["admin_password"])
    assert r.status_code == 302, r.text
    assert r.headers["location"].startswith("/hub/")
    assert browser.cookies.get(LOGIN_COOKIE) and browser.cookies.get("jupyterhub-session-id")
    home = browser.get("/hub/home")
    assert home.status_code == 200
    assert creds["admin_user"] in home.text and "Logout" in home.text
    assert browser.get("/hub/admin").status_code == 200  # and is a hub admin


def test_a_wrong_password_gets_the_login_page_with_an_error(hub, browser):
    creds = hub.credentials()
    for user, password in [
        (creds["admin_user"], "not-the-password"),
        (creds["admin_user"], creds["user_password"]),  # the users' password is not the admin's
        ("erin", "not-the-password"),
    ]:
        r = log_in(browser, user, password)
        assert r.status_code == 403, (user, r.status_code)
        assert "Invalid username or password" in r.text
        assert 'name="password"' in r.text  # the login form again
        assert browser.cookies.get(LOGIN_COOKIE) is None
    home = browser.get("/hub/home")
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]


def test_a_user_logs_in_and_reaches_the_gpuhub_api_in_the_browser(hub, browser):
    creds = hub.credentials()
    r = log_in(browser, "dora", creds["user_password"])
    assert r.status_code == 302, r.text
    assert browser.cookies.get(LOGIN_COOKIE)
    home = browser.get("/hub/home")
    assert home.status_code == 200 and "dora" in home.text

    r, _ = open_in_browser(browser, "/services/gpuhub/api/v1/me")
    assert r.status_code == 200, (r.url, r.text[:1000])
    assert str(r.url).endswith("/services/gpuhub/api/v1/me")
    assert r.headers["content-type"].startswith("application/json")
    me = r.json()
    assert me["name"] == "dora" and me["admin"] is False
    pool = browser.get("/services/gpuhub/api/v1/pool")  # the service's own cookie now
    assert pool.status_code == 200 and pool.json()["simulated"] is True
    # the service cookie authenticates reads only: writes need a token (or the XSRF token)
    r = browser.post("/services/gpuhub/api/v1/leases", json={"shape": {"kind": "gpu"}})
    assert r.status_code in (401, 403), r.text


def test_the_admin_is_a_gpuhub_admin_in_the_browser(hub, browser):
    creds = hub.credentials()
    assert log_in(browser, creds["admin_user"], creds["admin_password"]).status_code == 302
    r, _ = open_in_browser(browser, "/services/gpuhub/api/v1/me")
    assert r.status_code == 200, (r.url, r.text[:1000])
    assert r.json()["name"] == creds["admin_user"] and r.json()["admin"] is True
    quotas = browser.get("/services/gpuhub/api/v1/quotas")
    assert quotas.status_code == 200 and quotas.json()["default_user_quota"]["max_units"] == 2


def test_browsers_not_logged_in_are_sent_to_log_in(hub, browser):
    r = browser.get("/services/gpuhub/api/v1/me", follow_redirects=True)
    assert r.status_code == 200 and "/hub/login" in str(r.url)
    assert 'name="password"' in r.text
    # API clients without a token still get a JSON 401, not a login page
    api = http.get(f"{hub.api}/me", headers={"Accept": "application/json"}, timeout=10)
    assert api.status_code == 401 and api.json()["error"] == "unauthenticated"


def test_the_hub_does_not_ask_to_authorize_its_own_service(hub, browser):
    creds = hub.credentials()
    assert log_in(browser, "frank", creds["user_password"]).status_code == 302
    r, asked = open_in_browser(browser, "/services/gpuhub/api/v1/me")
    assert r.status_code == 200 and r.json()["name"] == "frank"
    assert not asked
