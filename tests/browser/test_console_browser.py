"""The web console in a real browser against a real hub: "My GPUs" for a user (spot
leases and a preemption notice included), the pool for an admin (release with a reason),
403 pages for non-admins, XSRF protection of cookie-authenticated changes, and the
service's headers (CSP, static caching).

The hub's ledger holds two weeks of alice's history before this week
(``tests/support/seed.py``: it never spends this week's budgets, whatever the day). Debian's chromium driven by Playwright (never ``playwright install``).
Screenshots go to ``$GPUHUB_TEST_ARTIFACTS`` (default: a temporary folder) and, with
``GPUHUB_DOC_SCREENSHOTS=1``, to docs/how-to/images/ for the docs.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from gpuhub.service.console import CSP
from playwright.sync_api import Browser, Page, expect

from tests.support import http
from tests.support.browser import log_in, new_page
from tests.support.hub import Hub, wait_for
from tests.support.seed import seed_alice_history

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

SPEC = "sim-node-1: 2xH100-80GB[nvlink], 1xA100-40GB[mig=7x1g.5gb]; sim-node-2: 1xL4-24GB[shared=4]"
P = "/services/gpuhub/"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
REASON = "blocking the lab"


def _report(client: httpx.Client, lease: dict, pct: float, idle_min: float = 0) -> None:
    """Report the lease's GPU activity as its server would."""
    last = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=idle_min)
    body = {
        "window_s": 60, "memory_used_mb": 20000, "utilization_mean_pct": pct,
        "utilization_max_pct": pct, "last_active_at": last.isoformat(),
        "devices": [{"uuid": d["uuid"], "utilization_mean_pct": pct, "utilization_max_pct": pct,
                     "memory_used_mb": 20000} for d in lease["devices"]],
    }  # fmt: skip
    r = client.post(f"/leases/{lease['id']}/activity", json=body)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A hub with alice (group cs101, with a quota), bob and the admin: alice holds a
    busy GPU and waits for another, bob holds an idle GPU and a MIG slice. Spot leases may
    be preempted at once (no minimum runtime)."""
    env = {"GPUHUB_SIMULATED_SPEC": SPEC, "GPUHUB_SPOT_MIN_RUNTIME_S": "0"}
    h = Hub(tmp_path_factory.mktemp("console"), env=env)
    seed_alice_history(h.state / "gpuhub.sqlite", SPEC, time.time())
    clients: list[httpx.Client] = []
    try:
        h.start()
        admin_name = h.credentials()["admin_user"]
        tokens = {
            "alice": h.add_user("alice", groups=["cs101"]),
            "bob": h.add_user("bob"),
            "admin": h.add_user(admin_name),
        }
        ns = SimpleNamespace(hub=h, admin_name=admin_name, tokens=tokens)
        for name, token in tokens.items():
            clients.append(h.client(token))
            setattr(ns, name, clients[-1])
        quota = {"max_units": 4, "gpu_hours": 100, "credits": 1000, "period": "week"}
        assert ns.admin.put("/quotas/groups/cs101", json=quota).status_code == 200

        def lease(client: httpx.Client, status: int, **body) -> dict:
            r = client.post("/leases", json=body)
            assert r.status_code == 201 and r.json()["status"] == (
                "active" if status else "queued"
            ), r.text
            return r.json()

        ns.busy = lease(ns.alice, 1, shape={"kind": "gpu"}, hours=3, label="training")
        ns.idle = lease(ns.bob, 1, shape={"kind": "gpu"}, hours=2)
        ns.mig = lease(ns.bob, 1, shape={"kind": "mig", "profile": "1g.5gb"})
        ns.queued = lease(ns.alice, 0, shape={"kind": "gpu"}, hours=1)
        _report(ns.alice, ns.busy, 73)
        _report(ns.bob, ns.idle, 0, idle_min=42)
        yield ns
    finally:
        for client in clients:
            client.close()
        h.stop()


@pytest.fixture
def login(w: SimpleNamespace, module_browser: Browser) -> Iterator[Callable[[str], Page]]:
    """A new browser window (a context of its own) logged in to the hub as a user (or the
    admin); the windows close at the end of the test."""
    pages: list[Page] = []

    def open_as(user: str) -> Page:
        pages.append(new_page(module_browser, 1280))
        return log_in(pages[-1], w.hub, user)

    try:
        yield open_as
    finally:
        for page in pages:
            page.context.close()


# -- the service's answers, without a browser -----------------------------------------


def test_pages_headers_and_static_files(w: SimpleNamespace) -> None:
    """P is the console for browsers and the API index for other clients; admin pages are
    403 pages for others; every page has the strict CSP; the bundle is cached for long."""
    base = w.hub.url + P
    alice = {"Authorization": f"token {w.tokens['alice']}"}
    admin = {"Authorization": f"token {w.tokens['admin']}"}
    # a client that does not ask for HTML: the API index, as before the console
    r = http.get(base, headers=alice)
    assert r.status_code == 302 and r.headers["location"] == P + "api/v1"
    assert http.get(base, follow_redirects=True).json()["service"] == "gpuhub"
    # a browser without the service's cookie: through the hub's login
    r = http.get(base + "console/pool", headers=HTML)
    assert r.status_code == 302 and "/oauth2/authorize" in r.headers["location"]

    r = http.get(base, headers={**HTML, **alice})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert 'data-page="me"' in r.text and 'data-user="alice"' in r.text
    assert 'data-admin="false"' in r.text and f'data-api="{P}api/v1"' in r.text
    assert 'data-hub="/hub/"' in r.text

    r = http.get(base + "console/pool", headers={**HTML, **alice})
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert "custom:gpuhub:admin" in r.text and "alice does not have it" in r.text
    for page in ("pool", "queue", "usage", "quotas", "groups", "reservations"):
        r = http.get(base + f"console/{page}", headers={**HTML, **admin})
        assert r.status_code == 200 and f'data-page="{page}"' in r.text, page
        assert 'data-admin="true"' in r.text

    js = re.search(r'<script defer src="([^"]+)"', r.text).group(1)
    css = re.search(r'<link rel="stylesheet" href="([^"]+)"', r.text).group(1)
    for url, kind in ((js, "javascript"), (css, "text/css")):
        assert re.search(r"\?v=[0-9a-f]{32,}$", url), url
        r = http.get(w.hub.url + url)
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert int(re.search(r"max-age=(\d+)", r.headers["cache-control"]).group(1)) >= 365 * 86400
        assert r.headers["content-security-policy"] == CSP
    assert "Chart" in http.get(w.hub.url + js).text  # Chart.js is in the bundle itself
    r = http.get(w.hub.url + js.split("?")[0])  # unversioned: revalidated, not kept
    assert r.status_code == 200 and "max-age" not in r.headers.get("cache-control", "")
    assert http.get(base + "static/nothing.js").status_code == 404


# -- in the browser ---------------------------------------------------------------------


def test_a_user_sees_my_gpus_from_the_services_menu(
    w: SimpleNamespace, login: Callable[[str], Page], shoot: Callable[[Page, str], None]
) -> None:
    page = login("alice")
    page.goto(f"{w.hub.url}/hub/home")
    page.get_by_role("button", name="Services").click()
    link = page.locator("a.dropdown-item", has_text="gpuhub")
    assert link.get_attribute("href") == P
    link.click()
    page.wait_for_url(f"{w.hub.url}{P}", timeout=20000)
    main = page.locator("#gh-main")
    expect(main.locator("h1")).to_have_text("My GPUs", timeout=20000)
    # the lease: what, where, GPU-hours, activity
    lease = main.locator(".gh-table tbody tr").first
    expect(lease).to_contain_text(f"#{w.busy['id']}", timeout=20000)
    expect(lease).to_contain_text("1 GPU")
    expect(lease).to_contain_text("sim-node-1")
    expect(lease).to_contain_text("simulated")
    expect(lease).to_contain_text("73% busy")
    # the queued request: position, reason, estimate
    waiting = w.alice.get(f"/leases/{w.queued['id']}").json()["waiting"]
    card = main.locator(f".gh-queued[data-lease='{w.queued['id']}']")
    expect(card).to_contain_text("position 1")
    expect(card.locator(".gh-reason")).to_have_text(waiting["message"])
    expect(card).to_contain_text(waiting["estimate"]["message"])
    # quota bars, own and the group's, with the reset time
    expect(main.locator(".gh-quota")).to_have_count(2)
    mine = main.locator(".gh-quota[data-kind=user]")
    expect(mine).to_contain_text("2 of 2 GPUs (1 of them queued)")
    expect(mine).to_contain_text("resets")
    group = main.locator(".gh-quota[data-kind=group][data-name=cs101]")
    expect(group).to_contain_text("of 100 h")
    expect(group).to_contain_text("of 1000 credits")  # the credits budget, under one period
    expect(group.locator(".gh-muted.gh-small")).to_have_count(1)
    # one rounding rule: GPU-hours that are not zero never read "0" (alice's lease began
    # seconds ago), and at most two decimals
    hours = lease.locator("td").nth(4).inner_text()
    assert re.fullmatch(r"< 0\.01|\d+(\.\d\d?)?", hours) and hours != "0", hours
    used = group.locator(".gh-bar-label").nth(1).inner_text()
    assert re.fullmatch(r"(< 0\.01|\d+(\.\d\d?)?) of 100 h", used) and used != "0 of 100 h", used
    # what alice may ask for now (GET /me/options): the models behind each shape, and the
    # scheduler's answer for each
    offered = main.locator(".gh-options .gh-shapes tbody tr")
    expect(offered.filter(has_text="1 whole GPU")).to_contain_text("H100-80GB")
    expect(offered.filter(has_text="1 whole GPU")).to_contain_text("credits/h")  # its price
    expect(offered.filter(has_text="a MIG 1g.5gb slice")).to_contain_text("A100-40GB")
    expect(offered.filter(has_text="a shared GPU")).to_contain_text("L4-24GB")
    # and the server profiles open to her: the CPU-only one says it has no GPU and is free
    profiles = main.locator(".gh-options .gh-profiles tbody tr")
    expect(profiles.filter(has_text="1 GPU")).to_contain_text("1 whole GPU (H100-80GB)")
    expect(profiles.filter(has_text="No GPU (CPU only)")).to_contain_text("quota-free")
    # the usage chart, drawn by Chart.js from the ledger's history
    expect(main).to_contain_text("GPU-hours in the last 30 days")
    drawn = page.wait_for_function(
        "() => { const c = document.querySelector('.gh-chart canvas');"
        " return c && c.width > 0 && c.toDataURL().length > 5000; }",
        timeout=20000,
    )
    assert drawn
    # and says in words what it shows: its name, its days and its axis
    described = main.locator(".gh-chart canvas").get_attribute("aria-label") or ""
    assert re.fullmatch(
        r"Your GPU-hours per day, \d\d-\d\d to \d\d-\d\d; axis 0(, [\d.]+)+", described
    )
    expect(main).to_contain_text("No jobs")
    # no admin pages for alice: her own GPUs and her own statement
    expect(page.locator(".gh-nav a")).to_have_text(["My GPUs", "Statements"])
    shoot(page, "console-me")

    r = page.goto(f"{w.hub.url}{P}console/pool")
    assert r is not None and r.status == 403
    expect(page.locator("h1")).to_contain_text("for gpuhub admins only")


def test_a_month_of_a_few_gpu_seconds_has_an_axis_that_reads(
    w: SimpleNamespace, login: Callable[[str], Page]
) -> None:
    """bob's leases began seconds ago: his chart's axis steps by 0.01, not by values that
    all round to "< 0.01"."""
    page = login("bob")
    page.goto(f"{w.hub.url}{P}")
    chart = page.locator("#gh-main .gh-chart canvas")
    expect(chart).to_have_attribute("aria-label", re.compile("; axis "), timeout=20000)
    axis = (chart.get_attribute("aria-label") or "").partition("; axis ")[2].split(", ")
    assert axis[:2] == ["0", "0.01"] and len(set(axis)) == len(axis), axis


def test_cookie_changes_need_the_xsrf_token(
    w: SimpleNamespace, login: Callable[[str], Page]
) -> None:
    """A cookie-authenticated DELETE without the X-XSRFToken header is refused and changes
    nothing; the console's own call (with it) goes through."""
    r = w.bob.post("/leases", json={"shape": {"kind": "shared"}})
    assert r.status_code == 201, r.text
    lease = r.json()["id"]
    page = login("bob")
    page.goto(f"{w.hub.url}{P}")
    expect(page.locator("#gh-main h1")).to_have_text("My GPUs", timeout=20000)
    call = """async ([url, xsrf]) => {
        const token = document.cookie.split('; ').find(c => c.startsWith('_xsrf='));
        const headers = xsrf && token ? {'X-XSRFToken': decodeURIComponent(token.slice(6))} : {};
        const r = await fetch(url, {method: 'DELETE', credentials: 'same-origin', headers});
        return [r.status, await r.text()];
    }"""
    url = f"{P}api/v1/leases/{lease}?reason=test"
    status, text = page.evaluate(call, [url, False])
    assert status == 401, text  # the cookie is not accepted without the token
    assert w.bob.get(f"/leases/{lease}").json()["status"] == "active"
    status, text = page.evaluate(call, [url, True])
    assert status == 200, text
    assert w.bob.get(f"/leases/{lease}").json()["end_reason"] == "released by bob: test"


