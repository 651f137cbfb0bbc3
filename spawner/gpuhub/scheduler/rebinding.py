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
    lease_id: int, indices: Iterable[int], pool: Pool, live: Mapping[int, Lease]
) -> dict[int, list[dict]]:
    """The moves that put lease ``lease_id`` (of ``live``) on GPUs ``indices`` of its node:
    lease id -> its new devices, empty when it holds those GPUs already.

    A lease holding one of them takes in exchange a GPU this lease leaves. Raises
    ``ValueError`` where the lease holds anything but whole GPUs, the count differs, the
    node has no such GPU, or something gpuhub does not manage holds it; NotFound when the
    lease is not active.
    """
    lease = live.get(lease_id)
    if lease is None or lease.status != ACTIVE:
        raise NotFound(f"lease {lease_id} is not active")
    node = lease.node or ""
    wanted = sorted(set(indices))
    infos = []
    for index in wanted:
        info = pool.whole_gpu(node, index)
        if info is None:
            raise ValueError(f"node {node} has no GPU {index} granted whole")
        infos.append({**info, "slot": 0})
    if len(infos) != len(lease.devices) or any(
        "parent_uuid" in d or "shared_by" in d for d in lease.devices
    ):
        raise ValueError(
            f"lease {lease_id} holds {len(lease.devices)} device(s), not {len(infos)} whole GPU(s)"
        )
    keep = {d["uuid"] for d in infos}
    gained = [d for d in infos if d["uuid"] not in {x["uuid"] for x in lease.devices}]
    if not gained:
        return {}
    left = [d for d in lease.devices if d["uuid"] not in keep]
    moves: dict[int, list[dict]] = {lease.id: infos}
    for got, gave in zip(gained, left, strict=True):
        holder = pool.holder(got["uuid"])
        if holder is None:
            continue
        other = live.get(holder)
        if other is None or other.status != ACTIVE:
            raise ValueError(f"GPU {got['uuid']} is held by something gpuhub does not manage")
        devices = moves.get(other.id, other.devices)
        moves[other.id] = [gave if d["uuid"] == got["uuid"] else d for d in devices]
    return moves
