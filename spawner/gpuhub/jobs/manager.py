"""The job manager: the one object the gpuhub service asks about batch jobs.

It lives in the service, on its event loop, next to the scheduler (the one writer of
leases), and is a thin façade over parts it owns, each in its own module:

* :class:`~gpuhub.jobs.intake.JobIntake` checks a request and creates the job and its
  GPU lease, or nothing;
* :class:`~gpuhub.jobs.lifecycle.JobLifecycle` moves jobs from their grant to their end
  through the executor (start, poll, maximum runtime, stop, re-adoption after a restart);
* :class:`~gpuhub.jobs.recurring.RecurringJobs` keeps cron-driven job definitions and
  submits their runs when due;
* :class:`~gpuhub.jobs.store.JobStore` reads and writes the job tables.

The manager holds the configuration (``c.JobManager.*``), the tick that drives the
lifecycle and the definitions, and the read API the REST handlers use: jobs as
:class:`~gpuhub.jobs.record.Job` records, shown with :meth:`JobManager.view`.

An idle service reads no table: the interval's tick is skipped while the last tick found
no live job, nothing was submitted or woken since, and no definition is due (for at most
:data:`~gpuhub.jobs.recurring.LOOK_AGAIN_S` seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Instance, Integer, List, observe
from traitlets.config import LoggingConfigurable

from ..profiles import ProfileConfigError, load_profiles
from ..scheduler.core import Lease, Scheduler
from ..scheduler.errors import Forbidden, NotFound
from ..terms import ACTIVE, JOB_QUEUED, describe
from .executor import JobExecutor
from .intake import JobIntake, JobLimits
from .lifecycle import JobLifecycle
from .models import MAX_RUNTIME_CAP_S, MIN_RUNTIME_S, DefinitionRequest, JobRequest
from .record import Job
from .recurring import LOOK_AGAIN_S, RecurringJobs
from .store import JobStore
from .views import definition_view, job_view


class JobManager(LoggingConfigurable):
    """Jobs and job definitions of the gpuhub service (one per service, on its loop)."""

    default_max_runtime = Integer(
        86400,
        min=MIN_RUNTIME_S,
        max=MAX_RUNTIME_CAP_S,
        config=True,
        help="Maximum runtime in seconds of a job that states none.",
    )
    max_runtime = Integer(
        MAX_RUNTIME_CAP_S,
        min=MIN_RUNTIME_S,
        max=MAX_RUNTIME_CAP_S,
        config=True,
        help="""The largest maximum runtime (seconds) a job may ask for, at most 7 days.
        The spawn form, the JupyterLab dialog and the CLI read it (and the default) from
        ``GET /me/options``.""",
    )
    allow_schedules = Bool(
        True,
        config=True,
        help="Whether users may make recurring job definitions (cron schedules).",
    )
    stop_grace = Float(
        10, config=True, help="Seconds between SIGTERM and kill when a job is stopped."
    )
    tick_interval = Float(
        1.0, config=True, help="Seconds between looks at queued, running and scheduled jobs."
    )
    profiles = List(help="The spawner profiles (c.GPUSpawnerMixin.profiles), validated.")
    scheduler = Instance(Scheduler)
    executor = Instance(JobExecutor)

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        executor: JobExecutor,
        profiles: Iterable[Any] = (),
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(scheduler=scheduler, executor=executor, **kwargs)
        try:
            self.profiles = load_profiles(list(profiles))
        except ProfileConfigError as e:
            raise ValueError(f"c.GPUSpawnerMixin.profiles: {e}") from e
        self.clock = clock
        self.db = JobStore(scheduler.engine)
        self.intake = JobIntake(
            scheduler=scheduler, executor=executor, db=self.db, profiles=self.profiles,
            limits=JobLimits(self.default_max_runtime, self.max_runtime), clock=clock,
            on_granted=self.wake, log=self.log,
        )  # fmt: skip
        self.lifecycle = JobLifecycle(
            scheduler=scheduler, executor=executor, db=self.db, clock=clock,
            stop_grace=self.stop_grace, on_change=self.wake, log=self.log,
        )  # fmt: skip
        self.recurring = RecurringJobs(db=self.db, intake=self.intake, clock=clock, log=self.log)
        self._ticking = False
        self._again = False  # woken during a tick: tick once more right after it
        self._quiet_since: float | None = None  # the last tick found no live job then
        self._stirred = 0  # submits and wakes so far: a tick that saw one begin is not quiet
        self._callback: PeriodicCallback | None = None

    @observe("stop_grace", "default_max_runtime", "max_runtime")
    def _settings_changed(self, change: dict[str, Any]) -> None:
        if not hasattr(self, "lifecycle"):  # set by the constructor's kwargs: not built yet
            return
        self.lifecycle.stop_grace = self.stop_grace
        self.intake.limits = JobLimits(self.default_max_runtime, self.max_runtime)

    # -- life --------------------------------------------------------------------------

    def start(self) -> None:
        """Take up live jobs again, then tick every ``tick_interval`` seconds."""
        self.adopt()
        self._callback = PeriodicCallback(self.on_interval, self.tick_interval * 1000)
        self._callback.start()

    def adopt(self) -> list[Job]:
        """At start: settle what a crash left half done; the live jobs taken up again."""
        return self.lifecycle.adopt()

    def wake(self) -> None:
        """Tick now rather than at the next interval: a lease was granted or released, so a
        job may start (no second of waiting between a grant and the job's start)."""
        self._stir()
        if self._callback is None:
            return
        if self._ticking:
            self._again = True
            return
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.tick()))

    async def stop(self, timeout: float = 15.0) -> None:
        """Stop ticking, letting a tick in progress finish (a job being started gets its
        state saved). Running jobs go on; a restarted service takes them up again."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        deadline = time.monotonic() + timeout
        while self._ticking and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def tick(self) -> None:
        """Submit due scheduled runs, then move every live job on by one step."""
        if self._ticking:
            return
        self._ticking, self._again = True, False
        try:
            now, stirred = self.clock(), self._stirred
            await self.recurring.run_due()
            live = await self.lifecycle.tick()
            quiet = live == 0 and stirred == self._stirred
            self._quiet_since = now if quiet else None
        finally:
            self._ticking = False
        if self._again:
            self.wake()

    def quiet(self) -> bool:
        """Whether the interval's tick would find nothing to do: no job was live at the
        last tick (less than ``LOOK_AGAIN_S`` ago), none was submitted or woken since,
        and no definition is due."""
        now = self.clock()
        since = self._quiet_since
        if since is None or not 0 <= now - since < LOOK_AGAIN_S:
            return False
        return not self.recurring.may_be_due(now)

    def _stir(self) -> None:
        self._stirred += 1
        self._quiet_since = None

    async def on_interval(self) -> None:
        """The tick of every ``tick_interval``: skipped while :meth:`quiet`."""
        if not self.quiet():
            await self.tick()

    # -- jobs --------------------------------------------------------------------------

    async def submit(
        self,
        req: JobRequest,
        *,
        user: str,
        groups: Iterable[str],
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Create a job and request its GPUs; ``(job, replayed)``. Everything is checked
        before anything is created; a refusal raises a ``SchedulerError``.

        A job whose GPUs were granted in the same call is started before this returns,
        so the answer says the state it is in (running, not a queued job with no place
        in the queue)."""
        self._stir()
        job, replayed = await self.intake.submit(
            req, user=user, groups=groups, idempotency_key=idempotency_key
        )
        if not replayed and job.status == JOB_QUEUED:
            lease = self.lifecycle.lease_of(job)
            if lease is not None and lease.status == ACTIVE:
                await self.lifecycle.advance(job.id)
                job = self.job(job.id)
        return job, replayed

    def job(self, job_id: int) -> Job:
        """A job by id; NotFound if there is none."""
        job = self.db.job(job_id) if 0 <= job_id < 2**31 else None
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def jobs(self, *, user: str | None, statuses: Iterable[str] | None, limit: int) -> list[Job]:
        """Jobs, newest first (all users' when ``user`` is None)."""
        return self.db.jobs(user=user, statuses=statuses, limit=limit)

    async def cancel(self, job_id: int, *, by: str) -> Job:
        """Cancel a job: a queued one at once; a starting or running one is stopped
        (SIGTERM, grace, kill) and this returns once it has. JobEnded if it had ended."""
        await self.lifecycle.cancel(job_id, by=by)
        return self.job(job_id)

    async def read_log(self, job: Job, offset: int, limit: int) -> dict[str, Any]:
        """A page of the job's log from ``offset`` (``GET /jobs/{id}/log``)."""
        return await self.lifecycle.read_log(job, offset, limit)

    def view(self, job: Job) -> dict[str, Any]:
        """A job as the API shows it (queue position and devices from its lease)."""
        return self.views([job])[0]

    def views(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """:meth:`view` of each job, explaining every queued one with one look at the queue."""
        leases = {job.id: self.lifecycle.lease_of(job) for job in jobs}
        queued = [x for j in jobs if j.status == JOB_QUEUED and (x := leases.get(j.id))]
        waits = self.scheduler.waiting_all(queued) if queued else {}
        return [self._view(job, leases.get(job.id), waits) for job in jobs]

    def _view(
        self, job: Job, lease: Lease | None, waits: dict[int, dict[str, Any]]
    ) -> dict[str, Any]:
        position = self.scheduler.position(lease) if lease is not None else None
        if job.status != JOB_QUEUED:
            position = None
        out = job_view(job, lease, position, self.scheduler.clock(), self.executor.name)
        if position is not None and out["reason"] is None:
            # why the job's GPU request waits, and until about when (as for servers)
            why = waits.get(lease.id) if lease is not None else None
            if why is not None:
                out["reason"] = why["summary"]
            else:
                ahead = position - 1
                out["reason"] = f"waiting for {describe(job.shape)}: " + (
                    f"{ahead} request{'s' if ahead != 1 else ''} ahead" if ahead else "next in line"
                )
        return out

    # -- definitions -------------------------------------------------------------------

    def create_definition(
        self, req: DefinitionRequest, *, user: str, groups: Iterable[str]
    ) -> dict[str, Any]:
        """Check a definition as a job request (profile, fields) and save it."""
        if not self.allow_schedules:
            raise Forbidden(
                "this site takes no recurring job definitions (c.JobManager.allow_schedules)",
                field="schedule",
            )
        return self.recurring.create(req, user=user, groups=groups)

    def definition(self, def_id: int) -> dict[str, Any]:
        """A definition row by id; NotFound if none."""
        return self.recurring.get(def_id)

    def definitions(self, *, user: str | None) -> list[dict[str, Any]]:
        """Definition rows, newest first (all users' when ``user`` is None)."""
        return self.recurring.definitions(user=user)

    def set_paused(self, def_id: int, paused: bool) -> dict[str, Any]:
        """Pause or resume a definition; resuming schedules its next run after now."""
        return self.recurring.set_paused(def_id, paused)

    def delete_definition(self, def_id: int) -> None:
        """Remove a definition; its past runs stay."""
        self.recurring.delete(def_id)

    @staticmethod
    def definition_view(d: dict[str, Any]) -> dict[str, Any]:
        """A definition as the API shows it."""
        return definition_view(d)

    async def run_definitions(self) -> list[int]:
        """Submit one run of each definition that is due (once per due time, also across
        restarts); the new job ids."""
        return await self.recurring.run_due()
