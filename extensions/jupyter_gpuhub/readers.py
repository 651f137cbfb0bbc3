"""Where the sampler's samples come from: NVML for real devices, this server's CPU time
for simulated ones.

A reader's :meth:`~Reader.read` runs in the sampler's worker thread, never on the event
loop. It returns one :class:`Reading`: a sample per device it could read, and a sentence
per device (or for the whole of NVML) it could not. A value NVML does not support on a
device (utilization of most MIG slices, temperature of a slice) is ``None``, never 0.

Every sample says whose activity it measures in ``scope``: ``"device"`` for the whole
device (a whole GPU, a MIG slice), ``"lease"`` for a seat of a shared (time-sliced) GPU,
where utilization and memory used are those of this server's own processes only: a busy
neighbour on the same GPU must not make this lease look busy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

_MB = 2**20


@dataclass
class Device:
    """One device of the lease as the API describes it (besides its samples)."""

    uuid: str
    index: int
    name: str
    kind: str  # "gpu" | "mig"
    profile: str | None = None
    simulated: bool = False
    shared: bool = False  # a seat of a time-sliced GPU that other leases share

    @property
    def scope(self) -> str:
        """Whose activity the samples measure: ``"lease"`` on a shared GPU, else ``"device"``."""
        return "lease" if self.shared else "device"

    def to_json(self) -> dict[str, Any]:
        """The device's fields of the ``devices`` answer."""
        return {
            "uuid": self.uuid,
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "profile": self.profile,
            "simulated": self.simulated,
            "shared": self.shared,
        }


@dataclass
class Reading:
    """What one read found: samples by device UUID, and what went wrong."""

    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Reader:
    """The base of the readers: the lease's devices and a blocking :meth:`read`."""

    simulated = False

    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices

    def read(self) -> Reading:  # pragma: no cover - abstract
        """One sample of every device (blocking; runs in a worker thread)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader holds (NVML)."""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def kind_of(uuid: str) -> str:
    """``"mig"`` for a ``MIG-...`` UUID, else ``"gpu"``."""
    return "mig" if uuid.startswith("MIG-") else "gpu"


