"""Cohorts that borrow and lend, in the scheduler: groups naming the same cohort lend each
other their unused ``max_units`` (within ``lend_limit`` and ``borrow_limit``), borrowed
work is preemptible, and a lender's members take their share back with the preemption
protocol (borrowed leases first, then spot ones), on SQLite and PostgreSQL with an
injected clock.
"""

from __future__ import annotations

import pytest
from gpuhub.scheduler.errors import QuotaExceeded
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.spot import SpotPolicy

from tests.support.scheduler import HOUR, ask, assert_consistent, gpu, lease_rows

POOL = "n1: 4xH100-80GB"
CS101, CS102 = ["cs101"], ["cs102"]


def share(s, group, max_units=2, **kw):
    s.set_quota("group", group, QuotaSpec(max_units=max_units, cohort="dept", **kw), by="admin")


@pytest.fixture
def s(make):
    s = make(POOL, spot=SpotPolicy(enabled=True, grace_s=60, min_runtime_s=300))
    share(s, "cs101")
    share(s, "cs102")
    return s


def status(s, group):
    return s.view.quota_status("group", group, s.quotas[("group", group)])


def test_a_group_past_its_share_borrows_a_cohort_groups_unused_units(s):
    own = ask(s, "alice", gpu(2), groups=CS101)
    borrowed = ask(s, "alice", gpu(1), groups=CS101)
    assert (own.borrowed_from, borrowed.borrowed_from) == (None, "cs102")
    assert borrowed.status == "active" and borrowed.tier == "guaranteed"
    assert lease_rows(s.engine)[borrowed.id]["borrowed_from"] == "cs102"
    assert borrowed.to_dict(0)["borrowed_from"] == "cs102"
    assert (status(s, "cs101")["borrowed_units"], status(s, "cs102")["lent_units"]) == (1.0, 1.0)
    assert status(s, "cs101")["units_active"] == 3.0  # its usage counts all it holds
    # cs102 has one unit left to lend: two more are refused, and say why
    with pytest.raises(QuotaExceeded, match="nothing to borrow in cohort dept"):
        ask(s, "alice", gpu(2), groups=CS101)
    assert_consistent(s)


def test_lend_and_borrow_limits_cap_the_loans(s):
    share(s, "cs102", lend_limit=1)
    ask(s, "alice", gpu(2), groups=CS101)
    assert ask(s, "alice", gpu(1), groups=CS101).borrowed_from == "cs102"
    with pytest.raises(QuotaExceeded, match="nothing to borrow"):
        ask(s, "alice", gpu(1), groups=CS101)  # cs102 lends one unit at most
    share(s, "cs102")
    share(s, "cs101", borrow_limit=1)
    with pytest.raises(QuotaExceeded, match="nothing to borrow"):
        ask(s, "alice", gpu(1), groups=CS101)  # cs101 borrows one unit at most


def test_servers_and_groups_outside_the_cohort_never_borrow(s):
    ask(s, "alice", gpu(2), groups=CS101)
    with pytest.raises(QuotaExceeded, match="servers do not borrow"):
        ask(s, "alice", gpu(1), groups=CS101, label="server:alice/")
    s.set_quota("group", "other", QuotaSpec(max_units=1), by="admin")
    ask(s, "olga", gpu(1), groups=["other"])
    with pytest.raises(QuotaExceeded, match="uses 1 of its 1 GPU units"):
        ask(s, "olga", gpu(1), groups=["other"])


def test_the_lender_takes_its_share_back_borrowed_work_first(s, clock):
    ask(s, "alice", gpu(2), groups=CS101)
    borrowed = ask(s, "alice", gpu(2), groups=CS101)  # the pool is full
    assert borrowed.borrowed_from == "cs102"
    clock.advance(HOUR)
    bob = ask(s, "bob", gpu(1), groups=CS102)  # within cs102's own share
    assert bob.status == "queued"
    assert borrowed.notice_at == clock() and borrowed.deadline == clock() + 60
    s.release(borrowed.id, reason="preempted")
    assert bob.status == "active" and bob.borrowed_from is None
    assert status(s, "cs102")["lent_units"] == 0.0
    assert_consistent(s)


def test_borrowed_work_goes_before_younger_spot_work(s, clock):
    ask(s, "alice", gpu(2), groups=CS101)
    borrowed = ask(s, "alice", gpu(1), groups=CS101)
    clock.advance(HOUR)
    spot = ask(s, "sam", gpu(1), tier="spot")  # younger, and ripe later
    clock.advance(HOUR)
    ask(s, "bob", gpu(1), groups=CS102)
    assert borrowed.notice_at == clock() and spot.notice_at is None


def test_only_the_lender_takes_back_what_it_lent(s, clock):
    """carol (cs102) borrows from cs101; a member of cs103, within its own share, waits
    and preempts nothing of cs101's loan; a member of cs101 takes it back."""
    s.set_quota("group", "cs103", QuotaSpec(max_units=2, cohort="dept"), by="admin")
    ask(s, "carol", gpu(2), groups=CS102)
    lent = ask(s, "carol", gpu(2), groups=CS102)  # the pool is full
    assert lent.borrowed_from == "cs101"  # the most unused, cs101 before cs103 on a tie
    clock.advance(HOUR)
    dora = ask(s, "dora", gpu(1), groups=["cs103"])
    assert dora.status == "queued" and lent.notice_at is None
    alice = ask(s, "alice", gpu(1), groups=CS101)
    assert alice.status == "queued" and lent.notice_at == clock()
    why = s.view.waiting(alice)["message"]
    assert "1 preempted lease gives its GPUs back by 10:01 UTC" in why, why
    s.release(lent.id, reason="preempted")
    assert (dora.status, alice.status) == ("active", "active")  # in queue order
    assert_consistent(s)


def test_why_waiting_says_a_request_would_borrow_and_from_whom(s):
    ask(s, "alice", gpu(2), groups=CS101)
    ask(s, "sam", gpu(2))  # the pool is full
    waiting = ask(s, "alice", gpu(1), groups=CS101)
    why = s.view.waiting(waiting)["message"]
    assert "past group cs101's share, it would borrow from cs102 (cohort dept)" in why, why


def test_loans_survive_a_restart(s, make, clock):
    ask(s, "alice", gpu(2), groups=CS101)
    borrowed = ask(s, "alice", gpu(1), groups=CS101)
    again = make(POOL, spot=SpotPolicy(enabled=True, grace_s=60, min_runtime_s=300))
    assert again.live[borrowed.id].borrowed_from == "cs102"
    assert again.accounting.lent["cs102"] == 1 and again.accounting.borrowed["cs101"] == 1
    with pytest.raises(QuotaExceeded, match="nothing to borrow"):
        ask(again, "alice", gpu(2), groups=CS101)
    assert_consistent(again)


@pytest.mark.parametrize(
    "bad, says",
    [
        ({"cohort": "dept"}, "needs max_units"),
        ({"max_units": 1, "lend_limit": 1}, "need a cohort"),
        ({"max_units": 1, "cohort": "no spaces"}, "cohort"),
        ({"max_units": 1, "cohort": "d", "borrow_limit": -1}, "borrow_limit"),
        ({"max_units": 1, "cohort": "d", "lend_limit": 2}, "cannot be above max_units"),
    ],
)
def test_bad_cohort_quotas_say_what_is_wrong(bad, says):
    with pytest.raises(ValueError, match=says):
        QuotaSpec(**bad)
