"""What GPUs exist: plain, immutable descriptions of nodes, GPUs and MIG instances.

Inventory sources (NVML on a real node, a simulated spec elsewhere) produce these;
the scheduler only ever reads them. Every object carries ``simulated`` so that each
API answer and CLI line built from it can say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class MigInstance:
    """One MIG device carved out of a GPU (a GPU instance + compute instance)."""

    uuid: str
    index: int
    profile: str  # e.g. "1g.10gb" or "1c.3g.40gb"
    slices: int  # GPU-instance compute slices this device spans
    memory_mb: int


@dataclass(frozen=True)
class Gpu:
    """One physical GPU of a node.

    ``shares`` is the time-slicing factor: 1 means the GPU is granted whole (or, in MIG
    mode, by slice); k > 1 means up to k holders share it, each charged 1/k GPU units.
    """

    uuid: str
    index: int
    model: str
    memory_mb: int
    mig_enabled: bool = False
    mig_instances: tuple[MigInstance, ...] = ()
    total_slices: int = 7  # compute slices of the whole GPU (7 on A100/H100, 4 on A30)
    nvlink_peers: tuple[str, ...] = ()  # UUIDs of GPUs on the same node linked by NVLink
    shares: int = 1
    simulated: bool = False

    @property
    def mode(self) -> str:
        """How this GPU is granted: ``exclusive``, ``mig`` or ``shared``."""
        if self.mig_enabled:
            return "mig"
        return "shared" if self.shares > 1 else "exclusive"

    def slice_units(self, mig: MigInstance) -> Fraction:
        """GPU units of one MIG instance: its share of the GPU's compute slices."""
        return Fraction(mig.slices, self.total_slices)


@dataclass(frozen=True)
class Node:
    """A machine with GPUs that user containers and jobs are placed on.

    ``usable`` is False when the node's resource manager takes no new work there (Slurm:
    the node is down, drained or not responding); ``state`` is that source's own word
    for it, and why (``"MIXED+DRAIN: disk replacement"``), empty where the source has none.
    """

    name: str
    gpus: tuple[Gpu, ...] = ()
    simulated: bool = False
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    usable: bool = True
    state: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the shape the REST API and `gpuhub inventory` use)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        """Rebuild a node from :meth:`to_dict` output (for example a node's NVML dump)."""
        gpus = []
        for g in data.get("gpus", ()):
            g = dict(g)
            g["mig_instances"] = tuple(MigInstance(**m) for m in g.get("mig_instances", ()))
            g["nvlink_peers"] = tuple(g.get("nvlink_peers", ()))
            gpus.append(Gpu(**g))
        return cls(
            name=data["name"],
            gpus=tuple(gpus),
            simulated=bool(data.get("simulated", False)),
            labels=dict(data.get("labels", {})),
            usable=bool(data.get("usable", True)),
            state=str(data.get("state", "")),
        )


def split_outside(text: str, sep: str, open_: str = "[", close: str = "]") -> list[str]:
    """``text`` split on ``sep`` where it stands outside ``open_``…``close`` brackets:
    ``"a[1,2],b"`` → ``["a[1,2]", "b"]``. Inventory texts nest lists this way (the
    simulated pool's spec, Slurm's node lists and GRES details)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += (ch == open_) - (ch == close)
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
