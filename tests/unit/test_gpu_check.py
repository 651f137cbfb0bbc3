"""scripts/gpu-check (gpuhub.gpucheck) against a fake NVML, in this process, and for real
on this machine, which has no NVIDIA driver.

No GPU exists where these tests run. :class:`FakeNvml` stands in for ``pynvml`` in
``sys.modules`` (its constants and error classes are the real module's) and answers every
call the check makes — the inventory's, the extension sampler's, the check's own — from a
device table. The check's children (``python -m gpuhub.gpucheck.probe``) find a fake
``torch`` on ``PYTHONPATH`` that honours ``CUDA_VISIBLE_DEVICES`` the way CUDA does and
writes what it allocates to a ledger folder, which the fake NVML reads back as memory used
and processes: so the check's real code path runs from end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml
import pytest
from gpuhub.gpucheck.cli import main

MB = 2**20
H100_0 = "GPU-0a0a0a0a-1111-2222-3333-444444444444"
H100_1 = "GPU-1b1b1b1b-1111-2222-3333-444444444444"
SLICE = "MIG-5c5c5c5c-aaaa-bbbb-cccc-dddddddddddd"
L4 = "GPU-4d4d4d4d-1111-2222-3333-444444444444"
L4_OTHER = "GPU-4e4e4e4e-1111-2222-3333-444444444444"


def nvml_error(code: int) -> pynvml.NVMLError:
    """The real pynvml exception for ``code``."""
    return pynvml.NVMLError(code)


# -- a fake NVML --------------------------------------------------------------------------


@dataclass
class FakeMig:
    """A MIG slice of a GPU."""

    uuid: str
    profile: str
    memory_mb: int
    parent: FakeGpu | None = None
    used_mb: int = 13


@dataclass
class FakeGpu:
    """One GPU. ``mig``: None when MIG is not supported, else whether MIG mode is on."""

    uuid: str
    name: str
    memory_mb: int
    bus_id: str
    mig: bool | None = None
    slices: list[FakeMig] = field(default_factory=list)
    gpm: bool = False
    used_mb: int = 500
    util: int = 3

    def __post_init__(self) -> None:
        for s in self.slices:
            s.parent = self


class FakeNvml(types.ModuleType):
    """Answers the check's pynvml calls from a device table.

    ``ledger``: the folder the fake torch writes allocations to (one JSON file per holding
    process); None: allocations never show (a driver that hides them).
    """

    def __init__(self, gpus: list[FakeGpu], ledger: Path | None) -> None:
        super().__init__("pynvml")
        self.gpus = gpus
        self.ledger = ledger
        self.init_error: int | None = None
        self.inits = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("NVML"):  # NVML_* constants, NVMLError and its subclasses
            return getattr(pynvml, name)
        raise AttributeError(name)

    # life cycle and system
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.inits -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.86.15"

    def nvmlSystemGetNVMLVersion(self) -> str:
        return "12.570.86.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    # devices
    def _all(self) -> dict[str, FakeGpu | FakeMig]:
        out: dict[str, FakeGpu | FakeMig] = {}
        for g in self.gpus:
            out[g.uuid] = g
            out.update({s.uuid: s for s in g.slices})
        return out

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu | FakeMig:
        if uuid not in self._all():
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return self._all()[uuid]

    def nvmlDeviceGetUUID(self, dev: FakeGpu | FakeMig) -> str:
        return dev.uuid

    def nvmlDeviceGetName(self, dev: FakeGpu | FakeMig) -> str:
        if isinstance(dev, FakeMig):
            return f"{dev.parent.name} MIG {dev.profile}"
        return dev.name

    def nvmlDeviceGetPciInfo(self, dev: FakeGpu) -> Any:
        return types.SimpleNamespace(busId=dev.bus_id)

    def _held(self, dev: FakeGpu | FakeMig) -> list[tuple[int, int]]:
        """(pid, bytes) of the fake torch's live allocations on ``dev``."""
        if self.ledger is None:
            return []
        held = []
        for f in self.ledger.glob("*.json"):
            try:
                entry = json.loads(f.read_text())
            except (OSError, ValueError):
                continue  # removed or half written meanwhile
            if entry["uuid"] == dev.uuid:
                held.append((int(f.stem), int(entry["bytes"])))
        return held

    def nvmlDeviceGetMemoryInfo(self, dev: FakeGpu | FakeMig) -> Any:
        used = dev.used_mb * MB + sum(b for _, b in self._held(dev))
        return types.SimpleNamespace(total=dev.memory_mb * MB, used=used, free=0)

    def nvmlDeviceGetComputeRunningProcesses(self, dev: FakeGpu | FakeMig) -> list[Any]:
        return [types.SimpleNamespace(pid=p, usedGpuMemory=b) for p, b in self._held(dev)]

    def _gpu_only(self, dev: FakeGpu | FakeMig, value: Any) -> Any:
        if isinstance(dev, FakeMig):  # a slice has no utilization, power, clock of its own
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlDeviceGetUtilizationRates(self, dev: FakeGpu | FakeMig) -> Any:
        self._gpu_only(dev, None)
        return types.SimpleNamespace(gpu=dev.util, memory=0)

    def nvmlDeviceGetTemperature(self, dev: FakeGpu | FakeMig, sensor: int) -> int:
        return self._gpu_only(dev, 41)

    def nvmlDeviceGetPowerUsage(self, dev: FakeGpu | FakeMig) -> int:
        return self._gpu_only(dev, 71_000)

    def nvmlDeviceGetEnforcedPowerLimit(self, dev: FakeGpu | FakeMig) -> int:
        return self._gpu_only(dev, 700_000)

    def nvmlDeviceGetClockInfo(self, dev: FakeGpu | FakeMig, clock: int) -> int:
        return self._gpu_only(dev, 1980)

    # MIG
    def nvmlDeviceGetMigMode(self, dev: FakeGpu) -> list[int]:
        if dev.mig is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if dev.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, dev: FakeGpu) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, dev: FakeGpu, index: int) -> FakeMig:
        if index >= len(dev.slices):
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return dev.slices[index]

    def nvmlDeviceGetAttributes_v2(self, mig: FakeMig) -> Any:
        slices = int(mig.profile.split("g.")[0])
        return types.SimpleNamespace(
            gpuInstanceSliceCount=slices, computeInstanceSliceCount=slices,
            memorySizeMB=mig.memory_mb,
        )  # fmt: skip

    def nvmlDeviceGetGpuInstanceProfileInfo(self, dev: FakeGpu, profile: int) -> Any:
        return types.SimpleNamespace(instanceCount=7)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, dev: FakeGpu | FakeMig) -> FakeGpu:
        if not isinstance(dev, FakeMig):
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return dev.parent

    def nvmlDeviceGetNvLinkState(self, dev: FakeGpu, link: int) -> int:
        raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetNvLinkRemotePciInfo_v2(self, dev: FakeGpu, link: int) -> Any:
        raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)

    # GPM: a slice's SM utilization from two samples
    def nvmlGpmQueryDeviceSupport(self, dev: FakeGpu) -> Any:
        return types.SimpleNamespace(isSupportedDevice=int(dev.gpm))

    def nvmlDeviceGetGpuInstanceId(self, mig: FakeMig) -> int:
        return 2

    def nvmlGpmSampleAlloc(self) -> Any:
        return types.SimpleNamespace()

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        pass

    def nvmlGpmMigSampleGet(self, dev: FakeGpu, gi: int, sample: Any) -> None:
        assert isinstance(dev, FakeGpu) and gi == 2

    def c_nvmlGpmMetricsGet_t(self) -> Any:
        return types.SimpleNamespace(metrics=[types.SimpleNamespace(metricId=None, value=None)])

    def nvmlGpmMetricsGet(self, query: Any) -> Any:
        assert query.metrics[0].metricId == pynvml.NVML_GPM_METRIC_SM_UTIL
        query.metrics[0].value = 12.5
        return query


