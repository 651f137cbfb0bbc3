"""The gpuhub REST API, end to end: a real JupyterHub, its proxy and the gpuhub service.

Every request goes through the hub's public URL (``/services/gpuhub/api/v1``) with real
JupyterHub tokens. The lease and quota core runs against SQLite and PostgreSQL; the rest
(auth, pool view, usage, metrics, 404s) once, on SQLite.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from types import SimpleNamespace

import httpx
import pytest

from tests.support import http
from tests.support.hub import Hub

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

ALL_STATUSES = ["queued", "active", "released", "cancelled", "refused"]
ONCE = pytest.mark.parametrize("w", ["sqlite"], indirect=True)  # not worth a second database


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def w(request, tmp_path_factory):
    """A running hub (default simulated pool) with users alice, bob (group cs101), carol
    (no group) and the admin, and an API client for each."""
    env = {}
    if request.param == "postgresql":
        env["GPUHUB_DB_URL"] = request.getfixturevalue("postgres").create_database()
    hub = Hub(tmp_path_factory.mktemp(f"api-{request.param}"), env=env)
    clients: list[httpx.Client] = []
    try:
        hub.start()
        admin = hub.credentials()["admin_user"]
        tokens = {
            "alice": hub.add_user("alice", groups=["cs101"]),
            "bob": hub.add_user("bob", groups=["cs101"]),
            "carol": hub.add_user("carol"),
            "admin": hub.add_user(admin),
        }
        ns = SimpleNamespace(hub=hub, db=request.param, admin_name=admin, tokens=tokens)
        for name, token in tokens.items():
            client = hub.client(token)
            clients.append(client)
            setattr(ns, name, client)
        yield ns
    finally:
        for client in clients:
            client.close()
        hub.stop()


@pytest.fixture(autouse=True)
def _clean(request):
    """After each test: end every live lease and remove every quota (the hub is shared)."""
    yield
    if "w" not in request.fixturenames:
        return
    w = request.getfixturevalue("w")
    if w.hub.proc is None:
        return
    for lease in w.admin.get("/leases").json()["leases"]:
        assert w.admin.delete(f"/leases/{lease['id']}").status_code == 200
    for q in w.admin.get("/quotas").json()["quotas"]:
        assert w.admin.delete(f"/quotas/{q['kind']}s/{q['name']}").status_code == 204


# -- helpers ---------------------------------------------------------------------------


def gpu(count: int = 1, **kw) -> dict:
    return {"shape": {"kind": "gpu", "count": count}, **kw}


def created(client: httpx.Client, body: dict) -> dict:
    r = client.post("/leases", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def is_json_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    data = r.json()
    assert data["status"] == status and data["message"], data
    return data


def quota_says(error: dict, uses: str, limit: str) -> bool:
    """A quota refusal names the quota: 'user bob uses 1 of their 2 GPU units'."""
    assert error["error"] == "quota_exceeded", error
    whose = "their" if uses.startswith("user ") else "its"
    words = rf"{re.escape(uses)} {whose} {re.escape(limit)}"
    assert re.search(words, error["message"]), error["message"]
    return True


def snapshot(w) -> dict:
    """Everything a refused request must leave alone: leases, quotas, the ledger."""
    leases = w.admin.get("/leases", params={"status": ALL_STATUSES, "limit": 10000})
    quotas = w.admin.get("/quotas")
    usage = w.admin.get("/usage", params={"by": "user"})
    assert leases.status_code == quotas.status_code == usage.status_code == 200
    strip = ("gpu_hours", "credits")  # active leases' hours (and charges) grow with the clock
    return {
        "leases": [{k: v for k, v in x.items() if k not in strip} for x in leases.json()["leases"]],
        "quotas": [
            {k: v for k, v in q.items() if not k.startswith(("gpu_hours", "credits"))}
            for q in quotas.json()["quotas"]
        ],
        "users_in_ledger": [row["user"] for row in usage.json()["rows"]],
    }


# -- no login, wrong login, 404 ---------------------------------------------------------


@ONCE
def test_index_needs_no_login_and_says_simulated(w):
    for url in (w.hub.api, w.hub.api + "/"):
        r = http.get(url, timeout=10)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["service"] == "gpuhub" and data["api"] == "v1"
        assert data["simulated"] is True


@ONCE
def test_unauthenticated_requests_get_401_json(w):
    with http.client(base_url=w.hub.api, timeout=10) as anon:
        for method, path in [
            ("GET", "/me"),
            ("GET", "/pool"),
            ("GET", "/leases"),
            ("POST", "/leases"),
            ("DELETE", "/leases/1"),
            ("GET", "/usage"),
            ("PUT", "/quotas/users/alice"),
        ]:
            r = anon.request(method, path, json=gpu() if method != "GET" else None)
            data = is_json_error(r, 401)
            assert data["error"] == "unauthenticated"
            assert "token" in data["message"] and "log in" in data["message"]
            assert r.headers.get("www-authenticate", "").startswith("token")
        bogus = anon.get("/me", headers={"Authorization": "token not-a-real-token"})
        is_json_error(bogus, 401)


@ONCE
def test_token_without_the_service_access_scope_is_403(w):
    r = w.hub.hub_api("POST", "users/alice/tokens", json={"scopes": ["read:users:name!user"]})
    assert r.status_code == 201, r.text
    with w.hub.client(r.json()["token"]) as limited:
        for path in ("/me", "/pool", "/leases"):
            data = is_json_error(limited.get(path), 403)
            assert "access:services" in data["message"]
        is_json_error(limited.post("/leases", json=gpu()), 403)
    assert w.admin.get("/leases").json()["leases"] == []


@ONCE
def test_unknown_endpoint_is_404_json(w):
    for client in (w.alice, http.client(base_url=w.hub.api, timeout=10)):
        data = is_json_error(client.get("/no/such/thing"), 404)
        assert data["error"] == "not_found" and "/no/such/thing" in data["message"]
    is_json_error(w.alice.get("/leases/999999"), 404)


@ONCE
def test_bad_names_in_urls_and_queries_are_400(w):
    data = is_json_error(w.admin.put("/quotas/users/%20ab", json={"max_units": 1}), 400)
    assert data["field"] == "name" and "' ab'" in data["message"]
    data = is_json_error(w.alice.get("/leases", params={"user": ".."}), 400)
    assert data["field"] == "user"
    data = is_json_error(w.alice.get("/usage", params={"group": "x/y"}), 400)
    assert data["field"] == "group"
    assert w.admin.get("/quotas").json()["quotas"] == []


# -- pool -----------------------------------------------------------------------------


@ONCE
def test_pool_is_simulated_and_hides_other_users_holders(w):
    lease = created(w.alice, gpu())
    held = lease["devices"][0]["uuid"]
    views = {who: getattr(w, who).get("/pool") for who in ("alice", "bob", "admin")}
    for who, r in views.items():
        assert r.status_code == 200, r.text
        pool = r.json()
        assert pool["simulated"] is True
        gpus = [g for n in pool["nodes"] for g in n["gpus"]]
        assert all(n["simulated"] is True for n in pool["nodes"])
        assert all(n["usable"] is True and n["state"] == "" for n in pool["nodes"])
        assert all(g["held_outside"] is None for g in gpus)  # nothing outside gpuhub here
        assert gpus and all(g["simulated"] is True for g in gpus), who
        assert pool["units_total"] == 10.0 and pool["units_free"] == 9.0
        (device,) = [g for g in gpus if g["uuid"] == held]
        assert device["state"] == "busy"
        (holder,) = device["holders"]
        assert holder["units"] == 1.0
        if who == "bob":  # someone else's lease: anonymised
            assert holder == {
                "lease": None, "user": None, "group": None, "units": 1.0, "activity": None,
            }  # fmt: skip
        else:
            assert holder["lease"] == lease["id"] and holder["user"] == "alice"
            assert holder["group"] is None
        mig = [g for g in gpus if "mig_instances" in g]
        assert mig and all(m["holder"] is None for g in mig for m in g["mig_instances"])


# -- who may do what ----------------------------------------------------------------


@ONCE
def test_users_cannot_see_or_end_each_others_leases(w):
    lease = created(w.alice, gpu())
    lid = lease["id"]
    is_json_error(w.bob.get(f"/leases/{lid}"), 404)
    is_json_error(w.bob.delete(f"/leases/{lid}"), 404)
    assert w.alice.get(f"/leases/{lid}").json()["status"] == "active"
    data = is_json_error(w.bob.get("/leases", params={"user": "alice"}), 403)
    assert data["error"] == "forbidden"
    assert w.bob.get("/leases").json()["leases"] == []
    data = is_json_error(w.alice.post("/leases", json=gpu(user="bob")), 403)
    assert "bob" in data["message"]
    assert w.admin.get("/leases", params={"user": "bob"}).json()["leases"] == []
    # the admin sees and ends anyone's lease
    assert w.admin.get(f"/leases/{lid}").json()["user"] == "alice"
    assert [x["id"] for x in w.admin.get("/leases", params={"user": "alice"}).json()["leases"]] == [
        lid
    ]
    assert w.admin.delete(f"/leases/{lid}").json()["status"] == "released"


@ONCE
def test_admin_requests_for_another_user_with_their_hub_groups(w):
    assert w.admin.put("/quotas/groups/cs101", json={"max_units": 4}).status_code == 200
    r = w.admin.post("/leases", json=gpu(user="bob", label="for bob"))
    assert r.status_code == 201, r.text
    lease = r.json()
    assert lease["user"] == "bob" and lease["group"] == "cs101"  # groups asked of the hub
    assert [x["id"] for x in w.bob.get("/me").json()["leases"]] == [lease["id"]]
    q = w.admin.get("/quotas/groups/cs101").json()
    assert q["units_active"] == 1.0
    data = is_json_error(w.admin.post("/leases", json=gpu(user="nobody-here")), 404)
    assert "nobody-here" in data["message"]
    data = is_json_error(w.admin.post("/leases", json=gpu(user="carol", group="cs101")), 403)
    assert data["field"] == "group"


@ONCE
def test_users_cannot_manage_quotas(w):
    is_json_error(w.alice.put("/quotas/users/alice", json={"max_units": 99}), 403)
    is_json_error(w.alice.put("/quotas/groups/cs101", json={"max_units": 99}), 403)
    is_json_error(w.alice.delete("/quotas/users/alice"), 403)
    is_json_error(w.alice.get("/quotas"), 403)
    is_json_error(w.alice.get("/quotas/users/bob"), 403)
    own = w.alice.get("/quotas/users/alice")
    assert own.status_code == 200 and own.json()["default"] is True
    assert w.admin.get("/quotas").json()["quotas"] == []


# -- usage and metrics ----------------------------------------------------------------


@ONCE
def test_usage_as_json_and_csv_and_only_ones_own(w):
    for client in (w.alice, w.bob):
        lease = created(client, gpu())
        assert client.delete(f"/leases/{lease['id']}").json()["status"] == "released"
    r = w.alice.get("/usage")
    assert r.status_code == 200, r.text
    usage = r.json()
    assert usage["by"] == ["day", "user", "group"]
    assert usage["rows"] and {row["user"] for row in usage["rows"]} == {"alice"}
    assert usage["total_gpu_hours"] == pytest.approx(
        sum(row["gpu_hours"] for row in usage["rows"]), abs=1e-6
    )
    r = w.alice.get("/usage", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == "day,user,group,gpu_hours,credits,leases"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["user"] for row in rows} == {"alice"}
    data = is_json_error(w.alice.get("/usage", params={"user": "bob"}), 403)
    assert data["error"] == "forbidden"
    everyone = w.admin.get("/usage").json()
    assert {"alice", "bob"} <= {row["user"] for row in everyone["rows"]}
    assert {
        row["user"] for row in w.admin.get("/usage", params={"user": "bob"}).json()["rows"]
    } == {"bob"}
    is_json_error(w.alice.get("/usage", params={"format": "xml"}), 400)
    is_json_error(w.alice.get("/usage", params={"by": "colour"}), 400)


@ONCE
def test_metrics_need_an_admin_token(w):
    url = f"{w.hub.url}/services/gpuhub/metrics"
    is_json_error(http.get(url, timeout=10), 401)
    user = http.get(url, headers={"Authorization": f"token {w.tokens['alice']}"}, timeout=10)
    is_json_error(user, 403)
    created(w.alice, gpu())
    r = http.get(url, headers={"Authorization": f"token {w.tokens['admin']}"}, timeout=10)
    assert r.status_code == 200, r.text
    text = r.text
    assert re.search(r'^gpuhub_devices\{.*simulated="true".*state="busy".*\} 1\.0$', text, re.M)
    assert re.search(r"^gpuhub_queue_length 0\.0$", text, re.M)
    assert re.search(r"^gpuhub_gpu_hours_total [0-9.e+-]+$", text, re.M)
    assert re.search(r"^gpuhub_leases_active 1\.0$", text, re.M)


# -- the lease and quota core: SQLite and PostgreSQL ---------------------------------


def test_me_shows_default_user_quota_group_quota_and_use(w):
    me = w.alice.get("/me").json()
    assert me["name"] == "alice" and me["groups"] == ["cs101"] and me["admin"] is False
    (user_q,) = me["quotas"]  # cs101 has no quota yet
    assert user_q["kind"] == "user" and user_q["name"] == "alice"
    assert user_q["quota"]["max_units"] == 2 and user_q["quota"]["gpu_hours"] == 40
    assert user_q["quota"]["period"] == "week"
    assert user_q["units_active"] == 0 and user_q["gpu_hours_left"] == pytest.approx(40, abs=1e-3)
    assert w.alice.get("/quotas/users/alice").json()["default"] is True

    r = w.admin.put("/quotas/groups/cs101", json={"max_units": 3, "gpu_hours": 100})
    assert r.status_code == 200, r.text
    lease = created(w.alice, gpu())
    me = w.alice.get("/me").json()
    quotas = {(q["kind"], q["name"]): q for q in me["quotas"]}
    assert set(quotas) == {("user", "alice"), ("group", "cs101")}
    assert quotas[("user", "alice")]["units_active"] == 1.0
    assert quotas[("group", "cs101")]["units_active"] == 1.0
    assert quotas[("group", "cs101")]["quota"]["max_units"] == 3
    assert 0 <= quotas[("group", "cs101")]["gpu_hours_used"] < 0.01
    assert [x["id"] for x in me["leases"]] == [lease["id"]] and me["queued"] == []
    admin_me = w.admin.get("/me").json()
    assert admin_me["name"] == w.admin_name and admin_me["admin"] is True


def test_lease_lifecycle(w):
    r = w.alice.post("/leases", json=gpu(label="server:alice/", hours=2))
    assert r.status_code == 201, r.text
    lease = r.json()
    lid = lease["id"]
    assert r.headers["location"] == f"/services/gpuhub/api/v1/leases/{lid}"
    assert lease["status"] == "active" and lease["user"] == "alice"
    assert lease["units"] == 1.0 and lease["label"] == "server:alice/"
    assert lease["simulated"] is True and len(lease["devices"]) == 1
    assert lease["devices"][0]["simulated"] is True
    assert lease["granted_at"] and lease["ended_at"] is None and lease["position"] is None

    got = http.get(
        w.hub.url + r.headers["location"],
        headers={"Authorization": f"token {w.tokens['alice']}"},
        timeout=10,
    )
    assert got.status_code == 200 and got.json()["id"] == lid
    assert got.json()["devices"] == lease["devices"]
    assert [x["id"] for x in w.alice.get("/leases").json()["leases"]] == [lid]

    ended = w.alice.delete(f"/leases/{lid}")
    assert ended.status_code == 200, ended.text
    ended = ended.json()
    assert ended["status"] == "released" and ended["ended_at"]
    assert ended["end_reason"] == "released by alice"
    ledger = w.admin.get("/usage", params={"user": "alice"}).json()["total_gpu_hours"]
    before = snapshot(w)

    again = w.alice.delete(f"/leases/{lid}")  # releasing twice changes nothing
    assert again.status_code == 200, again.text
    assert again.json() == ended
    assert w.alice.get(f"/leases/{lid}").json() == ended
    assert w.admin.get("/usage", params={"user": "alice"}).json()["total_gpu_hours"] == ledger
    assert snapshot(w) == before
    assert w.alice.get("/leases").json()["leases"] == []
    statuses = {"status": ["released"]}
    released = [x["id"] for x in w.alice.get("/leases", params=statuses).json()["leases"]]
    assert released.count(lid) == 1
    pool = w.admin.get("/pool").json()
    assert pool["units_free"] == pool["units_total"]


def test_queued_lease_shows_its_position_and_can_be_cancelled(w):
    assert w.admin.put("/quotas/users/alice", json={"max_units": 12}).status_code == 200
    first = created(w.alice, gpu(4, hours=2))
    second = created(w.alice, gpu(4, hours=3))
    assert first["status"] == second["status"] == "active"  # every whole GPU is taken now
    waiting = created(w.alice, gpu(4))
    assert waiting["status"] == "queued" and waiting["position"] == 1
    assert waiting["devices"] == [] and waiting["granted_at"] is None
    bobs = created(w.bob, gpu(1))
    assert bobs["status"] == "queued" and bobs["position"] == 2

    me = w.alice.get("/me").json()
    assert [x["id"] for x in me["queued"]] == [waiting["id"]]
    queue = w.bob.get("/queue").json()
    assert queue["length"] == 2
    assert queue["queue"][0]["id"] is None and queue["queue"][0]["user"] is None  # anonymised
    assert queue["queue"][1]["id"] == bobs["id"]
    assert [x["id"] for x in w.admin.get("/queue").json()["queue"]] == [waiting["id"], bobs["id"]]
    _check_why_they_wait(w, first, second, waiting, bobs)

    cancelled = w.alice.delete(f"/leases/{waiting['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["granted_at"] is None
    assert w.bob.get(f"/leases/{bobs['id']}").json()["position"] == 1

    released = w.alice.delete(f"/leases/{first['id']}").json()
    assert released["status"] == "released"
    granted = w.bob.get(f"/leases/{bobs['id']}").json()
    assert granted["status"] == "active" and granted["position"] is None
    assert granted["devices"][0]["uuid"] in {d["uuid"] for d in first["devices"]}
    # the cancelled request never held anything, so it costs nothing
    rows = w.admin.get("/leases", params={"status": "cancelled"}).json()["leases"]
    assert [(x["id"], x["gpu_hours"]) for x in rows] == [(waiting["id"], 0.0)]


def _check_why_they_wait(w, first: dict, second: dict, waiting: dict, bobs: dict) -> None:
    """Queued leases say why they wait, until when, and what is free instead (issue 10 §5)."""
    why = waiting["waiting"]
    assert why["reason"] == "pool_busy" and why["position"] == 1
    assert why["message"].startswith("all 8 GPUs are held"), why
    # it needs 4 GPUs on one node: the node of alice's first lease frees at its stated hours
    expected = dt.datetime.fromisoformat(first["granted_at"]) + dt.timedelta(hours=2)
    assert why["estimate"]["basis"] == "hours"
    at = dt.datetime.fromisoformat(why["estimate"]["at"])
    assert abs(at - expected) < dt.timedelta(milliseconds=1)
    assert "(from running leases' stated hours)" in why["estimate"]["message"]
    free = {(a["shape"]["kind"], a["free"]) for a in why["alternatives"]}
    assert ("mig", 7) in free and ("shared", 4) in free, why["alternatives"]
    assert why["summary"].startswith("Queued at position 1: all 8 GPUs are held; expected by ")
    assert "Free now: 7 MIG 1g.5gb slices (simulated)" in why["summary"]
    # bob's GPU comes after alice's queued request: at the latest when her second lease
    # ends (sooner if the ledger's history says her queued one will be short)
    bob_why = w.bob.get(f"/leases/{bobs['id']}").json()["waiting"]
    assert bob_why["estimate"]["basis"] in ("hours", "mixed"), bob_why
    latest = dt.datetime.fromisoformat(second["granted_at"]) + dt.timedelta(hours=3)
    bob_at = dt.datetime.fromisoformat(bob_why["estimate"]["at"])
    assert bob_at <= latest + dt.timedelta(milliseconds=1)
    assert bob_why["message"] == "all 8 GPUs are held"  # alice's request is another shape
    # /queue: own entries (all, for admins) are explained; others' are not
    mine, others = w.bob.get("/queue").json()["queue"][::-1]
    assert "waiting" not in others
    assert mine["waiting"]["message"] == bob_why["message"] and mine["waiting"]["position"] == 2
    assert [x["waiting"]["position"] for x in w.admin.get("/queue").json()["queue"]] == [1, 2]
    me = w.bob.get("/me").json()
    assert me["queued"][0]["waiting"]["reason"] == "pool_busy"
    assert w.alice.get(f"/leases/{first['id']}").json()["waiting"] is None  # active


def test_quotas_are_managed_by_admins_and_apply_at_once(w):
    r = w.admin.put("/quotas/groups/cs101", json={"max_units": 1})
    assert r.status_code == 200, r.text
    assert r.json()["quota"]["max_units"] == 1
    assert w.admin.get("/quotas/groups/cs101").json()["quota"]["max_units"] == 1

    alices = created(w.alice, gpu())
    assert alices["group"] == "cs101" and alices["status"] == "active"
    data = is_json_error(w.bob.post("/leases", json=gpu()), 403)
    assert data["error"] == "quota_exceeded"
    assert "group cs101 uses 1 of its 1 GPU units" in data["message"]

    assert w.admin.put("/quotas/groups/cs101", json={"max_units": 2}).status_code == 200
    bobs = created(w.bob, gpu())  # no restart needed
    assert bobs["group"] == "cs101" and bobs["status"] == "active"
    assert w.admin.get("/quotas/groups/cs101").json()["units_active"] == 2.0

    assert w.admin.delete("/quotas/groups/cs101").status_code == 204
    is_json_error(w.admin.get("/quotas/groups/cs101"), 404)
    is_json_error(w.admin.delete("/quotas/groups/cs101"), 404)

    # a user quota replaces the default, and removing it brings the default back
    r = w.admin.put("/quotas/users/carol", json={"max_units": 0, "priority": 5})
    assert r.status_code == 200, r.text
    carol = w.admin.get("/quotas/users/carol").json()
    assert carol["default"] is False and carol["quota"]["max_units"] == 0
    data = is_json_error(w.carol.post("/leases", json=gpu()), 403)
    assert data["error"] == "quota_exceeded"
    assert quota_says(data, "user carol uses 0 of", "0 GPU units")
    listed = {(q["kind"], q["name"]) for q in w.admin.get("/quotas").json()["quotas"]}
    assert listed == {("user", "carol")}
    assert w.admin.delete("/quotas/users/carol").status_code == 204
    carol = w.admin.get("/quotas/users/carol").json()
    assert carol["default"] is True and carol["quota"]["max_units"] == 2
    assert created(w.carol, gpu())["status"] == "active"

    # the default user quota names the user
    created(w.carol, gpu())
    data = is_json_error(w.carol.post("/leases", json=gpu()), 403)
    assert quota_says(data, "user carol uses 2 of", "2 GPU units")


LEASE_BODIES = [  # (body, status, field, words in the message)
    (gpu(colour="red"), 400, "colour", "unknown field"),
    ({}, 400, "shape", "required"),
    ({"shape": {"kind": "tpu"}}, 400, "shape", "shape.kind must be one of 'gpu', 'mig', 'shared'"),
    ({"shape": {"kind": "gpu", "count": 0}}, 400, "shape.count", "greater than or equal to 1"),
    ({"shape": {"kind": "gpu", "count": "two"}}, 400, "shape.count", "integer"),
    ({"shape": {"kind": "mig", "profile": "big"}}, 400, "shape.profile", "MIG profile"),
    (gpu(hours=-1), 400, "hours", "greater than 0"),
    (gpu(group="cs999"), 403, "group", "not a member of group cs999"),
    (gpu(64), 422, "shape", "64 whole GPUs"),
    ({"shape": {"kind": "mig", "profile": "7g.80gb"}}, 422, "shape", "7g.80gb"),
]

QUOTA_BODIES = [
    ({"max_units": -1}, "max_units", "greater than or equal to 0"),
    ({"period": "fortnight"}, "period", "'day', 'week', 'month' or 'term'"),
    ({"period": "term", "gpu_hours": 10}, None, "term_start"),
    ({"max_units": 1, "colour": "red"}, "colour", "unknown field"),
    ({"max_units": "lots"}, "max_units", "number"),
]


def test_invalid_requests_are_refused_and_change_nothing(w):
    assert w.admin.put("/quotas/groups/cs101", json={"max_units": 3}).status_code == 200
    created(w.bob, gpu())
    before = snapshot(w)
    for body, status, field, words in LEASE_BODIES:
        data = is_json_error(w.alice.post("/leases", json=body), status)
        assert data["field"] == field, (body, data)
        assert words in data["message"], (body, data)
    for raw, words in [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
    ]:
        data = is_json_error(w.alice.post("/leases", content=raw), 400)
        assert words in data["message"], (raw, data)
        data = is_json_error(w.admin.put("/quotas/groups/cs101", content=raw), 400)
        assert words in data["message"], (raw, data)
    for body, field, words in QUOTA_BODIES:
        for path in ("/quotas/groups/cs101", "/quotas/users/alice", "/quotas/groups/new"):
            data = is_json_error(w.admin.put(path, json=body), 400)
            assert data["field"] == field, (body, data)
            assert words in data["message"], (body, data)
    data = is_json_error(w.admin.put("/quotas/users/alice", json={"per_user_max_units": 1}), 400)
    assert data["field"] == "per_user_max_units"
    assert snapshot(w) == before
    assert w.alice.get("/me").json()["leases"] == []


def test_quota_refusals_leave_the_queue_alone(w):
    assert w.admin.put("/quotas/users/alice", json={"max_units": 4}).status_code == 200
    created(w.alice, gpu(4))
    assert w.admin.put("/quotas/users/bob", json={"max_units": 8}).status_code == 200
    created(w.bob, gpu(4))
    queued = created(w.bob, gpu(4))
    assert queued["status"] == "queued"
    before = snapshot(w)
    data = is_json_error(w.alice.post("/leases", json=gpu(1)), 403)
    assert data["error"] == "quota_exceeded"
    assert quota_says(data, "user alice uses 4 of", "4 GPU units")
    data = is_json_error(w.bob.post("/leases", json=gpu(1)), 403)
    assert quota_says(data, "user bob uses 4 of", "8 GPU units (and 4 more queued)")
    assert snapshot(w) == before
    assert w.bob.get(f"/leases/{queued['id']}").json()["position"] == 1


# -- idempotency keys --------------------------------------------------------------------


@ONCE
def test_a_retried_lease_request_with_an_idempotency_key_gets_the_same_lease(w):
    key = {"Idempotency-Key": "spawn-7f3a:alice.1"}
    first = w.alice.post("/leases", json=gpu(label="server:alice/"), headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    lease = first.json()

    again = w.alice.post("/leases", json=gpu(label="server:alice/"), headers=key)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["id"] == lease["id"] and again.json()["devices"] == lease["devices"]
    assert [x["id"] for x in w.alice.get("/leases").json()["leases"]] == [lease["id"]]

    # the same key for another request: refused, naming the key and the lease
    other = w.alice.post("/leases", json=gpu(2, label="server:alice/"), headers=key)
    error = is_json_error(other, 422)
    assert error["error"] == "idempotency_conflict", error
    assert "spawn-7f3a:alice.1" in error["message"] and str(lease["id"]) in error["message"]

    # another user's same key is their own
    bobs = w.bob.post("/leases", json=gpu(label="server:alice/"), headers=key)
    assert bobs.status_code == 201, bobs.text
    assert bobs.json()["id"] != lease["id"] and bobs.json()["user"] == "bob"

    # a retry after the lease ended gets it as it is now
    assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200
    late = w.alice.post("/leases", json=gpu(label="server:alice/"), headers=key)
    assert late.status_code == 200, late.text
    assert late.json()["id"] == lease["id"] and late.json()["status"] == "released"


@ONCE
@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "é", "a/b", "a,b"])
def test_a_malformed_idempotency_key_is_400_naming_the_header(w, bad):
    before = snapshot(w)
    r = w.alice.post("/leases", json=gpu(), headers={"Idempotency-Key": bad.encode("utf-8")})
    error = is_json_error(r, 400)
    assert error["field"] == "Idempotency-Key" and "Idempotency-Key" in error["message"], error
    assert snapshot(w) == before


def test_lease_ids_beyond_the_databases_integer_are_not_found(w):
    before = snapshot(w)
    for lease_id in ("2147483647", "2147483648", "99999999999999999999999"):
        for method in ("GET", "DELETE"):
            data = is_json_error(w.admin.request(method, f"/leases/{lease_id}"), 404)
            assert data["error"] == "not_found"
    assert snapshot(w) == before


# -- what I may ask for: GET /me/options ------------------------------------------------


def test_options_offer_the_pools_shapes_with_models_and_the_quotas_verdicts(w):
    r = w.carol.get("/me/options")
    assert r.status_code == 200, r.text
    options = r.json()
    assert options["user"] == "carol"
    by_text = {s["text"]: s for s in options["shapes"]}
    assert list(by_text) == [
        "1 whole GPU", "2 whole GPUs", "4 whole GPUs", "a MIG 1g.5gb slice", "a shared GPU",
    ]  # fmt: skip
    assert by_text["1 whole GPU"]["models_text"] == "A100-80GB or H100-80GB"
    assert by_text["a MIG 1g.5gb slice"]["models"] == ["A100-40GB"]
    assert by_text["1 whole GPU"]["outcome"] == "grant"
    # the default user quota holds at most 2 GPU units: the scheduler's own refusal
    four = by_text["4 whole GPUs"]
    assert four["outcome"] == "refuse" and "2 GPU units" in four["message"], four
    # the job limits are c.JobManager's, with the request model's shortest
    assert options["jobs"] == {
        "max_runtime_s": {"min": 60, "default": 86400, "max": 604800}, "schedules": True,
    }  # fmt: skip
    assert [p["name"] for p in options["profiles"]] == [
        "gpu-1", "gpu-2", "mig-1g.5gb", "shared", "cpu",
    ]  # fmt: skip
    assert options["profiles"][0]["models_text"] == "A100-80GB or H100-80GB"
    assert options["profiles"][3]["models"] == ["L4-24GB"]
    # the CPU-only profile: no shape, no models, nothing to preview
    cpu = options["profiles"][4]
    assert (cpu["shape"], cpu["text"], cpu["models"], cpu["gpu_counts"]) == (None, "no GPU", [], [])

    # a group quota that allows whole GPUs only: its members see the rest refused
    r = w.admin.put("/quotas/groups/cs101", json={"allowed_shapes": ["gpu"]})
    assert r.status_code == 200, r.text
    shapes = {s["text"]: s for s in w.alice.get("/me/options").json()["shapes"]}
    assert shapes["a MIG 1g.5gb slice"]["outcome"] == "refuse"
    assert "cs101" in shapes["a MIG 1g.5gb slice"]["message"]
    assert shapes["1 whole GPU"]["outcome"] == "grant"
    # admins ask for others (as spawn forms do); others may not
    r = w.admin.get("/me/options", params={"user": "alice"})
    assert r.status_code == 200 and r.json()["user"] == "alice"
    is_json_error(w.carol.get("/me/options", params={"user": "alice"}), 403)
    is_json_error(w.carol.get("/me/options", params={"profile": "Not A Name!"}), 400)


@ONCE
def test_an_engines_devices_move_a_lease_and_bad_placements_change_nothing(w):
    """``PUT /leases/{id}/devices``: what the hub's Slurm spawner sends once Slurm has
    picked the indices. Admins only; the lease moves, another lease on those devices
    swaps; every bad body is a 400 naming ``indices`` and changes nothing."""
    a = created(w.alice, gpu(1, label="server:alice/"))
    b = created(w.bob, gpu(1, label="server:bob/"))
    node = a["node"]
    assert b["node"] == node  # the default pool fills one node first
    ia, ib = a["devices"][0]["index"], b["devices"][0]["index"]

    denied = is_json_error(w.alice.put(f"/leases/{a['id']}/devices", json={"indices": [ib]}), 403)
    assert "admin" in denied["message"]
    before = snapshot(w)
    bad_bodies = [  # (body, the field the answer names)
        ({}, "indices"),
        ({"indices": []}, "indices"),
        ({"indices": ["1"]}, "indices"),
        ({"indices": [1.0]}, "indices"),
        ({"indices": [-1]}, "indices"),
        ({"indices": [4096]}, "indices"),
        ({"indices": [ib, ib]}, "indices"),
        ({"indices": list(range(65))}, "indices"),
        ({"indices": [ib], "node": "x"}, "node"),
        ({"indices": [ia, ib]}, "indices"),  # two for a lease of one
        ({"indices": [999]}, "indices"),  # no such GPU on the node
        ([ib], None),
    ]
    for body, field in bad_bodies:
        error = is_json_error(w.admin.put(f"/leases/{a['id']}/devices", json=body), 400)
        assert field is None or (error["field"] or "").startswith(field), (body, error)
    assert snapshot(w) == before
    is_json_error(w.admin.put("/leases/999999/devices", json={"indices": [0]}), 404)

    moved = w.admin.put(f"/leases/{a['id']}/devices", json={"indices": [ib]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["devices"][0]["index"] == ib
    swapped = w.bob.get(f"/leases/{b['id']}").json()
    assert swapped["devices"][0]["index"] == ia  # bob's takes the one alice's left
    holders = {
        (n["name"], g["index"]): g.get("holders")
        for n in w.admin.get("/pool").json()["nodes"]
        for g in n["gpus"]
    }
    assert holders[(node, ib)][0]["lease"] == a["id"]
    assert holders[(node, ia)][0]["lease"] == b["id"]

    w.alice.delete(f"/leases/{a['id']}")
    ended = is_json_error(w.admin.put(f"/leases/{a['id']}/devices", json={"indices": [ib]}), 409)
    assert ended["error"] == "not_active"
