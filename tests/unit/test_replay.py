"""The replay (gpuhub.scheduler.replay) and the admins' what-if built on it
(gpuhub.scheduler.whatif): demands driven through the real scheduler on an injected
clock — waits, holds, give-ups, quota refusals asked again, spot preemption and resume —
and the ledger replayed twice under a proposed quota or rate, leaving the real scheduler
and its database as they were.
"""

from __future__ import annotations

import math

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler import whatif
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.errors import SchedulerError
from gpuhub.scheduler.pricing import RateCard
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.replay import Demand, Replay, ReplayClock
from gpuhub.scheduler.spot import SpotPolicy
from gpuhub.scheduler.whatif import WhatIf
from sqlalchemy import select

from tests.support.clock import CLOCK_START
from tests.support.scheduler import HOUR, assert_consistent, gpu, lease_rows

T0 = CLOCK_START
MIN = 60.0
SPOT = SpotPolicy(enabled=True, discount=0.5, grace_s=120, min_runtime_s=600, kill_after_s=60)


@pytest.fixture
def replayed(engine):
    """``replayed(spec, rates=None, **kwargs)``: (scheduler, its replay clock) over a
    simulated pool on the test database, the clock at T0; ``rates`` configures its card."""

    def replayed(spec: str, rates=None, **kwargs) -> tuple[Scheduler, ReplayClock]:
        clock = ReplayClock(T0)
        card = RateCard(engine, rates or {}, clock=clock)
        return Scheduler(engine, parse_spec(spec), clock=clock, rates=card, **kwargs), clock

    return replayed


def ask(at: float, user: str = "alice", hold: float = HOUR, **kw) -> Demand:
    return Demand(at=T0 + at, user=user, shape=kw.pop("shape", gpu()), hold=hold, **kw)


# -- the replay ---------------------------------------------------------------------------


def test_a_demand_waits_for_the_one_before_it_and_each_holds_as_long_as_it_did(replayed):
    s, clock = replayed("n1: 1xH100-80GB", rates={"H100": 2.0})
    seen: list[float] = []
    first, second = Replay(s, clock, observe=seen.append).run(
        [ask(0), ask(10 * MIN, "bob", hold=30 * MIN)]
    )
    assert (first.granted_at, first.done_at, first.wait(clock.now)) == (T0, T0 + HOUR, 0.0)
    assert (second.granted_at, second.done_at) == (T0 + HOUR, T0 + HOUR + 30 * MIN)
    assert second.wait(clock.now) == 50 * MIN
    assert (first.credits, second.credits) == (2.0, 1.0)  # 1 GPU-hour, then half, at 2.0
    assert first.gpu_hours == 1.0 and second.gpu_hours == 0.5
    assert seen == sorted(seen) and seen[-1] == clock.now == T0 + 90 * MIN
    assert s.live_leases() == [] and s.pool.capacity()["free"] == 1
    assert_consistent(s)


def test_a_queued_demand_that_gives_up_is_withdrawn_and_never_granted(replayed):
    s, clock = replayed("n1: 1xH100-80GB")
    _, quitter, patient = Replay(s, clock).run(
        [ask(0), ask(MIN, "bob", gives_up=T0 + 20 * MIN), ask(2 * MIN, "carol")]
    )
    assert quitter.withdrawn and not quitter.granted and quitter.refused is None
    assert quitter.wait(clock.now) is None and quitter.waited == 19 * MIN
    assert patient.granted_at == T0 + HOUR  # the one who gave up was ahead of it
    assert lease_rows(s.engine)[quitter.leases[0]]["status"] == "cancelled"


