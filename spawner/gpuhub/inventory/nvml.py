"""Read this machine's GPUs through NVML (nvidia-ml-py, ``import pynvml``).

:func:`read_node` turns what NVML reports into a :class:`~gpuhub.inventory.model.Node`:
whole GPUs, MIG devices with their profiles, and NVLink peers among the local GPUs.
A machine without the NVIDIA driver yields a node with no GPUs, and a GPU that has
fallen off the bus is left out with a warning while the rest of the node is kept.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from types import ModuleType
from typing import Any

from .model import Gpu, MigInstance, Node

_MB = 2**20
_MIG_PROFILE = re.compile(r"\bMIG\s+((?:\d+c\.)?\d+g\.\d+gb\S*)")


def read_node(
    node_name: str, *, log: logging.Logger | None = None, nvml: ModuleType | None = None
) -> Node:
    """Describe this machine as ``node_name`` with every GPU NVML can read.

    ``nvml`` is the pynvml module to use (imported when not given). When the NVML
    library or the driver is missing, a warning is logged and the node has no GPUs.
    """
    log = log or logging.getLogger(__name__)
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as e:
            log.warning("nvidia-ml-py is not installed (%s); node %s has no GPUs", e, node_name)
            return Node(name=node_name, gpus=())
    try:
        nvml.nvmlInit()
    except OSError as e:
        log.warning("NVML is not available (%s); node %s has no GPUs", e, node_name)
        return Node(name=node_name, gpus=())
    except nvml.NVMLError as e:
        if e.value not in (nvml.NVML_ERROR_LIBRARY_NOT_FOUND, nvml.NVML_ERROR_DRIVER_NOT_LOADED):
            raise
        log.warning("NVML is not available (%s); node %s has no GPUs", e, node_name)
        return Node(name=node_name, gpus=())
    try:
        gpus = _read_gpus(nvml, log)
    finally:
        nvml.nvmlShutdown()
    return Node(name=node_name, gpus=gpus)


def _read_gpus(nvml: ModuleType, log: logging.Logger) -> tuple[Gpu, ...]:
    """Every readable GPU, with NVLink peers resolved to the UUIDs of local GPUs."""
    found: list[tuple[Gpu, str, set[str]]] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        try:
            found.append(_read_gpu(nvml, index, log))
        except nvml.NVMLError as e:
            log.warning("NVML: skipping GPU %d: %s", index, e)
    uuid_at = {bus_id: gpu.uuid for gpu, bus_id, _ in found}
    gpus = []
    for gpu, _, remote in found:
        peers = {uuid_at[b] for b in remote if b in uuid_at} - {gpu.uuid}
        gpus.append(replace(gpu, nvlink_peers=tuple(sorted(peers))))
    return tuple(gpus)


def _read_gpu(nvml: ModuleType, index: int, log: logging.Logger) -> tuple[Gpu, str, set[str]]:
    """One GPU (peers not yet resolved), its own PCI bus id and its NVLink remote bus ids."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    try:
        mig_enabled = nvml.nvmlDeviceGetMigMode(handle)[0] == nvml.NVML_DEVICE_MIG_ENABLE
    except nvml.NVMLError_NotSupported:
        mig_enabled = False
    instances: tuple[MigInstance, ...] = ()
    total_slices = 7
    if mig_enabled:
        instances = _read_mig_instances(nvml, handle, index, log)
        try:
            total_slices = nvml.nvmlDeviceGetGpuInstanceProfileInfo(
                handle, nvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE
            ).instanceCount
        except nvml.NVMLError:
            total_slices = 7
    gpu = Gpu(
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        index=index,
        model=_text(nvml.nvmlDeviceGetName(handle)),
        memory_mb=nvml.nvmlDeviceGetMemoryInfo(handle).total // _MB,
        mig_enabled=mig_enabled,
        mig_instances=instances,
        total_slices=total_slices,
        simulated=False,
    )
    bus_id = _bus_id(nvml.nvmlDeviceGetPciInfo(handle).busId)
    return gpu, bus_id, _nvlink_remote_bus_ids(nvml, handle)


