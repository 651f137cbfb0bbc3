"""Deterministic tests of the lease scheduler, on SQLite and on PostgreSQL.

Time comes from the ``clock`` fixture (Monday 2026-11-23 09:00 UTC); the pool from a
simulated inventory spec. Every test checks what the database holds, not only what the
scheduler says.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import (
    Forbidden,
    NotFound,
    QuotaExceeded,
    Scheduler,
    SchedulerError,
    Unsatisfiable,
)
from gpuhub.scheduler.db import ClaimRow, QuotaRow, open_engine
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.shapes import WholeGpus
from gpuhub.service.errors import status_of  # the HTTP status the service answers with
from sqlalchemy import func, select

from tests.support.scheduler import (
    HOUR,
    ask,
    assert_consistent,
    claim_rows,
    counts,
    gpu,
    lease_rows,
    mig,
    shared,
    uuids,
)

# -- placement -------------------------------------------------------------------------


def test_whole_gpus_on_one_node(make, engine, clock):
    s = make("a: 2xH100-80GB; b: 4xH100-80GB")
    lease = ask(s, "alice", gpu(3), label="train")
    assert lease.status == "active"
    assert lease.node == "b"
    assert lease.units == 3
    assert uuids(lease) == ["GPU-sim-b-0", "GPU-sim-b-1", "GPU-sim-b-2"]
    assert all(d["simulated"] and d["model"] == "H100-80GB" for d in lease.devices)
    row = lease_rows(engine)[lease.id]
    assert row["status"] == "active"
    assert row["granted_at"] == row["requested_at"] == clock.now
    assert row["node"] == "b" and row["label"] == "train"
    assert claim_rows(engine) == {(u, 0): lease.id for u in uuids(lease)}
    # 2 more: node b has 1 free, so they go to node a
    other = ask(s, "bob", gpu(2))
    assert (other.status, other.node) == ("active", "a")
    d = lease.to_dict(clock.now)
    assert d["simulated"] is True and d["units"] == 3.0 and d["status"] == "active"
    assert_consistent(s)


def test_nvlink_connected_pair_preferred(make):
    s = make("n: 2xH100-80GB[nvlink], 2xH100-80GB[nvlink]")
    first = ask(s, "alice", gpu(1))
    assert uuids(first) == ["GPU-sim-n-0"]
    pair = ask(s, "bob", gpu(2))
    # GPUs 1 and 2 are the lowest free indices but not linked; 2 and 3 are
    assert uuids(pair) == ["GPU-sim-n-2", "GPU-sim-n-3"]


def test_nvlink_pair_in_the_middle(make):
    s = make("n: 1xH100-80GB, 2xH100-80GB[nvlink], 1xH100-80GB")
    assert uuids(ask(s, "alice", gpu(2))) == ["GPU-sim-n-1", "GPU-sim-n-2"]
    assert uuids(ask(s, "bob", gpu(2))) == ["GPU-sim-n-0", "GPU-sim-n-3"]


def test_best_fit_fills_partly_used_node_first(make):
    s = make("a: 8xH100-80GB; b: 8xH100-80GB")
    one = ask(s, "alice", gpu(1))
    assert one.node == "a"
    two = ask(s, "bob", gpu(2))
    assert two.node == "a"  # partly used node before the empty one
    four = ask(s, "carol", gpu(4))
    assert four.node == "a"
    big = ask(s, "dave", gpu(8))  # the empty node was kept whole
    assert (big.status, big.node) == ("active", "b")
    assert_consistent(s)


def test_best_fit_prefers_the_smallest_node_that_fits(make):
    s = make("big: 8xH100-80GB; small: 2xH100-80GB")
    assert ask(s, "alice", gpu(1)).node == "small"
    assert ask(s, "bob", gpu(2)).node == "big"
    assert ask(s, "carol", gpu(6)).node == "big"
    assert ask(s, "dave", gpu(1)).node == "small"


def test_model_filter(make):
    s = make("a: 2xH100-80GB, 2xA100-80GB, 1xA100-40GB[mig=7x1g.5gb]")
    a100 = ask(s, "alice", gpu(2, "A100"))
    assert {d["model"] for d in a100.devices} == {"A100-80GB"}
    h100 = ask(s, "bob", gpu(1, "h100"))
    assert h100.devices[0]["model"] == "H100-80GB"
    glob = ask(s, "carol", gpu(1, "H100*"))
    assert glob.devices[0]["model"] == "H100-80GB"
    # the MIG A100 is not a whole GPU; all whole A100s are taken, so this waits
    queued = ask(s, "dave", gpu(1, "A100"))
    assert queued.status == "queued"
    with pytest.raises(Unsatisfiable) as info:
        ask(s, "erin", gpu(3, "A100"))
    assert info.value.message == (
        "no node has 3 whole A100 GPUs (the most on one node is 2); "
        "ask for fewer GPUs or another model"
    )


# -- MIG and shared GPUs ---------------------------------------------------------------


def test_mig_slice_units_and_device_info(make):
    s = make("a: 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]")
    small = ask(s, "alice", mig("1g.10gb"))
    big = ask(s, "bob", mig("2g.20gb"))
    assert small.units == Fraction(1, 7)
    assert big.units == Fraction(2, 7)
    assert small.devices == [
        {
            "uuid": "MIG-sim-a-0-0",
            "index": 0,
            "model": "A100-40GB",
            "memory_mb": 10 * 1024,
            "simulated": True,
            "parent_uuid": "GPU-sim-a-0",
            "mig_index": 0,
            "profile": "1g.10gb",
            "slot": 0,
            "rate": 1.0,  # credits per GPU-hour of its GPU (the default rate)
        }
    ]
    assert uuids(big) == ["MIG-sim-a-0-3"]
    assert ask(s, "carol", mig("2g.20gb")).status == "active"
    assert ask(s, "dave", mig("2g.20gb")).status == "queued"
    assert_consistent(s)


def test_mig_packs_on_the_busiest_gpu(make):
    s = make("a: 2xA100-40GB[mig=7x1g.5gb]")
    leases = [ask(s, f"u{i}", mig("1g.5gb")) for i in range(8)]
    assert [x.devices[0]["parent_uuid"] for x in leases] == ["GPU-sim-a-0"] * 7 + ["GPU-sim-a-1"]
    for x in leases[:2]:
        s.release(x.id)
    # GPU 0 has 5 slices in use, GPU 1 has 1: the next slice goes on GPU 0
    nxt = ask(s, "v", mig("1g.5gb"))
    assert nxt.devices[0]["parent_uuid"] == "GPU-sim-a-0"
    assert uuids(nxt) == ["MIG-sim-a-0-0"]
    assert_consistent(s)


def test_mig_quota_counts_exact_sevenths(make):
    s = make("a: 1xA100-40GB[mig=7x1g.5gb]")
    s.set_quota("user", "alice", QuotaSpec(max_units=0.5), by="admin")
    for _ in range(3):
        assert ask(s, "alice", mig("1g.5gb")).status == "active"
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", mig("1g.5gb"))
    assert info.value.message == (
        "user alice uses 3/7 of their 0.5 GPU units; this request needs 1/7. "
        "Ask an admin, or wait for a lease to end"
    )


def test_a_request_larger_than_the_quota_says_waiting_will_not_help(make):
    s = make("a: 2xA100-40GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=1), by="admin")
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", WholeGpus(count=2))
    assert info.value.message == (
        "user alice uses 0 of their 1 GPU units; this request needs 2, which is more "
        "than the whole quota, so waiting will not help: ask an admin for a larger quota, "
        "or request at most 1 GPU"
    )
    assert "wait for a lease" not in info.value.message


def test_shared_gpu_one_kth_and_at_most_k_holders(make, engine):
    s = make("b: 2xL4-24GB[shared=3], 1xL4-24GB")
    seats = [ask(s, f"u{i}", shared("L4")) for i in range(6)]
    assert all(x.status == "active" and x.units == Fraction(1, 3) for x in seats)
    # fills the busiest shared GPU first: three on GPU 0, then three on GPU 1
    assert [(uuids(x)[0], x.devices[0]["slot"]) for x in seats] == [
        ("GPU-sim-b-0", 0),
        ("GPU-sim-b-0", 1),
        ("GPU-sim-b-0", 2),
        ("GPU-sim-b-1", 0),
        ("GPU-sim-b-1", 1),
        ("GPU-sim-b-1", 2),
    ]
    assert all(x.devices[0]["shared_by"] == 3 for x in seats)
    waiting = ask(s, "w", shared())
    assert waiting.status == "queued"
    assert len(claim_rows(engine)) == 6
    s.release(seats[1].id)
    assert waiting.status == "active"
    assert (uuids(waiting)[0], waiting.devices[0]["slot"]) == ("GPU-sim-b-0", 1)
    # the exclusive L4 is never shared
    assert ask(s, "x", gpu(1, "L4")).devices[0]["uuid"] == "GPU-sim-b-2"
    assert_consistent(s)


# -- unsatisfiable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            gpu(5),
            "no node has 5 whole GPUs (the most on one node is 4); ask for fewer GPUs or another model",
        ),
        (gpu(1, "V100"), "no whole GPU in the pool is a V100 (here: A100-40GB, H100-80GB)"),
        (
            mig("3g.20gb"),
            "no GPU in the pool offers MIG profile 3g.20gb (offered: 1g.10gb, 2g.20gb)",
        ),
        (mig("1g.10gb", "H100"), "no H100 GPU in the pool offers MIG profile 1g.10gb"),
        (shared(), "no GPU in the pool is shared (time-sliced)"),
    ],
)
def test_unsatisfiable_writes_nothing(make, engine, shape, message):
    s = make("a: 4xH100-80GB[nvlink], 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]")
    before = counts(engine)
    with pytest.raises(Unsatisfiable) as info:
        ask(s, "alice", shape)
    assert message in info.value.message
    assert (status_of(info.value), info.value.code, info.value.field) == (
        422,
        "unsatisfiable",
        "shape",
    )
    assert counts(engine) == before == (0, 0)
    assert s.live == {}
    assert ask(s, "alice", gpu(4)).status == "active"  # lease ids were not burnt
    assert list(lease_rows(engine)) == [1]


# -- the queue -------------------------------------------------------------------------


def test_queue_when_busy_with_position(make, engine, clock):
    s = make("a: 2xH100-80GB")
    held = ask(s, "alice", gpu(2))
    clock.advance(1)
    bob = ask(s, "bob", gpu(1))
    clock.advance(1)
    carol = ask(s, "carol", gpu(2))
    assert (bob.status, carol.status) == ("queued", "queued")
    assert (s.position(bob), s.position(carol), s.position(held)) == (1, 2, None)
    assert bob.to_dict(clock.now, s.position(bob))["position"] == 1
    assert [x.id for x in s.queue()] == [bob.id, carol.id]
    rows = lease_rows(engine)
    assert rows[bob.id]["status"] == "queued" and rows[bob.id]["granted_at"] is None
    assert claim_rows(engine) == {(u, 0): held.id for u in uuids(held)}
    clock.advance(60)
    s.release(held.id)
    # bob (older) first; carol's 2 no longer fit
    assert bob.status == "active" and bob.granted_at == clock.now
    assert carol.status == "queued" and s.position(carol) == 1
    # best-effort: a 1-GPU request that fits now does not wait behind carol
    dave = ask(s, "dave", gpu(1))
    assert dave.status == "active"
    s.release(bob.id)
    assert carol.status == "queued"
    s.release(dave.id)
    assert carol.status == "active"
    assert s.queue() == []
    assert_consistent(s)


def test_strict_queue_policy_keeps_order(make):
    s = make("a: 2xH100-80GB", queue_policy="strict")
    ask(s, "alice", gpu(1))
    bob = ask(s, "bob", gpu(2))
    carol = ask(s, "carol", gpu(1))
    assert (bob.status, carol.status) == ("queued", "queued")
    with pytest.raises(ValueError, match="queue_policy"):
        make("a: 1xL4", queue_policy="fifo")


def test_release_grants_in_priority_then_age_order(make, clock):
    s = make("a: 1xH100-80GB")
    s.set_quota("user", "vip", QuotaSpec(priority=10), by="admin")
    s.set_quota("group", "staff", QuotaSpec(priority=5), by="admin")
    holder = ask(s, "owner")
    waiting = []
    for user, groups in [("bob", ()), ("carol", ()), ("vip", ()), ("sam", ("staff",)), ("dan", ())]:
        clock.advance(10)
        waiting.append(ask(s, user, groups=groups))
    bob, carol, vip, sam, dan = waiting
    assert (vip.priority, sam.priority, bob.priority) == (10, 5, 0)
    assert sam.group == "staff"  # the only group with a quota is picked by itself
    assert [x.user for x in s.queue()] == ["vip", "sam", "bob", "carol", "dan"]
    assert [s.position(x) for x in waiting] == [3, 4, 1, 2, 5]
    granted = []
    current = holder
    for _ in waiting:
        s.release(current.id)
        [current] = [x for x in s.live.values() if x.status == "active"]
        granted.append(current.user)
        assert_consistent(s)
    assert granted == ["vip", "sam", "bob", "carol", "dan"]


def test_cancel_queued_request(make, engine, clock):
    s = make("a: 1xH100-80GB")
    holder = ask(s, "alice")
    bob = ask(s, "bob")
    carol = ask(s, "carol")
    clock.advance(5)
    out = s.release(bob.id, reason="user cancelled")
    assert out.status == "cancelled" and out.end_reason == "user cancelled"
    assert s.position(carol) == 1
    assert s.position(out) is None
    row = lease_rows(engine)[bob.id]
    assert (row["status"], row["ended_at"], row["granted_at"]) == ("cancelled", clock.now, None)
    assert claim_rows(engine) == {("GPU-sim-a-0", 0): holder.id}
    s.release(holder.id)
    assert carol.status == "active"
    assert s.get(bob.id).status == "cancelled"
    assert s.usage(0, clock.now + 1, user="bob") == []  # a cancelled request costs nothing


def test_release_is_idempotent(make, engine, clock):
    s = make("a: 1xH100-80GB")
    first = ask(s, "alice")
    clock.advance(HOUR)
    done = s.release(first.id)
    assert done.status == "released" and done.ended_at == clock.now
    ended_at = done.ended_at
    assert s.pool.capacity()["free"] == 1
    second = ask(s, "bob")
    assert uuids(second) == uuids(first)
    clock.advance(HOUR)
    again = s.release(first.id)
    # nothing changed: the device stays with bob, freed exactly once
    assert (again.status, again.ended_at, again.end_reason) == ("released", ended_at, "released")
    assert s.pool.holder("GPU-sim-a-0") == second.id
    assert s.pool.capacity()["free"] == 0
    assert claim_rows(engine) == {("GPU-sim-a-0", 0): second.id}
    assert lease_rows(engine)[first.id]["ended_at"] == ended_at
    assert ask(s, "carol").status == "queued"
    with pytest.raises(NotFound):
        s.release(999)
    assert_consistent(s)


# -- quotas ----------------------------------------------------------------------------


def test_user_max_units(make, engine):
    s = make("a: 4xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=2), by="admin")
    assert ask(s, "alice", gpu(2)).status == "active"
    before = counts(engine)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice")
    assert info.value.message == (
        "user alice uses 2 of their 2 GPU units; this request needs 1. "
        "Ask an admin, or wait for a lease to end"
    )
    assert (status_of(info.value), info.value.code) == (403, "quota_exceeded")
    assert counts(engine) == before
    assert ask(s, "bob", gpu(2)).status == "active"  # others are not limited


def test_user_max_units_counts_queued_requests(make, engine):
    s = make("a: 2xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=2), by="admin")
    ask(s, "bob")
    ask(s, "alice")
    assert ask(s, "alice").status == "queued"
    before = counts(engine)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice")
    assert info.value.message.startswith(
        "user alice uses 1 of their 2 GPU units (and 1 more queued); this request needs 1."
    )
    assert counts(engine) == before


def test_group_max_units(make, engine):
    s = make("a: 8xH100-80GB; b: 4xH100-80GB")
    s.set_quota("group", "cs101", QuotaSpec(max_units=8), by="admin")
    alice = ask(s, "alice", gpu(4), groups=["cs101"], group="cs101")
    bob = ask(s, "bob", gpu(4), groups=["cs101", "other"])  # the only group with a quota
    assert (alice.group, bob.group) == ("cs101", "cs101")
    before = counts(engine)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "carol", gpu(1), groups=["cs101"])
    assert info.value.message == (
        "group cs101 uses 8 of its 8 GPU units; this request needs 1. "
        "Ask an admin, or wait for a lease to end"
    )
    assert counts(engine) == before
    # outside the group the pool still has room
    assert ask(s, "carol", gpu(1)).group is None


def test_group_per_user_max_units(make, engine):
    s = make("a: 8xH100-80GB")
    s.set_quota("group", "cs101", QuotaSpec(per_user_max_units=2), by="admin")
    ask(s, "alice", gpu(2), groups=["cs101"])
    before = counts(engine)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", gpu(1), groups=["cs101"])
    assert info.value.message == (
        "alice uses 2 of the 2 GPU units each member of group cs101 may hold; this request needs 1"
    )
    assert counts(engine) == before
    assert ask(s, "bob", gpu(2), groups=["cs101"]).status == "active"


def test_gpu_hours_per_week(make, engine, clock):
    s = make("a: 4xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(gpu_hours=20), by="admin")
    first = ask(s, "alice")
    clock.advance(10 * HOUR)
    s.release(first.id)
    before = counts(engine)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", gpu(2), hours=6)
    assert info.value.message == (
        "alice has 10 of 20 GPU-hours left this week (resets Monday 00:00 UTC); "
        "this request needs 12"
    )
    assert counts(engine) == before
    second = ask(s, "alice", gpu(2), hours=5)
    clock.advance(5 * HOUR)  # live lease: 10 more GPU-hours so far
    status = s.quota_status("user", "alice", s.quotas[("user", "alice")])
    assert status["gpu_hours_used"] == 20 and status["gpu_hours_left"] == 0
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", gpu(1))
    assert info.value.message == (
        "alice has 0 of 20 GPU-hours left this week (resets Monday 00:00 UTC)"
    )
    s.release(second.id)
    with pytest.raises(QuotaExceeded, match="of 20 GPU-hours left this week"):
        ask(s, "alice")
    # next Monday the budget is whole again
    monday = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    clock.advance(monday - clock.now)
    assert ask(s, "alice", gpu(1), hours=20).status == "active"


def test_group_gpu_hours_per_day(make, clock):
    s = make("a: 4xH100-80GB")
    s.set_quota("group", "lab", QuotaSpec(gpu_hours=3, period="day"), by="admin")
    x = ask(s, "alice", gpu(2), groups=["lab"])
    clock.advance(1.5 * HOUR)
    s.release(x.id)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "bob", groups=["lab"])
    assert info.value.message == "group lab has 0 of 3 GPU-hours left today (resets 00:00 UTC)"
    clock.advance(24 * HOUR)
    assert ask(s, "bob", groups=["lab"]).status == "active"


def test_gpu_hours_charged_for_the_lease_that_just_ended(make, engine, clock):
    """A queued request is checked at dispatch against hours that include the released lease."""
    s = make("a: 1xH100-80GB")
    first = ask(s, "alice")
    queued = ask(s, "alice")
    s.set_quota("user", "alice", QuotaSpec(gpu_hours=5), by="admin")
    clock.advance(6 * HOUR)
    s.release(first.id)
    assert queued.status == "refused"
    assert queued.end_reason == (
        "alice has 0 of 5 GPU-hours left this week (resets Monday 00:00 UTC)"
    )
    assert lease_rows(engine)[queued.id]["status"] == "refused"
    assert claim_rows(engine) == {}
    with pytest.raises(QuotaExceeded, match="alice has 0 of 5 GPU-hours left"):
        ask(s, "alice")


def test_term_quota(make, clock):
    s = make("a: 4xH100-80GB")
    s.set_quota(
        "user",
        "alice",
        QuotaSpec(gpu_hours=100, period="term", term_start="2027-01-04", term_end="2027-05-01"),
        by="admin",
    )
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice")
    assert info.value.message == (
        "user alice's GPU-hour term runs 2027-01-04 to 2027-05-01; "
        "no GPU-hours can be used outside it"
    )
    s.set_quota(
        "user",
        "alice",
        QuotaSpec(gpu_hours=1, period="term", term_start="2026-09-01", term_end="2027-01-15"),
        by="admin",
    )
    x = ask(s, "alice")
    clock.advance(2 * HOUR)
    s.release(x.id)
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice")
    assert info.value.message == (
        "alice has 0 of 1 GPU-hours left this term (2026-09-01 to 2027-01-15)"
    )


def test_allowed_shapes_and_profiles(make, engine):
    s = make("a: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=2]")
    s.set_quota("user", "alice", QuotaSpec(allowed_shapes=["mig:*", "shared"]), by="admin")
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "alice", gpu(2, "H100"))
    assert info.value.message == "user alice may not use 2 whole H100 GPUs (allowed: mig:*, shared)"
    assert ask(s, "alice", mig("1g.5gb")).status == "active"
    assert ask(s, "alice", shared()).status == "active"

    s.set_quota("group", "cs101", QuotaSpec(allowed_profiles=["small-*"]), by="admin")
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "bob", gpu(), groups=["cs101"])
    assert info.value.message == "group cs101 may not use profile (none) (allowed: small-*)"
    with pytest.raises(QuotaExceeded) as info:
        ask(s, "bob", gpu(), groups=["cs101"], profile="big-gpu")
    assert info.value.message == "group cs101 may not use profile big-gpu (allowed: small-*)"
    before = counts(engine)
    assert before == (2, 2)
    lease = ask(s, "bob", gpu(), groups=["cs101"], profile="small-1")
    assert (lease.status, lease.profile) == ("active", "small-1")
    assert lease_rows(engine)[lease.id]["profile"] == "small-1"


def test_membership_is_required(make, engine):
    s = make("a: 1xH100-80GB")
    with pytest.raises(Forbidden) as info:
        ask(s, "alice", groups=["ml"], group="cs101")
    assert info.value.message == "alice is not a member of group cs101"
    assert (status_of(info.value), info.value.code, info.value.field) == (403, "forbidden", "group")
    assert counts(engine) == (0, 0)


def test_ambiguous_group(make, engine):
    s = make("a: 2xH100-80GB")
    s.set_quota("group", "ml", QuotaSpec(max_units=1), by="admin")
    s.set_quota("group", "cs101", QuotaSpec(max_units=1), by="admin")
    with pytest.raises(SchedulerError) as info:
        ask(s, "alice", groups=["ml", "cs101", "plain"])
    assert info.value.message == (
        "alice is in groups cs101, ml which have GPU quotas; say which group this request is for"
    )
    assert (status_of(info.value), info.value.field) == (400, "group")
    assert counts(engine) == (0, 0)
    lease = ask(s, "alice", groups=["ml", "cs101"], group="ml")
    assert lease.group == "ml"
    assert lease_rows(engine)[lease.id]["group_name"] == "ml"
    # a group without a quota is never picked implicitly
    assert ask(s, "bob", groups=["plain"]).group is None


def test_quota_set_and_delete_take_effect_at_once(make, engine):
    s = make("a: 4xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=1), by="admin")
    ask(s, "alice")
    with pytest.raises(QuotaExceeded):
        ask(s, "alice")
    s.set_quota("user", "alice", QuotaSpec(max_units=3), by="root")
    assert ask(s, "alice", gpu(2)).status == "active"
    with engine.connect() as c:
        [row] = c.execute(select(QuotaRow.__table__)).all()
    assert (row.kind, row.name, row.updated_by, row.spec["max_units"]) == (
        "user",
        "alice",
        "root",
        3,
    )
    with pytest.raises(QuotaExceeded):
        ask(s, "alice")
    s.delete_quota("user", "alice", by="root")
    assert ask(s, "alice").status == "active"
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(QuotaRow.__table__)).scalar_one() == 0
    with pytest.raises(NotFound, match="user alice has no quota"):
        s.delete_quota("user", "alice", by="root")


def test_default_user_quota(make):
    s = make("a: 4xH100-80GB", default_user_quota=QuotaSpec(max_units=1))
    ask(s, "alice")
    with pytest.raises(QuotaExceeded, match="user alice uses 1 of their 1 GPU units"):
        ask(s, "alice")
    s.set_quota("user", "alice", QuotaSpec(max_units=2), by="admin")
    assert ask(s, "alice").status == "active"


# -- restart ---------------------------------------------------------------------------


def snapshot(s: Scheduler):
    live = {x.id: (x.status, x.node, tuple(uuids(x)), x.units) for x in s.live.values()}
    return live, [x.id for x in s.queue()]


def test_restart_rebuilds_the_same_state(make, engine, clock):
    spec = "a: 2xH100-80GB[nvlink], 1xA100-40GB[mig=7x1g.5gb]; b: 1xL4-24GB[shared=2]"
    s = make(spec)
    s.set_quota("user", "vip", QuotaSpec(priority=3), by="admin")
    s.set_quota("group", "cs101", QuotaSpec(max_units=3), by="admin")
    ask(s, "alice", gpu(2), groups=["cs101"])
    m = ask(s, "bob", mig("1g.5gb"))
    ask(s, "carol", shared())
    ask(s, "dan", shared())
    clock.advance(1)
    q1 = ask(s, "erin", gpu(1))
    clock.advance(1)
    q2 = ask(s, "vip", gpu(2))
    clock.advance(1)
    q3 = ask(s, "fred", shared())
    s.release(m.id)
    before = snapshot(s)
    assert before[1] == [q2.id, q1.id, q3.id]

    clock.advance(HOUR)
    again = Scheduler(engine, parse_spec(spec), clock=clock)
    assert snapshot(again) == before
    assert again.quotas == s.quotas
    assert again.next_id == s.next_id
    assert_consistent(again)
    # the group quota is still enforced after the restart
    with pytest.raises(QuotaExceeded, match="group cs101 uses 2 of its 3 GPU units"):
        ask(again, "zoe", gpu(2), groups=["cs101"])
    # no slot can be held twice: everything taken stays taken
    assert ask(again, "gina", gpu(1)).status == "queued"
    # the queue continues in the same order
    alice = next(x for x in again.live.values() if x.user == "alice")
    again.release(alice.id)
    assert again.get(q2.id).status == "active"
    assert again.get(q1.id).status == "queued"
    assert_consistent(again)


def test_restart_with_a_changed_inventory_keeps_leases(make, engine, clock):
    s = make("a: 2xH100-80GB; b: 1xH100-80GB")
    on_b = ask(s, "alice", gpu(1))
    assert on_b.node == "b"
    again = Scheduler(engine, parse_spec("a: 2xH100-80GB"), clock=clock)
    assert again.live[on_b.id].status == "active"
    assert ask(again, "bob", gpu(2)).status == "active"
    clock.advance(HOUR)
    again.release(on_b.id)
    assert claim_rows(engine) == {(u, 0): x.id for x in again.live.values() for u in uuids(x)}


# -- the ledger ------------------------------------------------------------------------


def test_usage_splits_a_lease_crossing_midnight(make, clock):
    s = make("a: 4xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]")
    clock.advance(13 * HOUR)  # Monday 22:00
    two = ask(s, "alice", gpu(2), groups=["cs101"], group="cs101")
    small = ask(s, "bob", mig("1g.5gb"))
    clock.advance(4 * HOUR)  # Tuesday 02:00
    s.release(two.id)
    clock.advance(3 * HOUR)  # Tuesday 05:00, bob still holds his slice
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC).timestamp()
    rows = s.usage(start, start + 7 * 24 * HOUR)
    assert rows == [
        {
            "day": "2026-11-23",
            "user": "alice",
            "group": "cs101",
            "gpu_hours": 4.0,
            "credits": 4.0,
            "leases": 1,
        },
        {
            "day": "2026-11-23",
            "user": "bob",
            "group": None,
            "gpu_hours": round(2 / 7, 6),
            "credits": round(2 / 7, 6),
            "leases": 1,
        },
        {
            "day": "2026-11-24",
            "user": "alice",
            "group": "cs101",
            "gpu_hours": 4.0,
            "credits": 4.0,
            "leases": 1,
        },
        {
            "day": "2026-11-24",
            "user": "bob",
            "group": None,
            "gpu_hours": round(5 / 7, 6),
            "credits": round(5 / 7, 6),
            "leases": 1,
        },
    ]
    expected = 2 * 4 + (1 / 7) * 7
    assert sum(r["gpu_hours"] for r in rows) == pytest.approx(expected, abs=1e-6)
    assert sum(x.gpu_hours(clock.now) for x in (s.get(two.id), small)) == pytest.approx(expected)
    assert s.usage(start, start + 7 * 24 * HOUR, by=("user",)) == [
        {"user": "alice", "gpu_hours": 8.0, "credits": 8.0, "leases": 1},
        {"user": "bob", "gpu_hours": 1.0, "credits": 1.0, "leases": 1},
    ]
    assert s.usage(0, 2e9, group="cs101", by=("day",)) == [
        {"day": "2026-11-23", "gpu_hours": 4.0, "credits": 4.0, "leases": 1},
        {"day": "2026-11-24", "gpu_hours": 4.0, "credits": 4.0, "leases": 1},
    ]
    # a window inside the lease counts only its part
    midnight = start + 24 * HOUR
    assert s.usage(midnight - HOUR, midnight + HOUR, user="alice", by=("user",)) == [
        {"user": "alice", "gpu_hours": 4.0, "credits": 4.0, "leases": 1}
    ]
    # the future is not charged
    assert s.usage(clock.now, clock.now + 10 * HOUR) == []


def test_a_claim_written_behind_the_schedulers_back_is_refused_and_then_respected(db_url, clock):
    """The claims primary key is the last guard; after the refusal the slot stays out of use."""
    from gpuhub.scheduler.core import SchedulerError
    from sqlalchemy import insert as sa_insert

    engine = open_engine(db_url)
    try:
        s = Scheduler(engine, parse_spec("n: 2xH100-80GB"), clock=clock)
        a = s.request(user="alice", user_groups=[], shape=WholeGpus(count=1))
        other = next(d for d in ("GPU-sim-n-0", "GPU-sim-n-1") if d != a.devices[0]["uuid"])
        with engine.begin() as conn:  # a second writer claims the free GPU
            conn.execute(
                sa_insert(ClaimRow.__table__).values(device_id=other, slot=0, lease_id=a.id)
            )
        with pytest.raises(SchedulerError, match="the pool changed under this request"):
            s.request(user="bob", user_groups=[], shape=WholeGpus(count=1))
        assert sorted(s.live) == [a.id]
        queued = s.request(user="bob", user_groups=[], shape=WholeGpus(count=1))
        assert queued.status == "queued"  # the reloaded picture keeps the claimed GPU out of use
    finally:
        engine.dispose()
