"""The Slurm executor against the real local cluster (``scripts/slurm``): a job pinned to
the node and GPUs of a lease from ``SlurmInventory`` runs to its end, its log read back;
``CUDA_VISIBLE_DEVICES`` comes from Slurm; a repeated start submits nothing; stop, and a
``scancel`` from outside gpuhub, end it with a reason; a failing ``squeue`` raises; a
preemption notice reaches the job through the batch script, Slurm's time-limit warning
stops it with SIGTERM, and its next attempt is a Slurm job of its own.

Jobs are named ``gpuhub-test-<run>-<id>``, so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from pathlib import Path

import pytest
from gpuhub.inventory.slurm import SlurmError, SlurmInventory
from gpuhub.jobs.executor import JobDevice, JobSpec
from gpuhub.jobs.slurm import ID_FILE, SlurmExecutor

from tests.support.jobs import NOTICE, NOTICED
from tests.support.slurm import PREFIX, slurm, wait_for

pytestmark = pytest.mark.timeout(60)

IDS = itertools.count(1)
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"
REPORTS = """
import os
print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
print("node", os.environ.get("SLURMD_NODENAME"), flush=True)
print("job", os.environ["GPUHUB_JOB_ID"], os.environ["GPUHUB_LEASE_ID"], flush=True)
"""


@pytest.fixture
def executor(cluster: Path, tmp_path: Path) -> SlurmExecutor:
    return SlurmExecutor(
        home_dir_template=str(tmp_path / "{username}"),
        job_name_prefix=f"{PREFIX}-{uuid.uuid4().hex[:8]}-",
        slurm_conf=str(cluster),
        command_timeout=10,
    )


def job_on(node_name: str, source: str, gpus: int = 1) -> JobSpec:
    """A script job on ``gpus`` GPUs of ``node_name`` as the Slurm inventory lists them."""
    inventory = SlurmInventory(command_timeout=10)
    [node] = [n for n in inventory.nodes() if n.name == node_name]
    devices = tuple(
        JobDevice(uuid=g.uuid, index=g.index, model=g.model, memory_mb=g.memory_mb)
        for g in node.gpus[:gpus]
    )
    job_id = next(IDS)
    return JobSpec(
        id=job_id, user="alice", name="probe", kind="script", path="probe.py",
        folder=f"gpuhub-jobs/{job_id}-probe", source=source, lease_id=100 + job_id, gpus=gpus,
        shape={"kind": "gpu", "count": gpus}, node=node_name, devices=devices,
        max_runtime_s=120,
        env={
            "GPUHUB_JOB_ID": str(job_id), "GPUHUB_LEASE_ID": str(100 + job_id),
            "CUDA_VISIBLE_DEVICES": ",".join(d.uuid for d in devices),
        },
    )  # fmt: skip


def started(executor: SlurmExecutor, job: JobSpec) -> dict:
    executor.before_start(job)
    return executor.start(job)


def log_of(executor: SlurmExecutor, job: JobSpec, state: dict) -> str:
    return executor.read_log(job, state, 0, 1 << 20).decode()


def test_job_runs_on_its_node_with_slurms_devices(executor):
    job = job_on("gpu3", REPORTS)
    state = started(executor, job)
    record = slurm("scontrol", "show", "job", state["slurm_job"], "-o")
    assert "gpu:l4:1" in record and f"Comment=gpuhub:lease={job.lease_id}" in record
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 30)
    log = log_of(executor, job, state)
    assert ended.outcome == "succeeded", (ended, log)
    assert "devices 0\n" in log  # Slurm's index, not gpuhub's uuid
    assert "node gpu3\n" in log
    assert f"job {job.id} {job.lease_id}\n" in log
    assert executor.read_log(job, state, len(log.encode()), 100) == b""


def test_a_second_start_submits_nothing(executor):
    job = job_on("gpu1", SLEEPER, gpus=2)
    state = started(executor, job)
    assert executor.start(job) == state  # the id in the job's folder
    (executor.folder(job) / ID_FILE).unlink()
    assert executor.start(job) == state  # the job's name in squeue
    name = executor.job_name(job)
    assert slurm("squeue", "-h", "-t", "all", f"--name={name}", "-o", "%i").split() == [
        state["slurm_job"]
    ]
    executor.stop(job, state, grace=5)


def test_stop_ends_a_running_job(executor):
    job = job_on("gpu2", SLEEPER)
    state = started(executor, job)
    wait_for("the job running", lambda: "sleeping" in log_of(executor, job, state), 30)
    assert executor.poll(job, state) is None
    executor.stop(job, state, grace=5)
    ended = executor.poll(job, state)
    assert ended is not None and ended.outcome == "terminated", ended
    assert "SIGTERM" in (ended.error or "")
    assert slurm("squeue", "-h", "-j", state["slurm_job"], "-o", "%T").strip() == ""
    executor.stop(job, state, grace=5)  # fine on an ended job


def test_scancel_outside_gpuhub_ends_the_job_with_a_reason(executor):
    job = job_on("gpu2", SLEEPER)
    state = started(executor, job)
    wait_for("the job running", lambda: "sleeping" in log_of(executor, job, state), 30)
    slurm("scancel", state["slurm_job"])
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 30)
    assert ended.outcome in ("terminated", "lost"), ended
    assert f"Slurm job {state['slurm_job']} was cancelled outside gpuhub" in ended.error


def test_slurms_time_limit_warning_stops_the_job_with_sigterm(executor):
    """Slurm's ``--signal=B:USR1@N`` before the time limit, as Slurm sends it (to the batch
    script, without gpuhub's notice file): the batch script stops the runner with SIGTERM,
    so that the job can checkpoint, and the job ends."""
    job = job_on("gpu2", SLEEPER)
    state = started(executor, job)
    wait_for("the job running", lambda: "sleeping" in log_of(executor, job, state), 30)
    slurm("scancel", "--batch", "--signal=USR1", state["slurm_job"])
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 30)
    assert ended.outcome == "terminated", (ended, log_of(executor, job, state))
    assert "SIGTERM" in (ended.error or ""), ended


def test_a_failing_squeue_is_not_an_end(executor, monkeypatch):
    job = job_on("gpu3", SLEEPER)
    state = started(executor, job)
    real = executor.runner

    def down(argv):
        if argv[0] == "squeue":
            raise SlurmError("`squeue` did not answer within 10 s; is slurmctld running?")
        return real(argv)

    executor.runner = down
    with pytest.raises(SlurmError, match="did not answer"):
        executor.poll(job, state)
    executor.runner = real
    with monkeypatch.context() as m:  # the default runner, without squeue on the PATH
        m.setenv("PATH", "/nonexistent")
        with pytest.raises(SlurmError, match="not installed"):
            executor.poll(job, state)
    assert executor.poll(job, state) is None
    executor.stop(job, state, grace=5)


def test_a_notice_reaches_the_job_and_the_next_attempt_is_a_new_slurm_job(executor):
    """notify writes the notice and signals the batch script, which passes SIGUSR1 on (not
    SIGTERM, as for Slurm's time-limit warning); the job's handler reads the file. The
    job's second attempt is submitted anew, under a name of its own."""
    job = job_on("gpu1", NOTICED)
    state = started(executor, job)
    wait_for("the job running", lambda: "attempt 1 ready" in log_of(executor, job, state), 30)
    executor.notify(job, state, NOTICE)
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 30)
    assert ended.outcome == "succeeded", (ended, log_of(executor, job, state))
    assert '"deadline": "2026-12-01T10:02:00+00:00"' in log_of(executor, job, state)

    again = dataclasses.replace(job, attempt=2, retried_after="preempted")
    second = started(executor, again)
    assert second != state and executor.job_name(again) == executor.job_name(job) + ".2"
    wait_for("attempt 2", lambda: "attempt 2 ready" in log_of(executor, again, second), 30)
    assert executor.poll(again, second) is None  # not the first attempt's exit
    executor.stop(again, second, grace=5)
    assert executor.poll(again, second).outcome == "terminated"