def _read_mig_instances(
    nvml: ModuleType, handle: Any, index: int, log: logging.Logger
) -> tuple[MigInstance, ...]:
    """The MIG devices of a GPU in MIG mode; empty slots are skipped."""
    instances = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except (nvml.NVMLError_NotFound, nvml.NVMLError_InvalidArgument):
            continue
        attrs = _attributes(nvml, mig)
        try:
            profile = _profile_from_name(_text(nvml.nvmlDeviceGetName(mig)))
        except nvml.NVMLError:
            profile = None
        if profile is None and attrs is not None:
            profile = _profile_from_attributes(attrs)
        if profile is None:
            log.warning("NVML: GPU %d MIG device %d has no known profile; skipped", index, slot)
            continue
        if attrs is not None:
            slices = int(attrs.gpuInstanceSliceCount)
        else:
            slices = int(re.search(r"(\d+)g\.", profile).group(1))
        instances.append(
            MigInstance(
                uuid=_text(nvml.nvmlDeviceGetUUID(mig)),
                index=slot,
                profile=profile,
                slices=slices,
                memory_mb=nvml.nvmlDeviceGetMemoryInfo(mig).total // _MB,
            )
        )
    return tuple(instances)


def _attributes(nvml: ModuleType, mig: Any) -> Any | None:
    """A MIG device's attributes (slice counts, memory), or None when NVML cannot tell."""
    get = getattr(nvml, "nvmlDeviceGetAttributes_v2", None) or nvml.nvmlDeviceGetAttributes
    try:
        return get(mig)
    except nvml.NVMLError:
        return None


def _profile_from_name(name: str) -> str | None:
    """``"NVIDIA H100 80GB HBM3 MIG 1g.10gb"`` -> ``"1g.10gb"`` (None when absent)."""
    match = _MIG_PROFILE.search(name)
    return match.group(1) if match else None


def _profile_from_attributes(attrs: Any) -> str:
    """A profile name such as ``"3g.40gb"`` or ``"1c.3g.40gb"`` from MIG attributes."""
    gi, ci = int(attrs.gpuInstanceSliceCount), int(attrs.computeInstanceSliceCount)
    profile = f"{gi}g.{math.ceil(attrs.memorySizeMB / 1024)}gb"
    return profile if ci == gi else f"{ci}c.{profile}"


def _nvlink_remote_bus_ids(nvml: ModuleType, handle: Any) -> set[str]:
    """PCI bus ids at the far end of this GPU's active NVLinks (GPUs or NVSwitches)."""
    remote_info = (
        getattr(nvml, "nvmlDeviceGetNvLinkRemotePciInfo_v2", None)
        or nvml.nvmlDeviceGetNvLinkRemotePciInfo
    )
    absent = (nvml.NVMLError_NotSupported, nvml.NVMLError_InvalidArgument)
    remote: set[str] = set()
    for link in range(nvml.NVML_NVLINK_MAX_LINKS):
        try:
            if nvml.nvmlDeviceGetNvLinkState(handle, link) != nvml.NVML_FEATURE_ENABLED:
                continue
            remote.add(_bus_id(remote_info(handle, link).busId))
        except absent:
            continue
    return remote


def _bus_id(value: str | bytes) -> str:
    """A PCI bus id as ``"0000:3b:00.0"``, whether NVML gave a 4- or 8-digit domain."""
    text = _text(value).strip().strip("\x00").lower()
    parts = text.split(":")
    if len(parts) == 3 and re.fullmatch(r"[0-9a-f]+", parts[0]):
        return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"
    return text[-12:]


def _text(value: str | bytes) -> str:
    """NVML strings arrive as ``bytes`` from older nvidia-ml-py releases."""
    return value.decode() if isinstance(value, bytes) else value
