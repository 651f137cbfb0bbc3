"""Prices through a real hub: the rate card, an admin's rate change, what leases are
charged, statements (JSON and CSV) and who may read them, the spawn options' prices, and
the CLI's ``rates`` and ``statement``.

The hub is the shared one (``shared_hub``), configured with the embedded default's rates
(H100 2.0, A100 1.5, L4 0.5 credits per GPU-hour). The admin's rate this module sets is
for the L4 only, and unset again at the end of the test that sets it.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.cli import cli_as, ok, one_line_error
from tests.support.hub import users_on

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

L4 = "L4-24GB"
SEAT = {"kind": "shared", "model": "L4"}  # a quarter of the L4 (shared by 4)


@pytest.fixture(scope="module")
def w(shared_hub):
    with users_on(shared_hub) as ns:
        yield ns


def rate_card(client) -> dict[str, tuple[float, str]]:
    r = client.get("/rates")
    assert r.status_code == 200, r.text
    return {e["model"]: (e["credits_per_gpu_hour"], e["source"]) for e in r.json()["rates"]}


def test_everyone_reads_the_rate_card_of_the_pools_models(w) -> None:
    assert rate_card(w.alice) == {
        "H100-80GB": (2.0, "configuration"),
        "A100-40GB": (1.5, "configuration"),
        "A100-80GB": (1.5, "configuration"),
        L4: (0.5, "configuration"),
    }
    options = w.alice.get("/me/options").json()
    text = {s["text"]: s["credits_text"] for s in options["shapes"]}
    assert text["1 whole GPU"] == "1.5–2 credits/h"  # an A100 or an H100
    assert text["a shared GPU"] == "≈ 0.125 credits/h"  # a seat: a quarter of an L4
    gpu2 = next(p for p in options["profiles"] if p["name"] == "gpu-2")
    assert gpu2["credits_per_gpu_hour"] == {"min": 1.5, "max": 2.0}  # A100s or H100s
    assert gpu2["credits_text"] == "3–4 credits/h"


def test_bad_rate_changes_are_refused_with_a_sentence_and_change_nothing(w) -> None:
    before = rate_card(w.admin)
    r = w.alice.put(f"/rates/{L4}", json={"credits_per_gpu_hour": 0.1})
    assert r.status_code == 403 and "gpuhub admins" in r.json()["message"]
    for body, field in (
        ({"credits_per_gpu_hour": -1}, "credits_per_gpu_hour"),
        ({"credits_per_gpu_hour": "0.3"}, "credits_per_gpu_hour"),
        ({"credits_per_gpu_hour": 1e9}, "credits_per_gpu_hour"),
        ({"credits_per_gpu_hour": 1, "tier": "spot"}, "tier"),
        ({}, "credits_per_gpu_hour"),
    ):
        r = w.admin.put(f"/rates/{L4}", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field, r.text
    r = w.admin.put("/rates/B200", json={"credits_per_gpu_hour": 3})
    assert r.status_code == 400 and "no GPU model 'B200'" in r.json()["message"]
    assert L4 in r.json()["message"]  # it names the models there are
    r = w.admin.delete(f"/rates/{L4}")
    assert r.status_code == 404 and "no admin has set a rate" in r.json()["message"]
    assert rate_card(w.admin) == before


def test_a_rate_change_prices_new_leases_and_the_statement_shows_both(w) -> None:
    alice, bob = w.names["alice"], w.names["bob"]
    first = w.alice.post("/leases", json={"shape": SEAT, "label": "before"}).json()
    assert first["status"] == "active" and first["rate"] == 0.5 and first["tier"] == "guaranteed"
    try:
        r = w.admin.put(f"/rates/{L4}", json={"credits_per_gpu_hour": 0.25})
        assert r.status_code == 200, r.text
        assert (r.json()["source"], r.json()["updated_by"]) == ("admin", w.admin_name)
        second = w.alice.post("/leases", json={"shape": SEAT, "label": "after"}).json()
        assert second["rate"] == 0.25
        assert w.alice.get(f"/leases/{first['id']}").json()["rate"] == 0.5  # not rewritten
        for lease in (first, second):
            assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200

        mine = w.alice.get("/statements").json()
        assert mine["user"] == alice
        rows = {(r["model"], r["credits_per_gpu_hour"]): r for r in mine["rows"]}
        assert set(rows) == {(L4, 0.5), (L4, 0.25)}
        assert all(r["user"] == alice and r["leases"] == 1 for r in rows.values())
        assert mine["total_credits"] == round(sum(r["credits"] for r in mine["rows"]), 6)
        # others' statements are the admins' to read
        r = w.bob.get("/statements", params={"user": alice})
        assert r.status_code == 403 and bob in r.json()["message"]
        everyone = w.admin.get("/statements", params={"user": alice}).json()
        assert everyone["rows"] == mine["rows"]  # both leases ended: the same rows
        text = w.admin.get("/statements", params={"user": alice, "format": "csv"}).text
        lines = list(csv.DictReader(io.StringIO(text)))
        assert lines[-1]["group"] == "total" and lines[-1]["leases"] == "2"
        assert {ln["credits_per_gpu_hour"] for ln in lines[:-1]} == {"0.5", "0.25"}
        r = w.alice.get("/statements", params={"start": "2026-12-02", "end": "2026-12-01"})
        assert r.status_code == 400 and r.json()["field"] == "end"
    finally:
        r = w.admin.delete(f"/rates/{L4}")
    assert r.status_code == 200 and r.json()["source"] == "configuration"
    assert r.json()["credits_per_gpu_hour"] == 0.5


def test_a_spot_lease_is_charged_the_spot_discount_and_options_say_spot_is_offered(w) -> None:
    spot = w.alice.get("/me/options").json()["spot"]
    assert spot == {"enabled": True, "discount": 0.3, "grace_s": 120.0, "min_runtime_s": 300.0}
    for body, field in (
        ({"shape": SEAT, "tier": "cheap"}, "tier"),
        ({"shape": SEAT, "tier": 1}, "tier"),
        ({"shape": SEAT, "tier": None}, "tier"),
    ):
        r = w.alice.post("/leases", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert w.alice.get("/leases").json()["leases"] == []  # nothing was made
    r = w.alice.post("/leases", json={"shape": SEAT, "tier": "spot", "label": "cheap run"})
    assert r.status_code == 201, r.text
    lease = r.json()
    assert (lease["tier"], lease["rate"], lease["discount"]) == ("spot", 0.5, 0.3)
    assert lease["preemption"] is None and lease["borrowed_from"] is None
    status = w.alice.get("/me").json()["quotas"][0]
    assert status["spot_units_active"] == 0.25 and status["units_active"] == 0.0
    assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200
    row = next(r for r in w.alice.get("/statements").json()["rows"] if r["tier"] == "spot")
    assert row["model"] == L4 and row["credits_per_gpu_hour"] == 0.5


def test_the_cli_lists_rates_and_prints_a_statement(w) -> None:
    hub = w.hub
    out = ok(cli_as(hub, w.tokens["alice"], "rates"))
    assert "H100-80GB" in out and "2" in out and "configuration" in out
    assert "a MIG slice or shared seat costs its share" in out
    lease = w.alice.post("/leases", json={"shape": SEAT}).json()
    assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200
    out = ok(cli_as(hub, w.tokens["alice"], "statement"))
    assert L4 in out and "total" in out and "credits for" in out
    text = ok(cli_as(hub, w.tokens["alice"], "statement", "--csv"))
    assert text.startswith("group,user,model,tier,credits_per_gpu_hour")
    err = one_line_error(cli_as(hub, w.tokens["alice"], "rates", "set", L4, "0.1"))
    assert "gpuhub admins" in err
    err = one_line_error(cli_as(hub, w.tokens["admin"], "rates", "set", "B200", "1"))
    assert "MODEL" in err or "B200" in err