def hopper_node(ledger: Path | None) -> FakeNvml:
    """Two H100s: GPU 0 whole (MIG capable, off), GPU 1 in MIG mode with one 1g.10gb slice."""
    return FakeNvml(
        [
            FakeGpu(H100_0, "NVIDIA H100 80GB HBM3", 81559, "00000000:19:00.0", mig=False, gpm=True),
            FakeGpu(H100_1, "NVIDIA H100 80GB HBM3", 81559, "00000000:3B:00.0", mig=True, gpm=True,
                    slices=[FakeMig(SLICE, "1g.10gb", 9984)]),
        ],
        ledger,
    )  # fmt: skip


def l4_node(ledger: Path | None) -> FakeNvml:
    """Two L4s: no MIG, no GPM."""
    return FakeNvml(
        [
            FakeGpu(L4, "NVIDIA L4", 23034, "00000000:01:00.0"),
            FakeGpu(L4_OTHER, "NVIDIA L4", 23034, "00000000:02:00.0"),
        ],
        ledger,
    )


# -- fakes the children find: torch and nvidia-smi ----------------------------------------

FAKE_TORCH = '''
"""A stand-in for torch in the check's children: CUDA_VISIBLE_DEVICES as CUDA reads it."""
import atexit, json, os

__version__ = "2.99.0+fake"
uint8 = "uint8"
_KNOWN = [u for u in os.environ["FAKE_CUDA_DEVICES"].split(",") if u]


def _visible():
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names is None:
        return list(_KNOWN)
    seen = []
    for name in names.split(","):
        if name not in _KNOWN:
            break  # CUDA stops at the first entry it does not know
        seen.append(name)
    return seen


class _Props:
    def __init__(self, uuid):
        self.name, self.uuid, self.total_memory = "Fake CUDA device", uuid[4:], 80 * 2**30


class cuda:
    device_count = staticmethod(lambda: len(_visible()))
    is_available = staticmethod(lambda: bool(_visible()))
    get_device_properties = staticmethod(lambda i: _Props(_visible()[i]))
    get_device_name = staticmethod(lambda i: "Fake CUDA device")
    synchronize = staticmethod(lambda device=None: None)
    memory_reserved = staticmethod(lambda i=0: 0)


def device(kind, index):
    return (kind, index)


def ones(n, dtype=None, device=None):
    if os.environ.get("FAKE_CUDA_OOM"):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    path = os.path.join(os.environ["FAKE_CUDA_LEDGER"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump({"uuid": _visible()[device[1]], "bytes": n}, f)
    atexit.register(os.remove, path)
    return object()
'''
NO_TORCH = 'raise ImportError("no torch in this test")\n'  # hides a torch the venv may have


