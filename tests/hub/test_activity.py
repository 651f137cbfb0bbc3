"""GPU activity of leases: reports from a lease's server, kept per lease, shown to people.

The scheduler keeps the latest summary of each active lease in memory (unit tests with
the fake clock: idle time, MIG and shared GPUs, metrics, a lease that ends). Then end to
end through a real hub (the shared one, with users of this module's own): only the lease's
own user reports, bodies are checked strictly, and the summary shows in the lease, the
pool, ``/me``, ``gpuhub pool`` and ``gpuhub leases``.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
import yaml
from gpuhub.cli.render import activity_text
from gpuhub.scheduler.activity import ActivityReport, DeviceReport, LeaseNotActive
from gpuhub.scheduler.errors import SchedulerError
from gpuhub.scheduler.lease import iso
from gpuhub.service.metrics import SchedulerCollector
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry, generate_latest

from tests.support import http
from tests.support.cli import cli_as, ok
from tests.support.hub import users_on
from tests.support.paths import OPENAPI
from tests.support.scheduler import gpu, mig, shared

POOL = "a: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]; b: 1xL4-24GB[shared=2]"


def report(lease, util: float | None = 50.0, *, last: float | None = None, **kw) -> dict:
    """A report body for every device of ``lease``, ``util`` percent busy on each."""
    body = {
        "window_s": 30,
        "utilization_mean_pct": util,
        "utilization_max_pct": None if util is None else min(100.0, util + 10),
        "memory_used_mb": 1000.0 * len(lease["devices"]),
        "last_active_at": None if last is None else iso(last),
        "devices": [
            {
                "uuid": d["uuid"],
                "utilization_mean_pct": util,
                "utilization_max_pct": None if util is None else min(100.0, util + 10),
                "memory_used_mb": 1000.0,
            }
            for d in lease["devices"]
        ],
    }
    body.update(kw)
    return body


def parsed(body: dict) -> ActivityReport:
    return ActivityReport.model_validate(body, strict=True)


def as_dict(lease) -> dict:
    return {"devices": lease.devices}


# -- the scheduler keeps the latest summary per lease ------------------------------------


def test_a_report_is_kept_per_lease_with_idle_time_from_the_clock(make, clock):
    s = make(POOL)
    a = s.request(user="alice", user_groups=[], shape=mig("1g.5gb"))
    b = s.request(user="bob", user_groups=[], shape=mig("1g.5gb"))
    c = s.request(user="carol", user_groups=[], shape=shared())
    d = s.request(user="dave", user_groups=[], shape=shared())
    assert c.devices[0]["uuid"] == d.devices[0]["uuid"]  # one shared GPU, two holders
    assert s.activity(a.id) is None
    # a MIG slice: utilization not available (null, never 0)
    kept = s.report_activity(a.id, parsed(report(as_dict(a), None, last=clock.now - 120)))
    assert (
        kept.reported_at == clock.now and kept.devices[0].parent_uuid == a.devices[0]["parent_uuid"]
    )
    s.report_activity(b.id, parsed(report(as_dict(b), None, last=clock.now)))
    s.report_activity(c.id, parsed(report(as_dict(c), 90.0, last=clock.now)))
    s.report_activity(d.id, parsed(report(as_dict(d), 5.0)))
    clock.advance(600)
    shown = s.activity(a.id).to_dict(clock.now)
    assert shown["utilization_mean_pct"] is None and shown["idle_s"] == 720
    assert s.activity(b.id).to_dict(clock.now)["idle_s"] == 600
    assert s.activity(c.id).devices[0].utilization_mean_pct == 90.0
    assert s.activity(c.id).devices[0].slot != s.activity(d.id).devices[0].slot
    assert s.activity(d.id).to_dict(clock.now)["idle_s"] is None  # not seen busy
    assert [x.lease_id for x in s.activities()] == [a.id, b.id, c.id, d.id]
    # a newer report replaces the older one: no series is kept
    s.report_activity(c.id, parsed(report(as_dict(c), 10.0, last=clock.now)))
    assert s.activity(c.id).utilization_mean_pct == 10.0 and len(s.activities()) == 4
    # a lease that ends takes its activity with it; an ended lease's report is refused
    s.release(c.id)
    assert s.activity(c.id) is None
    with pytest.raises(LeaseNotActive, match="released, not active"):
        s.report_activity(c.id, parsed(report(as_dict(c))))
    assert s.activity(c.id) is None
    # a reload (after a failed write) keeps the live leases' activity
    s.load()
    assert s.activity(a.id) is not None and s.activity(c.id) is None


def test_reports_naming_other_devices_or_the_future_change_nothing(make, clock):
    s = make(POOL)
    a = s.request(user="alice", user_groups=[], shape=gpu(2))
    b = s.request(user="bob", user_groups=[], shape=mig("1g.5gb"))
    queued = s.request(user="carol", user_groups=[], shape=gpu(2))
    assert queued.status == "queued"
    s.report_activity(a.id, parsed(report(as_dict(a), 40.0)))
    before = s.activity(a.id)
    body = report(as_dict(a), 99.0)
    body["devices"][1]["uuid"] = b.devices[0]["uuid"]  # bob's slice is not alice's
    with pytest.raises(SchedulerError, match="not a device of lease") as e:
        s.report_activity(a.id, parsed(body))
    assert e.value.field == "devices.1.uuid"
    with pytest.raises(SchedulerError, match="in the future"):
        s.report_activity(a.id, parsed(report(as_dict(a), 99.0, last=clock.now + 3600)))
    with pytest.raises(LeaseNotActive, match="queued"):
        s.report_activity(queued.id, parsed(report({"devices": []})))
    assert s.activity(a.id) is before and s.activity(queued.id) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"window_s": 0}, "window_s"),
        ({"window_s": 3601}, "window_s"),
        ({"window_s": "30"}, "window_s"),
        ({"utilization_mean_pct": 101}, "utilization_mean_pct"),
        ({"utilization_mean_pct": True}, "utilization_mean_pct"),
        ({"memory_used_mb": -1}, "memory_used_mb"),
        ({"last_active_at": "yesterday"}, "last_active_at"),
        ({"last_active_at": 1700000000}, "last_active_at"),
        ({"extra": 1}, "extra"),
        ({"devices": [{"uuid": "GPU-x", "memory_used_mb": 1}] * 2}, "listed twice"),
        ({"devices": [{"uuid": f"GPU-{i}", "memory_used_mb": 1} for i in range(65)]}, "devices"),
        ({"utilization_mean_pct": 80, "utilization_max_pct": 20}, "above"),
    ],
)
def test_report_bodies_are_checked_strictly(change, problem):
    body = report({"devices": []}, 10.0)
    body.update(change)
    with pytest.raises(ValueError, match=problem):
        parsed(body)


def test_metrics_per_held_device_with_bounded_labels(make, clock):
    s = make(POOL)
    a = s.request(user="alice", user_groups=[], shape=mig("1g.5gb"))
    c = s.request(user="carol", user_groups=[], shape=shared())
    d = s.request(user="dave", user_groups=[], shape=shared())
    s.report_activity(a.id, parsed(report(as_dict(a), None, last=clock.now)))
    s.report_activity(c.id, parsed(report(as_dict(c), 73.0, last=clock.now - 60)))
    s.report_activity(d.id, parsed(report(as_dict(d), 2.0)))
    clock.advance(42 * 60)
    collector = SchedulerCollector(s)
    registry = CollectorRegistry()
    registry.register(collector)
    asyncio.run(collector.refresh())
    text = generate_latest(registry).decode()
    slice_uuid, parent = a.devices[0]["uuid"], a.devices[0]["parent_uuid"]
    shared_uuid = c.devices[0]["uuid"]
    mig_labels = f'device="{slice_uuid}",gpu="{parent}",node="a",slot="0"'
    assert f"gpuhub_device_memory_used_mb{{{mig_labels}}} 1000.0" in text
    assert f"gpuhub_device_utilization_pct{{{mig_labels}}}" not in text  # n/a, not 0
    assert f"gpuhub_lease_idle_seconds{{{mig_labels}}} 2520.0" in text
    slot_c, slot_d = c.devices[0]["slot"], d.devices[0]["slot"]
    for slot, util in ((slot_c, "73.0"), (slot_d, "2.0")):
        labels = f'device="{shared_uuid}",gpu="{shared_uuid}",node="b",slot="{slot}"'
        assert f"gpuhub_device_utilization_pct{{{labels}}} {util}" in text
    assert "alice" not in text and "lease=" not in text  # no unbounded labels
    s.release(c.id)
    asyncio.run(collector.refresh())
    text = generate_latest(registry).decode()
    assert f'node="b",slot="{slot_c}"' not in text and f'node="b",slot="{slot_d}"' in text


# -- end to end through a real hub ---------------------------------------------------------


@pytest.fixture(scope="module")
def w(shared_hub):
    """The shared hub (default simulated pool) with alice and bob (names of their own) and
    the admin, and their clients."""
    with users_on(shared_hub) as ns:
        yield ns


@pytest.fixture(autouse=True)
def _clean(request):
    yield
    if "w" in request.fixturenames:
        w = request.getfixturevalue("w")
        ours = {w.names["alice"], w.names["bob"]}
        for lease in w.admin.get("/leases").json()["leases"]:
            if lease["user"] in ours:
                assert w.admin.delete(f"/leases/{lease['id']}").status_code == 200


@pytest.mark.hub
def test_the_default_configuration_runs_the_idle_culler_with_its_scopes(shared_hub):
    """Kernel and browser activity is the idle culler's: on the default configuration it
    runs as a hub service and its first pass lists the users' servers (the other test
    hubs turn it off; its command and role are checked in tests/hub/test_reclaim.py)."""
    listed = re.compile(r" 200 GET /hub/api/users\S* \(idle-culler@")
    deadline = time.monotonic() + 30
    while not listed.search(shared_hub.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, shared_hub.log_tail(40)
        time.sleep(0.2)
    log = shared_hub.log_path.read_text(errors="replace").splitlines()
    assert not [line for line in log if "(idle-culler@" in line and " 403 " in line]


def lease_of(client: httpx.Client, shape: dict) -> dict:
    r = client.post("/leases", json={"shape": shape})
    assert r.status_code == 201, r.text
    assert r.json()["activity"] is None
    return r.json()


def holders(pool: dict) -> dict[int | None, list[dict]]:
    """Every holder entry of the pool by lease id (MIG instances and GPUs alike)."""
    out: dict[int | None, list[dict]] = {}
    for node in pool["nodes"]:
        for g in node["gpus"]:
            hs = g.get("holders", []) + [m["holder"] for m in g.get("mig_instances", [])]
            for h in hs:
                if h is not None:
                    out.setdefault(h["lease"], []).append(h)
    return out


@pytest.mark.hub
@pytest.mark.timeout(120)
def test_the_owner_reports_and_everyone_allowed_sees_it(w):
    lease = lease_of(w.alice, {"kind": "gpu", "count": 2})
    path = f"/leases/{lease['id']}/activity"
    r = w.alice.post(path, json=report(lease, 73.0))
    assert r.status_code == 200, r.text
    kept = r.json()
    assert kept["utilization_mean_pct"] == 73.0 and kept["reported_at"]
    assert [d["uuid"] for d in kept["devices"]] == [d["uuid"] for d in lease["devices"]]
    assert w.alice.get(f"/leases/{lease['id']}").json()["activity"]["utilization_mean_pct"] == 73
    assert w.alice.get("/me").json()["leases"][0]["activity"]["window_s"] == 30
    everyone = w.admin.get("/leases").json()["leases"]
    assert next(x for x in everyone if x["id"] == lease["id"])["activity"] is not None
    mine = holders(w.alice.get("/pool").json())[lease["id"]]
    assert len(mine) == 2 and all(h["activity"]["utilization_mean_pct"] == 73 for h in mine)
    assert len(holders(w.admin.get("/pool").json())[lease["id"]]) == 2
    others = holders(w.bob.get("/pool").json())[None]  # bob sees a holder, not its activity
    assert others and all(h["activity"] is None for h in others)
    pool = ok(cli_as(w.hub, w.tokens["alice"], "pool"))
    assert f"{w.names['alice']} lease {lease['id']} (73% busy" in pool
    assert "73% busy, not seen busy" in ok(cli_as(w.hub, w.tokens["alice"], "leases"))


@pytest.mark.hub
@pytest.mark.timeout(120)
def test_others_and_bad_bodies_are_refused_and_change_nothing(w):
    lease = lease_of(w.alice, {"kind": "gpu", "count": 1})
    path = f"/leases/{lease['id']}/activity"
    assert w.alice.post(path, json=report(lease, 10.0)).status_code == 200
    before = w.alice.get(f"/leases/{lease['id']}").json()["activity"]
    r = w.bob.post(path, json=report(lease, 99.0))
    assert r.status_code == 404 and r.json()["message"] == f"no lease {lease['id']}"
    bad = [
        (report(lease, 10.0, window_s=0), "window_s"),
        (report(lease, 10.0, window_s=7200), "window_s"),
        (report(lease, 10.0, utilization_mean_pct="10"), "utilization_mean_pct"),
        (report(lease, 10.0, memory_used_mb="1"), "memory_used_mb"),
        (report(lease, 10.0, devices=[{"uuid": "GPU-nope", "memory_used_mb": 1}]), "devices.0.uuid"),
        (report(lease, 10.0, devices=[{"uuid": f"G{i}", "memory_used_mb": 1} for i in range(65)]), "devices"),
        (report(lease, 10.0, last_active_at="soon"), "last_active_at"),
        ([], None),
    ]  # fmt: skip
    for body, field in bad:
        r = w.alice.post(path, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field and r.json()["message"], r.text
    assert w.alice.get(f"/leases/{lease['id']}").json()["activity"] == before
    # an admin may report too; an ended lease's report is 409 and its activity is gone
    assert w.admin.post(path, json=report(lease, 20.0)).status_code == 200
    assert w.alice.delete(f"/leases/{lease['id']}").status_code == 200
    r = w.alice.post(path, json=report(lease, 30.0))
    assert r.status_code == 409 and r.json()["error"] == "not_active", r.text
    assert "released" in r.json()["message"]
    assert w.alice.get(f"/leases/{lease['id']}").json()["activity"] is None


@pytest.mark.hub
@pytest.mark.timeout(120)
def test_mig_and_shared_leases_are_reported_per_lease(w):
    a = lease_of(w.alice, {"kind": "mig", "profile": "1g.5gb"})
    b = lease_of(w.bob, {"kind": "mig", "profile": "1g.5gb"})
    c = lease_of(w.alice, {"kind": "shared"})
    d = lease_of(w.bob, {"kind": "shared"})
    assert c["devices"][0]["uuid"] == d["devices"][0]["uuid"]
    # bob cannot report for alice's slice or seat, even naming his own device
    r = w.bob.post(f"/leases/{a['id']}/activity", json=report(b, None))
    assert r.status_code == 404
    for lease, util in ((a, None), (b, None), (c, 80.0), (d, 3.0)):
        client = w.alice if lease["user"] == w.names["alice"] else w.bob
        r = client.post(f"/leases/{lease['id']}/activity", json=report(lease, util))
        assert r.status_code == 200, r.text
    pool = holders(w.admin.get("/pool").json())
    assert pool[a["id"]][0]["activity"]["utilization_mean_pct"] is None  # MIG: n/a, not 0
    assert pool[a["id"]][0]["activity"]["memory_used_mb"] == 1000
    assert pool[c["id"]][0]["activity"]["utilization_mean_pct"] == 80
    assert pool[d["id"]][0]["activity"]["utilization_mean_pct"] == 3
    text = ok(cli_as(w.hub, w.tokens["alice"], "pool"))
    assert f"{w.names['alice']} lease {c['id']} (80% busy" in text
    assert f"{w.names['alice']} lease {a['id']} (1.0 GB used" in text
    assert "3% busy" not in text  # bob's seat: another user, no activity shown
    metrics = http.get(
        f"{w.hub.url}/services/gpuhub/metrics",
        headers={"Authorization": f"token {w.tokens['admin']}"},
        timeout=30,
    )
    assert metrics.status_code == 200, metrics.text
    seat = f'device="{c["devices"][0]["uuid"]}"'
    slots = {f'slot="{x["devices"][0]["slot"]}"' for x in (c, d)}  # the seats c and d hold
    util = [x for x in metrics.text.splitlines() if x.startswith("gpuhub_device_utilization_pct{")]
    mine = [x for x in util if seat in x and any(slot in x for slot in slots)]
    assert sorted(float(x.split()[-1]) for x in mine) == [3.0, 80.0]
    assert not [x for x in util if a["devices"][0]["uuid"] in x]  # MIG: no utilization


def test_the_openapi_document_describes_reports_and_answers(make, clock):

    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]

    assert set(schemas["ActivityReport"]["properties"]) == set(ActivityReport.model_fields)
    assert set(schemas["DeviceActivityReport"]["properties"]) == set(DeviceReport.model_fields)

    def valid(name: str, value) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(value))
        assert not errors, errors[0]

    s = make(POOL)
    a = s.request(user="alice", user_groups=[], shape=mig("1g.5gb"))
    body = report(as_dict(a), None, last=clock.now)
    valid("ActivityReport", body)
    kept = s.report_activity(a.id, parsed(body))
    valid("Activity", kept.to_dict(clock.now))
    valid("HolderActivity", kept.device_dict(a.devices[0]["uuid"], clock.now))
    valid("Lease", {**a.to_dict(clock.now), "activity": kept.to_dict(clock.now)})
    valid("Lease", {**a.to_dict(clock.now), "activity": None})


def test_a_rounded_mean_just_above_its_max_is_accepted():
    body = report({"devices": []}, 33.34)
    body["utilization_max_pct"] = 33.335
    assert parsed(body).utilization_mean_pct == 33.34


@pytest.mark.parametrize(
    ("activity", "text"),
    [
        (None, "no report"),
        ({"utilization_mean_pct": 73.4, "idle_s": 5}, "73% busy"),
        ({"utilization_mean_pct": 0.0, "idle_s": 42 * 60 + 10}, "0% busy, idle 42 min"),
        ({"utilization_mean_pct": 1.0, "idle_s": 3 * 3600 + 60}, "1% busy, idle 3 h 1 min"),
        ({"utilization_mean_pct": 2.0, "idle_s": 3 * 86400}, "2% busy, idle 3 days"),
        ({"utilization_mean_pct": None, "memory_used_mb": 4100, "idle_s": 120}, "4.1 GB used, idle 2 min"),
        ({"utilization_mean_pct": 5.0, "idle_s": None}, "5% busy, not seen busy"),
    ],
)  # fmt: skip
def test_activity_reads_plainly_in_the_cli(activity, text):
    assert activity_text(activity) == text
