"""The scheduler: the one writer of leases, quotas, the queue and the GPU-hour ledger.

Every decision runs on one thread (the service's event loop) against an in-memory picture
of the pool, and is written to the database in one transaction before anyone is told.
The database is the truth: :meth:`Scheduler.load` rebuilds the picture from it after a
restart, and the ``claims`` primary key refuses a slot held twice.

This module holds the decisions (admit, grant, queue, dispatch, release) and the read API
other parts use; the lease model is in :mod:`.lease`, the SQL in :mod:`.store`, quota
accounting in :mod:`.accounting` and the reports in :mod:`.ledger`.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ..inventory import Node
from ..terms import ACTIVE, CANCELLED, QUEUED, REFUSED, RELEASED
from .accounting import Accounting
from .activity import ActivityBoard
from .errors import (
    Forbidden,
    IdempotencyConflict,
    NotFound,
    QuotaExceeded,
    ReservationConflict,
    SchedulerError,
    Unsatisfiable,
)
from .lease import Lease, iso, lease_row, request_digest
from .ledger import Ledger
from .pool import Placement, Pool
from .quota import QuotaSpec
from .reads import Reads
from .reservations import RESERVATION_GUARD, Reservation, Reservations
from .shapes import MigSlice, SharedGpu, WholeGpus
from .store import DELETE_CLAIMS, END_LEASE, GRANT_LEASE, INSERT_CLAIM, INSERT_LEASE, Store
from .store import claim_rows as _claim_rows
from .waiting import Waiting

log = logging.getLogger("gpuhub.scheduler")

__all__ = [
    "Forbidden",
    "IdempotencyConflict",
    "Lease",
    "NotFound",
    "QuotaExceeded",
    "Reservation",
    "ReservationConflict",
    "Scheduler",
    "SchedulerError",
    "Unsatisfiable",
    "iso",
]

QUEUE_POLICIES = ("best-effort", "strict")


def _place(lease: Lease, placement: Placement, now: float) -> None:
    """Make ``lease`` active on ``placement`` (memory only)."""
    lease.status, lease.granted_at = ACTIVE, now
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


class Scheduler(Reservations, Reads, Waiting):
    """Grants GPU leases under quotas, queues what must wait, and keeps the ledger.

    Why a queued request waits, and until about when, it answers through :class:`Waiting`;
    devices reserved for groups' time windows are :class:`Reservations`; what other parts
    may read is :class:`Reads`. ``reservation_guard``: seconds a lease that states no
    hours is expected to run, to keep it off devices whose reserved window comes sooner.
    """

    def __init__(
        self,
        engine: Engine,
        nodes: list[Node],
        *,
        clock: Callable[[], float] = time.time,
        default_user_quota: QuotaSpec | None = None,
        queue_policy: str = "best-effort",
        reservation_guard: float = RESERVATION_GUARD,
    ) -> None:
        if queue_policy not in QUEUE_POLICIES:
            raise ValueError(
                f"queue_policy must be 'best-effort' or 'strict', not {queue_policy!r}"
            )
        self.engine = engine
        self.inventory = nodes
        self.clock = clock
        self.default_user_quota = default_user_quota
        self.queue_policy = queue_policy
        if not 0 <= reservation_guard < float("inf"):
            raise ValueError(f"reservation_guard must be seconds >= 0, not {reservation_guard!r}")
        self.reservation_guard = float(reservation_guard)
        self.store = Store(engine)
        self.ledger = Ledger(engine)
        self._activity = ActivityBoard()  # latest GPU activity per active lease (memory)
        self.load()

    # -- state -----------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory picture from the database; grant what now fits."""
        self.pool = Pool(self.inventory)
        self.live: dict[int, Lease] = {}
        self._by_key: dict[tuple[str, str], int] = {}  # (user, idempotency key) -> live lease
        self._buckets: dict[tuple, list] = defaultdict(list)  # shape bucket -> heap of order keys
        now = self.clock()
        with self.store.loading() as conn:
            self.store.sync_devices(conn, self.inventory, now)
            self.quotas: dict[tuple[str, str], QuotaSpec] = self.store.load_quotas(conn)
            self.accounting = Accounting(
                self.store, self.live, self.quotas, self.default_user_quota
            )
            self.next_id = self.store.next_lease_id(conn)
            for lease in self.store.load_live(conn):
                self._remember(lease)
            # the claims table is the truth about held slots: respect any no lease explains
            for c in self.store.load_claims(conn):
                if self.pool.knows(c.device_id) and self.pool.holder(c.device_id, c.slot) is None:
                    log.warning(
                        "device %s slot %s is claimed by lease %s in the database but not by its "
                        "record; keeping it out of use", c.device_id, c.slot, c.lease_id,
                    )  # fmt: skip
                    self.pool.claim(c.lease_id, "", ((c.device_id, c.slot),), Fraction(0))
            self._load_reservations(conn)
            self._dispatch(conn, now)
        self._activity.keep_only({x.id for x in self.live.values() if x.status == ACTIVE})

    def _remember(self, lease: Lease) -> None:
        self.live[lease.id] = lease
        self.accounting.add(lease)
        if lease.idempotency_key is not None:
            self._by_key[(lease.user, lease.idempotency_key)] = lease.id
        if lease.status == ACTIVE:
            self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)
        else:
            heapq.heappush(self._buckets[lease.shape.bucket], (lease.order, lease.id))

    def _forget(self, lease: Lease, was: str) -> None:
        """Drop an ended lease from the live picture; ``was`` is its status before it ended."""
        del self.live[lease.id]
        self._activity.drop(lease.id)
        self.accounting.remove(lease, was)
        if lease.idempotency_key is not None:
            self._by_key.pop((lease.user, lease.idempotency_key), None)
        if was == ACTIVE:
            self.pool.free(lease.id, lease.node or "", lease.slots, lease.units)

    def _guarded(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn`` in one transaction; on any failure resync memory from the database."""
        return self.store.guarded(fn, self.load)

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
        return self._create(user, user_groups, shape, group, profile, label, hours, None, None)

    def request_once(
        self,
        *,
        idempotency_key: str,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None = None,
        profile: str | None = None,
        label: str = "",
        hours: float | None = None,
    ) -> tuple[Lease, bool]:
        """:meth:`request` at most once per ``(user, idempotency_key)``.

        Returns ``(lease, replayed)``. The first request with a key creates the lease
        (``replayed`` False); the same request with that key again returns that lease as
        it is now, live or ended, also after a restart (``replayed`` True). The key with
        a different request raises :class:`IdempotencyConflict`. A refused request is not
        remembered: a retry with its key is decided again.
        """
        digest = request_digest(
            user=user, shape=shape, group=group, profile=profile, label=label, hours=hours
        )
        known = self.lease_by_key(user, idempotency_key)
        if known is not None:
            if known.request_digest != digest:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} of {user} was used for lease "
                    f"{known.id} with a different request; send a new key for a new request",
                    field="Idempotency-Key",
                )
            return known, True
        lease = self._create(
            user, user_groups, shape, group, profile, label, hours, idempotency_key, digest
        )
        return lease, False

    def lease_by_key(self, user: str, idempotency_key: str) -> Lease | None:
        """The lease ``user`` created with ``idempotency_key`` (live or ended), or None."""
        lid = self._by_key.get((user, idempotency_key))
        if lid is not None:
            return self.live[lid]
        return self.store.lease_by_key(user, idempotency_key)

    def _create(
        self,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None,
        profile: str | None,
        label: str,
        hours: float | None,
        key: str | None,
        digest: str | None,
    ) -> Lease:
        user_groups = sorted(set(user_groups))
        group, units, now = self._admit(user, user_groups, shape, group, profile, hours)
        lease = Lease(
            id=self.next_id,
            user=user,
            group=group,
            status=QUEUED,
            shape=shape,
            units=units,
            priority=self.accounting.priority(user, group),
            profile=profile,
            label=label,
            hours=hours,
            requested_at=now,
            idempotency_key=key,
            request_digest=digest,
            user_groups=user_groups,
        )

        def write(conn: Connection) -> Lease:
            self.next_id += 1
            placement = None
            if self.queue_policy == "best-effort" or not self._ahead_of(lease):
                placement = self._place_lease(lease, now)
            if placement is not None:
                _place(lease, placement, now)
            conn.execute(INSERT_LEASE, lease_row(lease))
            if placement is not None:
                conn.execute(INSERT_CLAIM, _claim_rows(lease))
            self._remember(lease)
            if placement is None and self._reservations and self.queue_policy == "strict":
                self._dispatch(conn, now)  # reserved devices may serve it past the queue
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
        units = self.pool.max_units(shape)
        now = self.clock()
        problem = self.accounting.quota_problem(
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
        user_groups = sorted(set(user_groups))
        free, total, simulated = self.pool.count(shape)
        out: dict[str, Any] = {
            "free": free, "total": total, "simulated": simulated, "ahead": None, "units": None,
        }  # fmt: skip
        try:
            group, units, now = self._admit(user, user_groups, shape, group, profile, hours)
        except SchedulerError as e:
            return {**out, "outcome": "refuse", "message": e.message, "error": e.code}
        probe = Lease(
            id=self.next_id, user=user, group=group, status=QUEUED, shape=shape, units=units,
            priority=self.accounting.priority(user, group), profile=profile, requested_at=now,
            hours=hours, user_groups=user_groups,
        )  # fmt: skip
        out.update(group=group, units=float(units))
        noun = _count_noun(shape)
        if (self.queue_policy == "best-effort" or not self._ahead_of(probe)) and self._place_lease(
            probe, now
        ) is not None:
            return {**out, "outcome": "grant", "message": f"{free} of {total} {noun} free"}
        ahead = sum(1 for q in self.live.values() if q.status == QUEUED and q.order < probe.order)
        behind = f"{ahead} request{'s' if ahead > 1 else ''} ahead of you"
        held = self._held_back(probe, now)  # free devices reserved for another group
        if held:
            msg = f"{held}; {behind}" if ahead else held
        elif ahead:
            msg = f"{behind}; {free} of {total} {noun} free"
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
            lease.status = RELEASED if was == ACTIVE else CANCELLED
            lease.ended_at = now
            lease.end_reason = reason
            conn.execute(
                END_LEASE,
                {
                    "lid": lease.id,
                    "was": was,
                    "status": lease.status,
                    "ended_at": now,
                    "end_reason": reason,
                },
            )
            if was == ACTIVE:
                conn.execute(DELETE_CLAIMS, {"lid": lease.id})
            self._forget(lease, was)
            # freed devices, or (strict order) a request no longer ahead of the others
            if was == ACTIVE or self.queue_policy == "strict":
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
        conn.execute(INSERT_CLAIM, _claim_rows(lease))
        conn.execute(
            GRANT_LEASE,
            {
                "lid": lease.id, "granted_at": now, "node": lease.node, "devices": lease.devices,
                "units_num": lease.units.numerator, "units_den": lease.units.denominator,
            },
        )  # fmt: skip
        self.accounting.granted(lease, queued_units)
        self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)

    def _dispatch(self, conn: Connection, now: float) -> None:
        """Grant queued requests that fit, in priority-then-age order.

        Requests of one shape fit exactly when each other fits, so the first that does not
        blocks its shape; under reservations, its shape for users under the same rules
        (members and non-members of a reserved group differ), the others set aside.
        """
        blocked: set[tuple] = set()
        aside: list[tuple[list, tuple]] = []  # (heap, entry): its shape and rules are blocked
        try:
            self._serve(conn, now, blocked, aside)
        finally:
            for heap, entry in aside:
                heapq.heappush(heap, entry)

    def _serve(self, conn: Connection, now: float, blocked: set, aside: list) -> None:
        members_only = False  # strict: a request that reservations alone hold back came first
        while True:
            best = None
            for bucket, heap in self._buckets.items():
                while heap and (
                    heap[0][1] not in self.live or self.live[heap[0][1]].status != QUEUED
                ):
                    heapq.heappop(heap)
                if heap and bucket not in blocked and (best is None or heap[0] < best[1][0]):
                    best = (bucket, heap)
            if best is None:
                return
            bucket, heap = best
            lease = self.live[heap[0][1]]
            rules = self._rules(lease, now) if self._reservations else None
            if rules is not None and (bucket, rules) in blocked:
                aside.append((heap, heapq.heappop(heap)))
                continue
            problem = self.accounting.quota_problem(
                lease.user, lease.group, lease.shape, lease.profile, lease.units, lease.hours, now,
                queued_too=False, conn=conn,
            )  # fmt: skip
            if problem:
                heapq.heappop(heap)
                lease.status, lease.ended_at, lease.end_reason = REFUSED, now, problem
                conn.execute(
                    END_LEASE,
                    {
                        "lid": lease.id,
                        "was": QUEUED,
                        "status": REFUSED,
                        "ended_at": now,
                        "end_reason": problem,
                    },
                )
                self._forget(lease, QUEUED)
                continue
            if members_only:  # only onto the devices of its group's open reservations
                placement = self._place_reserved(lease, now, self.pool)
            elif rules is None:
                placement = self.pool.place(lease.shape)
            else:
                placement = self.pool.place(lease.shape, *rules)
            if placement is None:
                if self.queue_policy == "strict":
                    if not (members_only or self._held_by_rules(lease, now, self.pool)):
                        return
                    members_only = True
                    aside.append((heap, heapq.heappop(heap)))
                    continue
                if rules is None:
                    blocked.add(bucket)
                else:
                    blocked.add((bucket, rules))
                    aside.append((heap, heapq.heappop(heap)))
                continue
            heapq.heappop(heap)
            self._grant(conn, lease, placement, now)
            log.info(
                "lease %s granted from queue: user=%s node=%s", lease.id, lease.user, lease.node
            )

    def _ahead_of(self, lease: Lease) -> bool:
        return any(q.status == QUEUED and q.order < lease.order for q in self.live.values())

    # -- quotas ----------------------------------------------------------------------

    def quota_for_user(self, user: str) -> QuotaSpec | None:
        """The user's own quota, or the configured default; None means unlimited."""
        return self.accounting.quota_for_user(user)

    def set_quota(self, kind: str, name: str, spec: QuotaSpec, *, by: str) -> QuotaSpec:
        """Create or replace the quota of a user or group; takes effect at once."""
        row = {"spec": spec.model_dump(mode="json"), "updated_at": self.clock(), "updated_by": by}

        def write(conn: Connection) -> QuotaSpec:
            # memory mirrors the table (one writer)
            self.store.write_quota(conn, kind, name, row, exists=(kind, name) in self.quotas)
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
            self.store.delete_quota(conn, kind, name)
            del self.quotas[(kind, name)]

        self._guarded(write)
        log.info("quota removed: %s %s by %s", kind, name, by)

    def quota_status(self, kind: str, name: str, spec: QuotaSpec | None) -> dict[str, Any]:
        """A quota with what is in use and left now (for ``me`` and the quota API)."""
        return self.accounting.quota_status(kind, name, spec, self.clock())
