"""Moving leases onto the devices a cluster engine picked.

A cluster engine may choose the GPUs itself (Slurm picks the indices for ``--gres``), so
a lease granted some GPUs of a node may have to follow its work onto others. This module
plans that move without writing anything: which leases take which devices, so that no
slot is held twice and every lease keeps its count. The scheduler writes the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..terms import ACTIVE
from .errors import NotFound
from .lease import Lease
from .pool import Pool


def plan_rebind(
    lease_id: int,
    indices: Iterable[int] | Mapping[str, Iterable[int]],
    pool: Pool,
    live: Mapping[int, Lease],
) -> dict[int, list[dict]]:
    """The moves that put lease ``lease_id`` (of ``live``) on GPUs ``indices`` of its node
    (a multi-node lease: node -> indices, each of its nodes): lease id -> its new devices,
    empty when it holds those GPUs already.

    A lease holding one of them takes in exchange a GPU this lease leaves on the same
    node. Raises ``ValueError`` where the lease holds anything but whole GPUs, a count
    differs, a node is not the lease's or has no such GPU, or something gpuhub does not
    manage holds one; NotFound when the lease is not active.
    """
    lease = live.get(lease_id)
    if lease is None or lease.status != ACTIVE:
        raise NotFound(f"lease {lease_id} is not active")
    nodes = (lease.node or "").split(",")
    multi = len(nodes) > 1
    wanted = dict(indices) if isinstance(indices, Mapping) else {nodes[0]: indices}
    if sorted(wanted) != sorted(nodes):
        raise ValueError(f"lease {lease_id} is on {lease.node}, not on {','.join(sorted(wanted))}")
    new: list[dict] = []
    trades: list[tuple[dict, dict, str]] = []  # (a GPU it gains, one it leaves, their node)
    for node in nodes:
        held = [d for d in lease.devices if d.get("node", nodes[0]) == node]
        infos = []
        for index in sorted(set(wanted[node])):
            info = pool.whole_gpu(node, index)
            if info is None:
                raise ValueError(f"node {node} has no GPU {index} granted whole")
            infos.append({**info, "slot": 0, **({"node": node} if multi else {})})
        if len(infos) != len(held):
            raise ValueError(
                f"lease {lease_id} holds {len(held)} device(s) on {node}, "
                f"not {len(infos)} whole GPU(s)"
            )
        keep, had = {d["uuid"] for d in infos}, {d["uuid"] for d in held}
        gained = [d for d in infos if d["uuid"] not in had]
        left = [d for d in held if d["uuid"] not in keep]
        trades += ((g, x, node) for g, x in zip(gained, left, strict=True))
        new += infos
    if any("parent_uuid" in d or "shared_by" in d for d in lease.devices):
        raise ValueError(f"lease {lease_id} holds MIG slices or shared seats, not whole GPUs")
    if not trades:
        return {}
    moves: dict[int, list[dict]] = {lease.id: new}
    for got, gave, node in trades:
        holder = pool.holder(got["uuid"])
        if holder is None:
            continue
        other = live.get(holder)
        if other is None or other.status != ACTIVE:
            raise ValueError(f"GPU {got['uuid']} is held by something gpuhub does not manage")
        devices = moves.get(other.id, other.devices)
        gave = {k: v for k, v in gave.items() if k != "node"}  # one-node leases name none
        if "," in (other.node or ""):
            gave["node"] = node
        moves[other.id] = [gave if d["uuid"] == got["uuid"] else d for d in devices]
    return moves


def moves_line(lease: Lease, moves: Mapping[int, list[dict]]) -> str:
    """A rebind for the log: the lease's new devices, and what the others take instead."""
    others = "".join(
        f"; lease {lid} takes {','.join(d['uuid'] for d in devices)}"
        for lid, devices in moves.items()
        if lid != lease.id
    )
    mine = ",".join(d["uuid"] for d in lease.devices)
    return (
        f"lease {lease.id} moved to the devices its engine gave it on {lease.node}: {mine}{others}"
    )
