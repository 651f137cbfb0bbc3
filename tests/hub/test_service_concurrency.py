"""The scheduler's invariants under a burst of simultaneous REST requests, and restarts.

A real JupyterHub with the gpuhub service in front of a simulated pool of 8 GPUs: 25 users
fire 100 requests at once through the hub's proxy. Whatever order the service sees them
in, no GPU is ever in two active leases, no quota is ever exceeded, what waits is granted
in queue order as GPUs come free, and the ledger adds up. Then a restart with active and
queued leases must bring back exactly the same picture. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from types import SimpleNamespace

import httpx
import pytest

from tests.support import http
from tests.support.hub import Hub

pytestmark = [pytest.mark.hub]

SPEC = "n1: 8xH100-80GB[nvlink]"
POOL = 8
USERS = [f"u{i:02d}" for i in range(25)]
COHORT = USERS[:10]  # group "cohort": at most 6 units between them
COHORT_MAX, USER_MAX, PER_USER = 6, 4, 4
ALL_STATUSES = ["queued", "active", "released", "cancelled", "refused"]
ONE_GPU = {"shape": {"kind": "gpu", "count": 1}}


# -- fixtures --------------------------------------------------------------------------


async def _setup_users(hub: Hub) -> dict[str, str]:
    """Create the 25 users, the cohort group and a token each, concurrently."""
    headers = {"Authorization": f"token {hub.admin_token}"}
    async with http.async_client(base_url=f"{hub.url}/hub/api", headers=headers, timeout=60) as api:
        r = await api.post("/users", json={"usernames": USERS})
        assert r.status_code == 201, r.text
        r = await api.post("/groups/cohort")
        assert r.status_code == 201, r.text
        r = await api.post("/groups/cohort/users", json={"users": COHORT})
        assert r.status_code == 200, r.text
        replies = await asyncio.gather(
            *(api.post(f"/users/{u}/tokens", json={"note": "burst"}) for u in USERS)
        )
    assert all(r.status_code == 201 for r in replies), [r.text for r in replies]
    return {u: r.json()["token"] for u, r in zip(USERS, replies, strict=True)}


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def w(request, tmp_path_factory):
    """A hub on an 8-GPU simulated pool, 25 users with tokens and quotas, and the admin;
    first come, first served (no fair share), so that the queue's order is the requests'."""
    env = {"GPUHUB_SIMULATED_SPEC": SPEC, "GPUHUB_FAIR_SHARE_HALF_LIFE_DAYS": "0"}
    if request.param == "postgresql":
        env["GPUHUB_DB_URL"] = request.getfixturevalue("postgres").create_database()
    hub = Hub(tmp_path_factory.mktemp(f"burst-{request.param}"), env=env)
    try:
        hub.start()
        tokens = asyncio.run(_setup_users(hub))
        admin_token = hub.add_user(hub.credentials()["admin_user"])
        with hub.client(admin_token) as admin:
            for u in USERS:
                r = admin.put(f"/quotas/users/{u}", json={"max_units": USER_MAX})
                assert r.status_code == 200, r.text
            r = admin.put("/quotas/groups/cohort", json={"max_units": COHORT_MAX})
            assert r.status_code == 200, r.text
        yield SimpleNamespace(hub=hub, db=request.param, tokens=tokens, admin_token=admin_token)
    finally:
        hub.stop()


@pytest.fixture
def admin(w):
    with w.hub.client(w.admin_token) as client:
        yield client


# -- helpers ---------------------------------------------------------------------------


def ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def live(admin: httpx.Client) -> list[dict]:
    r = admin.get("/leases", params={"status": ["queued", "active"], "limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()["leases"]


def every_lease(admin: httpx.Client) -> list[dict]:
    r = admin.get("/leases", params={"status": ALL_STATUSES, "limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()["leases"]


def check_invariants(admin: httpx.Client) -> tuple[list[dict], list[dict]]:
    """Check the pool, the queue and the quotas against each other; return (active, queued)."""
    leases = live(admin)
    active = sorted((x for x in leases if x["status"] == "active"), key=lambda x: x["id"])
    queued = sorted((x for x in leases if x["status"] == "queued"), key=lambda x: x["position"])
    # no device in two active leases, and never more than the pool
    devices = [d["uuid"] for x in active for d in x["devices"]]
    assert len(devices) == len(set(devices)) == len(active) <= POOL
    assert all(x["units"] == 1.0 and len(x["devices"]) == 1 for x in active)
    # a GPU is left idle only when nothing waits
    assert len(active) == POOL or not queued
    # the queue: positions 1..n, oldest first (all have the same priority)
    assert [x["position"] for x in queued] == list(range(1, len(queued) + 1))
    assert [x["id"] for x in queued] == sorted(x["id"] for x in queued)
    assert all(x["devices"] == [] and x["granted_at"] is None for x in queued)
    # quotas: what is active, and what is held (active + queued)
    held = Counter(x["user"] for x in leases)
    assert max(held.values(), default=0) <= USER_MAX
    cohort_active = sum(x["units"] for x in active if x["group"] == "cohort")
    assert cohort_active <= COHORT_MAX
    assert sum(x["units"] for x in leases if x["group"] == "cohort") <= COHORT_MAX
    group = admin.get("/quotas/groups/cohort").json()
    assert group["units_active"] == cohort_active <= COHORT_MAX
    assert group["units_active"] + group["units_queued"] <= COHORT_MAX
    # the pool view agrees with the leases
    pool = admin.get("/pool").json()
    holders = {
        g["uuid"]: [h["lease"] for h in g["holders"]] for n in pool["nodes"] for g in n["gpus"]
    }
    assert holders == {
        uuid: [x["id"] for x in active if x["devices"][0]["uuid"] == uuid] for uuid in holders
    }
    assert pool["units_free"] == POOL - len(active)
    assert pool["queue_length"] == len(queued)
    return active, queued


async def burst(hub: Hub, tokens: dict[str, str]) -> list[tuple[str, httpx.Response]]:
    """Every user fires PER_USER one-GPU requests, all 100 in flight at once."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with http.async_client(base_url=hub.api, limits=limits, timeout=120) as client:

        async def one(user: str, i: int) -> tuple[str, httpx.Response]:
            r = await client.post(
                "/leases",
                json={**ONE_GPU, "label": f"{user}/{i}"},
                headers={"Authorization": f"token {tokens[user]}"},
            )
            return user, r

        return await asyncio.gather(*(one(u, i) for u in USERS for i in range(PER_USER)))


