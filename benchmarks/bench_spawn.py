"""Spawn latency: GPUDockerSpawner against stock DockerSpawner, side by side in one run.

Starts two real JupyterHubs on this machine's Docker engine, both from
``hub_config/jupyterhub_config.py`` (loaded with ``load_subconfig``), with host networking
and the same image:

* **gpu**: ``GPUDockerSpawner`` (``spawner_class = "gpu-docker"``), leasing one simulated
  GPU from the gpuhub service per server (a pool of ``--gpus`` GPUs, no user quota, so no
  spawn ever queues), Docker calls on its ``docker_threads`` pool, containers booting
  in turns (``concurrent_boots``).
* **stock**: ``dockerspawner.DockerSpawner`` with one thread for all Docker calls. For
  ``network_name = "host"`` it needs what stock users configure for host networking:
  ``use_internal_ip = True`` (else it asks for port bindings, which docker-py refuses on
  the host network), the two-line ``get_ip_and_port`` override that DockerSpawner's own
  docstring prescribes, and a ``pre_spawn_hook`` that gives each server a free port on
  127.0.0.1 (what GPUDockerSpawner does itself). It gets the container settings of the
  GPU containers: the per-user volume ``gpuhub-home-<user>`` on ``/home/jovyan``, user
  ``1000:100``, ``cap_drop=ALL``, ``no-new-privileges``, ``init``, ``remove=True``.

Users spawn through the hub's REST API (``POST /hub/api/users/NAME/server``). A spawn's
latency runs from sending that request until the server is ready: the POST's own 201
answer, or the ``ready`` event of ``/hub/api/users/NAME/server/progress`` when the POST
answered 202 (the spawn outlasted the hub's ``slow_spawn_timeout``). After each round all
servers are stopped, and the next round waits until their containers are gone.

Rounds alternate between the two hubs (stock, gpu, gpu, stock, ...), so drift in the
machine's load does not favour one. Every spawn is a new user with a new home volume.
Containers, volumes and hub processes are removed at the end, also on error.

    .venv/bin/python benchmarks/bench_spawn.py                       # 1, 10 and 30 users
    .venv/bin/python benchmarks/bench_spawn.py --concurrency 1,10 --single 4 --json out.json

See benchmarks/README.md for every option and number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import docker
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' support package (tests/support)
from common import fmt, host, percentile, ready_after  # noqa: E402 - benchmarks/common.py

from tests.support.hub import Hub  # noqa: E402 - the tests' real-JupyterHub driver, shared

KINDS = ("stock", "gpu")

# Appended to tests/support/hub.py's test config (which load_subconfig()s the hub config); the
# gpuhub service reads the same file, so it sees the GpuhubService overrides.
COMMON_CONFIG = """
# added by benchmarks/bench_spawn.py ({kind})
import socket

c.JupyterHub.concurrent_spawn_limit = 100
c.JupyterHub.active_server_limit = 0
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 300
c.DockerSpawner.network_name = "host"
c.DockerSpawner.remove = True
"""

GPU_CONFIG = """
c.JupyterHub.spawner_class = "gpu-docker"
c.GPUSpawnerMixin.profiles = [
    {{"name": "bench", "display_name": "1 GPU", "default": True, "image": {image!r},
      "shape": {{"kind": "gpu", "count": 1}}}}
]
c.GpuhubService.default_user_quota = None
c.GPUDockerSpawner.docker_threads = {threads}
c.GPUDockerSpawner.concurrent_boots = {boots}
"""

STOCK_CONFIG = """
from dockerspawner import DockerSpawner


class HostNetworkDockerSpawner(DockerSpawner):
    # DockerSpawner.get_ip_and_port's docstring: "If you are using network_mode=host,
    # you will need to override this method as follows"
    async def get_ip_and_port(self):
        return self.host_ip, self.port


def free_port(spawner):
    # on the host network every server needs its own port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        spawner.port = s.getsockname()[1]


