"""Batch jobs: gpuhub against jupyter-scheduler's local executor, on the same notebook.

Both run the same tiny notebook (one cell that prints a number) in one run of this script,
one system after the other, on this machine:

* **gpuhub**: a real JupyterHub from ``hub_config/jupyterhub_config.py`` (tests/support/hub.py's
  ``Hub``) with the embedded default: simulated pool, local-process job executor. Jobs are
  submitted to the gpuhub service's REST API (``POST /jobs``, the user's token) for a MIG
  1g.5gb slice each, so each job takes a lease from the scheduler, waits in its queue
  when the 7 slices are held, and is booked to the ledger. The benchmark user gets a
  quota of 7 units so the pool, not the quota, bounds the concurrency.
* **jupyter-scheduler** (installed from PyPI into its own venv, ``--peer-venv``): a
  ``jupyter server`` with the ``jupyter_scheduler`` extension; jobs are submitted to
  ``POST /scheduler/jobs``; each runs in a new ``spawn`` process with nbconvert.

Measured per system:

* **submit → running** (p50, p90 over ``--latency-jobs`` jobs submitted one at a time on an
  idle system): from sending the request to the first poll (every 20 ms) that shows the
  job running (gpuhub ``running``, jupyter-scheduler ``IN_PROGRESS``), or done if it was
  quicker than a poll.
* **submit → done** for the same jobs.
* **throughput**: ``--burst`` jobs submitted at once; jobs per minute from the first
  submit until the last has ended successfully.

    .venv/bin/python benchmarks/bench_jobs.py                  # 10 latency jobs, burst 20
    .venv/bin/python benchmarks/bench_jobs.py --burst 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' support package (tests/support)
from tests.support.hub import Hub, free_port  # noqa: E402 - the tests' real-JupyterHub driver, shared

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NOTEBOOK = {
    "cells": [
        {"id": "params", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "execution_count": None, "source": "n = 6"},
        {"id": "answer", "cell_type": "code", "metadata": {}, "outputs": [],
         "execution_count": None, "source": "print(n * 7)"},
    ],
    "metadata": {"kernelspec": KERNELSPEC},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip
POLL = 0.02
USER = "bench-ada"
MIG = {"kind": "mig", "profile": "1g.5gb"}


class System:
    """One job system under test: submit a job, read its state."""

    name = ""

    def submit(self, i: int) -> str:
        raise NotImplementedError

    def state(self, job: str) -> str:
        """'waiting', 'running', 'done' or 'failed'."""
        raise NotImplementedError


class Gpuhub(System):
    """gpuhub's service API, as a user with a token."""

    name = "gpuhub"

    def __init__(self, hub: Hub, token: str) -> None:
        self.http = hub.client(token)

    def submit(self, i: int) -> str:
        body = {"path": "tiny.ipynb", "notebook": NOTEBOOK, "shape": MIG,
                "parameters": {"n": i}, "name": f"tiny-{i}", "max_runtime_s": 600}  # fmt: skip
        r = self.http.post("/jobs", json=body)
        r.raise_for_status()
        return str(r.json()["id"])

    def state(self, job: str) -> str:
        status = self.http.get(f"/jobs/{job}").json()["status"]
        if status in ("queued", "starting"):
            return "waiting"
        if status == "running":
            return "running"
        return "done" if status == "succeeded" else "failed"


class JupyterScheduler(System):
    """jupyter-scheduler's REST API on a jupyter server."""

    name = "jupyter-scheduler"
    # a new job reads STOPPED (the ORM's default) until its process marks it IN_PROGRESS;
    # this benchmark stops no job
    STATES = {"CREATED": "waiting", "QUEUED": "waiting", "STOPPED": "waiting",
              "IN_PROGRESS": "running", "COMPLETED": "done"}  # fmt: skip

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"token {token}"}, timeout=30
        )

    def submit(self, i: int) -> str:
        body = {"input_uri": "tiny.ipynb", "runtime_environment_name": "python3",
                "name": f"tiny-{i}", "parameters": {"n": str(i)},
                "output_formats": ["ipynb"]}  # fmt: skip
        r = self.http.post("/scheduler/jobs", json=body)
        r.raise_for_status()
        return r.json()["job_id"]

    def state(self, job: str) -> str:
        model = self.http.get(f"/scheduler/jobs/{job}").json()
        if model["status"] not in self.STATES:
            print(f"  jupyter-scheduler job {job}: {model['status']} {model.get('status_message')}")
        return self.STATES.get(model["status"], "failed")