# -- tests -----------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_simultaneous_requests_never_break_the_pool_or_the_quotas(w, admin):
    assert live(admin) == []
    replies = asyncio.run(burst(w.hub, w.tokens))
    assert len(replies) == len(USERS) * PER_USER >= 100

    granted: list[dict] = []
    refused: Counter = Counter()
    for user, r in replies:
        if r.status_code == 201:
            granted.append(r.json())
            assert granted[-1]["user"] == user
            continue
        assert r.status_code == 403, r.text
        err = r.json()
        assert err["error"] == "quota_exceeded", err
        assert user in COHORT and "group cohort uses" in err["message"], (user, err)
        assert f"of its {COHORT_MAX} GPU units" in err["message"], err
        refused[user] += 1
    # the cohort got exactly its 6 units, everyone else all of theirs
    by_user = Counter(x["user"] for x in granted)
    assert sum(by_user[u] for u in COHORT) == COHORT_MAX
    assert all(by_user[u] == PER_USER for u in USERS if u not in COHORT)
    assert all(by_user[u] + refused[u] == PER_USER for u in USERS)
    assert all(x["group"] == ("cohort" if x["user"] in COHORT else None) for x in granted)
    accepted = COHORT_MAX + PER_USER * (len(USERS) - len(COHORT))
    assert len(granted) == accepted

    # exactly 8 active on 8 distinct devices; the rest queued behind them
    first_active = [x for x in granted if x["status"] == "active"]
    assert len(first_active) == POOL
    assert len({x["devices"][0]["uuid"] for x in first_active}) == POOL
    assert all(x["status"] == "queued" for x in granted if x not in first_active)
    assert max(x["id"] for x in first_active) < min(
        x["id"] for x in granted if x["status"] == "queued"
    )
    active, queued = check_invariants(admin)
    assert {x["id"] for x in active} == {x["id"] for x in first_active}
    assert len(queued) == accepted - POOL
    assert {x["id"] for x in queued} | {x["id"] for x in active} == {x["id"] for x in granted}

    # release the active leases one by one: the head of the queue takes the freed GPU
    grants = Counter(x["devices"][0]["uuid"] for x in active)
    frees: Counter = Counter()
    granted_order = []
    while active:
        victim = active[0]
        head = queued[0] if queued else None
        r = admin.delete(f"/leases/{victim['id']}")
        assert r.status_code == 200, r.text
        ended = r.json()
        assert ended["status"] == "released" and ended["devices"] == victim["devices"]
        frees[ended["devices"][0]["uuid"]] += 1
        new_active, new_queued = check_invariants(admin)
        assert victim["id"] not in {x["id"] for x in new_active + new_queued}
        fresh = [x for x in new_active if x["id"] not in {y["id"] for y in active}]
        if head is None:
            assert fresh == [] and len(new_active) == len(active) - 1
        else:
            (got,) = fresh
            assert got["id"] == head["id"]  # in queue order
            assert got["devices"] == victim["devices"]  # on the GPU just freed
            assert [x["id"] for x in new_queued] == [x["id"] for x in queued[1:]]
            grants[got["devices"][0]["uuid"]] += 1
            granted_order.append(got["id"])
        active, queued = new_active, new_queued
    assert granted_order == sorted(granted_order)
    assert len(granted_order) == accepted - POOL

    # everything ended; each grant of a device was freed exactly once
    leases = every_lease(admin)
    ours = [x for x in leases if x["id"] in {y["id"] for y in granted}]
    assert len(ours) == accepted and all(x["status"] == "released" for x in ours)
    assert grants == frees and sum(grants.values()) == accepted
    assert grants == Counter(x["devices"][0]["uuid"] for x in ours)
    for uuid in grants:  # and a device's leases never overlapped in time
        spans = sorted(
            (ts(x["granted_at"]), ts(x["ended_at"]))
            for x in ours
            if x["devices"][0]["uuid"] == uuid
        )
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), uuid

    # the ledger is the sum of units x time held, over every lease ever granted
    assert not [x for x in leases if x["status"] in ("queued", "active")]
    expected = sum(
        x["units"] * (ts(x["ended_at"]) - ts(x["granted_at"])) / 3600
        for x in leases
        if x["granted_at"] is not None
    )
    usage = admin.get("/usage", params={"by": "day"}).json()
    assert abs(usage["total_gpu_hours"] - expected) <= 1e-6
    per_user = admin.get("/usage", params={"by": "user"}).json()["rows"]
    assert sum(row["leases"] for row in per_user) == len([x for x in leases if x["granted_at"]])
    metrics = admin.get(f"{w.hub.url}/services/gpuhub/metrics").text
    (booked,) = re.findall(r"^gpuhub_gpu_hours_total (\S+)$", metrics, re.M)
    assert abs(float(booked) - expected) <= 1e-6


