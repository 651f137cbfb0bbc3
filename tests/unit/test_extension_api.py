"""The jupyter_gpuhub server extension against a real jupyter server (pytest-jupyter).

The server runs in this process with the extension loaded; requests go through
``jp_fetch``. NVML is the only fake: :class:`FakeNvml` answers the pynvml calls the
sampler makes from a device table, with the real constants and error classes. The gpuhub
service is a small real tornado app (:class:`StandInService`) that serves a lease and
``/me`` and records the activity reports it receives.

pytest-jupyter's fixtures are imported here (not registered as a plugin), so they and
their event loop exist only in this module; the tests are plain functions that run
coroutines on pytest-jupyter's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any

import pynvml
import pytest
from jupyter_gpuhub.app import GpuhubExtension
from pytest_jupyter.jupyter_core import *  # noqa: F403 (fixtures)
from pytest_jupyter.jupyter_server import *  # noqa: F403 (fixtures)
from pytest_jupyter.pytest_tornasync import *  # noqa: F403 (fixtures)
from tornado import httpclient, httpserver, netutil, web
from traitlets import TraitError

MB = 2**20
H100 = "GPU-11111111-2222-3333-4444-555555555555"
SLICE = "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


# -- fake NVML --------------------------------------------------------------------------


@dataclass
class FakeDevice:
    """One device (GPU or MIG slice) as the fake NVML reports it."""

    name: str
    total_mb: int
    used_mb: int = 1024
    util: int | None = 40  # None: NotSupported (MIG)
    temperature: int | None = 50
    power_mw: int | None = 120_000
    limit_mw: int | None = 700_000
    clock: int | None = 1755
    procs: list[tuple[int, int]] = field(default_factory=list)  # (pid, MiB)
    parent: FakeDevice | None = None
    # per-process SM utilization (pid -> percent); None: NotSupported
    proc_util: dict[int, int] | None = field(default_factory=dict)


def nvml_error(code: int) -> pynvml.NVMLError:
    """The real pynvml exception for ``code``."""
    return pynvml.NVMLError(code)


class FakeNvml(types.ModuleType):
    """Answers the sampler's pynvml calls; ``fail`` makes every call raise that code."""

    def __init__(self, devices: dict[str, FakeDevice]) -> None:
        super().__init__("pynvml")
        self.devices = devices
        self.fail: int | None = None
        self.hang: threading.Event | None = None  # reads wait for it while set
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("NVML"):
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _check(self) -> None:
        if self.fail is not None:
            raise nvml_error(self.fail)

    def nvmlInit(self) -> None:
        self._check()

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeDevice:
        self._check()
        if uuid not in self.devices:
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return self.devices[uuid]

    def nvmlDeviceGetName(self, dev: FakeDevice) -> str:
        self._check()
        return dev.name

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, dev: FakeDevice) -> FakeDevice:
        if dev.parent is None:
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return dev.parent

    def nvmlDeviceGetMemoryInfo(self, dev: FakeDevice) -> Any:
        self.reads += 1
        if self.hang is not None:
            self.hang.wait(10)
        self._check()
        return types.SimpleNamespace(total=dev.total_mb * MB, used=dev.used_mb * MB)

    def _value(self, value: Any) -> Any:
        self._check()
        if value is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlDeviceGetUtilizationRates(self, dev: FakeDevice) -> Any:
        return types.SimpleNamespace(gpu=self._value(dev.util), memory=0)

    def nvmlDeviceGetTemperature(self, dev: FakeDevice, sensor: int) -> int:
        return self._value(dev.temperature)

    def nvmlDeviceGetPowerUsage(self, dev: FakeDevice) -> int:
        return self._value(dev.power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, dev: FakeDevice) -> int:
        return self._value(dev.limit_mw)

    def nvmlDeviceGetClockInfo(self, dev: FakeDevice, clock: int) -> int:
        return self._value(dev.clock)

    def nvmlDeviceGetComputeRunningProcesses(self, dev: FakeDevice) -> list[Any]:
        self._check()
        return [types.SimpleNamespace(pid=p, usedGpuMemory=m * MB) for p, m in dev.procs]

    def nvmlDeviceGetProcessUtilization(self, dev: FakeDevice, since: int) -> list[Any]:
        samples = self._value(dev.proc_util)
        if not samples:
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)  # no process ran since then
        now_us = int(time.time() * 1e6)
        assert since <= now_us
        return [
            types.SimpleNamespace(pid=p, timeStamp=now_us, smUtil=u, memUtil=0, encUtil=0,
                                  decUtil=0)
            for p, u in samples.items()
        ]  # fmt: skip


