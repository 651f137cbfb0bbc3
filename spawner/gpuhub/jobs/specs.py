"""The executor's view of a job: :func:`build_job_spec` makes a :class:`JobSpec` from a
job record and its lease, a plain function tests check without a service."""

from __future__ import annotations

from ..scheduler.lease import Lease
from .executor import JobDevice, JobSpec
from .record import Job
from .views import job_folder


def job_env(job: Job, lease: Lease | None) -> dict[str, str]:
    """The job's own environment: its id, attempt and tier, and its lease's devices where
    it has one."""
    env = {"GPUHUB_JOB_ID": str(job.id), "GPUHUB_ATTEMPT": str(job.attempt)}
    env["GPUHUB_TIER"] = job.tier
    if lease is not None:
        uuids = ",".join(str(d["uuid"]) for d in lease.devices)
        env.update(CUDA_VISIBLE_DEVICES=uuids, NVIDIA_VISIBLE_DEVICES=uuids)
        env["GPUHUB_LEASE_ID"] = str(lease.id)
        if any(d.get("simulated") for d in lease.devices):
            env["GPUHUB_SIMULATED"] = "1"
    return env


def build_job_spec(job: Job, lease: Lease | None, *, now: float, source: str = "") -> JobSpec:
    """The :class:`JobSpec` of ``job`` on ``lease`` (None: its lease is gone) at ``now``
    (the scheduler's clock), with ``source``, the snapshot, where the hook needs it."""
    devices = tuple(JobDevice.from_lease(d) for d in lease.devices) if lease is not None else ()
    whole = job.shape.get("kind", "gpu") == "gpu"
    nodes = int(job.shape.get("nodes") or 1) if whole else 1
    limits = job.limits or {}
    return JobSpec(
        id=job.id,
        user=job.user,
        name=job.name,
        kind=job.kind,
        path=job.path,
        folder=job_folder(job.id, job.name),
        source=source,
        parameters=dict(job.parameters or {}),
        lease=lease.to_dict(now) if lease is not None else {},
        env=job_env(job, lease),
        image=job.image,
        image_digest=job.image_digest,
        cpu_limit=limits.get("cpu_limit"),
        mem_limit=limits.get("mem_limit"),
        shm_size=limits.get("shm_size"),
        gpus=len(devices) // nodes if whole else min(1, len(devices)),
        max_runtime_s=job.max_runtime_s,
        shape=dict(job.shape),
        node=lease.node if lease is not None else None,
        devices=devices,
        lease_id=job.lease_id,
        profile=job.profile,
        group=job.group,
        tier=job.tier,
        attempt=job.attempt,
        retried_after=job.attempts[-1].get("failure") if job.attempts else None,
    )
