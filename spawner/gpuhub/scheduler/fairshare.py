"""Fair share over time: queue order between groups, and between the users of a group,
by their decayed usage relative to their shares (Slurm's classic fair-share factor).

Usage is GPU-hours decayed with a half-life (:attr:`FairShare.half_life_s`; Slurm's
default is 7 days): an hour used a half-life ago counts half. A group's factor is
``2 ** -(U / S)``, ``U`` its share of everyone's decayed usage and ``S`` its share of the
groups' shares (a group quota's ``fair_share`` weight, else its ``max_units``, else 1;
requests without a group form one more group of weight 1). A user's factor within their
group is the same with the group's usage and equal shares among its users who used any.
A factor is 1 for who used nothing and falls towards 0 for who used far more than their
share.

The queue is served by priority first, then the group's factor, then the user's, then age
(:attr:`Lease.order <gpuhub.scheduler.lease.Lease.order>`); reservations place as before.
Factors are computed when a request is made and again at every :meth:`Scheduler.tick
<gpuhub.scheduler.core.Scheduler.tick>` (usage moves slowly: hours matter, not seconds),
never on the grant path. The usage of ended leases is read from the ledger once at load
and then kept as leases end; running leases count up to now. A lease that ended more than
:data:`HORIZON_HALF_LIVES` half-lives ago is dropped from memory as it is left unread at
load, so that a restarted service ranks the queue as the running one did.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..terms import ACTIVE, QUEUED
from .lease import Lease
from .queue import WaitQueue
from .quota import QuotaSpec
from .store import LEASES, Store

#: Leases that ended longer ago than this many half-lives weigh under 0.1 %: not read.
HORIZON_HALF_LIVES = 10
NO_GROUP = ""  # the key of requests made without a group
#: Decayed GPU-hours below this count as none used (3.6 ms of one GPU).
USED_ANY = 1e-6


def _check_half_life(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"fair-share half-life must be a number of seconds, not {value!r}")
    if not 60 <= value <= 366 * 86400:
        raise ValueError(f"fair-share half-life must be 60 s to 366 days, not {value!r}")
    return float(value)


class FairShare:
    """Decayed usage per group and per (group, user), and the factors the queue order
    uses. ``half_life_s`` None turns fair share off (every factor 1: priority, then age).

    Decayed usage is kept as of a reference time ``t0`` (a value ``u`` then is
    ``u * 2 ** -((t - t0) / half_life)`` at ``t``), moved forward at each
    :meth:`rerank` so that the numbers stay in range.
    """

    def __init__(self, half_life_s: float | None, store: Store) -> None:
        self.half_life_s = _check_half_life(half_life_s)
        self.store = store
        self.t0 = 0.0
        self.groups: dict[str, float] = defaultdict(float)  # at t0
        self.users: dict[tuple[str, str], float] = defaultdict(float)  # (group, user) at t0
        # the ended leases counted, soonest out of the horizon first:
        # (ended_at, n, group, user, value, t0 then); and how many each key holds
        self._kept: list[tuple[float, int, str, str, float, float]] = []
        self._held: Counter[tuple[str, str] | str] = Counter()
        self._n = itertools.count()

    @property
    def enabled(self) -> bool:
        """Whether queue order follows usage."""
        return self.half_life_s is not None

    # -- usage -------------------------------------------------------------------------

    def _decayed(self, units: float, start: float, end: float, at: float) -> float:
        """GPU-hours of ``units`` held from ``start`` to ``end``, decayed to time ``at``."""
        if end <= start:
            return 0.0
        h = self.half_life_s or 1.0
        k = math.log(2) / h
        return units * (math.exp(-k * (at - end)) - math.exp(-k * (at - start))) / k / 3600

    def load(self, conn: Connection, now: float) -> None:
        """Read the decayed usage of the leases that ended within the horizon."""
        self.groups.clear()
        self.users.clear()
        self._kept.clear()
        self._held.clear()
        self.t0 = now
        if not self.enabled:
            return
        t = LEASES.c
        q = select(t.user, t.group_name, t.granted_at, t.ended_at, t.units_num, t.units_den)
        q = q.where(t.granted_at.is_not(None), t.ended_at > self._since(now))
        for user, group, granted, ended, num, den in self.store.rows(q, conn):
            self._add(user, group, ended, self._decayed(num / den, granted, ended, now))

    def _since(self, now: float) -> float:
        """Leases that ended at or before this time are not counted at ``now``."""
        return now - HORIZON_HALF_LIVES * (self.half_life_s or 1.0)

    def _add(self, user: str, group: str | None, ended_at: float, value: float) -> None:
        g = group or NO_GROUP
        self.groups[g] += value
        self.users[(g, user)] += value
        heapq.heappush(self._kept, (ended_at, next(self._n), g, user, value, self.t0))
        self._held[g] += 1
        self._held[(g, user)] += 1

    def prune(self, now: float) -> None:
        """Forget the leases that ended out of the horizon at ``now``, as :meth:`load` would
        not read them: a key whose last lease goes is gone, the rest lose its share."""
        since = self._since(now)
        h = self.half_life_s or 1.0
        while self._kept and self._kept[0][0] <= since:
            _, _, g, user, value, then = heapq.heappop(self._kept)
            value *= 2 ** -((self.t0 - then) / h)
            for key, d in ((g, self.groups), ((g, user), self.users)):
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]
                    d.pop(key, None)  # type: ignore[call-overload]
                else:
                    d[key] = max(0.0, d[key] - value)  # type: ignore[index]

    def ended(self, lease: Lease) -> None:
        """Count an active lease that ended (memory only)."""
        if self.enabled and lease.granted_at is not None and lease.ended_at is not None:
            units = float(lease.units)
            self._add(
                lease.user,
                lease.group,
                lease.ended_at,
                self._decayed(units, lease.granted_at, lease.ended_at, self.t0),
            )

    # -- factors -----------------------------------------------------------------------

    def factors(
        self,
        leases: Iterable[Lease],
        live: Mapping[int, Lease],
        quotas: Mapping[tuple[str, str], QuotaSpec],
        now: float,
    ) -> None:
        """Set ``fair`` (group factor, user factor) on each of ``leases`` from the usage
        now: ended leases, and the live active ones up to ``now`` (memory only)."""
        leases = list(leases)
        if not self.enabled or not leases:
            for x in leases:
                x.fair = (1.0, 1.0)
            return
        self.prune(now)
        decay = 2 ** -((now - self.t0) / (self.half_life_s or 1.0))
        groups = {g: u * decay for g, u in self.groups.items()}
        users = {k: u * decay for k, u in self.users.items()}
        for x in live.values():
            if x.status == ACTIVE and x.granted_at is not None:
                used = self._decayed(float(x.units), x.granted_at, now, now)
                groups[x.group or NO_GROUP] = groups.get(x.group or NO_GROUP, 0.0) + used
                key = (x.group or NO_GROUP, x.user)
                users[key] = users.get(key, 0.0) + used
        total = sum(groups.values())
        weights = {g: _weight(quotas.get(("group", g))) for g in groups}
        # the groups in play: those that used GPUs and those that wait (all of them, so that a
        # request's factors are the same whether computed alone or at a tick)
        waiting = (x for x in live.values() if x.status == QUEUED)
        for x in (*leases, *waiting):
            g = x.group or NO_GROUP
            weights.setdefault(g, _weight(quotas.get(("group", g))))
        all_weight = sum(weights.values()) or 1.0
        members: dict[str, int] = defaultdict(int)
        for (g, _u), used in users.items():
            if used > USED_ANY:
                members[g] += 1
        for x in leases:
            g = x.group or NO_GROUP
            group_factor = 1.0
            if total > USED_ANY:
                group_factor = 2 ** -((groups.get(g, 0.0) / total) / (weights[g] / all_weight))
            user_factor = 1.0
            in_group = groups.get(g, 0.0)
            if in_group > USED_ANY and members[g]:
                mine = users.get((g, x.user), 0.0) / in_group
                user_factor = 2 ** -(mine * members[g])
            x.fair = (round(group_factor, 6), round(user_factor, 6))

    def rerank(
        self,
        live: Mapping[int, Lease],
        quotas: Mapping[tuple[str, str], QuotaSpec],
        queue: WaitQueue,
        now: float,
    ) -> None:
        """Recompute the factors of every queued lease and the queue's order from them."""
        if not self.enabled:
            return
        self.rebase(now)
        queued = [x for x in live.values() if x.status == QUEUED]
        self.factors(queued, live, quotas, now)
        queue.rebuild(queued)

    def rebase(self, now: float) -> None:
        """Move the reference time to ``now`` (the values decay to it)."""
        if not self.enabled or now <= self.t0:
            return
        decay = 2 ** -((now - self.t0) / (self.half_life_s or 1.0))
        for d in (self.groups, self.users):
            for k in d:
                d[k] *= decay
        self.t0 = now

    def usage(
        self, live: Mapping[int, Lease], now: float, *, group: str | None, user: str | None = None
    ) -> float:
        """Decayed GPU-hours of ``group`` (or of ``user`` in it) at ``now``."""
        if not self.enabled:
            return 0.0
        decay = 2 ** -((now - self.t0) / (self.half_life_s or 1.0))
        g = group or NO_GROUP
        base = self.groups.get(g, 0.0) if user is None else self.users.get((g, user), 0.0)
        running = sum(
            self._decayed(float(x.units), x.granted_at, now, now)
            for x in live.values()
            if x.status == ACTIVE and x.granted_at is not None
            and (x.group or NO_GROUP) == g and (user is None or x.user == user)
        )  # fmt: skip
        return base * decay + running


def _weight(spec: QuotaSpec | None) -> float:
    """A group's fair-share weight: ``fair_share``, else ``max_units``, else 1."""
    if spec is not None:
        if spec.fair_share is not None:
            return float(spec.fair_share) or 1e-9
        if spec.max_units:
            return float(spec.max_units)
    return 1.0
