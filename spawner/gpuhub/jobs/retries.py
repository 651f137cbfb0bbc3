"""Retries of jobs: how an attempt ended, whether the job runs again, and after how long.

An attempt that ends other than by succeeding falls in one *failure class*:

* ``preempted``: its lease was under a preemption notice when it ended (a spot lease, or
  one running on capacity borrowed from another group, which guaranteed work needed), or
  the scheduler took the lease back itself (end reason ``preempted``). This holds
  whatever the exit code: gpuhub cannot tell a job that finished during its grace period
  from one that saved a checkpoint and stopped, so it runs the job again, which resumes
  from its newest checkpoint;
* ``node_failed``: the engine ended it because its node failed;
* ``out_of_memory``: the engine says it ran out of memory (Docker's ``OOMKilled``,
  Slurm's ``OUT_OF_MEMORY``; a local process cannot tell, and counts as ``failed``);
* ``failed``: it exited with an error, was killed by a signal, or vanished.

A job cancelled, timed out, whose lease someone else ended, or that could not be started
is never run again. The job's :class:`~gpuhub.jobs.models.RetryPolicy` (kept as JSON on
the job) says how many retries each class gets and the backoff before each: ``backoff_s``
doubled for every earlier retry of the same class, at most ``backoff_max_s``.
"""

from __future__ import annotations

import time
from typing import Any

from ..scheduler.lease import Lease, iso
from ..scheduler.spot import PREEMPTED as PREEMPTED_REASON  # a lease taken back
from ..terms import ACTIVE, JOB_FAILED, JOB_NODE_FAILED, JOB_PREEMPTED, JOB_RETRY_CLASSES
from .executor import JobExit
from .record import Job

PREEMPTED, NODE_FAILED, FAILED, OUT_OF_MEMORY = JOB_RETRY_CLASSES
#: The failure classes, each with the status a job ends with when it is not retried.
FAILURE_STATUS = {
    PREEMPTED: JOB_PREEMPTED,
    NODE_FAILED: JOB_NODE_FAILED,
    OUT_OF_MEMORY: JOB_FAILED,
    FAILED: JOB_FAILED,
}


def under_notice(lease: Lease | None) -> bool:
    """Whether ``lease`` was given a preemption notice."""
    return lease is not None and lease.notice_at is not None


def deadline_of(lease: Lease) -> float:
    """When the work on a noticed lease must be gone (the notice's time where the
    scheduler set no deadline)."""
    deadline = lease.deadline if lease.deadline is not None else lease.notice_at
    assert deadline is not None, lease
    return float(deadline)


def taken_back(lease: Lease | None) -> bool:
    """Whether the scheduler ended ``lease`` itself to preempt it."""
    return lease is not None and lease.status != ACTIVE and lease.end_reason == PREEMPTED_REASON


def preempted(lease: Lease | None, ended_at: float | None) -> bool:
    """Whether an attempt that ended at ``ended_at`` (None: unknown) was preempted: its lease
    was under a notice by then, or was taken back (an attempt that had ended before the
    notice came was not)."""
    if lease is None or lease.notice_at is None:
        return taken_back(lease)
    return ended_at is None or ended_at >= lease.notice_at


def failure_of(ended: JobExit, lease: Lease | None) -> str | None:
    """The failure class of an attempt the executor saw end (None: it succeeded)."""
    if preempted(lease, ended.ended_at):
        return PREEMPTED
    if ended.outcome == "succeeded":
        return None
    if ended.outcome == "node_failed":
        return NODE_FAILED
    if ended.out_of_memory:
        return OUT_OF_MEMORY
    return FAILED


def _clock(ts: float | None) -> str:
    """A time for people: ``2026-12-07 14:05:07 UTC``."""
    return "?" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def preempted_reason(lease: Lease | None, how: str) -> str:
    """Why an attempt ended ``preempted``: the lease, the notice, and ``how`` the job ended."""
    if lease is None:
        return f"preempted: its GPU lease was taken back; {how}"
    notice = ""
    if under_notice(lease):
        notice = f" (notice at {_clock(lease.notice_at)}, deadline {_clock(deadline_of(lease))})"
    return f"preempted: its {lease.tier} GPU lease {lease.id} was taken back{notice}; {how}"


def backoff(
    policy: dict[str, Any] | None, attempts: list[dict[str, Any]], failure: str
) -> float | None:
    """Seconds to wait before the next attempt after one that ended with ``failure``, given
    the ``attempts`` retried before; None when the policy leaves no retry of that class."""
    if not policy:
        return None
    allowed = int(policy.get(failure) or 0)
    used = sum(1 for a in attempts if a.get("failure") == failure)
    if used >= allowed:
        return None
    first = float(policy.get("backoff_s") or 0)
    most = float(policy.get("backoff_max_s") or first)
    return min(first * 2.0 ** min(used, 64), most)


def exhausted_reason(reason: str, policy: dict[str, Any] | None, failure: str) -> str:
    """The final reason of a job whose class has no retry left (after some, if any)."""
    allowed = int((policy or {}).get(failure) or 0)
    if allowed == 0:
        return reason
    retries = "retry" if allowed == 1 else "retries"
    return f"{reason} (no retry left: {allowed} {failure} {retries} used)"


def attempt_record(
    job: Job,
    lease: Lease | None,
    *,
    status: str,
    failure: str,
    reason: str,
    exit_code: int | None,
    now: float,
) -> dict[str, Any]:
    """What the job keeps of an attempt that ended and is retried (times in POSIX seconds;
    GPU-hours and credits from its lease, released by then)."""
    return {
        "attempt": job.attempt,
        "status": status,
        "failure": failure,
        "reason": reason[:1024],
        "lease_id": job.lease_id,
        "tier": job.tier,
        "started_at": job.started_at,
        "ended_at": now,
        "exit_code": exit_code,
        "gpu_hours": round(lease.gpu_hours(now), 6) if lease is not None else 0.0,
        "credits": round(lease.credits(now), 6) if lease is not None else 0.0,
    }


def earlier_gpu_hours(job: Job) -> float:
    """GPU-hours of the attempts before this one."""
    return sum(float(a.get("gpu_hours") or 0.0) for a in job.attempts)


def notice_of(lease: Lease, attempt: int) -> dict[str, Any]:
    """The preemption notice a job's executor hands it (``$GPUHUB_PREEMPT_FILE``)."""
    assert lease.notice_at is not None, lease
    notice_at, deadline = lease.notice_at, deadline_of(lease)
    return {
        "reason": PREEMPTED_REASON,
        "notice_at": iso(notice_at),
        "deadline": iso(deadline),
        "grace_s": round(max(0.0, deadline - notice_at), 3),
        "attempt": attempt,
    }
