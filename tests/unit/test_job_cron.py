"""Cron schedules of job definitions: the parser, ``next_after`` against a brute-force scan
(hypothesis), and definitions that submit their runs on time with an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt

import nbformat
import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.jobs.cron import CronError, CronSchedule
from gpuhub.jobs.local import LocalProcessExecutor
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.models import DefinitionRequest
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.shapes import WholeGpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clock import FakeClock

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# -- the parser ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "values"),
    [
        ("* * * * *", "minutes", set(range(60))),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5,10-12 * * * *", "minutes", {5, 10, 11, 12}),
        ("0 9-17/4 * * *", "hours", {9, 13, 17}),
        ("0 0 * jan,jul-sep *", "months", {1, 7, 8, 9}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 0,7", "weekdays", {0}),
        ("0 0 * * 5-7", "weekdays", {5, 6, 0}),
        ("0 0 1/10 * *", "days", {1, 11, 21, 31}),
        ("0 0 * * SUN", "weekdays", {0}),
    ],
)
def test_fields_parse(text, field, values):
    assert getattr(CronSchedule.parse(text), field) == values


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("60 * * * *", "minute field"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month field"),
        ("* * * * 8", "day of week"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("* * * foo *", "month field"),
        ("a * * * *", "minute field"),
        ("0 0 30 feb *", "no day"),
        ("1,,2 * * * *", "minute field"),
    ],
)
def test_bad_schedules_are_refused_with_a_sentence(text, says):
    with pytest.raises(CronError, match=says):
        CronSchedule.parse(text)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("0 2 * * *", at(2026, 11, 23, 9, 0), at(2026, 11, 24, 2, 0)),
        ("0 2 * * *", at(2026, 11, 23, 1, 59, 59), at(2026, 11, 23, 2, 0)),
        ("0 2 * * *", at(2026, 11, 23, 2, 0), at(2026, 11, 24, 2, 0)),  # strictly after
        ("*/15 * * * *", at(2026, 11, 23, 9, 7, 30), at(2026, 11, 23, 9, 15)),
        ("30 2 * * mon-fri", at(2026, 11, 28, 12, 0), at(2026, 11, 30, 2, 30)),  # Sat -> Mon
        ("0 0 1 * *", at(2026, 12, 15), at(2027, 1, 1)),
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29)),
        # dom and dow both restricted: either matches (the 13th, or any Friday)
        ("0 0 13 * fri", at(2026, 11, 23), at(2026, 11, 27)),
        ("0 0 13 * fri", at(2026, 12, 5), at(2026, 12, 11)),
        # dow only (dom is *): Fridays
        ("0 0 * * fri", at(2026, 11, 23), at(2026, 11, 27)),
        # dom restricted, dow "*": only the 13th
        ("0 0 13 * *", at(2026, 11, 23), at(2026, 12, 13)),
        ("59 23 31 12 *", at(2026, 12, 31, 23, 59), at(2027, 12, 31, 23, 59)),
    ],
)
def test_next_after(text, after, expected):
    assert CronSchedule.parse(text).next_after(after) == expected


# -- property: next_after equals a brute-force scan ------------------------------------


def _item(low: int, high: int):
    single = st.integers(low, high).map(str)
    rng = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda ab: f"{min(ab)}-{max(ab)}"
    )
    stepped = st.tuples(st.sampled_from(["*", f"{low}-{high}"]), st.integers(1, 9)).map(
        lambda t: f"{t[0]}/{t[1]}"
    )
    return st.one_of(single, rng, stepped, st.just("*"))


def _field(low: int, high: int):
    return st.lists(_item(low, high), min_size=1, max_size=3).map(",".join)


schedules = st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 7)).map(
    " ".join
)


def brute_force(s: CronSchedule, text: str, after: dt.datetime, days: int) -> dt.datetime | None:
    """Scan day by day (then minute by minute) with the cron rules written out again."""
    dom_field, dow_field = text.split()[2], text.split()[4]
    either = not dom_field.startswith("*") and not dow_field.startswith("*")
    start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day = start.date()
    for _ in range(days):
        dom_ok = day.day in s.days
        dow_ok = (day.weekday() + 1) % 7 in s.weekdays
        if day.month in s.months and ((dom_ok or dow_ok) if either else (dom_ok and dow_ok)):
            t = dt.datetime.combine(day, dt.time(), UTC)
            for m in range(24 * 60):
                cand = t + dt.timedelta(minutes=m)
                if cand >= start and cand.hour in s.hours and cand.minute in s.minutes:
                    return cand
        day += dt.timedelta(days=1)
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=schedules,
    after=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1)),
)
def test_next_after_matches_a_brute_force_scan(text, after):
    try:
        s = CronSchedule.parse(text)
    except CronError:
        return  # e.g. a day that no month of the schedule has
    after = after.replace(tzinfo=UTC)
    expected = brute_force(s, text, after, days=9 * 366)
    got = s.next_after(after)
    if expected is None:
        assert got is None or got > after + dt.timedelta(days=9 * 366 - 1)
    else:
        assert got == expected, (text, after)
        assert s.matches(got)


# -- definitions submit on time (injected clock, no sleeping) ---------------------------

PROFILES = [{"name": "gpu-1", "default": True, "shape": {"kind": "gpu", "count": 1}}]


def _manager(url: str, clock: FakeClock, tmp_path) -> JobManager:
    engine = open_engine(url)
    scheduler = Scheduler(engine, parse_spec("n: 1xH100-80GB"), clock=clock)
    executor = LocalProcessExecutor(home_dir_template=str(tmp_path / "homes" / "{username}"))
    return JobManager(scheduler=scheduler, executor=executor, profiles=PROFILES, clock=clock)


def _definition(schedule: str, **kw) -> DefinitionRequest:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print(1)"))
    return DefinitionRequest.model_validate(
        {"path": "nightly.ipynb", "notebook": dict(nb), "schedule": schedule, **kw}
    )


def test_definitions_submit_each_due_time_once_also_across_restarts(db_url, tmp_path):
    clock = FakeClock(at(2026, 11, 23, 9, 0).timestamp())
    m = _manager(db_url, clock, tmp_path)
    # the one GPU is held by someone else: runs are submitted and wait in the queue
    m.scheduler.request(user="bob", user_groups=[], shape=WholeGpus(count=1))
    d = m.create_definition(_definition("0 2 * * *"), user="alice", groups=[])
    paused = m.create_definition(_definition("*/5 * * * *", paused=True), user="alice", groups=[])
    view = m.definition_view(d)
    assert view["next_run_at"] == "2026-11-24T02:00:00+00:00"
    assert m.definition_view(paused)["next_run_at"] is None

    async def run():
        assert await m.run_definitions() == []  # not due yet
        clock.now = at(2026, 11, 24, 1, 59, 59).timestamp()
        assert await m.run_definitions() == []
        clock.now = at(2026, 11, 24, 2, 0).timestamp()
        first = await m.run_definitions()
        assert len(first) == 1
        assert await m.run_definitions() == []  # once per due time
        clock.advance(30)
        assert await m.run_definitions() == []
        return first[0]

    job_id = asyncio.run(run())
    job = m.job(job_id)
    assert job["definition_id"] == d["id"] and job["status"] == "queued"
    after = m.definition(d["id"])
    assert after["last_job_id"] == job_id
    assert m.definition_view(after)["next_run_at"] == "2026-11-25T02:00:00+00:00"
    assert m.definition_view(after)["last_run_at"] == "2026-11-24T02:00:00+00:00"

    # a restart (a new manager and scheduler over the same database) does not run it again
    m.scheduler.engine.dispose()
    m2 = _manager(db_url, clock, tmp_path)
    assert asyncio.run(m2.run_definitions()) == []
    # the service was down for two due times: one run on start, then the next after now
    clock.now = at(2026, 11, 26, 8, 0).timestamp()
    runs = asyncio.run(m2.run_definitions())
    assert len(runs) == 1 and asyncio.run(m2.run_definitions()) == []
    assert m2.definition_view(m2.definition(d["id"]))["next_run_at"] == (
        "2026-11-27T02:00:00+00:00"
    )
    # the paused one never ran; resumed, it is due at the next 5 minutes after now
    assert m2.db.jobs(user="alice", limit=100)[0]["definition_id"] == d["id"]
    resumed = m2.set_paused(paused["id"], False)
    assert m2.definition_view(resumed)["next_run_at"] == "2026-11-26T08:05:00+00:00"
    assert {j["definition_id"] for j in m2.db.jobs(limit=100)} == {d["id"]}
    m2.scheduler.engine.dispose()


def test_a_refused_run_is_skipped_with_its_reason(db_url, tmp_path):
    clock = FakeClock(at(2026, 11, 23, 9, 0).timestamp())
    m = _manager(db_url, clock, tmp_path)
    d = m.create_definition(_definition("0 * * * *"), user="alice", groups=[])
    m.scheduler.set_quota("user", "alice", QuotaSpec(max_units=0), by="admin")
    clock.now = at(2026, 11, 23, 10, 0).timestamp()
    assert asyncio.run(m.run_definitions()) == []  # the quota refuses the run
    after = m.definition_view(m.definition(d["id"]))
    assert "alice" in after["last_error"]
    assert after["next_run_at"] == "2026-11-23T11:00:00+00:00"
    assert m.db.jobs(limit=10) == [] and m.scheduler.live_leases() == []
    m.scheduler.engine.dispose()