def test_a_request_the_quota_refuses_asks_again_when_the_users_lease_ends(replayed):
    s, clock = replayed("n1: 4xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=1), by="test")
    first, second, bob = Replay(s, clock).run([ask(0), ask(5 * MIN), ask(6 * MIN, "bob")])
    assert bob.granted_at == T0 + 6 * MIN  # the pool had room: only alice's quota held her
    assert second.granted_at == T0 + HOUR and second.wait(clock.now) == 55 * MIN
    assert second.refused is None and second.leases  # asked again, then granted


def test_a_demand_the_quota_keeps_refusing_gives_up_refused_or_waits_to_the_end(replayed):
    s, clock = replayed("n1: 4xH100-80GB")
    s.set_quota("user", "alice", QuotaSpec(max_units=1), by="test")
    forever = ask(0, hold=math.inf)
    quitter = ask(MIN, gives_up=T0 + 30 * MIN)
    stayer = ask(2 * MIN)
    _, gave_up, waits = Replay(s, clock).run([forever, quitter, stayer], until=T0 + 3 * HOUR)
    assert gave_up.refused is not None and "alice uses 1 of" in gave_up.refused
    assert gave_up.waited == 29 * MIN and not gave_up.granted
    assert waits.waiting_since == T0 + 2 * MIN and waits.refused is None
    assert waits.wait(T0 + 3 * HOUR) == 3 * HOUR - 2 * MIN  # counted to the end


def test_a_preempted_spot_demand_resumes_for_the_rest_of_its_hold(replayed):
    s, clock = replayed("n1: 1xH100-80GB", spot=SPOT)
    replay = Replay(s, clock, requeue_preempted=True)
    spot, guaranteed = replay.run(
        [ask(0, hold=2 * HOUR, tier="spot"), ask(30 * MIN, "bob", hold=30 * MIN)]
    )
    notice_deadline = T0 + 30 * MIN + SPOT.grace_s
    assert guaranteed.granted_at == notice_deadline
    assert (spot.preemptions, replay.preemptions) == (1, 1)
    assert len(spot.leases) == 2  # the first attempt and the resumed one
    resumed = notice_deadline + 30 * MIN
    assert spot.done_at == resumed + 2 * HOUR - (notice_deadline - T0)
    assert spot.waited == 30 * MIN  # queued behind the guaranteed lease
    assert spot.gpu_hours == pytest.approx(2.0)  # all of its hold, in two parts
    assert spot.credits == pytest.approx(2.0 * 1.0 * 0.5)  # the default rate, discounted
    assert [r["end_reason"] for r in lease_rows(s.engine).values()][0] == "preempted"


def test_the_replay_must_own_the_schedulers_clock(replayed):
    s, _ = replayed("n1: 1xH100-80GB")
    with pytest.raises(ValueError, match="replay's clock"):
        Replay(s, ReplayClock(T0))


# -- the what-if --------------------------------------------------------------------------


@pytest.fixture
def history(replayed):
    """A real scheduler on two H100s whose ledger holds half a day: every hour alice
    (cs101) and, a minute later, bob (no group) each ask for a GPU and hold it two hours,
    so that they queue. The clock stands at the end of the day."""
    s, clock = replayed("n1: 2xH100-80GB", rates={"H100": 1.0})
    demands = []
    for h in range(12):
        demands += [
            ask(h * HOUR, hold=2 * HOUR, group="cs101", user_groups=("cs101",)),
            ask(h * HOUR + MIN, "bob", hold=2 * HOUR),
        ]
    Replay(s, clock).run(demands)
    assert s.live_leases() == []
    clock.now = T0 + 24 * HOUR
    return s


def _row(report: dict, key: str, name: str) -> dict:
    return next(r for r in report[key + "s"] if r[key] == name)


def test_a_stricter_group_quota_makes_its_member_wait_longer(history):
    report = WhatIf.prepare(
        history, weeks=1, quotas=[("group", "cs101", QuotaSpec(max_units=1))]
    ).run()
    alice = _row(report, "user", "alice")
    assert alice["proposed"]["mean_wait_s"] > alice["current"]["mean_wait_s"] + HOUR
    assert alice["proposed"]["p95_wait_s"] >= alice["proposed"]["mean_wait_s"]
    assert alice["proposed"]["requests"] == alice["current"]["requests"] == 12
    assert [m["user"] for m in report["waited_longer"]] == ["alice"]
    assert "alice" not in [m["user"] for m in report["waited_shorter"]]
    group = _row(report, "group", "cs101")
    assert group["proposed"] == alice["proposed"]  # she is all of cs101
    assert report["changes"] == [
        {"kind": "group", "name": "cs101", "field": "max_units", "current": None,
         "proposed": 1.0},
    ]  # fmt: skip
    assert report["leases"] == report["counted"] == 24
    assert report["current"]["requests"] == report["proposed"]["requests"] == 24


def test_a_higher_priority_moves_a_group_ahead_of_the_others(history):
    report = WhatIf.prepare(
        history, weeks=1, quotas=[("group", "cs101", QuotaSpec(priority=10))]
    ).run()
    alice, bob = _row(report, "user", "alice"), _row(report, "user", "bob")
    assert alice["proposed"]["mean_wait_s"] < alice["current"]["mean_wait_s"]
    assert bob["proposed"]["mean_wait_s"] > bob["current"]["mean_wait_s"]
    assert [m["user"] for m in report["waited_shorter"]] == ["alice"]
    assert [m["user"] for m in report["waited_longer"]] == ["bob"]


def test_a_rate_change_changes_the_credits_and_nothing_else(history):
    report = WhatIf.prepare(history, weeks=1, rates=[("H100", 2.5)]).run()
    for row in report["users"]:
        now, then = row["current"], row["proposed"]
        assert now["credits"] > 0
        assert then["credits"] == pytest.approx(now["credits"] * 2.5)
        assert {k: v for k, v in then.items() if k != "credits"} == {
            k: v for k, v in now.items() if k != "credits"
        }
    assert report["changes"] == [
        {"kind": "rate", "name": "H100-80GB", "field": "credits_per_gpu_hour", "current": 1.0,
         "proposed": 2.5},
    ]  # fmt: skip
    assert report["waited_longer"] == report["waited_shorter"] == []


def test_nothing_of_the_real_scheduler_or_its_database_changes(history):
    s = history
    tables = ("leases", "claims", "quotas", "rates", "devices")

    def snapshot() -> dict:
        with s.engine.connect() as conn:
            db = {
                t: sorted(map(tuple, conn.execute(select(whatif.LEASES.metadata.tables[t]))))
                for t in tables
            }
        return {"db": db, "live": {x.id: x.status for x in s.live_leases()},
                "quotas": dict(s.quotas), "next_id": s.next_id, "now": s.clock()}  # fmt: skip

    before = snapshot()
    WhatIf.prepare(
        s, weeks=2, quotas=[("group", "cs101", QuotaSpec(max_units=1))], rates=[("H100", 3.0)]
    ).run()
    assert snapshot() == before
    assert s.rates.rate("H100-80GB") == 1.0
    assert_consistent(s)


def test_bad_proposals_are_refused_naming_the_field(history):
    for weeks in (0, 9, True, 1.5):
        with pytest.raises(SchedulerError, match="weeks must be a whole number") as e:
            WhatIf.prepare(history, weeks=weeks)
        assert e.value.field == "weeks"
    with pytest.raises(SchedulerError, match="names no GPU model of the pool") as e:
        WhatIf.prepare(history, weeks=1, rates=[("H100", 2.0), ("B200", 3.0)])
    assert e.value.field == "rates.1.model" and "H100-80GB" in e.value.message


def test_a_window_over_the_lease_bound_is_refused_saying_so(history, monkeypatch):
    monkeypatch.setattr(whatif, "MAX_LEASES", 5)
    with pytest.raises(SchedulerError, match="hold 24 leases and a what-if replays at most 5"):
        WhatIf.prepare(history, weeks=1, rates=[("H100", 2.0)]).run()


def test_what_began_before_the_window_takes_its_devices_but_is_not_counted(history):
    ledger = history.leases(status=["released"])
    first = min(ledger, key=lambda x: x.id)
    cut = first.granted_at + HOUR  # a window that starts while it runs
    demand = whatif.demand_of(first, cut)
    assert not demand.counted and demand.at == cut
    assert demand.hold == pytest.approx(first.ended_at - cut)
    report = WhatIf.prepare(history, weeks=1, rates=[("H100", 2.0)]).run()
    assert report["counted"] == len(ledger)  # the week holds all of them


def test_a_request_that_never_ran_asks_for_its_hours_or_as_long_as_it_waited(replayed):
    s, clock = replayed("n1: 1xH100-80GB")
    Replay(s, clock).run(
        [ask(0), ask(MIN, "bob", gives_up=T0 + 10 * MIN), ask(2 * MIN, "carol", hours=3.0,
                                                              gives_up=T0 + 20 * MIN)]
    )  # fmt: skip
    bob, carol = sorted((x for x in s.leases(status=["cancelled"])), key=lambda x: x.id)
    assert whatif.demand_of(bob, T0).hold == 9 * MIN and whatif.demand_of(bob, T0).gives_up
    assert whatif.demand_of(carol, T0).hold == 3 * HOUR


def test_a_replay_thread_keeps_its_scheduler_log_lines_to_itself(caplog):
    import logging
    import threading

    from gpuhub.scheduler.replay import quiet_here

    log = logging.getLogger("gpuhub.scheduler")
    caplog.set_level(logging.INFO, logger="gpuhub.scheduler")
    started, done = threading.Event(), threading.Event()

    def replaying() -> None:
        with quiet_here("gpuhub.scheduler"):
            log.info("replayed grant")
            started.set()
            done.wait(5)

    t = threading.Thread(target=replaying)
    t.start()
    started.wait(5)
    log.info("real grant")  # the real scheduler's thread, meanwhile
    done.set()
    t.join()
    assert [r.getMessage() for r in caplog.records] == ["real grant"]
    assert log.filters == []


def test_the_api_document_describes_the_simulation_body_as_the_service_reads_it():
    import yaml
    from gpuhub.service.simulate import ProposedRate, QuotaChange, SimulateBody

    from tests.support.paths import OPENAPI

    schemas = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    for name, model in (
        ("SimulationRequest", SimulateBody),
        ("QuotaChange", QuotaChange),
        ("ProposedRate", ProposedRate),
    ):
        fields = {f.alias or n for n, f in model.model_fields.items()}
        assert set(schemas[name]["properties"]) == fields, name
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["QuotaChange"]["properties"]["set"] == {"$ref": "#/components/schemas/QuotaSpec"}
    weeks = schemas["SimulationRequest"]["properties"]["weeks"]
    assert (weeks["minimum"], weeks["maximum"]) == (1, whatif.MAX_WEEKS)