def whole_gpu_nvml() -> FakeNvml:
    return FakeNvml({H100: FakeDevice("NVIDIA H100 80GB HBM3", 81559, procs=[(4242, 2048)])})


def mig_nvml() -> FakeNvml:
    parent = FakeDevice("NVIDIA H100 80GB HBM3", 81559)
    slice_ = FakeDevice(
        "NVIDIA H100 80GB HBM3 MIG 1g.10gb", 9984, used_mb=512, util=None, temperature=None,
        power_mw=None, limit_mw=None, clock=None, procs=[(77, 300)], parent=parent,
    )  # fmt: skip
    return FakeNvml({SLICE: slice_})


class GpmNvml(FakeNvml):
    """A fake NVML whose GPU has GPM: a MIG slice's SM utilization comes from two samples."""

    def __init__(self, devices: dict[str, FakeDevice], sm_util: float) -> None:
        super().__init__(devices)
        self.sm_util = sm_util
        self.live_samples = 0

    def nvmlGpmQueryDeviceSupport(self, dev: FakeDevice) -> Any:
        return types.SimpleNamespace(isSupportedDevice=1)

    def nvmlDeviceGetGpuInstanceId(self, dev: FakeDevice) -> int:
        return 3

    def nvmlGpmSampleAlloc(self) -> Any:
        self.live_samples += 1
        return types.SimpleNamespace(taken=None)

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        self.live_samples -= 1

    def nvmlGpmMigSampleGet(self, dev: FakeDevice, gi: int, sample: Any) -> None:
        assert gi == 3 and dev.parent is None  # the parent GPU, and the slice's instance
        sample.taken = time.monotonic()

    def c_nvmlGpmMetricsGet_t(self) -> Any:
        return types.SimpleNamespace(metrics=[types.SimpleNamespace(metricId=None, value=None)])

    def nvmlGpmMetricsGet(self, query: Any) -> Any:
        assert query.sample1.taken < query.sample2.taken
        assert query.metrics[0].metricId == pynvml.NVML_GPM_METRIC_SM_UTIL
        query.metrics[0].value = self.sm_util
        return query


def gpm_mig_nvml() -> GpmNvml:
    return GpmNvml(mig_nvml().devices, sm_util=37.5)


#: A process of this server (the tests' own process: the server runs in it) and one of a
#: neighbour on the same shared GPU (above any pid_max, so no process of ours).
OURS, NEIGHBOUR = os.getpid(), 4_194_999


def shared_gpu_nvml() -> FakeNvml:
    """One time-sliced H100 with two holders' processes: ours idle, the neighbour busy."""
    gpu = FakeDevice(
        "NVIDIA H100 80GB HBM3", 81559, used_mb=22_528, util=95,
        procs=[(OURS, 2048), (NEIGHBOUR, 20_480)], proc_util={NEIGHBOUR: 95},
    )  # fmt: skip
    return FakeNvml({H100: gpu})


def shared_gpu_without_process_utilization() -> FakeNvml:
    fake = shared_gpu_nvml()
    fake.devices[H100].proc_util = None
    return fake


# -- a stand-in gpuhub service ----------------------------------------------------------


class StandInService:
    """A real tornado app at /services/gpuhub/api/v1 with a lease, /me and activity."""

    def __init__(self, token: str, lease: dict[str, Any]) -> None:
        self.token = token
        self.lease = lease
        self.reports: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.server: httpserver.HTTPServer | None = None
        self.url = ""

    def app(self) -> web.Application:
        service = self

        class Base(web.RequestHandler):
            def prepare(self) -> None:
                service.auth.append(self.request.headers.get("Authorization"))
                if self.request.headers.get("Authorization") != f"token {service.token}":
                    self.set_status(403)
                    self.finish({"status": 403, "error": "forbidden", "message": "No."})

        class Lease(Base):
            def get(self, lid: str) -> None:
                self.finish(service.lease)

        class Activity(Base):
            def post(self, lid: str) -> None:
                body = json.loads(self.request.body)
                service.reports.append({"lease": int(lid), **body})
                self.finish({**body, "reported_at": "2026-12-01T00:00:00+00:00"})

        class Me(Base):
            def get(self) -> None:
                self.finish({"user": "ada", "quota": {"gpu_hours_left": 3.2}})

        root = "/services/gpuhub/api/v1"
        return web.Application(
            [
                (rf"{root}/leases/(\d+)", Lease),
                (rf"{root}/leases/(\d+)/activity", Activity),
                (rf"{root}/me", Me),
            ]
        )

    async def start(self) -> None:
        [sock] = netutil.bind_sockets(0, "127.0.0.1")
        self.server = httpserver.HTTPServer(self.app())
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/services/gpuhub"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


