"""Ledger history for the console's tests, written before a hub starts.

The leases are made by the real scheduler on the service's own database, with a clock set
to each lease's start and end (nothing sleeps through hours). The history always ends
before the current quota week begins (Monday 00:00 UTC), so it fills the console's charts
without spending anyone's budget for this week, whatever day and hour the suite runs:
``tests/unit/test_seed.py`` checks that at fixed instants (a Sunday 23:59, a Monday 00:00,
a month's end, a daylight-saving change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpuhub.inventory import SimulatedInventory
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.pricing import RateCard
from gpuhub.scheduler.quota import QuotaSpec, period_window
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus

HOUR = 3600.0
#: The pool of the console's admin tests (two nodes: whole GPUs, MIG slices, shared seats).
ADMIN_SPEC = (
    "sim-node-1: 4xH100-80GB[nvlink], 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=4];"
    " sim-node-2: 4xA100-80GB[nvlink]"
)
#: The rates the history was charged at (credits per GPU-hour), as the embedded default
#: configures them, so that statements show credits apart from GPU-hours.
RATES = {"H100": 2.0, "A100": 1.5, "L4": 0.5}
#: Who is in which group in the console's admin tests.
ADMIN_GROUPS = {"alice": "physics", "bob": "physics", "carol": "chem", "dan": "chem"}
_WEEK = QuotaSpec(gpu_hours=1, period="week")


def history_days(now: float, days: int) -> list[dt.datetime]:
    """The ``days`` UTC midnights just before the quota week that holds ``now``, oldest
    first."""
    week_start = dt.datetime.fromtimestamp(period_window(_WEEK, now)[0], dt.UTC)
    return [week_start - dt.timedelta(days=back) for back in range(days, 0, -1)]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def ledger_writer(database: Path, spec: str) -> Iterator[tuple[Scheduler, _Clock]]:
    """A scheduler on the SQLite file ``database`` (made if missing) over the simulated
    pool ``spec``, and the clock it reads; set ``clock.now`` before each call."""
    database.parent.mkdir(parents=True, exist_ok=True)
    engine = open_engine(f"sqlite:///{database}")
    clock = _Clock()
    try:
        nodes = SimulatedInventory(spec=spec).nodes()
        yield Scheduler(engine, nodes, clock=clock, rates=RateCard(engine, RATES)), clock
    finally:
        engine.dispose()


def seed_admin_history(database: Path, now: float, days: int = 21) -> None:
    """Three weeks of four users' leases in two groups: whole GPUs, a MIG slice and a
    shared seat each weekday from 09:00, half as long (and half the people) at weekends."""
    plan = [  # user, shape, hours on weekdays
        ("alice", WholeGpus(count=2), 3.0),
        ("bob", WholeGpus(count=1), 5.0),
        ("carol", MigSlice(kind="mig", profile="1g.5gb"), 6.0),
        ("dan", SharedGpu(kind="shared"), 4.0),
    ]
    with ledger_writer(database, ADMIN_SPEC) as (s, clock):
        for back, day in zip(range(days, 0, -1), history_days(now, days), strict=True):
            weekend = day.weekday() >= 5
            clock.now = day.timestamp() + 9 * HOUR
            held = []
            for i, (user, shape, hours) in enumerate(plan):
                if weekend and i % 2:
                    continue
                group = ADMIN_GROUPS[user]
                lease = s.request(user=user, user_groups=[group], group=group, shape=shape,
                                  label=f"server:{user}/")  # fmt: skip
                length = hours * (0.5 if weekend else 1) * (1 + (back % 3) / 4)
                held.append((length, lease.id))
            for length, lease_id in sorted(held):
                clock.now = day.timestamp() + 9 * HOUR + length * HOUR
                s.release(lease_id)


def seed_alice_history(database: Path, spec: str, now: float, days: int = 14) -> None:
    """alice's weekday leases of two weeks: her own GPU, and on every other day a second
    one charged to group cs101 (a job)."""
    with ledger_writer(database, spec) as (s, clock):
        for back, day in zip(range(days, 0, -1), history_days(now, days), strict=True):
            if day.weekday() >= 5:
                continue
            clock.now = day.timestamp() + 9 * HOUR
            own = s.request(user="alice", user_groups=["cs101"], shape=WholeGpus(count=1),
                            label="server:alice/")  # fmt: skip
            lab = None
            if back % 2:
                lab = s.request(user="alice", user_groups=["cs101"], group="cs101",
                                shape=WholeGpus(count=1), label="job:alice/1")  # fmt: skip
            clock.now += (1.5 + back % 3) * HOUR
            s.release(own.id)
            if lab is not None:
                clock.now += HOUR
                s.release(lab.id)