c.JupyterHub.spawner_class = HostNetworkDockerSpawner
c.Spawner.pre_spawn_hook = free_port
c.DockerSpawner.image = {image!r}
# no port_bindings: docker-py refuses them on the host network (dockerspawner#462)
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.host_ip = "127.0.0.1"
c.DockerSpawner.ip = "127.0.0.1"
# the container settings GPUDockerSpawner applies to every GPU container
c.DockerSpawner.volumes = {{"gpuhub-home-{{username}}": "/home/jovyan"}}
c.DockerSpawner.extra_create_kwargs = {{"user": "1000:100", "working_dir": "/home/jovyan"}}
c.DockerSpawner.extra_host_config = {{
    "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "init": True,
}}
"""


@dataclass
class Round:
    """One round: ``users`` spawned at once on one hub."""

    kind: str
    concurrency: int
    latencies: list[float]
    makespan: float  # first request sent → last server ready
    stop_s: float  # stop requests sent → all containers gone
    failures: list[str] = field(default_factory=list)
    to_running: list[float] = field(default_factory=list)  # request → container started
    hub_cpu_s: float = 0.0  # CPU time of hub + proxy + gpuhub service during the spawns


class BenchHub(Hub):
    """One JupyterHub subprocess (with its proxy and the gpuhub service) for one spawner."""

    def __init__(self, kind: str, workdir: Path, args: argparse.Namespace, run_id: str):
        extra = COMMON_CONFIG.format(kind=kind)
        if kind == "gpu":
            extra += GPU_CONFIG.format(
                image=args.image, threads=args.docker_threads, boots=args.concurrent_boots
            )
        else:
            extra += STOCK_CONFIG.format(image=args.image)
        env = {
            "GPUHUB_SPAWNER": "docker",
            "GPUHUB_DOCKER_NETWORK": "host",
            "GPUHUB_SIMULATED_SPEC": f"bench-node: {args.gpus}xH100-80GB",
        }
        super().__init__(workdir / kind, env=env, extra_config=extra)
        self.kind = kind
        self.users: list[str] = []
        self.prefix = f"b{run_id}{kind[0]}"

    def start(self, timeout: float = 120) -> BenchHub:
        """Start the hub and wait until it and the gpuhub service answer."""
        return super().start(timeout)

    def cpu_seconds(self) -> float:
        """CPU time so far of the hub's session: the hub, its proxy and the gpuhub service."""
        if self.proc is None:
            return 0.0
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.proc.pid:  # session id
                    ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.url}/hub/api/",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=httpx.Timeout(600, connect=30),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        )

    def new_users(self, n: int) -> list[str]:
        names = [f"{self.prefix}{len(self.users) + i:03d}" for i in range(n)]
        self.users += names
        return names


async def spawn(client: httpx.AsyncClient, user: str, sent: dict[str, float]) -> float:
    """Request ``user``'s server; seconds until it is ready."""
    sent[user] = time.time()
    return await ready_after(client, user)


def our_containers(dk: docker.APIClient, prefix: str) -> list[dict]:
    return dk.containers(all=True, filters={"name": prefix})


