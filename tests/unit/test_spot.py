"""Spot capacity in the scheduler: preemptible leases on idle devices at a discount, their
own allowance, and the preemption that takes them back for guaranteed requests (victims
youngest first, never before a minimum runtime, never a reservation's members in their
window; a notice, a deadline, and the lease released once), on SQLite and PostgreSQL
with an injected clock.
"""

from __future__ import annotations

import datetime as dt

import pytest
from gpuhub.scheduler.errors import QuotaExceeded, SchedulerError
from gpuhub.scheduler.pricing import RateCard
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.spot import SpotPolicy

from tests.support.scheduler import HOUR, ask, assert_consistent, gpu, lease_rows

POOL = "n1: 4xH100-80GB"
SPOT = SpotPolicy(enabled=True, discount=0.3, grace_s=120, min_runtime_s=600, kill_after_s=60)


@pytest.fixture
def s(make, engine, clock):
    return make(POOL, rates=RateCard(engine, {"H100": 2.0}, clock=clock), spot=SPOT)


def spot(s, user, count=1, **kw):
    return ask(s, user, gpu(count), tier="spot", **kw)


def test_spot_is_refused_unless_an_admin_offers_it(make):
    plain = make(POOL)
    with pytest.raises(SchedulerError, match="spot capacity is not offered") as e:
        spot(plain, "alice")
    assert e.value.field == "tier"
    with pytest.raises(SchedulerError, match="tier must be"):
        ask(plain, "alice", gpu(), tier="cheap")
    assert plain.live == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"discount": 1.5},
        {"discount": "0.3"},
        {"discount": True},
        {"grace_s": -1},
        {"grace_s": float("nan")},
        {"min_runtime_s": 10**9},
        {"kill_after_s": "60"},
        {"enabled": "yes"},
    ],
)
def test_a_bad_spot_policy_says_what_is_wrong(bad):
    with pytest.raises(ValueError, match="spot "):
        SpotPolicy(**bad)


def test_a_spot_lease_is_discounted_and_counts_against_the_spot_allowance(s, clock):
    s.set_quota("user", "alice", QuotaSpec(max_units=1, spot_max_units=3), by="admin")
    g = ask(s, "alice", gpu(1))
    sp = spot(s, "alice", 3)  # the guaranteed quota (1) does not hold it back
    assert (g.status, sp.status, sp.tier, sp.discount) == ("active", "active", "spot", 0.3)
    with pytest.raises(QuotaExceeded, match="uses 3 of their 3 spot GPU units"):
        spot(s, "alice", 1)
    with pytest.raises(QuotaExceeded, match=r"uses 1 of their 1 GPU units"):
        ask(s, "alice", gpu(1))
    clock.advance(HOUR)
    assert sp.credits(clock()) == pytest.approx(3 * 2.0 * 0.3)
    status = s.view.quota_status("user", "alice", s.quotas[("user", "alice")])
    assert (status["units_active"], status["spot_units_active"]) == (1.0, 3.0)
    assert lease_rows(s.engine)[sp.id]["tier"] == "spot"
    assert_consistent(s)


def test_a_queued_spot_request_is_granted_by_its_spot_allowance(s):
    """Dispatch checks a queued spot request against the spot allowance, not the
    guaranteed quota (it was refused by the latter once)."""
    s.set_quota("user", "sam", QuotaSpec(max_units=1, spot_max_units=3), by="admin")
    ask(s, "sam", gpu(1))
    others = ask(s, "ann", gpu(3))
    sp = spot(s, "sam", 1)
    assert sp.status == "queued" and s.view.waiting(sp)["reason"] != "quota_limit"
    s.release(others.id)
    assert sp.status == "active" and sp.tier == "spot"


def test_spot_gpu_hours_are_a_budget_of_their_own(s, clock):
    s.set_quota("user", "bob", QuotaSpec(gpu_hours=1, spot_gpu_hours=4), by="admin")
    sp = spot(s, "bob", 2)
    clock.advance(2 * HOUR)  # 4 spot GPU-hours: the spot budget is spent
    s.release(sp.id)
    with pytest.raises(QuotaExceeded, match="0 of 4 spot GPU-hours left"):
        spot(s, "bob")
    assert ask(s, "bob", gpu(1)).status == "active"  # the guaranteed hour is untouched
    status = s.view.quota_status("user", "bob", s.quotas[("user", "bob")])
    assert status["spot_gpu_hours_used"] == pytest.approx(4.0)
    assert status["gpu_hours_used"] == pytest.approx(0.0)


def test_credits_pay_for_both_tiers(s, clock):
    s.set_quota("user", "carol", QuotaSpec(credits=2.0), by="admin")
    sp = spot(s, "carol", 1)
    clock.advance(2 * HOUR)  # 2 h x 2.0 x 0.3 = 1.2 credits
    s.release(sp.id)
    assert s.view.quota_status("user", "carol", s.quotas[("user", "carol")])[
        "credits_used"
    ] == pytest.approx(1.2)
    with pytest.raises(QuotaExceeded, match="credits left"):
        ask(s, "carol", gpu(1), hours=1)  # needs 2.0, 0.8 left
    assert spot(s, "carol", 1, hours=1).status == "active"  # needs 0.6


