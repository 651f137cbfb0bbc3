"""Helpers for the scheduler's tests: shapes, the rows the database holds, and the
consistency check every scheduler test ends with. The ``engine`` and ``make`` fixtures
are in ``tests/conftest.py``."""

from __future__ import annotations

from fractions import Fraction

from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import ClaimRow, LeaseRow
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus
from sqlalchemy import func, select

HOUR = 3600.0
LEASES = LeaseRow.__table__
CLAIMS = ClaimRow.__table__


def gpu(count: int = 1, model: str | None = None) -> WholeGpus:
    return WholeGpus(count=count, model=model)


def mig(profile: str, model: str | None = None) -> MigSlice:
    return MigSlice(kind="mig", profile=profile, model=model)


def shared(model: str | None = None) -> SharedGpu:
    return SharedGpu(kind="shared", model=model)


def ask(s: Scheduler, user: str, shape=None, groups=(), **kwargs):
    return s.request(user=user, user_groups=groups, shape=shape or gpu(), **kwargs)


def lease_rows(engine) -> dict[int, dict]:
    with engine.connect() as c:
        return {r.id: r._asdict() for r in c.execute(select(LEASES))}


def claim_rows(engine) -> dict[tuple[str, int], int]:
    with engine.connect() as c:
        return {(r.device_id, r.slot): r.lease_id for r in c.execute(select(CLAIMS))}


def counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (
            c.execute(select(func.count()).select_from(LEASES)).scalar_one(),
            c.execute(select(func.count()).select_from(CLAIMS)).scalar_one(),
        )


def uuids(lease) -> list[str]:
    return [d["uuid"] for d in lease.devices]


def assert_consistent(s: Scheduler) -> None:
    """The claims table holds exactly the active leases' slots, and the pool agrees."""
    claims = claim_rows(s.engine)
    expected = {slot: x.id for x in s.live.values() if x.status == "active" for slot in x.slots}
    assert claims == expected
    rows = lease_rows(s.engine)
    for lease in s.live.values():
        row = rows[lease.id]
        assert row["status"] == lease.status
        assert Fraction(row["units_num"], row["units_den"]) == lease.units
        if lease.status == "active":
            assert row["devices"] == lease.devices
            for dev, slot in lease.slots:
                if s.pool.knows(dev):  # a device gone from the inventory keeps its claim row
                    assert s.pool.holder(dev, slot) == lease.id
