"""Cron schedules of job definitions (cronsim underneath): what is accepted and refused with
which sentence, next times against a brute-force minute scan (hypothesis), names, macros,
the day-of-month/day-of-week OR rule, time zones across daylight-saving changes, and
definitions that submit their runs on time with an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from zoneinfo import ZoneInfo

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
from pydantic import ValidationError

from tests.support.clock import FakeClock
from tests.support.properties import examples

UTC = dt.UTC
BERLIN = ZoneInfo(
    "Europe/Berlin"
)  # 2026: clocks go 02:00 -> 03:00 on 29 Mar, 03:00 -> 02:00 on 25 Oct
NEW_YORK = ZoneInfo("America/New_York")  # 2026: 02:00 -> 03:00 on 8 Mar, 02:00 -> 01:00 on 1 Nov


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def fires(text: str, after: dt.datetime, n: int) -> list[dt.datetime]:
    """The next ``n`` times ``text`` fires after ``after``, in UTC."""
    s, out = CronSchedule.parse(text), []
    for _ in range(n):
        after = s.next_after(after)
        out.append(after.astimezone(UTC))
    return out


# -- what is accepted, as it is saved ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "saved"),
    [
        ("0 2 * * *", "0 2 * * *"),
        ("  30   2 * *   MON-FRI ", "30 2 * * mon-fri"),
        ("0 0 * JAN,Jul-SEP *", "0 0 * jan,jul-sep *"),
        ("@DAILY", "@daily"),
        ("@hourly", "@hourly"),
        ("CRON_TZ=Europe/Berlin 0 6 * * mon-fri", "CRON_TZ=Europe/Berlin 0 6 * * mon-fri"),
        ("TZ=America/New_York @weekly", "CRON_TZ=America/New_York @weekly"),
        ("0 0 L * *", "0 0 l * *"),
        ("0 9 * * fri#2", "0 9 * * fri#2"),
    ],
)
def test_accepted_schedules_are_saved_normalised(text, saved):
    s = CronSchedule.parse(text)
    assert s.text == saved
    assert CronSchedule.parse(s.text) == s  # what is saved parses to the same schedule


def test_zone_and_fields():
    s = CronSchedule.parse("CRON_TZ=Europe/Berlin @monthly")
    assert s.fields == "0 0 1 * *" and s.zone == BERLIN
    assert CronSchedule.parse("0 2 * * *").zone is UTC


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("* * * *", "has 5 fields"),
        ("* * * * * *", "this one has 6"),  # no seconds field
        ("", "this one has 0"),
        ("60 * * * *", "minute field: '60' is not a number from 0 to 59"),
        ("* 24 * * *", "hour field: '24' is not a number from 0 to 23"),
        ("* * 0 * *", "day of month field: '0' is not a number from 1 to 31"),
        ("* * * 13 *", "month field: '13' is not a number from 1 to 12 or a name jan-dec"),
        ("* * * * 8", "day of week field: '8' is not a number from 0 to 7"),
        ("*/0 * * * *", "minute field: the step in '*/0' must be a whole number of at least 1"),
        ("*/x * * * *", "the step in '*/x'"),
        ("5-1 * * * *", "minute field: the range '5-1' goes backwards"),
        ("0 0 * * fri-mon", "day of week field: the range 'fri-mon' goes backwards"),
        ("0 0 5-40 * *", "day of month field: '40' in '5-40' is not a number from 1 to 31"),
        ("* * * foo *", "month field: 'foo' is not"),
        ("a * * * *", "minute field: 'a' is not"),
        ("0 0 30 feb *", "names no day that exists in its months"),
        ("0 0 31 apr,jun *", "names no day"),
        ("1,,2 * * * *", "minute field: '1,,2' has an empty item"),
        ("@reboot", "'@reboot' is not a cron macro; use one of @yearly"),
        ("@daily 0", "has 5 fields"),
        ("CRON_TZ=Mars/Olympus 0 0 * * *", "time zone 'Mars/Olympus' is unknown"),
        ("TZ=../../etc/passwd 0 0 * * *", "is unknown; use an IANA name"),
        ("TZ=Europe 0 0 * * *", "time zone 'Europe' is unknown"),
        ("CRON_TZ=Europe/Berlin", "this one has 0"),
        ("0 0 * * *" + " " * 200, "at most 200 characters"),
        ("٣ * * * *", "minute field: '٣' is not"),  # a digit, but not 0-9
    ],
)
def test_bad_schedules_are_refused_with_a_sentence(text, says):
    with pytest.raises(CronError, match=re.escape(says)):
        CronSchedule.parse(text)


def test_the_api_refuses_a_bad_schedule_with_the_sentence():
    nb = nbformat.v4.new_notebook()
    with pytest.raises(ValidationError, match="hour field: '25' is not a number from 0 to 23"):
        DefinitionRequest.model_validate(
            {"path": "n.ipynb", "notebook": dict(nb), "schedule": "0 25 * * *"}
        )
    ok = DefinitionRequest.model_validate(
        {"path": "n.ipynb", "notebook": dict(nb), "schedule": "tz=Europe/Berlin  @DAILY"}
    )
    assert ok.schedule == "CRON_TZ=Europe/Berlin @daily"


# -- next times (UTC) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("0 2 * * *", at(2026, 11, 23, 9, 0), at(2026, 11, 24, 2, 0)),
        ("0 2 * * *", at(2026, 11, 23, 1, 59, 59), at(2026, 11, 23, 2, 0)),
        ("0 2 * * *", at(2026, 11, 23, 2, 0), at(2026, 11, 24, 2, 0)),  # strictly after
        (
            "0 2 * * *",
            at(2026, 11, 23, 2, 0, 0) + dt.timedelta(microseconds=1),
            at(2026, 11, 24, 2),
        ),
        ("*/15 * * * *", at(2026, 11, 23, 9, 7, 30), at(2026, 11, 23, 9, 15)),
        ("0 0 1 * *", at(2026, 12, 15), at(2027, 1, 1)),
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29)),
        ("59 23 31 12 *", at(2026, 12, 31, 23, 59), at(2027, 12, 31, 23, 59)),
        # names
        ("30 2 * * mon-fri", at(2026, 11, 28, 12, 0), at(2026, 11, 30, 2, 30)),  # Sat -> Mon
        ("30 2 * * MON-FRI", at(2026, 11, 30, 2, 30), at(2026, 12, 1, 2, 30)),
        ("0 0 1 jan,jul *", at(2026, 2, 1), at(2026, 7, 1)),
        ("0 0 * * sun", at(2026, 11, 23), at(2026, 11, 29)),
        ("0 0 * * 7", at(2026, 11, 23), at(2026, 11, 29)),  # 7 is Sunday too
        ("0 12 * * sat,sun", at(2026, 11, 23), at(2026, 11, 28, 12)),
        # macros
        ("@hourly", at(2026, 11, 23, 9, 0), at(2026, 11, 23, 10, 0)),
        ("@daily", at(2026, 11, 23, 9, 0), at(2026, 11, 24)),
        ("@midnight", at(2026, 11, 23, 9, 0), at(2026, 11, 24)),
        ("@weekly", at(2026, 11, 23, 9, 0), at(2026, 11, 29)),  # Sunday 00:00
        ("@monthly", at(2026, 11, 23, 9, 0), at(2026, 12, 1)),
        ("@yearly", at(2026, 11, 23, 9, 0), at(2027, 1, 1)),
        ("@annually", at(2026, 11, 23, 9, 0), at(2027, 1, 1)),
        # dom and dow both restricted: either matches (the 13th, or any Friday)
        ("0 0 13 * fri", at(2026, 11, 23), at(2026, 11, 27)),
        ("0 0 13 * fri", at(2026, 12, 5), at(2026, 12, 11)),
        ("0 0 13 * fri", at(2026, 12, 11), at(2026, 12, 13)),  # the 13th is a Sunday
        ("0 0 1,15 * mon", at(2026, 11, 24), at(2026, 11, 30)),
        ("0 0 30 2 mon", at(2026, 11, 24), at(2027, 2, 1)),  # no 30 Feb: February's Mondays
        # dow only (dom is *): Fridays; dom restricted and dow "*": only the 13th
        ("0 0 * * fri", at(2026, 11, 23), at(2026, 11, 27)),
        ("0 0 13 * *", at(2026, 11, 23), at(2026, 12, 13)),
        # a dow with a step starts with "*": both must match (a 13th on Sunday or Friday)
        ("0 0 13 * */5", at(2026, 11, 23), at(2026, 12, 13)),
        ("0 0 13 * */5", at(2026, 12, 13), at(2027, 6, 13)),
        # last day, nth weekday
        ("0 0 L 2 *", at(2027, 1, 1), at(2027, 2, 28)),
        ("0 0 L 2 *", at(2028, 1, 1), at(2028, 2, 29)),
        ("0 9 * * fri#2", at(2026, 11, 23), at(2026, 12, 11, 9)),
        ("0 9 * * 5L", at(2026, 11, 23), at(2026, 11, 27, 9)),
    ],
)
def test_next_after(text, after, expected):
    s = CronSchedule.parse(text)
    assert s.next_after(after) == expected
    assert s.matches(expected) and not s.matches(expected - dt.timedelta(minutes=1))
    assert s.next_time(after.timestamp()) == expected.timestamp()


def test_a_naive_time_is_utc():
    s = CronSchedule.parse("0 2 * * *")
    assert s.next_after(dt.datetime(2026, 11, 23, 1, 30)) == at(2026, 11, 23, 2)
    assert s.matches(dt.datetime(2026, 11, 23, 2, 0, 59))


# -- time zones and daylight saving -------------------------------------------------------


def test_a_zoned_schedule_follows_the_wall_clock_summer_and_winter():
    text = "CRON_TZ=Europe/Berlin 0 6 * * mon-fri"
    s = CronSchedule.parse(text)
    winter = s.next_after(at(2026, 3, 26, 12))  # Friday 27 March, CET (+01:00)
    assert winter == at(2026, 3, 27, 6, tz=BERLIN) == at(2026, 3, 27, 5)
    assert winter.tzinfo == BERLIN and winter.isoformat() == "2026-03-27T06:00:00+01:00"
    # Monday 30 March is in summer time (+02:00): 06:00 in Berlin is 04:00 UTC
    assert s.next_after(winter) == at(2026, 3, 30, 4)
    assert CronSchedule.parse("CRON_TZ=America/New_York @daily").next_after(
        at(2026, 11, 23, 9)
    ) == at(2026, 11, 24, 5)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        # spring: 02:30 does not exist in Berlin on 29 March; it runs at 03:00 CEST instead
        ("CRON_TZ=Europe/Berlin 30 2 * * *", at(2026, 3, 28, 12),
         [at(2026, 3, 29, 1), at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)]),
        # autumn: 02:30 happens twice on 25 October; it runs once, at the first
        ("CRON_TZ=Europe/Berlin 30 2 * * *", at(2026, 10, 24, 12),
         [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30), at(2026, 10, 27, 1, 30)]),
        # asked from inside the repeated hour (02:15 CET, the second pass): the next run is
        # tomorrow's, never one of the first pass, which lies in the past
        ("CRON_TZ=Europe/Berlin 30 2 * * *", at(2026, 10, 25, 1, 15),
         [at(2026, 10, 26, 1, 30)]),
        ("CRON_TZ=Europe/Berlin 0,20,40 2 * * *", at(2026, 10, 25, 1, 10),
         [at(2026, 10, 26, 1, 0)]),
        # every half hour keeps going at every real half hour through both changes
        ("CRON_TZ=Europe/Berlin */30 * * * *", at(2026, 10, 24, 23, 50),
         [at(2026, 10, 25, 0), at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1),
          at(2026, 10, 25, 1, 30), at(2026, 10, 25, 2)]),
        ("CRON_TZ=Europe/Berlin */30 * * * *", at(2026, 3, 29, 0, 10),
         [at(2026, 3, 29, 0, 30), at(2026, 3, 29, 1), at(2026, 3, 29, 1, 30)]),
        # New York: 02:30 is skipped on 8 March (runs 03:00 EDT) and repeated on 1 November
        ("TZ=America/New_York 30 2 * * *", at(2026, 3, 7, 12),
         [at(2026, 3, 8, 7), at(2026, 3, 9, 6, 30)]),
        ("TZ=America/New_York 30 1 * * *", at(2026, 10, 31, 12),
         [at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)]),
    ],
)  # fmt: skip
def test_daylight_saving_changes(text, after, expected):
    assert fires(text, after, len(expected)) == expected


# -- property: next_after equals a brute-force scan ------------------------------------

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (low, high, names of low, low + 1, ...) per field
SPECS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTH_NAMES), (0, 7, DAY_NAMES))


@st.composite
def items(draw, low: int, high: int, names: tuple[str, ...]) -> tuple[str, set[int]]:
    """One item of a field, as text and as the set of values it stands for."""

    def show(n: int) -> str:
        named = n - low < len(names) and draw(st.booleans())
        return names[n - low] if named else str(n)

    kind = draw(
        st.sampled_from(["star", "single", "range", "star-step", "range-step", "from-step"])
    )
    a, b = sorted(draw(st.tuples(st.integers(low, high), st.integers(low, high))))
    step = draw(st.integers(1, 9))
    if kind == "star":
        return "*", set(range(low, high + 1))
    if kind == "single":
        return show(a), {a}
    if kind == "range":
        return f"{show(a)}-{show(b)}", set(range(a, b + 1))
    if kind == "star-step":
        return f"*/{step}", set(range(low, high + 1, step))
    if kind == "range-step":
        return f"{a}-{b}/{step}", set(range(a, b + 1, step))
    return f"{a}/{step}", set(range(a, high + 1, step))  # "5/15": from 5 on, every 15


@st.composite
def schedules(draw) -> tuple[str, list[set[int]], bool]:
    """A five-field schedule, each field's values, and whether the OR rule applies."""
    texts, sets = [], []
    for low, high, names in SPECS:
        parts = draw(st.lists(items(low, high, names), min_size=1, max_size=3))
        texts.append(",".join(p[0] for p in parts))
        sets.append(set().union(*(p[1] for p in parts)))
    sets[4] = {d % 7 for d in sets[4]}  # 7 is Sunday
    either = not texts[2].startswith("*") and not texts[4].startswith("*")
    return " ".join(texts), sets, either