def fake_smi(listing: dict[str, str], honour_runtime: bool) -> str:
    """An ``nvidia-smi -L``: every GPU, or (as in a container) those NVIDIA_VISIBLE_DEVICES names."""
    lines = "\n".join(
        f'echo "GPU {i}: {name} (UUID: {uuid})"' if not honour_runtime else
        f'case ",$NVIDIA_VISIBLE_DEVICES," in *,{uuid},*) echo "GPU 0: {name} (UUID: {uuid})";; esac'
        for i, (uuid, name) in enumerate(listing.items())
    )  # fmt: skip
    return f'#!/bin/sh\n[ "$1" = -L ] || exit 9\n{lines}\n'


@pytest.fixture
def children(tmp_path, monkeypatch):
    """Prepares what the check's children find: ``children(torch=..., smi=...)``."""

    def prepare(torch: bool, devices: list[str], smi: str | None = None) -> Path:
        lib, ledger, bin_ = tmp_path / "lib", tmp_path / "ledger", tmp_path / "bin"
        for d in (lib / "torch", ledger, bin_):
            d.mkdir(parents=True, exist_ok=True)
        (lib / "torch" / "__init__.py").write_text(FAKE_TORCH if torch else NO_TORCH)
        monkeypatch.setenv("PYTHONPATH", str(lib))
        monkeypatch.setenv("FAKE_CUDA_DEVICES", ",".join(devices))
        monkeypatch.setenv("FAKE_CUDA_LEDGER", str(ledger))
        if smi is not None:
            (bin_ / "nvidia-smi").write_text(smi)
            (bin_ / "nvidia-smi").chmod(0o755)
        # only the fake nvidia-smi, never a real one: PATH is the fake's folder and the basics
        monkeypatch.setenv("PATH", f"{bin_}:/usr/bin:/bin")
        return ledger

    return prepare


