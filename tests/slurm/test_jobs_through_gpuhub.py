"""Jobs through gpuhub's own job manager on a pool read from the real local cluster
(``scripts/slurm``): the scheduler admits and places, ``SlurmExecutor`` submits, Slurm picks
the device indices, which gpuhub reads back onto the lease; the end is booked once.

The manager and scheduler share a fake clock (GPU-hours are exact); Slurm's jobs take real
time. Jobs are named ``gpuhub-test-<run>-<id>`` and outside jobs ``gpuhub-test-outside``,
so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpuhub.inventory.slurm import SlurmInventory
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.models import JobRequest
from gpuhub.jobs.record import Job
from gpuhub.jobs.slurm import SlurmExecutor
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine

from tests.support.clock import FakeClock
from tests.support.slurm import PREFIX, local_cluster, slurm, wait_for

pytestmark = pytest.mark.timeout(90)

PROFILES = [{"name": "l4", "default": True, "shape": {"kind": "gpu", "count": 1, "model": "L4*"}}]
WAIT_FOR_FLAG = """
import os, pathlib, time
flag = pathlib.Path(os.environ["HOME"]) / "go"
print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
while not flag.exists():
    time.sleep(0.1)
print("flag seen", flush=True)
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Path]:
    with local_cluster() as conf:
        yield conf


class Site:
    """gpuhub's scheduler and job manager over the local cluster, one database, one clock."""

    def __init__(self, cluster: Path, db_url: str, homes: Path, clock: FakeClock) -> None:
        self.cluster, self.db_url, self.homes, self.clock = cluster, db_url, homes, clock
        self.prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}-"
        self.nodes = SlurmInventory(slurm_conf=str(cluster), command_timeout=10).nodes()
        self.manager = self.restart()

    def restart(self) -> JobManager:
        """A new scheduler and manager over the same database: a restarted service."""
        executor = SlurmExecutor(
            home_dir_template=str(self.homes / "{username}"), job_name_prefix=self.prefix,
            slurm_conf=str(self.cluster), command_timeout=10,
        )  # fmt: skip
        scheduler = Scheduler(open_engine(self.db_url), self.nodes, clock=self.clock)
        self.manager = JobManager(
            scheduler=scheduler, executor=executor, profiles=PROFILES, clock=self.clock,
            stop_grace=5.0,
        )  # fmt: skip
        self.manager.adopt()
        return self.manager

    def submit(self, source: str, user: str = "alice") -> Job:
        req = JobRequest.model_validate({"path": "probe.py", "script": source})
        job, _ = asyncio.run(self.manager.submit(req, user=user, groups=[]))
        return job

    def until(self, job_id: int, what: str, done, timeout: float = 30) -> Job:
        """Tick until ``done(job)``."""

        def probe() -> Job | None:
            asyncio.run(self.manager.tick())
            job = self.manager.job(job_id)
            return job if done(job) else None

        return wait_for(what, probe, timeout)

    def slurm_jobs(self) -> list[str]:
        out = slurm("squeue", "-h", "-t", "all", "-o", "%i %j")
        return [
            i
            for i, _, n in (x.partition(" ") for x in out.splitlines())
            if n.startswith(self.prefix)
        ]

    def stop_all(self) -> None:
        for job in self.manager.db.live_jobs():
            if job.state:
                self.manager.executor.stop(self.manager.lifecycle.spec(job), job.state, 1.0)
        self.manager.scheduler.engine.dispose()


@pytest.fixture
def site(cluster, db_url, tmp_path, clock) -> Iterator[Site]:
    s = Site(cluster, db_url, tmp_path / "homes", clock)
    yield s
    s.stop_all()


def outside_job(node: str, gres: str) -> str:
    """A Slurm job submitted outside gpuhub, holding ``gres`` on ``node``; its id."""
    out = slurm(
        "sbatch", "--parsable", f"--job-name={PREFIX}-outside", f"--nodelist={node}",
        f"--gres={gres}", "--output=/dev/null", "--wrap=sleep 120",
    )  # fmt: skip
    job_id = out.strip().split(";")[0]
    wait_for(
        "the outside job running",
        lambda: slurm("squeue", "-h", "-j", job_id, "-o", "%T").strip() == "RUNNING",
    )
    return job_id


def test_the_lease_records_the_gpu_slurm_gave_and_the_end_is_booked_once(site):
    """gpuhub placed the job on L4 0 of gpu3, not knowing that a job outside gpuhub holds
    it (it started after the pool was read): Slurm runs it on L4 1, and the lease moves
    there. An hour on the fake clock is booked once, on the job and in the ledger."""
    outside = outside_job("gpu3", "gpu:l4:1")
    held = slurm("scontrol", "show", "job", "-d", "-o", outside)
    assert "GRES=gpu:l4:1(IDX:0)" in held
    job = site.submit(WAIT_FOR_FLAG)
    lease = site.manager.scheduler.get(job.lease_id)
    assert (lease.node, [d["uuid"] for d in lease.devices]) == ("gpu3", ["GPU-slurm-gpu3-0"])

    job = site.until(job.id, "the devices read back", lambda j: "placed" in (j.state or {}))
    assert job.status == "running" and job.state["placed"] == [1]
    lease = site.manager.scheduler.get(job.lease_id)
    assert [d["uuid"] for d in lease.devices] == ["GPU-slurm-gpu3-1"]
    assert [d["index"] for d in lease.devices] == [1]
    assert site.slurm_jobs() == [job.state["slurm_job"]]

    site.clock.advance(3600)
    (site.homes / "alice" / "go").touch()
    job = site.until(job.id, "the job's end", lambda j: j.ended)
    assert job.status == "succeeded", job
    log = (site.homes / "alice" / site.manager.lifecycle.spec(job).log_path).read_text()
    assert "devices 1\n" in log and "flag seen" in log  # Slurm's index on the node
    lease = site.manager.scheduler.get(job.lease_id)
    assert lease.status == "released" and job.gpu_hours == pytest.approx(1.0)
    assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(1.0)
    site.until(job.id, "nothing more", lambda j: True)  # another tick books nothing
    assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(1.0)
    slurm("scancel", outside)


def test_a_restarted_service_takes_the_job_up_without_submitting_it_again(site):
    job = site.submit(WAIT_FOR_FLAG)
    job = site.until(job.id, "the devices read back", lambda j: "placed" in (j.state or {}))
    first = job.state["slurm_job"]
    site.manager.scheduler.engine.dispose()  # the service goes away, its job runs on...
    manager = site.restart()  # ...and comes back
    assert [j.id for j in manager.db.live_jobs()] == [job.id]
    site.until(job.id, "a tick after the restart", lambda j: j.status == "running")
    assert site.slurm_jobs() == [first]
    (site.homes / "alice" / "go").touch()
    job = site.until(job.id, "the job's end", lambda j: j.ended)
    assert job.status == "succeeded" and site.slurm_jobs() == [first]


def test_scancel_outside_gpuhub_ends_the_job_and_releases_its_lease_once(site):
    job = site.submit(WAIT_FOR_FLAG)
    job = site.until(job.id, "the job placed", lambda j: "placed" in (j.state or {}))
    site.clock.advance(1800)
    slurm("scancel", job.state["slurm_job"])
    job = site.until(job.id, "the job's end", lambda j: j.ended)
    assert job.status == "failed", job
    assert "was cancelled outside gpuhub" in job.reason
    lease = site.manager.scheduler.get(job.lease_id)
    assert lease.status == "released" and f"job {job.id} failed" in lease.end_reason
    assert job.gpu_hours == pytest.approx(0.5)
    assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(0.5)
