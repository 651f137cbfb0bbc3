"""Why a queued request waits, until when, and what is free instead (issue 10 §5).

Scheduler-level, on SQLite and PostgreSQL, with the fake clock (Monday 2026-11-23
09:00 UTC). The answers are read only: nothing in memory or in the database changes.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from gpuhub.scheduler.lease import iso
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.waiting import BASES, HISTORY_DAYS, REASONS
from jsonschema import Draft202012Validator
from sqlalchemy import select

from tests.support.paths import OPENAPI
from tests.support.scheduler import CLAIMS, HOUR, LEASES, gpu, mig, shared

POOL = "a: 4xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]; b: 1xL4-24GB[shared=2]"


def ask(s, user, shape=None, groups=(), **kw):
    return s.request(user=user, user_groups=groups, shape=shape or gpu(1, "H100"), **kw)


def at(clock, hours: float) -> str:
    return iso(clock.now + hours * HOUR)


def database(engine) -> tuple:
    with engine.connect() as c:
        return (
            sorted(tuple(r) for r in c.execute(select(LEASES))),
            sorted(tuple(r) for r in c.execute(select(CLAIMS))),
        )


# -- reasons -------------------------------------------------------------------------


def test_pool_busy_names_the_shape_and_the_requests_ahead(make, clock):
    s = make(POOL)
    for i in range(4):
        ask(s, f"u{i}", hours=i + 1)
    first, second = ask(s, "ana"), ask(s, "bo")
    other = ask(s, "cy", gpu(2, "H100"))
    assert [x.status for x in (first, second, other)] == ["queued"] * 3
    why = s.waiting_all([first, second, other])
    assert why[first.id]["reason"] == "pool_busy" and why[first.id]["position"] == 1
    assert why[first.id]["message"] == "all 4 H100 GPUs are held"
    assert why[second.id]["message"] == "all 4 H100 GPUs are held; 1 request ahead of you"
    assert why[other.id]["message"] == "all 4 H100 GPUs are held"  # another shape's queue
    assert s.view.waiting(first) == why[first.id]
    assert s.view.waiting(s.get(1)) is None  # active: nothing to explain


def test_several_gpus_wait_for_room_on_one_node(make, clock):
    s = make("a: 2xH100-80GB; b: 2xH100-80GB")
    u1, u2, u3 = ask(s, "u1", gpu(2)), ask(s, "u2"), ask(s, "u3", hours=1)
    s.release(u1.id)
    u4 = ask(s, "u4")
    s.release(u2.id)
    assert (u3.node, u4.node) == ("b", "a")  # one GPU free on each node
    pair = ask(s, "ana", gpu(2, "H100"))
    why = s.view.waiting(pair)
    assert why["message"] == ("2 of 4 H100 GPUs are free, but no node has 2 of them free together")
    assert why["estimate"]["at"] == at(clock, 1)  # u3's node frees after its stated hour
    s.release(u4.id)
    assert s.view.waiting(pair) is None  # granted on node a


def test_a_quota_that_no_longer_allows_it_is_the_reason(make, clock):
    s = make(POOL)
    s.set_quota("user", "ana", QuotaSpec(gpu_hours=1, period="week"), by="admin")
    ask(s, "ana", hours=0.5)
    for i in range(3):
        ask(s, f"u{i}", hours=5)
    queued = ask(s, "ana")
    assert queued.status == "queued"
    assert s.view.waiting(queued)["reason"] == "pool_busy"
    clock.advance(HOUR)  # ana's running lease used her whole budget meanwhile
    why = s.view.waiting(queued)
    assert why["reason"] == "quota_limit"
    assert "ana has 0 of 1 GPU-hours left this week" in why["message"]
    assert why["message"].endswith("the request is refused when its turn comes)")
    assert why["estimate"]["at"] is None and why["estimate"]["basis"] == "none"
    assert why["alternatives"] == []  # no budget left for any shape


def test_a_group_quota_lowered_under_a_queued_request_is_the_reason(make):
    s = make(POOL)
    s.set_quota("group", "cs101", QuotaSpec(max_units=8), by="admin")
    for i in range(4):
        ask(s, f"s{i}", groups=["cs101"])
    queued = ask(s, "s9", groups=["cs101"])
    assert queued.status == "queued" and queued.group == "cs101"
    assert s.view.waiting(queued)["reason"] == "pool_busy"
    s.set_quota("group", "cs101", QuotaSpec(max_units=4), by="admin")
    why = s.view.waiting(queued)
    assert why["reason"] == "quota_limit"
    assert why["message"].startswith("group cs101 uses 4 of its 4 GPU units")
    assert why["alternatives"] == []  # nothing fits in what the group has left


def test_strict_order_waits_behind_older_requests_though_its_shape_is_free(make, clock):
    s = make(POOL, queue_policy="strict")
    big = ask(s, "u1", gpu(4, "H100"), hours=2)
    pair = ask(s, "ana", gpu(2, "H100"))
    slice_ = ask(s, "bo", mig("1g.5gb"))
    assert big.status == "active" and pair.status == slice_.status == "queued"
    why = s.view.waiting(slice_)
    assert why["reason"] == "queue_order" and why["position"] == 2
    assert why["message"] == (
        "the queue is served strictly in order: 1 request of higher priority or older ahead of you"
    )
    assert why["estimate"]["at"] == at(clock, 2) and why["estimate"]["basis"] == "hours"
    assert why["alternatives"] == []  # a new request would queue behind the pair too
    assert s.view.waiting(pair)["message"] == "all 4 H100 GPUs are held"


def test_reserved_is_a_known_reason_nothing_produces_yet():
    assert "reserved" in REASONS


# -- estimates -----------------------------------------------------------------------


def test_estimate_from_stated_hours_replays_the_queue(make, clock):
    s = make(POOL)
    for hours in (3, 1, 2, 4):
        ask(s, f"u{hours}", hours=hours)
    first, second = ask(s, "ana"), ask(s, "bo", hours=1)
    third = ask(s, "cy")
    why = s.waiting_all([first, second, third])
    assert why[first.id]["estimate"] == {
        "at": at(clock, 1),
        "basis": "hours",
        "message": "expected by 10:00 UTC (from running leases' stated hours)",
    }
    assert why[second.id]["estimate"]["at"] == at(clock, 2)
    # the third gets the GPU of u3 (3 h) or of bo, granted at 11:00 for its stated hour
    assert why[third.id]["estimate"]["at"] == at(clock, 3)
    assert why[third.id]["summary"].startswith(
        "Queued at position 3: all 4 H100 GPUs are held; 2 requests ahead of you; "
        "expected by 12:00 UTC (from running leases' stated hours)."
    )
    clock.advance(1.5 * HOUR)  # u1's lease overran its hour: it is no longer counted on
    s.release(3)  # u2's lease ends early; the first in line gets its GPU
    assert s.get(first.id).status == "active"
    assert s.view.waiting(second)["estimate"]["at"] == iso(s.get(1).granted_at + 3 * HOUR)


def test_an_estimate_due_now_says_any_moment(make, clock):
    """Not "expected by 09:59 UTC" at 09:59: within a minute (or past) it is any moment,
    and ``at`` is never in the past."""
    s = make(POOL)
    for hours in (1, 1, 1, 1):
        ask(s, "u", hours=hours)
    waiting = ask(s, "ana")
    clock.advance(HOUR - 30)
    estimate = s.view.waiting(waiting)["estimate"]
    assert estimate["message"] == "expected any moment (from running leases' stated hours)"
    assert estimate["at"] == at(clock, 30 / HOUR)  # the stated hours end in 30 s
    clock.advance(120)  # past their hours, the leases are no longer counted on: no time
    assert s.view.waiting(waiting)["estimate"] == {
        "at": None, "basis": "none", "message": "no estimate",
    }  # fmt: skip


def test_estimate_from_recent_history_of_the_shape(make, clock):
    s = make(POOL)
    for length in (1, 2, 3):  # the ledger: three H100 leases ended yesterday
        lease = ask(s, "old")
        clock.advance(length * HOUR)
        s.release(lease.id)
    old = ask(s, "old", mig("1g.5gb"))
    clock.advance(10 * HOUR)  # a MIG lease's history does not count for H100 GPUs
    s.release(old.id)
    clock.advance((HISTORY_DAYS - 1) * 24 * HOUR)
    for i in range(4):
        ask(s, f"u{i}")
    queued = ask(s, "ana")
    est = s.view.waiting(queued)["estimate"]
    assert est["at"] == at(clock, 2) and est["basis"] == "history"
    assert est["message"] == (
        "expected by 03:00 UTC (from the lengths of leases of the same shapes in the last 14 days)"
    )
    clock.advance(2.5 * HOUR)  # running longer than the median: the longer ones count
    assert s.view.waiting(queued)["estimate"]["at"] == at(clock, 0.5)
    clock.advance(HOUR)  # longer than any: no estimate
    assert s.view.waiting(queued)["estimate"] == {
        "at": None,
        "basis": "none",
        "message": "no estimate",
    }


def test_history_older_than_the_window_is_not_used(make, clock):
    s = make(POOL)
    lease = ask(s, "old")
    clock.advance(HOUR)
    s.release(lease.id)
    clock.advance((HISTORY_DAYS + 1) * 24 * HOUR)
    for i in range(4):
        ask(s, f"u{i}")
    assert s.view.waiting(ask(s, "ana"))["estimate"]["basis"] == "none"


def test_estimate_from_hours_and_history_is_mixed(make, clock):
    s = make("a: 2xH100-80GB")
    lease = ask(s, "old")
    clock.advance(3 * HOUR)
    s.release(lease.id)
    ask(s, "u1", hours=1)
    ask(s, "u2")  # expected to run 3 h like the one before
    pair = ask(s, "ana", gpu(2))
    est = s.view.waiting(pair)["estimate"]
    assert est["at"] == at(clock, 3) and est["basis"] == "mixed"
    assert "stated hours and the lengths of recent leases" in est["message"]


def test_no_estimate_without_hours_or_history(make, clock):
    s = make(POOL)
    for i in range(4):
        ask(s, f"u{i}")
    why = s.view.waiting(ask(s, "ana"))
    assert why["estimate"] == {"at": None, "basis": "none", "message": "no estimate"}
    assert why["summary"].startswith("Queued at position 1: all 4 H100 GPUs are held; no estimate.")


def test_an_estimate_on_another_day_names_the_day(make, clock):
    s = make("a: 1xH100-80GB")
    ask(s, "u1", hours=20)
    est = s.view.waiting(ask(s, "ana"))["estimate"]
    assert est["message"].startswith("expected by Tue 24 Nov 05:00 UTC")
    assert dt.datetime.fromisoformat(est["at"]).hour == 5


# -- alternatives ----------------------------------------------------------------------


ALT_POOL = "a: 1xH100-80GB, 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=2]"


def _free(why) -> dict:
    return {a["shape"]["kind"]: a for a in why["alternatives"]}


def test_alternatives_are_free_shapes_with_counts(make):
    s = make(POOL)
    for i in range(4):
        ask(s, f"u{i}")
    ask(s, "u9", shared())
    why = s.view.waiting(ask(s, "ana"))
    alts = _free(why)
    assert set(alts) == {"mig", "shared"}
    assert alts["mig"]["message"] == "7 MIG 1g.5gb slices (simulated) free now"
    assert alts["mig"]["shape"] == {"kind": "mig", "profile": "1g.5gb"}
    assert alts["mig"]["units"] == pytest.approx(1 / 7) and alts["mig"]["simulated"] is True
    assert alts["shared"]["free"] == 1 and alts["shared"]["units"] == 0.5
    assert alts["shared"]["message"] == "1 shared L4-24GB GPU seat (simulated) free now"
    assert why["summary"].endswith(
        "Free now: 7 MIG 1g.5gb slices (simulated); 1 shared L4-24GB GPU seat (simulated)"
    )


def test_alternatives_respect_the_users_and_the_groups_quotas(make):
    s = make(ALT_POOL)
    for _ in range(7):
        ask(s, "al", mig("1g.5gb"))
    s.set_quota("user", "bo", QuotaSpec(max_units=0.5), by="admin")
    bo = ask(s, "bo", mig("1g.5gb"))
    # a whole H100 would exceed bo's 0.5 units; a shared seat (0.5) fits
    assert set(_free(s.view.waiting(bo))) == {"shared"}
    s.set_quota("user", "bo", QuotaSpec(max_units=0.5, allowed_shapes=["gpu", "mig:*"]), by="a")
    assert s.view.waiting(bo)["alternatives"] == []
    s.set_quota("group", "cs101", QuotaSpec(allowed_shapes=["mig:*", "shared"]), by="admin")
    cy = ask(s, "cy", mig("1g.5gb"), groups=["cs101"])
    assert set(_free(s.view.waiting(cy))) == {"shared"}  # the group allows no whole GPU
    dee = ask(s, "dee", mig("1g.5gb"))  # no quota of her own beyond none: both
    assert set(_free(s.view.waiting(dee))) == {"gpu", "shared"}
    assert _free(s.view.waiting(dee))["gpu"]["message"] == "1 H100-80GB GPU (simulated) free now"


# -- read only -------------------------------------------------------------------------


def test_asking_changes_nothing(make, engine, clock):
    s = make(POOL)
    for i in range(4):
        ask(s, f"u{i}", hours=1)
    queued = [ask(s, "ana"), ask(s, "bo", gpu(2)), ask(s, "cy", mig("1g.5gb"))]
    assert [x.status for x in queued] == ["queued", "queued", "active"]

    def state():
        leases = [x.to_dict(clock.now, s.position(x)) for x in s.live_leases()]
        return database(engine), s.view.pool_view(), leases, s.quota_status("user", "ana", None)

    before = state()
    assert set(s.waiting_all(s.live_leases())) == {queued[0].id, queued[1].id}
    assert before == state()


# -- the OpenAPI description -------------------------------------------------------------


def test_the_openapi_document_describes_the_answers_exactly(make, clock):
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    validator = Draft202012Validator({"$ref": "#/components/schemas/Waiting", **spec})
    s = make(POOL)
    lease = ask(s, "old")
    clock.advance(HOUR)
    s.release(lease.id)
    for i in range(4):
        ask(s, f"u{i}", hours=i + 1 if i else None)
    ask(s, "u8", shared())
    ask(s, "u9", shared())
    queued = [ask(s, "ana"), ask(s, "bo", gpu(4, "H100")), ask(s, "cy", shared())]
    answers = list(s.waiting_all(queued).values())
    assert {a["estimate"]["basis"] for a in answers} == {"history", "mixed", "none"}
    for answer in answers:
        assert not list(validator.iter_errors(answer)), answer
        assert set(answer) == set(schemas["Waiting"]["properties"])
        assert set(answer["estimate"]) == set(schemas["WaitEstimate"]["properties"])
        for alt in answer["alternatives"]:
            assert set(alt) == set(schemas["WaitAlternative"]["properties"])
    assert set(schemas["Waiting"]["properties"]["reason"]["enum"]) == set(REASONS)
    basis = schemas["WaitEstimate"]["properties"]["basis"]["enum"]
    assert set(basis) == {*BASES, "none"}
