"""Spot capacity: preemptible leases on devices that would otherwise sit idle, and the
preemption that takes them back when guaranteed work needs the devices.

A spot lease (``tier="spot"``) is placed like any other, after the guaranteed requests
in queue order, charged its rate times :attr:`SpotPolicy.discount`, and counted against
the quotas' spot allowance (``spot_max_units``, ``spot_gpu_hours``) instead of their
guaranteed one. When a guaranteed request cannot be placed, :class:`Preemption` picks
victims among the active spot leases by policy:

* youngest first (the least work lost), never one younger than ``min_runtime_s``;
* never a lease of a reservation's member on that reservation's devices during its
  window;
* only as many as make the request fit, counting the devices that leases already under
  notice are about to give back (so two waiters never claim the same leaving lease).

A victim gets a *notice*: ``notice_at`` (now) and ``deadline`` (now + ``grace_s``) are
written on its lease in the same transaction. Its holder (the job lifecycle: a signal and
a notice file, then SIGTERM, then kill) ends its work and releases the lease with reason
``preempted``; a lease still held ``kill_after_s`` past its deadline is released by the
scheduler itself. A notice is never taken back: the waiter may be granted elsewhere
meanwhile, and the capacity then serves the next request in the queue.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ..terms import ACTIVE, QUEUED
from .accounting import Accounting
from .lease import Lease, queue_order
from .pool import Placement, Pool
from .reservations import ReservationBook
from .store import Store

log = logging.getLogger("gpuhub.scheduler")

GUARANTEED = "guaranteed"
SPOT = "spot"
TIERS = (GUARANTEED, SPOT)
#: The end reason of a lease taken back for guaranteed work.
PREEMPTED = "preempted"


def _seconds(value: float, name: str, *, most: float = 7 * 86400) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"spot {name} must be a number of seconds, not {value!r}")
    if not 0 <= value <= most:
        raise ValueError(f"spot {name} must be 0 to {most:g} seconds, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class SpotPolicy:
    """Whether spot capacity is offered, its price and how it is taken back.

    ``discount``: the share of the rate a spot GPU-hour costs (0.3: 30 %); ``grace_s``:
    seconds from a notice to the deadline, to checkpoint; ``min_runtime_s``: a spot lease
    is never preempted younger than this; ``kill_after_s``: past the deadline the
    scheduler releases a lease its holder did not.
    """

    enabled: bool = False
    discount: float = 0.3
    grace_s: float = 120.0
    min_runtime_s: float = 300.0
    kill_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"spot enabled must be true or false, not {self.enabled!r}")
        d = self.discount
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d <= 1:
            raise ValueError(f"spot discount must be a number from 0 to 1, not {d!r}")
        _seconds(self.grace_s, "grace_s", most=86400)
        _seconds(self.min_runtime_s, "min_runtime_s")
        _seconds(self.kill_after_s, "kill_after_s", most=3600)

    def discount_of(self, tier: str) -> float:
        """What share of the rate a lease of ``tier`` pays."""
        return float(self.discount) if tier == SPOT else 1.0

    def to_dict(self) -> dict[str, float | bool]:
        """The policy as the API shows it."""
        return {
            "enabled": self.enabled,
            "discount": float(self.discount),
            "grace_s": self.grace_s,
            "min_runtime_s": self.min_runtime_s,
        }


def _take(pool: Pool, lease_id: int, placement: Placement) -> None:
    pool.claim(lease_id, placement.node, placement.slots, placement.units)


def _give_back(pool: Pool, lease: Lease) -> None:
    pool.free(lease.id, lease.node or "", lease.slots, lease.units)


def _nodes(lease_or_placement: Lease | Placement) -> set[str]:
    return set((lease_or_placement.node or "").split(","))


class Preemption:
    """Picks spot leases to preempt for guaranteed requests that wait, and writes their
    notices (inside the scheduler's transaction; the scheduler owns one).

    After each serving of the queue, :meth:`serve` goes through the guaranteed requests
    still waiting, in queue order, on a copy of the pool in which every lease under
    notice is already gone and each earlier waiter already placed: notices are given only
    for capacity no earlier waiter counts on.
    """

    def __init__(self, policy: SpotPolicy, store: Store) -> None:
        self.policy = policy
        self.store = store

    def serve(
        self,
        conn: Connection,
        pool: Pool,
        live: Mapping[int, Lease],
        book: ReservationBook,
        accounting: Accounting,
        now: float,
    ) -> list[Lease]:
        """Give notices to the preemptible leases (spot, or borrowed in a cohort) that must
        go for the waiting guaranteed requests (those their quotas allow now) to fit; the
        victims."""
        if not accounting.preemptible:  # no spot or borrowed lease is active
            return []
        plan = pool.copy()
        for x in live.values():
            if x.status == ACTIVE and x.notice_at is not None:
                _give_back(plan, x)
        victims: list[Lease] = []
        hopeless: set[tuple] = set()  # (shape bucket, lender, rules): preempting cannot help
        for waiter in queue_order(live.values()):
            if waiter.tier != GUARANTEED or accounting.quota_problem(
                waiter.user, waiter.group, waiter.shape, waiter.profile, waiter.units,
                waiter.hours, now, queued_too=False, conn=conn, label=waiter.label,
            ):  # fmt: skip
                continue
            # within its group's own share, it takes back what its group lent first
            lender = None
            if waiter.group and not accounting.needs_loan(
                waiter.group, waiter.units, queued_too=False
            ):
                lender = waiter.group
            means = (waiter.shape.bucket, lender, book.rules(waiter, now))
            if means in hopeless:
                continue  # the same shape cannot fit by the same means: no plan needed
            chosen = self._make_room(conn, waiter, plan, live, book, now, lender)
            if chosen is None:
                hopeless.add(means)
            else:
                victims += chosen
        return victims

    def _make_room(
        self,
        conn: Connection,
        waiter: Lease,
        plan: Pool,
        live: Mapping[int, Lease],
        book: ReservationBook,
        now: float,
        lender: str | None,
    ) -> list[Lease] | None:
        """Notices for the leases that must go for ``waiter`` to fit in ``plan`` (none when
        leases already under notice make room): those its group (``lender``) lent, then
        spot ones; None when preempting cannot make it fit. ``plan`` then has the waiter
        placed and the victims gone."""
        placement = book.place(waiter, now, plan)
        if placement is not None:  # leaving leases make room: count on them, no new notice
            _take(plan, waiter.id, placement)
            return []
        trial, chosen = plan.copy(), []
        for victim in self.candidates(live.values(), book, now, lender):
            _give_back(trial, victim)
            chosen.append(victim)
            placement = book.place(waiter, now, trial)
            if placement is not None:
                break
        else:
            return None
        where = _nodes(placement)
        chosen = [x for x in chosen if _nodes(x) & where]  # the others made no room for it
        for x in chosen:
            _give_back(plan, x)
            x.notice_at, x.deadline = now, now + self.policy.grace_s
            self.store.give_notice(conn, x)
            log.info("lease %s preempted for lease %s: notice given, deadline in %g s",
                     x.id, waiter.id, self.policy.grace_s)  # fmt: skip
        _take(plan, waiter.id, placement)
        return chosen

    def candidates(
        self, leases: Iterable[Lease], book: ReservationBook, now: float, lender: str | None = None
    ) -> list[Lease]:
        """The leases that may be preempted at ``now``: those borrowed from ``lender`` (a
        group taking its share back), then spot ones; each youngest first."""
        ripe = now - self.policy.min_runtime_s
        out = [
            x for x in leases
            if x.status == ACTIVE and x.notice_at is None
            and (x.tier == SPOT or (lender is not None and x.borrowed_from == lender))
            and (x.granted_at or now) <= ripe and not book.protects(x, now)
        ]  # fmt: skip
        return sorted(out, key=lambda x: (x.borrowed_from is None, -(x.granted_at or 0.0), -x.id))

    @staticmethod
    def reclaiming(live: Mapping[int, Lease]) -> bool:
        """Whether leases are under notice: guaranteed requests wait for what they free, so
        no spot request is granted meanwhile (it would take what they count on)."""
        return any(x.deadline is not None and x.status == ACTIVE for x in live.values())

    def overdue(self, leases: Iterable[Lease], now: float) -> list[Lease]:
        """Leases under notice still held ``kill_after_s`` past their deadline."""
        late = now - self.policy.kill_after_s
        return [
            x for x in leases
            if x.status == ACTIVE and x.deadline is not None and x.deadline <= late
        ]  # fmt: skip

    def next_boundary(self, leases: Iterable[Lease], now: float) -> float | None:
        """The next time preemption may change something: a spot lease reaches its
        minimum runtime while guaranteed requests wait, or one under notice is overdue."""
        if not self.policy.enabled:
            return None
        leases = list(leases)
        waiting = any(x.status == QUEUED and x.tier == GUARANTEED for x in leases)
        times = []
        for x in leases:
            if x.status != ACTIVE:
                continue
            if x.deadline is not None:
                times.append(x.deadline + self.policy.kill_after_s)
            elif waiting and x.tier == SPOT and x.granted_at is not None:
                times.append(x.granted_at + self.policy.min_runtime_s)
        return min((t for t in times if t > now), default=None)
