"""What the spawners need from the service: previews, another user's view, reconciliation."""

from __future__ import annotations

import time

import pytest

from tests.support.hub import Hub

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

ONE_GPU = {"shape": {"kind": "gpu", "count": 1}}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub on two simulated GPUs that reconciles server leases every second."""
    h = Hub(
        tmp_path_factory.mktemp("support"),
        env={
            "GPUHUB_SIMULATED_SPEC": "n1: 2xH100-80GB[nvlink], 1xA100-40GB[mig=2x3g.20gb]",
            "GPUHUB_RECONCILE_INTERVAL": "1",
            "GPUHUB_RECONCILE_GRACE": "0",
        },
    ).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def people(hub):
    admin = hub.client(hub.add_user(hub.credentials()["admin_user"]))
    alice = hub.client(hub.add_user("alice", groups=["cs101"]))
    bob = hub.client(hub.add_user("bob"))
    yield {"admin": admin, "alice": alice, "bob": bob}
    for c in (admin, alice, bob):
        c.close()


@pytest.fixture(autouse=True)
def clean(people):
    yield
    admin = people["admin"]
    for lease in admin.get("/leases").json()["leases"]:
        admin.delete(f"/leases/{lease['id']}")
    for q in admin.get("/quotas").json()["quotas"]:
        admin.delete(f"/quotas/{q['kind']}s/{q['name']}")


def preview(client, body):
    r = client.post("/leases/preview", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_preview_says_grant_queue_or_refuse_and_changes_nothing(people):
    alice, bob, admin = people["alice"], people["bob"], people["admin"]
    p = preview(alice, ONE_GPU)
    assert p["outcome"] == "grant" and p["message"] == "2 of 2 GPUs free"
    assert (p["free"], p["total"], p["simulated"]) == (2, 2, True)
    assert admin.get("/leases").json()["leases"] == []  # a preview takes nothing

    held = [bob.post("/leases", json=ONE_GPU).json() for _ in range(2)]
    assert all(x["status"] == "active" for x in held)
    assert preview(alice, ONE_GPU)["message"] == "all 2 GPUs are in use; you would be next"
    queued = admin.post("/leases", json=ONE_GPU).json()
    assert queued["status"] == "queued"
    p = preview(alice, ONE_GPU)
    assert (p["outcome"], p["ahead"]) == ("queue", 1)
    assert p["message"] == "1 request ahead of you; 0 of 2 GPUs free"

    mig = preview(alice, {"shape": {"kind": "mig", "profile": "3g.20gb"}})
    assert mig["outcome"] == "grant" and mig["message"] == "2 of 2 MIG 3g.20gb slices free"

    assert admin.put("/quotas/groups/cs101", json={"max_units": 0.5}).status_code == 200
    p = preview(alice, ONE_GPU)
    assert p["outcome"] == "refuse" and p["error"] == "quota_exceeded"
    assert p["message"].startswith("group cs101 uses 0 of its 0.5 GPU units")
    p = preview(alice, {"shape": {"kind": "gpu", "count": 3}})
    assert p["outcome"] == "refuse" and p["error"] == "unsatisfiable"


def test_preview_validates_like_a_request(people):
    r = people["alice"].post("/leases/preview", json={"shape": {"kind": "gpu", "count": 0}})
    assert r.status_code == 400 and r.json()["field"] == "shape.count"
    r = people["alice"].post("/leases/preview", json={**ONE_GPU, "user": "bob"})
    assert r.status_code == 403


def test_admin_previews_and_reads_me_for_a_user(people):
    admin = people["admin"]
    assert admin.put("/quotas/groups/cs101", json={"max_units": 1}).status_code == 200
    p = preview(admin, {**ONE_GPU, "user": "alice"})
    assert p["outcome"] == "grant" and p["group"] == "cs101"  # alice's groups, from the hub
    me = admin.get("/me", params={"user": "alice"}).json()
    assert me["name"] == "alice" and me["groups"] == ["cs101"] and me["admin"] is False
    assert [q["name"] for q in me["quotas"]] == ["alice", "cs101"]
    assert people["bob"].get("/me", params={"user": "alice"}).status_code == 403
    r = admin.get("/me", params={"user": "nobody-like-this"})
    assert r.status_code == 404


def test_leases_of_servers_gone_from_the_hub_are_released(people):
    admin = people["admin"]
    # a lease for a server bob does not have (as after a hub crash mid-stop)
    lost = admin.post("/leases", json={**ONE_GPU, "user": "bob", "label": "server:bob/"}).json()
    other = admin.post("/leases", json={**ONE_GPU, "user": "bob", "label": "cli"}).json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if admin.get(f"/leases/{lost['id']}").json()["status"] == "released":
            break
        time.sleep(0.25)
    ended = admin.get(f"/leases/{lost['id']}").json()
    assert ended["status"] == "released"
    assert ended["end_reason"] == "server bob's default server is gone (reconciled)"
    assert admin.get(f"/leases/{other['id']}").json()["status"] == "active"  # not a server's


def test_settings_of_an_override_file_reach_the_service(tmp_path):
    """The service reads the file the hub was started with, not only the base config."""
    h = Hub(
        tmp_path / "override",
        extra_config='c.GpuhubService.default_user_quota = {"max_units": 1, "period": "day"}\n',
    ).start()
    try:
        with h.client(h.add_user("dora")) as dora:
            (own,) = dora.get("/me").json()["quotas"]
        assert own["quota"]["max_units"] == 1 and own["quota"]["period"] == "day"
    finally:
        h.stop()
