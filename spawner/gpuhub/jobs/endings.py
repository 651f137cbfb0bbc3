"""How a job's attempt ends: the job ends, once, or goes back to the queue for another.

:class:`JobEndings` is the part of the job lifecycle that writes the end of an attempt.
A job *ends* (:meth:`JobEndings.end`): its lease is released (an ended lease stays as it
is), its log's tail kept, what the executor held freed (``cleanup``), and its row ended,
once, whoever ends it. An attempt whose failure class its retry policy still retries
(:meth:`JobEndings.conclude`, :mod:`gpuhub.jobs.retries`) instead gives its lease back,
is recorded in the job's ``attempts``, and leaves the job ``queued`` without a lease until
its backoff is over. Every write is a compare-and-set on the job's status and attempt
(:data:`TRANSITIONS`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..scheduler.core import Lease, Scheduler
from ..terms import (
    JOB_CANCELLED,
    JOB_ENDED_STATUSES,
    JOB_FAILED,
    JOB_NODE_FAILED,
    JOB_PREEMPTED,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_STARTING,
    JOB_SUCCEEDED,
    JOB_TIMED_OUT,
    LIVE_STATUSES,
)
from . import retries
from .executor import JobExecutor, JobSpec
from .record import Job
from .store import LOG_TAIL_BYTES, JobStore

#: The statuses a job may move to from each live status (``starting`` → ``starting``: a
#: start taken up again after a restart; → ``queued``: an attempt retried, or a lease
#: taken back before the job started). Ended statuses are final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    JOB_QUEUED: (JOB_QUEUED, JOB_STARTING, JOB_FAILED, JOB_CANCELLED, JOB_PREEMPTED),
    JOB_STARTING: (JOB_QUEUED, JOB_STARTING, JOB_RUNNING, JOB_FAILED, JOB_CANCELLED, JOB_PREEMPTED),
    JOB_RUNNING: (
        JOB_QUEUED, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_TIMED_OUT, JOB_NODE_FAILED,
        JOB_PREEMPTED,
    ),
}  # fmt: skip


def sources_of(status: str) -> list[str]:
    """The statuses a job may move to ``status`` from."""
    return [s for s, targets in TRANSITIONS.items() if status in targets]


class JobEndings:
    """Ends jobs and their attempts (owned by the job lifecycle, called under its locks).

    ``spec`` builds the executor's view of a job (the lifecycle's); ``on_change`` is
    called when GPUs may have come free."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        executor: JobExecutor,
        db: JobStore,
        clock: Callable[[], float],
        spec: Callable[..., JobSpec],
        on_change: Callable[[], None],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.scheduler, self.executor, self.db = scheduler, executor, db
        self.clock, self.spec, self.on_change, self.log = clock, spec, on_change, log

    def move(self, job: Job, status: str, **values: Any) -> bool:
        """Write a step: the row moves to ``status`` only from a status it may move from,
        and only on the attempt ``job`` is on."""
        return self.db.update_job(
            job.id, was=sources_of(status), on_attempt=job.attempt, status=status, **values
        )

    async def end(
        self,
        job: Job,
        status: str,
        reason: str,
        exit_code: int | None,
        *,
        spec: JobSpec | None = None,
    ) -> None:
        """Release the lease, keep the log's tail, free what the executor held, and end the
        row, once: a job already ended (by a racing end) is left as it is."""
        assert status in JOB_ENDED_STATUSES, status
        lease = self.release(job, status)
        tail, start, size = b"", 0, 0
        if job.state or job.attempts:  # the log of every attempt, in one file
            spec = spec or self.spec(job)
            try:
                tail, start, size = await asyncio.to_thread(self._tail, spec, job.state or {})
            except Exception:
                self.log.warning("job %s: its log could not be read", job.id, exc_info=True)
        if job.state:
            await self.cleanup(job, spec or self.spec(job))
        now = self.clock()
        hours = retries.earlier_gpu_hours(job) + (lease.gpu_hours(now) if lease else 0.0)
        done = self.move(
            job, status, reason=reason[:1024], exit_code=exit_code, ended_at=now,
            gpu_hours=hours, log_tail=tail, log_offset=start, log_size=size,
            next_attempt_at=None,
        )  # fmt: skip
        if done:
            self.log.info("job %s of %s %s: %s", job.id, job.user, status, reason)
            self.on_change()  # its GPUs may have gone to a queued job

    async def conclude(
        self,
        job: Job,
        status: str,
        reason: str,
        exit_code: int | None,
        failure: str | None,
        lease: Lease | None,
        *,
        spec: JobSpec | None = None,
    ) -> None:
        """An attempt ended with ``status`` in the class ``failure`` (None: not one that is
        retried): the job runs again if its retry policy leaves a retry of that class, after
        the policy's backoff; else it ends with ``status``."""
        wait = None if failure is None else retries.backoff(job.retry, job.attempts, failure)
        if failure is None or wait is None:
            if failure is not None:
                reason = retries.exhausted_reason(reason, job.retry, failure)
            await self.end(job, status, reason, exit_code, spec=spec)
            return
        released = self.release(job, status) or lease
        if job.state:
            await self.cleanup(job, spec or self.spec(job, lease=lease))
        now = self.clock()
        record = retries.attempt_record(
            job, released, status=status, failure=failure, reason=reason,
            exit_code=exit_code, now=now,
        )  # fmt: skip
        nxt = job.attempt + 1
        moved = self.move(
            job, JOB_QUEUED, lease_id=None, state=None, attempt=nxt,
            attempts=[*job.attempts, record], next_attempt_at=now + wait, started_at=None,
            exit_code=None,
            reason=f"attempt {job.attempt} {status}; attempt {nxt} starts after {wait:g} s",
        )  # fmt: skip
        if moved:
            self.log.info(
                "job %s of %s: attempt %s %s (%s); attempt %s after %g s",
                job.id, job.user, job.attempt, status, reason, nxt, wait,
            )  # fmt: skip
            self.on_change()  # its GPUs may have gone to a queued job

    def release(self, job: Job, status: str) -> Lease | None:
        """Release the job's lease (reason ``preempted`` for a preempted attempt; an ended
        lease stays as it is); the lease as it ended. With none recorded: the lease a retry
        may have been granted before a crash kept it from the job's row."""
        preempted = status == JOB_PREEMPTED
        reason = retries.PREEMPTED_REASON if preempted else f"job {job.id} {status}"
        if job.lease_id is not None:
            return self.scheduler.release(job.lease_id, reason=reason)
        if job.attempts:
            granted = self.scheduler.lease_by_key(job.user, job.retry_key)
            if granted is not None and granted.status in LIVE_STATUSES:
                self.scheduler.release(granted.id, reason=reason)
        return None

    async def cleanup(self, job: Job, spec: JobSpec) -> None:
        """Free what the executor held for the job's attempt (a failure is logged)."""
        assert job.state is not None
        try:
            await asyncio.to_thread(self.executor.cleanup, spec, job.state)
        except Exception:
            self.log.warning("job %s: cleanup failed", job.id, exc_info=True)

    def _tail(self, spec: JobSpec, state: dict[str, Any]) -> tuple[bytes, int, int]:
        """The last LOG_TAIL_BYTES of the log, where they start, and the log's size."""
        tail, offset = b"", 0
        while True:
            chunk = self.executor.read_log(spec, state, offset, LOG_TAIL_BYTES)
            if not chunk:
                break
            offset += len(chunk)
            tail = (tail + chunk)[-LOG_TAIL_BYTES:]
        return tail, offset - len(tail), offset
