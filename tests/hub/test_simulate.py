"""An admin's what-if through a real hub: ``POST /api/v1/simulate`` and ``gpuhub simulate``
replay the ledger with a proposed group quota and say who would have waited longer;
only admins may ask, a bad body is a 400 naming its field, and nothing on the hub changes.

The hub is the shared one (``shared_hub``): the ledger holds other tests' leases too, so
the test reads only its own users' rows.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support.cli import cli_as, ok, one_line_error
from tests.support.hub import Hub, unique

pytestmark = [pytest.mark.hub, pytest.mark.timeout(180)]

GPU = {"shape": {"kind": "gpu", "count": 1}}


@pytest.fixture(scope="module")
def history(hub: Hub) -> dict:
    """alice, in a group of her own, held two GPUs at once for two seconds."""
    group, alice = unique("sim"), unique("alice")
    token = hub.add_user(alice, groups=[group])
    with hub.client(token) as c:
        held = [c.post("/leases", json={**GPU, "group": group}).json() for _ in range(2)]
        assert [x["status"] for x in held] == ["active", "active"], held
        time.sleep(2.5)
        for x in held:
            assert c.delete(f"/leases/{x['id']}").status_code == 200
    return {"group": group, "alice": alice, "token": token}


def _user(report: dict, name: str) -> dict:
    return next(r for r in report["users"] if r["user"] == name)


def test_a_stricter_quota_makes_alice_wait_and_changes_nothing(
    hub: Hub, admin_token: str, history: dict
) -> None:
    group, alice = history["group"], history["alice"]
    body = {"weeks": 1, "quotas": [{"kind": "group", "name": group, "set": {"max_units": 1}}]}
    with hub.client(admin_token) as admin:
        before = admin.get("/leases", params={"user": alice, "status": "released"}).json()
        r = admin.post("/simulate", json=body)
        assert r.status_code == 200, r.text
        report = r.json()
        assert admin.get(f"/quotas/groups/{group}").status_code == 404  # still none
        assert admin.get("/leases", params={"user": alice, "status": "released"}).json() == before
    mine = _user(report, alice)
    assert mine["current"]["requests"] == mine["proposed"]["requests"] == 2
    assert mine["current"]["mean_wait_s"] == 0
    assert mine["proposed"]["mean_wait_s"] >= 1  # her second GPU waits for the first
    assert alice in [m["user"] for m in report["waited_longer"]]
    assert {"kind": "group", "name": group, "field": "max_units", "current": None,
            "proposed": 1.0} in report["changes"]  # fmt: skip
    assert report["weeks"] == 1 and report["leases"] >= 2

    # the CLI says the same for people, and as JSON
    out = ok(cli_as(hub, admin_token, "simulate", "--weeks", "1", "--group", group,
                    "--max-units", "1"))  # fmt: skip
    assert f"group {group}: max_units no quota → 1" in out
    line = next(ln for ln in out.splitlines() if ln.startswith(alice))
    assert "0s →" in line
    assert "waited longer:" in out and alice in out.split("waited longer:")[1]
    data = json.loads(ok(cli_as(hub, admin_token, "simulate", "--weeks", "1", "--group", group,
                                "--max-units", "1", "--json")))  # fmt: skip
    assert _user(data, alice)["proposed"]["requests"] == 2


def test_only_admins_simulate(hub: Hub, history: dict) -> None:
    body = {"quotas": [{"kind": "group", "name": history["group"], "set": {"max_units": 1}}]}
    with hub.client(history["token"]) as alice:
        r = alice.post("/simulate", json=body)
    assert r.status_code == 403 and "gpuhub admins" in r.json()["message"]
    msg = one_line_error(cli_as(hub, history["token"], "simulate", "--rate", "H100=3"))
    assert "gpuhub admins" in msg


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"weeks": 0, "rates": [{"model": "H100", "credits_per_gpu_hour": 2}]}, "weeks"),
        ({"weeks": 9, "rates": [{"model": "H100", "credits_per_gpu_hour": 2}]}, "weeks"),
        ({"weeks": "2", "rates": [{"model": "H100", "credits_per_gpu_hour": 2}]}, "weeks"),
        ({"weeks": 1}, "quotas"),
        ({"weeks": 1, "quota": []}, "quota"),
        ({"quotas": [{"kind": "team", "name": "x", "set": {"max_units": 1}}]}, "quotas.0.kind"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {}}]}, "quotas.0.set"),
        ({"quotas": [{"kind": "group", "name": "x", "max_units": 1}]}, "quotas.0.set"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {}, "max_units": 1}]}, "quotas.0.max_units"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {"max_unit": 1}}]}, "quotas.0.set.max_unit"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {"max_units": "4"}}]}, "quotas.0.set.max_units"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {"max_units": -1}}]}, "quotas.0.set.max_units"),
        ({"quotas": [{"kind": "group", "name": "x", "set": {"period": "term"}}]}, "quotas.0.set"),
        ({"quotas": [{"kind": "group", "name": "a/b", "set": {"max_units": 1}}]}, "quotas.0.name"),
        ({"quotas": [{"kind": "user", "name": "x", "set": {"cohort": "c"}}]}, "quotas.0.set.cohort"),
        ({"rates": [{"model": "B200", "credits_per_gpu_hour": 2}]}, "rates.0.model"),
        ({"rates": [{"model": "H100", "credits_per_gpu_hour": -2}]}, "rates.0.credits_per_gpu_hour"),
    ],
)  # fmt: skip
def test_bad_bodies_are_refused_naming_the_field(
    hub: Hub, admin_token: str, body: dict, field: str
) -> None:
    with hub.client(admin_token) as admin:
        r = admin.post("/simulate", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.text


def test_the_cli_names_its_flag_for_a_field_the_api_refuses(hub: Hub, admin_token: str) -> None:
    msg = one_line_error(cli_as(hub, admin_token, "simulate", "--weeks", "9", "--rate", "H100=2"))
    assert "weeks" in msg and "(--weeks)" in msg
    msg = one_line_error(cli_as(hub, admin_token, "simulate", "--rate", "B200=2"))
    assert "names no GPU model" in msg and "(--rate)" in msg
    msg = one_line_error(cli_as(hub, admin_token, "simulate", "--max-units", "2"))
    assert "--user NAME or --group NAME" in msg
