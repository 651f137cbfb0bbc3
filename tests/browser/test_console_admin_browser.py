"""The console's admin pages in a real browser against a real hub: usage charts, quotas,
groups (cohorts), reservations, and statements with the rate card.

The hub's ledger holds three weeks of history before this week (``tests/support/seed.py``:
it never spends this week's budgets, whatever the day), plus a lease requested and released through the REST API. An admin logs in with
the generated admin password and uses each page; every change is checked through the
REST API. Debian's chromium driven by Playwright (never ``playwright install``).
Screenshots go to ``$GPUHUB_TEST_ARTIFACTS`` (default: a temporary folder) and, with
``GPUHUB_DOC_SCREENSHOTS=1``, to docs/how-to/images/ for the docs.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import log_in, new_page
from tests.support.hub import Hub
from tests.support.seed import ADMIN_GROUPS, ADMIN_SPEC, history_days, seed_admin_history

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

SPEC = ADMIN_SPEC
GROUPS = ADMIN_GROUPS
DAY = 86400.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A hub with users in groups physics and chem, three weeks of ledger history, and a
    lease requested and released through the API; stopped at the end."""
    workdir = tmp_path_factory.mktemp("console-admin")
    h = Hub(workdir, env={"GPUHUB_SIMULATED_SPEC": SPEC, "GPUHUB_POLL_INTERVAL": "0.2"})
    seed_admin_history(h.state / "gpuhub.sqlite", time.time())
    clients: list[httpx.Client] = []
    try:
        h.start()
        for user, group in GROUPS.items():
            h.add_user(user, groups=[group])
        admin_name = h.credentials()["admin_user"]
        admin = h.client(h.add_user(admin_name))
        alice = h.client(h.add_user("alice"))
        clients += [admin, alice]
        r = alice.post("/leases", json={"shape": {"kind": "gpu"}, "group": "physics"})
        assert r.status_code == 201, r.text
        assert alice.delete(f"/leases/{r.json()['id']}").status_code == 200
        yield SimpleNamespace(hub=h, admin=admin, admin_name=admin_name)
    finally:
        for client in clients:
            client.close()
        h.stop()


@pytest.fixture
def page(hub: SimpleNamespace, module_browser: Browser) -> Iterator[Page]:
    """A chromium page (a browser context of its own) logged in to the hub as the
    generated admin; dialogs (confirm) are accepted."""
    pg = new_page(module_browser, 1280)
    try:
        pg.on("dialog", lambda d: d.accept())
        yield log_in(pg, hub.hub, hub.admin_name)
    finally:
        pg.context.close()


def _open(page: Page, hub: SimpleNamespace, name: str) -> None:
    """Open a console page (through the service's OAuth) and wait for it to be drawn."""
    page.goto(f"{hub.hub.url}/services/gpuhub/console/{name}")
    expect(page.locator("#gh-main h1")).to_be_visible(timeout=30000)


def _chart_drawn(page: Page, selector: str) -> bool:
    """Whether the canvas shows bars of the first series (its colour, #1565c0, on many
    pixels): Chart.js drew data, not just axes."""
    return page.evaluate(
        """sel => { const c = document.querySelector(sel);
                    if (!c || !c.width || !c.height) return false;
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0;
                    for (let i = 0; i < d.length; i += 4)
                      if (Math.abs(d[i] - 0x15) < 12 && Math.abs(d[i + 1] - 0x65) < 12
                          && Math.abs(d[i + 2] - 0xc0) < 12 && d[i + 3] > 200) n++;
                    return n > 400; }""",
        selector,
    )


def _hours(text: str) -> float:
    return float(text.replace(",", ""))


