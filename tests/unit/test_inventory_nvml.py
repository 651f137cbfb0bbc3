"""Tests of gpuhub.inventory.nvml.read_node against a fake pynvml module.

No GPU exists where these tests run, so NVML itself is faked: ``FakeNvml`` answers the
NVML calls ``read_node`` makes from a configurable device table, while every constant
and every ``NVMLError`` class comes from the real ``pynvml`` module. ``read_node`` runs
its real code path against it.
"""

from __future__ import annotations

import logging
import sys
import types
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml
import pytest
from gpuhub.inventory import NvmlInventory
from gpuhub.inventory.nvml import read_node

MB = 2**20


def nvml_error(code: int) -> pynvml.NVMLError:
    """The real pynvml exception for ``code`` (``NVMLError(code)`` picks the subclass)."""
    return pynvml.NVMLError(code)


@dataclass
class FakeMig:
    """One MIG device. ``attrs`` is (gpuInstanceSliceCount, computeInstanceSliceCount, MB)."""

    uuid: str
    name: str
    memory_mb: int
    attrs: tuple[int, int, int] | None = None  # None: attributes query fails
    name_error: int | None = None  # NVML error code raised by nvmlDeviceGetName


@dataclass
class FakeGpu:
    """One physical GPU as the fake NVML reports it."""

    uuid: str | bytes
    name: str | bytes
    memory_mb: int
    bus_id: str | bytes
    mig: bool | None = False  # None: MIG mode query is not supported (consumer GPU)
    mig_slots: list[FakeMig | int] = field(default_factory=list)  # int: error of empty slot
    one_slice_count: int | None = 7  # None: GPU instance profile query fails
    nvlinks: dict[int, str] | None = None  # active link -> remote bus id; None: unsupported
    link_count: int = 18  # links past this answer INVALID_ARGUMENT, like a real driver
    lost: bool = False  # every query answers GPU_IS_LOST


class FakeNvml(types.ModuleType):
    """A stand-in for ``pynvml`` serving a device table; constants/errors are the real ones."""

    def __init__(self, gpus: list[FakeGpu], init_error: BaseException | None = None) -> None:
        super().__init__("pynvml")
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0

    def __getattr__(self, name: str):
        if name.startswith("NVML"):  # NVML_* constants, NVMLError and its subclasses
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _dev(self, handle):
        if isinstance(handle, FakeGpu) and handle.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        return handle

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle):
        return self._dev(handle).uuid

    def nvmlDeviceGetName(self, handle):
        dev = self._dev(handle)
        if getattr(dev, "name_error", None) is not None:
            raise nvml_error(dev.name_error)
        return dev.name

    def nvmlDeviceGetMemoryInfo(self, handle):
        dev = self._dev(handle)
        return SimpleNamespace(total=dev.memory_mb * MB, free=0, used=0)

    def nvmlDeviceGetPciInfo(self, handle):
        return SimpleNamespace(busId=self._dev(handle).bus_id)

    def nvmlDeviceGetMigMode(self, handle):
        dev = self._dev(handle)
        if dev.mig is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if dev.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle) -> int:
        return len(self._dev(handle).mig_slots)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle, index: int) -> FakeMig:
        slot = self._dev(handle).mig_slots[index]
        if isinstance(slot, int):
            raise nvml_error(slot)
        return slot

    def nvmlDeviceGetAttributes_v2(self, handle):
        if handle.attrs is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        gi, ci, mb = handle.attrs
        return SimpleNamespace(
            gpuInstanceSliceCount=gi, computeInstanceSliceCount=ci, memorySizeMB=mb
        )

    def nvmlDeviceGetGpuInstanceProfileInfo(self, handle, profile: int):
        dev = self._dev(handle)
        assert profile == pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE
        if dev.one_slice_count is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(instanceCount=dev.one_slice_count)

    def nvmlDeviceGetNvLinkState(self, handle, link: int) -> int:
        dev = self._dev(handle)
        if dev.nvlinks is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if link >= dev.link_count:
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return pynvml.NVML_FEATURE_ENABLED if link in dev.nvlinks else pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle, link: int):
        return SimpleNamespace(busId=self._dev(handle).nvlinks[link])


def h100(i: int, **kw) -> FakeGpu:
    return FakeGpu(
        uuid=f"GPU-h100-{i}",
        name="NVIDIA H100 80GB HBM3",
        memory_mb=81559,
        bus_id=f"00000000:{0x18 + i:02X}:00.0",
        **kw,
    )


def a100_mig(slots: list[FakeMig | int], **kw) -> FakeGpu:
    return FakeGpu(
        uuid="GPU-a100",
        name="NVIDIA A100-SXM4-40GB",
        memory_mb=40960,
        bus_id="00000000:07:00.0",
        mig=True,
        mig_slots=slots,
        **kw,
    )


