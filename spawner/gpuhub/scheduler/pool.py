"""The in-memory picture of the pool: which device slots are free, and where a shape fits.

Every allocatable thing is a *slot* ``(device_id, slot)``: a whole GPU has one slot, a MIG
instance has one, a time-sliced GPU has ``k``. The scheduler writes each claimed slot to
the database under a primary key, so the database refuses a double grant even if this
picture were ever wrong. Placement keeps fragmentation low: it fills partly used nodes
and GPUs first and keeps empty nodes for large requests.

Nothing is placed on a node that takes no new work (``Node.usable`` False: drained, down)
nor on a device held outside gpuhub (``held_outside``); neither counts as free. Whether a
shape could ever fit (:meth:`Pool.feasible`) looks at every node: a drained node comes back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from ..inventory import Gpu, MigInstance, Node
from .fit import InventoryFit
from .shapes import MigSlice, SharedGpu, WholeGpus, model_matches


@dataclass(frozen=True)
class Placement:
    """Where a request goes: one node and the slots it claims there. A multi-node shape's
    ``node`` is its nodes joined with commas (Slurm's node list), and each of its devices
    names its ``node``."""

    node: str
    slots: tuple[tuple[str, int], ...]  # (device id, slot)
    units: Fraction
    devices: tuple[dict, ...]  # what the holder needs to know about each device


@dataclass(frozen=True)
class GpuView:
    """A GPU as the pool holds it now: its inventory record, its state, its holders."""

    gpu: Gpu
    node: str
    state: str  # free | partial | busy (busy when held outside gpuhub)
    holders: tuple[int, ...]  # lease ids holding its slots, by slot (exclusive or shared mode)
    mig_holders: Mapping[str, int]  # MIG instance uuid -> lease id holding it (MIG mode)
    held_outside: str | None = None  # who holds the whole GPU outside gpuhub, in words
    mig_held_outside: Mapping[str, str] = field(default_factory=dict)  # MIG uuid -> who


@dataclass(frozen=True)
class NodeView:
    """A node and its GPUs as the pool holds them now (``node.usable``, ``node.state``:
    whether it takes new work, and its source's word for why not)."""

    node: Node
    gpus: tuple[GpuView, ...]


@dataclass(frozen=True)
class PoolView:
    """The pool at one moment: every node with its GPUs, and GPU units in all, free, leased."""

    nodes: tuple[NodeView, ...]
    units_total: Fraction
    units_free: Fraction
    units_leased: Fraction = Fraction(0)


@dataclass
class _GpuState:
    gpu: Gpu
    node: str
    holders: dict[int, int] = field(default_factory=dict)  # slot -> lease id (exclusive/shared)
    mig_holders: dict[str, int] = field(default_factory=dict)  # MIG uuid -> lease id
    used_slices: int = 0
    outside: str | None = None  # who holds the whole GPU outside gpuhub
    mig_outside: dict[str, str] = field(default_factory=dict)  # MIG uuid -> who, outside

    @property
    def state(self) -> str:
        """``free``, ``partial`` (some MIG instances or shared seats held) or ``busy``."""
        if self.outside is not None:
            return "busy"
        if self.gpu.mig_enabled:
            used = len(self.mig_holders.keys() | self.mig_outside.keys())
            size = len(self.gpu.mig_instances)
        else:
            used, size = len(self.holders), self.gpu.shares
        return "free" if used == 0 else ("busy" if used >= size else "partial")

    def units_held_outside(self) -> Fraction:
        """GPU units held outside gpuhub here, beyond what gpuhub's own leases hold."""
        if self.outside is not None:
            if self.gpu.mig_enabled:
                return 1 - Fraction(self.used_slices, self.gpu.total_slices)
            return 1 - Fraction(len(self.holders), self.gpu.shares)
        slices = sum(
            m.slices
            for m in self.gpu.mig_instances
            if m.uuid in self.mig_outside and m.uuid not in self.mig_holders
        )
        return Fraction(slices, self.gpu.total_slices)


@dataclass
class _NodeState:
    node: Node
    gpus: dict[str, _GpuState]
    used_units: Fraction = Fraction(0)
    free_whole: set[str] = field(default_factory=set)  # free exclusive-mode GPUs (uuids)

    def __post_init__(self) -> None:
        self.free_whole = {u for u, g in self.gpus.items() if g.gpu.mode == "exclusive"}


def _device_info(gpu: Gpu, mig: MigInstance | None = None, slot: int = 0) -> dict:
    info = {
        "uuid": mig.uuid if mig else gpu.uuid,
        "index": gpu.index,
        "model": gpu.model,
        "memory_mb": mig.memory_mb if mig else gpu.memory_mb,
        "simulated": gpu.simulated,
    }
    if mig:
        info.update(parent_uuid=gpu.uuid, mig_index=mig.index, profile=mig.profile)
    if gpu.shares > 1:
        info.update(shared_by=gpu.shares, slot=slot)
    return info


class Pool:
    """Free and held slots of every node, and placement of request shapes.

    ``held_outside``: device id (a GPU's or MIG instance's UUID) -> who holds it outside
    gpuhub, in words; such devices are never placed on. Ids the inventory lacks are ignored.
    """

    def __init__(self, nodes: list[Node], held_outside: Mapping[str, str] | None = None) -> None:
        self.nodes: dict[str, _NodeState] = {}
        self._gpu_of: dict[str, _GpuState] = {}  # GPU uuid and MIG uuid -> GPU state
        self._mig: dict[str, MigInstance] = {}
        self._matches: dict[tuple[str, str | None], bool] = {}
        self.fit = InventoryFit(nodes)  # what could ever fit: the inventory's, not the pool's
        for node in nodes:
            gpus = {g.uuid: _GpuState(g, node.name) for g in node.gpus}
            self.nodes[node.name] = _NodeState(node, gpus)
            for gs in gpus.values():
                self._gpu_of[gs.gpu.uuid] = gs
                for m in gs.gpu.mig_instances:
                    self._gpu_of[m.uuid] = gs
                    self._mig[m.uuid] = m
        # the GPUs MIG and shared requests can land on, with their node
        self._mig_gpus = [
            (ns, g) for ns in self.nodes.values() for g in ns.gpus.values() if g.gpu.mig_enabled
        ]
        self._shared_gpus = [
            (ns, g) for ns in self.nodes.values() for g in ns.gpus.values() if g.gpu.shares > 1
        ]
        self.held_outside: Mapping[str, str] = MappingProxyType(dict(held_outside or {}))
        self._outside: dict[str, _GpuState] = {}  # GPUs with a device held outside gpuhub
        for device_id, who in self.held_outside.items():
            gs = self._gpu_of.get(device_id)
            if gs is None:
                continue
            if device_id in self._mig:
                gs.mig_outside[device_id] = who
            else:
                gs.outside = who
                self.nodes[gs.node].free_whole.discard(device_id)
            self._outside[gs.gpu.uuid] = gs
        self._index_free_whole()

    # -- bookkeeping -----------------------------------------------------------------

    def knows(self, device_id: str) -> bool:
        """Whether a device id belongs to this pool."""
        return device_id in self._gpu_of

    def holder(self, device_id: str, slot: int = 0) -> int | None:
        """The lease holding a slot, or None."""
        gs = self._gpu_of[device_id]
        if device_id in self._mig:
            return gs.mig_holders.get(device_id)
        return gs.holders.get(slot)

    def whole_gpu(self, node: str, index: int) -> dict | None:
        """What a holder needs to know about GPU ``index`` of ``node`` (as a lease lists its
        devices), or None where the node has no such GPU granted whole."""
        ns = self.nodes.get(node)
        for gs in ns.gpus.values() if ns else ():
            if gs.gpu.index == index and gs.gpu.mode == "exclusive":
                return _device_info(gs.gpu)
        return None

    def claim(self, lease_id: int, node: str, slots: tuple[tuple[str, int], ...], units) -> None:
        """Mark slots as held by a lease (at grant time and when loading state)."""
        for device_id, slot in slots:
            gs = self._gpu_of.get(device_id)
            if gs is None:
                continue  # device gone from the inventory; the lease keeps its record
            if device_id in self._mig:
                if device_id in gs.mig_holders:
                    raise RuntimeError(
                        f"{device_id} already held by lease {gs.mig_holders[device_id]}"
                    )
                gs.mig_holders[device_id] = lease_id
                gs.used_slices += self._mig[device_id].slices
            else:
                if slot in gs.holders:
                    raise RuntimeError(
                        f"{device_id}/{slot} already held by lease {gs.holders[slot]}"
                    )
                gs.holders[slot] = lease_id
                if gs.gpu.shares == 1:
                    self._whole_free(self.nodes[gs.node], device_id, False)
        self._count_units(node, units)

    def free(self, lease_id: int, node: str, slots: tuple[tuple[str, int], ...], units) -> None:
        """Return a lease's slots to the pool."""
        for device_id, slot in slots:
            gs = self._gpu_of.get(device_id)
            if gs is None:
                continue
            if device_id in self._mig:
                if gs.mig_holders.get(device_id) == lease_id:
                    del gs.mig_holders[device_id]
                    gs.used_slices -= self._mig[device_id].slices
            elif gs.holders.get(slot) == lease_id:
                del gs.holders[slot]
                if gs.gpu.shares == 1 and gs.outside is None:
                    self._whole_free(self.nodes[gs.node], device_id, True)
        self._count_units(node, -units)

    def _count_units(self, node: str, units: Fraction) -> None:
        """Add ``units`` to a node's use; a multi-node lease's (``a,b``) spread evenly."""
        if "," not in node:
            if node in self.nodes:
                self.nodes[node].used_units += units
            return
        names = node.split(",")
        for name in names:
            if name in self.nodes:
                self.nodes[name].used_units += Fraction(units) / len(names)

    def _index_free_whole(self) -> None:
        """File every node that takes new work under its count of free whole GPUs."""
        most = max((len(ns.gpus) for ns in self.nodes.values()), default=0)
        self._by_free: list[dict[str, _NodeState]] = [{} for _ in range(most + 1)]
        for name, ns in self.nodes.items():
            if ns.node.usable:
                self._by_free[len(ns.free_whole)][name] = ns

    def _whole_free(self, ns: _NodeState, uuid: str, free: bool) -> None:
        """Mark an exclusive-mode GPU of ``ns`` free or taken, refiling the node."""
        before = len(ns.free_whole)
        if free:
            ns.free_whole.add(uuid)
        else:
            ns.free_whole.discard(uuid)
        if ns.node.usable and len(ns.free_whole) != before:
            del self._by_free[before][ns.node.name]
            self._by_free[len(ns.free_whole)][ns.node.name] = ns

    # -- placement -------------------------------------------------------------------

    def _open_nodes(self, count: int) -> Iterator[_NodeState]:
        """The nodes that take new work and have at least ``count`` free whole GPUs."""
        for by_name in self._by_free[count:]:
            yield from by_name.values()

    def place(
        self,
        shape: WholeGpus | MigSlice | SharedGpu,
        avoid: AbstractSet[str] | None = None,
        prefer: AbstractSet[str] | None = None,
    ) -> Placement | None:
        """Where ``shape`` fits now, or None when every fitting slot is taken.

        ``avoid``: device ids (GPU or MIG uuids) not to use; ``prefer``: device ids to use
        if the shape fits on them alone, before any other (reservations set both).
        """
        if prefer:
            hit = self.place_within(shape, avoid, prefer)
            if hit is not None:
                return hit
        if isinstance(shape, WholeGpus):
            return self._place_whole(shape, avoid, None)
        if isinstance(shape, MigSlice):
            return self._place_mig(shape, avoid, None)
        return self._place_shared(shape, avoid, None)

    def place_within(
        self,
        shape: WholeGpus | MigSlice | SharedGpu,
        avoid: AbstractSet[str] | None,
        only: AbstractSet[str] | None,
    ) -> Placement | None:
        """:meth:`place` on the devices in ``only`` (None: all) that are not in ``avoid``."""
        if isinstance(shape, WholeGpus):
            return self._place_whole(shape, avoid, only)
        if isinstance(shape, MigSlice):
            return self._place_mig(shape, avoid, only)
        return self._place_shared(shape, avoid, only)

    def count(self, shape: WholeGpus | MigSlice | SharedGpu) -> tuple[int, int, bool]:
        """(free, total, any simulated) of the devices ``shape`` could use: whole GPUs,
        MIG instances of its profile, or seats on shared GPUs. Free: grantable now (not
        held, not held outside gpuhub, on a node that takes work)."""
        free, _, total, simulated = self.tally(shape)
        return free, total, simulated

    def tally(self, shape: WholeGpus | MigSlice | SharedGpu) -> tuple[int, int, int, bool]:
        """(free, withheld, total, any simulated) of the devices ``shape`` could use, as
        :meth:`count`; ``withheld``: held by no lease, yet not grantable (on a node that
        takes no new work, or held outside gpuhub)."""
        free = withheld = total = 0
        simulated = False
        if isinstance(shape, WholeGpus):
            for ns in self.nodes.values():
                for gs in ns.gpus.values():
                    if gs.gpu.mode == "exclusive" and self.matches(gs.gpu.model, shape.model):
                        total += 1
                        idle = not gs.holders
                        grantable = ns.node.usable and gs.outside is None
                        free += idle and grantable
                        withheld += idle and not grantable
                        simulated |= gs.gpu.simulated
        elif isinstance(shape, MigSlice):
            for ns, gs in self._mig_gpus:
                if self.matches(gs.gpu.model, shape.model):
                    whole_ok = ns.node.usable and gs.outside is None
                    for m in gs.gpu.mig_instances:
                        if m.profile == shape.profile:
                            total += 1
                            idle = m.uuid not in gs.mig_holders
                            grantable = whole_ok and m.uuid not in gs.mig_outside
                            free += idle and grantable
                            withheld += idle and not grantable
                            simulated |= gs.gpu.simulated
        else:
            for ns, gs in self._shared_gpus:
                if self.matches(gs.gpu.model, shape.model):
                    total += gs.gpu.shares
                    idle = gs.gpu.shares - len(gs.holders)
                    grantable = ns.node.usable and gs.outside is None
                    free += idle if grantable else 0
                    withheld += 0 if grantable else idle
                    simulated |= gs.gpu.simulated
        return free, withheld, total, simulated

    def matches(self, model: str, wanted: str | None) -> bool:
        """:func:`model_matches`, remembered (models and requested names are few)."""
        key = (model, wanted)
        hit = self._matches.get(key)
        if hit is None:
            hit = self._matches[key] = model_matches(model, wanted)
        return hit

    def feasible(self, shape: WholeGpus | MigSlice | SharedGpu) -> str | None:
        """None if ``shape`` could fit on an empty pool, else a sentence saying why not
        (:meth:`InventoryFit.feasible`)."""
        return self.fit.feasible(shape)

    def max_units(self, shape: WholeGpus | MigSlice | SharedGpu) -> Fraction:
        """The most GPU units a request for ``shape`` costs (:meth:`InventoryFit.max_units`)."""
        return self.fit.max_units(shape)

    def _place_whole(
        self, shape: WholeGpus, avoid: AbstractSet[str] | None, only: AbstractSet[str] | None
    ) -> Placement | None:
        if avoid or only is not None or shape.node_count > 1:
            return self._place_whole_among(shape, avoid, only)
        if shape.model is None:
            # best fit: the nodes with fewest free GPUs that still fit, then the busiest
            for by_name in self._by_free[shape.count :]:
                if by_name:
                    ns = min(by_name.values(), key=_busiest_first)
                    return self._whole_on(ns, ns.free_whole, shape)
            return None
        best: tuple | None = None
        for ns in self._open_nodes(shape.count):
            n_free = sum(
                1 for u in ns.free_whole if self.matches(ns.gpus[u].gpu.model, shape.model)
            )
            if n_free < shape.count:
                continue
            # best fit: fewest free GPUs left over, then the busiest node
            key = (n_free - shape.count, -ns.used_units, ns.node.name)
            if best is None or key < best[0]:
                best = (key, ns)
        return None if best is None else self._whole_on(best[1], best[1].free_whole, shape)

    def _place_whole_among(
        self, shape: WholeGpus, avoid: AbstractSet[str] | None, only: AbstractSet[str] | None
    ) -> Placement | None:
        """:meth:`_place_whole` on the free GPUs in ``only`` (None: all) not in ``avoid``;
        a multi-node shape on the best-fitting nodes, all of them or none."""
        fits: list[tuple] = []
        for ns in self._open_nodes(shape.count):
            usable = ns.free_whole - avoid if avoid else ns.free_whole
            if only is not None:
                usable = usable & only
            if len(usable) < shape.count:
                continue
            n_free = sum(1 for u in usable if self.matches(ns.gpus[u].gpu.model, shape.model))
            if n_free < shape.count:
                continue
            fits.append(((n_free - shape.count, -ns.used_units, ns.node.name), ns, usable))
        if len(fits) < shape.node_count:
            return None
        if shape.node_count == 1:
            _, ns, usable = min(fits, key=lambda fit: fit[0])
            return self._whole_on(ns, usable, shape)
        best = sorted(fits, key=lambda fit: fit[0])[: shape.node_count]
        chosen = sorted(best, key=lambda fit: fit[1].node.name)  # Slurm's node list order
        parts = [self._whole_on(ns, usable, shape) for _, ns, usable in chosen]
        return Placement(
            node=",".join(p.node for p in parts),
            slots=tuple(slot for p in parts for slot in p.slots),
            units=Fraction(shape.units),
            devices=tuple({**d, "node": p.node} for p in parts for d in p.devices),
        )

    def _whole_on(self, ns: _NodeState, usable: AbstractSet[str], shape: WholeGpus) -> Placement:
        free = [ns.gpus[u] for u in usable if self.matches(ns.gpus[u].gpu.model, shape.model)]
        chosen = _nvlink_set(free, shape.count)
        return Placement(
            node=ns.node.name,
            slots=tuple((g.gpu.uuid, 0) for g in chosen),
            units=Fraction(shape.count),
            devices=tuple(_device_info(g.gpu) for g in chosen),
        )

    def _place_mig(
        self, shape: MigSlice, avoid: AbstractSet[str] | None, only: AbstractSet[str] | None
    ) -> Placement | None:
        best: tuple | None = None
        for ns, gs in self._mig_gpus:
            if (
                not ns.node.usable
                or gs.outside is not None
                or not self.matches(gs.gpu.model, shape.model)
            ):
                continue
            for m in gs.gpu.mig_instances:
                if (
                    m.profile == shape.profile
                    and m.uuid not in gs.mig_holders
                    and m.uuid not in gs.mig_outside
                    and not (avoid and m.uuid in avoid)
                    and (only is None or m.uuid in only)
                ):
                    # pack: the GPU with most slices in use, then the busiest node
                    key = (-gs.used_slices, -ns.used_units, ns.node.name, gs.gpu.index, m.index)
                    if best is None or key < best[0]:
                        best = (key, ns, gs, m)
                    break
        if best is None:
            return None
        _, ns, gs, m = best
        return Placement(
            node=ns.node.name,
            slots=((m.uuid, 0),),
            units=gs.gpu.slice_units(m),
            devices=(_device_info(gs.gpu, m),),
        )

    def _place_shared(
        self, shape: SharedGpu, avoid: AbstractSet[str] | None, only: AbstractSet[str] | None
    ) -> Placement | None:
        best: tuple | None = None
        for ns, gs in self._shared_gpus:
            if len(gs.holders) >= gs.gpu.shares or not self.matches(gs.gpu.model, shape.model):
                continue
            if not ns.node.usable or gs.outside is not None:
                continue
            if (avoid and gs.gpu.uuid in avoid) or (only is not None and gs.gpu.uuid not in only):
                continue
            key = (-len(gs.holders), -ns.used_units, ns.node.name, gs.gpu.index)
            if best is None or key < best[0]:
                best = (key, ns, gs)
        if best is None:
            return None
        _, ns, gs = best
        slot = next(s for s in range(gs.gpu.shares) if s not in gs.holders)
        return Placement(
            node=ns.node.name,
            slots=((gs.gpu.uuid, slot),),
            units=Fraction(1, gs.gpu.shares),
            devices=(_device_info(gs.gpu, slot=slot),),
        )

    # -- views -----------------------------------------------------------------------

    def copy(self) -> Pool:
        """An independent copy of the pool as it is now, for what-if questions ("when would
        this request fit?"): claims and frees on the copy change nothing here."""
        twin = Pool([ns.node for ns in self.nodes.values()], self.held_outside)
        twin._matches, twin.fit = self._matches, self.fit
        for name, ns in self.nodes.items():
            tn = twin.nodes[name]
            tn.used_units, tn.free_whole = ns.used_units, set(ns.free_whole)
            for uuid, gs in ns.gpus.items():
                tg = tn.gpus[uuid]
                tg.holders, tg.mig_holders = dict(gs.holders), dict(gs.mig_holders)
                tg.used_slices = gs.used_slices
        twin._index_free_whole()
        return twin

    def view(self) -> PoolView:
        """Every node and GPU with its state and holders, copied (safe to keep and pass on)."""
        cap = self.capacity()
        nodes = tuple(
            NodeView(
                node=ns.node,
                gpus=tuple(
                    GpuView(
                        gpu=gs.gpu,
                        node=ns.node.name,
                        state=gs.state,
                        holders=tuple(lid for _, lid in sorted(gs.holders.items())),
                        mig_holders=MappingProxyType(dict(gs.mig_holders)),
                        held_outside=gs.outside,
                        mig_held_outside=MappingProxyType(dict(gs.mig_outside)),
                    )
                    for gs in ns.gpus.values()
                ),
            )
            for ns in self.nodes.values()
        )
        return PoolView(
            nodes=nodes,
            units_total=cap["total"],
            units_free=cap["free"],
            units_leased=cap["leased"],
        )

    def capacity(self) -> dict[str, Fraction]:
        """Total and free GPU units of the pool, and those gpuhub's leases hold (``leased``).
        Free: a new lease could get them (held by nothing, on a node that takes work)."""
        total = sum((Fraction(len(ns.gpus)) for ns in self.nodes.values()), Fraction(0))
        used = sum((ns.used_units for ns in self.nodes.values()), Fraction(0))
        free = total - used
        for ns in self.nodes.values():
            if not ns.node.usable:
                free -= max(len(ns.gpus) - ns.used_units, Fraction(0))
        for gs in self._outside.values():
            if self.nodes[gs.node].node.usable:
                free -= gs.units_held_outside()
        return {"total": total, "free": max(free, Fraction(0)), "leased": used}


def _busiest_first(ns: _NodeState) -> tuple[Fraction, str]:
    """Sort key: the node with most units in use first, then by name."""
    return (-ns.used_units, ns.node.name)


def _nvlink_set(free: list[_GpuState], count: int) -> list[_GpuState]:
    """Pick ``count`` of ``free`` GPUs with the most NVLink connections among them."""
    if count >= len(free) or count == 1:
        return sorted(free, key=lambda g: g.gpu.index)[:count]
    by_uuid = {g.gpu.uuid: g for g in free}
    best: tuple[int, list[_GpuState]] | None = None
    for start in sorted(free, key=lambda g: g.gpu.index):
        chosen = [start]
        links = 0
        while len(chosen) < count:
            inside = {c.gpu.uuid for c in chosen}

            def gain(g: _GpuState, inside=inside) -> tuple[int, int]:
                return (len(inside.intersection(g.gpu.nvlink_peers)), -g.gpu.index)

            nxt = max((g for u, g in by_uuid.items() if u not in inside), key=gain)
            links += gain(nxt)[0]
            chosen.append(nxt)
        if best is None or links > best[0]:
            best = (links, chosen)
    assert best is not None
    return sorted(best[1], key=lambda g: g.gpu.index)
