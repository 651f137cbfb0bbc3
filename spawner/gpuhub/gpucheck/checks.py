"""The sections of the GPU check, in the order they run.

1. **inventory**: :class:`gpuhub.inventory.NvmlInventory` reads the node as the service would.
2. **sampler**: the notebook extension reads a whole GPU of a lease environment.
3. **mig**: the same for a MIG slice where a GPU has MIG mode on with slices.
4. **gpm**: whether the GPUs have GPM, and the slice's utilization through it.
5. **isolation**: a child started with a lease's ``CUDA_VISIBLE_DEVICES`` /
   ``NVIDIA_VISIBLE_DEVICES`` sees only that device (torch, else ``nvidia-smi -L``).
6. **torch_job**: a child allocates memory on the device with torch; the extension's reading
   must show it (memory used and the process).

A section never raises for what it finds: it says so in its status and summary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpuhub import __version__
from gpuhub.inventory import Node, NvmlInventory

from .devices import ExtensionReading, Target, Targets, pick_targets
from .report import FAIL, INCONCLUSIVE, NOT_SUPPORTED, PASS, SKIPPED, Report, Section

#: A UUID no device has: CUDA must then show no device at all.
UNKNOWN_UUID = "GPU-00000000-0000-0000-0000-000000000000"
PROBE = "gpuhub.gpucheck.probe"
#: The share of the job's allocation that must show in the memory used (the rest is slack for
#: other processes freeing memory meanwhile).
SHOWN_SHARE = 0.9


class NoDriver(Exception):
    """NVML cannot be used on this machine; the message is the sentence the check prints."""


def load_nvml() -> ModuleType:
    """pynvml, initialised; :class:`NoDriver` with one sentence where it cannot start."""
    try:
        import pynvml
    except ImportError as e:
        raise NoDriver(f"no NVIDIA driver: NVML could not be loaded (nvidia-ml-py: {e})") from e
    try:
        pynvml.nvmlInit()
    except OSError as e:
        raise NoDriver(f"no NVIDIA driver: NVML could not be loaded ({e})") from e
    except pynvml.NVMLError as e:
        if e.value in (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED):
            raise NoDriver(f"no NVIDIA driver: NVML could not be loaded ({e})") from e
        raise NoDriver(f"the NVIDIA driver is there but NVML did not start ({e})") from e
    return pynvml


@dataclass(frozen=True)
class Options:
    """What a run of the check may be told."""

    device: str | None = None  # a UUID or GPU index; default: the first whole GPU
    memory_mb: int = 1024  # what the torch job allocates
    timeout_s: float = 180.0  # for each child (torch's first CUDA call can take a while)
    interval_s: float = 0.5  # the extension's sampling interval during the check


def now_iso() -> str:
    """This moment in UTC, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


async def run_check(nvml: ModuleType, options: Options, log: logging.Logger) -> Report:
    """Run every section against the initialised ``nvml``; the report."""
    report = Report(host=socket.gethostname(), started_at=now_iso(), system=system_info(nvml))
    node, inventory = inventory_section(log)
    report.sections.append(inventory)
    if not node.gpus:
        for name, title in TITLES[1:]:
            report.sections.append(Section(name, title, SKIPPED, "no GPU to check"))
        report.finished_at = now_iso()
        return report
    targets = pick_targets(node, options.device)
    report.sections.append(await sampler_section(node, targets, options, log))
    mig, mig_answer = await mig_section(nvml, node, targets, options, log)
    report.sections.append(mig)
    report.sections.append(gpm_section(nvml, node, targets, mig_answer))
    isolation, torch_version = await isolation_section(node, targets, options)
    report.sections.append(isolation)
    report.sections.append(await torch_job_section(node, targets, torch_version, options, log))
    report.finished_at = now_iso()
    return report


TITLES = (
    ("inventory", "NVML inventory"),
    ("sampler", "Extension sampler: whole GPU"),
    ("mig", "Extension sampler: MIG slice"),
    ("gpm", "GPM (MIG slice utilization)"),
    ("isolation", "Device isolation"),
    ("torch_job", "Torch job seen by the extension"),
)
_TITLE = dict(TITLES)


