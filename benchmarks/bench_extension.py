"""NVML calls, route latency and event-loop lag under many clients: jupyter_gpuhub against
jupyterlab-nvdashboard.

Each configuration starts its own real ``jupyter server`` subprocess (127.0.0.1, a free
port, token auth) with one of the two extensions enabled and the other disabled. The
server runs through this file's ``serve`` mode, a small wrapper that first puts a
counting fake ``pynvml`` into ``sys.modules`` (one whole simulated H100; every ``nvml*``
call is counted), then starts ``ServerApp`` with an event-loop probe: a task that sleeps
50 ms and records how late it wakes. The wrapper writes the call count and the lags to a
JSON file four times a second; the benchmark reads it at the start and the end of the
measured window.

Clients, all in this process on one asyncio loop, do what the front ends do:

* **gpuhub**: ``GET <base_url>gpuhub/api/v1/devices`` with the token (the whole history
  once, then ``?since=`` the newest sample's time, as the panel's model does), then a pause
  drawn from 1-2 s (the panel polls every 2 s by default); latency is request to answer.
* **nvdashboard**: a websocket to ``<base_url>nvdashboard/gpu_resource`` (the GPU
  Resources widget); after the server's ``{"status": "connected"}`` the client sends
  ``{"updateFrequency": F, "isPaused": false}`` as the widget does (``F`` = 100 ms, its
  settings default, and 1000 ms); latency is the message's arrival minus the ``time``
  the server stamped into it.

    .venv/bin/python benchmarks/bench_extension.py                      # 1, 10, 50 clients
    .venv/bin/python benchmarks/bench_extension.py --clients 1,10 --window 10 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' support package (tests/support)
from tests.support.ports import free_port  # noqa: E402 - ports outside the ephemeral range

UUID = "GPU-5e1f0c2a-7b3d-4e8f-9a61-0c2d4b6e8f10"
TOKEN = "bench-extension-token"
PROBE_S = 0.05
MB = 2**20


# -- the server side: a counting fake pynvml and the event-loop probe ---------------------


class CountingNvml(types.ModuleType):
    """``pynvml`` for one whole H100: plausible answers, every ``nvml*`` call counted.

    Constants and error classes are the real ones (nvidia-ml-py), so both extensions'
    ``except pynvml.NVMLError...`` clauses work unchanged.
    """

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__("pynvml")
        self._real = real
        self.calls = 0
        self.by_name: dict[str, int] = {}
        self.call_s = float(os.environ.get("BENCH_NVML_CALL_MS", "0")) / 1000
        self._lock = threading.Lock()
        self._answers = {
            "nvmlInit": lambda *a: None,
            "nvmlShutdown": lambda *a: None,
            "nvmlDeviceGetCount": lambda *a: 1,
            "nvmlDeviceGetHandleByIndex": lambda *a: "h0",
            "nvmlDeviceGetHandleByUUID": self._by_uuid,
            "nvmlDeviceGetName": lambda *a: "NVIDIA H100 80GB HBM3",
            "nvmlDeviceGetMemoryInfo": lambda *a: types.SimpleNamespace(
                total=81559 * MB, used=random.randint(1000, 60000) * MB, free=0
            ),
            "nvmlDeviceGetUtilizationRates": lambda *a: types.SimpleNamespace(
                gpu=random.randint(0, 100), memory=random.randint(0, 100)
            ),
            "nvmlDeviceGetTemperature": lambda *a: 48,
            "nvmlDeviceGetPowerUsage": lambda *a: 180_000,
            "nvmlDeviceGetEnforcedPowerLimit": lambda *a: 700_000,
            "nvmlDeviceGetClockInfo": lambda *a: 1755,
            "nvmlDeviceGetComputeRunningProcesses": lambda *a: [],
            "nvmlDeviceGetMaxPcieLinkGeneration": lambda *a: 5,
            "nvmlDeviceGetMaxPcieLinkWidth": lambda *a: 16,
            "nvmlDeviceGetPcieThroughput": lambda *a: random.randint(0, 50_000),
            "nvmlDeviceGetNvLinkVersion": self._not_supported,
            "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": self._invalid,
        }

    def _by_uuid(self, uuid: Any) -> str:
        if uuid != UUID:
            raise self._real.NVMLError(self._real.NVML_ERROR_NOT_FOUND)
        return "h0"

    def _not_supported(self, *args: Any) -> Any:
        raise self._real.NVMLError(self._real.NVML_ERROR_NOT_SUPPORTED)

    def _invalid(self, *args: Any) -> Any:
        raise self._real.NVMLError(self._real.NVML_ERROR_INVALID_ARGUMENT)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("nvml"):
            return getattr(self._real, name)  # constants, error classes, structs
        answer = self._answers.get(name, self._not_supported)

        def call(*args: Any) -> Any:
            with self._lock:
                self.calls += 1
                self.by_name[name] = self.by_name.get(name, 0) + 1
            if self.call_s:
                time.sleep(self.call_s)  # what a real driver call costs, if asked
            return answer(*args)

        return call


def serve(state_path: Path, server_args: list[str]) -> None:
    """Install the counting fake pynvml, start a jupyter server, report to ``state_path``."""
    import pynvml as real  # nvidia-ml-py: constants and errors; it loads no library here

    fake = CountingNvml(real)
    sys.modules["pynvml"] = fake
    from jupyter_server.serverapp import ServerApp

    lags: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(PROBE_S)
            lags.append(loop.time() - t0 - PROBE_S)

    def report() -> None:
        tmp = state_path.with_suffix(".tmp")
        while True:
            body = {
                "t": time.monotonic(),
                "calls": fake.calls,
                "by_name": dict(fake.by_name),
                "lags": list(lags),
            }
            tmp.write_text(json.dumps(body))
            os.replace(tmp, state_path)
            time.sleep(0.25)

    app = ServerApp.instance()
    app.initialize(server_args)
    app.io_loop.add_callback(lambda: asyncio.ensure_future(probe()))
    threading.Thread(target=report, daemon=True).start()
    app.start()


# -- the benchmark side ------------------------------------------------------------------


@dataclass
class Server:
    """One ``jupyter server`` subprocess with one of the two extensions."""

    kind: str  # "gpuhub" | "nvdashboard"
    workdir: Path
    nvml_call_ms: float = 0.0
    proc: subprocess.Popen | None = None
    port: int = 0

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.port = free_port()
        (self.workdir / "root").mkdir(parents=True, exist_ok=True)
        enabled = {
            "jupyter_gpuhub": self.kind == "gpuhub",
            "jupyterlab_nvdashboard": self.kind == "nvdashboard",
        }
        switches = [f"--ServerApp.jpserver_extensions={k}={v}" for k, v in enabled.items()]
        args = [
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.workdir / 'root'}",
            f"--IdentityProvider.token={TOKEN}",
            *switches,
            "--ServerApp.log_level=WARN",
            "--ServerApp.allow_root=True",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "GPUHUB_"))}
        env.update(
            GPUHUB_LEASE_ID="1",  # a lease of one whole GPU, read through NVML by UUID
            CUDA_VISIBLE_DEVICES=UUID,
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
            PYTHONUNBUFFERED="1",
            BENCH_NVML_CALL_MS=str(self.nvml_call_ms),
        )
        cmd = [sys.executable, __file__, "serve", str(self.state_path), "--", *args]
        with open(self.workdir / "server.log", "w") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        client = AsyncHTTPClient()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited; see {self.workdir}/server.log")
            try:
                await client.fetch(self.url + "api/status", headers=auth(), request_timeout=2)
                if self.state_path.exists():
                    return
            except (HTTPClientError, OSError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.kind} server did not answer within {timeout:.0f} s")

    def state(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return json.loads(self.state_path.read_text())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"cannot read {self.state_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def gpuhub_client(server: Server, stop: asyncio.Event, lat: list, errors: list) -> None:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    client = AsyncHTTPClient()
    url = server.url + "gpuhub/api/v1/devices"
    last_t = None  # like the panel: the whole history once, then only newer samples
    await asyncio.sleep(random.uniform(0, 2))  # tabs are not opened in lockstep
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            query = "" if last_t is None else f"?since={last_t!r}"
            r = await client.fetch(url + query, headers=auth(), request_timeout=10)
            body = json.loads(r.body)
            assert body["devices"] and body["devices"][0]["latest"], body
            lat.append((t0, time.monotonic() - t0))
            last_t = body["devices"][0]["latest"]["t"]
        except (HTTPClientError, OSError, AssertionError, ValueError) as e:
            errors.append(repr(e)[:200])
        try:
            await asyncio.wait_for(stop.wait(), random.uniform(1.0, 2.0))
        except TimeoutError:
            pass


async def nvd_client(
    server: Server, stop: asyncio.Event, lat: list, errors: list, frequency_ms: int
) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    await asyncio.sleep(random.uniform(0, 2))
    url = server.url.replace("http", "ws", 1) + "nvdashboard/gpu_resource"
    try:
        ws = await websocket_connect(HTTPRequest(url, headers=auth(), request_timeout=10))
    except Exception as e:  # noqa: BLE001 - counted, the run goes on
        errors.append(repr(e)[:200])
        return
    try:
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.read_message(), 0.5)
            except TimeoutError:
                continue
            if msg is None:
                errors.append("websocket closed by the server")
                return
            data = json.loads(msg)
            if data.get("status") == "connected":
                ws.write_message(json.dumps({"updateFrequency": frequency_ms, "isPaused": False}))
            elif "time" in data:
                now = time.time()
                lat.append((time.monotonic(), now - data["time"] / 1000))
            else:
                errors.append(str(data)[:200])
    finally:
        ws.close()


async def run_config(kind: str, clients: int, args: argparse.Namespace, frequency_ms: int = 0):
    """Start a server, run ``clients`` clients for warm-up + window, return the numbers."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-ext-{kind}-", dir=args.workdir))
    server = Server(kind, workdir, nvml_call_ms=args.nvml_call_ms)
    server.start()
    try:
        await server.wait_ready()
        stop = asyncio.Event()
        lat: list[tuple[float, float]] = []
        errors: list[str] = []
        if kind == "gpuhub":
            tasks = [gpuhub_client(server, stop, lat, errors) for _ in range(clients)]
        else:
            tasks = [nvd_client(server, stop, lat, errors, frequency_ms) for _ in range(clients)]
        running = [asyncio.ensure_future(t) for t in tasks]
        await asyncio.sleep(args.warmup)
        s0, w0 = server.state(), time.monotonic()
        await asyncio.sleep(args.window)
        s1, w1 = server.state(), time.monotonic()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), 15)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    in_window = [x for t, x in lat if w0 <= t < w1]
    lags = s1["lags"][len(s0["lags"]) :]
    by_name = {k: v - s0["by_name"].get(k, 0) for k, v in s1["by_name"].items()}
    elapsed = s1["t"] - s0["t"]
    result = {
        "server": kind if kind == "gpuhub" else f"nvdashboard@{frequency_ms}ms",
        "clients": clients,
        "window_s": round(elapsed, 2),
        "nvml_calls_per_s": round((s1["calls"] - s0["calls"]) / elapsed, 1),
        "nvml_calls_by_name": {k: v for k, v in sorted(by_name.items()) if v},
        "answers": len(in_window),
        "answers_per_s": round(len(in_window) / (w1 - w0), 1),
        "latency_p50_ms": _ms(pct(in_window, 50)),
        "latency_p99_ms": _ms(pct(in_window, 99)),
        "latency_max_ms": _ms(max(in_window, default=None)),
        "loop_lag_p50_ms": _ms(pct(lags, 50)),
        "loop_lag_p99_ms": _ms(pct(lags, 99)),
        "loop_lag_max_ms": _ms(max(lags, default=None)),
        "probe_wakeups": len(lags),
        "errors": len(errors),
        "first_errors": errors[:3],
    }
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def machine() -> dict[str, Any]:
    import jupyter_server
    import jupyterlab_nvdashboard

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jupyter_server": jupyter_server.__version__,
        "jupyterlab_nvdashboard": jupyterlab_nvdashboard.__version__,
        "loadavg_1m": os.getloadavg()[0],
    }


