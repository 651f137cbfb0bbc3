"""A simulated inventory described in one line of configuration.

Used by the embedded default and by CI, where no GPU exists. The grammar::

    spec      := node ( ";" node )*
    node      := names ":" group ( "," group )*
    names     := text, optionally with one numeric range: "gpu-[01-16]"
    group     := COUNT "x" MODEL [ "[" option ( "," option )* "]" ]
    option    := "mig=" N "x" PROFILE ( "+" N "x" PROFILE )*   MIG mode with these instances
               | "slices=" N                                   compute slices of the GPU (default 7)
               | "shared=" K                                   time-sliced, at most K holders
               | "nvlink"                                      the group's GPUs are NVLink-connected

For example ``"node-1: 4xH100-80GB[nvlink]; node-2: 1xA100-40GB[mig=7x1g.5gb]"``.
Every device made here is marked ``simulated``.
"""

from __future__ import annotations

import re

from .model import Gpu, MigInstance, Node, split_outside

_RANGE = re.compile(r"\[(\d+)-(\d+)\]")
_GROUP = re.compile(r"^\s*(\d+)\s*[xX×]\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?:\[(.*)\])?\s*$")
_MEMORY = re.compile(r"(\d+)\s*[gG][bB]$")
_PROFILE = re.compile(r"^(?:(\d+)c\.)?(\d+)g\.(\d+)gb$")


class InventorySpecError(ValueError):
    """The simulated inventory spec cannot be read; the message says where and why."""


def expand_names(names: str) -> list[str]:
    """Expand ``"gpu-[01-03]"`` to ``["gpu-01", "gpu-02", "gpu-03"]`` (zero padding kept)."""
    names = names.strip()
    m = _RANGE.search(names)
    if not m:
        if not names:
            raise InventorySpecError("a node entry has no name before ':'")
        return [names]
    lo, hi = m.group(1), m.group(2)
    if int(lo) > int(hi):
        raise InventorySpecError(f"node range [{lo}-{hi}] runs backwards")
    width = len(lo) if lo.startswith("0") else 0
    return [
        names[: m.start()] + str(i).zfill(width) + names[m.end() :]
        for i in range(int(lo), int(hi) + 1)
    ]


def parse_mig_profile(profile: str) -> tuple[int, int]:
    """Return (GPU-instance slices, memory in MB) of a MIG profile such as ``1g.10gb``."""
    m = _PROFILE.match(profile)
    if not m:
        raise InventorySpecError(
            f"MIG profile {profile!r} is not of the form '<slices>g.<memory>gb', e.g. '1g.10gb'"
        )
    return int(m.group(2)), int(m.group(3)) * 1024


def _parse_group(node: str, group: str, first_index: int) -> list[Gpu]:
    m = _GROUP.match(group)
    if not m:
        raise InventorySpecError(
            f"node {node}: {group.strip()!r} is not '<count>x<model>[options]', e.g. '4xH100-80GB'"
        )
    count, model, options = int(m.group(1)), m.group(2), m.group(3)
    if count < 1:
        raise InventorySpecError(f"node {node}: GPU count must be at least 1 in {group.strip()!r}")
    mem = _MEMORY.search(model)
    memory_mb = int(mem.group(1)) * 1024 if mem else 0
    mig: list[tuple[str, int, int]] = []
    slices, shares, nvlink = 7, 1, False
    for opt in filter(None, (o.strip() for o in (options or "").split(","))):
        key, _, value = opt.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if key == "mig":
            for item in value.split("+"):
                im = re.match(r"^\s*(\d+)\s*[xX×]\s*(\S+)\s*$", item)
                if not im:
                    raise InventorySpecError(
                        f"node {node}: MIG layout {item!r} is not '<count>x<profile>'"
                    )
                gi, mb = parse_mig_profile(im.group(2))
                mig.extend([(im.group(2), gi, mb)] * int(im.group(1)))
        elif key == "slices" and value.isdigit() and int(value) > 0:
            slices = int(value)
        elif key == "shared" and value.isdigit() and int(value) >= 2:
            shares = int(value)
        elif key == "nvlink" and not value:
            nvlink = True
        else:
            raise InventorySpecError(
                f"node {node}: unknown option {opt!r} (known: mig=, slices=, shared=, nvlink)"
            )
    if mig and shares > 1:
        raise InventorySpecError(f"node {node}: a GPU cannot be both MIG and shared")
    if sum(gi for _, gi, _ in mig) > slices:
        raise InventorySpecError(
            f"node {node}: MIG layout uses {sum(gi for _, gi, _ in mig)} slices "
            f"but the GPU has {slices}"
        )
    uuids = [f"GPU-sim-{node}-{first_index + i}" for i in range(count)]
    gpus = []
    for i, uuid in enumerate(uuids):
        index = first_index + i
        instances = tuple(
            MigInstance(
                uuid=f"MIG-sim-{node}-{index}-{j}", index=j, profile=p, slices=gi, memory_mb=mb
            )
            for j, (p, gi, mb) in enumerate(mig)
        )
        gpus.append(
            Gpu(
                uuid=uuid,
                index=index,
                model=model,
                memory_mb=memory_mb,
                mig_enabled=bool(mig),
                mig_instances=instances,
                total_slices=slices,
                nvlink_peers=tuple(u for u in uuids if u != uuid) if nvlink else (),
                shares=shares,
                simulated=True,
            )
        )
    return gpus


def parse_spec(spec: str) -> list[Node]:
    """Parse a simulated inventory spec into nodes (see the module docstring)."""
    nodes: dict[str, Node] = {}
    for entry in filter(str.strip, split_outside(spec, ";")):
        names, sep, groups = entry.partition(":")
        if not sep:
            raise InventorySpecError(
                f"{entry.strip()!r} has no ':' between node name and GPUs, e.g. 'node-1: 4xH100-80GB'"
            )
        for name in expand_names(names):
            if name in nodes:
                raise InventorySpecError(f"node {name} is described twice")
            gpus: list[Gpu] = []
            for group in filter(str.strip, split_outside(groups, ",")):
                gpus.extend(_parse_group(name, group, len(gpus)))
            nodes[name] = Node(name=name, gpus=tuple(gpus), simulated=True)
    return list(nodes.values())