def test_an_admin_sees_the_pool_and_releases_a_lease_with_a_reason(
    w: SimpleNamespace, login: Callable[[str], Page], shoot: Callable[[Page, str], None]
) -> None:
    page = login(w.admin_name)
    page.goto(f"{w.hub.url}{P}console/queue")
    row = page.locator(".gh-table tbody tr", has_text="alice")
    expect(row).to_contain_text(f"lease #{w.queued['id']}", timeout=20000)
    expect(row.locator(".gh-reason")).to_contain_text("pool busy")
    shoot(page, "console-queue")

    # lab hours for cs101 from tomorrow: the pool marks the reserved MIG slices
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(
        days=1
    )
    lab = {"group": "cs101", "shape": {"kind": "mig", "profile": "1g.5gb"}, "count": 2,
           "start": start.isoformat(), "end": (start + dt.timedelta(hours=2)).isoformat(),
           "repeat": "weekly"}  # fmt: skip
    r = w.admin.post("/reservations", json=lab)
    assert r.status_code == 201, r.text
    zone = r.json()["timezone"]
    page.goto(f"{w.hub.url}{P}console/pool")
    expect(page.locator(".gh-nav a")).to_have_count(8)
    # the window's date, time and zone as the Reservations page writes them
    local = start.astimezone(ZoneInfo(zone))
    year = f" {local.year}" if local.year != dt.datetime.now(ZoneInfo(zone)).year else ""
    at = local.strftime(f"%a %-d %b{year} %H:%M")
    reserved = page.locator(".gh-tag-reserved-later")
    expect(reserved).to_have_count(2, timeout=20000)
    expect(reserved.first).to_have_text(f"reserved for cs101 from {at} {zone}")
    # what is free, in words: every whole GPU is held, one of the seven slices
    expect(page.locator(".gh-pool-free")).to_have_text(
        "0 of 2 GPUs, 6 of 7 MIG slices and 4 of 4 shared seats free"
    )
    busy = page.locator(f".gh-slot[data-lease='{w.busy['id']}']")
    expect(busy).to_contain_text("alice", timeout=20000)
    expect(busy).to_contain_text("73% busy")
    expect(page.locator(f".gh-slot[data-lease='{w.idle['id']}']")).to_contain_text("idle 4")
    expect(page.locator(f".gh-slot[data-lease='{w.mig['id']}']")).to_contain_text("bob")
    expect(page.locator(".gh-gpu")).to_have_count(4)
    expect(page.locator(".gh-lead")).to_contain_text("simulated pool")
    shoot(page, "console-pool")

    # released without a reason: refused in a banner, which the release then takes down
    # at once (not at the next refresh, ten seconds on)
    busy.locator("[data-action=end]").click()
    busy.locator("button[type=submit]").click()
    banner = page.locator("#gh-main > .gh-error")
    expect(banner).to_contain_text("Give a reason")
    busy.locator("input[name=reason]").fill(REASON)
    busy.locator("button[type=submit]").click()
    expect(page.locator(f".gh-slot[data-lease='{w.busy['id']}']")).to_have_count(0)
    expect(banner).to_have_count(0, timeout=2000)
    ended = w.admin.get(f"/leases/{w.busy['id']}").json()
    assert ended["status"] == "released"
    assert ended["end_reason"] == f"released by {w.admin_name}: {REASON}"
    # the GPU went to alice's queued request
    granted = page.locator(f".gh-slot[data-lease='{w.queued['id']}']")
    expect(granted).to_contain_text("alice", timeout=20000)

    # a queued request cancelled from the queue page, with a reason
    wait = w.alice.post("/leases", json={"shape": {"kind": "gpu"}}).json()
    assert wait["status"] == "queued", wait
    page.goto(f"{w.hub.url}{P}console/queue")
    end = page.locator(f".gh-end[data-lease='{wait['id']}']")
    end.locator("[data-action=end]").click(timeout=20000)
    end.locator("input[name=reason]").fill("asked twice")
    end.locator("button[type=submit]").click()
    expect(page.locator(f".gh-end[data-lease='{wait['id']}']")).to_have_count(0, timeout=20000)
    cancelled = w.alice.get(f"/leases/{wait['id']}").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["end_reason"] == f"released by {w.admin_name}: asked twice"


