"""Reservations for lab hours (issue 10 §4): devices set aside for a group's windows.

Scheduler-level, on SQLite and PostgreSQL, with the fake clock (Monday 2026-11-23
09:00 UTC): windows open and close by moving the clock and calling ``tick()``; nothing
sleeps. Every test checks the database as well as what the scheduler says.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from gpuhub.scheduler.core import (
    NotFound,
    ReservationConflict,
    Scheduler,
    SchedulerError,
    Unsatisfiable,
)
from gpuhub.scheduler.db import ReservationRow
from gpuhub.scheduler.windows import WEEK, Windows, overlap, zone
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.properties import examples
from tests.support.scheduler import (
    HOUR,
    assert_consistent,
    claim_rows,
    gpu,
    lease_rows,
    mig,
    shared,
    uuids,
)

RESERVATIONS = ReservationRow.__table__
UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
CS = ["cs101"]


def t(day: int, hour: float, month: int = 11, year: int = 2026, tz=UTC) -> float:
    """POSIX seconds of a wall-clock time (November 2026 by default, UTC)."""
    h, m = int(hour), round((hour % 1) * 60)
    return dt.datetime(year, month, day, h, m, tzinfo=tz).timestamp()


def ask(s, user, shape=None, groups=(), **kw):
    return s.request(user=user, user_groups=groups, shape=shape or gpu(), **kw)


def reserve(s, count=2, start=None, end=None, **kw):
    kw = {"group": "cs101", "shape": gpu(), "by": "admin", **kw}
    return s.reserve(count=count, start=start or t(23, 10), end=end or t(23, 12), **kw)


def rows(engine) -> dict[int, dict]:
    with engine.connect() as c:
        return {r.id: r._asdict() for r in c.execute(select(RESERVATIONS))}


# -- the window opens, members first; it closes, the pool takes them back ---------------


def test_members_get_reserved_devices_first_and_others_wait_until_the_window_closes(
    make, engine, clock
):
    s = make("a: 4xH100-80GB")
    r = reserve(s)  # Monday 10:00-12:00 UTC, once
    assert [d["uuid"] for d in r.devices] == ["GPU-sim-a-0", "GPU-sim-a-1"]
    assert s.next_boundary() == t(23, 10)  # its guard (from 08:00) bites already
    clock.now = t(23, 10)
    assert s.next_boundary() == t(23, 12)
    ana = ask(s, "ana", groups=CS)
    assert uuids(ana) == ["GPU-sim-a-0"]  # reserved first, though a-2 and a-3 are free
    bo, cy = ask(s, "bo"), ask(s, "cy")
    assert uuids(bo) + uuids(cy) == ["GPU-sim-a-2", "GPU-sim-a-3"]
    dan = ask(s, "dan")
    assert dan.status == "queued"  # a-1 is free but reserved for cs101 now
    why = s.view.waiting(dan)
    assert why["reason"] == "reserved"
    assert why["message"] == "the free GPUs are reserved for cs101 until 12:00 UTC"
    assert why["estimate"] == {  # the window closes (no lease states hours)
        "at": "2026-11-23T12:00:00+00:00",
        "basis": "none",
        "message": "expected by 12:00 UTC (as reserved windows open and close)",
    }
    eve = ask(s, "eve", groups=["cs101", "x"])
    assert uuids(eve) == ["GPU-sim-a-1"]  # a member passes the waiting non-member
    assert s.view.preview(user="fay", user_groups=CS, shape=gpu())["outcome"] == "queue"
    clock.advance(HOUR)  # 11:00: ana leaves; her device stays reserved
    s.release(ana.id)
    s.tick()
    assert s.get(dan.id).status == "queued"
    assert s.view.preview(user="fay", user_groups=CS, shape=gpu())["outcome"] == "grant"
    gil = s.view.preview(user="gil", user_groups=[], shape=gpu())
    assert (gil["outcome"], gil["ahead"]) == ("queue", 1)
    assert gil["message"] == (
        "the free GPUs are reserved for cs101 until 12:00 UTC; 1 request ahead of you"
    )
    clock.now = t(23, 12)  # the window closes: the service's timer calls tick()
    s.tick()
    dan = s.get(dan.id)
    assert dan.status == "active" and uuids(dan) == ["GPU-sim-a-0"]
    assert lease_rows(engine)[dan.id]["status"] == "active"
    assert claim_rows(engine)[("GPU-sim-a-0", 0)] == dan.id
    assert s.next_boundary() is None and s.view.reservation(r.id).state(clock.now) == "ended"
    assert_consistent(s)


def test_members_go_to_reserved_devices_where_best_fit_would_send_them_elsewhere(
    make, engine, clock
):
    s = make("a: 2xH100-80GB; b: 2xH100-80GB")
    r = reserve(s, count=2)  # a-0, a-1 for 10:00-12:00
    assert [d["uuid"] for d in r.devices] == ["GPU-sim-a-0", "GPU-sim-a-1"]
    early = ask(s, "u1")  # 09:00, no hours: would run into the window, so node b
    assert uuids(early) == ["GPU-sim-b-0"]
    clock.now = t(23, 10)
    member = ask(s, "m1", groups=CS)  # best fit alone would take b-1 (fills node b)
    assert uuids(member) == ["GPU-sim-a-0"]
    pair = ask(s, "m2", gpu(2), groups=CS)  # not both reserved ones free: anywhere it fits
    assert pair.status == "queued"
    assert uuids(ask(s, "u2")) == ["GPU-sim-b-1"]
    assert_consistent(s)


def test_under_the_strict_policy_members_still_get_their_reserved_devices(make, clock):
    s = make("a: 3xH100-80GB", queue_policy="strict")
    reserve(s, count=1)  # a-0
    clock.now = t(23, 10)
    x = ask(s, "x")  # a-1
    pair = ask(s, "p", gpu(2))  # waits for 2 unreserved GPUs: the strict head
    y = ask(s, "y")  # behind it (strict), and kept off a-0
    member = ask(s, "m", groups=CS)
    assert (pair.status, y.status) == ("queued", "queued")
    assert (member.status, uuids(member)) == ("active", ["GPU-sim-a-0"])  # past them
    assert s.get(pair.id).status == "queued"  # a-2 stays free for nobody behind the pair
    assert s.view.waiting(y)["estimate"]["at"] is None  # the pair needs a-2 and a GPU never freed
    s.release(member.id)
    member2 = ask(s, "m2", groups=CS)
    assert uuids(member2) == ["GPU-sim-a-0"]
    s.release(x.id)  # the pair gets a-1 and a-2
    assert s.get(pair.id).status == "active" and s.get(y.id).status == "queued"
    assert_consistent(s)


def test_a_short_request_may_use_reserved_devices_before_the_window_a_long_one_may_not(
    make, engine, clock
):
    s = make("a: 2xH100-80GB")
    reserve(s, count=1, start=t(23, 12), end=t(23, 14))  # a-0, guard from 10:00
    early = ask(s, "u1")  # 09:00 + 2 h guard ends before 12:00: anywhere
    assert uuids(early) == ["GPU-sim-a-0"]
    s.release(early.id)
    clock.now = t(23, 10.5)
    assert s.next_boundary() == t(23, 12)
    long = ask(s, "u2")  # states no hours: would run into the window
    assert uuids(long) == ["GPU-sim-a-1"]
    waits = ask(s, "u3")
    assert waits.status == "queued"
    why = s.view.waiting(waits)
    assert why["reason"] == "reserved"
    assert why["message"] == (
        "the free GPUs are reserved for cs101 from 12:00 UTC until 14:00 UTC"
        " (a request stating no hours would still run then)"
    )
    too_long = ask(s, "u4", hours=2)  # 10:30 + 2 h = 12:30
    assert too_long.status == "queued"
    short = ask(s, "u5", hours=1)  # ends 11:30, before the window
    assert (short.status, uuids(short)) == ("active", ["GPU-sim-a-0"])
    member = ask(s, "u6", groups=CS)  # members may start early and run into it
    assert member.status == "queued"  # (nothing free now)
    s.release(short.id)
    assert s.get(member.id).status == "active"  # a member: the queue's non-members wait on
    assert s.get(waits.id).status == "queued" and s.get(too_long.id).status == "queued"
    assert_consistent(s)


def test_running_leases_are_never_pre_empted_and_released_once(make, engine, clock):
    s = make("a: 2xH100-80GB")
    reserve(s, count=2, start=t(23, 12), end=t(23, 14))
    running = ask(s, "u1", hours=2.5)  # from 09:00, ends 11:30: before the window
    clock.now = t(23, 12)
    s.tick()
    assert s.get(running.id).status == "active"  # over its hours, in the window: kept
    member = ask(s, "m1", groups=CS)
    assert uuids(member) == ["GPU-sim-a-1"]
    first = s.release(running.id)
    again = s.release(running.id)
    assert first.status == again.status == "released" and again.ended_at == t(23, 12)
    row = lease_rows(engine)[running.id]
    assert row["status"] == "released" and row["ended_at"] == t(23, 12)
    assert s.get(running.id).gpu_hours(clock.now) == 3.0
    assert ("GPU-sim-a-0", 0) not in claim_rows(engine)
    assert_consistent(s)


# -- weekly windows, time zones, once windows ------------------------------------------


def test_weekly_windows_keep_their_wall_clock_time_across_daylight_saving(make, clock):
    # Tuesdays 14:00-16:00 Berlin from 23 March 2027 (CET); clocks go forward on 28 March
    start, end = t(23, 14, 3, 2027, BERLIN), t(23, 16, 3, 2027, BERLIN)
    s = make("a: 2xH100-80GB")
    clock.now = t(1, 9, 3, 2027)
    r = s.reserve(group="cs101", shape=gpu(), count=1, start=start, end=end,
                  repeat="weekly", timezone="Europe/Berlin", by="admin")  # fmt: skip
    w = r.windows
    assert w.at(t(23, 13.5, 3, 2027)) == (t(23, 13, 3, 2027), t(23, 15, 3, 2027))  # CET
    assert w.at(t(30, 12.5, 3, 2027)) == (t(30, 12, 3, 2027), t(30, 14, 3, 2027))  # CEST
    assert w.at(t(30, 14, 3, 2027)) is None and w.at(t(30, 11.9, 3, 2027)) is None
    assert w.after(t(24, 0, 3, 2027)) == (t(30, 12, 3, 2027), t(30, 14, 3, 2027))
    clock.now = t(30, 12.5, 3, 2027)  # 14:30 CEST, the second window
    d = r.to_dict(clock.now)
    assert d["state"] == "open" and d["repeat"] == "weekly"
    assert d["current"] == {
        "start": "2027-03-30T14:00:00+02:00",
        "end": "2027-03-30T16:00:00+02:00",
    }
    assert d["next"] == {"start": "2027-04-06T14:00:00+02:00", "end": "2027-04-06T16:00:00+02:00"}
    assert d["start"] == "2027-03-23T14:00:00+01:00"
    assert d["message"] == (
        "1 GPU reserved for cs101 on Tuesdays 14:00–16:00 Europe/Berlin; open now until 16:00 CEST"
    )
    assert uuids(ask(s, "x")) == ["GPU-sim-a-1"]
    why = s.view.waiting(ask(s, "y"))
    assert why["reason"] == "reserved"
    assert why["message"] == "the free GPUs are reserved for cs101 until 16:00 CEST"
    assert uuids(ask(s, "m", groups=CS)) == ["GPU-sim-a-0"]
    assert s.next_boundary() == t(30, 14, 3, 2027)  # 16:00 CEST
    clock.now = t(30, 14, 3, 2027)
    assert s.view.reservation(r.id).to_dict(clock.now)["state"] == "upcoming"
    # the guard before next week's window, 2 hours before 14:00 CEST
    assert s.next_boundary() == t(6, 10, 4, 2027)


def test_a_once_window_and_its_json(make, clock):
    s = make("a: 1xA100-80GB[mig=7x1g.10gb]; b: 1xL4-24GB[shared=4]")
    r = s.reserve(group="cs101", shape=mig("1g.10gb"), count=3, start=t(24, 14),
                  end=t(24, 16), note="lab 1", by="admin")  # fmt: skip
    d = r.to_dict(clock.now)
    assert d["id"] == r.id and d["group"] == "cs101" and d["count"] == 3
    assert d["shape"] == {"kind": "mig", "profile": "1g.10gb"}
    assert [x["name"] for x in d["devices"]] == [
        "GPU 0 slice 1g.10gb #0", "GPU 0 slice 1g.10gb #1", "GPU 0 slice 1g.10gb #2",
    ]  # fmt: skip
    assert d["devices"][0]["uuid"] == "MIG-sim-a-0-0" and d["devices"][0]["node"] == "a"
    assert (d["start"], d["end"]) == ("2026-11-24T14:00:00+00:00", "2026-11-24T16:00:00+00:00")
    assert d["state"] == "upcoming" and d["current"] is None
    assert d["next"] == {"start": d["start"], "end": d["end"]}
    assert d["note"] == "lab 1" and d["created_by"] == "admin"
    assert d["created_at"] == "2026-11-23T09:00:00+00:00"
    assert d["message"] == (
        "3 MIG 1g.10gb slices reserved for cs101 on Tue 24 Nov 2026 14:00–16:00 UTC; "
        "next open Tue 24 Nov 14:00 UTC"
    )
    clock.now = t(24, 17)
    assert r.to_dict(clock.now)["state"] == "ended" and r.to_dict(clock.now)["next"] is None
    seats = s.reserve(group="g", shape=shared(), count=1, start=t(25, 9), end=t(25, 10), by="a")
    assert seats.devices[0]["name"] == "GPU 0 (shared by 4)"
    assert seats.to_dict(clock.now)["message"].startswith(
        "1 shared GPU (all their seats) reserved for g"
    )
    clock.now = t(25, 9)
    kept = [ask(s, f"u{i}", shared()) for i in range(2)]
    assert {x.status for x in kept} == {"queued"}  # every seat of the GPU is reserved
    assert s.view.waiting(kept[0])["reason"] == "reserved"
    assert ask(s, "m", shared(), groups=["g"]).status == "active"
    # a once window already over is refused
    with pytest.raises(SchedulerError) as e:
        s.reserve(group="g", shape=gpu(), count=1, start=t(24, 1), end=t(24, 2), by="a")
    assert e.value.field == "end"


# -- conflicts -------------------------------------------------------------------------


def test_overlapping_reservations_conflict_and_disjoint_weekly_ones_share_devices(
    make, engine, clock
):
    s = make("a: 4xH100-80GB")
    weekly = dict(repeat="weekly", timezone="UTC")
    tue = s.reserve(group="cs101", shape=gpu(), count=3, start=t(24, 14), end=t(24, 16),
                    by="admin", **weekly)  # fmt: skip
    with pytest.raises(ReservationConflict) as e:  # overlaps the Tuesday windows
        s.reserve(group="cs102", shape=gpu(), count=2, start=t(1, 15, 12), end=t(1, 17, 12),
                  by="admin", **weekly)  # fmt: skip
    assert e.value.code == "conflict" and e.value.field == "start"
    assert "only 1 of 4 GPUs are free of reservations" in e.value.message
    assert f"reservation {tue.id} for cs101 on Tuesdays 14:00–16:00 UTC" in e.value.message
    with pytest.raises(ReservationConflict):  # a once window inside a Tuesday window
        s.reserve(group="c", shape=gpu(), count=2, start=t(8, 15, 12), end=t(8, 18, 12), by="a")
    after = s.reserve(group="cs102", shape=gpu(), count=4, start=t(24, 16), end=t(24, 18),
                      by="admin", **weekly)  # fmt: skip
    assert {d["uuid"] for d in tue.devices} < {d["uuid"] for d in after.devices}
    one = s.reserve(group="c", shape=gpu(), count=1, start=t(24, 15), end=t(24, 16), by="a")
    assert [d["uuid"] for d in one.devices] == ["GPU-sim-a-3"]  # the one left in that window
    assert [x.id for x in s.reservations()] == [tue.id, after.id, one.id]
    assert [x.id for x in s.reservations(group="cs102")] == [after.id]
    assert set(rows(engine)) == {tue.id, after.id, one.id}
    with pytest.raises(Unsatisfiable) as e:
        s.reserve(group="c", shape=gpu(), count=5, start=t(30, 1), end=t(30, 2), by="a")
    assert e.value.field == "count"
    with pytest.raises(Unsatisfiable) as e:
        s.reserve(group="c", shape=mig("1g.10gb"), count=1, start=t(30, 1), end=t(30, 2), by="a")
    assert e.value.field == "shape"
    assert set(rows(engine)) == {tue.id, after.id, one.id}  # refusals wrote nothing


def _brute_overlap(a: Windows, b: Windows) -> bool:
    lo, hi = min(a.start, b.start) - WEEK, max(a.start, b.start) + 3 * WEEK
    return any(s < e2 and s2 < e for s, e in a.between(lo, hi) for s2, e2 in b.between(lo, hi))


@settings(max_examples=examples(200), deadline=None)
@given(
    st.integers(0, 14 * 96), st.integers(1, 96 * 7 - 1), st.sampled_from(["once", "weekly"]),
    st.integers(0, 14 * 96), st.integers(1, 96 * 7 - 1), st.sampled_from(["once", "weekly"]),
)  # fmt: skip
def test_overlap_agrees_with_enumerating_the_windows_in_utc(s1, n1, r1, s2, n2, r2):
    base, q = t(23, 0), 900.0  # quarter hours
    utc = zone("UTC")
    a = Windows(base + s1 * q, base + (s1 + n1) * q, r1, utc)
    b = Windows(base + s2 * q, base + (s2 + n2) * q, r2, utc)
    assert (overlap(a, b) is not None) == (overlap(b, a) is not None) == _brute_overlap(a, b)


def test_weekly_windows_in_two_zones_meet_when_only_one_has_moved_its_clocks():
    # Wednesdays 14:00-15:00 Berlin (13:00 UTC in winter) and 09:00-10:00 New York
    # (14:00 UTC in winter) are apart, until New York moves its clocks forward (14 March
    # 2027: 13:00 UTC) two weeks before Berlin does (28 March: 12:00 UTC)
    ny_tz = ZoneInfo("America/New_York")
    ny = Windows(t(3, 9, 3, 2027, ny_tz), t(3, 10, 3, 2027, ny_tz), "weekly", ny_tz)
    berlin = Windows(t(3, 14, 3, 2027, BERLIN), t(3, 15, 3, 2027, BERLIN), "weekly", BERLIN)
    hit = overlap(berlin, ny)
    assert hit == (t(17, 13, 3, 2027), t(17, 14, 3, 2027))


# -- deleting, restarting --------------------------------------------------------------


def test_deleting_a_reservation_returns_its_devices_at_once(make, engine, clock):
    s = make("a: 2xH100-80GB")
    r = reserve(s, count=1)
    clock.now = t(23, 10.5)
    ask(s, "u1")
    waits = ask(s, "u2")
    assert waits.status == "queued"
    gone = s.unreserve(r.id, by="root")
    assert gone.id == r.id and gone.deleted_by == "root"
    assert s.get(waits.id).status == "active" and uuids(s.get(waits.id)) == ["GPU-sim-a-0"]
    row = rows(engine)[r.id]
    assert (row["deleted_at"], row["deleted_by"]) == (clock.now, "root")
    assert s.reservations() == [] and s.next_boundary() is None
    with pytest.raises(NotFound):
        s.unreserve(r.id, by="root")
    with pytest.raises(NotFound):
        s.view.reservation(r.id)
    s2 = Scheduler(engine, s.inventory, clock=clock)  # deleted ones stay deleted
    assert s2.reservations() == []
    assert (
        s2.reserve(group="g", shape=gpu(), count=1, start=t(24, 1), end=t(24, 2), by="a").id
        == r.id + 1
    )
    assert_consistent(s)


def test_a_restart_mid_window_keeps_the_rules(make, engine, clock):
    s = make("a: 3xH100-80GB")
    r = reserve(s, count=2, repeat="weekly")
    clock.now = t(23, 10)
    ask(s, "x")  # a-2, the one unreserved GPU
    blocker = ask(s, "m0", groups=CS)  # a-0
    ask(s, "m1", groups=CS)  # a-1
    outsider = ask(s, "y")
    member = ask(s, "m2", groups=CS)
    assert (outsider.status, member.status) == ("queued", "queued")
    clock.advance(600)
    s2 = make("a: 3xH100-80GB")  # the service restarts; same database
    assert [x.to_dict(clock.now) for x in s2.reservations()] == [r.to_dict(clock.now)]
    assert s2.get(member.id).user_groups == CS
    s2.release(blocker.id)  # a reserved GPU frees: the member behind the outsider gets it
    assert s2.get(member.id).status == "active" and uuids(s2.get(member.id)) == ["GPU-sim-a-0"]
    s2.release(member.id)
    assert s2.get(outsider.id).status == "queued"
    assert s2.view.waiting(s2.get(outsider.id))["reason"] == "reserved"
    clock.now = t(23, 12)
    s3 = make("a: 3xH100-80GB")  # restarting after the window closed serves the queue
    assert s3.get(outsider.id).status == "active" and uuids(s3.get(outsider.id)) == ["GPU-sim-a-0"]
    assert lease_rows(engine)[outsider.id]["status"] == "active"
    assert_consistent(s3)


def test_tick_says_which_windows_opened_and_closed(make, clock, caplog):
    """The book's tick: windows that opened or closed since the last tick, logged by the
    scheduler; a restart mid-window does not report the open window as newly opened."""
    s = make("a: 3xH100-80GB")
    r = reserve(s, count=1, repeat="weekly")  # Mondays 10:00-12:00 UTC
    assert s.book.tick(clock.now) == []
    clock.now = t(23, 10)
    with caplog.at_level("INFO", logger="gpuhub.scheduler"):
        s.tick()
    assert f"reservation {r.id} for cs101: window opened" in caplog.text
    assert s.book.tick(clock.now) == []  # once
    again = make("a: 3xH100-80GB")  # restarted mid-window
    assert again.book.tick(clock.now) == []
    clock.now = t(23, 12)
    assert again.book.tick(clock.now) == [(again.view.reservation(r.id), "closed")]
    clock.now = t(30, 10)  # next Monday
    assert [(x.id, what) for x, what in again.book.tick(clock.now)] == [(r.id, "opened")]
    again.unreserve(r.id, by="admin")
    assert again.book.tick(clock.now) == []  # a deleted one does not "close"


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"group": ""}, "group"),
        ({"group": 3}, "group"),
        ({"shape": {"kind": "gpu"}}, "shape"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"count": 1.5}, "count"),
        ({"start": float("nan")}, "start"),
        ({"start": "10:00"}, "start"),
        ({"end": 0.0}, "end"),
        ({"end": t(23, 10)}, "end"),
        ({"end": t(30, 10.1)}, "end"),
        ({"end": t(30, 10), "repeat": "weekly"}, "end"),
        ({"repeat": "daily"}, "repeat"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"note": "x" * 501}, "note"),
    ],
)
def test_bad_values_are_refused_naming_the_field(make, engine, change, field):
    s = make("a: 2xH100-80GB")
    args = {"group": "cs101", "shape": gpu(), "count": 1, "start": t(23, 10),
            "end": t(23, 12), "by": "admin", **change}  # fmt: skip
    with pytest.raises(SchedulerError) as e:
        s.reserve(**args)
    assert e.value.field == field, e.value.message
    assert rows(engine) == {} and s.reservations() == []


def test_without_reservations_nothing_changes(make, clock):
    s = make("a: 1xH100-80GB")
    assert s.next_boundary() is None
    s.tick()  # nothing waits: no transaction
    lease = ask(s, "u", groups=["a", "b"])
    assert lease.user_groups == ["a", "b"] and "user_groups" not in lease.to_dict(clock.now)


# -- a property: whatever happens, nobody is placed against the rules -----------------


@settings(max_examples=examples(25), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["member", "other", "release", "later"]),
            st.sampled_from([None, 0.5, 1.0, 3.0]),
            st.integers(0, 50),
        ),
        min_size=5,
        max_size=40,
    )
)
def test_no_lease_is_placed_against_the_rules(steps):
    import tempfile

    from gpuhub.inventory.simulated import parse_spec
    from gpuhub.scheduler.db import open_engine

    from tests.support.clock import FakeClock
    from tests.support.scheduler import assert_consistent

    clock = FakeClock()
    with tempfile.TemporaryDirectory() as d:
        eng = open_engine(f"sqlite:///{d}/g.sqlite")
        try:
            s = Scheduler(eng, parse_spec("a: 3xH100-80GB; b: 2xH100-80GB"), clock=clock)
            weekly = s.reserve(group="cs101", shape=gpu(), count=2, start=t(23, 10),
                               end=t(23, 11.5), repeat="weekly", by="a")  # fmt: skip
            once = s.reserve(group="cs102", shape=gpu(), count=2, start=t(23, 12),
                             end=t(23, 14), by="a")  # fmt: skip
            for kind, hours, pick in steps:
                if kind == "later":
                    clock.advance(1800)
                    s.tick()
                elif kind == "release":
                    live = s.live_leases()
                    if live:
                        s.release(live[pick % len(live)].id)
                else:
                    groups = ["cs101", "cs102"][pick % 2 : pick % 2 + 1] if kind == "member" else []
                    ask(s, f"u{pick}", groups=groups, hours=hours)
                now = clock.now
                for lease in s.live_leases("active"):
                    if lease.granted_at != now:
                        continue
                    end = now + (lease.hours * HOUR if lease.hours else s.reservation_guard)
                    for r in (weekly, once):
                        if r.group in lease.user_groups or not r.device_ids & set(uuids(lease)):
                            continue
                        nxt = r.windows.after(now)
                        assert r.windows.at(now) is None, (lease, r)
                        assert nxt is None or nxt[0] >= end, (lease, r)
            assert_consistent(s)
        finally:
            eng.dispose()
