"""The class-start rush: N users press Start at once, gpuhub against stock DockerSpawner
against the bare floor, side by side in one run, with where the CPU went.

* **gpu** and **stock**: the two hubs of ``bench_spawn.py`` (GPUDockerSpawner leasing a
  simulated GPU per server; stock DockerSpawner with the same container settings), on the
  host network, the same image. N users are created, then all N servers requested at
  once through the hub's REST API; a server's time runs until the hub calls it ready.
* **floor**: N plain ``docker run`` of the same image at once, each ``jupyter lab`` on a
  free 127.0.0.1 port (host network, user 1000:100, ``--init``), no hub at all; a
  container's time runs until its ``/api`` answers. What the engine and JupyterLab alone
  take for N servers on this machine.

Reported per size: the last server's time (the class's wait) and the median, and the
ratios gpu ÷ floor and gpu ÷ stock. While each rush runs, every process's CPU time is
sampled once a second and summed by role: the hub, the gpuhub service, the proxy, the
Docker engine (dockerd, containerd and its shims, runc), the servers in their containers,
and this benchmark.

    .venv/bin/python benchmarks/bench_rush.py                       # 10, 30 and 100 users
    .venv/bin/python benchmarks/bench_rush.py --sizes 10,30 --json rush.json
    .venv/bin/python benchmarks/bench_rush.py --sizes 30 --cpus 1     # the same on one core

``--cpus N`` runs everything on the first N CPUs: this benchmark and what it starts (the
hubs, their proxies and services), the Docker engine and every container it starts (they
inherit the engine's CPU affinity), and sets the gpuhub spawner's ``concurrent_boots`` to
N, as its default does on an engine with N CPUs. Comparing runs at 1 and 2 CPUs shows
how each start scales with cores. The engine gets all CPUs back at the end.

See docs/benchmarks.md ("The class-start rush").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_spawn import KINDS, BenchHub, cleanup, machine, run_round
from common import fmt, percentile
from gpuhub.ports import free_port

HZ = os.sysconf("SC_CLK_TCK")


def role(pid: str, cmd: str) -> str:
    """Which part of the rush a process is (by its command line and cgroup)."""
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        cgroup = ""
    if "docker" in cgroup or "containerd-shim" in cgroup:
        return "servers (containers)"
    for needle, name in (
        ("gpuhub.service", "gpuhub service"),
        ("jupyterhub", "hub"),
        ("configurable-http-proxy", "proxy"),
        ("dockerd", "engine"),
        ("containerd", "engine"),
        ("runc", "engine"),
        ("docker-init", "engine"),
        ("bench_rush", "benchmark"),
    ):
        if needle in cmd:
            return name
    return "other"


class CpuSampler:
    """Every process's CPU time once a second (a process's last sample counts after it
    exits); :meth:`by_role` sums the time used since :meth:`start`."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[Any]] = {}  # (pid, start time) -> [cpu, role]
        self.base: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                rest = stat[stat.rindex(")") + 2 :].split()
                key = (pid, rest[19])
                if key not in self.seen:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    self.seen[key] = [0.0, role(pid, cmd)]
                self.seen[key][0] = (int(rest[11]) + int(rest[12])) / HZ
            except (OSError, ValueError, IndexError):
                continue

    def start(self) -> None:
        self._sample()
        self.base = {k: v[0] for k, v in self.seen.items()}
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(1.0):
                self._sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def by_role(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        out: dict[str, float] = {}
        for key, (cpu, name) in self.seen.items():
            out[name] = out.get(name, 0.0) + cpu - self.base.get(key, 0.0)
        return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


async def floor_round(dk: docker.APIClient, image: str, n: int, prefix: str) -> dict[str, Any]:
    """N plain containers of ``image`` at once, each JupyterLab on its own port; seconds
    until each one's ``/api`` answers."""
    ports = [free_port() for _ in range(n)]

    def run(i: int) -> None:
        cmd = ["jupyter", "lab", "--ip=127.0.0.1", f"--port={ports[i]}", "--no-browser"]
        cmd += ["--IdentityProvider.token=", "--ServerApp.password="]
        c = dk.create_container(
            image,
            cmd,
            name=f"{prefix}{i:03d}",
            user="1000:100",
            host_config=dk.create_host_config(network_mode="host", init=True, auto_remove=True),
        )
        dk.start(c["Id"])

    async def answers(port: int) -> bool:
        # a bare HTTP/1.0 request on a socket: 100 pollers at 10 Hz through an HTTP
        # client library would take the CPU the containers are starting on
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        try:
            writer.write(b"GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return (await reader.readline()).split(b" ")[1:2] == [b"200"]
        except (OSError, IndexError):
            return False
        finally:
            writer.close()

    async def ready(i: int, t0: float) -> float:
        while not await answers(ports[i]):
            await asyncio.sleep(0.1)
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    starts = [loop.run_in_executor(None, run, i) for i in range(n)]
    done = await asyncio.wait_for(asyncio.gather(*(ready(i, t0) for i in range(n))), timeout=900)
    await asyncio.gather(*starts)
    for c in dk.containers(all=True, filters={"name": prefix}):
        with contextlib.suppress(docker.errors.APIError):
            dk.remove_container(c["Id"], force=True)
    return {"latencies": list(done), "failures": []}


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids`` onto ``cpus`` (children started later inherit it)."""
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)


def engine_pids() -> list[int]:
    """dockerd and containerd (the containerd-shims of running containers included)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            if name in ("dockerd", "containerd") or name.startswith("containerd-shim"):
                found.append(int(pid))
    return found


def summary(latencies: list[float], failures: int, cpu: dict[str, float]) -> dict[str, Any]:
    return {
        "n": len(latencies),
        "failures": failures,
        "last_s": max(latencies, default=None),
        "p50_s": percentile(latencies, 50),
        "cpu_s": cpu,
        "latencies_s": [round(x, 3) for x in latencies],
    }


async def bench(args: argparse.Namespace, hubs: dict[str, BenchHub], dk, run_id: str) -> dict:
    print("warm-up: one spawn on each hub (not counted)")
    for kind in KINDS:
        await run_round(hubs[kind], 1, dk)
    results: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(args.sizes):
        row: dict[str, Any] = {}
        kinds = ("floor", *KINDS) if i % 2 == 0 else (*KINDS[::-1], "floor")
        for kind in kinds:
            await asyncio.sleep(args.settle)
            sampler = CpuSampler()
            sampler.start()
            if kind == "floor":
                r = await floor_round(dk, args.image, n, f"b{run_id}f{n}-")
                lat, failures = r["latencies"], 0
            else:
                rnd = await run_round(hubs[kind], n, dk)
                lat, failures = rnd.latencies, len(rnd.failures)
            row[kind] = summary(lat, failures, sampler.by_role())
            print(
                f"  {kind:5} n={n:3}: last ready {fmt(row[kind]['last_s'])} s, p50 "
                f"{fmt(row[kind]['p50_s'])} s, failures {failures}, CPU {row[kind]['cpu_s']}",
                flush=True,
            )
        g, s, f = row["gpu"], row["stock"], row["floor"]
        row["ratios"] = {
            "gpu/floor last": g["last_s"] / f["last_s"] if g["last_s"] and f["last_s"] else None,
            "gpu/stock last": g["last_s"] / s["last_s"] if g["last_s"] and s["last_s"] else None,
            "gpu/stock p50": g["p50_s"] / s["p50_s"] if g["p50_s"] and s["p50_s"] else None,
        }
        results[str(n)] = row
    return results


def print_table(results: dict[str, Any]) -> None:
    print("\n| users at once | start | last ready (s) | p50 (s) | failures |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for n, row in results.items():
        for kind in ("floor", "stock", "gpu"):
            x = row[kind]
            print(f"| {n} | {kind} | {fmt(x['last_s'])} | {fmt(x['p50_s'])} | {x['failures']} |")
        r = row["ratios"]
        print(
            f"| {n} | **gpu ÷ floor, ÷ stock** | {fmt(r['gpu/floor last'], 3)}, "
            f"{fmt(r['gpu/stock last'], 3)} | -, {fmt(r['gpu/stock p50'], 3)} | |"
        )
    print("\nCPU seconds by role during each rush")
    for n, row in results.items():
        for kind in ("floor", "stock", "gpu"):
            print(f"  {n:>3} {kind:5} {row[kind]['cpu_s']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", default="10,30,100", help="comma-separated users at once")
    p.add_argument("--image", default="gpuhub/base:latest")
    p.add_argument("--docker-threads", type=int, default=8, help="GPUDockerSpawner pool")
    p.add_argument("--concurrent-boots", type=int, default=None, help="default: its default")
    p.add_argument("--settle", type=float, default=3.0, help="seconds of rest before a rush")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--cpus", type=int, default=None, help="run everything on the first N CPUs")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",")]
    every_cpu = os.sched_getaffinity(0)
    if args.cpus is not None:
        if not 1 <= args.cpus <= len(every_cpu):
            p.error(f"--cpus must be between 1 and {len(every_cpu)}")
        cpus = set(sorted(every_cpu)[: args.cpus])
        pin([os.getpid(), *engine_pids()], cpus)
        if args.concurrent_boots is None:
            args.concurrent_boots = args.cpus
    args.gpus = max(args.sizes) + 8  # nobody queues: the rush measures starts, not quotas
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-rush-{run_id}-"))
    dk = docker.APIClient(version="auto", timeout=600)
    dk.inspect_image(args.image)
    hubs = {k: BenchHub(k, workdir, args, run_id) for k in KINDS}
    for hub in hubs.values():  # (bench_spawn's hubs allow 100 spawns at once)
        hub.extra_config += "\nc.JupyterHub.concurrent_spawn_limit = 0\n"
    info = machine()
    print(f"run {run_id}, work dir {workdir}, image {args.image}\n{json.dumps(info)}")
    t0 = time.perf_counter()
    try:
        for hub in hubs.values():
            hub.start()
        results = asyncio.run(bench(args, hubs, dk, run_id))
    finally:
        cleanup(dk, hubs, run_id)
        if args.cpus is not None:
            pin(engine_pids(), every_cpu)
    print_table(results)
    print(f"\nwhole run {time.perf_counter() - t0:.0f} s")
    if args.json:
        out = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "results": results,
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