#: The environment of a server that reaches the stand-in service with its own token.
SERVICE = {"GPUHUB_SERVICE_URL": "{service}", "JUPYTERHUB_API_TOKEN": "secret"}


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def env() -> dict[str, str]:
    """The server's environment (no lease unless a test says so)."""
    return {}


@pytest.fixture
def make_nvml() -> Any:
    """Makes the fake pynvml module of a test (None: the real one stays)."""
    return None


@pytest.fixture
def nvml(make_nvml) -> FakeNvml | None:
    """The test's fake pynvml module, in place before the server starts."""
    return make_nvml() if make_nvml is not None else None


@pytest.fixture
def ext_config() -> dict[str, Any]:
    """The extension's configuration."""
    return {"interval": 0.2, "report_interval": 1.0, "read_timeout": 0.5}


@pytest.fixture
def jp_server_config(env, nvml, ext_config, monkeypatch, request) -> dict[str, Any]:
    """The server's configuration; sets its environment (``{service}``: the stand-in's URL)."""
    for name in ("GPUHUB_LEASE_ID", "GPUHUB_SIMULATED", "GPUHUB_SERVICE_URL", "GPUHUB_PROFILE",
                 "GPUHUB_NO_GPU", "CUDA_VISIBLE_DEVICES", "JUPYTERHUB_API_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if "{service}" in value:
            value = value.format(service=request.getfixturevalue("service").url)
        monkeypatch.setenv(name, value)
    if nvml is not None:
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_gpuhub": True}},
        "GpuhubExtension": ext_config,
    }


@pytest.fixture
def run(jp_asyncio_loop):
    """Run a coroutine on the server's loop (the sampler runs meanwhile)."""
    return lambda coro: jp_asyncio_loop.run_until_complete(asyncio.wait_for(coro, 30))


@pytest.fixture
def get(jp_fetch, run):
    """GET a route of the extension; the decoded JSON (or text) and the status."""

    def get(route: str, **params: str) -> tuple[int, Any]:
        async def fetch() -> tuple[int, Any]:
            try:
                resp = await jp_fetch("gpuhub", "api", "v1", route, params=params)
            except httpclient.HTTPClientError as e:
                return e.code, json.loads(e.response.body)
            body = resp.body.decode()
            if resp.headers["Content-Type"].startswith("application/json"):
                return resp.code, json.loads(body)
            return resp.code, body

        return run(fetch())

    return get


#: A lease of one seat of a time-sliced H100 (two seats), as the service answers it.
SHARED_LEASE = {
    "id": 9, "status": "active", "user": "ada", "node": "node-1", "simulated": False,
    "profile": "h100-shared", "shape": {"kind": "shared", "model": "H100"},
    "granted_at": "2026-12-01T00:00:00+00:00", "gpu_hours": 0.1,
    "devices": [
        {"uuid": H100, "index": 0, "model": "NVIDIA H100 80GB HBM3", "memory_mb": 81559,
         "simulated": False, "shared_by": 2, "slot": 1},
    ],
}  # fmt: skip


@pytest.fixture
def lease() -> dict[str, Any] | None:
    """The lease the stand-in service answers (None: a simulated MIG lease)."""
    return None


@pytest.fixture
def service(run, lease):
    """A stand-in gpuhub service on 127.0.0.1 (token ``secret``)."""
    lease = lease or {
        "id": 7, "status": "active", "user": "ada", "node": "sim-node", "simulated": True,
        "profile": "h100-1g", "shape": {"kind": "mig", "profile": "1g.10gb", "count": 1},
        "granted_at": "2026-12-01T00:00:00+00:00", "gpu_hours": 0.1,
        "devices": [
            {"uuid": "GPU-sim-0", "index": 0, "model": "NVIDIA H100 80GB HBM3",
             "memory_mb": 81559, "simulated": True},
        ],
    }  # fmt: skip
    svc = StandInService("secret", lease)
    run(svc.start())
    yield svc
    svc.stop()


