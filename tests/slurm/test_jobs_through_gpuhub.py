"""Jobs through gpuhub's own job manager on a pool read from the real local cluster
(``scripts/slurm``): the scheduler admits and places, ``SlurmExecutor`` submits, Slurm picks
the device indices, which gpuhub reads back onto the lease; the end is booked once.

The manager and scheduler share a fake clock (GPU-hours are exact); Slurm's jobs take real
time. Jobs are named ``gpuhub-test-<run>-<id>`` and outside jobs ``gpuhub-test-outside``,
so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.slurm.slurm_site import WAIT_FOR_FLAG, Site
from tests.support.slurm import PREFIX, slurm, wait_for

pytestmark = pytest.mark.timeout(90)


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
