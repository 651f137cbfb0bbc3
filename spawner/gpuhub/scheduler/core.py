"""The scheduler: the one writer of leases, quotas, the queue and the GPU-hour ledger.

Every decision runs on one thread (the service's event loop) against an in-memory picture
of the pool, and is written to the database in one transaction before anyone is told.
The database is the truth: :meth:`Scheduler.load` rebuilds the picture from it after a
restart, and the ``claims`` primary key refuses a slot held twice.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..inventory import Node
from .db import ClaimRow, DeviceRow, LeaseRow, QuotaRow
from .errors import Forbidden, NotFound, QuotaExceeded, SchedulerError, Unsatisfiable
from .pool import Placement, Pool
from .quota import QuotaSpec, fmt_hours, fmt_units, period_phrase, period_window
from .shapes import MigSlice, Shape, SharedGpu, WholeGpus, describe, model_matches

log = logging.getLogger("gpuhub.scheduler")

__all__ = [
    "Forbidden",
    "Lease",
    "NotFound",
    "QuotaExceeded",
    "Scheduler",
    "SchedulerError",
    "Unsatisfiable",
]

SHAPE = TypeAdapter(Shape)
LIVE = ("queued", "active")
UTC = dt.UTC


def iso(ts: float | None) -> str | None:
    """POSIX seconds to an ISO 8601 UTC string."""
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class Lease:
    """A request for GPUs and, once granted, the devices that belong to it."""

    id: int
    user: str
    group: str | None
    status: str
    shape: WholeGpus | MigSlice | SharedGpu
    units: Fraction
    priority: int = 0
    profile: str | None = None
    label: str = ""
    hours: float | None = None
    node: str | None = None
    devices: list[dict] = field(default_factory=list)
    requested_at: float = 0.0
    granted_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None

    @property
    def slots(self) -> tuple[tuple[str, int], ...]:
        """The (device id, slot) pairs this lease holds."""
        return tuple((d["uuid"], d.get("slot", 0)) for d in self.devices)

    @property
    def order(self) -> tuple[int, float, int]:
        """Queue order: higher priority first, then older first."""
        return (-self.priority, self.requested_at, self.id)

    def principals(self) -> list[tuple]:
        """Whom this lease is charged to."""
        keys: list[tuple] = [("user", self.user)]
        if self.group:
            keys += [("group", self.group), ("member", self.group, self.user)]
        return keys

    def gpu_hours(self, now: float) -> float:
        """GPU-hours used so far (units x hours held)."""
        if self.granted_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else now
        return float(self.units) * max(0.0, end - self.granted_at) / 3600

    def to_dict(self, now: float, position: int | None = None) -> dict[str, Any]:
        """The lease as the REST API shows it."""
        return {
            "id": self.id,
            "user": self.user,
            "group": self.group,
            "status": self.status,
            "shape": self.shape.model_dump(exclude_none=True),
            "profile": self.profile,
            "label": self.label,
            "priority": self.priority,
            "units": float(self.units),
            "node": self.node,
            "devices": self.devices,
            "simulated": any(d.get("simulated") for d in self.devices),
            "position": position,
            "requested_at": iso(self.requested_at),
            "granted_at": iso(self.granted_at),
            "ended_at": iso(self.ended_at),
            "end_reason": self.end_reason,
            "gpu_hours": round(self.gpu_hours(now), 6),
        }


def _lease_from_row(r: Any) -> Lease:
    return Lease(
        id=r.id,
        user=r.user,
        group=r.group_name,
        status=r.status,
        shape=SHAPE.validate_python(r.shape),
        units=Fraction(r.units_num, r.units_den),
        priority=r.priority,
        profile=r.profile,
        label=r.label,
        hours=r.hours,
        node=r.node,
        devices=list(r.devices or []),
        requested_at=r.requested_at,
        granted_at=r.granted_at,
        ended_at=r.ended_at,
        end_reason=r.end_reason,
    )


_LEASES = LeaseRow.__table__
_CLAIMS = ClaimRow.__table__

try:  # in psycopg's pipeline mode a refused write surfaces as the driver's own error
    from psycopg import IntegrityError as _PgIntegrityError

    _INTEGRITY_ERRORS: tuple[type[Exception], ...] = (IntegrityError, _PgIntegrityError)
except ImportError:  # pragma: no cover - PostgreSQL support not installed
    _INTEGRITY_ERRORS = (IntegrityError,)

# Built once: the hot path only binds parameters (no statement building per decision).
_INSERT_LEASE = insert(_LEASES)
_INSERT_CLAIM = insert(_CLAIMS)
_GRANT_LEASE = (
    update(_LEASES)
    .where(_LEASES.c.id == bindparam("lid"))
    .values(
        status="active",
        granted_at=bindparam("granted_at"),
        node=bindparam("node"),
        devices=bindparam("devices", type_=_LEASES.c.devices.type),
        units_num=bindparam("units_num"),
        units_den=bindparam("units_den"),
    )
)
_END_LEASE = (
    update(_LEASES)
    .where(_LEASES.c.id == bindparam("lid"), _LEASES.c.status == bindparam("was"))
    .values(
        status=bindparam("status"),
        ended_at=bindparam("ended_at"),
        end_reason=bindparam("end_reason"),
    )
)
_DELETE_CLAIMS = delete(_CLAIMS).where(_CLAIMS.c.lease_id == bindparam("lid"))


def _place(lease: Lease, placement: Placement, now: float) -> None:
    """Make ``lease`` active on ``placement`` (memory only)."""
    lease.status, lease.granted_at = "active", now
    lease.units, lease.node = placement.units, placement.node
    lease.devices = [
        {**d, "slot": s} for d, (_, s) in zip(placement.devices, placement.slots, strict=True)
    ]


def _count_noun(shape: WholeGpus | MigSlice | SharedGpu) -> str:
    if isinstance(shape, WholeGpus):
        return f"{shape.model + ' ' if shape.model else ''}GPUs"
    if isinstance(shape, MigSlice):
        return f"MIG {shape.profile} slices"
    return f"shared {shape.model + ' ' if shape.model else ''}GPU seats"


def _claim_rows(lease: Lease) -> list[dict]:
    return [{"device_id": d, "slot": s, "lease_id": lease.id} for d, s in lease.slots]


class Scheduler:
    """Grants GPU leases under quotas, queues what must wait, and keeps the ledger."""

    def __init__(
        self,
        engine: Engine,
        nodes: list[Node],
        *,
        clock: Callable[[], float] = time.time,
        default_user_quota: QuotaSpec | None = None,
        queue_policy: str = "best-effort",
    ) -> None:
        if queue_policy not in ("best-effort", "strict"):
            raise ValueError(
                f"queue_policy must be 'best-effort' or 'strict', not {queue_policy!r}"
            )
        self.engine = engine
        self.inventory = nodes
        self.clock = clock
        self.default_user_quota = default_user_quota
        self.queue_policy = queue_policy
        self._pipeline = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self.load()

    # -- state -----------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory picture from the database; grant what now fits."""
        self.pool = Pool(self.inventory)
        self._estimates: dict[tuple, Fraction] = {}
        self.live: dict[int, Lease] = {}
        self.quotas: dict[tuple[str, str], QuotaSpec] = {}
        self._held: dict[tuple, Fraction] = defaultdict(Fraction)  # queued + active units
        self._active: dict[tuple, Fraction] = defaultdict(Fraction)
        self._by_principal: dict[tuple, set[int]] = defaultdict(set)
        self._buckets: dict[tuple, list] = defaultdict(list)  # shape bucket -> heap of order keys
        self._closed_hours: dict[tuple, dict[float, float]] = defaultdict(dict)
        now = self.clock()
        with self.engine.begin() as conn:
            self._sync_devices(conn, now)
            for q in conn.execute(select(QuotaRow.__table__)):
                self.quotas[(q.kind, q.name)] = QuotaSpec.model_validate(q.spec)
            self.next_id = (
                conn.execute(select(LeaseRow.id).order_by(LeaseRow.id.desc())).scalar() or 0
            ) + 1
            rows = conn.execute(
                select(_LEASES).where(_LEASES.c.status.in_(LIVE)).order_by(_LEASES.c.id)
            )
            for row in rows:
                self._remember(_lease_from_row(row))
            # the claims table is the truth about held slots: respect any no lease explains
            for c in conn.execute(select(_CLAIMS)):
                if self.pool.knows(c.device_id) and self.pool.holder(c.device_id, c.slot) is None:
                    log.warning(
                        "device %s slot %s is claimed by lease %s in the database but not by its "
                        "record; keeping it out of use", c.device_id, c.slot, c.lease_id,
                    )  # fmt: skip
                    self.pool.claim(c.lease_id, "", ((c.device_id, c.slot),), Fraction(0))
            self._dispatch(conn, now)

    def _sync_devices(self, conn: Connection, now: float) -> None:
        conn.execute(update(DeviceRow).values(present=False))
        known = set(conn.execute(select(DeviceRow.id)).scalars())
        rows = []
        for node in self.inventory:
            for g in node.gpus:
                base = {
                    "node": node.name,
                    "model": g.model,
                    "index": g.index,
                    "simulated": g.simulated,
                }
                rows.append(
                    {
                        **base,
                        "id": g.uuid,
                        "kind": "gpu",
                        "parent": None,
                        "profile": None,
                        "memory_mb": g.memory_mb,
                        "mode": g.mode,
                        "shares": g.shares,
                    }
                )
                for m in g.mig_instances:
                    rows.append(
                        {
                            **base,
                            "id": m.uuid,
                            "kind": "mig",
                            "parent": g.uuid,
                            "profile": m.profile,
                            "memory_mb": m.memory_mb,
                            "mode": "mig",
                            "shares": 1,
                        }
                    )
        for r in rows:
            r.update(present=True, seen_at=now)
            if r["id"] in known:
                conn.execute(update(DeviceRow).where(DeviceRow.id == r["id"]).values(**r))
            else:
                conn.execute(insert(DeviceRow).values(**r))

    def _remember(self, lease: Lease) -> None:
        self.live[lease.id] = lease
        for p in lease.principals():
            self._held[p] += lease.units
            self._by_principal[p].add(lease.id)
            if lease.status == "active":
                self._active[p] += lease.units
        if lease.status == "active":
            self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)
        else:
            heapq.heappush(self._buckets[lease.shape.bucket], (lease.order, lease.id))

    def _forget(self, lease: Lease, was: str) -> None:
        """Drop an ended lease from the live picture; ``was`` is its status before it ended."""
        del self.live[lease.id]
        for p in lease.principals():
            self._held[p] -= lease.units
            self._by_principal[p].discard(lease.id)
            if was == "active":
                self._active[p] -= lease.units
                for ws in self._closed_hours.get(p, {}):
                    self._closed_hours[p][ws] += _overlap_hours(lease, ws, lease.ended_at or 0)
        if was == "active":
            self.pool.free(lease.id, lease.node or "", lease.slots, lease.units)

    def _guarded(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn`` in one transaction; on any failure resync memory from the database.

        On PostgreSQL the transaction runs in psycopg's pipeline mode (one round trip for
        its writes), where SQLAlchemy cannot read results: ``fn`` reads through
        :meth:`_select` only.
        """
        try:
            if not self._pipeline:
                with self.engine.begin() as conn:
                    return fn(conn)
            # PostgreSQL: BEGIN, the writes and COMMIT go out together, one round trip
            with self.engine.connect() as conn, conn.connection.driver_connection.pipeline():
                with conn.begin():
                    return fn(conn)
        except SchedulerError:
            self.load()
            raise
        except _INTEGRITY_ERRORS as e:
            log.error("database refused a scheduler write, reloading state: %s", e)
            self.load()
            raise SchedulerError("the pool changed under this request; try again") from e
        except Exception:
            self.load()
            raise

    # -- requests --------------------------------------------------------------------

    def request(
        self,
        *,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None = None,
        profile: str | None = None,
        label: str = "",
        hours: float | None = None,
    ) -> Lease:
        """Ask for ``shape`` as ``user`` through ``group``: granted now, queued, or refused.

        Raises :class:`QuotaExceeded`, :class:`Unsatisfiable` or :class:`Forbidden`
        without changing anything.
        """
        group, units, now = self._admit(user, user_groups, shape, group, profile, hours)
        lease = Lease(
            id=self.next_id,
            user=user,
            group=group,
            status="queued",
            shape=shape,
            units=units,
            priority=self._priority(user, group),
            profile=profile,
            label=label,
            hours=hours,
            requested_at=now,
        )

        def write(conn: Connection) -> Lease:
            self.next_id += 1
            placement = None
            if self.queue_policy == "best-effort" or not self._ahead_of(lease):
                placement = self.pool.place(shape)
            if placement is not None:
                _place(lease, placement, now)
            conn.execute(_INSERT_LEASE, self._row(lease))
            if placement is not None:
                conn.execute(_INSERT_CLAIM, _claim_rows(lease))
            self._remember(lease)
            return lease

        lease = self._guarded(write)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "lease %s %s: user=%s group=%s shape=%s node=%s devices=%s",
                lease.id, lease.status, user, group, shape.label, lease.node,
                ",".join(d["uuid"] for d in lease.devices) or "-",
            )  # fmt: skip
        return lease

    def _admit(
        self,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None,
        profile: str | None,
        hours: float | None,
    ) -> tuple[str | None, Fraction, float]:
        """Check a request against membership, the pool and quotas.

        Returns (the group it is charged to, its units, now); raises if it is refused.
        """
        user_groups = set(user_groups)
        if group is not None and group not in user_groups:
            raise Forbidden(f"{user} is not a member of group {group}", field="group")
        if group is None:
            with_quota = sorted(g for g in user_groups if ("group", g) in self.quotas)
            if len(with_quota) > 1:
                raise SchedulerError(
                    f"{user} is in groups {', '.join(with_quota)} which have GPU quotas; "
                    "say which group this request is for",
                    field="group",
                )
            group = with_quota[0] if with_quota else None
        why = self.pool.feasible(shape)
        if why:
            raise Unsatisfiable(why, field="shape")
        units = self._units_estimate(shape)
        now = self.clock()
        problem = self._quota_problem(
            user, group, shape, profile, units, hours, now, queued_too=True
        )
        if problem:
            raise QuotaExceeded(problem)
        return group, units, now

    def preview(
        self,
        *,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None = None,
        profile: str | None = None,
        hours: float | None = None,
    ) -> dict[str, Any]:
        """What :meth:`request` would do now, without doing it (for spawn forms).

        ``outcome`` is ``grant``, ``queue`` or ``refuse``; ``message`` says it for people:
        "3 of 8 H100 GPUs free", "2 requests ahead of you", or the refusal's reason.
        """
        free, total, simulated = self.pool.count(shape)
        out: dict[str, Any] = {
            "free": free, "total": total, "simulated": simulated, "ahead": None, "units": None,
        }  # fmt: skip
        try:
            group, units, now = self._admit(user, user_groups, shape, group, profile, hours)
        except SchedulerError as e:
            return {**out, "outcome": "refuse", "message": e.message, "error": e.code}
        probe = Lease(
            id=self.next_id, user=user, group=group, status="queued", shape=shape, units=units,
            priority=self._priority(user, group), profile=profile, requested_at=now,
        )  # fmt: skip
        out.update(group=group, units=float(units))
        noun = _count_noun(shape)
        if (self.queue_policy == "best-effort" or not self._ahead_of(probe)) and self.pool.place(
            shape
        ) is not None:
            return {**out, "outcome": "grant", "message": f"{free} of {total} {noun} free"}
        ahead = sum(1 for q in self.live.values() if q.status == "queued" and q.order < probe.order)
        if ahead:
            msg = f"{ahead} request{'s' if ahead > 1 else ''} ahead of you; {free} of {total} {noun} free"
        else:
            msg = f"all {total} {noun} are in use; you would be next"
        return {**out, "outcome": "queue", "ahead": ahead, "message": msg}

    def release(self, lease_id: int, *, reason: str = "released") -> Lease:
        """End a lease (release if active, cancel if queued). Ending an ended lease is a no-op."""
        lease = self.live.get(lease_id)
        if lease is None:
            return self.get(lease_id)
        now = self.clock()

        def write(conn: Connection) -> Lease:
            was = lease.status
            lease.status = "released" if was == "active" else "cancelled"
            lease.ended_at = now
            lease.end_reason = reason
            conn.execute(
                _END_LEASE,
                {
                    "lid": lease.id,
                    "was": was,
                    "status": lease.status,
                    "ended_at": now,
                    "end_reason": reason,
                },
            )
            if was == "active":
                conn.execute(_DELETE_CLAIMS, {"lid": lease.id})
            self._forget(lease, was)
            # freed devices, or (strict order) a request no longer ahead of the others
            if was == "active" or self.queue_policy == "strict":
                self._dispatch(conn, now)
            return lease

        lease = self._guarded(write)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "lease %s %s: user=%s node=%s devices=%s reason=%s", lease.id, lease.status,
                lease.user, lease.node, ",".join(d["uuid"] for d in lease.devices) or "-", reason,
            )  # fmt: skip
        return lease

    def _grant(self, conn: Connection, lease: Lease, placement: Placement, now: float) -> None:
        """Grant a queued lease (already counted as held) the slots of ``placement``."""
        queued_units = lease.units
        _place(lease, placement, now)
        conn.execute(_INSERT_CLAIM, _claim_rows(lease))
        conn.execute(
            _GRANT_LEASE,
            {
                "lid": lease.id, "granted_at": now, "node": lease.node, "devices": lease.devices,
                "units_num": lease.units.numerator, "units_den": lease.units.denominator,
            },
        )  # fmt: skip
        # the estimate counted while queued may exceed the slice actually granted
        for p in lease.principals():
            self._held[p] += lease.units - queued_units
            self._active[p] += lease.units
        self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)

    def _dispatch(self, conn: Connection, now: float) -> None:
        """Grant queued requests that fit, in priority-then-age order."""
        blocked: set[tuple] = set()
        while True:
            best = None
            for bucket, heap in self._buckets.items():
                while heap and (
                    heap[0][1] not in self.live or self.live[heap[0][1]].status != "queued"
                ):
                    heapq.heappop(heap)
                if heap and bucket not in blocked and (best is None or heap[0] < best[1][0]):
                    best = (bucket, heap)
            if best is None:
                return
            bucket, heap = best
            lease = self.live[heap[0][1]]
            problem = self._quota_problem(
                lease.user, lease.group, lease.shape, lease.profile, lease.units, lease.hours, now,
                queued_too=False, conn=conn,
            )  # fmt: skip
            if problem:
                heapq.heappop(heap)
                lease.status, lease.ended_at, lease.end_reason = "refused", now, problem
                conn.execute(
                    _END_LEASE,
                    {
                        "lid": lease.id,
                        "was": "queued",
                        "status": "refused",
                        "ended_at": now,
                        "end_reason": problem,
                    },
                )
                self._forget(lease, "queued")
                continue
            placement = self.pool.place(lease.shape)
            if placement is None:
                if self.queue_policy == "strict":
                    return
                blocked.add(bucket)
                continue
            heapq.heappop(heap)
            self._grant(conn, lease, placement, now)
            log.info(
                "lease %s granted from queue: user=%s node=%s", lease.id, lease.user, lease.node
            )

    @staticmethod
    def _row(lease: Lease) -> dict[str, Any]:
        return {
            "id": lease.id,
            "user": lease.user,
            "group_name": lease.group,
            "status": lease.status,
            "shape": lease.shape.model_dump(exclude_none=True),
            "profile": lease.profile,
            "label": lease.label,
            "priority": lease.priority,
            "units_num": lease.units.numerator,
            "units_den": lease.units.denominator,
            "hours": lease.hours,
            "requested_at": lease.requested_at,
            "granted_at": lease.granted_at,
            "node": lease.node,
            "devices": lease.devices or None,
        }

    def _units_estimate(self, shape: WholeGpus | MigSlice | SharedGpu) -> Fraction:
        """Units a queued request is charged: the most any fitting device would cost."""
        key = shape.bucket
        if key not in self._estimates:
            self._estimates[key] = self._max_units(shape)
        return self._estimates[key]

    def _max_units(self, shape: WholeGpus | MigSlice | SharedGpu) -> Fraction:
        if isinstance(shape, WholeGpus):
            return Fraction(shape.count)
        gpus = [
            g
            for ns in self.pool.nodes.values()
            for g in ns.node.gpus
            if model_matches(g.model, shape.model)
        ]
        if isinstance(shape, MigSlice):
            return max(
                g.slice_units(m)
                for g in gpus
                for m in g.mig_instances
                if m.profile == shape.profile
            )
        return max(Fraction(1, g.shares) for g in gpus if g.shares > 1)

    def _priority(self, user: str, group: str | None) -> int:
        specs = [self.quota_for_user(user), self.quotas.get(("group", group)) if group else None]
        return max((s.priority for s in specs if s is not None), default=0)

    def _ahead_of(self, lease: Lease) -> bool:
        return any(q.status == "queued" and q.order < lease.order for q in self.live.values())

    # -- quotas ----------------------------------------------------------------------

    def quota_for_user(self, user: str) -> QuotaSpec | None:
        """The user's own quota, or the configured default; None means unlimited."""
        return self.quotas.get(("user", user), self.default_user_quota)

    def _quota_problem(
        self,
        user: str,
        group: str | None,
        shape: WholeGpus | MigSlice | SharedGpu,
        profile: str | None,
        units: Fraction,
        hours: float | None,
        now: float,
        *,
        queued_too: bool,
        conn: Connection | None = None,
    ) -> str | None:
        """None if quotas allow the request, else a sentence naming the quota that forbids it.

        ``conn`` is the open transaction when called while writing (dispatch), so that
        leases it just ended are read as ended.
        """
        checks: list[tuple[tuple, str, QuotaSpec]] = []
        spec = self.quota_for_user(user)
        if spec is not None:
            checks.append((("user", user), f"user {user}", spec))
        gspec = self.quotas.get(("group", group)) if group else None
        if gspec is not None:
            checks.append((("group", group), f"group {group}", gspec))
        counts = self._held if queued_too else self._active
        for key, who, spec in checks:
            if not spec.allows_shape(shape.label):
                return f"{who} may not use {describe(shape)} (allowed: {', '.join(spec.allowed_shapes or [])})"
            if not spec.allows_profile(profile):
                return (
                    f"{who} may not use profile {profile or '(none)'} "
                    f"(allowed: {', '.join(spec.allowed_profiles or [])})"
                )
            limit = spec.max_units_exact
            if limit is not None and counts[key] + units > limit:
                return self._units_message(who, key, limit, units)
            if key[0] == "group" and spec.per_user_exact is not None:
                mkey = ("member", group, user)
                if counts[mkey] + units > spec.per_user_exact:
                    return (
                        f"{user} uses {fmt_units(self._active[mkey])} of the "
                        f"{fmt_units(spec.per_user_exact)} GPU units each member of group {group} "
                        f"may hold; this request needs {fmt_units(units)}"
                    )
            if spec.gpu_hours is not None:
                start, end = period_window(spec, now)
                if not start <= now < end:
                    return (
                        f"{who}'s GPU-hour term runs {spec.term_start} to {spec.term_end}; "
                        "no GPU-hours can be used outside it"
                    )
                left = spec.gpu_hours - self._hours_used(key, start, now, conn)
                need = float(units) * hours if hours else 0.0
                if left <= 1e-9 or left + 1e-9 < need:
                    msg = (
                        f"{who[len('user ') :] if key[0] == 'user' else who} has "
                        f"{fmt_hours(max(left, 0.0))} of {fmt_hours(spec.gpu_hours)} GPU-hours left "
                        f"{period_phrase(spec, now)}"
                    )
                    return msg + (f"; this request needs {fmt_hours(need)}" if need else "")
        return None

    def _units_message(self, who: str, key: tuple, limit: Fraction, units: Fraction) -> str:
        active, held = self._active[key], self._held[key]
        queued = f" (and {fmt_units(held - active)} more queued)" if held > active else ""
        return (
            f"{who} uses {fmt_units(active)} of {'their' if key[0] == 'user' else 'its'} "
            f"{fmt_units(limit)} GPU units{queued}; "
            f"this request needs {fmt_units(units)}. Ask an admin, or wait for a lease to end"
        )

    def _hours_used(
        self, key: tuple, start: float, now: float, conn: Connection | None = None
    ) -> float:
        """GPU-hours charged to a principal since ``start``: ended leases + live ones so far."""
        cache = self._closed_hours[key]
        if start not in cache:
            t = _LEASES.c
            col = t.user if key[0] == "user" else t.group_name
            # live leases have no ended_at; cancelled and refused ones no granted_at
            q = select(t.granted_at, t.ended_at, t.units_num, t.units_den).where(
                col == key[1], t.granted_at.is_not(None), t.ended_at > start
            )
            if conn is not None:  # inside a write: see the leases this transaction ended
                rows = self._select(conn, q)
            else:
                with self.engine.connect() as c:
                    rows = list(c.execute(q))
            cache[start] = sum(
                num / den * (ended - max(granted, start)) / 3600
                for granted, ended, num, den in rows
            )
        live = sum(
            _overlap_hours(self.live[i], start, now)
            for i in self._by_principal.get(key, ())
            if self.live[i].status == "active"
        )
        return cache[start] + live

    def _select(self, conn: Connection, query) -> list[tuple]:
        """Rows of ``query`` inside the current transaction (also in psycopg's pipeline mode,
        where SQLAlchemy cannot read results: there the driver's cursor fetches them)."""
        if not self._pipeline:
            return [tuple(r) for r in conn.execute(query)]
        compiled = query.compile(dialect=self.engine.dialect)
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(str(compiled), compiled.params)
            return cur.fetchall()

    def set_quota(self, kind: str, name: str, spec: QuotaSpec, *, by: str) -> QuotaSpec:
        """Create or replace the quota of a user or group; takes effect at once."""
        row = {"spec": spec.model_dump(mode="json"), "updated_at": self.clock(), "updated_by": by}

        def write(conn: Connection) -> QuotaSpec:
            if (kind, name) in self.quotas:  # memory mirrors the table (one writer)
                conn.execute(
                    update(QuotaRow)
                    .where(QuotaRow.kind == kind, QuotaRow.name == name)
                    .values(**row)
                )
            else:
                conn.execute(insert(QuotaRow).values(kind=kind, name=name, **row))
            self.quotas[(kind, name)] = spec
            return spec

        spec = self._guarded(write)
        log.info("quota set: %s %s by %s: %s", kind, name, by, row["spec"])
        return spec

    def delete_quota(self, kind: str, name: str, *, by: str) -> None:
        """Remove a quota (a user falls back to the default; a group to no limit)."""
        if (kind, name) not in self.quotas:
            raise NotFound(f"{kind} {name} has no quota")

        def write(conn: Connection) -> None:
            conn.execute(delete(QuotaRow).where(QuotaRow.kind == kind, QuotaRow.name == name))
            del self.quotas[(kind, name)]

        self._guarded(write)
        log.info("quota removed: %s %s by %s", kind, name, by)

    def quota_status(self, kind: str, name: str, spec: QuotaSpec | None) -> dict[str, Any]:
        """A quota with what is in use and left now (for ``me`` and the quota API)."""
        now = self.clock()
        key = (kind, name)
        out: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "quota": spec.model_dump(mode="json") if spec else None,
            "units_active": float(self._active[key]),
            "units_queued": float(self._held[key] - self._active[key]),
        }
        if spec is not None and spec.gpu_hours is not None:
            start, end = period_window(spec, now)
            used = self._hours_used(key, start, now) if start <= now else 0.0
            out.update(
                gpu_hours_used=round(used, 6),
                gpu_hours_left=round(max(spec.gpu_hours - used, 0.0), 6),
                period_start=iso(start),
                period_end=iso(end),
                period=period_phrase(spec, now),
            )
        return out

    # -- views -----------------------------------------------------------------------

    def get(self, lease_id: int) -> Lease:
        """A lease by id, live or ended."""
        if lease_id in self.live:
            return self.live[lease_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(_LEASES).where(_LEASES.c.id == lease_id)).first()
        if row is None:
            raise NotFound(f"no lease {lease_id}")
        return _lease_from_row(row)

    def leases(
        self, *, user: str | None = None, status: Iterable[str] | None = None, limit: int = 1000
    ) -> list[Lease]:
        """Leases, newest first; live ones come from memory, ended ones from the ledger."""
        status = set(status or LIVE)
        out = [
            lease for lease in self.live.values()
            if lease.status in status and (user is None or lease.user == user)
        ]  # fmt: skip
        ended = status - set(LIVE)
        if ended:
            q = (
                select(_LEASES)
                .where(_LEASES.c.status.in_(ended))
                .order_by(_LEASES.c.id.desc())
                .limit(limit)
            )
            if user is not None:
                q = q.where(_LEASES.c.user == user)
            with self.engine.connect() as conn:
                out += [_lease_from_row(r) for r in conn.execute(q)]
        return sorted(out, key=lambda x: -x.id)[:limit]

    def queue(self) -> list[Lease]:
        """Queued requests in the order they will be considered."""
        return sorted(
            (x for x in self.live.values() if x.status == "queued"), key=lambda x: x.order
        )

    def position(self, lease: Lease) -> int | None:
        """1-based place in the queue, or None when the lease is not queued."""
        if lease.status != "queued":
            return None
        return 1 + sum(
            1 for q in self.live.values() if q.status == "queued" and q.order < lease.order
        )

    def total_gpu_hours(self) -> float:
        """GPU-hours booked so far: every ended lease plus running ones up to now."""
        now = self.clock()
        t = _LEASES.c
        q = select(
            func.coalesce(func.sum((t.ended_at - t.granted_at) * t.units_num / t.units_den), 0.0)
        ).where(t.granted_at.is_not(None), t.ended_at.is_not(None))
        with self.engine.connect() as conn:
            ended = float(conn.execute(q).scalar() or 0.0) / 3600
        return ended + sum(x.gpu_hours(now) for x in self.live.values() if x.status == "active")

    def usage(
        self,
        start: float,
        end: float,
        *,
        user: str | None = None,
        group: str | None = None,
        by: tuple[str, ...] = ("day", "user", "group"),
    ) -> list[dict[str, Any]]:
        """The ledger: GPU-hours per (day, user, group) between ``start`` and ``end``."""
        now = self.clock()
        end = min(end, now)
        q = select(_LEASES).where(
            _LEASES.c.granted_at.is_not(None),
            _LEASES.c.granted_at < end,
            or_(_LEASES.c.ended_at.is_(None), _LEASES.c.ended_at > start),
        )
        if user is not None:
            q = q.where(_LEASES.c.user == user)
        if group is not None:
            q = q.where(_LEASES.c.group_name == group)
        totals: dict[tuple, list] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                lease = _lease_from_row(r)
                a = max(lease.granted_at or 0.0, start)
                b = min(lease.ended_at if lease.ended_at is not None else now, end)
                while a < b:
                    day = dt.datetime.fromtimestamp(a, UTC).date()
                    day_end = dt.datetime.combine(
                        day + dt.timedelta(days=1), dt.time(), UTC
                    ).timestamp()
                    cut = min(b, day_end)
                    values = {"day": day.isoformat(), "user": lease.user, "group": lease.group}
                    k = tuple(values[f] for f in by)
                    t = totals.setdefault(k, [0.0, set()])
                    t[0] += float(lease.units) * (cut - a) / 3600
                    t[1].add(lease.id)
                    a = cut
        return [
            {**dict(zip(by, k, strict=True)), "gpu_hours": round(v[0], 6), "leases": len(v[1])}
            for k, v in sorted(totals.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
        ]


def _overlap_hours(lease: Lease, start: float, end: float) -> float:
    if lease.granted_at is None:
        return 0.0
    a = max(lease.granted_at, start)
    b = end if lease.ended_at is None else min(lease.ended_at, end)
    return float(lease.units) * max(0.0, b - a) / 3600
