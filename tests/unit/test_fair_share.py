"""Fair share over time: the queue order between groups, and between the users of a
group, follows their GPU-hours decayed with a half-life relative to their shares; priority
still comes first; on SQLite and PostgreSQL with an injected clock.
"""

from __future__ import annotations

import pytest
from gpuhub.scheduler.fairshare import FairShare
from gpuhub.scheduler.quota import QuotaSpec

from tests.support.scheduler import HOUR, ask, assert_consistent, gpu

POOL = "n1: 2xH100-80GB"
DAY = 24 * HOUR
WEEK = 7 * DAY


@pytest.fixture
def s(make):
    return make(POOL, fair_share_half_life=WEEK)


def use(s, clock, user, group, hours, gpus=2):
    """``user`` holds ``gpus`` GPUs through ``group`` for ``hours``, then releases them."""
    lease = ask(s, user, gpu(gpus), groups=[group] if group else [], group=group)
    assert lease.status == "active"
    clock.advance(hours * HOUR)
    s.release(lease.id)


def queue_users(s):
    return [x.user for x in s.queue()]


def test_a_group_that_used_more_waits_behind_one_that_used_less(s, clock):
    use(s, clock, "ann", "heavy", 10)
    use(s, clock, "bea", "light", 1)
    hold = ask(s, "zed", gpu(2))  # the pool is full from here on
    ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")  # first in time
    ask(s, "bea", gpu(1), groups=["light"], group="light")
    assert queue_users(s) == ["bea", "ann"]
    why = s.view.waiting(s.queue()[1])["message"]
    assert (
        "group heavy has used " in why and " of its share lately (usage halves every 7 days)" in why
    )
    assert "1 newer request of a group with less use go first" in why, why
    s.release(hold.id)
    assert [x.user for x in s.live.values() if x.status == "active"] == ["ann", "bea"]
    assert_consistent(s)


def test_without_a_half_life_the_queue_is_first_come_first_served(make, clock):
    s = make(POOL)
    use(s, clock, "ann", "heavy", 10)
    ask(s, "zed", gpu(2))
    ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")
    ask(s, "bea", gpu(1), groups=["light"], group="light")
    assert queue_users(s) == ["ann", "bea"]


def test_within_a_group_the_user_who_used_less_goes_first(s, clock):
    use(s, clock, "ann", "lab", 6)
    use(s, clock, "bo", "lab", 1)
    ask(s, "zed", gpu(2))
    ask(s, "ann", gpu(1), groups=["lab"], group="lab")
    ask(s, "bo", gpu(1), groups=["lab"], group="lab")
    assert queue_users(s) == ["bo", "ann"]
    ann, bo = s.queue()[1], s.queue()[0]
    assert bo.fair[0] == ann.fair[0] and bo.fair[1] > ann.fair[1]


def test_old_usage_weighs_less_than_recent_usage(s, clock):
    use(s, clock, "ann", "old", 10)
    clock.advance(3 * WEEK)  # ann's hours now count an eighth
    use(s, clock, "bea", "recent", 4)
    ask(s, "zed", gpu(2))
    ask(s, "bea", gpu(1), groups=["recent"], group="recent")
    ask(s, "ann", gpu(1), groups=["old"], group="old")
    assert queue_users(s) == ["ann", "bea"]


def test_shares_scale_what_counts_as_too_much(s, clock):
    s.set_quota("group", "big", QuotaSpec(max_units=2, fair_share=4), by="admin")
    s.set_quota("group", "small", QuotaSpec(max_units=2, fair_share=1), by="admin")
    use(s, clock, "ann", "big", 3)  # 6 GPU-hours on a share of 4
    use(s, clock, "bea", "small", 1)  # 2 GPU-hours on a share of 1: more, for its share
    ask(s, "zed", gpu(2))
    ask(s, "bea", gpu(1), groups=["small"], group="small")
    ask(s, "ann", gpu(1), groups=["big"], group="big")
    assert queue_users(s) == ["ann", "bea"]


def test_priority_still_comes_first(s, clock):
    s.set_quota("group", "heavy", QuotaSpec(priority=10), by="admin")
    use(s, clock, "ann", "heavy", 10)
    ask(s, "zed", gpu(2))
    ask(s, "bea", gpu(1), groups=["light"], group="light")
    ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")
    assert queue_users(s) == ["ann", "bea"]


def test_running_usage_counts_and_a_tick_reorders_the_queue(s, clock):
    ann = ask(s, "ann", gpu(1), groups=["a"], group="a")
    ask(s, "bea", gpu(1), groups=["b"], group="b")  # the pool is full; both ran as long
    clock.advance(HOUR)
    ask(s, "ann", gpu(1), groups=["a"], group="a")
    ask(s, "bea", gpu(1), groups=["b"], group="b")
    assert queue_users(s) == ["ann", "bea"]  # equal usage: first come
    s.release(ann.id)  # ann's next request is granted; bea keeps running
    assert queue_users(s) == ["bea"]
    ask(s, "ann", gpu(1), groups=["a"], group="a")
    clock.advance(5 * HOUR)  # bea has run 6 h, ann's group 1 h + 5 h
    ask(s, "cy", gpu(1), groups=["c"], group="c")
    s.tick()
    assert queue_users(s)[0] == "cy"  # used nothing


def test_the_order_survives_a_restart(s, make, clock):
    use(s, clock, "ann", "heavy", 10)
    ask(s, "zed", gpu(2))
    ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")
    ask(s, "bea", gpu(1), groups=["light"], group="light")
    again = make(POOL, fair_share_half_life=WEEK)
    assert queue_users(again) == ["bea", "ann"]
    assert again.fair.usage(again.live, clock(), group="heavy") == pytest.approx(
        s.fair.usage(s.live, clock(), group="heavy")
    )


def test_usage_out_of_the_horizon_is_forgotten_as_a_restart_would(s, make, clock):
    """A group whose last use ended more than ten half-lives ago is out of play, in memory
    as in what a restarted service reads: the factors and the queue order agree."""
    from gpuhub.scheduler.fairshare import HORIZON_HALF_LIVES

    use(s, clock, "old", "gone", 1)  # out of the horizon below
    clock.advance(HORIZON_HALF_LIVES * WEEK - 2 * HOUR)
    use(s, clock, "ann", "heavy", 1)  # ends inside it
    clock.advance(2 * HOUR)
    ask(s, "zed", gpu(2))
    ann = ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")
    bea = ask(s, "bea", gpu(1), groups=["light"], group="light")
    assert "gone" not in s.fair.groups and ("gone", "old") not in s.fair.users
    s.tick()  # a restart ranks as a tick does: all waiting groups in play
    again = make(POOL, fair_share_half_life=WEEK)
    for x in again.queue():
        assert x.fair == pytest.approx({ann.id: ann.fair, bea.id: bea.fair}[x.id], abs=2e-6)
    assert queue_users(again) == queue_users(s) == ["bea", "ann"]


@pytest.mark.parametrize("bad", [0, 10, -1, float("nan"), "7d", True, 10**9])
def test_a_bad_half_life_says_what_is_wrong(bad):
    with pytest.raises(ValueError, match="half-life"):
        FairShare(bad, store=None)


def test_a_requests_factors_are_the_same_alone_and_at_a_tick(s, clock):
    use(s, clock, "ann", "heavy", 3)
    ask(s, "zed", gpu(2))
    ask(s, "bea", gpu(1), groups=["light"], group="light")  # waits: its group is in play
    ann = ask(s, "ann", gpu(1), groups=["heavy"], group="heavy")
    alone = ann.fair
    s.tick()  # no time passed: nothing to change
    assert ann.fair == alone
