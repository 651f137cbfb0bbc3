"""The job lifecycle: moves each job from its GPU grant to its end through the executor.

A job goes ``queued`` → ``starting`` → ``running`` → one of ``succeeded``, ``failed``,
``cancelled``, ``timed_out``, ``node_failed`` (:data:`TRANSITIONS`; ``node_failed``: the
engine ended it because its node failed, and gpuhub does not run it again by itself).
Each :meth:`JobLifecycle.tick` moves every live job on by one step: a queued job whose
lease was granted is started (``before_start``, ``start``), a running one polled, stopped
at its maximum runtime or when its lease ended under it. Every step writes the job's row with a compare-and-set on its
status, so a job ends once whoever ends it (a tick, a cancel, a restarted service).

The executor's state is saved as soon as ``start`` returns it, so a restarted service
takes up running jobs again and never starts them twice; a job caught in ``starting``
(no state saved) is started again, and the executor's idempotent ``start`` finds what it
had launched. Ending a job releases its lease first (releasing an ended lease changes
nothing), keeps the log's tail, calls ``cleanup``, then ends the row if it was still live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..scheduler.core import Lease, Scheduler
from ..scheduler.errors import NotFound
from ..terms import (
    ACTIVE,
    JOB_CANCELLED,
    JOB_ENDED_STATUSES,
    JOB_FAILED,
    JOB_NODE_FAILED,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_STARTING,
    JOB_SUCCEEDED,
    JOB_TIMED_OUT,
    QUEUED,
)
from .errors import JobEnded
from .executor import ENGINE_WAIT_S, EngineUnavailable, JobExecutor, JobSpec
from .record import Job
from .specs import build_job_spec
from .store import LOG_TAIL_BYTES, JobStore
from .views import lease_gone, log_answer, outcome

#: The key of a job's executor state under which the lifecycle notes the devices the
#: engine picked (:meth:`JobExecutor.placed`), once read.
PLACED = "placed"

#: The statuses a job may move to from each live status (``starting`` → ``starting``: a
#: start taken up again after a restart). Ended statuses are final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    JOB_QUEUED: (JOB_STARTING, JOB_FAILED, JOB_CANCELLED),
    JOB_STARTING: (JOB_STARTING, JOB_RUNNING, JOB_FAILED, JOB_CANCELLED),
    JOB_RUNNING: (JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_TIMED_OUT, JOB_NODE_FAILED),
}


def sources_of(status: str) -> list[str]:
    """The statuses a job may move to ``status`` from."""
    return [s for s, targets in TRANSITIONS.items() if status in targets]


class JobLifecycle:
    """Starts, watches, stops and ends jobs with one executor (one per service).

    Owns the per-job locks: one step of one job at a time, whether a tick or a cancel
    takes it. ``on_change`` is called when GPUs may have come free (a job ended), so the
    owner can tick again soon.
    """

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        executor: JobExecutor,
        db: JobStore,
        clock: Callable[[], float],
        stop_grace: float,
        on_change: Callable[[], None],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.scheduler, self.executor, self.db = scheduler, executor, db
        self.clock = clock
        self.stop_grace = stop_grace  # seconds between SIGTERM and kill
        self.on_change = on_change
        self.log = log
        self._locks: dict[int, asyncio.Lock] = {}

    # -- after a restart -----------------------------------------------------------------

    def adopt(self) -> list[Job]:
        """At start: end the leases of ended jobs still held (a crash between the two
        writes of an end); the live jobs, which the next ticks take up again."""
        for lease in self.scheduler.live_leases():
            _, _, job_id = lease.label.removeprefix("job:").rpartition("/")
            if not lease.label.startswith("job:") or not job_id.isdigit():
                continue
            job = self.db.job(int(job_id)) if int(job_id) < 2**31 else None
            if job and job.lease_id == lease.id and job.ended:
                self.scheduler.release(lease.id, reason=f"job {job.id} {job.status}")
        live = self.db.live_jobs()
        if live:
            self.log.info(
                "taking up %d live job(s): %s", len(live),
                ", ".join(f"{j.id} ({j.status})" for j in live),
            )  # fmt: skip
        return live

    # -- the tick --------------------------------------------------------------------------

    async def tick(self) -> None:
        """Move every live job on by one step (jobs a cancel holds are left to it)."""
        steps = [self.advance(job.id) for job in self.db.live_jobs() if not self.busy(job.id)]
        for result in await asyncio.gather(*steps, return_exceptions=True):
            if isinstance(result, BaseException):
                self.log.error("job tick failed", exc_info=result)

    async def advance(self, job_id: int) -> None:
        """One step of one job."""
        async with self._lock(job_id):
            job = self.db.job(job_id)
            if job is None or job.ended:
                return
            lease = self.lease_of(job)
            if job.status == JOB_QUEUED:
                if lease is not None and lease.status == ACTIVE:
                    await self._start(job, lease)
                elif lease is None or lease.status != QUEUED:
                    await self._end(job, JOB_FAILED, lease_gone(job, lease), None)
                return
            if not job.state:
                # the service stopped while starting it: finish the start. An executor's
                # start finds a runner or container it had started already, so the job
                # runs once either way, and nothing is left running without its lease.
                if lease is not None and lease.status == ACTIVE:
                    await self._start(job, lease)
                else:
                    await self._end(job, JOB_FAILED, lease_gone(job, lease), None)
                return
            spec = self.spec(job, lease=lease)
            ended = await asyncio.to_thread(self.executor.poll, spec, job.state)
            if ended is not None:
                status, reason = outcome(ended)
                await self._end(job, status, reason, ended.exit_code, spec=spec)
            elif lease is None or lease.status != ACTIVE:
                code = await self._stop(spec, job.state)
                await self._end(job, JOB_FAILED, lease_gone(job, lease), code, spec=spec)
            elif self.clock() - (job.started_at or 0) >= job.max_runtime_s:
                code = await self._stop(spec, job.state)
                reason = f"stopped at its maximum runtime of {job.max_runtime_s} s"
                await self._end(job, JOB_TIMED_OUT, reason, code, spec=spec)
            elif self.executor.picks_devices and PLACED not in job.state:
                await self._read_placement(job, spec, lease)

    # -- cancel and the log ----------------------------------------------------------------

    async def cancel(self, job_id: int, *, by: str) -> None:
        """Cancel a job: a queued one at once; a starting or running one is stopped
        (SIGTERM, grace, kill) first. :class:`JobEnded` if it had ended; NotFound if none."""
        async with self._lock(job_id):
            job = self.db.job(job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            if job.ended:
                raise JobEnded(f"job {job_id} has already ended ({job.status})")
            exit_code, spec = None, None
            if job.state:
                spec = self.spec(job)
                exit_code = await self._stop(spec, job.state)
            await self._end(job, JOB_CANCELLED, f"cancelled by {by}", exit_code, spec=spec)

    async def read_log(self, job: Job, offset: int, limit: int) -> dict[str, Any]:
        """Up to ``limit`` bytes of the job's log from ``offset`` (the saved tail once it
        has ended; bytes before the tail are gone and skipped)."""
        if job.ended:
            full = self.db.job(job.id, full=True) or job
            tail = full.log_tail or b""
            start = full.log_offset or 0
            size = full.log_size or 0
            offset = min(max(offset, start), size)
            data = tail[offset - start : offset - start + limit]
            nxt = offset + len(data)
            return log_answer(offset, nxt, data, nxt >= size)
        data = b""
        if job.state:
            spec = self.spec(job, full=False)
            data = await asyncio.to_thread(self.executor.read_log, spec, job.state, offset, limit)
        return log_answer(offset, offset + len(data), data, False)

    # -- what the executor sees ------------------------------------------------------------

    def lease_of(self, job: Job) -> Lease | None:
        """The job's lease (in any status), or None if it has none or it is gone."""
        if job.lease_id is None:
            return None
        try:
            return self.scheduler.get(job.lease_id)
        except NotFound:
            return None

    def spec(self, job: Job, *, lease: Lease | None = None, full: bool = True) -> JobSpec:
        """The executor's view of a job (with its snapshot when ``full``)."""
        lease = lease or self.lease_of(job)
        source = (job.source or self.db.source(job.id)) if full else ""
        return build_job_spec(job, lease, now=self.scheduler.clock(), source=source)

    def busy(self, job_id: int) -> bool:
        """Whether a step of the job (a tick's or a cancel's) is under way."""
        return self._lock(job_id).locked()

    # -- steps -----------------------------------------------------------------------------

    def _lock(self, job_id: int) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def _move(self, job: Job, status: str, **values: Any) -> bool:
        """Write a step: the row moves to ``status`` only from a status it may move from."""
        return self.db.update_job(job.id, was=sources_of(status), status=status, **values)

    async def _start(self, job: Job, lease: Lease) -> None:
        now = job.started_at or self.clock()  # a start taken up again keeps its time
        self._move(job, JOB_STARTING, started_at=now)
        job = job.but(status=JOB_STARTING, started_at=now)
        spec = self.spec(job, lease=lease)
        try:
            await asyncio.to_thread(self.executor.before_start, spec)
            state = await asyncio.to_thread(self.executor.start, spec)
        except EngineUnavailable as e:
            waited = self.clock() - now
            if waited < ENGINE_WAIT_S:  # tried again at the next tick, from the start
                self.log.warning(
                    "job %s waits for its engine (%.0f s so far): %s", job.id, waited, e
                )
                return
            reason = f"the job could not be started: {e} (for {ENGINE_WAIT_S} s)"
            await self._end(job, JOB_FAILED, reason, None)
            return
        except Exception as e:
            self.log.warning("job %s could not be started: %s", job.id, e, exc_info=True)
            await self._end(job, JOB_FAILED, f"the job could not be started: {e}", None)
            return
        self._move(job, JOB_RUNNING, state=state)
        self.log.info(
            "job %s of %s running on lease %s, node %s, devices %s", job.id, job.user,
            lease.id, lease.node, ",".join(d.uuid for d in spec.devices) or "-",
        )  # fmt: skip

    async def _read_placement(self, job: Job, spec: JobSpec, lease: Lease) -> None:
        """Move the lease onto the devices the engine gave the job, once it names them
        (kept in the job's state as ``placed``, so it is read once)."""
        indices = await asyncio.to_thread(self.executor.placed, spec, job.state)
        if indices is None:
            return  # not placed yet: asked again at the next tick
        try:
            self.scheduler.rebind(lease.id, indices)
        except (ValueError, NotFound) as e:
            self.log.warning(
                "job %s: the lease keeps its devices; the engine's (%s) cannot be recorded: %s",
                job.id, indices, e,
            )  # fmt: skip
        kept = (
            {n: list(i) for n, i in indices.items()} if isinstance(indices, dict) else list(indices)
        )
        self.db.update_job(job.id, was=[JOB_RUNNING], state={**job.state, PLACED: kept})

    async def _stop(self, spec: JobSpec, state: dict[str, Any]) -> int | None:
        """Stop a job (SIGTERM, grace, kill); its exit code when the executor knows it."""
        await asyncio.to_thread(self.executor.stop, spec, state, float(self.stop_grace))
        ended = await asyncio.to_thread(self.executor.poll, spec, state)
        return None if ended is None else ended.exit_code

    async def _end(
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
        lease = None
        if job.lease_id is not None:
            lease = self.scheduler.release(job.lease_id, reason=f"job {job.id} {status}")
        tail, start, size = b"", 0, 0
        if job.state:
            spec = spec or self.spec(job)
            try:
                tail, start, size = await asyncio.to_thread(self._tail, spec, job.state)
            except Exception:
                self.log.warning("job %s: its log could not be read", job.id, exc_info=True)
            try:
                await asyncio.to_thread(self.executor.cleanup, spec, job.state)
            except Exception:
                self.log.warning("job %s: cleanup failed", job.id, exc_info=True)
        now = self.clock()
        hours = lease.gpu_hours(now) if lease is not None else 0.0
        done = self._move(
            job, status, reason=reason[:1024], exit_code=exit_code, ended_at=now,
            gpu_hours=hours, log_tail=tail, log_offset=start, log_size=size,
        )  # fmt: skip
        if done:
            self.log.info("job %s of %s %s: %s", job.id, job.user, status, reason)
            self.on_change()  # its GPUs may have gone to a queued job

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
