"""The scheduler's read API: what other parts may ask (copies and views, never its dicts).

Mixed into :class:`~gpuhub.scheduler.core.Scheduler`; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..terms import LIVE_STATUSES, QUEUED
from .activity import Activity, ActivityBoard, ActivityReport
from .errors import NotFound
from .lease import Lease
from .ledger import Ledger
from .pool import Pool, PoolView
from .quota import QuotaSpec
from .store import Store


class Reads:
    """Leases, the queue, quotas, the pool view, activity and the ledger's reports."""

    # the scheduler's own state, read here and never written
    clock: Callable[[], float]
    pool: Pool
    live: dict[int, Lease]
    quotas: dict[tuple[str, str], QuotaSpec]
    store: Store
    ledger: Ledger
    _activity: ActivityBoard

    def pool_view(self) -> PoolView:
        """Every node and GPU with its state and holding lease ids, and the pool's units."""
        return self.pool.view()

    def quota(self, kind: str, name: str) -> QuotaSpec | None:
        """The quota set for user or group ``name`` (``kind`` "user" or "group"), or None.

        A user without one is under the default (see :meth:`quota_for_user`).
        """
        return self.quotas.get((kind, name))

    def all_quotas(self) -> dict[tuple[str, str], QuotaSpec]:
        """Every quota set, by (kind, name), sorted."""
        return dict(sorted(self.quotas.items()))

    def live_lease(self, lease_id: int) -> Lease | None:
        """A queued or active lease by id, or None (ended or unknown)."""
        return self.live.get(lease_id)

    def live_leases(self, status: str | Iterable[str] | None = None) -> list[Lease]:
        """Queued and active leases (or those of ``status``), oldest first."""
        if status is None:
            status = LIVE_STATUSES
        wanted = {status} if isinstance(status, str) else set(status)
        return sorted((x for x in self.live.values() if x.status in wanted), key=lambda x: x.id)

    def queue_length(self) -> int:
        """How many requests wait."""
        return sum(1 for x in self.live.values() if x.status == QUEUED)

    def get(self, lease_id: int) -> Lease:
        """A lease by id, live or ended."""
        if lease_id in self.live:
            return self.live[lease_id]
        lease = self.store.lease(lease_id)
        if lease is None:
            raise NotFound(f"no lease {lease_id}")
        return lease

    def leases(
        self, *, user: str | None = None, status: Iterable[str] | None = None, limit: int = 1000
    ) -> list[Lease]:
        """Leases, newest first; live ones come from memory, ended ones from the ledger."""
        status = set(status or LIVE_STATUSES)
        out = [
            lease for lease in self.live.values()
            if lease.status in status and (user is None or lease.user == user)
        ]  # fmt: skip
        ended = status - set(LIVE_STATUSES)
        if ended:
            out += self.store.leases(ended, user=user, limit=limit)
        return sorted(out, key=lambda x: -x.id)[:limit]

    def queue(self) -> list[Lease]:
        """Queued requests in the order they will be considered."""
        return sorted((x for x in self.live.values() if x.status == QUEUED), key=lambda x: x.order)

    def position(self, lease: Lease) -> int | None:
        """1-based place in the queue, or None when the lease is not queued."""
        if lease.status != QUEUED:
            return None
        return 1 + sum(
            1 for q in self.live.values() if q.status == QUEUED and q.order < lease.order
        )

    def activity(self, lease_id: int) -> Activity | None:
        """The latest GPU activity an active lease's server reported, or None."""
        return self._activity.get(lease_id)

    def activities(self) -> list[Activity]:
        """The latest GPU activity of every active lease that reported, by lease id."""
        return self._activity.all()

    def report_activity(self, lease_id: int, report: ActivityReport) -> Activity:
        """Keep a lease's latest activity (memory only); refused unless the lease is active."""
        return self._activity.report(self.get(lease_id), report, self.clock())

    # -- reports (read only; the service runs them in a worker thread via ``ledger``) ---

    def total_gpu_hours(self) -> float:
        """GPU-hours booked so far: every ended lease plus running ones up to now."""
        return self.ledger.total_gpu_hours(self.clock())

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
        return self.ledger.usage(start, end, now=self.clock(), user=user, group=group, by=by)
