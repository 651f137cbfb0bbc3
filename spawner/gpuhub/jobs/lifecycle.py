"""The job lifecycle: moves each job from its GPU grant to its end through the executor.

A job goes ``queued`` → ``starting`` → ``running`` → one of ``succeeded``, ``failed``,
``cancelled``, ``timed_out``, ``node_failed``, ``preempted`` (:data:`TRANSITIONS`). Each
:meth:`JobLifecycle.tick` moves every live job on by one step: a queued job whose lease
was granted is started (``before_start``, ``start``), a running one polled, stopped at its
maximum runtime or when its lease ended under it. Every step writes the job's row with a
compare-and-set on its status (and attempt), so a job ends once whoever ends it (a tick,
a cancel, a restarted service).

A running job whose lease is given a preemption notice (spot, or borrowed capacity) is
told once (the executor's ``notify``: ``$GPUHUB_PREEMPT_FILE`` and SIGUSR1) and stopped at
the notice's deadline. An attempt that ends in a failure class its retry policy retries
(:mod:`gpuhub.jobs.retries`) goes back to ``queued`` without a lease: its lease released,
the attempt recorded, the next one due after a backoff. Then the tick asks for a new
lease with the key ``job-<id>-attempt-<n>`` (one lease per attempt, however often it
asks, also across a restart), and the job goes on as any queued job, in the same folder.
A retry its quota refuses now (the user's other work holds it) asks again a minute later;
one refused for good (no longer in the group, the shape gone from the pool, spot no
longer offered) ends the job with the status of the attempt before.

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
from ..scheduler.errors import NotFound, QuotaExceeded, SchedulerError
from ..scheduler.lease import SHAPE
from ..terms import (
    ACTIVE,
    JOB_CANCELLED,
    JOB_FAILED,
    JOB_PREEMPTED,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_STARTING,
    JOB_TIMED_OUT,
    QUEUED,
    job_label,
)
from . import retries
from .endings import TRANSITIONS, JobEndings, sources_of
from .errors import JobEnded
from .executor import ENGINE_WAIT_S, EngineUnavailable, JobExecutor, JobSpec
from .record import Job
from .specs import build_job_spec
from .store import JobStore
from .views import lease_gone, log_answer, outcome

__all__ = ["NOTIFIED", "PLACED", "QUOTA_WAIT_S", "TRANSITIONS", "JobLifecycle", "sources_of"]

#: The key of a job's executor state under which the lifecycle notes the devices the
#: engine picked (:meth:`JobExecutor.placed`), once read.
PLACED = "placed"
#: The key of a job's executor state under which the lifecycle notes the preemption
#: notice (its lease's ``notice_at``) the executor was given, so it is given once.
NOTIFIED = "notified"
#: How long a retry that its quota refuses now waits before it asks again (at least).
QUOTA_WAIT_S = 60.0


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
        self.endings = JobEndings(
            scheduler=scheduler, executor=executor, db=db, clock=clock, spec=self.spec,
            on_change=on_change, log=log,
        )  # fmt: skip

    # -- after a restart -----------------------------------------------------------------

    def adopt(self) -> list[Job]:
        """At start: end the leases of ended jobs still held (a crash between the two
        writes of an end); the live jobs, which the next ticks take up again."""
        for lease in self.scheduler.live_leases():
            _, _, job_id = lease.label.removeprefix("job:").rpartition("/")
            if not lease.label.startswith("job:") or not job_id.isdigit():
                continue
            job = self.db.job(int(job_id)) if int(job_id) < 2**31 else None
            ours = job and (job.lease_id == lease.id or lease.idempotency_key == job.retry_key)
            if job and ours and job.ended:
                self.scheduler.release(lease.id, reason=f"job {job.id} {job.status}")
        live = self.db.live_jobs()
        if live:
            self.log.info(
                "taking up %d live job(s): %s", len(live),
                ", ".join(f"{j.id} ({j.status})" for j in live),
            )  # fmt: skip
        return live

    # -- the tick --------------------------------------------------------------------------

    async def tick(self) -> int:
        """Move every live job on by one step (jobs a cancel holds are left to it); how
        many jobs were live."""
        live = self.db.live_jobs()
        steps = [self.advance(job.id) for job in live if not self.busy(job.id)]
        for result in await asyncio.gather(*steps, return_exceptions=True):
            if isinstance(result, BaseException):
                self.log.error("job tick failed", exc_info=result)
        return len(live)

    async def advance(self, job_id: int) -> None:
        """One step of one job."""
        async with self._lock(job_id):
            job = self.db.job(job_id)
            if job is None or job.ended:
                return
            if job.status == JOB_QUEUED and job.lease_id is None and job.attempts:
                await self._request_again(job)  # a retry, once its backoff is over
                return
            lease = self.lease_of(job)
            if job.status == JOB_QUEUED or not job.state:
                # not started yet, or the service stopped while starting it: (finish the)
                # start. An executor's start finds a runner or container it had started
                # already, so the job runs once either way, and nothing is left running
                # without its lease.
                await self._begin(job, lease)
            else:
                await self._watch(job, lease)

    async def _begin(self, job: Job, lease: Lease | None) -> None:
        """A queued job, or one caught starting: started once its lease is granted; a
        queued one whose lease is under a notice already gives it back and is retried."""
        if lease is not None and lease.status == ACTIVE:
            if job.status == JOB_QUEUED and retries.under_notice(lease):
                how = "before the job started"
                reason = retries.preempted_reason(lease, how)
                await self.endings.conclude(
                    job, JOB_PREEMPTED, reason, None, retries.PREEMPTED, lease
                )
            else:
                await self._start(job, lease)
        elif lease is None or lease.status != QUEUED or job.status != JOB_QUEUED:
            await self._lease_ended(job, lease, None, None)

    async def _watch(self, job: Job, lease: Lease | None) -> None:
        """A running job: polled; ended; stopped when its lease ended under it, at its
        notice's deadline or at its maximum runtime; told of a notice; its devices read."""
        spec = self.spec(job, lease=lease)
        ended = await asyncio.to_thread(self.executor.poll, spec, job.state)
        now = self.clock()
        if ended is not None:
            status, reason = outcome(ended)
            failure = retries.failure_of(ended, lease)
            if failure == retries.PREEMPTED:
                status, reason = JOB_PREEMPTED, retries.preempted_reason(lease, reason)
            await self.endings.conclude(
                job, status, reason, ended.exit_code, failure, lease, spec=spec
            )
        elif lease is None or lease.status != ACTIVE:
            code = await self._stop(spec, job.state)
            await self._lease_ended(job, lease, code, spec)
        elif retries.under_notice(lease) and now >= retries.deadline_of(lease):
            code = await self._stop(spec, job.state)
            reason = retries.preempted_reason(lease, "stopped at the deadline")
            await self.endings.conclude(
                job, JOB_PREEMPTED, reason, code, retries.PREEMPTED, lease, spec=spec
            )
        elif now - (job.started_at or 0) >= job.max_runtime_s:
            code = await self._stop(spec, job.state)
            reason = f"stopped at its maximum runtime of {job.max_runtime_s} s"
            await self.endings.end(job, JOB_TIMED_OUT, reason, code, spec=spec)
        else:
            assert job.state is not None
            if retries.under_notice(lease) and job.state.get(NOTIFIED) != lease.notice_at:
                job = await self._notify(job, spec, lease)
            if self.executor.picks_devices and PLACED not in (job.state or {}):
                await self._read_placement(job, spec, lease)

    async def _lease_ended(
        self, job: Job, lease: Lease | None, code: int | None, spec: JobSpec | None
    ) -> None:
        """The job's lease ended under it: preempted (retried) if the scheduler took it
        back, else failed."""
        if retries.taken_back(lease):
            how = "it was stopped" if spec is not None else "before the job started"
            reason = retries.preempted_reason(lease, how)
            await self.endings.conclude(
                job, JOB_PREEMPTED, reason, code, retries.PREEMPTED, lease, spec=spec
            )
        else:
            await self.endings.end(job, JOB_FAILED, lease_gone(job, lease), code, spec=spec)

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
            await self.endings.end(job, JOB_CANCELLED, f"cancelled by {by}", exit_code, spec=spec)

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
        if job.state or job.attempts:  # between attempts: the log of those before
            spec = self.spec(job, full=False)
            state = job.state or {}
            data = await asyncio.to_thread(self.executor.read_log, spec, state, offset, limit)
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

    async def _start(self, job: Job, lease: Lease) -> None:
        now = job.started_at or self.clock()  # a start taken up again keeps its time
        self.endings.move(job, JOB_STARTING, started_at=now)
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
            await self.endings.end(job, JOB_FAILED, reason, None)
            return
        except Exception as e:
            self.log.warning("job %s could not be started: %s", job.id, e, exc_info=True)
            await self.endings.end(job, JOB_FAILED, f"the job could not be started: {e}", None)
            return
        self.endings.move(job, JOB_RUNNING, state=state)
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
        state = {**job.state, PLACED: kept}
        self.db.update_job(job.id, was=[JOB_RUNNING], on_attempt=job.attempt, state=state)

    async def _notify(self, job: Job, spec: JobSpec, lease: Lease) -> Job:
        """Give the running job its lease's preemption notice, once (noted in its state;
        an executor that fails is asked again at the next tick, until the deadline)."""
        assert job.state is not None
        notice = retries.notice_of(lease, job.attempt)
        try:
            await asyncio.to_thread(self.executor.notify, spec, job.state, notice)
        except Exception:
            self.log.warning("job %s: its preemption notice failed", job.id, exc_info=True)
            return job
        state = {**job.state, NOTIFIED: lease.notice_at}
        self.db.update_job(job.id, was=[JOB_RUNNING], on_attempt=job.attempt, state=state)
        self.log.info(
            "job %s of %s: preemption notice on lease %s, deadline %s (attempt %s)",
            job.id, job.user, lease.id, notice["deadline"], job.attempt,
        )  # fmt: skip
        return job.but(state=state)

    async def _stop(self, spec: JobSpec, state: dict[str, Any]) -> int | None:
        """Stop a job (SIGTERM, grace, kill); its exit code when the executor knows it."""
        await asyncio.to_thread(self.executor.stop, spec, state, float(self.stop_grace))
        ended = await asyncio.to_thread(self.executor.poll, spec, state)
        return None if ended is None else ended.exit_code

    async def _request_again(self, job: Job) -> None:
        """A job between attempts: once its backoff is over, its next lease is asked for
        (at most one per attempt: an idempotent request, keyed by the attempt)."""
        if job.next_attempt_at is not None and self.clock() < job.next_attempt_at:
            return
        last = job.attempts[-1]
        try:
            lease, _ = self.scheduler.request_once(
                idempotency_key=job.retry_key, user=job.user,
                user_groups=self._groups_of(job, last.get("lease_id")),
                shape=SHAPE.validate_python(job.shape), group=job.group, profile=job.profile,
                label=job_label(job.user, job.id), tier=job.tier,
            )  # fmt: skip
        except QuotaExceeded as e:  # the user's other work holds the quota now: later
            wait = max(float((job.retry or {}).get("backoff_s") or 0), QUOTA_WAIT_S)
            self.db.update_job(
                job.id, was=[JOB_QUEUED], on_attempt=job.attempt,
                next_attempt_at=self.clock() + wait,
                reason=f"attempt {job.attempt} waits for the quota: {e.message}"[:1024],
            )  # fmt: skip
            return
        except SchedulerError as e:  # the group, the pool's shape or the tier is gone
            reason = f"{last['reason']}; attempt {job.attempt} could not be requested: {e.message}"
            await self.endings.end(job, str(last["status"]), reason, last.get("exit_code"))
            return
        self.db.update_job(
            job.id, was=[JOB_QUEUED], on_attempt=job.attempt, lease_id=lease.id,
            next_attempt_at=None, reason=None,
        )  # fmt: skip
        self.log.info(
            "job %s of %s: attempt %s on lease %s %s",
            job.id, job.user, job.attempt, lease.id, lease.status,
        )  # fmt: skip
        if lease.status == ACTIVE:
            self.on_change()  # start it at the next tick, not a tick interval later

    def _groups_of(self, job: Job, lease_id: int | None) -> list[str]:
        """The user's hub groups as the attempt before asked with (its lease keeps them);
        the job's quota group where that lease is gone."""
        try:
            if lease_id is not None:
                return list(self.scheduler.get(int(lease_id)).user_groups)
        except NotFound:
            pass
        return [job.group] if job.group else []