def l4(i: int = 0) -> FakeGpu:
    return FakeGpu(
        uuid=f"GPU-l4-{i}",
        name="NVIDIA L4",
        memory_mb=23034,
        bus_id=f"00000000:{0x81 + i:02X}:00.0",
        mig=None,
    )


def test_two_gpus_with_nvlink_between_them():
    nvswitch = "00000000:C1:00.0"
    gpus = [
        # GPU 0 reports the peer with a 4-digit domain and lower case, GPU 1 with 8 digits.
        h100(0, nvlinks={0: "0000:19:00.0", 1: "0000:19:00.0", 4: nvswitch}),
        h100(1, nvlinks={0: b"00000000:18:00.0", 5: nvswitch}),
    ]
    gpus[1].uuid = b"GPU-h100-1"  # older nvidia-ml-py releases answer bytes
    fake = FakeNvml(gpus)

    node = read_node("n1", nvml=fake)

    assert node.name == "n1"
    assert not node.simulated
    assert [g.uuid for g in node.gpus] == ["GPU-h100-0", "GPU-h100-1"]
    g0, g1 = node.gpus
    assert g0.nvlink_peers == ("GPU-h100-1",)
    assert g1.nvlink_peers == ("GPU-h100-0",)
    assert (g0.index, g0.model, g0.memory_mb) == (0, "NVIDIA H100 80GB HBM3", 81559)
    assert g1.index == 1
    assert not g0.mig_enabled and g0.mig_instances == ()
    assert g0.mode == "exclusive" and not g0.simulated
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_a100_mig_7x1g_with_empty_slots():
    migs = [
        FakeMig(f"MIG-a100-{j}", "NVIDIA A100-SXM4-40GB MIG 1g.5gb", 4864, attrs=(1, 1, 4864))
        for j in range(7)
    ]
    slots: list[FakeMig | int] = [
        *migs[:3],
        pynvml.NVML_ERROR_NOT_FOUND,
        *migs[3:],
        pynvml.NVML_ERROR_INVALID_ARGUMENT,
    ]
    fake = FakeNvml([a100_mig(slots)])

    (gpu,) = read_node("n1", nvml=fake).gpus

    assert gpu.mig_enabled and gpu.mode == "mig"
    assert gpu.total_slices == 7
    assert gpu.model == "NVIDIA A100-SXM4-40GB" and gpu.memory_mb == 40960
    assert [m.uuid for m in gpu.mig_instances] == [f"MIG-a100-{j}" for j in range(7)]
    assert [m.index for m in gpu.mig_instances] == [0, 1, 2, 4, 5, 6, 7]
    assert {m.profile for m in gpu.mig_instances} == {"1g.5gb"}
    assert {m.slices for m in gpu.mig_instances} == {1}
    assert {m.memory_mb for m in gpu.mig_instances} == {4864}
    assert sum(gpu.slice_units(m) for m in gpu.mig_instances) == 1
    assert fake.shutdown_calls == 1


def test_mig_profile_falls_back_to_attributes_and_slices_to_profile():
    slots: list[FakeMig | int] = [
        # no profile in the name: built from attributes, compute slices differ
        FakeMig("MIG-0", "NVIDIA A30", 11968, attrs=(2, 1, 11968)),
        # the name query fails: built from attributes
        FakeMig(
            "MIG-1",
            "",
            11968,
            attrs=(2, 2, 11968),
            name_error=pynvml.NVML_ERROR_NOT_SUPPORTED,
        ),
        # attributes fail: slices read from the profile in the name
        FakeMig("MIG-2", "NVIDIA A30 MIG 1c.2g.12gb", 11968, attrs=None),
    ]
    gpu_fake = FakeGpu(
        uuid="GPU-a30",
        name="NVIDIA A30",
        memory_mb=24576,
        bus_id="00000000:3B:00.0",
        mig=True,
        mig_slots=slots,
        one_slice_count=4,
    )

    (gpu,) = read_node("n1", nvml=FakeNvml([gpu_fake])).gpus

    assert gpu.total_slices == 4
    assert [(m.profile, m.slices) for m in gpu.mig_instances] == [
        ("1c.2g.12gb", 2),
        ("2g.12gb", 2),
        ("1c.2g.12gb", 2),
    ]


