"""The scheduler's read API, its one lease field list, and reports read off the loop.

Other parts of gpuhub read through the scheduler's read API (``Scheduler.view``, a
``SchedulerView``: pool, quotas, live leases) and never walk its dicts; the ledger's reports
run on their own connection in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from fractions import Fraction

import pytest
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import LeaseRow
from gpuhub.scheduler.lease import FIELDS, Lease, lease_from_row, lease_row
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.reads import SchedulerView
from gpuhub.service.metrics import SchedulerCollector
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select

from tests.support.scheduler import HOUR, gpu, mig, shared

POOL = "a: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]; b: 1xL4-24GB[shared=2]"

# the REST API's lease, key by key and in this order, as it was before the field list
API_KEYS = [
    "id", "user", "group", "status", "shape", "profile", "label", "priority", "units", "node",
    "devices", "simulated", "position", "requested_at", "granted_at", "ended_at",
    "end_reason", "gpu_hours", "rate", "tier", "discount", "credits", "preemption",
    "borrowed_from",
]  # fmt: skip


# -- the one field list ----------------------------------------------------------------


def test_the_field_list_covers_the_lease_and_its_table():
    attributes = {f.name for f in dataclasses.fields(Lease)} - {"fair"}  # memory only
    stored = {f.name for f in FIELDS if f.from_row is not None}
    assert stored == attributes
    columns = set(LeaseRow.__table__.columns.keys())
    lease = Lease(id=1, user="u", group=None, status="queued", shape=gpu(), units=Fraction(1))
    assert set(lease_row(lease)) == columns


def test_a_lease_goes_to_its_row_and_back_and_shows_as_before(make, engine, clock):
    s = make(POOL)
    leases = [
        s.request(user="alice", user_groups=["cs"], group="cs", shape=gpu(2, "H100"),
                  profile="pytorch", label="server:alice/", hours=2.5),
        s.request_once(idempotency_key="k", user="bob", user_groups=[],
                       shape=mig("1g.5gb"))[0],
        s.request(user="carol", user_groups=[], shape=shared()),
        s.request(user="dan", user_groups=[], shape=gpu(2)),  # queued
    ]  # fmt: skip
    clock.advance(HOUR)
    s.release(leases[2].id)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(LeaseRow.__table__))}
    for lease in leases:
        back = lease_from_row(rows[lease.id])
        assert back == lease
        shown = back.to_dict(clock.now, 3)
        assert list(shown) == API_KEYS
        assert shown["units"] == float(lease.units) and shown["position"] == 3
    shown = leases[2].to_dict(clock.now)
    assert shown["shape"] == {"kind": "shared"} and shown["status"] == "released"
    assert shown["gpu_hours"] == 0.5 and shown["ended_at"].startswith("2026-11-23T10:00")
    assert shown["simulated"] is True and shown["devices"][0]["shared_by"] == 2


# -- the read API ----------------------------------------------------------------------


def test_pool_view_shows_states_holders_and_units_as_a_copy(make):
    s = make(POOL)
    whole = s.request(user="alice", user_groups=[], shape=gpu())
    slice_ = s.request(user="bob", user_groups=[], shape=mig("1g.5gb"))
    seat = s.request(user="carol", user_groups=[], shape=shared())
    view = s.view.pool_view()
    gpus = {g.gpu.uuid: g for n in view.nodes for g in n.gpus}
    assert [n.node.name for n in view.nodes] == ["a", "b"]
    assert gpus[whole.devices[0]["uuid"]].holders == (whole.id,)
    assert gpus[whole.devices[0]["uuid"]].state == "busy"
    a100 = gpus[slice_.devices[0]["parent_uuid"]]
    assert a100.state == "partial" and dict(a100.mig_holders) == {
        slice_.devices[0]["uuid"]: slice_.id
    }
    l4 = gpus[seat.devices[0]["uuid"]]
    assert l4.state == "partial" and l4.holders == (seat.id,)
    assert view.units_total == 4 and view.units_free == 4 - 1 - Fraction(1, 7) - Fraction(1, 2)
    s.release(whole.id)  # the view taken before does not change
    assert gpus[whole.devices[0]["uuid"]].holders == (whole.id,)
    assert {g.gpu.uuid: g.holders for n in s.view.pool_view().nodes for g in n.gpus}[
        whole.devices[0]["uuid"]
    ] == ()


def test_quotas_live_leases_and_the_queue_through_the_read_api(make):
    s = make("a: 1xH100-80GB", default_user_quota=QuotaSpec(max_units=4))
    s.set_quota("group", "cs", QuotaSpec(max_units=2), by="admin")
    s.set_quota("user", "bob", QuotaSpec(priority=1), by="admin")
    assert s.view.quota("group", "cs") == QuotaSpec(max_units=2)
    assert s.view.quota("user", "alice") is None and s.view.quota_for_user("alice").max_units == 4
    assert list(s.view.all_quotas()) == [("group", "cs"), ("user", "bob")]
    s.view.all_quotas().clear()  # a copy
    assert s.view.quota("user", "bob") is not None

    active = s.request(user="alice", user_groups=[], shape=gpu())
    waiting = s.request(user="bob", user_groups=[], shape=gpu())
    assert [x.id for x in s.view.live_leases()] == [active.id, waiting.id]
    assert s.view.live_leases("queued") == [waiting] and s.view.live_leases(["active"]) == [active]
    assert s.view.queue_length() == 1
    assert s.view.live_lease(active.id) is active
    s.release(active.id)
    assert s.view.live_lease(active.id) is None and s.view.queue_length() == 0


def test_the_view_follows_the_scheduler_across_a_reload(make):
    """``load()`` builds a new pool and live map (after a restart or a failed write); the
    view handed out before reads the new ones, so the service never holds a stale view."""
    s = make("a: 1xH100-80GB")
    view = s.view
    first = s.request(user="alice", user_groups=[], shape=gpu())
    old_pool = s.pool
    s.load()
    assert s.pool is not old_pool and s.view is view
    assert view.live_lease(first.id) == first and view.live_lease(first.id) is not first
    assert view.pool_view().units_free == 0 and view.queue_length() == 0


def test_the_scheduler_keeps_some_reads_as_the_views_own(make):
    """The reads kept on the scheduler (for the parts that hold it to write) are the view's
    methods, with their docstrings: the read API has one home."""
    s = make("a: 1xH100-80GB")
    lease = s.request(user="alice", user_groups=[], shape=gpu())
    for name in ("get", "live_leases", "position", "quota_status", "usage", "next_boundary"):
        assert getattr(Scheduler, name).__wrapped__ is getattr(SchedulerView, name)
        assert getattr(Scheduler, name).__doc__ == getattr(SchedulerView, name).__doc__
    assert s.get(lease.id) is s.view.get(lease.id) is lease
    assert s.live_leases("active") == s.view.live_leases("active") == [lease]


# -- reports off the loop --------------------------------------------------------------


def test_reports_read_from_a_worker_thread_while_the_scheduler_grants(make, clock):
    s = make(POOL)
    ended = s.request(user="alice", user_groups=[], shape=gpu(2))
    clock.advance(HOUR)
    s.release(ended.id)
    running = s.request(user="bob", user_groups=[], shape=mig("1g.5gb"))
    clock.advance(HOUR)
    now = clock.now

    async def main():
        # the loop thread keeps granting while the worker reads
        report = asyncio.create_task(
            asyncio.to_thread(s.ledger.usage, 0, 2e9, now=now, by=("user",))
        )
        total = asyncio.create_task(asyncio.to_thread(s.ledger.total_gpu_hours, now))
        s.request(user="carol", user_groups=[], shape=gpu())
        return await report, await total

    rows, total = asyncio.run(main())
    assert rows == [
        {"user": "alice", "gpu_hours": 2.0, "credits": 2.0, "leases": 1},
        {"user": "bob", "gpu_hours": round(1 / 7, 6), "credits": round(1 / 7, 6), "leases": 1},
    ]
    assert total == pytest.approx(2 + 1 / 7)
    assert s.total_gpu_hours() == pytest.approx(total)  # carol's lease started at now
    assert running.gpu_hours(now) == pytest.approx(1 / 7)


def test_metrics_take_the_pool_on_the_loop_and_the_ledger_in_a_thread(make, clock):
    s = make(POOL)
    s.request(user="alice", user_groups=[], shape=gpu(2))
    s.request(user="bob", user_groups=[], shape=gpu())  # queued
    clock.advance(HOUR)
    collector = SchedulerCollector(s)
    registry = CollectorRegistry()
    registry.register(collector)
    assert generate_latest(registry) == b""  # nothing before the first refresh
    threads = []
    real = s.ledger.total_gpu_hours

    def counted(now):
        threads.append(threading.current_thread())
        return real(now)

    s.ledger.total_gpu_hours = counted
    asyncio.run(collector.refresh())
    assert threads and threads[0] is not threading.main_thread()
    text = generate_latest(registry).decode()
    assert (
        'gpuhub_devices{mode="exclusive",model="H100-80GB",simulated="true",state="busy"} 2.0'
        in text
    )
    assert "gpuhub_queue_length 1.0" in text and "gpuhub_leases_active 1.0" in text
    assert "gpuhub_units_in_use 2.0" in text and "gpuhub_gpu_hours_total 2.0" in text
