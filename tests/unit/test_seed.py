"""The console tests' ledger history (``tests/support/seed.py``) at fixed instants: it
never spends a budget of the current week or day, and it stays inside the console's
default 30-day charts, whatever the day, hour and local time zone the suite runs in.

These are the instants that broke or could break it: a Sunday 23:59 (six days of this
week already behind), a Monday 00:00 (the week just begun), a month's last second, and
the daylight-saving changes of Europe and the USA, each under three local zones.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from gpuhub.inventory import SimulatedInventory
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import LeaseRow, open_engine
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.shapes import WholeGpus
from sqlalchemy import func, select

from tests.support.seed import (
    ADMIN_GROUPS,
    ADMIN_SPEC,
    history_days,
    seed_admin_history,
    seed_alice_history,
)

UTC = dt.UTC
INSTANTS = {
    "sunday-23:59": dt.datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC),
    "monday-00:00": dt.datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC),
    "month-end": dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    "eu-summer-time": dt.datetime(2027, 3, 28, 1, 0, 0, tzinfo=UTC),
    "us-winter-time": dt.datetime(2026, 11, 1, 6, 30, 0, tzinfo=UTC),
}
ZONES = ["UTC", "America/New_York", "Pacific/Auckland"]
#: hub_config's default user quota (GpuhubService.default_user_quota).
DEFAULT_QUOTA = QuotaSpec(max_units=2, gpu_hours=40, period="week")
LEASES = LeaseRow.__table__


@pytest.fixture(params=ZONES)
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The process's local time zone set to each of ``ZONES`` (restored afterwards)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def _span(database: Path) -> tuple[float, float, int]:
    engine = open_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as c:
            first, last, n = c.execute(
                select(func.min(LEASES.c.granted_at), func.max(LEASES.c.ended_at), func.count())
            ).one()
    finally:
        engine.dispose()
    return first, last, n


@pytest.mark.parametrize("instant", INSTANTS.values(), ids=INSTANTS.keys())
def test_history_ends_before_the_week_and_fits_the_charts(
    tmp_path: Path, instant: dt.datetime, local_zone: str
) -> None:
    now = instant.timestamp()
    week_start = dt.datetime.combine(
        instant.date() - dt.timedelta(days=instant.weekday()), dt.time(), UTC
    ).timestamp()
    chart_start = dt.datetime.combine(
        instant.date() - dt.timedelta(days=29), dt.time(), UTC
    ).timestamp()  # the console's usage page: the last 30 UTC days
    for name, seed in {
        "admin": lambda db: seed_admin_history(db, now),
        "alice": lambda db: seed_alice_history(db, "n: 4xH100-80GB", now),
    }.items():
        db = tmp_path / f"{name}.sqlite"
        seed(db)
        first, last, count = _span(db)
        assert count > 10, name
        assert last <= week_start, f"{name}: history reaches into the current week"
        assert first >= chart_start, f"{name}: history begins before the 30-day chart"


@pytest.mark.parametrize("instant", INSTANTS.values(), ids=INSTANTS.keys())
def test_everyone_has_this_weeks_budget_whole(tmp_path: Path, instant: dt.datetime) -> None:
    """What the admin tests' hub does first: alice asks for a GPU, under the default
    quota, and gets it; nobody has spent a GPU-hour of this week or day."""
    now = instant.timestamp()
    db = tmp_path / "gpuhub.sqlite"
    seed_admin_history(db, now)
    engine = open_engine(f"sqlite:///{db}")
    try:
        s = Scheduler(engine, SimulatedInventory(spec=ADMIN_SPEC).nodes(), clock=lambda: now,
                      default_user_quota=DEFAULT_QUOTA)  # fmt: skip
        for period in ("week", "day"):
            spec = QuotaSpec(gpu_hours=1, period=period)
            for user, group in ADMIN_GROUPS.items():
                assert s.quota_status("user", user, spec)["gpu_hours_used"] == 0
                assert s.quota_status("group", group, spec)["gpu_hours_used"] == 0
        lease = s.request(user="alice", user_groups=["physics"], group="physics",
                          shape=WholeGpus(count=1))  # fmt: skip
        assert lease.status == "active"
    finally:
        engine.dispose()


def test_history_days_are_the_days_before_the_monday() -> None:
    days = history_days(INSTANTS["sunday-23:59"].timestamp(), 3)
    assert [d.date().isoformat() for d in days] == ["2026-11-27", "2026-11-28", "2026-11-29"]
    days = history_days(INSTANTS["monday-00:00"].timestamp(), 1)
    assert [d.date().isoformat() for d in days] == ["2026-12-06"]
