"""The scheduler: the one writer of leases, quotas, the queue and the GPU-hour ledger.

Every decision runs on one thread (the service's event loop) against an in-memory picture
of the pool, and is written to the database in one transaction before anyone is told.
The database is the truth: :meth:`Scheduler.load` rebuilds the picture from it after a
restart, and the ``claims`` primary key refuses a slot held twice.

This module holds the decisions (grant, queue, dispatch, release) and every write. The
scheduler owns its parts and hands them what they need; none reaches into another:

* ``book`` (:class:`~.reservations.ReservationBook`): the reservations and their rule;
* ``view`` (:class:`~.reads.SchedulerView`): the read API other parts are handed, over
  the scheduler as a read-only :class:`~.state.SchedulerState`, with the why-waiting
  explainer (:mod:`.waiting`);
* ``wait_queue`` (:class:`~.queue.WaitQueue`): the queued requests in serving order;
* ``preemption`` (:class:`~.spot.Preemption`): which spot leases go for a guaranteed
  request, and their notices;
* the rebind plan (:mod:`.rebinding`), the admission checks (:mod:`.admission`), the
  lease model (:mod:`.lease`), the SQL (:mod:`.store`), quota accounting
  (:mod:`.accounting`), prices (:mod:`.pricing`) and the reports (:mod:`.ledger`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ..inventory import Node
from ..terms import ACTIVE, CANCELLED, QUEUED, REFUSED, RELEASED
from .accounting import Accounting
from .activity import Activity, ActivityBoard, ActivityReport
from .admission import admit
from .errors import (
    Forbidden,
    IdempotencyConflict,
    NotFound,
    QuotaExceeded,
    ReservationConflict,
    SchedulerError,
    Unsatisfiable,
)
from .fairshare import FairShare
from .inventory_change import InventoryChange, compare, log_change
from .lease import Lease, iso, log_line, request_digest
from .ledger import Ledger
from .pool import Placement, Pool
from .pricing import RateCard
from .queue import WaitQueue
from .quota import QuotaSpec
from .reads import SchedulerView, view_read
from .rebinding import moves_line, plan_rebind
from .reservations import RESERVATION_GUARD, Reservation, ReservationBook
from .shapes import MigSlice, SharedGpu, WholeGpus
from .spot import GUARANTEED, PREEMPTED, SPOT, Preemption, SpotPolicy
from .store import DELETE_CLAIMS, Store

log = logging.getLogger("gpuhub.scheduler")

__all__ = ["Forbidden", "IdempotencyConflict", "Lease", "NotFound", "QuotaExceeded", "Reservation"]
__all__ += [
    "ReservationConflict",
    "Scheduler",
    "SchedulerError",
    "SchedulerView",
    "Unsatisfiable",
    "iso",
]

QUEUE_POLICIES = ("best-effort", "strict")


def _place(lease: Lease, at: Placement, now: float, rates: RateCard, spot: SpotPolicy) -> None:
    """Make ``lease`` active on placement ``at``, priced by ``rates`` for its tier (memory only)."""
    lease.status, lease.granted_at = ACTIVE, now
    lease.units, lease.node = at.units, at.node
    lease.devices = [{**d, "slot": s} for d, (_, s) in zip(at.devices, at.slots, strict=True)]
    rates.price(lease, spot.discount_of(lease.tier))


class Scheduler:
    """Grants GPU leases under quotas, queues what must wait, and keeps the ledger.

    It owns its reservations (``book``, a :class:`ReservationBook`) and offers its reads
    as ``view`` (a :class:`SchedulerView`), which also says why a queued request waits;
    its own methods are the writes. ``reservation_guard``: seconds a lease that states no
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
        held_outside: Mapping[str, str] | None = None,
        rates: RateCard | None = None,
        spot: SpotPolicy | None = None,
        fair_share_half_life: float | None = None,
    ) -> None:
        if queue_policy not in QUEUE_POLICIES:
            raise ValueError(
                f"queue_policy must be 'best-effort' or 'strict', not {queue_policy!r}"
            )
        self.engine = engine
        self.inventory = nodes
        self.held_outside = dict(held_outside or {})  # device id -> who, outside gpuhub
        self.clock = clock
        self.default_user_quota = default_user_quota
        self.queue_policy = queue_policy
        if not 0 <= reservation_guard < float("inf"):
            raise ValueError(f"reservation_guard must be seconds >= 0, not {reservation_guard!r}")
        self.reservation_guard = float(reservation_guard)
        self.store = Store(engine)
        self.ledger = Ledger(engine)
        self.rates = rates or RateCard(engine, clock=clock)  # prices each grant
        self.spot = spot or SpotPolicy()  # preemptible capacity, off unless configured
        #: Picks the spot leases guaranteed requests preempt, and gives them notice.
        self.preemption = Preemption(self.spot, self.store)
        #: Decayed usage and the fair-share factors the queue order uses (off without a half-life).
        self.fair = FairShare(fair_share_half_life, self.store)
        #: The latest GPU activity of each active lease (memory only).
        self.activity_board = ActivityBoard()
        #: The reservations and their placement rule (written only through this scheduler).
        self.book = ReservationBook(nodes, guard=self.reservation_guard)
        #: The read API: what other parts are handed to read.
        self.view = SchedulerView(self)
        self.load()

    # -- state -----------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory picture from the database; grant what now fits."""
        self.pool = Pool(self.inventory, self.held_outside)
        self.live: dict[int, Lease] = {}
        self._by_key: dict[tuple[str, str], int] = {}  # (user, idempotency key) -> live lease
        self.wait_queue = WaitQueue()
        now = self.clock()
        with self.store.loading() as conn:
            self.store.sync_devices(conn, self.inventory, now)
            self.quotas: dict[tuple[str, str], QuotaSpec] = self.store.load_quotas(conn)
            self.accounting = Accounting(
                self.store, self.live, self.quotas, self.default_user_quota,
                highest_rate=lambda shape: self.rates.highest(shape, self.inventory),
                spot_discount=self.spot.discount,
            )  # fmt: skip
            self.next_id = self.store.next_lease_id(conn)
            for lease in self.store.load_live(conn):
                self._remember(lease)
            self._keep_unexplained_claims(conn)
            self.book.load(conn, now)
            self.fair.load(conn, now)
            self.fair.rerank(self.live, self.quotas, self.wait_queue, now)
            self._dispatch(conn, now)
        self.activity_board.keep_only({x.id for x in self.live.values() if x.status == ACTIVE})

    def _keep_unexplained_claims(self, conn: Connection) -> None:
        """Keep slots out of use that claims (the truth) hold but no live lease explains."""
        for c in self.store.load_claims(conn):
            if self.pool.knows(c.device_id) and self.pool.holder(c.device_id, c.slot) is None:
                log.warning(
                    "device %s slot %s is claimed by lease %s in the database but not by its "
                    "record; keeping it out of use", c.device_id, c.slot, c.lease_id,
                )  # fmt: skip
                self.pool.claim(c.lease_id, "", ((c.device_id, c.slot),), Fraction(0))

    def _remember(self, lease: Lease) -> None:
        self.live[lease.id] = lease
        self.accounting.add(lease)
        if lease.idempotency_key is not None:
            self._by_key[(lease.user, lease.idempotency_key)] = lease.id
        if lease.status == ACTIVE:
            self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)
        else:
            self.wait_queue.add(lease)

    def _forget(self, lease: Lease, was: str) -> None:
        """Drop an ended lease from the live picture; ``was`` is its status before it ended."""
        del self.live[lease.id]
        self.activity_board.drop(lease.id)
        self.accounting.remove(lease, was)
        if lease.idempotency_key is not None:
            self._by_key.pop((lease.user, lease.idempotency_key), None)
        if was == ACTIVE:
            self.pool.free(lease.id, lease.node or "", lease.slots, lease.units)
            self.fair.ended(lease)

    def _guarded(self, fn: Callable[[Connection], Any], lazy: bool = False) -> Any:
        """Run ``fn`` in one transaction; on any failure resync memory from the database.
        ``lazy``: a commit that grants nothing need not wait for its flush (Store.guarded)."""
        return self.store.guarded(fn, self.load, lazy=lazy)

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
        tier: str = GUARANTEED,
    ) -> Lease:
        """Ask for ``shape`` as ``user`` through ``group`` in ``tier`` (``guaranteed`` or
        ``spot``): granted now, queued, or refused.

        Raises :class:`QuotaExceeded`, :class:`Unsatisfiable` or :class:`Forbidden`
        without changing anything.
        """
        return self._create(
            user, user_groups, shape, group, profile, label, hours, tier, None, None
        )

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
        tier: str = GUARANTEED,
    ) -> tuple[Lease, bool]:
        """:meth:`request` at most once per ``(user, idempotency_key)``.

        Returns ``(lease, replayed)``. The first request with a key creates the lease
        (``replayed`` False); the same request with that key again returns that lease as
        it is now, live or ended, also after a restart (``replayed`` True). The key with
        a different request raises :class:`IdempotencyConflict`. A refused request is not
        remembered: a retry with its key is decided again.
        """
        digest = request_digest(
            user=user, shape=shape, group=group, profile=profile, label=label, hours=hours,
            tier=tier,
        )  # fmt: skip
        known = self.lease_by_key(user, idempotency_key)
        if known is not None:
            if known.request_digest != digest:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} of {user} was used for lease "
                    f"{known.id} with a different request; send a new key for a new request",
                    field="Idempotency-Key",
                )
            return known, True
        asked = (user, user_groups, shape, group, profile, label, hours, tier)
        return self._create(*asked, idempotency_key, digest), False

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
        tier: str,
        key: str | None,
        digest: str | None,
    ) -> Lease:
        user_groups = sorted(set(user_groups))
        now = self.clock()
        group, units = admit(
            pool=self.pool, accounting=self.accounting, quotas=self.quotas, user=user,
            user_groups=user_groups, shape=shape, group=group, profile=profile, hours=hours,
            now=now, tier=tier, spot=self.spot, label=label,
        )  # fmt: skip
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
            tier=tier,
        )
        self.fair.factors([lease], self.live, self.quotas, now)

        def write(conn: Connection) -> Lease:
            self.next_id += 1
            placement = None
            if self.queue_policy == "best-effort" or not self.wait_queue.ahead_of(lease, self.live):
                placement = self.book.place(lease, now, self.pool)
            if placement is not None and tier == SPOT and self.preemption.reclaiming(self.live):
                placement = None  # what notices free is for the guaranteed requests waiting
            if placement is not None:
                _place(lease, placement, now, self.rates, self.spot)
                lease.borrowed_from = self.accounting.loan_for(lease, queued_too=True)
            self.store.insert_lease(conn, lease)
            if placement is not None:
                self.store.insert_claims(conn, lease)
            self._remember(lease)
            # reserved devices may serve it past the queue, or spot leases go for it
            reserved = len(self.book) and self.queue_policy == "strict"
            if placement is None and (reserved or self.accounting.preemptible):
                self._dispatch(conn, now)
            return lease

        lease = self._guarded(write, lazy=True)
        if log.isEnabledFor(logging.INFO):
            log.info("%s tier=%s", log_line(lease), tier)
        return lease

    def release(self, lease_id: int, *, reason: str = "released") -> Lease:
        """End a lease (release if active, cancel if queued). Ending an ended lease is a no-op."""
        lease = self.live.get(lease_id)
        if lease is None:
            return self.view.get(lease_id)
        now = self.clock()

        def write(conn: Connection) -> Lease:
            was = lease.status
            lease.status = RELEASED if was == ACTIVE else CANCELLED
            lease.ended_at = now
            lease.end_reason = reason
            self.store.end_lease(conn, lease, was)
            self._forget(lease, was)
            # freed devices, or (strict order) a request no longer ahead of the others
            if was == ACTIVE or self.queue_policy == "strict":
                self._dispatch(conn, now)
            return lease

        lease = self._guarded(write, lazy=True)
        if log.isEnabledFor(logging.INFO):
            log.info("%s reason=%s", log_line(lease), reason)
        return lease

    def rebind(self, lease_id: int, indices: Iterable[int] | Mapping[str, Iterable[int]]) -> Lease:
        """Move an active lease of whole GPUs onto the GPUs ``indices`` of its node (of a
        multi-node lease: node -> indices, for each of its nodes): the devices a cluster
        engine gave its work (Slurm picks the indices for ``--gres``).

        Another lease holding one of them takes a GPU this lease leaves in exchange (its
        work got other devices, read back in turn): no slot is ever held twice. Raises
        ``ValueError`` (changing nothing) where the lease holds anything but whole GPUs, the
        count differs, the node has no such GPU, or something outside gpuhub holds it;
        NotFound when the lease is not active.
        """
        moves = plan_rebind(lease_id, indices, self.pool, self.live)
        lease = self.live[lease_id]
        if not moves:
            return lease

        def write(conn: Connection) -> Lease:
            moved = [self.live[lid] for lid in moves]
            for x in moved:  # every old claim goes before any new one is written
                conn.execute(DELETE_CLAIMS, {"lid": x.id})
                self.pool.free(x.id, x.node or "", x.slots, x.units)
            for x in moved:
                x.devices = moves[x.id]
                self.store.move_lease(conn, x)
                self.pool.claim(x.id, x.node or "", x.slots, x.units)
            return lease

        self._guarded(write)
        log.info("%s", moves_line(lease, moves))
        return lease

    def _grant(self, conn: Connection, lease: Lease, placement: Placement, now: float) -> None:
        """Grant a queued lease (already counted as held) the slots of ``placement``."""
        queued_units = lease.units
        _place(lease, placement, now, self.rates, self.spot)
        lease.borrowed_from = self.accounting.loan_for(lease, queued_too=False)
        self.store.grant_lease(conn, lease)
        self.accounting.granted(lease, queued_units)
        self.pool.claim(lease.id, lease.node or "", lease.slots, lease.units)

    def _dispatch(self, conn: Connection, now: float) -> None:
        """Grant queued requests that fit, in priority-then-age order.

        Requests of one shape fit exactly when each other fits, so the first that does not
        blocks its shape; under reservations, its shape for users under the same rules
        (members and non-members of a reserved group differ), the others set aside.
        """
        blocked: set[tuple] = set()
        aside: list[tuple] = []  # (bucket, entry): its shape and rules are blocked
        try:
            self._serve(conn, now, blocked, aside)
        finally:
            self.wait_queue.put_back(aside)
        self.preemption.serve(conn, self.pool, self.live, self.book, self.accounting, now)

    def _serve(self, conn: Connection, now: float, blocked: set, aside: list) -> None:
        members_only = False  # strict: a request that reservations alone hold back came first
        while True:
            head = self.wait_queue.head(self.live, blocked)
            if head is None:
                return
            bucket, lease = head
            if lease.tier == SPOT and self.preemption.reclaiming(self.live):
                blocked.add(bucket)  # freed devices are for the guaranteed requests waiting
                continue
            rules = self.book.rules(lease, now)  # None without reservations
            if rules is not None and (bucket, rules) in blocked:
                aside.append((bucket, self.wait_queue.pop(bucket)))
                continue
            problem = self.accounting.quota_problem(
                lease.user, lease.group, lease.shape, lease.profile, lease.units, lease.hours, now,
                queued_too=False, conn=conn, label=lease.label, tier=lease.tier,
            )  # fmt: skip
            if problem:
                self.wait_queue.pop(bucket)
                lease.status, lease.ended_at, lease.end_reason = REFUSED, now, problem
                self.store.end_lease(conn, lease, QUEUED)
                self._forget(lease, QUEUED)
                continue
            if members_only:  # only onto the devices of its group's open reservations
                placement = self.book.place_reserved(lease, now, self.pool)
            elif rules is None:
                placement = self.pool.place(lease.shape)
            else:
                placement = self.pool.place(lease.shape, *rules)
            if placement is None:
                if self.queue_policy == "strict":
                    if not (members_only or self.book.blocks(lease, now, self.pool)):
                        return
                    members_only = True
                    aside.append((bucket, self.wait_queue.pop(bucket)))
                    continue
                if rules is None:
                    blocked.add(bucket)
                else:
                    blocked.add((bucket, rules))
                    aside.append((bucket, self.wait_queue.pop(bucket)))
                continue
            self.wait_queue.pop(bucket)
            self._grant(conn, lease, placement, now)
            log.info(
                "lease %s granted from queue: user=%s node=%s", lease.id, lease.user, lease.node
            )

    # -- quotas ----------------------------------------------------------------------

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

    # -- reservations ----------------------------------------------------------------

    def reserve(
        self,
        *,
        group: str,
        shape: WholeGpus | MigSlice | SharedGpu,
        count: int,
        start: float,
        end: float,
        repeat: str = "once",
        timezone: str = "UTC",
        note: str = "",
        by: str,
    ) -> Reservation:
        """Reserve ``count`` devices of ``shape`` for ``group`` in the windows ``start``-
        ``end`` (the first), once or weekly at the same wall-clock time in ``timezone``.

        Picks the devices now, among those no reservation with an overlapping window holds.
        Raises :class:`ReservationConflict` when too few are left, :class:`Unsatisfiable`
        when the pool does not have them at all, and :class:`SchedulerError` naming the
        field for a bad value; nothing changes then.
        """
        r = self.book.plan(
            group=group, shape=shape, count=count, start=start, end=end, repeat=repeat,
            timezone=timezone, note=note, by=by, now=self.clock(),
        )  # fmt: skip
        return self._guarded(lambda conn: self.book.add(conn, r))

    def unreserve(self, rid: int, *, by: str) -> Reservation:
        """Delete a reservation; its devices serve everyone at once (queued requests are
        granted on them now). Returns it as it was; :class:`NotFound` if there is none."""
        r = self.book.get(rid)
        now = self.clock()

        def write(conn: Connection) -> None:
            self.book.remove(conn, rid, now=now, by=by)
            self._dispatch(conn, now)

        self._guarded(write)
        r.deleted_at, r.deleted_by = now, by
        return r

    def tick(self) -> None:
        """Release leases overdue after a notice, serve the queue: at ``view.next_boundary()``."""
        now = self.clock()
        for r, change in self.book.tick(now):
            log.info("reservation %s for %s: window %s", r.id, r.group, change)
        for x in self.preemption.overdue(self.live.values(), now):
            self.release(x.id, reason=PREEMPTED)
        self.fair.rerank(self.live, self.quotas, self.wait_queue, now)
        if not self.wait_queue.any_waiting():
            return
        self._guarded(lambda conn: self._dispatch(conn, now))

    # -- the inventory ---------------------------------------------------------------

    def refresh_inventory(
        self, nodes: list[Node], held_outside: Mapping[str, str] | None = None
    ) -> InventoryChange | None:
        """Take a new picture of the inventory: ``nodes``, and who holds which devices outside
        gpuhub (``held_outside``). The pool is made anew (:mod:`.pool`): unusable nodes and
        devices held outside get no new grants, running leases stay; the device records
        follow; queued requests that now fit are granted. None when nothing changed."""
        nodes, outside = list(nodes), dict(held_outside or {})
        if nodes == self.inventory and outside == self.held_outside:
            return None
        change = compare(self.inventory, self.held_outside, nodes, outside)
        queued = [x for x in self.live.values() if x.status == QUEUED]
        self.inventory, self.held_outside, now = nodes, outside, self.clock()
        self.book.use_inventory(nodes)
        try:
            with self.store.loading() as conn:  # a transaction that reads, as at load
                if change.devices_changed:
                    self.store.sync_devices(conn, nodes, now)
                self.pool = Pool(nodes, outside)
                for x in self.live.values():
                    if x.status == ACTIVE:
                        self.pool.claim(x.id, x.node or "", x.slots, x.units)
                self._keep_unexplained_claims(conn)
                self._dispatch(conn, now)
        except Exception:
            self.load()  # memory from the database again, on the new inventory
            raise
        change = replace(change, granted=tuple(x.id for x in queued if x.status == ACTIVE))
        return log_change(log, change, nodes, outside, self.live.values())

    # -- GPU activity ------------------------------------------------------------------

    def report_activity(self, lease_id: int, report: ActivityReport) -> Activity:
        """Keep a lease's latest activity (memory only); refused unless the lease is active."""
        return self.activity_board.report(self.view.get(lease_id), report, self.clock())

    # -- reads, for those that hold the scheduler to write (jobs, tests, benchmarks): each is
    # the view's method of that name. The service is handed ``view`` and reads through it.

    pool_view = view_read("pool_view")
    get = view_read("get")
    live_lease = view_read("live_lease")
    live_leases = view_read("live_leases")
    leases = view_read("leases")
    queue = view_read("queue")
    position = view_read("position")
    waiting_all = view_read("waiting_all")
    quota_for_user = view_read("quota_for_user")
    quota_status = view_read("quota_status")
    activity = view_read("activity")
    activities = view_read("activities")
    reservations = view_read("reservations")
    next_boundary = view_read("next_boundary")
    total_gpu_hours = view_read("total_gpu_hours")
    usage = view_read("usage")