def run_check(monkeypatch, fake: FakeNvml, out: Path, *args: str) -> tuple[int, dict, str]:
    """``gpu-check --out OUT ARGS`` in this process against ``fake``: exit, JSON, Markdown."""
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    code = main(["--out", str(out), "--memory-mb", "2048", "--timeout", "60", *args])
    report = json.loads(out.with_suffix(".json").read_text())
    return code, report, out.with_suffix(".md").read_text()


def sections(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["sections"]}


# -- the check against fake GPUs ----------------------------------------------------------


def test_hopper_node_with_torch_passes_every_section(tmp_path, monkeypatch, children, capsys):
    ledger = children(torch=True, devices=[H100_0, H100_1, SLICE])
    fake = hopper_node(ledger)
    code, report, md = run_check(monkeypatch, fake, tmp_path / "out" / "report")
    s = sections(report)
    assert code == 0 and report["status"] == "pass", json.dumps(report, indent=1)
    assert [x["name"] for x in report["sections"]] == [
        "inventory", "sampler", "mig", "gpm", "isolation", "torch_job",
    ]  # fmt: skip
    assert {x["status"] for x in report["sections"]} == {"pass"}
    assert report["system"]["driver"] == "570.86.15"
    assert report["system"]["cuda_driver"] == "12.8"
    assert fake.inits == 0  # every nvmlInit was shut down again

    assert s["inventory"]["summary"].startswith("2 GPU(s): GPU 0: NVIDIA H100 80GB HBM3, 81559 MiB")
    assert (
        "GPU 1: NVIDIA H100 80GB HBM3, 81559 MiB, MIG mode with 1 slice(s)"
        in s["inventory"]["summary"]
    )
    gpus = s["inventory"]["details"]["gpus"]
    assert gpus[1]["mig_instances"][0]["profile"] == "1g.10gb" and gpus[0]["simulated"] is False

    # the whole GPU as the extension's devices route answers it
    whole = s["sampler"]["details"]
    assert whole["lease_id"] == 0 and whole["simulated"] is False and whole["error"] is None
    [device] = whole["devices"]
    assert device["uuid"] == H100_0 and device["name"] == "NVIDIA H100 80GB HBM3"
    assert device["latest"]["utilization_pct"] == 3.0 and device["latest"]["power_w"] == 71.0
    assert s["sampler"]["summary"] == (
        "GPU 0 (NVIDIA H100 80GB HBM3): 3% busy, 500 of 81559 MiB used, 41 °C, 71 W, 0 process(es)"
    )

    # the slice: two reads, utilization through GPM
    assert s["mig"]["details"]["mig_mode"] == {"0": "off", "1": "on"}
    [slice_] = s["mig"]["details"]["reading"]["devices"]
    assert slice_["kind"] == "mig" and slice_["profile"] == "1g.10gb"
    assert slice_["name"] == "1g.10gb slice of NVIDIA H100 80GB HBM3"
    assert slice_["latest"]["temperature_c"] is None and slice_["samples"] >= 2
    assert s["mig"]["summary"].startswith("MIG 1g.10gb slice 0 of GPU 1: 12.5% busy, 13 of 9984")
    assert s["gpm"]["summary"] == "MIG 1g.10gb slice 0 of GPU 1: 12.5% SM utilization"

    # isolation: the whole GPU, the slice, and the control with an unknown UUID
    iso = s["isolation"]["details"]
    assert iso[H100_0]["CUDA_VISIBLE_DEVICES"] == H100_0 == iso[H100_0]["NVIDIA_VISIBLE_DEVICES"]
    assert iso[H100_0]["seen"]["count"] == 1 and iso[SLICE]["seen"]["count"] == 1
    assert iso["control"]["seen"]["count"] == 0
    assert "torch in the child sees only this device" in s["isolation"]["summary"]
    assert "with an unknown UUID the child sees no device" in s["isolation"]["summary"]

    # the torch job: its 2048 MiB and its process show in the extension's reading
    job = s["torch_job"]["details"]
    pid = job["job"]["pid"]
    assert pid != os.getpid() and job["torch"] == "2.99.0+fake"
    assert job["during"]["devices"][0]["latest"]["memory_used_mb"] == 500 + 2048
    assert [p["pid"] for p in job["during"]["devices"][0]["latest"]["processes"]] == [pid]
    assert job["after"]["devices"][0]["latest"]["memory_used_mb"] == 500  # released
    assert "memory used rose by 2048 MiB (the job allocated 2048)" in s["torch_job"]["summary"]
    assert f"its process {pid} (python" in s["torch_job"]["summary"]
    assert list(ledger.iterdir()) == []

    # the Markdown: a table of the sections, then each with its details
    assert md.startswith("# gpuhub GPU check: ")
    assert "**Result: pass**" in md and "NVIDIA driver 570.86.15" in md
    assert (
        "| Torch job seen by the extension | ✅ pass | GPU 0 (NVIDIA H100 80GB HBM3), torch" in md
    )
    assert md.count("```json") == 6
    out = capsys.readouterr().out
    assert "pass  NVML inventory: 2 GPU(s)" in out and "report: " in out


