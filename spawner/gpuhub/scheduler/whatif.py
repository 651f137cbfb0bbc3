"""What if quotas or rates had been different? The ledger replayed twice, side by side.

:meth:`WhatIf.prepare` takes, on the scheduler's own thread, its settings as they are now
(:class:`Settings`: the inventory, quotas, default user quota, rates, spot policy, fair
share and queue policy) and the proposed change (quota fields of users and groups, rates
of GPU models). :meth:`WhatIf.run`, meant for a worker thread, reads the requests of the
last weeks from the ledger on a connection of its own and replays them (:mod:`.replay`)
through two fresh schedulers, each with a database in a temporary folder: once as things
are, once with the change. Nothing of the real scheduler or its database is written.

The report compares the two replays (not the replay with history, so that both carry the
same simplifications): per user and per group, requests, waits (mean and 95th percentile),
refusals and credits, and who would have waited longer. How the ledger becomes demands:

* a lease that ran asks at its request time (or at the window's start, if it began
  before) and holds its devices as long as it did; one still running holds them to the end;
* a request that never ran (cancelled, refused, still queued) asks for its stated hours,
  else for as long as it waited, and is withdrawn when it was in fact (never, if queued);
* what began before the window is replayed to take its devices and quota, not counted;
* reservations are not replayed, nor GPU-hours used before the window (budgets per period
  start from nothing there); preempted work is replayed as the ledger has it.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from ..inventory import Node
from .core import Scheduler, iso
from .db import open_engine
from .errors import SchedulerError
from .lease import Lease, lease_from_row
from .pricing import RateCard
from .quota import QuotaSpec
from .replay import Demand, Outcome, Replay, ReplayClock, quiet_here
from .shapes import model_matches
from .spot import SpotPolicy
from .store import LEASES

#: The longest window replayed, in weeks, and the most leases in it.
MAX_WEEKS = 8
MAX_LEASES = 50_000
WEEK = 7 * 86400
#: A wait that changes by less than this many seconds has not changed.
SAME_WAIT_S = 1.0
#: Who the replayed schedulers' quotas are written by.
BY = "what-if"


@dataclass(frozen=True)
class Settings:
    """What a replay runs under: the pool, quotas, prices and the scheduler's policies.

    ``rates``: credits per GPU-hour of each GPU model of the pool, as charged now.
    """

    nodes: tuple[Node, ...]
    held_outside: Mapping[str, str]
    quotas: Mapping[tuple[str, str], QuotaSpec]
    default_user_quota: QuotaSpec | None
    rates: Mapping[str, float]
    default_rate: float
    spot: SpotPolicy
    queue_policy: str
    reservation_guard: float
    fair_share_half_life: float | None

    @classmethod
    def of(cls, scheduler: Scheduler) -> Settings:
        """The settings ``scheduler`` runs under now (copied: call on its thread)."""
        models = {g.model for n in scheduler.inventory for g in n.gpus}
        return cls(
            nodes=tuple(scheduler.inventory),
            held_outside=MappingProxyType(dict(scheduler.held_outside)),
            quotas=MappingProxyType(dict(scheduler.quotas)),
            default_user_quota=scheduler.default_user_quota,
            rates=MappingProxyType({m: scheduler.rates.rate(m) for m in sorted(models)}),
            default_rate=scheduler.rates.default,
            spot=scheduler.spot,
            queue_policy=scheduler.queue_policy,
            reservation_guard=scheduler.reservation_guard,
            fair_share_half_life=scheduler.fair.half_life_s,
        )

    def quota(self, kind: str, name: str) -> QuotaSpec | None:
        """The quota of a user (their own, else the default) or of a group."""
        if kind == "user":
            return self.quotas.get(("user", name), self.default_user_quota)
        return self.quotas.get((kind, name))

    def models_matching(self, pattern: str, field: str = "rates") -> list[str]:
        """The pool's GPU models that ``pattern`` names (as a rate's key does: "H100"
        names every H100 model); a :class:`SchedulerError` naming ``field`` if none."""
        hits = [m for m in self.rates if model_matches(m, pattern)]
        if not hits:
            raise SchedulerError(
                f"{pattern!r} names no GPU model of the pool (its models: "
                f"{', '.join(self.rates) or 'none'})",
                field=field,
            )
        return hits

    def scheduler(self, engine: Engine, clock: ReplayClock) -> Scheduler:
        """A new scheduler on ``engine`` (an empty database) under these settings."""
        sched = Scheduler(
            engine, list(self.nodes), clock=clock, default_user_quota=self.default_user_quota,
            queue_policy=self.queue_policy, reservation_guard=self.reservation_guard,
            held_outside=self.held_outside, spot=self.spot,
            rates=RateCard(engine, self.rates, self.default_rate, clock=clock),
            fair_share_half_life=self.fair_share_half_life,
        )  # fmt: skip
        for (kind, name), spec in self.quotas.items():
            sched.set_quota(kind, name, spec, by=BY)
        return sched


# -- the ledger as demands ---------------------------------------------------------------


def _window(start: float, end: float) -> Any:
    """Leases requested before ``end`` that had not ended by ``start``."""
    t = LEASES.c
    return (t.requested_at < end, or_(t.ended_at.is_(None), t.ended_at > start))


def count_leases(engine: Engine, start: float, end: float) -> int:
    """How many leases of the ledger a replay of ``start``-``end`` takes in."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(*_window(start, end))).scalar() or 0)