def wait(system: System, job: str, until: Callable[[str], bool], limit: float = 300) -> str:
    """Poll ``job`` until ``until(state)``; its last state."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = system.state(job)
        if state == "failed":
            raise RuntimeError(f"{system.name} job {job} failed")
        if until(state):
            return state
        time.sleep(POLL)
    raise RuntimeError(f"{system.name} job {job} did not get there within {limit} s")


def measure(system: System, latency_jobs: int, burst: int) -> dict[str, Any]:
    """Submit→running and submit→done one at a time, then a burst's throughput."""
    to_running, to_done = [], []
    for i in range(latency_jobs):
        t0 = time.monotonic()
        job = system.submit(i)
        wait(system, job, lambda s: s in ("running", "done"))
        to_running.append(time.monotonic() - t0)
        wait(system, job, lambda s: s == "done")
        to_done.append(time.monotonic() - t0)
        print(f"  {system.name} job {i + 1}/{latency_jobs}: running after "
              f"{to_running[-1]:.2f} s, done after {to_done[-1]:.2f} s", flush=True)  # fmt: skip
    t0 = time.monotonic()
    jobs = [system.submit(latency_jobs + i) for i in range(burst)]
    for job in jobs:
        wait(system, job, lambda s: s == "done", limit=600)
    seconds = time.monotonic() - t0
    print(f"  {system.name} burst of {burst}: {seconds:.1f} s", flush=True)
    return {
        "to_running_s": to_running,
        "to_done_s": to_done,
        "running_p50": statistics.median(to_running),
        "running_p90": statistics.quantiles(to_running, n=10)[-1],
        "done_p50": statistics.median(to_done),
        "burst": burst,
        "burst_s": seconds,
        "jobs_per_min": burst / seconds * 60,
    }


def run_gpuhub(workdir: Path, latency_jobs: int, burst: int) -> dict[str, Any]:
    """A real hub (embedded default), the benchmark user with a quota of 7 units."""
    hub = Hub(workdir / "gpuhub", env={"GPUHUB_SPAWNER": "local"}).start()
    try:
        token = hub.add_user(USER)
        admin = hub.client(hub.admin_token)
        r = admin.put(f"/quotas/users/{USER}", json={"max_units": 7})
        r.raise_for_status()
        return measure(Gpuhub(hub, token), latency_jobs, burst)
    finally:
        hub.stop()


def peer_python(venv: Path) -> Path:
    """The peer's venv with jupyter-scheduler from PyPI (created on first use)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with jupyter-scheduler from PyPI", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "jupyter-scheduler",
                        "ipykernel"], check=True)  # fmt: skip
    return python


def run_peer(workdir: Path, venv: Path, latency_jobs: int, burst: int) -> dict[str, Any]:
    """``jupyter server`` with jupyter_scheduler, in its own root and data folders."""
    python = peer_python(venv)
    root = workdir / "peer"
    root.mkdir()
    (root / "tiny.ipynb").write_text(json.dumps(NOTEBOOK))
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "GPUHUB_"))}
    env.update(HOME=str(root), JUPYTER_DATA_DIR=str(workdir / "peer-data"),
               JUPYTER_CONFIG_DIR=str(workdir / "peer-config"))  # fmt: skip
    cmd = [str(python), "-m", "jupyter_server", "--no-browser", "--allow-root",
           "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}",
           "--ServerApp.jpserver_extensions={'jupyter_scheduler': True}"]  # fmt: skip
    log = open(workdir / "peer.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((workdir / "peer.log").read_text()[-3000:])
            time.sleep(0.2)
        return measure(JupyterScheduler(url, token), latency_jobs, burst)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main(argv: list[str] | None = None) -> int:
    """Run both systems and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--latency-jobs", type=int, default=10, help="jobs run one at a time")
    p.add_argument("--burst", type=int, default=20, help="jobs submitted at once")
    p.add_argument("--peer-venv", type=Path, default=REPO / ".state" / "bench-jupyter-scheduler",
                   help="venv for jupyter-scheduler (created with pip when missing)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    with tempfile.TemporaryDirectory(prefix="gpuhub-bench-jobs-") as tmp:
        print("gpuhub:", flush=True)
        results["gpuhub"] = run_gpuhub(Path(tmp), args.latency_jobs, args.burst)
        print("jupyter-scheduler:", flush=True)
        results["jupyter-scheduler"] = run_peer(
            Path(tmp), args.peer_venv, args.latency_jobs, args.burst
        )
    ours, peer = results["gpuhub"], results["jupyter-scheduler"]
    print()
    print(f"{'system':<18} {'→running p50':>13} {'p90':>7} {'→done p50':>10} {'jobs/min':>9}")
    for name in ("gpuhub", "jupyter-scheduler"):
        r = results[name]
        print(f"{name:<18} {r['running_p50']:>12.2f}s {r['running_p90']:>6.2f}s "
              f"{r['done_p50']:>9.2f}s {r['jobs_per_min']:>9.1f}")  # fmt: skip
    print(f"gpuhub ÷ jupyter-scheduler: submit→running p50 "
          f"{ours['running_p50'] / peer['running_p50']:.2f}, throughput "
          f"{ours['jobs_per_min'] / peer['jobs_per_min']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