def system_info(nvml: ModuleType) -> dict[str, Any]:
    """Versions of the driver, NVML, CUDA (as the driver supports it), gpuhub and Python."""

    def ask(name: str) -> Any:
        try:
            value = getattr(nvml, name)()
        except nvml.NVMLError:
            return None
        return value.decode() if isinstance(value, bytes) else value

    cuda = ask("nvmlSystemGetCudaDriverVersion")
    try:
        nvidia_ml_py = importlib.metadata.version("nvidia-ml-py")
    except importlib.metadata.PackageNotFoundError:
        nvidia_ml_py = None
    return {
        "driver": ask("nvmlSystemGetDriverVersion"),
        "nvml": ask("nvmlSystemGetNVMLVersion"),
        "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
        "gpuhub": __version__,
        "nvidia_ml_py": nvidia_ml_py,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- 1. inventory ------------------------------------------------------------------------


def inventory_section(log: logging.Logger) -> tuple[Node, Section]:
    """This machine as the service's NVML inventory reads it."""
    node = NvmlInventory(node_name=socket.gethostname(), log=log).nodes()[0]
    details = node.to_dict()
    if not node.gpus:
        summary = "NVML started but read no GPU (the log above says why)"
        return node, Section("inventory", _TITLE["inventory"], FAIL, summary, details)
    parts = []
    for g in node.gpus:
        text = f"GPU {g.index}: {g.model}, {g.memory_mb} MiB"
        if g.mig_enabled:
            text += f", MIG mode with {len(g.mig_instances)} slice(s)"
        if g.nvlink_peers:
            text += f", NVLink to {len(g.nvlink_peers)} GPU(s)"
        parts.append(text)
    summary = f"{len(node.gpus)} GPU(s): " + "; ".join(parts)
    return node, Section("inventory", _TITLE["inventory"], PASS, summary, details)


# -- 2. and 3. the extension's sampler ----------------------------------------------------


def _describe(sample: dict[str, Any]) -> str:
    """One sample in words."""
    util = sample.get("utilization_pct")
    parts = [
        f"{util:g}% busy" if util is not None else "utilization n/a",
        f"{sample['memory_used_mb']:.0f} of {sample['memory_total_mb']:.0f} MiB used",
    ]
    if sample.get("temperature_c") is not None:
        parts.append(f"{sample['temperature_c']:g} °C")
    if sample.get("power_w") is not None:
        parts.append(f"{sample['power_w']:.0f} W")
    parts.append(f"{len(sample.get('processes') or ())} process(es)")
    return ", ".join(parts)


def _judge_reading(answer: dict[str, Any], target: Target) -> tuple[list[str], dict | None]:
    """What is wrong with the extension's answer for ``target`` (nothing: []), and its
    device entry."""
    devices = answer["devices"]
    if not devices:
        return [f"the extension has no sampler for {target.uuid}: {answer['error']}"], None
    device = devices[0]
    sample = device["latest"]
    problems = []
    if device["uuid"] != target.uuid or len(devices) != 1:
        problems.append(f"the extension read {[d['uuid'] for d in devices]}, not {target.uuid}")
    if answer["error"]:
        problems.append(f"the extension reports: {answer['error']}")
    if sample is None:
        problems.append("the extension took no sample")
        return problems, device
    if abs(sample["memory_total_mb"] - target.memory_mb) > 1:
        problems.append(
            f"memory total {sample['memory_total_mb']:.0f} MiB differs from the inventory's "
            f"{target.memory_mb} MiB"
        )
    if device["kind"] != target.kind:
        problems.append(f"the extension calls it a {device['kind']}, not a {target.kind}")
    return problems, device


async def sampler_section(
    node: Node, targets: Targets, options: Options, log: logging.Logger
) -> Section:
    """The extension's sampler on a whole GPU of a lease environment."""
    title = _TITLE["sampler"]
    target = targets.whole
    if target is None:
        return Section("sampler", title, SKIPPED, "every GPU is in MIG mode: no whole GPU")
    async with ExtensionReading(target.env(node), interval=options.interval_s, log=log) as ext:
        answer = await ext.wait(1, timeout=15.0)
    problems, device = _judge_reading(answer, target)
    if device is not None and device["latest"] is not None and device["name"] != target.gpu.model:
        problems.append(f"the extension names it {device['name']!r}, not {target.gpu.model!r}")
    if problems:
        return Section("sampler", title, FAIL, "; ".join(problems), answer)
    summary = f"{target.label}: {_describe(device['latest'])}"
    return Section("sampler", title, PASS, summary, answer)


def _mig_modes(nvml: ModuleType, node: Node) -> dict[int, str]:
    """Per GPU index: ``on``, ``off`` or ``not supported`` (NVML's MIG mode, current)."""
    modes = {}
    for gpu in node.gpus:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
            current = nvml.nvmlDeviceGetMigMode(handle)[0]
        except nvml.NVMLError_NotSupported:
            modes[gpu.index] = NOT_SUPPORTED
            continue
        except nvml.NVMLError as e:
            modes[gpu.index] = f"unknown ({e})"
            continue
        modes[gpu.index] = "on" if current == nvml.NVML_DEVICE_MIG_ENABLE else "off"
    return modes


async def mig_section(
    nvml: ModuleType, node: Node, targets: Targets, options: Options, log: logging.Logger
) -> tuple[Section, dict[str, Any] | None]:
    """The extension's sampler on a MIG slice (two reads: GPM needs a pair of samples)."""
    title = _TITLE["mig"]
    modes = _mig_modes(nvml, node)
    details: dict[str, Any] = {"mig_mode": {str(i): m for i, m in modes.items()}}
    if all(m == NOT_SUPPORTED for m in modes.values()):
        summary = "no GPU here supports MIG (A100, A30, H100 and later do)"
        return Section("mig", title, NOT_SUPPORTED, summary, details), None
    target = targets.mig
    if target is None:
        capable = ", ".join(str(i) for i, m in modes.items() if m != NOT_SUPPORTED)
        summary = (
            f"GPU {capable} supports MIG, but no GPU has MIG mode on with slices; "
            "to check slices, turn it on (nvidia-smi -i N -mig 1) and create some"
        )
        return Section("mig", title, SKIPPED, summary, details), None
    async with ExtensionReading(target.env(node), interval=options.interval_s, log=log) as ext:
        answer = await ext.wait(2, timeout=15.0)
    details["reading"] = answer
    problems, device = _judge_reading(answer, target)
    if device is not None and device["profile"] != target.mig.profile:
        problems.append(
            f"the extension's profile {device['profile']!r} is not {target.mig.profile!r}"
        )
    if problems:
        return Section("mig", title, FAIL, "; ".join(problems), details), answer
    summary = f"{target.label}: {_describe(device['latest'])}"
    return Section("mig", title, PASS, summary, details), answer


# -- 4. GPM ------------------------------------------------------------------------------


def _gpm_support(nvml: ModuleType, node: Node) -> dict[int, bool]:
    """Per GPU index: whether NVML says it has GPM (Hopper and later)."""
    support = {}
    for gpu in node.gpus:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
            support[gpu.index] = bool(nvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
        except (AttributeError, nvml.NVMLError):  # AttributeError: nvidia-ml-py without GPM
            support[gpu.index] = False
    return support


def gpm_section(
    nvml: ModuleType, node: Node, targets: Targets, mig_answer: dict[str, Any] | None
) -> Section:
    """GPM support per GPU, and the MIG slice's utilization the extension read through it."""
    title = _TITLE["gpm"]
    support = _gpm_support(nvml, node)
    details: dict[str, Any] = {"gpm_supported": {str(i): s for i, s in support.items()}}
    if not any(support.values()):
        summary = "no GPU here has GPM (Hopper and later do): MIG slices show no utilization"
        return Section("gpm", title, NOT_SUPPORTED, summary, details)
    target = targets.mig
    if target is None or mig_answer is None or not mig_answer["devices"]:
        with_gpm = ", ".join(str(i) for i, s in support.items() if s)
        summary = (
            f"GPU {with_gpm} has GPM; the extension uses it for MIG slices only, "
            "and no slice was read here"
        )
        return Section("gpm", title, SKIPPED, summary, details)
    sample = mig_answer["devices"][0]["latest"] or {}
    util = sample.get("utilization_pct")
    details["slice_utilization_pct"] = util
    if not support.get(target.gpu.index):
        summary = f"GPU {target.gpu.index}, which holds the slice, has no GPM"
        return Section("gpm", title, NOT_SUPPORTED, summary, details)
    if util is None:
        summary = f"GPU {target.gpu.index} has GPM, but the extension read no utilization of {target.label}"
        return Section("gpm", title, FAIL, summary, details)
    return Section("gpm", title, PASS, f"{target.label}: {util:g}% SM utilization", details)


# -- 5. isolation ------------------------------------------------------------------------


def child_env(lease_env: dict[str, str]) -> dict[str, str]:
    """This process's environment with a lease's GPU variables on top."""
    return {**os.environ, **lease_env}


async def run_visible(env: dict[str, str], timeout: float) -> dict[str, Any]:
    """What a child with ``env`` can see (the probe's ``visible`` answer)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", PROBE, "visible",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"method": None, "count": None, "crashed": f"no answer within {timeout:g} s"}
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = err.decode(errors="replace").strip()[-1000:]
        return {"method": None, "count": None, "crashed": f"exit {proc.returncode}: {tail}"}


def _same_uuid(a: str | None, b: str) -> bool | None:
    """Whether two UUIDs name one device, with or without their ``GPU-``/``MIG-`` prefix."""
    if not a:
        return None

    def bare(u: str) -> str:
        return u.lower().removeprefix("gpu-").removeprefix("mig-")

    return bare(a) == bare(b)


def _judge_visible(seen: dict[str, Any], target: Target) -> tuple[str, str]:
    """(status, sentence) for what a child with ``target``'s environment saw."""
    method, count = seen.get("method"), seen.get("count")
    if seen.get("crashed"):
        return FAIL, f"{target.label}: the child failed: {seen['crashed']}"
    if method is None:  # neither torch nor nvidia-smi here
        return SKIPPED, f"{target.label}: {seen.get('error')}"
    if count is None:
        return FAIL, f"{target.label}: {seen.get('error')}"
    devices = seen.get("devices") or []
    if method == "torch":
        if count != 1:
            return FAIL, f"{target.label}: torch in the child sees {count} devices, not 1"
        same = _same_uuid(devices[0].get("uuid"), target.uuid)
        if same is False and target.kind == "gpu":
            return FAIL, f"{target.label}: the child's one device is {devices[0].get('uuid')}"
        note = ""
        if same is None:
            note = " (torch gave no UUID to compare)"
        elif not same:  # a MIG slice: CUDA may name it by another UUID than NVML's
            note = f" (CUDA names it {devices[0].get('uuid')})"
        return PASS, f"{target.label}: torch in the child sees only this device{note}"
    # nvidia-smi reads neither variable itself: only a container runtime applies
    # NVIDIA_VISIBLE_DEVICES, so on a bare host it lists every GPU and proves nothing
    if count == 1 and devices[0]["uuid"] == target.uuid:
        return PASS, f"{target.label}: nvidia-smi -L in the child lists only this device"
    return INCONCLUSIVE, (
        f"{target.label}: nvidia-smi -L in the child lists {count} devices; nvidia-smi ignores "
        "CUDA_VISIBLE_DEVICES, so outside a container this shows nothing (install torch for "
        "a conclusive check)"
    )


async def isolation_section(
    node: Node, targets: Targets, options: Options
) -> tuple[Section, str | None]:
    """Children with a lease's environment see only its device; also torch's version in
    them (None: torch is not installed)."""
    title = _TITLE["isolation"]
    cases = [targets.primary]
    if targets.mig is not None and targets.mig != targets.primary:
        cases.append(targets.mig)
    results, details = [], {}
    torch_version = None
    for target in cases:
        env = target.env(node)
        seen = await run_visible(child_env(env), options.timeout_s)
        status, sentence = _judge_visible(seen, target)
        results.append((status, sentence))
        torch_version = torch_version or seen.get("torch")
        details[target.uuid] = {
            "CUDA_VISIBLE_DEVICES": env["CUDA_VISIBLE_DEVICES"],
            "NVIDIA_VISIBLE_DEVICES": env["NVIDIA_VISIBLE_DEVICES"],
            "seen": seen,
        }
    if torch_version is not None:
        # the control: were the variable ignored, a one-GPU machine would pass the above too
        unknown = {"CUDA_VISIBLE_DEVICES": UNKNOWN_UUID, "NVIDIA_VISIBLE_DEVICES": UNKNOWN_UUID}
        seen = await run_visible(child_env(unknown), options.timeout_s)
        details["control"] = {**unknown, "seen": seen}
        if seen.get("count") == 0:
            results.append((PASS, "with an unknown UUID the child sees no device"))
        else:
            results.append(
                (FAIL, f"with an unknown UUID the child sees {seen.get('count')} devices")
            )
    statuses = {s for s, _ in results}
    status = next((s for s in (FAIL, INCONCLUSIVE, PASS) if s in statuses), SKIPPED)
    summary = "; ".join(sentence for _, sentence in results)
    return Section("isolation", title, status, summary, details), torch_version


# -- 6. a torch job, seen by the extension -----------------------------------------------


async def _release(proc: asyncio.subprocess.Process) -> None:
    """Let the holding child go (a line on its stdin), or kill it if it does not leave."""
    if proc.returncode is None and proc.stdin is not None:
        try:
            proc.stdin.write(b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it has already gone
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def torch_job_section(
    node: Node,
    targets: Targets,
    torch_version: str | None,
    options: Options,
    log: logging.Logger,
) -> Section:
    """A child allocates memory on the device with torch; the extension must show it."""
    title = _TITLE["torch_job"]
    if torch_version is None:
        summary = (
            "torch is not installed here, so no job allocated GPU memory; install it "
            "(pip install torch) and run the check again"
        )
        return Section("torch_job", title, SKIPPED, summary)
    target, mb = targets.primary, options.memory_mb
    details: dict[str, Any] = {"device": target.uuid, "torch": torch_version, "allocate_mb": mb}
    env = child_env(target.env(node))
    async with ExtensionReading(target.env(node), interval=options.interval_s, log=log) as ext:
        before = await ext.wait(1, timeout=15.0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", PROBE, "hold", str(mb), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # read its stderr all along: torch's warnings must not fill the pipe and stall it
        stderr = asyncio.ensure_future(proc.stderr.read())
        during: dict[str, Any] = {}
        try:
            job = await _job_started(proc, options.timeout_s)
            if "error" not in job:
                during = await ext.wait(1, newer_than=time.time(), timeout=15.0)
        finally:
            await _release(proc)
        after = await ext.wait(1, newer_than=time.time(), timeout=15.0)
    details.update(job=job, before=before, during=during, after=after)
    job_stderr = (await stderr).decode(errors="replace")  # it has ended: the read is done
    if "error" in job:
        details["job_stderr"] = job_stderr[-2000:]
        return Section("torch_job", title, FAIL, f"the torch job failed: {job['error']}", details)
    return _judge_job(title, target, job, before, during, mb, details)


async def _job_started(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    """The holding child's first line: what it allocated, or ``{"error": ...}``."""
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except TimeoutError:
        return {"error": f"the job did not start within {timeout:g} s"}
    if not line.strip():
        return {"error": "the job ended without a word (its stderr is in the details)"}
    try:
        return json.loads(line)
    except ValueError:
        return {"error": f"the job said {line[:200].decode(errors='replace')!r}"}


def _latest(answer: dict[str, Any]) -> dict[str, Any] | None:
    return answer["devices"][0]["latest"] if answer["devices"] else None


def _judge_job(
    title: str,
    target: Target,
    job: dict[str, Any],
    before: dict[str, Any],
    during: dict[str, Any],
    mb: int,
    details: dict[str, Any],
) -> Section:
    """Did the job's memory and process show in the extension's reading?"""
    first, held = _latest(before), _latest(during)
    if first is None or held is None:
        error = during["error"] or before["error"]
        return Section("torch_job", title, FAIL, f"the extension took no sample: {error}", details)
    grew = held["memory_used_mb"] - first["memory_used_mb"]
    problems, found = [], []
    if grew >= SHOWN_SHARE * mb:
        found.append(f"memory used rose by {grew:.0f} MiB (the job allocated {mb})")
    else:
        problems.append(f"memory used rose by {grew:.0f} MiB only; the job allocated {mb} MiB")
    procs = held.get("processes") or []
    pid = job.get("pid")
    mine = [p for p in procs if p["pid"] == pid]
    big = [p for p in procs if p["memory_mb"] >= SHOWN_SHARE * mb]
    if mine:
        found.append(
            f"its process {pid} ({mine[0]['name']}) is listed with {mine[0]['memory_mb']:.0f} MiB"
        )
    elif big:
        # in a container NVML names processes by the host's pids, which differ from ours
        found.append(
            f"a process with {big[0]['memory_mb']:.0f} MiB is listed as pid {big[0]['pid']} "
            f"(the job is pid {pid} here: NVML uses the host's pid namespace)"
        )
    else:
        problems.append(f"no process of the job is listed (processes: {procs})")
    if problems:
        return Section("torch_job", title, FAIL, "; ".join(problems + found), details)
    summary = f"{target.label}, torch {job.get('torch')}: " + "; ".join(found)
    return Section("torch_job", title, PASS, summary, details)