def test_a_guaranteed_request_preempts_the_youngest_ripe_spot_lease(s, clock):
    old = spot(s, "sam", 2)  # n1 (or n2)
    clock.advance(HOUR)
    young = spot(s, "sue", 2)
    clock.advance(HOUR)
    assert (old.status, young.status) == ("active", "active")
    g = ask(s, "ann", gpu(2))
    assert g.status == "queued"
    assert young.notice_at == clock() and young.deadline == clock() + 120
    assert old.notice_at is None  # youngest first, and one was enough
    row = lease_rows(s.engine)[young.id]
    assert (row["notice_at"], row["deadline"]) == (clock(), clock() + 120)
    shown = young.to_dict(clock())["preemption"]
    assert shown == {
        "notice_at": dt.datetime.fromtimestamp(clock(), dt.UTC).isoformat(),
        "deadline": dt.datetime.fromtimestamp(clock() + 120, dt.UTC).isoformat(),
    }
    # a second waiter does not count on the devices the first one will get
    g2 = ask(s, "bea", gpu(2))
    assert g2.status == "queued" and old.notice_at == clock()
    # the holder ends its work: the lease goes once, the waiter gets its devices
    clock.advance(60)
    s.release(young.id, reason="preempted")
    assert g.status == "active" and set(g.slots) == set(young.slots)
    assert s.release(young.id).end_reason == "preempted"  # releasing again changes nothing
    assert_consistent(s)


def test_a_spot_lease_younger_than_the_minimum_runtime_is_not_preempted_until_it_ripens(s, clock):
    sp = spot(s, "sam", 4)
    clock.advance(300)
    g = ask(s, "ann", gpu(1))
    assert g.status == "queued" and sp.notice_at is None
    boundary = s.view.next_boundary()
    assert boundary == sp.granted_at + 600  # the service ticks then
    clock.advance(boundary - clock())
    s.tick()
    assert sp.notice_at == clock() and g.status == "queued"


def test_the_scheduler_releases_a_lease_its_holder_did_not_after_the_deadline(s, clock):
    sp = spot(s, "sam", 4)
    clock.advance(HOUR)
    g = ask(s, "ann", gpu(4))
    assert sp.deadline == clock() + 120
    assert s.view.next_boundary() == sp.deadline + 60
    clock.advance(120 + 59)
    s.tick()
    assert sp.status == "active"
    clock.advance(1)
    s.tick()
    assert (sp.status, sp.end_reason, g.status) == ("released", "preempted", "active")
    # booked at the spot rate up to its end
    assert sp.credits(clock()) == pytest.approx(4 * (HOUR + 180) / HOUR * 2.0 * 0.3)
    assert_consistent(s)


def test_spot_requests_wait_behind_guaranteed_ones_and_never_preempt(s, clock):
    hold = ask(s, "ann", gpu(4))
    sp = spot(s, "sam", 1)
    g = ask(s, "bea", gpu(1))
    assert (sp.status, g.status) == ("queued", "queued")
    s.release(hold.id)
    assert (g.status, sp.status) == ("active", "active")
    spot2 = spot(s, "sue", 2)
    clock.advance(HOUR)
    spot3 = spot(s, "tom", 2)  # nothing idle: it waits, and preempts nobody
    assert spot3.status == "queued" and spot2.notice_at is None and sp.notice_at is None


def test_no_spot_request_takes_what_a_preemption_frees_for_a_guaranteed_one(s, clock):
    sam = spot(s, "sam", 2)
    clock.advance(HOUR)
    ann = ask(s, "ann", gpu(4))
    assert ann.status == "queued" and sam.notice_at == clock()
    sue = spot(s, "sue", 1)  # two GPUs are free, but ann counts on them
    assert sue.status == "queued"
    s.release(sam.id, reason="preempted")
    assert (ann.status, sue.status) == ("active", "queued")
    s.release(ann.id)
    assert sue.status == "active"


def test_preemption_never_takes_a_reservations_members_in_its_window(s, clock):
    start = clock()
    s.reserve(group="lab", shape=gpu(), count=2, start=start, end=start + 4 * HOUR, by="admin")
    member = spot(s, "mia", 2, groups=["lab"])  # on the reserved devices, in the window
    other = spot(s, "sam", 2)
    clock.advance(HOUR)
    g = ask(s, "ann", gpu(2))
    assert other.notice_at == clock() and member.notice_at is None
    assert g.status == "queued"


def test_a_notice_survives_a_restart(s, make, clock):
    sp = spot(s, "sam", 4)
    clock.advance(HOUR)
    ask(s, "ann", gpu(1))
    again = make(POOL, rates=RateCard(s.engine, {"H100": 2.0}, clock=clock), spot=SPOT)
    back = again.live[sp.id]
    assert (back.tier, back.notice_at, back.deadline) == ("spot", clock(), clock() + 120)
    assert back.discount == 0.3
    assert_consistent(again)


def test_spot_tier_is_part_of_an_idempotent_request(s):
    a, replayed = s.request_once(
        idempotency_key="k1", user="sam", user_groups=[], shape=gpu(), tier="spot"
    )
    b, replayed2 = s.request_once(
        idempotency_key="k1", user="sam", user_groups=[], shape=gpu(), tier="spot"
    )
    assert a.id == b.id and (replayed, replayed2) == (False, True)
    with pytest.raises(SchedulerError, match="different request"):
        s.request_once(idempotency_key="k1", user="sam", user_groups=[], shape=gpu())
