"""Usage by week and month: the ledger on SQLite and PostgreSQL, with an injected clock.

Weeks start Monday 00:00 UTC and are named by that Monday; months are ``YYYY-MM``. A
lease is split at UTC midnights, so its hours fall into the right week and month even
when it crosses both boundaries.
"""

from __future__ import annotations

import datetime as dt

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.ledger import period_values
from gpuhub.scheduler.shapes import WholeGpus

HOUR = 3600.0


@pytest.fixture
def scheduler(db_url, clock):
    engine = open_engine(db_url)
    yield Scheduler(engine, parse_spec("a: 2xH100-80GB"), clock=clock)
    engine.dispose()


def test_period_values_name_the_monday_and_the_month():
    assert period_values(dt.date(2026, 11, 29)) == {
        "day": "2026-11-29", "week": "2026-11-23", "month": "2026-11",
    }  # fmt: skip
    assert period_values(dt.date(2026, 11, 30))["week"] == "2026-11-30"  # a Monday
    assert period_values(dt.date(2027, 1, 1)) == {
        "day": "2027-01-01", "week": "2026-12-28", "month": "2027-01",
    }  # fmt: skip


def test_usage_by_week_and_month_across_both_boundaries(scheduler, clock):
    s = scheduler
    clock.advance(6 * 24 * HOUR + 13 * HOUR)  # Sunday 2026-11-29 22:00 UTC
    lease = s.request(user="alice", user_groups=["cs101"], group="cs101", shape=WholeGpus(count=1))
    clock.advance(28 * HOUR)  # Tuesday 2026-12-01 02:00: through Monday and into December
    s.release(lease.id)
    s.request(user="bob", user_groups=[], shape=WholeGpus(count=1))  # running: up to now
    clock.advance(HOUR)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
    end = start + 62 * 24 * HOUR

    assert s.usage(start, end, by=("week",)) == [
        {"week": "2026-11-23", "gpu_hours": 2.0, "credits": 2.0, "leases": 1},
        {"week": "2026-11-30", "gpu_hours": 27.0, "credits": 27.0, "leases": 2},
    ]
    assert s.usage(start, end, by=("month", "user")) == [
        {"month": "2026-11", "user": "alice", "gpu_hours": 26.0, "credits": 26.0, "leases": 1},
        {"month": "2026-12", "user": "alice", "gpu_hours": 2.0, "credits": 2.0, "leases": 1},
        {"month": "2026-12", "user": "bob", "gpu_hours": 1.0, "credits": 1.0, "leases": 1},
    ]
    assert s.usage(start, end, group="cs101", by=("week", "group")) == [
        {"week": "2026-11-23", "group": "cs101", "gpu_hours": 2.0, "credits": 2.0, "leases": 1},
        {"week": "2026-11-30", "group": "cs101", "gpu_hours": 26.0, "credits": 26.0, "leases": 1},
    ]
    # the days still add up to the same total
    days = s.usage(start, end, by=("day",))
    assert sum(r["gpu_hours"] for r in days) == pytest.approx(29.0)
    with pytest.raises(ValueError, match="at most one of day, week, month"):
        s.usage(start, end, by=("day", "week"))