@pytest.mark.timeout(180)
def test_restart_keeps_active_and_queued_leases_and_the_queue_order(w, admin):
    assert live(admin) == []
    clients = {u: w.hub.client(w.tokens[u]) for u in USERS}
    try:
        ids = []
        for u in ("u20", "u21", "u22", "u00", "u23", "u01"):  # 24 requests: 8 run, 16 wait
            for _ in range(PER_USER):
                r = clients[u].post("/leases", json=ONE_GPU)
                assert r.status_code in (201, 403), r.text
                if r.status_code == 201:
                    ids.append(r.json()["id"])
        # holes in the queue: one cancelled while waiting, one active released
        assert clients["u22"].delete(f"/leases/{ids[9]}").json()["status"] == "cancelled"
        assert clients["u20"].delete(f"/leases/{ids[0]}").json()["status"] == "released"
        active, queued = check_invariants(admin)
        assert len(active) == POOL and len(queued) >= 5

        def picture() -> list[tuple]:
            return [
                (x["id"], x["user"], x["group"], x["status"], x["position"], x["devices"],
                 x["units"], x["requested_at"], x["granted_at"])
                for x in live(admin)
            ]  # fmt: skip

        def queue_order() -> list:
            return [x["id"] for x in admin.get("/queue").json()["queue"]]

        def ended() -> list[dict]:
            statuses = {"status": ["released", "cancelled", "refused"], "limit": 10000}
            return admin.get("/leases", params=statuses).json()["leases"]

        before, order_before, ended_before = picture(), queue_order(), ended()
        w.hub.restart()
        assert picture() == before
        assert queue_order() == order_before
        assert ended() == ended_before
        after_active, after_queued = check_invariants(admin)
        assert [x["id"] for x in after_active] == [x["id"] for x in active]
        assert [x["id"] for x in after_queued] == [x["id"] for x in queued]

        # the restored queue still works: a release hands the GPU to its head
        head = after_queued[0]
        freed = after_active[0]
        assert admin.delete(f"/leases/{freed['id']}").json()["status"] == "released"
        got = admin.get(f"/leases/{head['id']}").json()
        assert got["status"] == "active" and got["devices"] == freed["devices"]
        check_invariants(admin)
    finally:
        for client in clients.values():
            client.close()
        for x in live(admin):
            admin.delete(f"/leases/{x['id']}")