def test_my_gpus_tags_spot_leases_and_warns_of_a_preemption(
    w: SimpleNamespace, login: Callable[[str], Page], shoot: Callable[[Page, str], None]
) -> None:
    """carol fills the shared L4 with spot leases; bob's guaranteed request for a seat
    takes the youngest back: her page tags the spot leases, warns of the preemption with
    its deadline, shows her spot allowance and says what spot capacity is."""
    carol = w.hub.client(w.hub.add_user("carol"))
    quota = {"max_units": 2, "gpu_hours": 40, "spot_max_units": 4, "spot_gpu_hours": 100}
    assert w.admin.put("/quotas/users/carol", json=quota).status_code == 200
    spot, waiting = [], None
    try:
        for i in range(4):
            r = carol.post("/leases", json={"shape": {"kind": "shared"}, "tier": "spot",
                                            "label": f"sweep {i}"})  # fmt: skip
            assert r.status_code == 201 and r.json()["status"] == "active", r.text
            assert r.json()["tier"] == "spot" and r.json()["preemption"] is None
            spot.append(r.json())
        r = w.bob.post("/leases", json={"shape": {"kind": "shared"}})
        assert r.status_code == 201 and r.json()["status"] == "queued", r.text
        waiting = r.json()

        def noticed() -> list[dict]:
            leases = [carol.get(f"/leases/{x['id']}").json() for x in spot]
            return [x for x in leases if x["preemption"]]

        [victim] = wait_for(noticed, timeout=20)
        assert victim["id"] == spot[-1]["id"]  # the youngest
        deadline = dt.datetime.fromisoformat(victim["preemption"]["deadline"])

        page = login("carol")
        page.goto(f"{w.hub.url}{P}")
        main = page.locator("#gh-main")
        rows = main.locator(".gh-table tbody tr[data-lease]:not(.gh-preempt-row)")
        expect(rows).to_have_count(4, timeout=20000)
        expect(main.locator(".gh-tag-spot", has_text="spot")).to_have_count(4)
        for x in spot:
            expect(main.locator(f"tr[data-lease='{x['id']}'] .gh-lease")).to_contain_text("spot")
        # the warning under the preempted lease, with its deadline on the browser's clock
        zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        by = deadline.astimezone(ZoneInfo(zone)).strftime("%H:%M")
        warning = main.locator(f"tr.gh-preempt-row[data-lease='{victim['id']}']")
        expect(warning).to_have_count(1)
        expect(warning).to_contain_text(
            f"Preempted for guaranteed work: stops by {by} (checkpoint now)"
        )
        expect(main.locator(".gh-preempt-row")).to_have_count(1)  # the others run on
        own = f"tr.gh-preempted[data-lease='{victim['id']}'] + tr.gh-preempt-row"
        expect(main.locator(own)).to_have_count(1)  # right under its lease
        # her spot allowance beside the guaranteed one: 4 seats are 1 GPU
        mine = main.locator(".gh-quota[data-kind=user]")
        expect(mine.locator(".gh-quota-spot").first).to_contain_text("1 of 4 GPUs")
        expect(mine.locator(".gh-quota-spot").nth(1)).to_contain_text("of 100 h")
        # spot capacity in a sentence, from the service's numbers (0.3, 120 s)
        expect(main.locator(".gh-spot-note")).to_contain_text(
            "Spot: idle GPUs at 30 % of the price for jobs; taken back with 2 min notice"
        )
        shoot(page, "console-me-spot")
    finally:
        if waiting:
            w.bob.delete(f"/leases/{waiting['id']}")
        for x in spot:
            carol.delete(f"/leases/{x['id']}")
        w.admin.delete("/quotas/users/carol")
        carol.close()
    assert w.admin.get(f"/leases/{waiting['id']}").json()["status"] == "cancelled"
