"""GPU inventory: which nodes and GPUs exist.

Sources are chosen with a ``Type`` trait on the service (``GpuhubService.inventory_class``):
NVML on this node, a simulated spec, JSON files written by ``gpuhub inventory --json``
on each GPU node, or a Slurm cluster's nodes (:mod:`gpuhub.inventory.slurm`).
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path

from traitlets import Dict, Int, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .model import Gpu, MigInstance, Node
from .simulated import InventorySpecError, parse_spec

__all__ = [
    "FileInventory",
    "Gpu",
    "InventorySource",
    "InventorySpecError",
    "MigInstance",
    "Node",
    "NvmlInventory",
    "SimulatedInventory",
]


class InventorySource(LoggingConfigurable):
    """Base class of inventory sources: ``nodes()`` returns every node with its GPUs, and
    ``held_outside()`` the devices that work outside gpuhub holds.

    Both may run commands and take a while: the service calls them in a worker thread, at
    start and every ``GpuhubService.inventory_refresh_interval`` seconds. Either raises
    when it cannot tell (it never answers "nothing" for "I could not look").
    """

    def nodes(self) -> list[Node]:  # pragma: no cover - abstract
        """Every node of the pool with its GPUs."""
        raise NotImplementedError

    def held_outside(self) -> dict[str, str]:
        """Device id (a GPU's or MIG instance's UUID) -> who holds it outside gpuhub, in
        words (``"Slurm job 42 (outside gpuhub)"``): devices the pool must never grant.
        Empty by default, for sources whose GPUs nothing but gpuhub hands out."""
        return {}


class SimulatedInventory(InventorySource):
    """GPUs described in configuration, for machines without GPUs (CI, laptops).

    Every device it makes says ``simulated`` in the API, the CLI and the UI.
    """

    spec = Unicode(
        "sim-node-1: 4xH100-80GB[nvlink], 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=4]",
        config=True,
        help="""Simulated pool, e.g. ``"node-1: 4xH100-80GB[nvlink]; node-2: 1xA100-40GB[mig=7x1g.5gb]"``.

        See :mod:`gpuhub.inventory.simulated` for the grammar (node ranges such as
        ``gpu-[001-125]``, MIG layouts, ``shared=K`` time slicing, ``nvlink``).
        """,
    )

    def nodes(self) -> list[Node]:
        """Nodes parsed from :attr:`spec`."""
        return parse_spec(self.spec)


class NvmlInventory(InventorySource):
    """The GPUs of this machine, read through NVML (nvidia-ml-py)."""

    node_name = Unicode(config=True, help="Name of this node in the pool. Default: the host name.")
    shared = Dict(
        key_trait=Unicode(),
        value_trait=Int(min=2),
        config=True,
        help="""Time-sliced GPUs: glob on model or UUID -> holders per GPU,
        e.g. ``{"*L4*": 4}``. NVML cannot tell time slicing; this is policy.""",
    )

    @default("node_name")
    def _default_node_name(self) -> str:
        return socket.gethostname()

    def nodes(self) -> list[Node]:
        """This machine as one node (no GPUs when the driver is missing)."""
        from .nvml import read_node

        node = read_node(self.node_name, log=self.log)
        return [apply_sharing(node, self.shared)]


class FileInventory(InventorySource):
    """Nodes from JSON files, one per GPU node, as ``gpuhub inventory --json`` prints them."""

    paths = List(
        Unicode(), config=True, help="JSON files (or glob patterns) each holding one node."
    )
    shared = Dict(
        key_trait=Unicode(),
        value_trait=Int(min=2),
        config=True,
        help="Time-sliced GPUs: glob on model or UUID -> holders per GPU.",
    )

    def nodes(self) -> list[Node]:
        """Every node found in :attr:`paths`."""
        found: list[Node] = []
        for pattern in self.paths:
            p = Path(pattern)
            files = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
            for f in files:
                found.append(apply_sharing(Node.from_dict(json.loads(f.read_text())), self.shared))
        return found


def apply_sharing(node: Node, shared: dict[str, int]) -> Node:
    """Mark GPUs whose model or UUID matches a pattern in ``shared`` as time-sliced."""
    if not shared:
        return node
    gpus = []
    for gpu in node.gpus:
        k = next(
            (n for pat, n in shared.items() if fnmatch(gpu.model, pat) or fnmatch(gpu.uuid, pat)),
            gpu.shares,
        )
        if gpu.mig_enabled:
            k = 1  # a MIG GPU is granted by slice, never time-sliced as a whole
        gpus.append(Gpu(**{**gpu.__dict__, "shares": k}))
    return replace(node, gpus=tuple(gpus))
