"""Cohorts that borrow and lend, through a real hub: group quotas that name a cohort,
a lease past its group's share borrowed from the other group (shown on the lease and in
both groups' quota status), and group-only fields refused on user quotas.

The hub is the shared one (``shared_hub``); the groups and users are this module's own.
"""

from __future__ import annotations

import pytest

from tests.support.hub import unique, users_on

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

SEAT = {"kind": "shared", "model": "L4"}  # a quarter of an L4


@pytest.fixture(scope="module")
def w(shared_hub):
    g = {"a": unique("lab-a"), "b": unique("lab-b"), "cohort": unique("dept")}
    with users_on(shared_hub, groups=[g["a"]]) as ns:
        ns.g = g
        yield ns


def put_quota(w, group: str, **spec):
    r = w.admin.put(f"/quotas/groups/{group}", json=spec, params={"create": "true"})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_lease_past_its_groups_share_borrows_from_the_cohort(w) -> None:
    a, b, cohort = w.g["a"], w.g["b"], w.g["cohort"]
    put_quota(w, a, max_units=0.25, cohort=cohort)
    lender = put_quota(w, b, max_units=0.5, cohort=cohort, lend_limit=0.25)
    assert lender["lent_units"] == 0.0 and lender["quota"]["lend_limit"] == 0.25
    own = w.alice.post("/leases", json={"shape": SEAT, "group": a, "label": "own"}).json()
    r = w.alice.post("/leases", json={"shape": SEAT, "group": a, "label": "job:borrowed"})
    assert r.status_code == 201, r.text
    borrowed = r.json()
    assert (own["borrowed_from"], borrowed["borrowed_from"]) == (None, b)
    assert w.admin.get(f"/quotas/groups/{b}").json()["lent_units"] == 0.25
    assert w.admin.get(f"/quotas/groups/{a}").json()["borrowed_units"] == 0.25
    # b lends a quarter at most, and a server never borrows
    for label, says in (("job:more", "nothing to borrow"), ("server:x/", "servers do not")):
        r = w.alice.post("/leases", json={"shape": SEAT, "group": a, "label": label})
        assert r.status_code == 403 and says in r.json()["message"], r.text
    for lease in (own, borrowed):
        assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200
    assert w.admin.get(f"/quotas/groups/{b}").json()["lent_units"] == 0.0


def test_cohort_fields_are_for_group_quotas_with_a_share(w) -> None:
    alice = w.names["alice"]
    r = w.admin.put(f"/quotas/users/{alice}", json={"max_units": 1, "cohort": "dept"})
    assert r.status_code == 400 and r.json()["field"] == "cohort", r.text
    assert "group quotas only" in r.json()["message"]
    r = w.admin.put(f"/quotas/users/{alice}", json={"max_units": 1, "lend_limit": 1})
    assert r.status_code == 400 and "need a cohort" in r.json()["message"], r.text
    assert w.admin.get(f"/quotas/users/{alice}").json()["default"] is True  # unchanged
    r = w.admin.put(f"/quotas/groups/{w.g['a']}", json={"cohort": "dept"})
    assert r.status_code == 400 and "needs max_units" in r.json()["message"]
    r = w.admin.put(f"/quotas/groups/{w.g['a']}", json={"max_units": 1, "cohort": "a b"})
    assert r.status_code == 400 and r.json()["field"] == "cohort"
