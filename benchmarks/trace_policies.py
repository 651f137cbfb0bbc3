"""Placement policies to set against gpuhub's own: plain first-fit, best-fit and spread
(Kubernetes' default, LeastAllocated), each a small :class:`~gpuhub.scheduler.pool.Pool`
subclass that picks the node and device itself and lets the pool claim exactly those, and
a scheduler that uses such a pool. Used by ``bench_trace.py``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gpuhub.inventory import Node
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.pool import Placement, Pool
from gpuhub.scheduler.shapes import MigSlice, WholeGpus
from gpuhub.terms import ACTIVE


class ChoosingPool(Pool):
    """A pool that picks the node and device itself by ``key`` (lowest first), then lets
    the pool claim exactly those. Its own picture of what is free follows every claim and
    free; reservations' placement rules (``avoid``, ``prefer``) go to the pool's own."""

    def __init__(self, nodes: list[Node], held_outside: Any = None) -> None:
        super().__init__(nodes, held_outside)
        self.rank = {n.name: i for i, n in enumerate(nodes)}
        self.usable = {n.name: n.usable for n in nodes}
        self.size = {n.name: float(len(n.gpus)) for n in nodes}
        self.used = {n.name: 0.0 for n in nodes}  # GPU units held (floats: fast to compare)
        self.where: dict[str, tuple[str, Any, Any]] = {}  # device -> (node, gpu, MIG instance)
        self.free_whole: dict[str, dict[str, Any]] = defaultdict(dict)  # node -> uuid -> gpu
        self.free_mig: dict[str, dict[str, Any]] = defaultdict(dict)  # profile -> uuid -> inst
        self.seats: dict[str, int] = {}  # shared GPU uuid -> free seats
        for n in nodes:
            for g in n.gpus:
                self.where[g.uuid] = (n.name, g, None)
                if g.mode == "exclusive":
                    self.free_whole[n.name][g.uuid] = g
                elif g.mode == "shared":
                    self.seats[g.uuid] = g.shares
                for m in g.mig_instances:
                    self.where[m.uuid] = (n.name, g, m)
                    self.free_mig[m.profile][m.uuid] = m

    def key(self, node: str, free_after: float, gpu_free_after: float, index: tuple) -> tuple:
        """Which candidate goes first (lowest): overridden by each policy."""
        raise NotImplementedError

    def claim(self, lease_id: int, node: str, slots: Any, units: Any) -> None:
        super().claim(lease_id, node, slots, units)
        self._follow(slots, +1)

    def free(self, lease_id: int, node: str, slots: Any, units: Any) -> None:
        super().free(lease_id, node, slots, units)
        self._follow(slots, -1)

    def _follow(self, slots: Any, sign: int) -> None:
        """Take in slots claimed (``sign`` 1) or freed (-1)."""
        for device, slot in slots:
            if device not in self.where:
                continue
            node, g, m = self.where[device]
            held = self.holder(device, slot) is not None
            if m is not None:
                free, uuid, share = self.free_mig[m.profile], m.uuid, m.slices / g.total_slices
            elif g.mode == "shared":
                self.seats[g.uuid] -= sign
                self.used[node] += sign / g.shares
                continue
            else:
                free, uuid, share = self.free_whole[node], g.uuid, 1.0
            if held:
                free.pop(uuid, None)
            else:
                free[uuid] = m or g
            self.used[node] += sign * share

    def _best(self, candidates: Any) -> Any:
        best = min(candidates, default=None, key=lambda c: c[0])
        return None if best is None else best[1]

    def place(self, shape: Any, avoid: Any = None, prefer: Any = None) -> Placement | None:
        if avoid or prefer or (isinstance(shape, WholeGpus) and shape.node_count > 1):
            return super().place(shape, avoid, prefer)
        usable = self.usable
        if isinstance(shape, WholeGpus):
            n = shape.count
            pick = self._best(
                (self.key(node, self.left(node, n), 0, (self.rank[node],)), node)
                for node, gpus in self.free_whole.items()
                if len(gpus) >= n and usable[node]
            )
            if pick is None:
                return None
            chosen = sorted(self.free_whole[pick].values(), key=lambda g: g.index)[:n]
            return self.place_within(shape, None, {g.uuid for g in chosen})
        if isinstance(shape, MigSlice):
            pick = self._best(
                (self.key(node, self.left(node, m.slices / g.total_slices),
                          self._gpu_free(g) - m.slices, (self.rank[node], g.index, m.index)), m.uuid)
                for m in self.free_mig[shape.profile].values()
                for node, g, _ in (self.where[m.uuid],)
                if usable[node]
            )  # fmt: skip
        else:
            pick = self._best(
                (self.key(node, self.left(node, 1 / g.shares), free - 1,
                          (self.rank[node], g.index)), uuid)
                for uuid, free in self.seats.items() if free > 0
                for node, g, _ in (self.where[uuid],)
                if usable[node]
            )  # fmt: skip
        return None if pick is None else self.place_within(shape, None, {pick})

    def left(self, node: str, units: float) -> float:
        """GPU units of ``node`` left free after placing ``units`` there (rounded, so that
        equal capacities compare equal)."""
        return round(self.size[node] - self.used[node] - units, 6)

    def _gpu_free(self, g: Any) -> int:
        """Free compute slices of a MIG GPU."""
        return sum(m.slices for m in g.mig_instances if m.uuid in self.free_mig[m.profile])


class FirstFit(ChoosingPool):
    """The first node, GPU and instance in the inventory's order where the request fits."""

    def key(self, node, free_after, gpu_free_after, index):
        return index


class BestFit(ChoosingPool):
    """The node left with the least free capacity after placing (then the GPU left with the
    least), then the inventory's order."""

    def key(self, node, free_after, gpu_free_after, index):
        return (free_after, gpu_free_after, index)


class Spread(ChoosingPool):
    """The node left with the most free capacity (Kubernetes' default, LeastAllocated)."""

    def key(self, node, free_after, gpu_free_after, index):
        return (-free_after, -gpu_free_after, index)


class PolicyScheduler(Scheduler):
    """The scheduler with its pool of class ``pool_class`` (a placement policy)."""

    pool_class: type[Pool] = Pool

    def load(self) -> None:
        super().load()
        pool = self.pool_class(self.inventory, self.held_outside)
        for lease in self.live.values():
            if lease.status == ACTIVE:
                pool.claim(lease.id, lease.node or "", lease.slots, lease.units)
        self.pool = pool


def scheduler_class(pool: type[Pool]) -> type[Scheduler]:
    return type(f"{pool.__name__}Scheduler", (PolicyScheduler,), {"pool_class": pool})


#: name -> (pool class, spot tier for BE pods)
POLICIES: dict[str, tuple[type[Pool], bool]] = {
    "gpuhub": (Pool, False),
    "best-fit": (BestFit, False),
    "first-fit": (FirstFit, False),
    "spread": (Spread, False),
    "gpuhub + spot": (Pool, True),
}