def brute_force(
    sets: list[set[int]], either: bool, after: dt.datetime, days: int
) -> dt.datetime | None:
    """Scan day by day, then minute by minute, with the cron rules written out again."""
    minutes, hours, doms, months, dows = sets
    start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day = start.date()
    for _ in range(days):
        dom_ok = day.day in doms
        dow_ok = (day.weekday() + 1) % 7 in dows
        if day.month in months and ((dom_ok or dow_ok) if either else (dom_ok and dow_ok)):
            t = dt.datetime.combine(day, dt.time(), UTC)
            for m in range(24 * 60):
                cand = t + dt.timedelta(minutes=m)
                if cand >= start and cand.hour in hours and cand.minute in minutes:
                    return cand
        day += dt.timedelta(days=1)
    return None


SCAN_DAYS = 9 * 366


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=schedules(),
    after=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1)),
)
def test_next_after_matches_a_brute_force_scan(schedule, after):
    text, sets, either = schedule
    after = after.replace(tzinfo=UTC)
    expected = brute_force(sets, either, after, days=SCAN_DAYS)
    try:
        s = CronSchedule.parse(text)
    except CronError as e:
        # the only refusal of valid items: days that none of the months has
        assert "names no day" in str(e) and expected is None, (text, str(e))
        return
    got = s.next_after(after)
    if expected is None:
        assert got is None or got > after + dt.timedelta(days=SCAN_DAYS - 1)
    else:
        assert got == expected, (text, after)
        assert s.matches(got)


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    after=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31)),
)
def test_zoned_next_times_move_forward_and_fire_on_the_wall_clock(schedule, zone, after):
    text, sets, _ = schedule
    try:
        s = CronSchedule.parse(f"CRON_TZ={zone} {text}")
    except CronError:
        return
    tz = ZoneInfo(zone)
    t = after.replace(tzinfo=UTC).timestamp()
    for _ in range(3):
        nxt = s.next_time(t)
        if nxt is None:
            return
        assert nxt > t and nxt % 60 == 0, (text, zone, t)
        local = dt.datetime.fromtimestamp(nxt, tz)
        # a time the clocks skipped runs just after the change, at a time the fields need not name
        moved = tz.utcoffset(local - dt.timedelta(hours=2)) != local.utcoffset()
        if not moved:
            assert local.minute in sets[0] and local.hour in sets[1] and local.month in sets[3]
        t = nxt


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


def test_a_zoned_definition_runs_on_its_wall_clock(db_url, tmp_path):
    clock = FakeClock(at(2026, 10, 30, 14, 0).timestamp())  # Friday 10:00 EDT in New York
    m = _manager(db_url, clock, tmp_path)
    d = m.create_definition(
        _definition("TZ=America/New_York 0 9 * * MON-FRI"), user="alice", groups=[]
    )
    assert d["schedule"] == "CRON_TZ=America/New_York 0 9 * * mon-fri"
    view = m.definition_view(d)
    assert view["next_run_at"] == "2026-11-02T14:00:00+00:00"  # Monday 09:00 EST (clocks went back)

    clock.now = at(2026, 11, 2, 14, 0).timestamp()
    assert len(asyncio.run(m.run_definitions())) == 1
    assert m.definition_view(m.definition(d["id"]))["next_run_at"] == "2026-11-03T14:00:00+00:00"
    m.scheduler.engine.dispose()
