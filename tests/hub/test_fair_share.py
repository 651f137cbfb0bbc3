"""Fair share through a real hub on the embedded default (a 7-day half-life): a request of
a group that has used GPUs waits behind a newer one of a group that has not, and says why.

The hub is the shared one (``shared_hub``); the groups and users are this module's own.
"""

from __future__ import annotations

import pytest

from tests.support.hub import unique, users_on

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

WHOLE = {"kind": "gpu", "count": 1}


@pytest.fixture(scope="module")
def w(shared_hub):
    heavy, light = unique("heavy"), unique("light")
    with users_on(shared_hub, groups=[heavy]) as ns:
        ns.heavy, ns.light = heavy, light
        yield ns


def test_a_newer_request_of_a_group_that_used_less_goes_first(w) -> None:
    for group in (w.heavy, w.light):
        r = w.admin.put(
            f"/quotas/groups/{group}", json={"max_units": 16}, params={"create": "true"}
        )
        assert r.status_code == 200, r.text
    r = w.admin.put(f"/quotas/users/{w.names['alice']}", json={"max_units": 16})
    assert r.status_code == 200, r.text
    held = []
    try:
        while True:  # alice (heavy) takes every whole GPU that is free
            r = w.alice.post("/leases", json={"shape": WHOLE, "group": w.heavy})
            assert r.status_code == 201, r.text
            held.append(r.json()["id"])
            if r.json()["status"] == "queued":
                mine = r.json()
                break
        bob = w.hub.add_user(unique("bob"), groups=[w.light])
        with w.hub.client(bob) as b:
            r = b.post("/leases", json={"shape": WHOLE, "group": w.light})
            assert r.status_code == 201 and r.json()["status"] == "queued", r.text
            theirs = r.json()
            held.append(theirs["id"])
            queue = [x["id"] for x in w.admin.get("/queue").json()["queue"]]
            assert queue.index(theirs["id"]) < queue.index(mine["id"])
        why = w.alice.get(f"/leases/{mine['id']}").json()["waiting"]["message"]
        assert f"group {w.heavy} has used " in why and "of its share lately" in why, why
        assert "1 newer request of a group with less use go first" in why, why
    finally:
        for lease_id in held:
            w.admin.delete(f"/leases/{lease_id}")
