"""Reports from the ledger (the ``leases`` table): GPU-hours per day, week or month,
user and group.

Reports only read, each on a connection of its own, and need nothing of the scheduler's
memory (a lease is written before anyone is told of it, so the table knows every running
lease too). So they can run in a worker thread while the scheduler grants on its own;
the time they report up to (``now``) is taken by the caller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.engine import Engine

from .lease import Lease, lease_from_row
from .store import LEASES

UTC = dt.UTC
#: The columns a usage report can be grouped by; at most one of the time ones.
USAGE_FIELDS = ("day", "week", "month", "user", "group")
TIME_FIELDS = ("day", "week", "month")


def period_values(day: dt.date) -> dict[str, str]:
    """The day, week and month a UTC day falls in, as report values: ``2026-11-25``,
    ``2026-11-23`` (the week's Monday; weeks start Monday 00:00 UTC) and ``2026-11``."""
    monday = day - dt.timedelta(days=day.weekday())
    return {"day": day.isoformat(), "week": monday.isoformat(), "month": f"{day:%Y-%m}"}


class Ledger:
    """Read-only reports over the scheduler database; safe to call from any thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def usage(
        self,
        start: float,
        end: float,
        *,
        now: float,
        user: str | None = None,
        group: str | None = None,
        by: tuple[str, ...] = ("day", "user", "group"),
    ) -> list[dict[str, Any]]:
        """GPU-hours per ``by`` (some of day, week, month, user, group; at most one of the
        first three) between ``start`` and ``end``, counting running leases up to ``now``.

        A lease is split at UTC midnights, and each day's share goes to its day, its week
        (named by its Monday) and its month (``YYYY-MM``)."""
        if sum(f in TIME_FIELDS for f in by) > 1:
            raise ValueError("group by at most one of day, week, month")
        end = min(end, now)
        totals: dict[tuple, list] = {}
        for lease in self._overlapping(start, end, user, group):
            a = max(lease.granted_at or 0.0, start)
            b = min(lease.ended_at if lease.ended_at is not None else now, end)
            while a < b:  # split at UTC midnights: one row per day
                day = dt.datetime.fromtimestamp(a, UTC).date()
                day_end = dt.datetime.combine(
                    day + dt.timedelta(days=1), dt.time(), UTC
                ).timestamp()
                cut = min(b, day_end)
                values = {**period_values(day), "user": lease.user, "group": lease.group}
                k = tuple(values[f] for f in by)
                t = totals.setdefault(k, [0.0, 0.0, set()])
                t[0] += lease.overlap_hours(a, cut)
                t[1] += lease.overlap_credits(a, cut)
                t[2].add(lease.id)
                a = cut
        return [
            {**dict(zip(by, k, strict=True)), "gpu_hours": round(v[0], 6),
             "credits": round(v[1], 6), "leases": len(v[2])}
            for k, v in sorted(totals.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
        ]  # fmt: skip

    def statement(
        self,
        start: float,
        end: float,
        *,
        now: float,
        user: str | None = None,
        group: str | None = None,
    ) -> list[dict[str, Any]]:
        """What was charged between ``start`` and ``end`` (running leases up to ``now``),
        per group, user, GPU model, tier and rate: GPU-hours and credits.

        A lease's devices are equal shares of its units, each charged at the rate written
        on it when granted (the lease's own rate for leases granted before rates were),
        times the lease's discount. A rate changed mid-period makes a row of its own."""
        end = min(end, now)
        rows: dict[tuple, list] = {}
        for lease in self._overlapping(start, end, user, group):
            a = max(lease.granted_at or 0.0, start)
            b = min(lease.ended_at if lease.ended_at is not None else now, end)
            if b <= a:
                continue
            hours = float(lease.units) * (b - a) / 3600 / max(len(lease.devices), 1)
            for d in lease.devices or [{}]:
                rate = d.get("rate", lease.rate or 0.0)
                k = (lease.group or "", lease.user, d.get("model", ""), lease.tier, rate,
                     lease.discount)  # fmt: skip
                r = rows.setdefault(k, [0.0, 0.0, set()])
                r[0] += hours
                r[1] += hours * rate * lease.discount
                r[2].add(lease.id)
        return [
            {"group": k[0] or None, "user": k[1], "model": k[2], "tier": k[3],
             "credits_per_gpu_hour": k[4], "discount": k[5], "gpu_hours": round(v[0], 6),
             "credits": round(v[1], 6), "leases": len(v[2])}
            for k, v in sorted(rows.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
        ]  # fmt: skip

    def _overlapping(
        self, start: float, end: float, user: str | None, group: str | None
    ) -> list[Lease]:
        """The leases granted before ``end`` and not ended before ``start``."""
        q = select(LEASES).where(
            LEASES.c.granted_at.is_not(None),
            LEASES.c.granted_at < end,
            or_(LEASES.c.ended_at.is_(None), LEASES.c.ended_at > start),
        )
        if user is not None:
            q = q.where(LEASES.c.user == user)
        if group is not None:
            q = q.where(LEASES.c.group_name == group)
        with self.engine.connect() as conn:
            return [lease_from_row(r) for r in conn.execute(q)]

    def total_credits(self, now: float) -> float:
        """Credits charged up to ``now``: every ended lease, and running ones so far."""
        t = LEASES.c
        end = case((t.ended_at.is_(None), now), else_=t.ended_at)
        hours = (end - t.granted_at) * t.units_num / t.units_den
        q = select(func.coalesce(func.sum(hours * t.rate * t.discount), 0.0)).where(
            t.granted_at.is_not(None), t.granted_at <= now
        )
        with self.engine.connect() as conn:
            return float(conn.execute(q).scalar() or 0.0) / 3600

    def total_gpu_hours(self, now: float) -> float:
        """GPU-hours booked up to ``now``: every ended lease, and running ones so far.

        One statement, so it reads one consistent state: a lease that ends meanwhile is
        counted once, as running or as ended.
        """
        t = LEASES.c
        end = case((t.ended_at.is_(None), now), else_=t.ended_at)
        q = select(
            func.coalesce(func.sum((end - t.granted_at) * t.units_num / t.units_den), 0.0)
        ).where(t.granted_at.is_not(None), t.granted_at <= now)
        with self.engine.connect() as conn:
            return float(conn.execute(q).scalar() or 0.0) / 3600