def wait_for(run, get, check, timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``devices`` until ``check(answer)`` holds; the answer."""
    deadline = time.monotonic() + timeout
    while True:
        _, answer = get("devices")
        if check(answer):
            return answer
        assert time.monotonic() < deadline, f"gave up waiting; last answer {answer}"
        run(asyncio.sleep(0.1))


def services_of(jp_serverapp) -> Any:
    return jp_serverapp.web_app.settings["jupyter_gpuhub"]


# -- tests ------------------------------------------------------------------------------


def test_no_lease_answers_plainly(get):
    status, devices = get("devices")
    assert status == 200
    assert devices == {
        "lease_id": None, "no_gpu": False, "profile": None, "simulated": False,
        "interval_s": 0.2, "devices": [], "error": None,
    }  # fmt: skip
    assert get("lease") == (200, {"lease": None, "message": "This server holds no GPU lease."})
    status, text = get("metrics")
    assert status == 200
    assert "gpuhub_server_device_utilization_pct{" not in text
    assert "gpuhub_server_sampler_reads_total 0" in text


def test_interval_below_nvml_refresh_is_refused():
    with pytest.raises(TraitError, match="at least 0.1"):
        GpuhubExtension(interval=0.05)
    with pytest.raises(TraitError):
        GpuhubExtension(report_interval=0)


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "7", "CUDA_VISIBLE_DEVICES": H100}])
@pytest.mark.parametrize("make_nvml", [whole_gpu_nvml])
def test_whole_gpu(get, run):
    answer = wait_for(run, get, lambda a: len(a["devices"][0]["history"]) >= 2)
    assert answer["lease_id"] == 7 and answer["simulated"] is False and answer["error"] is None
    [device] = answer["devices"]
    assert device["uuid"] == H100 and device["index"] == 0 and device["kind"] == "gpu"
    assert device["name"] == "NVIDIA H100 80GB HBM3" and device["profile"] is None
    assert device["shared"] is False
    latest = device["latest"]
    assert latest["scope"] == "device"  # a whole GPU: NVML's device values, unchanged
    assert latest["utilization_pct"] == 40.0
    assert latest["memory_used_mb"] == 1024.0 and latest["memory_total_mb"] == 81559.0
    assert latest["temperature_c"] == 50.0 and latest["sm_clock_mhz"] == 1755.0
    assert latest["power_w"] == 120.0 and latest["power_limit_w"] == 700.0
    assert latest["processes"] == [{"pid": 4242, "name": "?", "memory_mb": 2048.0}] or (
        latest["processes"][0]["pid"] == 4242  # a pid 4242 may exist here
    )
    # since= returns only newer samples
    _, newer = get("devices", since=str(latest["t"]))
    assert all(s["t"] > latest["t"] for s in newer["devices"][0]["history"])
    assert get("devices", since="soon")[0] == 400
    assert get("devices", since="nan")[0] == 400
    _, text = get("metrics")
    assert f'gpuhub_server_device_utilization_pct{{uuid="{H100}",index="0"' in text
    assert "gpuhub_server_device_memory_total_mb{" in text and " 81559\n" in text


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "8", "CUDA_VISIBLE_DEVICES": SLICE}])
@pytest.mark.parametrize("make_nvml", [mig_nvml])
def test_mig_slice_utilization_is_not_available(get, run):
    answer = wait_for(run, get, lambda a: a["devices"] and a["devices"][0]["latest"])
    [device] = answer["devices"]
    assert device["kind"] == "mig" and device["profile"] == "1g.10gb"
    assert device["name"] == "1g.10gb slice of NVIDIA H100 80GB HBM3"
    latest = device["latest"]
    assert latest["utilization_pct"] is None  # "n/a", never 0
    assert latest["temperature_c"] is None and latest["power_w"] is None
    assert latest["memory_used_mb"] == 512.0 and latest["memory_total_mb"] == 9984.0
    assert [p["pid"] for p in latest["processes"]] == [77]
    _, text = get("metrics")
    assert "gpuhub_server_device_utilization_pct{" not in text
    assert "gpuhub_server_device_memory_used_mb{" in text


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "7", "CUDA_VISIBLE_DEVICES": H100}])
@pytest.mark.parametrize(
    "code", [pynvml.NVML_ERROR_DRIVER_NOT_LOADED, pynvml.NVML_ERROR_GPU_IS_LOST]
)
@pytest.mark.parametrize("make_nvml", [whole_gpu_nvml])
def test_nvml_errors_degrade_and_recover(get, run, nvml, code):
    fake = nvml
    answer = wait_for(run, get, lambda a: a["devices"] and a["devices"][0]["latest"])
    good = answer["devices"][0]["latest"]
    fake.fail = code
    broken = wait_for(run, get, lambda a: a["error"])
    assert "NVML" in broken["error"]
    assert broken["devices"][0]["latest"]["t"] >= good["t"]  # last good samples kept
    stuck = broken["devices"][0]["latest"]["t"]
    run(asyncio.sleep(0.5))
    _, still = get("devices")
    assert still["error"] and still["devices"][0]["latest"]["t"] == stuck
    _, text = get("metrics")
    assert "gpuhub_server_sampler_error 1" in text
    fake.fail = None
    fake.devices[H100].util = 90
    healed = wait_for(run, get, lambda a: a["error"] is None)
    healed = wait_for(run, get, lambda a: a["devices"][0]["latest"]["utilization_pct"] == 90)
    assert healed["devices"][0]["latest"]["t"] > stuck


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "7", "CUDA_VISIBLE_DEVICES": H100}])
@pytest.mark.parametrize("make_nvml", [whole_gpu_nvml])
def test_hung_nvml_never_blocks_requests(get, run, nvml):
    fake = nvml
    wait_for(run, get, lambda a: a["devices"] and a["devices"][0]["latest"])
    release = threading.Event()
    fake.hang = release
    try:
        started = time.monotonic()
        answer = wait_for(run, get, lambda a: a["error"] and "not answer" in a["error"])
        assert answer["devices"][0]["latest"] is not None  # the last sample stays
        for _ in range(5):
            t0 = time.monotonic()
            assert get("devices")[0] == 200
            assert time.monotonic() - t0 < 1.0
        assert time.monotonic() - started < 8
        reads = fake.reads
        run(asyncio.sleep(1.0))
        assert fake.reads == reads  # no read piles up behind the hung one
    finally:
        fake.hang = None
        release.set()
    wait_for(run, get, lambda a: a["error"] is None)


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "7", "CUDA_VISIBLE_DEVICES": H100}])
@pytest.mark.parametrize("ext_config", [{"interval": 5.0}])
@pytest.mark.parametrize("make_nvml", [whole_gpu_nvml])
def test_one_sampler_for_every_client(get, run, jp_fetch, nvml):
    fake = nvml
    wait_for(run, get, lambda a: a["devices"] and a["devices"][0]["latest"])
    reads = fake.reads

    async def clients(n: int) -> list[int]:
        resps = await asyncio.gather(
            *(jp_fetch("gpuhub", "api", "v1", "devices") for _ in range(n))
        )
        return [r.code for r in resps]

    assert run(clients(50)) == [200] * 50
    assert fake.reads - reads <= 1  # at most the one periodic read, whatever the clients


@pytest.mark.parametrize(
    "env",
    [{"GPUHUB_LEASE_ID": "7", "GPUHUB_SIMULATED": "1", **SERVICE}],
)
def test_simulated_values_follow_cpu_activity(get, run, service):
    answer = wait_for(run, get, lambda a: a["devices"] and len(a["devices"][0]["history"]) >= 3)
    assert answer["simulated"] is True
    [device] = answer["devices"]
    assert device["simulated"] is True and device["name"] == "NVIDIA H100 80GB HBM3"
    assert device["latest"]["memory_total_mb"] == 81559.0
    quiet = device["latest"]

    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(10_000))

    worker = threading.Thread(target=burn)
    worker.start()
    try:
        busy = wait_for(
            run, get, lambda a: a["devices"][0]["latest"]["utilization_pct"] >= 40, timeout=15
        )
    finally:
        stop.set()
        worker.join()
    assert busy["devices"][0]["latest"]["memory_used_mb"] > quiet["memory_used_mb"]
    # the activity report reached the service with the server's own token
    deadline = time.monotonic() + 10
    while not service.reports:
        assert time.monotonic() < deadline, "no activity report arrived"
        run(asyncio.sleep(0.2))
    report = service.reports[-1]
    assert report["lease"] == 7 and 1 <= report["window_s"] <= 3600
    assert set(report) == {
        "lease", "window_s", "utilization_mean_pct", "utilization_max_pct",
        "memory_used_mb", "last_active_at", "devices", "busy_kernels", "terminals",
    }  # fmt: skip
    assert report["busy_kernels"] == 0  # idle reclaim counts executing kernels as activity
    assert report["devices"][0]["uuid"] == "GPU-sim-0"
    assert set(service.auth) == {"token secret"}


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "7", "GPUHUB_SIMULATED": "1", **SERVICE}])
def test_lease_and_me_are_proxied_with_the_servers_token(get, run, service, jp_serverapp):
    services = services_of(jp_serverapp)
    status, lease = get("lease")
    assert status == 200 and lease["message"] is None and lease["lease"]["id"] == 7
    assert get("me") == (200, {"user": "ada", "quota": {"gpu_hours_left": 3.2}})
    assert set(service.auth) == {"token secret"}
    service.stop()
    services._lease = None
    status, body = get("me")
    assert status == 502 and "did not answer" in body["message"]
    status, body = get("lease")
    assert status == 502 and body["message"]


@pytest.mark.parametrize("env", [{"GPUHUB_LEASE_ID": "8", "CUDA_VISIBLE_DEVICES": SLICE}])
@pytest.mark.parametrize("make_nvml", [gpm_mig_nvml])
def test_mig_slice_utilization_from_gpm_where_supported(get, run, nvml):
    answer = wait_for(
        run,
        get,
        lambda a: a["devices"] and (a["devices"][0]["latest"] or {}).get("utilization_pct"),
    )
    latest = answer["devices"][0]["latest"]
    assert latest["utilization_pct"] == 37.5 and latest["temperature_c"] is None
    assert nvml.live_samples == 1  # one sample kept for the next read, the rest freed


SHARED_ENV = {"GPUHUB_LEASE_ID": "9", "CUDA_VISIBLE_DEVICES": H100, **SERVICE}


@pytest.mark.parametrize("env", [SHARED_ENV])
@pytest.mark.parametrize("lease", [SHARED_LEASE])
@pytest.mark.parametrize("make_nvml", [shared_gpu_nvml])
def test_shared_gpu_reports_this_servers_processes_only(get, run, nvml, service):
    answer = wait_for(run, get, lambda a: a["devices"] and len(a["devices"][0]["history"]) >= 2)
    [device] = answer["devices"]
    assert device["shared"] is True and device["kind"] == "gpu"
    idle = device["latest"]
    # the neighbour is busy at 95% with 20 GiB; ours idles with 2 GiB
    assert idle["scope"] == "lease"
    assert idle["utilization_pct"] == 0.0
    assert idle["memory_used_mb"] == 2048.0 and idle["memory_total_mb"] == 81559.0
    assert [p["pid"] for p in idle["processes"]] == [OURS]
    _, text = get("metrics")
    assert 'scope="lease"' in text
    assert any(
        line.startswith("gpuhub_server_device_utilization_pct{") and line.endswith(" 0")
        for line in text.splitlines()
    )
    # the report of the idle window carries our values, not the GPU's
    deadline = time.monotonic() + 10
    while not service.reports:
        assert time.monotonic() < deadline, "no activity report arrived"
        run(asyncio.sleep(0.2))
    report = service.reports[-1]
    assert report["lease"] == 9 and report["utilization_max_pct"] == 0.0
    assert report["memory_used_mb"] == 2048.0 and report["last_active_at"] is None
    assert report["devices"][0]["memory_used_mb"] == 2048.0

    nvml.devices[H100].proc_util = {OURS: 80, NEIGHBOUR: 95}
    busy = wait_for(run, get, lambda a: a["devices"][0]["latest"]["utilization_pct"] == 80.0)
    assert busy["devices"][0]["latest"]["scope"] == "lease"
    seen = len(service.reports)
    deadline = time.monotonic() + 10
    while len(service.reports) <= seen or service.reports[-1]["utilization_max_pct"] != 80.0:
        assert time.monotonic() < deadline, f"no busy report; last {service.reports[-1]}"
        run(asyncio.sleep(0.2))
    assert service.reports[-1]["last_active_at"] is not None


@pytest.mark.parametrize("env", [SHARED_ENV])
@pytest.mark.parametrize("lease", [SHARED_LEASE])
@pytest.mark.parametrize("make_nvml", [shared_gpu_without_process_utilization])
def test_shared_gpu_without_process_utilization_is_not_available(get, run, service):
    answer = wait_for(run, get, lambda a: a["devices"] and len(a["devices"][0]["history"]) >= 2)
    latest = answer["devices"][0]["latest"]
    assert latest["scope"] == "lease"
    assert latest["utilization_pct"] is None  # n/a, never the whole GPU's 95%
    assert latest["memory_used_mb"] == 2048.0
    _, text = get("metrics")
    assert "gpuhub_server_device_utilization_pct{" not in text
