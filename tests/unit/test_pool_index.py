"""The pool's index of nodes by free whole GPUs stays true to the pool.

Whole-GPU placement looks only at the nodes the index files under enough free GPUs. After
random grants and releases of every shape (whole GPUs, MIG slices, shared seats, several
nodes at once), on a pool with a drained node and devices held outside gpuhub, the index
must equal one built afresh, and every placement must be the one a scan of all nodes
picks (fewest free GPUs left over, then the busiest node, then the name).
"""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.pool import Pool
from gpuhub.scheduler.shapes import WholeGpus

from tests.support.properties import examples
from tests.support.scheduler import gpu, mig, shared

SPEC = (
    "a-[1-6]: 8xH100-80GB[nvlink]; b-[1-3]: 4xA100-40GB; "
    "m-[1-2]: 4xA100-80GB[mig=7x1g.10gb]; s-1: 4xL4-24GB[shared=3]; "
    "x-[1-2]: 4xH100-80GB, 2xL4-24GB[shared=2]"
)


def make_pool() -> Pool:
    nodes = parse_spec(SPEC)
    nodes = [replace(n, usable=False) if n.name == "a-6" else n for n in nodes]
    outside = {nodes[1].gpus[2].uuid: "a job outside gpuhub", nodes[7].gpus[0].uuid: "Slurm"}
    return Pool(nodes, outside)


def indexed(pool: Pool) -> dict[int, set[str]]:
    return {n: set(by_name) for n, by_name in enumerate(pool._by_free) if by_name}


def recomputed(pool: Pool) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for name, ns in pool.nodes.items():
        if not ns.node.usable:
            continue
        free = [
            g
            for g in ns.gpus.values()
            if g.gpu.mode == "exclusive" and not g.holders and g.outside is None
        ]
        assert {g.gpu.uuid for g in free} == ns.free_whole
        out.setdefault(len(free), set()).add(name)
    return out


def scanned(pool: Pool, shape: WholeGpus) -> str | None:
    """The node a scan of every node picks for ``shape`` (one node, any model or one)."""
    best = None
    for name, ns in pool.nodes.items():
        if not ns.node.usable:
            continue
        n_free = sum(1 for u in ns.free_whole if pool.matches(ns.gpus[u].gpu.model, shape.model))
        if n_free < shape.count:
            continue
        key = (n_free - shape.count, -ns.used_units, name)
        best = key if best is None or key < best else best
    return None if best is None else best[2]


#: Every whole-GPU ask a check may try: one to nine GPUs, of any model or of one
ASKS = [(count, model) for count in range(1, 10) for model in (None, "H100", "A100")]


def check(pool: Pool, rng: random.Random | None = None) -> None:
    """The index is the one built afresh, and placements are the scan's: of every ask,
    or of four drawn by ``rng`` (each step of a run tries a few; its last, all)."""
    assert indexed(pool) == recomputed(pool)
    for count, model in ASKS if rng is None else rng.sample(ASKS, 4):
        shape = gpu(count, model)
        placed = pool.place(shape)
        assert (placed.node if placed else None) == scanned(pool, shape), (count, model)


@pytest.mark.parametrize("seed", range(examples(40)))
def test_index_follows_grants_and_releases(seed: int) -> None:
    rng = random.Random(seed)
    pool = make_pool()
    held: dict[int, tuple[str, tuple, Fraction]] = {}
    shapes = [gpu(1), gpu(2), gpu(3), gpu(8), gpu(1, "A100"), gpu(2, "H100")]
    shapes += [WholeGpus(count=2, nodes=2), mig("1g.10gb"), shared()]
    check(pool)
    for lid in range(1, 120):
        if held and rng.random() < 0.4:
            gone = rng.choice(sorted(held))
            pool.free(gone, *held.pop(gone))
        else:
            placed = pool.place(rng.choice(shapes))
            if placed is not None:
                pool.claim(lid, placed.node, placed.slots, placed.units)
                held[lid] = (placed.node, placed.slots, placed.units)
        check(pool, rng)
        if lid % 40 == 0:  # a what-if copy has its own index, and leaves this one alone
            twin = pool.copy()
            check(twin)
            placed = twin.place(gpu(1))
            if placed is not None:
                twin.claim(999, placed.node, placed.slots, placed.units)
                check(twin)
            check(pool)
    check(pool)