async def wait_gone(dk: docker.APIClient, prefix: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while our_containers(dk, prefix):
        if time.monotonic() > deadline:
            raise RuntimeError(f"containers {prefix}* still there after {timeout}s")
        await asyncio.sleep(0.25)


async def stop_all(hub: BenchHub, client: httpx.AsyncClient, users: list[str], dk) -> float:
    """Stop the users' servers, wait until their containers are gone, delete the users."""
    t0 = time.perf_counter()
    await asyncio.gather(*(client.delete(f"users/{u}/server") for u in users))
    deadline = time.monotonic() + 300
    pending = set(users)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{hub.kind}: servers of {sorted(pending)} did not stop")
        for u in list(pending):
            r = await client.get(f"users/{u}")
            if r.status_code == 200 and not r.json().get("servers"):
                pending.discard(u)
        if pending:
            await asyncio.sleep(0.25)
    await wait_gone(dk, hub.prefix)
    took = time.perf_counter() - t0
    await asyncio.gather(*(client.delete(f"users/{u}") for u in users))
    for u in users:
        with contextlib.suppress(docker.errors.NotFound):
            dk.remove_volume(f"gpuhub-home-{u}", force=True)
    return took


async def run_round(hub: BenchHub, n: int, dk) -> Round:
    users = hub.new_users(n)
    async with hub.client() as client:
        r = await client.post("users", json={"usernames": users})
        if r.status_code != 201:
            raise RuntimeError(f"{hub.kind}: creating users answered {r.status_code}: {r.text}")
        sent: dict[str, float] = {}
        cpu0 = hub.cpu_seconds()
        start = time.perf_counter()
        results = await asyncio.gather(
            *(spawn(client, u, sent) for u in users), return_exceptions=True
        )
        hub_cpu = hub.cpu_seconds() - cpu0
        ends = [start + x for x in results if isinstance(x, float)]
        makespan = (max(ends) - start) if ends else float("nan")
        failures = [str(x) for x in results if not isinstance(x, float)]
        for f in failures:
            print(f"  ! {hub.kind}: {f}", file=sys.stderr)
        to_running = container_start_delays(dk, hub.prefix, sent)
        stop_s = await stop_all(hub, client, users, dk)
    lat = [x for x in results if isinstance(x, float)]
    return Round(hub.kind, n, lat, makespan, stop_s, failures, to_running, hub_cpu)


def docker_time(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, ``Z``) as a Unix timestamp."""
    head, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


def container_start_delays(dk, prefix: str, sent: dict[str, float]) -> list[float]:
    """Per server: seconds from its spawn request until the engine started its container.

    The rest of a spawn's latency is JupyterLab starting inside the container and the
    hub noticing that it answers; that part is the same work for both spawners.
    """
    out = []
    for c in our_containers(dk, prefix):
        user = c["Names"][0].lstrip("/").rsplit("-", 1)[-1]
        if user in sent:
            started = dk.inspect_container(c["Id"])["State"]["StartedAt"]
            out.append(docker_time(started) - sent[user])
    return out


def summarise(rounds: list[Round]) -> dict[str, Any]:
    lat = [x for r in rounds for x in r.latencies]
    run = [x for r in rounds for x in r.to_running]
    ok = sum(len(r.latencies) for r in rounds)
    busy = sum(r.makespan for r in rounds if r.latencies)
    return {
        "spawns": ok,
        "failures": sum(len(r.failures) for r in rounds),
        "rounds": len(rounds),
        "p50_s": percentile(lat, 50) if lat else None,
        "p95_s": percentile(lat, 95) if lat else None,
        "min_s": min(lat) if lat else None,
        "max_s": max(lat) if lat else None,
        "mean_s": sum(lat) / len(lat) if lat else None,
        "spawns_per_s": ok / busy if busy else None,
        "to_running_p50_s": percentile(run, 50) if run else None,
        "to_running_p95_s": percentile(run, 95) if run else None,
        "stop_all_s_mean": sum(r.stop_s for r in rounds) / len(rounds),
        "hub_cpu_ms_per_spawn": 1000 * sum(r.hub_cpu_s for r in rounds) / ok if ok else None,
        "latencies_s": [round(x, 4) for x in lat],
        "to_running_s": [round(x, 4) for x in run],
    }


def machine() -> dict[str, Any]:
    info = docker.APIClient(version="auto").version()
    return {
        **host(),
        "docker_engine": info.get("Version"),
        "jupyterhub": version("jupyterhub"),
        "dockerspawner": version("dockerspawner"),
        "docker_py": version("docker"),
    }


def order(i: int) -> tuple[str, str]:
    """ABBA: stock, gpu, gpu, stock, stock, gpu, ..."""
    return KINDS if i % 2 == 0 else KINDS[::-1]


async def bench(args: argparse.Namespace, hubs: dict[str, BenchHub], dk) -> dict[str, Any]:
    rounds: list[Round] = []
    print("warm-up: one spawn on each hub (not counted)")
    for kind in KINDS:
        w = await run_round(hubs[kind], 1, dk)
        print(f"  {kind}: {w.latencies} failures={len(w.failures)}")
    i = 0
    for n in args.concurrency:
        repeats = args.single if n == 1 else args.rounds.get(n, args.rounds.get(0, 1))
        print(f"concurrency {n}: {repeats} round(s) per spawner")
        for _ in range(repeats):
            for kind in order(i):
                await asyncio.sleep(args.settle)
                r = await run_round(hubs[kind], n, dk)
                rounds.append(r)
                lat = sorted(r.latencies)
                med = f"{percentile(lat, 50):.2f}" if lat else "-"
                print(
                    f"  {kind:5} n={n:2}: p50 {med} s, last ready {r.makespan:.2f} s, "
                    f"stop {r.stop_s:.1f} s, failures {len(r.failures)}",
                    flush=True,
                )
            i += 1
    results: dict[str, Any] = {}
    for n in args.concurrency:
        row = {
            k: summarise([r for r in rounds if r.kind == k and r.concurrency == n]) for k in KINDS
        }
        g, s = row["gpu"], row["stock"]
        row["ratio_gpu_over_stock"] = {
            key: (g[key] / s[key] if g[key] and s[key] else None)
            for key in (
                "p50_s",
                "p95_s",
                "spawns_per_s",
                "to_running_p50_s",
                "hub_cpu_ms_per_spawn",
            )
        }
        results[str(n)] = row
    return results


def print_table(results: dict[str, Any]) -> None:
    print()
    print(
        "| users at once | spawner | spawns | p50 (s) | p95 (s) | spawns/s "
        "| container started p50 / p95 (s) | hub CPU per spawn (ms) | stop all (s) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, row in results.items():
        for k in KINDS:
            x = row[k]
            fail = f" ({x['failures']} failed)" if x["failures"] else ""
            print(
                f"| {n} | {k} | {x['spawns']}{fail} | {fmt(x['p50_s'])} | {fmt(x['p95_s'])} "
                f"| {fmt(x['spawns_per_s'])} "
                f"| {fmt(x['to_running_p50_s'])} / {fmt(x['to_running_p95_s'])} "
                f"| {fmt(x['hub_cpu_ms_per_spawn'], 0)} | {fmt(x['stop_all_s_mean'], 1)} |"
            )
        r = row["ratio_gpu_over_stock"]
        print(
            f"| {n} | **gpu ÷ stock** | | **{fmt(r['p50_s'], 3)}** | {fmt(r['p95_s'], 3)} "
            f"| {fmt(r['spawns_per_s'], 3)} | {fmt(r['to_running_p50_s'], 3)} "
            f"| {fmt(r['hub_cpu_ms_per_spawn'], 3)} | |"
        )
    print()
    single = results.get("1")
    if single and single["ratio_gpu_over_stock"]["p50_s"]:
        ratio = single["ratio_gpu_over_stock"]["p50_s"]
        verdict = "met" if ratio <= 1.05 else "NOT met"
        print(f"single spawn p50 within 5 % of stock: gpu/stock = {ratio:.3f} -> {verdict}")
    for n, row in results.items():
        r = row["ratio_gpu_over_stock"]
        if r["p50_s"] is None or r["spawns_per_s"] is None:
            print(f"{n} at once: no ratio (spawns failed)")
            continue
        slower = r["p50_s"] > 1 or r["spawns_per_s"] < 1
        print(
            f"{n} at once: p50 ratio {r['p50_s']:.3f}, spawns/s ratio {r['spawns_per_s']:.3f}"
            f" -> {'slower than stock' if slower else 'no slower than stock'}"
        )
    if any(row[k]["failures"] for row in results.values() for k in KINDS):
        print("SOME SPAWNS FAILED: see the hub logs")


def cleanup(dk, hubs: dict[str, BenchHub], run_id: str) -> None:
    for hub in hubs.values():
        hub.stop()
    for c in dk.containers(all=True, filters={"name": f"b{run_id}"}):
        with contextlib.suppress(docker.errors.APIError):
            dk.remove_container(c["Id"], force=True, v=True)
    for hub in hubs.values():
        for u in hub.users:
            with contextlib.suppress(docker.errors.APIError):
                dk.remove_volume(f"gpuhub-home-{u}", force=True)


def load1() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--concurrency", default="1,10,30", help="comma-separated users at once")
    p.add_argument("--single", type=int, default=16, help="spawns per spawner at concurrency 1")
    p.add_argument(
        "--rounds",
        default="10:2",
        help="rounds per spawner above 1 user: N for every concurrency, or C:N,... (others 1)",
    )
    p.add_argument("--image", default="gpuhub/base:latest")
    p.add_argument("--gpus", type=int, default=32, help="simulated GPUs in the pool")
    p.add_argument("--docker-threads", type=int, default=8, help="GPUDockerSpawner pool")
    p.add_argument(
        "--concurrent-boots",
        type=int,
        default=None,
        help="GPUDockerSpawner.concurrent_boots (default: its default, the engine's CPUs)",
    )
    p.add_argument("--settle", type=float, default=1.5, help="seconds of rest before a round")
    p.add_argument("--workdir", type=Path, default=None, help="default: a new temporary dir")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    try:
        args.rounds = {
            int(c or 0): int(r) for c, _, r in (x.rpartition(":") for x in args.rounds.split(","))
        }
    except ValueError:
        p.error("--rounds takes N or C:N,... such as 10:2,30:1")
    if max(args.concurrency) > args.gpus:
        p.error("--gpus must be at least the largest concurrency (no spawn may queue)")

    run_id = secrets.token_hex(3)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-spawn-{run_id}-"))
    dk = docker.APIClient(version="auto")
    dk.inspect_image(args.image)  # fails early if the image is missing
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    hubs = {k: BenchHub(k, workdir, args, run_id) for k in KINDS}
    info = machine()
    print(f"run {run_id}, work dir {workdir}, image {args.image}")
    print(json.dumps(info))
    load_before = load1()
    print(f"load average (1 min) before: {load_before:.2f}")
    t0 = time.perf_counter()
    try:
        for hub in hubs.values():
            hub.start()
        results = asyncio.run(bench(args, hubs, dk))
    except BaseException:
        for hub in hubs.values():
            print(
                f"--- {hub.kind} hub log tail ({hub.log_path}) ---\n{hub.log_tail()}",
                file=sys.stderr,
            )
        raise
    finally:
        cleanup(dk, hubs, run_id)
    wall = time.perf_counter() - t0
    load_after = load1()
    print_table(results)
    print(f"\nload average (1 min) before {load_before:.2f}, after {load_after:.2f}; "
          f"whole run {wall:.0f} s")  # fmt: skip
    if args.json:
        out = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "image_id": dk.inspect_image(args.image)["Id"],
            "machine": info,
            "load1_before": load_before,
            "load1_after": load_after,
            "wall_s": wall,
            "results": results,
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