def test_usage_page_draws_stacked_charts_and_totals_by_period(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    _open(page, hub, "usage")
    main = page.locator("#gh-main")
    expect(main).to_have_attribute("data-by", "day", timeout=20000)
    for by in ("user", "group"):
        canvas = f".gh-usage-chart[data-by={by}] canvas"
        expect(page.locator(canvas)).to_be_visible()
        assert _chart_drawn(page, canvas), f"the chart by {by} is empty"

    # the totals are what GET /usage says for the same range
    start = page.locator("input[name=start]").input_value()
    last = page.locator("input[name=end]").input_value()
    end = (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    for by, users in (("user", ["alice", "bob", "carol", "dan"]), ("group", ["chem", "physics"])):
        r = hub.admin.get("/usage", params={"by": by, "start": start, "end": end})
        assert r.status_code == 200, r.text
        want = {row[by]: row["gpu_hours"] for row in r.json()["rows"]}
        assert sorted(want) == users
        rows = page.locator(f".gh-usage-by-{by} tbody tr")
        expect(rows).to_have_count(len(want))
        got = {}
        for i in range(rows.count()):
            cells = rows.nth(i).locator("td").all_inner_texts()
            got[cells[0]] = _hours(cells[1])
        assert got.keys() == want.keys()
        for name, hours in want.items():
            assert got[name] == pytest.approx(hours, abs=0.006), name
    total = float(page.locator("[data-total]").get_attribute("data-total"))
    assert total == pytest.approx(r.json()["total_gpu_hours"], abs=1e-6)
    assert total > 100  # three weeks of history, not just seconds
    shoot(page, "console-usage")
    # each chart says in words what it shows (the screen reader's view of the canvas)
    described = page.locator(".gh-usage-chart[data-by=user] canvas").get_attribute("aria-label")
    assert described and described.startswith("GPU-hours by user, 2") and "; axis 0, " in described

    for period in ("week", "month"):
        with page.expect_response(lambda r, p=period: f"by={p}%2Cuser" in r.url) as resp:
            page.click(f"button[data-period={period}]")
        assert resp.value.status == 200
        expect(main).to_have_attribute("data-by", period, timeout=20000)
        expect(page.locator(f"button[data-period={period}]")).to_have_attribute(
            "aria-pressed", "true"
        )
        assert _chart_drawn(page, ".gh-usage-chart[data-by=user] canvas")
        assert _chart_drawn(page, ".gh-usage-chart[data-by=group] canvas")
        # and follows the chart: the span of weeks or months, not of days
        now = page.locator(".gh-usage-chart[data-by=user] canvas").get_attribute("aria-label")
        assert now and now.startswith("GPU-hours by user, ") and now != described, now
        described = now


def _quota(hub: SimpleNamespace, kind: str, name: str) -> dict | None:
    r = hub.admin.get("/quotas")
    assert r.status_code == 200, r.text
    found = [q for q in r.json()["quotas"] if q["kind"] == kind and q["name"] == name]
    return found[0]["quota"] if found else None


def _fill_quota(page: Page, kind: str, name: str, **fields: str) -> None:
    form = page.locator("form.gh-quota-form")
    form.locator("select[name=kind]").select_option(kind)
    form.locator("input[name=name]").fill(name)
    for field, value in fields.items():
        if field == "period":
            form.locator("select[name=period]").select_option(value)
        else:
            form.locator(f"input[name={field}]").fill(value)
    form.locator("button[type=submit]").click()


def test_quota_form_sets_refuses_in_place_and_unsets(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    r = hub.admin.put("/quotas/users/carol", json={"max_units": 1, "gpu_hours": 30})
    assert r.status_code == 200, r.text
    _open(page, hub, "quotas")
    form = page.locator("form.gh-quota-form")
    users = page.locator(".gh-quotas-users")
    groups = page.locator(".gh-quotas-groups")
    expect(users).to_contain_text("carol")
    # each field is named by its label and described by its hint, as a screen reader says
    max_units = form.get_by_label("Max GPU units", exact=True)
    expect(max_units).to_have_attribute("name", "max_units")
    expect(max_units).to_have_accessible_description("at once, queued included")
    expect(form.get_by_label("Period", exact=True)).to_have_accessible_description("")
    # no spot allowance and no spot lease anywhere: no spot column to read past
    expect(page.locator("th", has_text="Spot")).to_have_count(0)

    # carol's spot lease (she has no spot allowance: no limit on spot) makes one, and her
    # row says what she holds
    carol = hub.hub.client(hub.hub.add_user("carol"))
    r = carol.post("/leases", json={"shape": {"kind": "gpu"}, "tier": "spot"})
    assert r.status_code == 201 and r.json()["status"] == "active", r.text
    spot_lease = r.json()["id"]
    _open(page, hub, "quotas")
    expect(users.locator("th", has_text="Spot (preemptible)")).to_have_count(1)
    expect(users.locator("tr", has_text="carol")).to_contain_text("1 GPU at once, no limit")
    assert carol.delete(f"/leases/{spot_lease}").status_code == 200
    carol.close()

    _fill_quota(page, "group", "physics", max_units="4", per_user_max_units="1",
                gpu_hours="200", credits="500", period="week",
                allowed_shapes="gpu, mig:*", spot_max_units="2",
                spot_gpu_hours="50")  # fmt: skip
    expect(form.locator(".gh-form-done")).to_contain_text("physics")
    physics = groups.locator("tr", has_text="physics")
    expect(physics).to_contain_text("of 200 h used")
    expect(physics).to_contain_text(re.compile(r"of 500 credits used, [\d.,]+ left"))
    # the spot allowance, in its own column
    expect(groups.locator("th", has_text="Spot (preemptible)")).to_have_count(1)
    spot_cell = physics.locator(".gh-spot-use")
    expect(spot_cell).to_contain_text("0 of 2 GPUs at once")
    expect(spot_cell).to_contain_text(re.compile(r"of 50 GPU-hours, [\d.,]+ left"))
    want = {
        "max_units": 4.0, "per_user_max_units": 1.0, "gpu_hours": 200.0, "credits": 500.0,
        "period": "week", "term_start": None, "term_end": None,
        "allowed_shapes": ["gpu", "mig:*"], "allowed_profiles": None, "priority": 0,
        "spot_max_units": 2.0, "spot_gpu_hours": 50.0,
    }  # fmt: skip
    got = _quota(hub, "group", "physics")
    assert {k: got.get(k) for k in want} == want  # the fields the form has
    one = hub.admin.get("/quotas/groups/physics")
    assert one.status_code == 200 and one.json()["quota"]["credits"] == 500, one.text
    # Edit fills the form with the quota, the credits budget and spot allowance included
    physics.get_by_role("button", name="Edit").click()
    expect(form.locator("input[name=credits]")).to_have_value("500")
    expect(form.locator("input[name=gpu_hours]")).to_have_value("200")
    expect(form.locator("input[name=spot_max_units]")).to_have_value("2")
    expect(form.locator("input[name=spot_gpu_hours]")).to_have_value("50")

    # a negative budget: the service's refusal next to the form in the form's words (the
    # field's label, not its API name), the field marked; nothing changed
    before = hub.admin.get("/quotas").json()
    _fill_quota(page, "group", "physics", gpu_hours="-5")
    error = form.locator(".gh-form-errors .gh-error")
    expect(error).to_be_visible()
    refusal = hub.admin.put("/quotas/groups/physics", json={"gpu_hours": -5})
    assert refusal.status_code == 400 and refusal.json()["field"] == "gpu_hours"
    expect(error.locator("span")).to_have_text("GPU-hours per period: must be ≥ 0")
    expect(form.locator(".gh-invalid input[name=gpu_hours]")).to_have_count(1)
    assert hub.admin.get("/quotas").json() == before
    # and a negative credits budget likewise
    _fill_quota(page, "group", "physics", gpu_hours="200", credits="-5")
    expect(error.locator("span")).to_have_text("Credits per period: must be ≥ 0")
    expect(form.locator(".gh-invalid input[name=credits]")).to_have_count(1)
    expect(form.locator(".gh-invalid")).to_have_count(1)
    refusal = hub.admin.put("/quotas/groups/physics", json={"credits": -5})
    assert refusal.status_code == 400 and refusal.json()["field"] == "credits"
    assert hub.admin.get("/quotas").json() == before
    expect(physics).to_contain_text("of 500 credits used")
    # and a negative spot allowance likewise, by the spot field's label
    _fill_quota(page, "group", "physics", credits="500", spot_max_units="-1")
    expect(error.locator("span")).to_have_text("Spot GPUs at once: must be ≥ 0")
    expect(form.locator(".gh-invalid input[name=spot_max_units]")).to_have_count(1)
    expect(form.locator(".gh-invalid")).to_have_count(1)
    refusal = hub.admin.put("/quotas/groups/physics", json={"spot_max_units": -1})
    assert refusal.status_code == 400 and refusal.json()["field"] == "spot_max_units"
    assert hub.admin.get("/quotas").json() == before
    expect(spot_cell).to_contain_text("0 of 2 GPUs at once")

    # a group the hub lacks is refused, naming it, unless "create" is ticked: the refusal
    # names the checkbox, not the API's create=true
    _fill_quota(page, "group", "physcis", gpu_hours="10", credits="", spot_max_units="",
                spot_gpu_hours="")  # fmt: skip
    expect(error).to_contain_text("physcis")
    expect(error).to_contain_text("tick 'Create the group if the hub lacks it'")
    expect(error).not_to_contain_text("create=true")
    expect(form.locator(".gh-invalid")).to_have_count(1)  # the name, not the budget now
    assert _quota(hub, "group", "physcis") is None
    assert hub.hub.hub_api("GET", "groups/physcis").status_code == 404
    shoot(page, "console-quotas")

    form.locator("input[name=create]").check()
    form.locator("button[type=submit]").click()
    expect(groups.locator("tr", has_text="physcis")).to_be_visible()
    expect(error).to_have_count(0)  # the success took the refusal down
    expect(form.locator(".gh-invalid")).to_have_count(0)
    assert _quota(hub, "group", "physcis")["gpu_hours"] == 10
    assert _quota(hub, "group", "physcis")["credits"] is None  # an empty field: no limit
    assert _quota(hub, "group", "physcis")["spot_max_units"] is None
    credits_cell = groups.locator("tr", has_text="physcis").locator("td").nth(3)
    expect(credits_cell).to_have_text("no limit")
    spot_cell = groups.locator("tr", has_text="physcis").locator("td").nth(4)
    expect(spot_cell).to_have_text("—")  # physics has spot, physcis none
    assert hub.hub.hub_api("GET", "groups/physcis").status_code == 200

    # unset, confirmed
    for name in ("physcis", "physics"):
        groups.locator("tr", has_text=name).locator("[data-action=unset]").click()
        expect(groups.locator("tr", has_text=name)).to_have_count(0)
        assert _quota(hub, "group", name) is None
    hub.hub.hub_api("DELETE", "groups/physcis")
    assert hub.admin.delete("/quotas/users/carol").status_code == 204


def _members(hub: SimpleNamespace, name: str) -> list[str]:
    r = hub.admin.get(f"/cohorts/{name}")
    assert r.status_code == 200, r.text
    return r.json()["members"]


def test_groups_page_creates_a_cohort_adds_and_removes_members(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    _open(page, hub, "groups")
    expect(page.locator(".gh-cohort[data-cohort=physics]")).to_contain_text("alice")
    form = page.locator("form.gh-cohort-form")
    form.locator("input[name=name]").fill("cs101")
    form.locator("textarea[name=members]").fill("ann\nbo\n")
    form.locator("input[name=with_quota]").check()
    form.locator("input[name=max_units]").fill("8")
    form.locator("input[name=per_user_max_units]").fill("1")
    form.locator("input[name=gpu_hours]").fill("200")
    form.locator("input[name=credits]").fill("1000")
    form.locator("input[name=spot_max_units]").fill("4")
    form.locator("input[name=spot_gpu_hours]").fill("100")
    form.locator("button[type=submit]").click()
    expect(form.locator(".gh-form-done")).to_contain_text("Created group cs101")
    card = page.locator(".gh-cohort[data-cohort=cs101]")
    expect(card.locator("[data-member]")).to_have_count(2)
    assert _members(hub, "cs101") == ["ann", "bo"]
    expect(card.locator(".gh-cohort-quota")).to_contain_text("of 1000 credits used")
    assert _quota(hub, "group", "cs101")["per_user_max_units"] == 1
    assert _quota(hub, "group", "cs101")["credits"] == 1000
    assert _quota(hub, "group", "cs101")["spot_max_units"] == 4
    assert _quota(hub, "group", "cs101")["spot_gpu_hours"] == 100
    spot = card.locator(".gh-cohort-spot")
    expect(spot).to_contain_text("0 of 4 GPUs at once")
    expect(spot).to_contain_text("of 100 GPU-hours")
    # a group without a spot allowance (nor spot leases) shows no spot line
    expect(page.locator(".gh-cohort[data-cohort=physics] .gh-cohort-spot")).to_have_count(0)

    card.locator("input[name=add]").fill("chen")
    card.locator("[data-action=add]").click()
    expect(card.locator("[data-member=chen]")).to_be_visible()
    assert _members(hub, "cs101") == ["ann", "bo", "chen"]
    shoot(page, "console-groups")

    card.locator("[data-member=ann] [data-action=remove]").click()
    expect(card.locator("[data-member=ann]")).to_have_count(0)
    expect(card.locator(".gh-form-done")).to_contain_text("Took ann out of cs101")
    assert _members(hub, "cs101") == ["bo", "chen"]

    # a refusal is shown in place, naming the field as the card does: adding a name that
    # is no user name
    card.locator("input[name=add]").fill("Not/AName")
    card.locator("[data-action=add]").click()
    expect(card.locator(".gh-error")).to_contain_text("Add members: user name 'Not/AName'")
    assert _members(hub, "cs101") == ["bo", "chen"]

    # the create form's refusals in its words: a user the hub lacks with "create users"
    # unticked names the checkbox; a negative budget names the field's label
    form.locator("input[name=name]").fill("cs101")
    form.locator("textarea[name=members]").fill("nobody9")
    form.locator("input[name=create_users]").uncheck()
    form.locator("button[type=submit]").click()
    error = form.locator(".gh-form-errors .gh-error")
    expect(error).to_contain_text("nobody9")
    expect(error).to_contain_text("tick 'Create users the hub lacks'")
    expect(error).not_to_contain_text("create_users")
    form.locator("textarea[name=members]").fill("")
    form.locator("input[name=gpu_hours]").fill("-1")
    form.locator("button[type=submit]").click()
    expect(error).to_contain_text("GPU-hours per period: must be ≥ 0")
    expect(form.locator(".gh-invalid input[name=gpu_hours]")).to_have_count(1)
    assert _members(hub, "cs101") == ["bo", "chen"]
    assert _quota(hub, "group", "cs101")["gpu_hours"] == 200
    form.locator("input[name=gpu_hours]").fill("200")
    form.locator("input[name=spot_gpu_hours]").fill("-3")
    form.locator("button[type=submit]").click()
    expect(error).to_contain_text("Spot GPU-hours per period: must be ≥ 0")
    expect(form.locator(".gh-invalid input[name=spot_gpu_hours]")).to_have_count(1)
    assert _quota(hub, "group", "cs101")["spot_gpu_hours"] == 100
    shoot(page, "console-groups-refused")
    assert hub.admin.delete("/quotas/groups/cs101").status_code == 204


def test_cohort_fields_are_set_shown_kept_on_edits_and_refused_in_place(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    """physics and chem lend each other their unused GPUs in cohort "science", set on the
    Quotas page; alice borrows one of chem's: both rows and cards say who borrows and
    lends. An edit of other fields (on either page) keeps the cohort fields, and the
    Groups page's form keeps the fields it does not show. Bad values are refused in
    place, naming the field by its label."""
    leases: list[int] = []
    alice = hub.hub.client(hub.hub.add_user("alice"))
    try:
        _open(page, hub, "quotas")
        form = page.locator("form.gh-quota-form")
        groups = page.locator(".gh-quotas-groups")
        _fill_quota(page, "group", "physics", max_units="1", cohort="science",
                    borrow_limit="2", lend_limit="1", fair_share="3")  # fmt: skip
        expect(form.locator(".gh-form-done")).to_contain_text("physics")
        _fill_quota(page, "group", "chem", max_units="2", cohort="science", borrow_limit="",
                    lend_limit="", fair_share="")  # fmt: skip
        expect(form.locator(".gh-form-done")).to_contain_text("chem")
        got = _quota(hub, "group", "physics")
        assert {k: got[k] for k in ("max_units", "cohort", "borrow_limit", "lend_limit",
                                    "fair_share")} == {
            "max_units": 1, "cohort": "science", "borrow_limit": 2, "lend_limit": 1,
            "fair_share": 3,
        }  # fmt: skip
        chem = _quota(hub, "group", "chem")
        assert (chem["cohort"], chem["borrow_limit"], chem["fair_share"]) == ("science", None, None)

        # alice holds physics' one GPU and borrows a second from chem
        for _ in range(2):
            r = alice.post("/leases", json={"shape": {"kind": "gpu"}, "group": "physics"})
            assert r.status_code == 201 and r.json()["status"] == "active", r.text
            leases.append(r.json()["id"])
        assert alice.get(f"/leases/{leases[1]}").json()["borrowed_from"] == "chem"
        _open(page, hub, "quotas")
        expect(groups.locator("th", has_text="Cohort")).to_have_count(1)
        physics = groups.locator("tr", has_text="physics")
        lending = physics.locator(".gh-lending")
        expect(lending.locator(".gh-lending-cohort")).to_have_text("science")
        expect(lending).to_contain_text("borrows 1 GPU, lends 0 GPUs now")
        expect(physics.locator("td").nth(1)).to_contain_text("2 in use of 1 GPU (1 borrowed)")
        expect(lending).to_contain_text("borrows at most 2 GPUs, lends at most 1 GPU")
        expect(physics).to_contain_text("fair-share weight 3")
        chem_row = groups.locator("tr", has_text="chem")
        expect(chem_row.locator(".gh-lending")).to_contain_text("borrows 0 GPUs, lends 1 GPU now")
        shoot(page, "console-quotas-cohort")

        # an edit of the budget keeps the cohort fields (Edit fills them in)
        physics.get_by_role("button", name="Edit").click()
        expect(form.locator("input[name=cohort]")).to_have_value("science")
        expect(form.locator("input[name=borrow_limit]")).to_have_value("2")
        expect(form.locator("input[name=fair_share]")).to_have_value("3")
        form.locator("input[name=gpu_hours]").fill("150")
        form.locator("button[type=submit]").click()
        expect(physics).to_contain_text("of 150 h used")
        got = _quota(hub, "group", "physics")
        assert (got["gpu_hours"], got["cohort"], got["borrow_limit"], got["lend_limit"],
                got["fair_share"]) == (150, "science", 2, 1, 3)  # fmt: skip

        # bad values, refused in place by the field's label; nothing changes
        before = hub.admin.get("/quotas/groups/physics").json()["quota"]
        error = form.locator(".gh-form-errors .gh-error")
        _fill_quota(page, "group", "physics", borrow_limit="-1")
        expect(error.locator("span")).to_have_text("Borrow at most: must be ≥ 0")
        expect(form.locator(".gh-invalid input[name=borrow_limit]")).to_have_count(1)
        expect(form.locator(".gh-invalid")).to_have_count(1)
        _fill_quota(page, "group", "physics", borrow_limit="2", cohort="my lab!")
        expect(error.locator("span")).to_have_text(
            "Cohort (groups that lend each other unused GPUs): must be letters, digits, '.',"
            " '_' or '-', starting with a letter or digit"
        )
        expect(form.locator(".gh-invalid input[name=cohort]")).to_have_count(1)
        shoot(page, "console-quotas-cohort-refused")
        assert hub.admin.get("/quotas/groups/physics").json()["quota"] == before
        form.locator("input[name=cohort]").fill("science")

        # the Groups page: the card says the same; its form (which has no shapes nor
        # priority) keeps them, and keeps the cohort fields on an edit of the budget
        r = hub.admin.put("/quotas/groups/chem", json={**chem, "priority": 5,
                                                         "allowed_shapes": ["gpu"]})  # fmt: skip
        assert r.status_code == 200, r.text
        _open(page, hub, "groups")
        card = page.locator(".gh-cohort[data-cohort=chem]")
        expect(card.locator(".gh-cohort-lending")).to_contain_text("science")
        expect(card.locator(".gh-cohort-lending")).to_contain_text("lends 1 GPU now")
        card.locator("[data-action=edit]").click()
        gform = page.locator("form.gh-cohort-form")
        expect(gform.locator("input[name=name]")).to_have_value("chem")
        expect(gform.locator("input[name=cohort]")).to_have_value("science")
        expect(gform.locator("input[name=max_units]")).to_have_value("2")
        gform.locator("input[name=max_units]").fill("3")
        gform.locator("input[name=lend_limit]").fill("2")
        gform.locator("button[type=submit]").click()
        expect(gform.locator(".gh-form-done")).to_contain_text("member")
        got = _quota(hub, "group", "chem")
        assert (got["max_units"], got["cohort"], got["lend_limit"], got["priority"],
                got["allowed_shapes"]) == (3, "science", 2, 5, ["gpu"])  # fmt: skip
        expect(card.locator(".gh-lending")).to_contain_text("lends at most 2 GPUs")
        shoot(page, "console-groups-cohort")
        # and a bad value there is refused in place too
        gform.locator("input[name=fair_share]").fill("0")
        gform.locator("button[type=submit]").click()
        gerror = gform.locator(".gh-form-errors .gh-error")
        expect(gerror).to_contain_text("Fair-share weight: must be more than 0")
        expect(gform.locator(".gh-invalid input[name=fair_share]")).to_have_count(1)
        assert _quota(hub, "group", "chem")["fair_share"] is None
    finally:
        for lease in leases:
            alice.delete(f"/leases/{lease}")
        alice.close()
        for name in ("physics", "chem"):
            hub.admin.delete(f"/quotas/groups/{name}")


def test_reservations_page_creates_and_deletes(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    if hub.admin.get("/reservations").status_code == 404:
        pytest.skip("the service has no /reservations endpoint yet (helper R2's part)")
    now = dt.datetime.now(dt.UTC)
    # one open now, made through the API, so that the page shows both states
    r = hub.admin.post("/reservations", json={
        "group": "chem", "shape": {"kind": "gpu"}, "count": 1, "timezone": "UTC",
        "start": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "end": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    })  # fmt: skip
    assert r.status_code == 201, r.text
    opened = r.json()["id"]

    _open(page, hub, "reservations")
    rows = page.locator(".gh-reservations tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("open")
    form = page.locator("form.gh-reservation-form")
    start = (now + dt.timedelta(days=1)).replace(hour=14, minute=0)
    form.locator("input[name=group]").fill("physics")
    form.locator("select[name=kind]").select_option("mig")
    form.locator("input[name=profile]").fill("1g.5gb")
    form.locator("input[name=count]").fill("3")
    form.locator("input[name=start]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=end]").fill((start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    form.locator("select[name=repeat]").select_option("weekly")
    form.locator("input[name=timezone]").fill("UTC")
    form.locator("input[name=note]").fill("CS lab, room 3")
    form.locator("button[type=submit]").click()
    expect(form.locator(".gh-form-done")).to_contain_text("physics")
    expect(rows).to_have_count(2)
    mine = [x for x in hub.admin.get("/reservations").json()["reservations"]
            if x["group"] == "physics"]  # fmt: skip
    assert len(mine) == 1
    made = mine[0]
    assert (made["shape"]["kind"], made["shape"]["profile"]) == ("mig", "1g.5gb")
    assert (made["count"], made["repeat"], made["state"]) == (3, "weekly", "upcoming")
    assert made["start"].startswith(start.strftime("%Y-%m-%dT14:00"))
    row = rows.filter(has_text="physics")
    expect(row).to_contain_text("upcoming")
    expect(row).to_contain_text(made["message"])

    # in the reservation's zone, as the pool's tags write it too (the year when not this one)
    year = f" {start.year}" if start.year != now.year else ""
    expect(row).to_contain_text(start.strftime(f"%a %-d %b{year} 14:00–16:00 UTC"))
    shoot(page, "console-reservations")

    # a refusal in place, naming the field by its label: the end before the start
    form.locator("input[name=end]").fill(start.strftime("%Y-%m-%dT10:00"))
    form.locator("button[type=submit]").click()
    expect(form.locator(".gh-form-errors .gh-error")).to_contain_text("'End' must be after")
    expect(form.locator(".gh-invalid input[name=end]")).to_have_count(1)
    expect(rows).to_have_count(2)
    assert len(hub.admin.get("/reservations").json()["reservations"]) == 2

    row.locator("[data-action=delete]").click()
    expect(rows).to_have_count(1)
    assert hub.admin.get(f"/reservations/{made['id']}").status_code == 404
    assert hub.admin.delete(f"/reservations/{opened}").status_code == 200


def _amount(text: str) -> float:
    """A number as the console writes it ("< 0.01" for a little more than nothing)."""
    return 0.0 if text == "< 0.01" else float(text)


def _statement_rows(page: Page) -> list[list[str]]:
    rows = page.locator(".gh-statement tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


def test_statements_page_shows_charges_and_changes_rates_in_place(
    hub: SimpleNamespace, page: Page, shoot: Callable[[Page, str], None]
) -> None:
    _open(page, hub, "statements")
    month = page.locator("input[name=month]")
    expect(month).to_have_value(dt.datetime.now(dt.UTC).strftime("%Y-%m"))
    # the month that holds most of the seeded history: its rows and totals are the API's
    days = Counter(d.strftime("%Y-%m") for d in history_days(time.time(), 21))
    first = days.most_common(1)[0][0]
    start = f"{first}-01"
    end = (dt.date.fromisoformat(start) + dt.timedelta(days=32)).replace(day=1).isoformat()
    with page.expect_response(lambda r: f"start={start}" in r.url and "/statements" in r.url):
        month.fill(first)
    r = hub.admin.get("/statements", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    want = r.json()
    assert want["rows"] and want["total_credits"] > 10  # days of history, at the default rate
    expect(page.locator(".gh-statement tbody tr")).to_have_count(len(want["rows"]))
    got = _statement_rows(page)
    assert [(g, u, m, t) for g, u, m, t, *_ in got] == [
        (w["group"] or "(no group)", w["user"], w["model"], w["tier"]) for w in want["rows"]
    ]
    for cells, w in zip(got, want["rows"], strict=True):
        assert _amount(cells[5]) == pytest.approx(w["gpu_hours"], abs=0.006)
        assert _amount(cells[6]) == pytest.approx(w["credits"], abs=0.006)
    total = page.locator(".gh-statement tfoot [data-total=credits]")
    assert _amount(total.inner_text()) == pytest.approx(want["total_credits"], abs=0.006)
    expect(page.locator(".gh-statement-status")).to_contain_text("credits for")
    # the CSV download is the same statement
    href = page.locator(".gh-statement-csv").get_attribute("href")
    csv = page.request.get(hub.hub.url + href)  # with the browser's cookies
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().splitlines()
    assert lines[0].startswith("group,user,model,tier") and len(lines) == len(want["rows"]) + 2

    # an admin's filter: one group's charges
    page.locator("input[name=group]").fill("chem")
    page.locator("input[name=group]").press("Tab")
    expect(page.locator(".gh-statement tbody tr").first).to_contain_text("chem")
    expect(page.locator(".gh-statement tbody tr", has_text="physics")).to_have_count(0)
    page.locator("input[name=group]").fill("")
    page.locator("input[name=group]").press("Tab")
    expect(page.locator(".gh-statement tbody tr")).to_have_count(len(want["rows"]))
    shoot(page, "console-statements")  # the month's charges and the rate card, as configured

    # the rate card: a model's rate changed in place, and a refusal shown on its row
    model = "H100-80GB"
    [before] = [x for x in hub.admin.get("/rates").json()["rates"] if x["model"] == model]
    assert before["source"] in ("configuration", "default")
    said = {"configuration": "configured", "default": "the default"}[before["source"]]
    row = page.locator(f".gh-rates tr[data-model='{model}']")
    expect(row).to_contain_text(said)
    row.locator("input[name=credits_per_gpu_hour]").fill("12.5")
    row.locator("[data-action=set]").click()
    expect(row.locator(".gh-rate")).to_have_text("12.5")
    expect(row).to_contain_text("set by an admin")
    [rate] = [x for x in hub.admin.get("/rates").json()["rates"] if x["model"] == model]
    assert (rate["credits_per_gpu_hour"], rate["source"]) == (12.5, "admin")

    row.locator("input[name=credits_per_gpu_hour]").fill("-1")
    row.locator("[data-action=set]").click()
    error = row.locator(".gh-rate-edit .gh-error")
    expect(error).to_be_visible()
    refusal = hub.admin.put(f"/rates/{model}", json={"credits_per_gpu_hour": -1})
    assert refusal.status_code == 400 and refusal.json()["field"] == "credits_per_gpu_hour"
    expect(error.locator("span")).to_have_text("Credits per GPU-hour: must be ≥ 0")
    expect(row.locator(".gh-rate")).to_have_text("12.5")  # nothing changed
    shoot(page, "console-statements-refused")

    # reset: the configured rate (or the default) again
    row.locator("[data-action=reset]").click()
    expect(row).to_contain_text(said)
    expect(row.locator(".gh-rate")).to_have_text(f"{before['credits_per_gpu_hour']:g}")
    [rate] = [x for x in hub.admin.get("/rates").json()["rates"] if x["model"] == model]
    assert rate == before
