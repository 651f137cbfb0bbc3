"""Fixtures of the hub tier: the shared hub (``shared_hub``, tests/conftest.py) for the CLI's
modules, a pool made busy by a test's own user, and the shared hub left as each test
found it."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.support.cli import ADMIN
from tests.support.hub import Hub, unique

#: A job that has not ended (gpuhub.terms.JOB_LIVE_STATUSES).
LIVE_JOBS = ("queued", "starting", "running")


@pytest.fixture(scope="module")
def hub(shared_hub: Hub) -> Hub:
    """The shared hub on the default configuration: a test's users and groups are its own."""
    return shared_hub


@pytest.fixture(scope="module")
def admin_token(hub: Hub) -> str:
    """A token of the gpuhub admin (``admin``, added once; each module gets a token)."""
    return hub.add_user(ADMIN)


def _live(hub: Hub) -> dict[str, set[int]]:
    """The ids of everything on the hub that holds devices or may start a job: live
    leases, live jobs, job definitions and reservations (as the test-admin service)."""
    with hub.client(hub.admin_token) as admin:
        jobs = admin.get("/jobs", params={"status": LIVE_JOBS}).json()["jobs"]
        return {
            "jobs": {x["id"] for x in jobs},
            "job-definitions": {
                x["id"] for x in admin.get("/job-definitions").json()["definitions"]
            },
            "leases": {x["id"] for x in admin.get("/leases").json()["leases"]},
            "reservations": {x["id"] for x in admin.get("/reservations").json()["reservations"]},
        }


@pytest.fixture(autouse=True)
def _leave_the_shared_hub_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared hub, end what it left: its jobs are cancelled, its
    schedules removed, its leases released and its reservations deleted, so the next
    test (of any module) starts on the pool as this one found it."""
    if "shared_hub" not in request.fixturenames:
        yield
        return
    hub: Hub = request.getfixturevalue("shared_hub")
    before = _live(hub)
    yield
    if hub.proc is None:
        return
    with hub.client(hub.admin_token) as admin:
        for kind in ("jobs", "job-definitions", "leases", "reservations"):  # jobs hold leases
            for left in sorted(_live(hub)[kind] - before[kind]):
                r = admin.delete(f"/{kind}/{left}")
                assert r.status_code in (200, 204, 404, 409), r.text


@pytest.fixture
def busy_pool(hub: Hub) -> Iterator[SimpleNamespace]:
    """Every whole GPU that is free now held by a user of this test (``holder-…``, a quota
    of 100 units), one lease each, so that a request for a whole GPU queues with "all 8
    GPUs are held" however much of the pool other tests hold. A namespace with ``user``,
    ``leases`` and ``position`` (where a request made now queues: behind everyone queued).
    The leases are released and the quota removed at the end."""
    holder = unique("holder")
    with hub.client(hub.add_user(holder)) as mine, hub.client(hub.admin_token) as admin:
        r = admin.put(f"/quotas/users/{holder}", json={"max_units": 100})
        assert r.status_code == 200, r.text
        held: list[dict] = []
        try:
            while True:
                r = mine.post("/leases", json={"shape": {"kind": "gpu", "count": 1}})
                assert r.status_code == 201, r.text
                held.append(r.json())
                if held[-1]["status"] != "active":  # the pool is busy: this one queued
                    break
            assert mine.delete(f"/leases/{held.pop()['id']}").status_code == 200
            queued = admin.get("/queue").json()["length"]
            yield SimpleNamespace(user=holder, leases=held, position=queued + 1)
        finally:
            for lease in held:
                mine.delete(f"/leases/{lease['id']}")
            admin.delete(f"/quotas/users/{holder}")
