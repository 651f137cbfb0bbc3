"""The scheduler's read API: :class:`SchedulerView`, what other parts may ask.

The scheduler makes one view (``Scheduler.view``) over itself seen as a
:class:`~gpuhub.scheduler.state.SchedulerState`, and the service is handed that view for
every read: the pool view, quotas, leases, the queue, why a request waits, a preview of
a request, reservations, GPU activity and the ledger's reports. The view hands out copies
and views, never the scheduler's dicts, and writes nothing; every write (request,
release, quotas, reservations, activity reports) is a method of the scheduler itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from ..terms import LIVE_STATUSES, QUEUED
from .activity import Activity
from .admission import admit, count_noun
from .errors import NotFound, SchedulerError
from .lease import Lease, queue_order
from .ledger import Ledger
from .pool import PoolView
from .quota import QuotaSpec
from .reservations import Reservation
from .shapes import MigSlice, SharedGpu, WholeGpus
from .state import SchedulerState
from .waiting import WaitingExplainer


class SchedulerView:
    """Leases, the queue and why it waits, quotas, the pool view, reservations, activity
    and the ledger's reports: the scheduler's state, read only."""

    def __init__(self, state: SchedulerState) -> None:
        self._state = state
        self._waiting = WaitingExplainer(state)

    @property
    def clock(self) -> Callable[[], float]:
        """The scheduler's clock (every ``now`` a view shows comes from it)."""
        return self._state.clock

    @property
    def ledger(self) -> Ledger:
        """The usage reports, safe to run in a worker thread (they only read the database)."""
        return self._state.ledger

    @property
    def default_user_quota(self) -> QuotaSpec | None:
        """The quota of users without one of their own (None: unlimited)."""
        return self._state.default_user_quota

    # -- the pool and quotas -----------------------------------------------------------

    def pool_view(self) -> PoolView:
        """Every node and GPU with its state and holding lease ids, and the pool's units."""
        return self._state.pool.view()

    def quota(self, kind: str, name: str) -> QuotaSpec | None:
        """The quota set for user or group ``name`` (``kind`` "user" or "group"), or None.

        A user without one is under the default (see :meth:`quota_for_user`).
        """
        return self._state.quotas.get((kind, name))

    def all_quotas(self) -> dict[tuple[str, str], QuotaSpec]:
        """Every quota set, by (kind, name), sorted."""
        return dict(sorted(self._state.quotas.items()))

    def quota_for_user(self, user: str) -> QuotaSpec | None:
        """The user's own quota, or the configured default; None means unlimited."""
        return self._state.accounting.quota_for_user(user)

    def quota_status(self, kind: str, name: str, spec: QuotaSpec | None) -> dict[str, Any]:
        """A quota with what is in use and left now (for ``me`` and the quota API)."""
        return self._state.accounting.quota_status(kind, name, spec, self._state.clock())

    # -- leases and the queue ----------------------------------------------------------

    def live_lease(self, lease_id: int) -> Lease | None:
        """A queued or active lease by id, or None (ended or unknown)."""
        return self._state.live.get(lease_id)

    def live_leases(self, status: str | Iterable[str] | None = None) -> list[Lease]:
        """Queued and active leases (or those of ``status``), oldest first."""
        if status is None:
            status = LIVE_STATUSES
        wanted = {status} if isinstance(status, str) else set(status)
        live = self._state.live.values()
        return sorted((x for x in live if x.status in wanted), key=lambda x: x.id)

    def get(self, lease_id: int) -> Lease:
        """A lease by id, live or ended."""
        lease = self._state.live.get(lease_id)
        if lease is None:
            lease = self._state.store.lease(lease_id)
        if lease is None:
            raise NotFound(f"no lease {lease_id}")
        return lease

    def leases(
        self, *, user: str | None = None, status: Iterable[str] | None = None, limit: int = 1000
    ) -> list[Lease]:
        """Leases, newest first; live ones come from memory, ended ones from the ledger."""
        status = set(status or LIVE_STATUSES)
        out = [
            lease for lease in self._state.live.values()
            if lease.status in status and (user is None or lease.user == user)
        ]  # fmt: skip
        ended = status - set(LIVE_STATUSES)
        if ended:
            out += self._state.store.leases(ended, user=user, limit=limit)
        return sorted(out, key=lambda x: -x.id)[:limit]

    def queue(self) -> list[Lease]:
        """Queued requests in the order they will be considered."""
        return queue_order(self._state.live.values())

    def queue_length(self) -> int:
        """How many requests wait."""
        return sum(1 for x in self._state.live.values() if x.status == QUEUED)

    def position(self, lease: Lease) -> int | None:
        """1-based place in the queue, or None when the lease is not queued."""
        if lease.status != QUEUED:
            return None
        return 1 + sum(
            1 for q in self._state.live.values() if q.status == QUEUED and q.order < lease.order
        )

    def waiting(self, lease: Lease) -> dict[str, Any] | None:
        """Why ``lease`` waits, when it may be granted and what is free instead; None
        unless it is queued (:mod:`gpuhub.scheduler.waiting`)."""
        return self._waiting.waiting(lease)

    def waiting_all(self, leases: Iterable[Lease]) -> dict[int, dict[str, Any]]:
        """:meth:`waiting` of each queued lease among ``leases``, by lease id, with one
        replay of the queue for all of them."""
        return self._waiting.waiting_all(leases)

    def preview(
        self,
        *,
        user: str,
        user_groups: Iterable[str],
        shape: WholeGpus | MigSlice | SharedGpu,
        group: str | None = None,
        profile: str | None = None,
        hours: float | None = None,
        tier: str = "guaranteed",
    ) -> dict[str, Any]:
        """What :meth:`Scheduler.request <gpuhub.scheduler.core.Scheduler.request>` would do
        now, without doing it (for spawn forms).

        ``outcome`` is ``grant``, ``queue`` or ``refuse``; ``message`` says it for people:
        "3 of 8 H100 GPUs free", "2 requests ahead of you", or the refusal's reason.
        """
        state = self._state
        user_groups = sorted(set(user_groups))
        free, total, simulated = state.pool.count(shape)
        out: dict[str, Any] = {
            "free": free, "total": total, "simulated": simulated, "ahead": None, "units": None,
        }  # fmt: skip
        now = state.clock()
        try:
            group, units = admit(
                pool=state.pool, accounting=state.accounting, quotas=state.quotas, user=user,
                user_groups=user_groups, shape=shape, group=group, profile=profile,
                hours=hours, now=now, tier=tier, spot=state.spot,
            )  # fmt: skip
        except SchedulerError as e:
            return {**out, "outcome": "refuse", "message": e.message, "error": e.code}
        probe = Lease(
            id=state.next_id, user=user, group=group, status=QUEUED, shape=shape, units=units,
            priority=state.accounting.priority(user, group), profile=profile, requested_at=now,
            hours=hours, user_groups=user_groups, tier=tier,
        )  # fmt: skip
        state.fair.factors([probe], state.live, state.quotas, now)  # its place in the queue
        out.update(group=group, units=float(units))
        noun = count_noun(shape)
        ahead = sum(1 for q in state.live.values() if q.status == QUEUED and q.order < probe.order)
        if (state.queue_policy == "best-effort" or not ahead) and state.book.place(
            probe, now, state.pool
        ) is not None:
            return {**out, "outcome": "grant", "message": f"{free} of {total} {noun} free"}
        behind = f"{ahead} request{'s' if ahead > 1 else ''} ahead of you"
        held = state.book.held_back(probe, now, state.pool)  # free devices kept for a group
        if held:
            msg = f"{held}; {behind}" if ahead else held
        elif ahead:
            msg = f"{behind}; {free} of {total} {noun} free"
        else:
            msg = f"all {total} {noun} are in use; you would be next"
        return {**out, "outcome": "queue", "ahead": ahead, "message": msg}

    # -- reservations ------------------------------------------------------------------

    def reservations(self, *, group: str | None = None) -> list[Reservation]:
        """Reservations not deleted (of ``group`` if given), by id."""
        return self._state.book.all(group=group)

    def reservation(self, rid: int) -> Reservation:
        """A reservation by id; :class:`NotFound` if there is none (or it was deleted)."""
        return self._state.book.get(rid)

    def next_boundary(self) -> float | None:
        """The next time after now at which placement rules change: a window opens or
        closes, or the guard before a window starts to keep leases without hours off; or
        preemption may act: a spot lease reaches its minimum runtime while guaranteed
        requests wait, or a lease under notice is overdue. The service calls
        :meth:`Scheduler.tick <gpuhub.scheduler.core.Scheduler.tick>` then."""
        now = self._state.clock()
        times = (
            self._state.book.next_boundary(now),
            self._state.preemption.next_boundary(self._state.live.values(), now),
        )
        return min((t for t in times if t is not None), default=None)

    def spot_policy(self) -> dict[str, float | bool]:
        """Whether spot capacity is offered, at what discount, and how it is taken back."""
        return self._state.spot.to_dict()

    # -- GPU activity and reports ------------------------------------------------------

    def activity(self, lease_id: int) -> Activity | None:
        """The latest GPU activity an active lease's server reported, or None."""
        return self._state.activity_board.get(lease_id)

    def activities(self) -> list[Activity]:
        """The latest GPU activity of every active lease that reported, by lease id."""
        return self._state.activity_board.all()

    def total_gpu_hours(self) -> float:
        """GPU-hours booked so far: every ended lease plus running ones up to now."""
        return self._state.ledger.total_gpu_hours(self._state.clock())

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
        return self._state.ledger.usage(
            start, end, now=self._state.clock(), user=user, group=group, by=by
        )


def view_read(name: str) -> Callable[..., Any]:
    """:class:`SchedulerView`'s read ``name`` (signature, docstring) as a method of the
    scheduler, reading through its ``view``: the scheduler offers its reads this way to
    those that hold it to write (jobs, tests, benchmarks)."""
    read_of_view = getattr(SchedulerView, name)

    @functools.wraps(read_of_view)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        return read_of_view(self.view, *args, **kwargs)

    return read
