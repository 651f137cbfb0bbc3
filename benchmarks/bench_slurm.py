"""Slurm: gpuhub's jobs and servers against plain sbatch and batchspawner, side by side.

Runs on the local cluster of ``scripts/slurm`` (3 nodes on this machine: gpu1 with 4 H100,
gpu2 with 2 H100, gpu3 with 2 L4, 4 CPUs each; fake GPUs) and needs it running
(``sudo scripts/slurm start``). Everything it submits is named ``gpuhub-bench-<run>-…``
and cancelled at the end, also on error or SIGTERM.

**Jobs.** The same tiny Python script (it prints ``time.time()`` and exits) runs as a
1-GPU job in two ways:

* **gpuhub**: gpuhub's own ``JobManager`` with its ``Scheduler`` over the cluster's pool
  (``SlurmInventory``, refreshed every 30 s as the service does) and ``SlurmExecutor``,
  ticking as the service ticks (``JobManager.start()``: every ``tick_interval`` = 1 s, and
  at once after a grant or release). ``submit`` of a script job with a 1-GPU profile: the
  job takes a lease (or waits in gpuhub's queue), is submitted with ``sbatch`` pinned to
  the lease's node and GPU, runs under gpuhub's runner and is booked to the ledger.
* **sbatch**: ``sbatch --gres=gpu:1 --time=15 --wrap "<python> tiny.py"``, the same
  Python and script; Slurm queues what does not fit.

Per job: **submit → Slurm RUNNING** (a poller runs ``squeue`` every ``--squeue-interval``
s for both systems), **submit → started** (the time the script itself printed: when the
user's code runs) and **submit → ended** (gpuhub: the job's end as gpuhub records it;
sbatch: ``COMPLETED`` in ``squeue``). Two modes:

* ``--single N``: N jobs each, one at a time on an idle pool, alternating (sbatch, gpuhub,
  gpuhub, sbatch, …): gpuhub's own cost per job, with no queueing.
* ``--jobs N``: N jobs submitted at once to each system (``--burst-rounds`` bursts each,
  ABBA order). The cluster has 8 GPUs, so most of the jobs queue — in gpuhub's queue or in
  Slurm's. Throughput is jobs per minute from the first submit to the last end.

The added latency is the difference of the two systems' p50 (and p95); the report also
gives the per-job differences of jobs paired in submission order (the k-th job of a gpuhub
burst with the k-th of an sbatch burst). What-if knobs for gpuhub's jobs:
``--gpuhub-sbatch-args`` (``SlurmExecutor.sbatch_args``, after its ``--export=NONE``) and
``--tick-interval``.

**Servers.** Two real JupyterHubs (tests/support/hub.py's ``Hub``, both from
``hub_config/jupyterhub_config.py`` in Slurm mode, distinct ports on 127.0.0.1), spawning
servers through the REST API, ``--servers`` per hub, ``--server-concurrency`` at once,
alternating ABBA, one warm-up spawn each (not counted):

* **gpuhub**: ``GPUSlurmSpawner`` (``gpu-slurm``), a profile of 1 H100, 1 CPU, 256M,
  ``max_runtime_s`` 600; its defaults otherwise (the server reports its port to the hub).
* **batchspawner**: ``batchspawner.SlurmSpawner`` (PyPI, ``pip install batchspawner``)
  with ``req_gres = "gpu:h100:1"``, ``req_nprocs = "1"``, ``req_memory = "256M"``,
  ``req_runtime = "10"``, ``req_srun = ""``, ``exec_prefix = ""``, its
  ``batchspawner-singleuser`` wrapper and API handler (``import batchspawner``), and
  ``startup_poll_interval`` = ``--bs-poll`` (0.1 s; its default is 0.5). Local
  adaptations: a subclass whose ``user_env``/``req_homedir`` do not look the hub user up
  with ``pwd`` (the bench users are no Unix accounts; it gets the homes gpuhub uses), and
  ``state_exechost_exp = "127.0.0.1"`` (the nodes' ``NodeAddr``; their names do not
  resolve); ``SLURM_CONF`` and ``PATH`` (the venv first) in its ``environment``. Its jobs
  get the run's name with ``sbatch --job-name`` on its submit command.

A spawn's latency runs from ``POST /hub/api/users/NAME/server`` until the server is ready
(the POST's 201, or the ``ready`` event of the progress stream after a 202).

    .venv/bin/python benchmarks/bench_slurm.py        # 10 single, 2 x 50 at once, 10 servers
    .venv/bin/python benchmarks/bench_slurm.py --single 4 --jobs 10 --servers 2 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
from gpuhub.inventory.slurm_submit import ENDED_STATES

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' support package (tests/support)
from common import fmt, host, percentile  # noqa: E402 - benchmarks/common.py

from tests.support.hub import Hub  # noqa: E402 - the tests' real-JupyterHub driver, shared

PREFIX = "gpuhub-bench"
TINY = "import time\nprint(time.time(), flush=True)\n"
RUNNING = {"RUNNING", "COMPLETING"}  # started (or ended: ENDED_STATES)
JOB_PROFILES = [{"name": "gpu-1", "default": True, "shape": {"kind": "gpu", "count": 1}}]
USER = "bench"


def slurm(*argv: str, timeout: float = 30) -> str:
    """A Slurm command's output (``SLURM_CONF`` from the environment); raises on failure."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def cluster_conf() -> str:
    """The local cluster's slurm.conf (``scripts/slurm status``); exits when it is not up."""
    done = subprocess.run(
        [str(REPO / "scripts" / "slurm"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    conf = done.stdout.rpartition("export SLURM_CONF=")[2].strip()
    if done.returncode != 0 or not conf:
        sys.exit(f"the local Slurm cluster is not running: sudo scripts/slurm start\n{done.stdout}")
    return conf


def cancel_named(prefix: str, wait: float = 60) -> int:
    """Cancel every job whose name starts with ``prefix`` and wait until Slurm lists none
    live; how many were cancelled."""
    ids = [i for i, n in live_jobs() if n.startswith(prefix)]
    if ids:
        slurm("scancel", *ids)
    deadline = time.monotonic() + wait
    while any(n.startswith(prefix) for _, n in live_jobs()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return len(ids)


def live_jobs() -> list[tuple[str, str]]:
    """(id, name) of the jobs Slurm has not ended."""
    out = slurm("squeue", "-h", "-o", "%i|%j")
    return [tuple(x.split("|", 1)) for x in out.splitlines() if "|" in x]  # type: ignore[misc]


class SqueuePoller(threading.Thread):
    """Polls ``squeue`` for the run's jobs; the first time each was seen running and ended."""

    def __init__(self, prefix: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.prefix, self.interval = prefix, interval
        self.running: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.states: dict[str, str] = {}
        self.others: set[str] = set()  # "id name" of other people's jobs seen meanwhile
        self.polls = 0
        self.failed = 0  # polls Slurm did not answer (a controller restarted meanwhile)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                out = slurm("squeue", "-h", "-t", "all", "-o", "%i|%j|%T", timeout=10)
            except (RuntimeError, subprocess.TimeoutExpired):
                out = ""
                self.failed += 1
            now = time.time()
            self.polls += 1
            for line in out.splitlines():
                job, name, state = (line.split("|") + ["", ""])[:3]
                if not name.startswith(self.prefix):
                    if state not in ENDED_STATES:
                        self.others.add(f"{job} {name}")
                    continue
                self.states[job] = state
                if state in RUNNING or state in ENDED_STATES:
                    self.running.setdefault(job, now)
                if state in ENDED_STATES:
                    self.ended.setdefault(job, now)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


@dataclass
class JobRun:
    """One job's times (Unix seconds)."""

    system: str
    rank: int  # submission order within its burst (or the single run)
    slurm_job: str = ""
    submitted: float = 0.0  # just before the submit call
    returned: float = 0.0  # the submit call returned
    running: float | None = None  # first seen RUNNING (or later) by the poller
    started: float | None = None  # the time the script printed
    ended: float | None = None  # gpuhub: its recorded end; sbatch: COMPLETED seen
    outcome: str = ""  # gpuhub: the job's status; sbatch: Slurm's last state
    ref: str = ""  # gpuhub: the job's id; sbatch: its output file

    def since_submit(self, what: str) -> float | None:
        t = getattr(self, what)
        return None if t is None else t - self.submitted


def first_float(path: Path) -> float | None:
    """The first line of ``path`` that is a number (the script's ``time.time()``; gpuhub's
    runner writes a line of its own before it), if there is one."""
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                return float(line)
    return None


# -- jobs: plain sbatch -------------------------------------------------------------------


class PlainSbatch:
    """``sbatch --gres=gpu:1 --wrap`` of the tiny script, one output file per job."""

    name = "sbatch"

    def __init__(self, work: Path, prefix: str, poller: SqueuePoller) -> None:
        self.dir = work / "sbatch"
        self.dir.mkdir(parents=True)
        self.script = self.dir / "tiny.py"
        self.script.write_text(TINY)
        self.prefix, self.poller, self.count = f"{prefix}p-", poller, 0

    def submit(self, rank: int) -> JobRun:
        self.count += 1
        out = self.dir / f"{self.count}.out"
        run = JobRun(self.name, rank, submitted=time.time())
        run.slurm_job = (
            slurm(
                "sbatch",
                "--parsable",
                f"--job-name={self.prefix}{self.count}",
                "--gres=gpu:1",
                "--time=15",
                f"--output={out}",
                f"--wrap={sys.executable} {self.script}",
            )
            .strip()
            .split(";")[0]
        )
        run.returned = time.time()
        run.ref = str(out)
        return run

    async def wait_ended(self, runs: list[JobRun], limit: float = 600) -> None:
        deadline = time.monotonic() + limit
        while not all(r.slurm_job in self.poller.ended for r in runs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"sbatch jobs not ended within {limit} s")
            await asyncio.sleep(0.05)
        for r in runs:
            r.ended = self.poller.ended[r.slurm_job]
            r.running = self.poller.running.get(r.slurm_job)
            r.started = first_float(Path(r.ref))
            r.outcome = self.poller.states.get(r.slurm_job, "")


# -- jobs: gpuhub ---------------------------------------------------------------------------


class GpuhubJobs:
    """gpuhub's JobManager, Scheduler and SlurmExecutor over the cluster, ticking as the
    service does, on a SQLite database of its own."""

    name = "gpuhub"

    def __init__(
        self, work: Path, prefix: str, conf: str, poller: SqueuePoller, args: argparse.Namespace
    ) -> None:
        from gpuhub.inventory.slurm import SlurmInventory
        from gpuhub.jobs.manager import JobManager
        from gpuhub.jobs.slurm import SlurmExecutor
        from gpuhub.scheduler.core import Scheduler
        from gpuhub.scheduler.db import open_engine
        from gpuhub.service.inventory_refresh import InventoryRefresher

        self.homes = work / "homes"
        self.poller = poller
        inventory = SlurmInventory(slurm_conf=conf, simulated=True)
        self.scheduler = Scheduler(
            open_engine(f"sqlite:///{work / 'gpuhub.sqlite'}"),
            inventory.nodes(),
            held_outside=inventory.held_outside(),
        )
        executor = SlurmExecutor(
            home_dir_template=str(self.homes / "{username}"),
            job_name_prefix=f"{prefix}g-",
            slurm_conf=conf,
            sbatch_args=args.gpuhub_sbatch_args.split(),  # what-if runs only
        )
        self.manager = JobManager(
            scheduler=self.scheduler,
            executor=executor,
            profiles=JOB_PROFILES,
            tick_interval=args.tick_interval,
        )
        self.refresher = InventoryRefresher(inventory, self.scheduler, 30.0)

    def start(self) -> None:
        """Tick and refresh the pool as the service does (needs the running loop)."""
        self.manager.start()
        self.refresher.start()

    async def stop(self) -> None:
        self.refresher.stop()
        await self.manager.stop()
        for job in self.manager.db.live_jobs():
            if job.state:
                with contextlib.suppress(Exception):
                    self.manager.executor.stop(self.manager.lifecycle.spec(job), job.state, 1.0)
        self.scheduler.engine.dispose()

    async def submit(self, rank: int) -> JobRun:
        from gpuhub.jobs.models import JobRequest

        req = JobRequest.model_validate(
            {"path": "tiny.py", "script": TINY, "name": f"tiny-{rank}", "max_runtime_s": 600}
        )
        run = JobRun(self.name, rank, submitted=time.time())
        job, _ = await self.manager.submit(req, user=USER, groups=[])
        run.returned = time.time()
        run.ref = str(job.id)
        return run

    async def wait_ended(self, runs: list[JobRun], limit: float = 600) -> None:
        ids = {int(r.ref) for r in runs}
        deadline = time.monotonic() + limit
        while ids & {j.id for j in self.manager.db.live_jobs()}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gpuhub jobs not ended within {limit} s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(2 * self.poller.interval + 0.3)  # the poller's last look
        for r in runs:
            job = self.manager.job(int(r.ref))
            r.slurm_job = (job.state or {}).get("slurm_job", "")
            r.ended = job.ended_at
            r.running = self.poller.running.get(r.slurm_job)
            log = self.homes / USER / self.manager.lifecycle.spec(job, full=False).log_path
            r.started = first_float(log)
            r.outcome = job.status


async def submit(system: PlainSbatch | GpuhubJobs, rank: int) -> JobRun:
    """Submit one job (sbatch in a worker thread: the loop drives gpuhub's manager)."""
    if isinstance(system, PlainSbatch):
        return await asyncio.to_thread(system.submit, rank)
    return await system.submit(rank)


async def one_at_a_time(system: PlainSbatch | GpuhubJobs, rank: int) -> JobRun:
    """One job on an idle pool, until it has ended."""
    run = await submit(system, rank)
    await system.wait_ended([run])
    return run


async def burst(system: PlainSbatch | GpuhubJobs, n: int) -> tuple[list[JobRun], float]:
    """``n`` jobs submitted at once (one after the other, as fast as the system takes
    them); the runs and the time from the first submit to the last end."""
    runs = [await submit(system, i) for i in range(n)]
    await system.wait_ended(runs)
    return runs, max(r.ended or 0 for r in runs) - runs[0].submitted


def abba(i: int) -> tuple[str, str]:
    return ("sbatch", "gpuhub") if i % 2 == 0 else ("gpuhub", "sbatch")


def comparison(sbatch: list[JobRun], gpuhub: list[JobRun]) -> dict[str, Any]:
    """gpuhub against sbatch for submit → RUNNING, → started and → ended: the difference of
    their p50 and of their p95, and the per-job differences of the jobs paired in
    submission order (the k-th of a gpuhub burst with the k-th of an sbatch burst)."""
    out: dict[str, Any] = {}
    for what in ("running", "started", "ended"):
        g = [x for r in gpuhub if (x := r.since_submit(what)) is not None]
        p = [x for r in sbatch if (x := r.since_submit(what)) is not None]
        paired = [
            a - b
            for rp, rg in zip(sbatch, gpuhub, strict=True)
            if (a := rg.since_submit(what)) is not None and (b := rp.since_submit(what)) is not None
        ]
        out[what] = {
            "p50_diff": percentile(g, 50) - percentile(p, 50) if g and p else None,
            "p95_diff": percentile(g, 95) - percentile(p, 95) if g and p else None,
            "paired": stats(paired),
        }
    return out


def stats(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


def summarise_runs(runs: list[JobRun]) -> dict[str, Any]:
    return {
        "jobs": len(runs),
        "not_succeeded": [r.outcome for r in runs if r.outcome not in ("succeeded", "COMPLETED")],
        "submit_call_s": stats([r.returned - r.submitted for r in runs]),
        "to_running_s": stats([x for r in runs if (x := r.since_submit("running")) is not None]),
        "to_started_s": stats([x for r in runs if (x := r.since_submit("started")) is not None]),
        "to_ended_s": stats([x for r in runs if (x := r.since_submit("ended")) is not None]),
    }


async def bench_jobs(args, work: Path, prefix: str, conf: str) -> dict[str, Any]:
    poller = SqueuePoller(prefix, args.squeue_interval)
    poller.start()
    systems = {
        "sbatch": PlainSbatch(work, prefix, poller),
        "gpuhub": GpuhubJobs(work, prefix, conf, poller, args),
    }
    systems["gpuhub"].start()
    out: dict[str, Any] = {}
    try:
        print("jobs: one warm-up job each (not counted)", flush=True)
        for name in ("sbatch", "gpuhub"):
            await one_at_a_time(systems[name], -1)
        singles: dict[str, list[JobRun]] = {"sbatch": [], "gpuhub": []}
        for i in range(args.single):
            for name in abba(i):
                run = await one_at_a_time(systems[name], i)
                singles[name].append(run)
                print(
                    f"  single {name:6} {i + 1}/{args.single}: started after "
                    f"{run.since_submit('started') or float('nan'):.2f} s, Slurm RUNNING after "
                    f"{run.since_submit('running') or float('nan'):.2f} s",
                    flush=True,
                )
        if args.single:
            out["single"] = {
                **{name: summarise_runs(runs) for name, runs in singles.items()},
                "gpuhub_minus_sbatch_s": comparison(singles["sbatch"], singles["gpuhub"]),
                "runs": {name: [asdict(r) for r in runs] for name, runs in singles.items()},
            }
        bursts: dict[str, list[tuple[list[JobRun], float]]] = {"sbatch": [], "gpuhub": []}
        for i in range(args.burst_rounds if args.jobs else 0):
            for name in abba(i):
                await asyncio.sleep(args.settle)
                runs, makespan = await burst(systems[name], args.jobs)
                bursts[name].append((runs, makespan))
                print(
                    f"  burst  {name:6} of {args.jobs}: last end after {makespan:.1f} s "
                    f"({args.jobs / makespan * 60:.0f} jobs/min)",
                    flush=True,
                )
        if bursts["sbatch"]:
            flat = {n: [r for runs, _ in b for r in runs] for n, b in bursts.items()}
            per_min = {n: [args.jobs / m * 60 for _, m in b] for n, b in bursts.items()}
            out["burst"] = {
                **{
                    n: {
                        **summarise_runs(flat[n]),
                        "makespan_s": [m for _, m in b],
                        "jobs_per_min": per_min[n],
                    }
                    for n, b in bursts.items()
                },
                "gpuhub_minus_sbatch_s": comparison(flat["sbatch"], flat["gpuhub"]),
                "throughput_ratio": sum(per_min["gpuhub"]) / sum(per_min["sbatch"]),
                "runs": {n: [asdict(r) for r in runs] for n, runs in flat.items()},
            }
        out["squeue_polls"] = poller.polls
        out["squeue_failed"] = poller.failed
        out["others_jobs_seen"] = sorted(poller.others, key=lambda x: int(x.split()[0]))
        return out
    finally:
        await systems["gpuhub"].stop()
        poller.stop()


# -- servers -------------------------------------------------------------------------------

COMMON_CONFIG = """
# added by benchmarks/bench_slurm.py ({kind})
c.JupyterHub.concurrent_spawn_limit = 100
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120  # not the hub config's hour: a broken spawn fails the run
"""

GPUHUB_CONFIG = """
c.GPUSlurmSpawner.job_name_prefix = {prefix!r}
c.GPUSlurmSpawner.max_runtime_s = 600
c.GPUSpawnerMixin.profiles = [
    {{"name": "h100", "display_name": "1 H100", "default": True,
      "shape": {{"kind": "gpu", "count": 1, "model": "H100"}}, "cpu_limit": 1, "mem_limit": "256M"}},
]
"""

BATCHSPAWNER_CONFIG = """
import os

import batchspawner  # noqa: F401 - registers its API handler, /hub/api/batchspawner
from batchspawner import SlurmSpawner
from traitlets import default

HOMES = {homes!r}


class LocalSlurmSpawner(SlurmSpawner):
    # the bench users are no Unix accounts: batchspawner's pwd.getpwnam lookups (HOME,
    # SHELL, --chdir, --output) get the homes that gpuhub's spawner uses instead
    @default("req_homedir")
    def _default_homedir(self):
        home = HOMES.format(username=self.user.name)
        os.makedirs(home, exist_ok=True)
        return home

    def user_env(self, env):
        env.update(USER=self.user.name, HOME=self.req_homedir, SHELL="/bin/bash")
        return env


c.JupyterHub.spawner_class = LocalSlurmSpawner
c.SlurmSpawner.exec_prefix = ""
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_gres = "gpu:h100:1"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "256M"
c.SlurmSpawner.req_runtime = "10"
c.SlurmSpawner.startup_poll_interval = {poll!r}
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"  # every node's NodeAddr here
c.SlurmSpawner.batch_submit_cmd = "sbatch --parsable --job-name={prefix}{{{{username}}}}"
# sbatch runs with get_env() only, and the job gets its keys (--export): the cluster, and
# PATH with the venv first, as GPUSlurmSpawner puts its python's bin first
c.SlurmSpawner.environment = {{"SLURM_CONF": {conf!r}, "PATH": {path!r}}}
"""

KINDS = ("batchspawner", "gpuhub")


class BenchHub(Hub):
    """A hub in Slurm mode with one of the two spawners."""

    def __init__(self, kind: str, work: Path, args, prefix: str, conf: str) -> None:
        homes = str(work / f"homes-{kind}" / "{username}")
        extra = COMMON_CONFIG.format(kind=kind)
        self.job_prefix = job_prefix = f"{prefix}{kind[0]}-"
        if kind == "gpuhub":
            extra += GPUHUB_CONFIG.format(prefix=job_prefix)
        else:
            path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
            extra += BATCHSPAWNER_CONFIG.format(
                homes=homes, poll=args.bs_poll, prefix=job_prefix, conf=conf, path=path
            )
        env = {
            "GPUHUB_SPAWNER": "slurm",
            "GPUHUB_SLURM_LOCAL": "1",
            "GPUHUB_SLURM_HOMES": homes,
            "GPUHUB_CULL_IDLE_TIMEOUT": "0",
            "SLURM_CONF": conf,
        }
        super().__init__(work / f"hub-{kind}", env=env, extra_config=extra)
        self.kind = kind
        self.users: list[str] = []
        self.user_prefix = f"b{prefix.rsplit('-', 2)[-2]}{kind[0]}"

    def client(self) -> httpx.AsyncClient:  # type: ignore[override]
        return httpx.AsyncClient(
            base_url=f"{self.url}/hub/api/",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=httpx.Timeout(300, connect=30),
        )

    def new_users(self, n: int) -> list[str]:
        names = [f"{self.user_prefix}{len(self.users) + i:03d}" for i in range(n)]
        self.users += names
        return names

    def body(self) -> dict[str, Any]:
        return {"profile": "h100"} if self.kind == "gpuhub" else {}


@dataclass
class Spawn:
    kind: str
    user: str
    latency: float | None = None
    error: str = ""
    slurm_job: str = ""
    node: str = ""


async def spawn(client: httpx.AsyncClient, hub: BenchHub, user: str) -> Spawn:
    """Request ``user``'s server and wait until it is ready."""
    s = Spawn(hub.kind, user)
    t0 = time.perf_counter()
    r = await client.post(f"users/{user}/server", json=hub.body())
    if r.status_code == 202:
        async with client.stream("GET", f"users/{user}/server/progress") as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        s.latency = time.perf_counter() - t0
                        break
                    if event.get("failed"):
                        s.error = str(event.get("message"))
                        break
        if s.latency is None and not s.error:
            s.error = "the progress stream ended before ready"
    elif r.status_code == 201:
        s.latency = time.perf_counter() - t0
    else:
        s.error = f"POST answered {r.status_code}: {r.text[:300]}"
    server = (await client.get(f"users/{user}")).json().get("servers", {}).get("", {})
    state = server.get("state") or {}
    s.slurm_job = str(state.get("slurm_job") or state.get("job_id") or "")
    s.node = state.get("slurm_node") or str(state.get("job_status", "")).rpartition(" ")[2]
    return s


async def stop_all(client: httpx.AsyncClient, hub: BenchHub, users: list[str]) -> None:
    """Stop the users' servers, wait until the hub lists none and their jobs have ended."""
    await asyncio.gather(*(client.delete(f"users/{u}/server") for u in users))
    deadline = time.monotonic() + 120
    pending = set(users)
    while pending and time.monotonic() < deadline:
        for u in list(pending):
            r = await client.get(f"users/{u}")
            if r.status_code == 200 and not r.json().get("servers"):
                pending.discard(u)
        await asyncio.sleep(0.25)
    if pending:
        raise RuntimeError(f"{hub.kind}: servers of {sorted(pending)} did not stop")
    while any(n.startswith(hub.job_prefix) for _, n in live_jobs()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{hub.kind}: Slurm jobs of {hub.job_prefix} still live")
        await asyncio.sleep(0.25)


async def server_round(hub: BenchHub, n: int) -> list[Spawn]:
    users = hub.new_users(n)
    async with hub.client() as client:
        r = await client.post("users", json={"usernames": users})
        if r.status_code != 201:
            raise RuntimeError(f"{hub.kind}: creating users answered {r.status_code}: {r.text}")
        spawns = await asyncio.gather(*(spawn(client, hub, u) for u in users))
        for s in spawns:
            if s.error:
                print(f"  ! {hub.kind} {s.user}: {s.error}", file=sys.stderr)
        await stop_all(client, hub, users)
    return list(spawns)


async def bench_servers(args, hubs: dict[str, BenchHub]) -> dict[str, Any]:
    print("servers: one warm-up spawn each (not counted)", flush=True)
    for kind in KINDS:
        w = await server_round(hubs[kind], 1)
        print(f"  {kind}: {w[0].latency} {w[0].error}", flush=True)
    spawns: list[Spawn] = []
    rounds = math.ceil(args.servers / args.server_concurrency)
    for i in range(rounds):
        n = min(args.server_concurrency, args.servers - i * args.server_concurrency)
        for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
            await asyncio.sleep(args.settle)
            got = await server_round(hubs[kind], n)
            spawns += got
            lat = ", ".join(f"{s.latency:.2f}" if s.latency else "failed" for s in got)
            print(
                f"  {kind:12} round {i + 1}/{rounds}: {lat} s (nodes "
                f"{', '.join(s.node for s in got)})",
                flush=True,
            )
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [s for s in spawns if s.kind == kind]
        lat = [s.latency for s in mine if s.latency is not None]
        out[kind] = {
            "spawns": len(lat),
            "failures": [s.error for s in mine if s.error],
            **stats(lat),
            "mean": sum(lat) / len(lat) if lat else None,
            "nodes": sorted({s.node for s in mine}),
            "runs": [asdict(s) for s in mine],
        }
    g, b = out["gpuhub"], out["batchspawner"]
    out["ratio_gpuhub_over_batchspawner"] = {
        k: (g[k] / b[k] if g[k] and b[k] else None) for k in ("p50", "p95", "mean")
    }
    return out


# -- the run -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        **host(),
        "slurm": slurm("sinfo", "-V").strip(),
        "jupyterhub": version_or_none("jupyterhub"),
        "batchspawner": version_or_none("batchspawner"),
    }


def print_report(results: dict[str, Any], args) -> None:
    jobs = results.get("jobs", {})
    if jobs:
        print(
            f"\nduring the jobs: {len(jobs['others_jobs_seen'])} job(s) of others seen live, "
            f"{jobs['squeue_failed']} of {jobs['squeue_polls']} squeue polls unanswered"
        )
    for mode, title in (("single", "one at a time"), ("burst", f"{args.jobs} at once")):
        if mode not in jobs:
            continue
        r = jobs[mode]
        print(f"\njobs, {title}: submit → started (script runs) and → Slurm RUNNING, seconds")
        print(
            "| system | jobs | submit call p50 | → RUNNING p50 / p95 | → started p50 / p95 "
            "| → ended p50 / p95 | jobs/min |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in ("sbatch", "gpuhub"):
            x = r[name]
            per_min = ", ".join(f"{v:.0f}" for v in x.get("jobs_per_min", [])) or "-"
            fail = f" ({len(x['not_succeeded'])} not ok)" if x["not_succeeded"] else ""
            print(
                f"| {name} | {x['jobs']}{fail} | {fmt(x['submit_call_s']['p50'], 3)} "
                f"| {fmt(x['to_running_s']['p50'])} / {fmt(x['to_running_s']['p95'])} "
                f"| {fmt(x['to_started_s']['p50'])} / {fmt(x['to_started_s']['p95'])} "
                f"| {fmt(x['to_ended_s']['p50'])} / {fmt(x['to_ended_s']['p95'])} "
                f"| {per_min} |"
            )
        c = r["gpuhub_minus_sbatch_s"]
        for what, label in (
            ("running", "→ RUNNING"),
            ("started", "→ started"),
            ("ended", "→ ended"),
        ):
            x = c[what]
            print(
                f"gpuhub − sbatch {label}: p50 {fmt(x['p50_diff'])} s, p95 {fmt(x['p95_diff'])} s"
                f" (per job, paired in submission order: p50 {fmt(x['paired']['p50'])} s, "
                f"p95 {fmt(x['paired']['p95'])} s)"
            )
        if mode == "burst":
            print(f"throughput gpuhub ÷ sbatch: {r['throughput_ratio']:.2f}")
        d = c["started"]["p50_diff"]
        ok = d is not None and d < 0.5
        print(
            f"aim (added latency < 0.5 s per job, p50 → started, {title}): {'met' if ok else 'NOT met'}"
        )
    servers = results.get("servers")
    if servers:
        print("\nservers: spawn → ready, seconds")
        print("| spawner | spawns | p50 | p95 | min | max | mean | nodes |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for kind in KINDS:
            x = servers[kind]
            fail = f" ({len(x['failures'])} failed)" if x["failures"] else ""
            print(
                f"| {kind} | {x['spawns']}{fail} | {fmt(x['p50'])} | {fmt(x['p95'])} "
                f"| {fmt(x['min'])} | {fmt(x['max'])} | {fmt(x['mean'])} "
                f"| {', '.join(x['nodes'])} |"
            )
        ratio = servers["ratio_gpuhub_over_batchspawner"]
        print(
            f"gpuhub ÷ batchspawner: p50 {fmt(ratio['p50'], 3)}, p95 {fmt(ratio['p95'], 3)}, "
            f"mean {fmt(ratio['mean'], 3)}"
        )
        ok = ratio["p50"] is not None and ratio["p50"] <= 1
        print(f"aim (spawns no slower than batchspawner, p50): {'met' if ok else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--single", type=int, default=10, help="jobs per system, one at a time")
    p.add_argument("--jobs", type=int, default=50, help="jobs per burst, submitted at once")
    p.add_argument("--burst-rounds", type=int, default=2, help="bursts per system (ABBA)")
    p.add_argument("--servers", type=int, default=10, help="spawns per spawner (0: none)")
    p.add_argument("--server-concurrency", type=int, default=1, help="spawns at once")
    p.add_argument(
        "--bs-poll",
        type=float,
        default=0.1,
        help="batchspawner's startup_poll_interval (its default: 0.5)",
    )
    p.add_argument(
        "--gpuhub-sbatch-args",
        default="",
        help="what-if: SlurmExecutor.sbatch_args for gpuhub's jobs (they follow its "
        "--export=NONE), e.g. --gpuhub-sbatch-args=--export=ALL",
    )
    p.add_argument(
        "--tick-interval",
        type=float,
        default=1.0,
        help="JobManager.tick_interval for gpuhub's jobs (the service's default: 1 s)",
    )
    p.add_argument("--squeue-interval", type=float, default=0.1, help="the poller's interval")
    p.add_argument("--settle", type=float, default=1.0, help="seconds of rest before a round")
    p.add_argument("--workdir", type=Path, default=None, help="default: a new temporary dir")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    if args.server_concurrency < 1:
        p.error("--server-concurrency must be at least 1")
    if args.servers and not version_or_none("batchspawner"):
        p.error(
            "batchspawner is not installed: .venv/bin/pip install batchspawner (or --servers 0)"
        )

    conf = cluster_conf()
    os.environ["SLURM_CONF"] = conf
    run_id = secrets.token_hex(3)
    prefix = f"{PREFIX}-{run_id}-"
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-slurm-{run_id}-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    info = machine()
    print(f"run {run_id}, work dir {work}, jobs named {prefix}*")
    print(json.dumps(info))
    outside = [f"{i} {n}" for i, n in live_jobs()]
    print(f"jobs of others on the cluster at the start: {outside or 'none'}")
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    hubs: dict[str, BenchHub] = {}
    try:
        if args.single or args.jobs:
            results["jobs"] = asyncio.run(bench_jobs(args, work, prefix, conf))
        if args.servers:
            hubs = {k: BenchHub(k, work, args, prefix, conf) for k in KINDS}
            for hub in hubs.values():
                hub.start(timeout=120)
            results["servers"] = asyncio.run(bench_servers(args, hubs))
    except BaseException:
        for hub in hubs.values():
            print(
                f"--- {hub.kind} hub log tail ({hub.log_path}) ---\n{hub.log_tail()}",
                file=sys.stderr,
            )
        raise
    finally:
        for hub in hubs.values():
            hub.stop()
        left = cancel_named(prefix)
        print(f"cleaned up: {left} Slurm job(s) of the run cancelled, hubs stopped")
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    print_report(results, args)
    print(
        f"\nload average (1 min) before {load_before:.2f}, after {load_after:.2f}; "
        f"whole run {wall:.0f} s"
    )
    if args.json:
        out = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "others_jobs_at_start": outside,
            "load1_before": load_before,
            "load1_after": load_after,
            "wall_s": wall,
            "results": results,
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def version_or_none(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