def demand_of(lease: Lease, start: float) -> Demand:
    """What ``lease`` of the ledger asks for in a replay from ``start`` (see the module)."""
    counted = lease.requested_at >= start
    groups = tuple(sorted({*lease.user_groups, *([lease.group] if lease.group else [])}))
    if lease.granted_at is not None:
        stop = math.inf if lease.ended_at is None else lease.ended_at
        hold, gives_up = stop - max(lease.granted_at, start), None
    else:
        waited = math.inf if lease.ended_at is None else lease.ended_at - lease.requested_at
        hold, gives_up = (lease.hours * 3600 if lease.hours else waited), lease.ended_at
    return Demand(
        at=max(lease.requested_at, start), user=lease.user, shape=lease.shape, hold=hold,
        group=lease.group, user_groups=groups, tier=lease.tier, profile=lease.profile,
        label=lease.label, hours=lease.hours, gives_up=gives_up, counted=counted, ref=lease.id,
    )  # fmt: skip


def ledger_demands(engine: Engine, start: float, end: float) -> list[Demand]:
    """The ledger's leases of ``start``-``end`` as demands, in request order."""
    q = select(LEASES).where(*_window(start, end)).order_by(LEASES.c.requested_at, LEASES.c.id)
    with engine.connect() as conn:
        return [demand_of(lease_from_row(r), start) for r in conn.execute(q)]