def test_mig_instance_without_any_profile_is_skipped(caplog):
    slots: list[FakeMig | int] = [
        FakeMig("MIG-0", "NVIDIA H100 80GB HBM3 MIG 7g.80gb", 81152, attrs=(7, 7, 81152)),
        FakeMig("MIG-1", "mystery", 1024, attrs=None),
    ]
    fake = FakeNvml([a100_mig(slots, one_slice_count=None)])

    with caplog.at_level(logging.WARNING):
        (gpu,) = read_node("n1", nvml=fake).gpus

    assert [m.profile for m in gpu.mig_instances] == ["7g.80gb"]
    assert gpu.mig_instances[0].slices == 7
    assert gpu.total_slices == 7  # profile info query failed: the default
    assert "MIG device 1" in caplog.text


def test_consumer_gpu_without_mig_or_nvlink():
    fake = FakeNvml([l4()])

    (gpu,) = read_node("n1", nvml=fake).gpus

    assert gpu.uuid == "GPU-l4-0" and gpu.model == "NVIDIA L4"
    assert not gpu.mig_enabled and gpu.mig_instances == ()
    assert gpu.nvlink_peers == ()
    assert gpu.total_slices == 7
    assert fake.shutdown_calls == 1


def test_nvlink_not_supported_means_no_peers():
    fake = FakeNvml([h100(0, nvlinks=None), h100(1, nvlinks=None)])

    node = read_node("n1", nvml=fake)

    assert [g.nvlink_peers for g in node.gpus] == [(), ()]


def test_mig_mode_disabled_on_mig_capable_gpu():
    fake = FakeNvml([h100(0, mig=False)])

    (gpu,) = read_node("n1", nvml=fake).gpus

    assert not gpu.mig_enabled and gpu.mig_instances == ()


@pytest.mark.parametrize(
    "code", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED]
)
def test_missing_driver_gives_empty_node(code, caplog):
    fake = FakeNvml([h100(0)], init_error=nvml_error(code))

    with caplog.at_level(logging.WARNING):
        node = read_node("n1", nvml=fake)

    assert node.name == "n1" and node.gpus == () and not node.simulated
    assert "NVML is not available" in caplog.text
    assert fake.shutdown_calls == 0


def test_os_error_at_init_gives_empty_node(caplog):
    fake = FakeNvml([h100(0)], init_error=OSError("libnvidia-ml.so.1: cannot open"))

    with caplog.at_level(logging.WARNING):
        node = read_node("n1", nvml=fake)

    assert node.gpus == ()
    assert fake.shutdown_calls == 0


def test_pynvml_not_installed_gives_empty_node(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail

    with caplog.at_level(logging.WARNING):
        node = read_node("n1")

    assert node.gpus == ()
    assert "not installed" in caplog.text


def test_other_init_errors_are_raised():
    fake = FakeNvml([], init_error=nvml_error(pynvml.NVML_ERROR_NO_PERMISSION))

    with pytest.raises(pynvml.NVMLError_NoPermission):
        read_node("n1", nvml=fake)
    assert fake.shutdown_calls == 0


def test_lost_gpu_is_skipped(caplog):
    gpus = [
        h100(0, nvlinks={0: "0000:19:00.0", 1: "0000:1a:00.0"}),
        h100(1, nvlinks={0: "0000:18:00.0"}, lost=True),
        h100(2, nvlinks={0: "0000:18:00.0"}),
    ]
    fake = FakeNvml(gpus)
    log = logging.getLogger("test-nvml")

    with caplog.at_level(logging.WARNING, logger="test-nvml"):
        node = read_node("n1", log=log, nvml=fake)

    assert [(g.index, g.uuid) for g in node.gpus] == [(0, "GPU-h100-0"), (2, "GPU-h100-2")]
    assert node.gpus[0].nvlink_peers == ("GPU-h100-2",)  # the lost GPU is no peer
    assert node.gpus[1].nvlink_peers == ("GPU-h100-0",)
    assert "GPU 1" in caplog.text and "GPU is lost" in caplog.text
    assert fake.shutdown_calls == 1


def test_shutdown_even_when_reading_fails():
    class Broken(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            raise nvml_error(pynvml.NVML_ERROR_UNKNOWN)

    fake = Broken([h100(0)])

    with pytest.raises(pynvml.NVMLError_Unknown):
        read_node("n1", nvml=fake)
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_nvml_inventory_applies_sharing(monkeypatch):
    fake = FakeNvml([l4(0), l4(1), h100(0)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)

    (node,) = NvmlInventory(node_name="n1", shared={"*L4*": 4}).nodes()

    assert node.name == "n1"
    assert [(g.model, g.shares, g.mode) for g in node.gpus] == [
        ("NVIDIA L4", 4, "shared"),
        ("NVIDIA L4", 4, "shared"),
        ("NVIDIA H100 80GB HBM3", 1, "exclusive"),
    ]
    assert fake.shutdown_calls == 1