@pytest.mark.parametrize("in_container", [True, False])
def test_without_torch_or_mig_the_sections_say_so(tmp_path, monkeypatch, children, in_container):
    smi = fake_smi({L4: "NVIDIA L4", L4_OTHER: "NVIDIA L4"}, honour_runtime=in_container)
    ledger = children(torch=False, devices=[L4, L4_OTHER], smi=smi)
    code, report, md = run_check(monkeypatch, l4_node(ledger), tmp_path / "r.json")
    s = sections(report)
    assert code == 0 and report["status"] == "pass"
    assert s["sampler"]["status"] == "pass"
    assert s["mig"]["status"] == "not supported"
    assert s["mig"]["summary"] == "no GPU here supports MIG (A100, A30, H100 and later do)"
    assert s["gpm"]["status"] == "not supported" and "no GPU here has GPM" in s["gpm"]["summary"]
    assert s["torch_job"]["status"] == "skipped"
    assert s["torch_job"]["summary"].startswith("torch is not installed here, so no job allocated")
    seen = s["isolation"]["details"][L4]["seen"]
    assert seen["method"] == "nvidia-smi -L" and "control" not in s["isolation"]["details"]
    if in_container:  # the runtime applied NVIDIA_VISIBLE_DEVICES: only the lease's GPU
        assert s["isolation"]["status"] == "pass"
        assert "nvidia-smi -L in the child lists only this device" in s["isolation"]["summary"]
    else:  # a bare host: nvidia-smi lists both, which shows nothing either way
        assert s["isolation"]["status"] == "inconclusive"
        assert "nvidia-smi ignores CUDA_VISIBLE_DEVICES" in s["isolation"]["summary"]
        assert seen["count"] == 2
    assert "| MIG slice" not in md and "➖ not supported" in md and "⏭ skipped" in md


def test_no_torch_and_no_nvidia_smi(tmp_path, monkeypatch, children):
    ledger = children(torch=False, devices=[L4, L4_OTHER])
    code, report, _ = run_check(monkeypatch, l4_node(ledger), tmp_path / "r")
    iso = sections(report)["isolation"]
    assert code == 0 and iso["status"] == "skipped"
    assert "neither torch nor nvidia-smi is installed here" in iso["summary"]


def test_an_allocation_the_reading_misses_fails_the_check(tmp_path, monkeypatch, children):
    children(torch=True, devices=[H100_0, H100_1, SLICE])
    fake = hopper_node(ledger=None)  # NVML never shows what the job holds
    code, report, md = run_check(monkeypatch, fake, tmp_path / "r")
    job = sections(report)["torch_job"]
    assert code == 1 and report["status"] == "fail" and job["status"] == "fail"
    assert "memory used rose by 0 MiB only; the job allocated 2048 MiB" in job["summary"]
    assert "no process of the job is listed" in job["summary"]
    assert "**Result: fail**" in md