def print_table(results: list[dict[str, Any]]) -> None:
    head = (
        "server",
        "clients",
        "NVML calls/s",
        "answers/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lag p99 ms",
        "lag max ms",
        "errors",
    )
    keys = (
        "server",
        "clients",
        "nvml_calls_per_s",
        "answers_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "loop_lag_p99_ms",
        "loop_lag_max_ms",
        "errors",
    )
    rows = [[str(r[k]) for k in keys] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours ÷ nvdashboard per client count and nvdashboard frequency."""
    ours = {r["clients"]: r for r in results if r["server"] == "gpuhub"}
    out = []
    for r in results:
        g = ours.get(r["clients"])
        if r["server"] == "gpuhub" or g is None:
            continue

        def div(key: str, g: dict = g, r: dict = r) -> float | None:
            return round(g[key] / r[key], 4) if g[key] is not None and r[key] else None

        out.append(
            {
                "clients": r["clients"],
                "against": r["server"],
                "nvml_calls_per_s": div("nvml_calls_per_s"),
                "latency_p99": div("latency_p99_ms"),
                "loop_lag_p99": div("loop_lag_p99_ms"),
            }
        )
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure(None, max_clients=max(args.clients) + 10)
    random.seed(args.seed)
    results = []
    before = machine()
    for clients in args.clients:
        configs = [("gpuhub", 0)] + [("nvdashboard", f) for f in args.nvd_frequency]
        for kind, freq in configs:
            r = await run_config(kind, clients, args, freq)
            results.append(r)
            print(
                f"{r['server']:>20} {clients:3d} clients: {r['nvml_calls_per_s']:8.1f} NVML "
                f"calls/s, p99 {r['latency_p99_ms']} ms, loop lag p99 {r['loop_lag_p99_ms']} ms",
                flush=True,
            )
    return {
        "config": {
            "clients": args.clients,
            "window_s": args.window,
            "warmup_s": args.warmup,
            "nvd_frequency_ms": args.nvd_frequency,
            "nvml_call_ms": args.nvml_call_ms,
            "seed": args.seed,
            "probe_s": PROBE_S,
        },
        "machine": {**before, "loadavg_1m_after": os.getloadavg()[0]},
        "results": results,
        "ratios": ratios(results),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--clients", type=ints, default=[1, 10, 50], help="comma-separated")
    p.add_argument("--window", type=float, default=20.0, help="measured seconds per config")
    p.add_argument("--warmup", type=float, default=4.0, help="seconds of load before it")
    p.add_argument(
        "--nvd-frequency",
        type=ints,
        default=[100, 1000],
        help="nvdashboard updateFrequency values in ms (its default is 100)",
    )
    p.add_argument(
        "--nvml-call-ms",
        type=float,
        default=0.0,
        help="milliseconds each fake NVML call blocks its caller (0: none)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default=None, help="where the servers' directories go")
    p.add_argument("--keep", action="store_true", help="keep the servers' logs and state")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every number here")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        serve(Path(argv[1]), argv[3:])
        return 0
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers on SIGTERM too
    t0 = time.monotonic()
    report = asyncio.run(main_async(args))
    report["total_s"] = round(time.monotonic() - t0, 1)
    print()
    print_table(report["results"])
    print()
    for r in report["ratios"]:
        print(
            f"{r['clients']:3d} clients, ours ÷ {r['against']}: NVML calls/s "
            f"{r['nvml_calls_per_s']}, p99 latency {r['latency_p99']}, "
            f"loop lag p99 {r['loop_lag_p99']}"
        )
    print(f"\n{report['machine']['cpus']} CPUs, total {report['total_s']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
