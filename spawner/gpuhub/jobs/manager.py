"""The job manager: submits jobs as GPU leases, starts them when granted, watches them to
their end, and submits the runs of recurring job definitions on time.

It lives in the gpuhub service, on its event loop, next to the scheduler (the one writer
of leases): a job's GPUs are an ordinary lease labelled ``job:USER/ID``, so they wait in
the same queue, under the same quotas, and are booked in the same ledger. The executor's
hooks may block and run in worker threads.

A job goes ``queued`` → ``starting`` → ``running`` → one of ``succeeded``, ``failed``,
``cancelled``, ``timed_out``. Its executor state is saved as soon as it has started, so a
restarted service takes up running jobs again (never starting them twice) and ends each
once: the lease is released first (releasing an ended lease changes nothing), then the
job's row is ended only if it was still live.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from tornado.ioloop import PeriodicCallback
from traitlets import Float, Instance, Integer, List
from traitlets.config import LoggingConfigurable

from ..scheduler.core import Lease, Scheduler
from ..scheduler.errors import IdempotencyConflict, NotFound, SchedulerError
from ..spawners.profiles import (
    ProfileConfigError,
    UserOptionsError,
    load_profiles,
    validate_user_options,
)
from ..terms import (
    ACTIVE,
    JOB_CANCELLED,
    JOB_ENDED_STATUSES,
    JOB_FAILED,
    JOB_LIVE_STATUSES,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_STARTING,
    JOB_TIMED_OUT,
    QUEUED,
    describe,
    job_label,
    shape_text,
)
from .cron import CronSchedule
from .errors import JobEnded, JobInvalid
from .executor import JobExecutor, JobSpec
from .models import DefinitionRequest, JobRequest
from .store import LOG_TAIL_BYTES, DefinitionMoved, JobStore
from .views import (
    definition_view,
    job_folder,
    job_view,
    lease_gone,
    log_answer,
    outcome,
    source_of,
)


class JobManager(LoggingConfigurable):
    """Jobs and job definitions of the gpuhub service (one per service, on its loop)."""

    default_max_runtime = Integer(
        86400, config=True, help="Maximum runtime in seconds of a job that states none."
    )
    max_runtime = Integer(
        604800, config=True, help="The largest maximum runtime (seconds) a job may ask for."
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
        self._next_id = self.db.max_job_id() + 1
        self._locks: dict[int, asyncio.Lock] = {}
        self._ticking = False
        self._again = False  # woken during a tick: tick once more right after it
        self._callback: PeriodicCallback | None = None

    # -- life --------------------------------------------------------------------------

    def start(self) -> None:
        """Take up live jobs again, then tick every ``tick_interval`` seconds."""
        self.adopt()
        self._callback = PeriodicCallback(self.tick, self.tick_interval * 1000)
        self._callback.start()

    def wake(self) -> None:
        """Tick now rather than at the next interval: a lease was granted or released, so a
        job may start (no second of waiting between a grant and the job's start)."""
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

    def adopt(self) -> None:
        """At start: end the leases of ended jobs still held (a crash between the two
        writes of an end), and say which live jobs are taken up again."""
        for lease in self.scheduler.live_leases():
            _, _, job_id = lease.label.removeprefix("job:").rpartition("/")
            if not lease.label.startswith("job:") or not job_id.isdigit():
                continue
            job = self.db.job(int(job_id)) if int(job_id) < 2**31 else None
            if job and job["lease_id"] == lease.id and job["status"] in JOB_ENDED_STATUSES:
                self.scheduler.release(lease.id, reason=f"job {job['id']} {job['status']}")
        live = self.db.live_jobs()
        if live:
            self.log.info(
                "taking up %d live job(s): %s", len(live),
                ", ".join(f"{j['id']} ({j['status']})" for j in live),
            )  # fmt: skip

    # -- submitting --------------------------------------------------------------------

    async def submit(
        self,
        req: JobRequest,
        *,
        user: str,
        groups: Iterable[str],
        idempotency_key: str | None = None,
        definition: tuple[int, float | None, dict] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create a job and request its GPUs; ``(job row, replayed)``.

        Everything is checked before anything is created: the notebook or script, the
        profile (open to the user), the image (resolved to its digest), the runtime and,
        by the scheduler, quotas and the pool. A refusal raises a ``SchedulerError`` and
        leaves nothing behind. ``definition`` = (id, due time, values) updates that job
        definition in the job's own transaction (a scheduled run is booked once).
        """
        groups = list(groups)
        self._check(req)
        digest = hashlib.sha256(
            json.dumps([user, req.model_dump(mode="json", exclude={"user"})], sort_keys=True)
            .encode()
        ).hexdigest()  # fmt: skip
        if idempotency_key is not None:
            known = self._known(user, idempotency_key, digest)
            if known is not None:
                return known, True
        selection = self._selection(req, groups)
        try:
            digest_of_image = await asyncio.to_thread(self.executor.resolve_image, selection.image)
        except ValueError as e:
            raise JobInvalid(str(e), field="profile") from e
        if idempotency_key is not None:  # the same key may have landed meanwhile
            known = self._known(user, idempotency_key, digest)
            if known is not None:
                return known, True
        job_id = self._next_id
        self._next_id += 1
        if definition is not None:
            definition = (definition[0], definition[1], {**definition[2], "last_job_id": job_id})
        shape = req.shape or selection.shape
        lease = self.scheduler.request(
            user=user, user_groups=groups, shape=shape, group=selection.group,
            profile=selection.profile.name, label=job_label(user, job_id),
        )  # fmt: skip
        p = selection.profile
        row = {
            "id": job_id, "user": user, "name": req.name or req.stem[:100], "path": req.path,
            "kind": req.kind, "status": JOB_QUEUED, "reason": None, "profile": p.name,
            "group_name": lease.group, "image": selection.image if digest_of_image else None, "image_digest": digest_of_image,
            "shape": shape.model_dump(exclude_none=True),
            "limits": {"cpu_limit": p.cpu_limit, "mem_limit": p.mem_limit, "shm_size": p.shm_size},
            "parameters": req.parameters,
            "max_runtime_s": req.max_runtime_s or self.default_max_runtime,
            "source": source_of(req.notebook, req.script), "lease_id": lease.id,
            "executor": self.executor.name, "state": None, "created_at": self.clock(),
            "definition_id": definition[0] if definition else None,
            "idempotency_key": idempotency_key, "request_digest": digest,
        }  # fmt: skip
        try:
            self.db.insert_job(row, definition)
        except BaseException:
            self.scheduler.release(lease.id, reason=f"job {job_id} was not created")
            raise
        self.log.info(
            "job %s of %s submitted: %s (%s), lease %s %s",
            job_id, user, req.path, shape_text(row["shape"]), lease.id, lease.status,
        )  # fmt: skip
        if lease.status == ACTIVE:
            self.wake()
        return self.db.job(job_id) or row, False

    def _check(self, req: JobRequest) -> None:
        """Checks across fields of a job request (each names its field)."""
        if req.kind == "notebook":
            if req.notebook is None:
                raise JobInvalid("notebook is required: path names a notebook", field="notebook")
            if req.script is not None:
                raise JobInvalid("script is only for a .py path; send notebook", field="script")
        else:
            if req.script is None:
                raise JobInvalid("script is required: path names a .py script", field="script")
            if req.notebook is not None:
                raise JobInvalid("notebook is only for an .ipynb path", field="notebook")
            if req.parameters:
                raise JobInvalid(
                    "parameters are injected into notebooks only; scripts take none",
                    field="parameters",
                )
        if req.shape is not None and req.gpus is not None:
            raise JobInvalid("give gpus or shape, not both", field="gpus")
        if req.max_runtime_s is not None and req.max_runtime_s > self.max_runtime:
            raise JobInvalid(
                f"max_runtime_s: at most {self.max_runtime} seconds here", field="max_runtime_s"
            )

    def _selection(self, req: JobRequest, groups: list[str]) -> Any:
        options = {"profile": req.profile, "gpus": req.gpus}
        try:
            return validate_user_options(
                {k: v for k, v in options.items() if v is not None}, self.profiles, groups
            )
        except UserOptionsError as e:
            raise JobInvalid(e.message, field=e.option or "profile") from e

    def _known(self, user: str, key: str, digest: str) -> dict[str, Any] | None:
        known = self.db.job_by_key(user, key)
        if known is not None and known["request_digest"] != digest:
            raise IdempotencyConflict(
                f"idempotency key {key!r} of {user} was used for job {known['id']} with a "
                "different request; send a new key for a new request",
                field="Idempotency-Key",
            )
        return known

    # -- reading -----------------------------------------------------------------------

    def job(self, job_id: int) -> dict[str, Any]:
        """A job row by id; NotFound if there is none."""
        job = self.db.job(job_id) if 0 <= job_id < 2**31 else None
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def jobs(
        self, *, user: str | None, statuses: Iterable[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Job rows, newest first (all users' when ``user`` is None)."""
        return self.db.jobs(user=user, statuses=statuses, limit=limit)

    def definitions(self, *, user: str | None) -> list[dict[str, Any]]:
        """Definition rows, newest first (all users' when ``user`` is None)."""
        return self.db.definitions(user=user)

    def view(self, job: dict[str, Any]) -> dict[str, Any]:
        """A job as the API shows it (queue position and devices from its lease)."""
        return self.views([job])[0]

    def views(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`view` of each job, explaining every queued one with one look at the queue."""
        leases = {job["id"]: self._lease(job) for job in jobs}
        queued = [x for j in jobs if j["status"] == JOB_QUEUED and (x := leases.get(j["id"]))]
        waits = self.scheduler.waiting_all(queued) if queued else {}
        return [self._view(job, leases.get(job["id"]), waits) for job in jobs]

    def _view(
        self, job: dict[str, Any], lease: Lease | None, waits: dict[int, dict[str, Any]]
    ) -> dict[str, Any]:
        position = self.scheduler.position(lease) if lease is not None else None
        if job["status"] != JOB_QUEUED:
            position = None
        out = job_view(job, lease, position, self.scheduler.clock(), self.executor.name)
        if position is not None and out["reason"] is None:
            # why the job's GPU request waits, and until about when (as for servers)
            why = waits.get(lease.id) if lease is not None else None
            if why is not None:
                out["reason"] = why["summary"]
            else:
                ahead = position - 1
                out["reason"] = f"waiting for {describe(job['shape'])}: " + (
                    f"{ahead} request{'s' if ahead != 1 else ''} ahead" if ahead else "next in line"
                )
        return out

    async def read_log(self, job: dict[str, Any], offset: int, limit: int) -> dict[str, Any]:
        """Up to ``limit`` bytes of the job's log from ``offset`` (the saved tail once it
        has ended; bytes before the tail are gone and skipped)."""
        if job["status"] in JOB_ENDED_STATUSES:
            full = self.db.job(job["id"], full=True) or job
            tail = full.get("log_tail") or b""
            start = full.get("log_offset") or 0
            size = full.get("log_size") or 0
            offset = min(max(offset, start), size)
            data = tail[offset - start : offset - start + limit]
            nxt = offset + len(data)
            return log_answer(offset, nxt, data, nxt >= size)
        data = b""
        if job.get("state"):
            spec = self._spec(job, full=False)
            data = await asyncio.to_thread(
                self.executor.read_log, spec, job["state"], offset, limit
            )
        return log_answer(offset, offset + len(data), data, False)

    # -- cancelling --------------------------------------------------------------------

    async def cancel(self, job_id: int, *, by: str) -> dict[str, Any]:
        """Cancel a job: a queued one at once; a starting or running one is stopped
        (SIGTERM, grace, kill) and this returns once it has. JobEnded if it had ended."""
        async with self._lock(job_id):
            job = self.job(job_id)
            if job["status"] in JOB_ENDED_STATUSES:
                raise JobEnded(f"job {job_id} has already ended ({job['status']})")
            exit_code, spec = None, None
            if job.get("state"):
                spec = self._spec(job)
                exit_code = await self._stop(spec, job["state"])
            await self._end(job, JOB_CANCELLED, f"cancelled by {by}", exit_code, spec=spec)
        return self.job(job_id)

    # -- the tick ----------------------------------------------------------------------

    async def tick(self) -> None:
        """Submit due scheduled runs, then move every live job on by one step."""
        if self._ticking:
            return
        self._ticking, self._again = True, False
        try:
            await self.run_definitions()
            steps = [
                self._advance(job["id"])
                for job in self.db.live_jobs()
                if not self._lock(job["id"]).locked()
            ]
            for result in await asyncio.gather(*steps, return_exceptions=True):
                if isinstance(result, BaseException):
                    self.log.error("job tick failed", exc_info=result)
        finally:
            self._ticking = False
        if self._again:
            self.wake()

    async def _advance(self, job_id: int) -> None:
        async with self._lock(job_id):
            job = self.db.job(job_id)
            if job is None or job["status"] in JOB_ENDED_STATUSES:
                return
            lease = self._lease(job)
            if job["status"] == JOB_QUEUED:
                if lease is not None and lease.status == ACTIVE:
                    await self._start(job, lease)
                elif lease is None or lease.status != QUEUED:
                    await self._end(job, JOB_FAILED, lease_gone(job, lease), None)
                return
            state = job.get("state")
            if not state:
                # the service stopped while starting it: finish the start. An executor's
                # start finds a runner or container it had started already, so the job
                # runs once either way, and nothing is left running without its lease.
                if lease is not None and lease.status == ACTIVE:
                    await self._start(job, lease)
                else:
                    await self._end(job, JOB_FAILED, lease_gone(job, lease), None)
                return
            spec = self._spec(job)
            ended = await asyncio.to_thread(self.executor.poll, spec, state)
            if ended is not None:
                status, reason = outcome(ended)
                await self._end(job, status, reason, ended.exit_code, spec=spec)
            elif lease is None or lease.status != ACTIVE:
                code = await self._stop(spec, state)
                await self._end(job, JOB_FAILED, lease_gone(job, lease), code, spec=spec)
            elif self.clock() - (job["started_at"] or 0) >= job["max_runtime_s"]:
                code = await self._stop(spec, state)
                reason = f"stopped at its maximum runtime of {job['max_runtime_s']} s"
                await self._end(job, JOB_TIMED_OUT, reason, code, spec=spec)

    async def _stop(self, spec: JobSpec, state: dict[str, Any]) -> int | None:
        """Stop a job (SIGTERM, grace, kill); its exit code when the executor knows it."""
        await asyncio.to_thread(self.executor.stop, spec, state, float(self.stop_grace))
        ended = await asyncio.to_thread(self.executor.poll, spec, state)
        return None if ended is None else ended.exit_code

    async def _start(self, job: dict[str, Any], lease: Lease) -> None:
        now = job.get("started_at") or self.clock()  # a start taken up again keeps its time
        self.db.update_job(
            job["id"], was=[JOB_QUEUED, JOB_STARTING], status=JOB_STARTING, started_at=now
        )
        job = {**job, "status": JOB_STARTING, "started_at": now}
        spec = self._spec(job, lease=lease)
        try:
            await asyncio.to_thread(self.executor.before_start, spec)
            state = await asyncio.to_thread(self.executor.start, spec)
        except Exception as e:
            self.log.warning("job %s could not be started: %s", job["id"], e, exc_info=True)
            await self._end(job, JOB_FAILED, f"the job could not be started: {e}", None)
            return
        self.db.update_job(job["id"], was=[JOB_STARTING], status=JOB_RUNNING, state=state)
        self.log.info("job %s of %s running on lease %s", job["id"], job["user"], lease.id)

    async def _end(
        self,
        job: dict[str, Any],
        status: str,
        reason: str,
        exit_code: int | None,
        *,
        spec: JobSpec | None = None,
    ) -> None:
        """Release the lease, keep the log's tail, free what the executor held, and end the
        row, once: a job already ended (by a racing end) is left as it is."""
        lease = None
        if job.get("lease_id") is not None:
            lease = self.scheduler.release(job["lease_id"], reason=f"job {job['id']} {status}")
        state = job.get("state")
        tail, start, size = b"", 0, 0
        if state:
            spec = spec or self._spec(job)
            try:
                tail, start, size = await asyncio.to_thread(self._tail, spec, state)
            except Exception:
                self.log.warning("job %s: its log could not be read", job["id"], exc_info=True)
            try:
                await asyncio.to_thread(self.executor.cleanup, spec, state)
            except Exception:
                self.log.warning("job %s: cleanup failed", job["id"], exc_info=True)
        now = self.clock()
        hours = lease.gpu_hours(now) if lease is not None else 0.0
        done = self.db.update_job(
            job["id"], was=JOB_LIVE_STATUSES, status=status, reason=reason[:1024],
            exit_code=exit_code, ended_at=now, gpu_hours=hours, log_tail=tail,
            log_offset=start, log_size=size,
        )  # fmt: skip
        if done:
            self.log.info("job %s of %s %s: %s", job["id"], job["user"], status, reason)
            self.wake()  # its GPUs may have gone to a queued job

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

    # -- definitions -------------------------------------------------------------------

    def create_definition(
        self, req: DefinitionRequest, *, user: str, groups: Iterable[str]
    ) -> dict[str, Any]:
        """Check a definition as a job request (profile, fields) and save it."""
        job_req = req.job_request()
        self._check(job_req)
        selection = self._selection(job_req, list(groups))
        shape = job_req.shape or selection.shape
        now = self.clock()
        row = {
            "user": user, "groups": sorted(groups), "name": job_req.name or job_req.stem[:100],
            "schedule": req.schedule, "paused": req.paused,
            "request": job_req.model_dump_json(exclude={"user"}), "path": job_req.path,
            "kind": job_req.kind, "profile": selection.profile.name,
            "shape": shape.model_dump(exclude_none=True), "parameters": job_req.parameters,
            "max_runtime_s": job_req.max_runtime_s or self.default_max_runtime,
            "next_run_at": None if req.paused else CronSchedule.parse(req.schedule).next_time(now),
            "created_at": now,
        }  # fmt: skip
        def_id = self.db.insert_definition(row)
        self.log.info("job definition %s of %s: %s %s", def_id, user, req.schedule, req.path)
        return self.definition(def_id)

    def definition(self, def_id: int) -> dict[str, Any]:
        """A definition row by id; NotFound if none."""
        d = self.db.definition(def_id) if 0 <= def_id < 2**31 else None
        if d is None:
            raise NotFound(f"no job definition {def_id}")
        return d

    def set_paused(self, def_id: int, paused: bool) -> dict[str, Any]:
        """Pause or resume a definition; resuming schedules its next run after now."""
        d = self.definition(def_id)
        nxt = None if paused else CronSchedule.parse(d["schedule"]).next_time(self.clock())
        self.db.update_definition(def_id, paused=paused, next_run_at=nxt)
        return self.definition(def_id)

    def delete_definition(self, def_id: int) -> None:
        """Remove a definition; its past runs stay."""
        self.definition(def_id)
        self.db.delete_definition(def_id)

    @staticmethod
    def definition_view(d: dict[str, Any]) -> dict[str, Any]:
        """A definition as the API shows it."""
        return definition_view(d)

    async def run_definitions(self) -> list[int]:
        """Submit one run of each definition that is due (once per due time, also across
        restarts: the next due time is saved with the run); the new job ids."""
        now = self.clock()
        out = []
        for d in self.db.due_definitions(now):
            due = d["next_run_at"]
            nxt = CronSchedule.parse(d["schedule"]).next_time(now)
            values = {"last_run_at": now, "next_run_at": nxt, "last_error": None}
            try:
                req = JobRequest.model_validate_json(d["request"])
                job, _ = await self.submit(
                    req, user=d["user"], groups=d["groups"],
                    definition=(d["id"], due, values),
                )  # fmt: skip
                out.append(job["id"])
            except DefinitionMoved:
                continue
            except (SchedulerError, ValueError) as e:
                message = getattr(e, "message", str(e))
                self.log.warning("job definition %s: run refused: %s", d["id"], message)
                values["last_error"] = message[:1024]
                self.db.update_definition(d["id"], due, **values)
        return out

    # -- helpers -----------------------------------------------------------------------

    def _lock(self, job_id: int) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def _lease(self, job: dict[str, Any]) -> Lease | None:
        if job.get("lease_id") is None:
            return None
        try:
            return self.scheduler.get(job["lease_id"])
        except NotFound:
            return None

    def _spec(
        self, job: dict[str, Any], *, lease: Lease | None = None, full: bool = True
    ) -> JobSpec:
        """The executor's view of a job (with its snapshot when ``full``)."""
        lease = lease or self._lease(job)
        source = ""
        if full:
            source = (self.db.job(job["id"], full=True) or {}).get("source") or ""
        devices = list(lease.devices) if lease is not None else []
        uuids = ",".join(str(d["uuid"]) for d in devices)
        env = {"GPUHUB_JOB_ID": str(job["id"])}
        if lease is not None:
            env.update(CUDA_VISIBLE_DEVICES=uuids, NVIDIA_VISIBLE_DEVICES=uuids)
            env["GPUHUB_LEASE_ID"] = str(lease.id)
            if any(d.get("simulated") for d in devices):
                env["GPUHUB_SIMULATED"] = "1"
        limits = job.get("limits") or {}
        gpus = len(devices) if job["shape"].get("kind", "gpu") == "gpu" else min(1, len(devices))
        return JobSpec(
            id=job["id"], user=job["user"], name=job["name"], kind=job["kind"], path=job["path"],
            folder=job_folder(job["id"], job["name"]), source=source,
            parameters=dict(job["parameters"] or {}),
            lease=lease.to_dict(self.scheduler.clock()) if lease is not None else {},
            env=env, image=job.get("image"), image_digest=job.get("image_digest"),
            cpu_limit=limits.get("cpu_limit"), mem_limit=limits.get("mem_limit"),
            shm_size=limits.get("shm_size"), gpus=gpus,
        )  # fmt: skip