def test_a_job_that_cannot_allocate_fails_with_its_reason(tmp_path, monkeypatch, children):
    ledger = children(torch=True, devices=[H100_0, H100_1, SLICE])
    monkeypatch.setenv("FAKE_CUDA_OOM", "1")
    code, report, _ = run_check(monkeypatch, hopper_node(ledger), tmp_path / "r")
    job = sections(report)["torch_job"]
    assert code == 1 and job["status"] == "fail"
    assert job["summary"] == (
        "the torch job failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    )
    assert job["details"]["during"] == {} and "job_stderr" in job["details"]
    assert sections(report)["isolation"]["status"] == "pass"


def test_a_machine_whose_nvml_reads_no_gpu(tmp_path, monkeypatch):
    code, report, md = run_check(monkeypatch, FakeNvml([], None), tmp_path / "r")
    s = sections(report)
    assert code == 1 and s["inventory"]["status"] == "fail"
    assert s["inventory"]["summary"].startswith("NVML started but read no GPU")
    assert {x["status"] for x in report["sections"][1:]} == {"skipped"}
    assert len(report["sections"]) == 6 and "❌ fail" in md


def test_device_option_picks_the_slice(tmp_path, monkeypatch, children):
    children(torch=True, devices=[H100_0, H100_1, SLICE])
    code, report, _ = run_check(
        monkeypatch, hopper_node(tmp_path / "ledger"), tmp_path / "r", "--device", SLICE
    )
    s = sections(report)
    assert code == 0, json.dumps(report, indent=1)
    assert s["torch_job"]["details"]["device"] == SLICE
    assert s["torch_job"]["summary"].startswith("MIG 1g.10gb slice 0 of GPU 1, torch")
    assert s["sampler"]["details"]["devices"][0]["uuid"] == H100_0  # still the whole GPU


def test_an_unknown_device_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", hopper_node(None))
    assert main(["--out", str(tmp_path / "r"), "--device", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("no usable device '7' on this machine; devices: 0 (GPU-0a0a")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "no NVIDIA driver: NVML could not be loaded (Driver Not Loaded)"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "the NVIDIA driver is there but NVML did not start (Insufficient Permissions)"),
    ],
)  # fmt: skip
def test_nvml_that_does_not_start_is_refused_in_one_sentence(
    tmp_path, monkeypatch, capsys, code, says
):
    fake = hopper_node(None)
    fake.init_error = code
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert main(["--out", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert captured.err == says + "\n" and captured.out == ""
    assert not list(tmp_path.iterdir())


# -- the script on this machine (no NVIDIA driver) ----------------------------------------


def test_the_script_refuses_without_a_driver(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("no NVIDIA driver: NVML could not be loaded (")
    assert list(tmp_path.iterdir()) == []  # no report without a check


def test_probe_parses_nvidia_smi_with_mig(tmp_path, monkeypatch):
    listing = textwrap.dedent(
        f"""\
        GPU 0: NVIDIA H100 80GB HBM3 (UUID: {H100_0})
        GPU 1: NVIDIA H100 80GB HBM3 (UUID: {H100_1})
          MIG 1g.10gb     Device  0: (UUID: {SLICE})
        """
    )
    (tmp_path / "nvidia-smi").write_text(f"#!/bin/sh\ncat <<'EOF'\n{listing}EOF\n")
    (tmp_path / "nvidia-smi").chmod(0o755)
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(NO_TORCH)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "gpuhub.gpucheck.probe", "visible"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert seen["method"] == "nvidia-smi -L" and seen["count"] == 2
    assert [d["uuid"] for d in seen["devices"]] == [
        H100_0,
        SLICE,
    ]  # GPU 1's usable part is its slice
    assert seen["devices"][1] == {"kind": "mig", "name": "MIG 1g.10gb Device 0", "uuid": SLICE}
    assert seen["listed"][0]["name"] == "GPU 0: NVIDIA H100 80GB HBM3"