def replay(settings: Settings, demands: list[Demand], start: float, end: float) -> list[Outcome]:
    """Replay ``demands`` from ``start`` to ``end`` under ``settings`` on a scheduler of
    their own (a database in a temporary folder, removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="gpuhub-whatif-") as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'replay.sqlite'}")
        try:
            clock = ReplayClock(start)
            return Replay(settings.scheduler(engine, clock), clock).run(demands, until=end)
        finally:
            engine.dispose()


# -- the report --------------------------------------------------------------------------


def _p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def stats(outcomes: Iterable[Outcome], until: float) -> dict[str, Any]:
    """Requests, grants, refusals, waits (seconds; a wait going on at ``until`` counts to
    then), GPU-hours and credits of ``outcomes``."""
    outs = list(outcomes)
    waits = [w for w in (o.wait(until) for o in outs) if w is not None]
    mean = sum(waits) / len(waits) if waits else None
    p95 = _p95(waits)
    return {
        "requests": len(outs),
        "granted": sum(o.granted for o in outs),
        "refused": sum(o.refused is not None for o in outs),
        "withdrawn": sum(o.withdrawn for o in outs),
        "waiting_at_end": sum(o.waiting_since is not None for o in outs),
        "mean_wait_s": None if mean is None else round(mean, 3),
        "p95_wait_s": None if p95 is None else round(p95, 3),
        "gpu_hours": round(sum(o.gpu_hours for o in outs), 6),
        "credits": round(sum(o.credits for o in outs), 6),
    }


def _by(outcomes: list[Outcome], key: str) -> dict[str, list[Outcome]]:
    out: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        name = getattr(o.demand, key)
        if o.demand.counted and name is not None:
            out[name].append(o)
    return out


def _rows(key: str, now: list[Outcome], then: list[Outcome], until: float) -> list[dict]:
    a, b = _by(now, key), _by(then, key)
    return [
        {key: name, "current": stats(a[name], until), "proposed": stats(b[name], until)}
        for name in sorted(a.keys() | b.keys())
    ]


def _change(row: dict[str, Any], field: str) -> float:
    return (row["proposed"][field] or 0.0) - (row["current"][field] or 0.0)


def _movers(rows: list[dict], longer: bool) -> list[dict[str, Any]]:
    """Users whose mean wait grew (``longer``) or shrank, or who were refused more
    (less) often, largest change first."""
    sign = 1 if longer else -1
    picked = [
        {"user": r["user"], "mean_wait_change_s": round(_change(r, "mean_wait_s"), 3),
         "p95_wait_change_s": round(_change(r, "p95_wait_s"), 3),
         "refused_change": int(_change(r, "refused"))}
        for r in rows
        if sign * _change(r, "mean_wait_s") >= SAME_WAIT_S or sign * _change(r, "refused") > 0
    ]  # fmt: skip
    return sorted(picked, key=lambda m: (-sign * m["mean_wait_change_s"], m["user"]))


def _quota_changes(before: Settings, after: Settings) -> list[dict[str, Any]]:
    """Each quota field the proposal changes; ``current`` None where there was no quota
    (the fields are then compared with an empty quota's)."""
    out = []
    for kind, name in sorted(after.quotas):
        old, new = before.quota(kind, name), after.quotas[(kind, name)]
        if old == new:
            continue
        was = (old or QuotaSpec()).model_dump(mode="json")
        for f, v in new.model_dump(mode="json").items():
            if was[f] != v:
                out.append({"kind": kind, "name": name, "field": f,
                            "current": None if old is None else was[f], "proposed": v})  # fmt: skip
    return out


@dataclass(frozen=True)
class WhatIf:
    """A proposed change of quotas and rates, and the weeks of the ledger to replay it on.

    Made on the scheduler's thread (:meth:`prepare`), run anywhere (:meth:`run`).
    """

    current: Settings
    proposed: Settings
    engine: Engine  # the real database: only read
    weeks: int
    start: float
    end: float

    @classmethod
    def prepare(
        cls,
        scheduler: Scheduler,
        *,
        weeks: int,
        quotas: Iterable[tuple[str, str, QuotaSpec]] = (),
        rates: Iterable[tuple[str, float]] = (),
    ) -> WhatIf:
        """The change of ``quotas`` (kind, name, the quota proposed) and ``rates``
        (a model or a part of its name, credits per GPU-hour) over the last ``weeks``."""
        if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
            raise SchedulerError(
                f"weeks must be a whole number from 1 to {MAX_WEEKS}", field="weeks"
            )
        current = Settings.of(scheduler)
        new_quotas = dict(current.quotas)
        new_quotas.update({(kind, name): spec for kind, name, spec in quotas})
        new_rates = dict(current.rates)
        for i, (pattern, rate) in enumerate(rates):
            hits = current.models_matching(pattern, f"rates.{i}.model")
            new_rates.update(dict.fromkeys(hits, float(rate)))
        proposed = replace(
            current, quotas=MappingProxyType(new_quotas), rates=MappingProxyType(new_rates)
        )
        end = scheduler.clock()
        return cls(current, proposed, scheduler.engine, weeks, end - weeks * WEEK, end)

    def changes(self) -> list[dict[str, Any]]:
        """What the proposal changes: quota fields and rates, each with both values."""
        out = _quota_changes(self.current, self.proposed)
        out += [
            {"kind": "rate", "name": m, "field": "credits_per_gpu_hour", "current": r,
             "proposed": self.proposed.rates[m]}
            for m, r in self.current.rates.items() if self.proposed.rates[m] != r
        ]  # fmt: skip
        return out

    def run(self) -> dict[str, Any]:
        """Replay the window under both settings; the report (see the module)."""
        t0 = time.perf_counter()
        n = count_leases(self.engine, self.start, self.end)
        if n > MAX_LEASES:
            raise SchedulerError(
                f"the last {self.weeks} weeks of the ledger hold {n:,} leases and a what-if "
                f"replays at most {MAX_LEASES:,}: ask for fewer weeks",
                field="weeks",
            )
        demands = ledger_demands(self.engine, self.start, self.end)
        with quiet_here("gpuhub.scheduler", "alembic.runtime.migration"):
            now = replay(self.current, demands, self.start, self.end)
            then = replay(self.proposed, demands, self.start, self.end)
        until = self.end
        users = _rows("user", now, then, until)
        counted = [o for o in now if o.demand.counted]
        counted_then = [o for o in then if o.demand.counted]
        return {
            "start": iso(self.start), "end": iso(self.end), "weeks": self.weeks,
            "leases": len(demands), "counted": len(counted), "changes": self.changes(),
            "current": stats(counted, until), "proposed": stats(counted_then, until),
            "users": users, "groups": _rows("group", now, then, until),
            "waited_longer": _movers(users, longer=True),
            "waited_shorter": _movers(users, longer=False),
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }  # fmt: skip