def process_name(pid: int) -> str:
    """The command name of ``pid`` (``"?"`` when this container cannot see it)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"


class NvmlReader(Reader):
    """Samples the lease's devices through NVML, found by UUID (``GPU-...``/``MIG-...``).

    NVML is initialised on the first read and again after a failure that concerns the
    whole of NVML (driver gone, GPU lost), so the sampler recovers when NVML answers again.

    On a shared GPU (``device.shared``) utilization and memory used count only the
    processes ``own_pids()`` names (this server's process tree by default): utilization
    is the sum of their SM utilization from ``nvmlDeviceGetProcessUtilization``, or None
    where the driver does not support it, never the whole GPU's.
    """

    def __init__(
        self,
        devices: list[Device],
        nvml: ModuleType | None = None,
        own_pids: Callable[[], set[int]] | None = None,
    ) -> None:
        super().__init__(devices)
        if nvml is None:
            import pynvml as nvml
        self.nvml = nvml
        self.own_pids = own_pids or (lambda: set(ProcessTree().members()))
        # shared GPUs: when each was last read (NVML's per-process samples are asked since)
        self._util_since: dict[str, int] = {}
        self._ready = False
        self._handles: dict[str, Any] = {}
        # MIG slices' GPM state: [parent handle, GPU instance id, previous sample], or
        # False where the GPU has no GPM (utilization stays None)
        self._gpm: dict[str, list[Any] | bool] = {}

    def close(self) -> None:
        """Shut NVML down if it was initialised."""
        if self._ready:
            self._ready = False
            self._handles.clear()
            for state in self._gpm.values():
                if isinstance(state, list) and state[2] is not None:
                    try:
                        self.nvml.nvmlGpmSampleFree(state[2])
                    except self.nvml.NVMLError:
                        pass  # NVML is going anyway
            self._gpm.clear()
            try:
                self.nvml.nvmlShutdown()
            except self.nvml.NVMLError:
                pass  # NVML already gone: nothing to release

    def read(self) -> Reading:
        """One sample per device; NVML failures become sentences in ``errors``."""
        nvml = self.nvml
        reading = Reading()
        if not self._ready:
            try:
                nvml.nvmlInit()
            except (OSError, nvml.NVMLError) as e:
                reading.errors.append(f"NVML is not available: {e}")
                return reading
            self._ready = True
        for device in self.devices:
            try:
                reading.samples[device.uuid] = self._sample(device)
            except nvml.NVMLError as e:
                reading.errors.append(f"NVML could not read {device.uuid}: {e}")
                self._handles.pop(device.uuid, None)
                if e.value in (
                    nvml.NVML_ERROR_GPU_IS_LOST,
                    nvml.NVML_ERROR_DRIVER_NOT_LOADED,
                    nvml.NVML_ERROR_UNINITIALIZED,
                    nvml.NVML_ERROR_LIBRARY_NOT_FOUND,
                    nvml.NVML_ERROR_UNKNOWN,
                ):
                    self.close()  # start NVML afresh next time
                    break
        return reading

    def _handle(self, device: Device) -> Any:
        handle = self._handles.get(device.uuid)
        if handle is None:
            handle = self.nvml.nvmlDeviceGetHandleByUUID(device.uuid)
            self._handles[device.uuid] = handle
            self._describe(device, handle)
        return handle

    def _describe(self, device: Device, handle: Any) -> None:
        """Fill in the device's name (and a slice's profile) from NVML."""
        nvml = self.nvml
        name = _text(nvml.nvmlDeviceGetName(handle))
        if device.kind == "mig":
            parent_name = None
            try:
                parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
                parent_name = _text(nvml.nvmlDeviceGetName(parent))
            except nvml.NVMLError:
                pass  # the slice's own name still says enough
            profile = name.rsplit("MIG", 1)[-1].strip() if "MIG" in name else name
            device.profile = profile
            device.name = f"{profile} slice of {parent_name}" if parent_name else name
        else:
            device.name = name

    def _optional(self, call: Any, *args: Any) -> Any:
        """``call(*args)``, or None when NVML does not support it on this device."""
        nvml = self.nvml
        try:
            return call(*args)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission):
            return None

    def _sample(self, device: Device) -> dict[str, Any]:
        nvml = self.nvml
        handle = self._handle(device)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        rates = self._optional(nvml.nvmlDeviceGetUtilizationRates, handle)
        temperature = self._optional(
            nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU
        )
        power = self._optional(nvml.nvmlDeviceGetPowerUsage, handle)
        limit = self._optional(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        clock = self._optional(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM)
        procs = self._optional(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
        used_mb = memory.used / _MB
        if device.shared:
            ours = self.own_pids()
            procs = [p for p in procs if int(p.pid) in ours]
            used_mb = sum((p.usedGpuMemory or 0) for p in procs) / _MB
            util = self._lease_utilization(device, handle, ours)
        else:
            util = float(rates.gpu) if rates is not None else None
        if util is None and device.kind == "mig":
            util = self._mig_utilization(device, handle)
        return {
            "t": time.time(),
            "scope": device.scope,
            "utilization_pct": util,
            "memory_used_mb": used_mb,
            "memory_total_mb": memory.total / _MB,
            "temperature_c": float(temperature) if temperature is not None else None,
            "power_w": power / 1000 if power is not None else None,
            "power_limit_w": limit / 1000 if limit is not None else None,
            "sm_clock_mhz": float(clock) if clock is not None else None,
            "processes": [
                {
                    "pid": int(p.pid),
                    "name": process_name(int(p.pid)),
                    "memory_mb": (p.usedGpuMemory or 0) / _MB,
                }
                for p in procs
            ],
        }

    def _lease_utilization(self, device: Device, handle: Any, ours: set[int]) -> float | None:
        """The SM utilization of ``ours`` on a shared GPU since the last read: per process
        the mean of its samples, summed (at most 100); None where NVML cannot say."""
        nvml = self.nvml
        now_us = int(time.time() * 1e6)
        since = self._util_since.get(device.uuid, now_us - 1_000_000)
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(handle, since)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission,
                nvml.NVMLError_FunctionNotFound):  # fmt: skip
            return None
        except nvml.NVMLError as e:
            # no process ran since then: NVML says "not found" (pynvml: a bare success)
            if e.value not in (nvml.NVML_SUCCESS, nvml.NVML_ERROR_NOT_FOUND):
                raise
            samples = []
        self._util_since[device.uuid] = now_us
        by_pid: dict[int, list[float]] = {}
        for sample in samples:
            if int(sample.pid) in ours:
                by_pid.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        return min(100.0, sum(sum(u) / len(u) for u in by_pid.values()))

    def _mig_utilization(self, device: Device, handle: Any) -> float | None:
        """A MIG slice's SM utilization from NVML's GPM metrics (two samples one read
        apart); None where the GPU has no GPM, and on the first read."""
        nvml = self.nvml
        state = self._gpm.get(device.uuid)
        if state is False:
            return None
        try:
            if state is None:
                parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
                if not nvml.nvmlGpmQueryDeviceSupport(parent).isSupportedDevice:
                    self._gpm[device.uuid] = False
                    return None
                state = [parent, nvml.nvmlDeviceGetGpuInstanceId(handle), None]
                self._gpm[device.uuid] = state
            sample = nvml.nvmlGpmSampleAlloc()
            nvml.nvmlGpmMigSampleGet(state[0], state[1], sample)
            previous, state[2] = state[2], sample
            if previous is None:
                return None
            try:
                query = nvml.c_nvmlGpmMetricsGet_t()
                query.version = nvml.NVML_GPM_METRICS_GET_VERSION
                query.numMetrics = 1
                query.sample1, query.sample2 = previous, sample
                query.metrics[0].metricId = nvml.NVML_GPM_METRIC_SM_UTIL
                nvml.nvmlGpmMetricsGet(query)
                return float(query.metrics[0].value)
            finally:
                nvml.nvmlGpmSampleFree(previous)
        except (AttributeError, nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission,
                nvml.NVMLError_FunctionNotFound):  # fmt: skip
            self._gpm[device.uuid] = False  # no GPM here (or an older NVML): n/a
            return None


class ProcessTree:
    """CPU seconds used by a process and all its descendants, read from ``/proc``.

    The tree is walked from the root down through each thread's ``children`` file, so a
    read opens a few files per process of this server's own, whatever else the machine
    runs. Reading every process's ``stat`` instead cost an idle server 1.5 % of a core at
    one read a second with a hundred processes on the machine, growing with them: on a
    node, every server read every other server's processes. Where the kernel has no
    ``children`` files (``CONFIG_PROC_CHILDREN`` off), every process is read and the tree
    built from their parents.
    """

    def __init__(self, root: int | None = None, proc: Path = Path("/proc")) -> None:
        self.root = root or os.getpid()
        self.proc = proc
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._walk = (proc / str(self.root) / "task" / str(self.root) / "children").exists()

    def _stat(self, pid: int | str) -> tuple[int, str, float] | None:
        """(parent pid, command name, CPU seconds) of one process; None once it is gone."""
        try:
            text = (self.proc / str(pid) / "stat").read_text()
        except OSError:
            return None  # gone meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime
        return int(fields[1]), name, cpu

    def _children(self, pid: int) -> list[int]:
        """The children of every thread of ``pid`` (none once it is gone)."""
        out: list[int] = []
        try:
            tasks = list((self.proc / str(pid) / "task").iterdir())
        except OSError:
            return out
        for task in tasks:
            try:
                out.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue  # the thread ended meanwhile
        return out

    def _stats(self) -> dict[int, tuple[int, str, float]]:
        """pid -> (parent pid, command name, CPU seconds) of every visible process."""
        stats = {}
        for entry in self.proc.iterdir():
            if entry.name.isdigit() and (stat := self._stat(entry.name)) is not None:
                stats[int(entry.name)] = stat
        return stats

    def members(self) -> dict[int, tuple[str, float]]:
        """pid -> (command name, CPU seconds) of the root and its descendants."""
        if not self.proc.is_dir():
            times = os.times()
            return {self.root: ("jupyter-server", times.user + times.system)}
        stat: Callable[[int], tuple[int, str, float] | None] = self._stat
        children: Callable[[int], Iterable[int]] = self._children
        if not self._walk:  # every process, then the tree from their parents
            stats = self._stats()
            below: dict[int, list[int]] = {}
            for pid, (ppid, _, _) in stats.items():
                below.setdefault(ppid, []).append(pid)
            stat, children = stats.get, lambda pid: below.get(pid, ())
        found: dict[int, tuple[str, float]] = {}
        todo = [self.root]
        while todo:
            pid = todo.pop()
            if pid not in found and (entry := stat(pid)) is not None:
                found[pid] = (entry[1], entry[2])
                todo.extend(children(pid))
        return found


#: What a MIG slice does not have of its own: these belong to the whole GPU.
_NO_GPU_VALUES = {
    "temperature_c": None,
    "power_w": None,
    "power_limit_w": None,
    "sm_clock_mhz": None,
}


class SimulatedReader(Reader):
    """Synthetic, clearly labelled values for simulated devices that follow this server.

    Utilization is the CPU time this server's process tree (the server and its kernels)
    used since the last read, as a share of the time that passed; memory rises with that
    activity and falls back slowly. A simulated MIG slice reports no utilization, like
    most real slices, nor temperature, power or clock. The processes are the server's kernels and terminals.
    """

    simulated = True

    def __init__(
        self, devices: list[Device], memory_total_mb: dict[str, float], tree: ProcessTree
    ) -> None:
        super().__init__(devices)
        self.memory_total_mb = memory_total_mb
        self.tree = tree
        self._last: tuple[float, float] | None = None  # (monotonic time, CPU seconds)
        self._level = 0.0

    def read(self) -> Reading:
        """One synthetic sample per device from the CPU time used since the last read."""
        now = time.monotonic()
        members = self.tree.members()
        cpu = sum(c for _, c in members.values())
        busy = 0.0
        if self._last is not None and now > self._last[0]:
            busy = max(0.0, min(1.0, (cpu - self._last[1]) / (now - self._last[0])))
        self._last = (now, cpu)
        self._level = max(busy, self._level * 0.98)
        kernels = [(pid, name) for pid, (name, _) in members.items() if pid != self.tree.root]
        reading = Reading()
        for device in self.devices:
            total = self.memory_total_mb.get(device.uuid) or 16384.0
            used = total * (0.02 + 0.8 * self._level)
            share = used / len(kernels) if kernels else 0.0
            reading.samples[device.uuid] = {
                "t": time.time(),
                "scope": device.scope,
                "utilization_pct": None if device.kind == "mig" else round(busy * 100, 1),
                "memory_used_mb": round(used, 1),
                "memory_total_mb": float(total),
                **(
                    _NO_GPU_VALUES
                    if device.kind == "mig"
                    else {
                        "temperature_c": round(35 + 40 * busy, 1),
                        "power_w": round(60 + 240 * busy, 1),
                        "power_limit_w": 300.0,
                        "sm_clock_mhz": float(round(1000 + 800 * busy)),
                    }
                ),
                "processes": [
                    {"pid": pid, "name": name, "memory_mb": round(share, 1)}
                    for pid, name in sorted(kernels)
                ],
            }
        return reading
