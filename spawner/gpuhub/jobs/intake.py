"""Job intake: checks a job request and creates the job and its GPU request, or nothing.

Everything is checked before anything is created: the notebook or script, the profile
(open to the user), the image (resolved to its digest by the executor), the runtime and,
by the scheduler, quotas and the pool. A job's GPUs are an ordinary lease labelled
``job:USER/ID``: they wait in the same queue, under the same quotas, booked in the same
ledger. A job asks for the ``guaranteed`` tier or for ``spot`` capacity (the scheduler
refuses spot where the site offers none, naming ``tier``), and keeps its retry policy in
full (the defaults of :class:`~gpuhub.jobs.models.RetryPolicy` where it gave none).
Recurring definitions check their requests here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..profiles import (
    Profile,
    Selection,
    UserOptionsError,
    default_gpu_profile,
    validate_user_options,
)
from ..scheduler.core import Scheduler
from ..scheduler.errors import IdempotencyConflict
from ..scheduler.shapes import Shape, WholeGpus, describe
from ..terms import ACTIVE, JOB_QUEUED, job_label, shape_text
from .errors import JobInvalid
from .executor import JobExecutor
from .models import JobRequest, RetryPolicy
from .record import Job
from .store import JobStore
from .views import source_of


@dataclass(frozen=True)
class JobLimits:
    """Runtime limits of jobs (``c.JobManager.default_max_runtime`` and ``max_runtime``)."""

    default_max_runtime: int
    max_runtime: int


def check_request(req: JobRequest, limits: JobLimits) -> None:
    """Checks across fields of a job request; :class:`JobInvalid` naming its field."""
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
    if req.shape is not None and req.nodes is not None:
        raise JobInvalid("give nodes with gpus, or a shape with its nodes, not both", field="nodes")
    if req.max_runtime_s is not None and req.max_runtime_s > limits.max_runtime:
        raise JobInvalid(
            f"max_runtime_s: at most {limits.max_runtime} seconds here", field="max_runtime_s"
        )


def select_profile(req: JobRequest, profiles: list[Profile], groups: list[str]) -> Selection:
    """The profile (and GPU count) a request asks for, as the spawn form would check it.

    A job runs on the pool's GPUs: without a profile it takes the default profile with a
    GPU (:func:`default_gpu_profile`), even where a CPU-only profile is the spawn form's
    default; a CPU-only profile named without a ``shape`` is refused, naming the profiles
    that have one.
    """
    profile = req.profile
    if profile is None:
        gpu = default_gpu_profile(profiles, groups)
        profile = gpu.name if gpu is not None else None
    options = {"profile": profile, "gpus": req.gpus}
    try:
        selection = validate_user_options(
            {k: v for k, v in options.items() if v is not None}, profiles, groups
        )
    except UserOptionsError as e:
        raise JobInvalid(e.message, field=e.option or "profile") from e
    if selection.shape is None and req.shape is None:
        named = [p.name for p in profiles if p.has_gpu and p.allows(groups)]
        raise JobInvalid(
            f"profile {selection.profile.name} has no GPU, and a job runs on one: choose a "
            f"profile with GPUs ({', '.join(named) or 'none is open to you'}) or give a shape",
            field="profile",
        )
    return selection


def job_shape(req: JobRequest, selection: Selection, executor: JobExecutor) -> Shape:
    """The shape a job asks for: the request's own, else the profile's with the request's
    ``nodes``. More than one node needs whole GPUs, a profile whose ``max_nodes`` allows
    it and an executor that runs multi-node jobs; else :class:`JobInvalid` on ``nodes``."""
    shape = req.shape or selection.shape
    nodes = req.nodes or (shape.node_count if isinstance(shape, WholeGpus) else 1)
    if nodes == 1:
        return shape
    if not isinstance(shape, WholeGpus):
        raise JobInvalid(
            f"nodes is for whole GPUs; {describe(shape)} is on one node", field="nodes"
        )
    if not executor.multi_node:
        raise JobInvalid(
            f"jobs here run with the {executor.name} executor, one node each; a job on "
            f"{nodes} nodes needs a cluster executor (Slurm)",
            field="nodes",
        )
    most = selection.profile.max_nodes
    if nodes > most:
        raise JobInvalid(
            f"profile {selection.profile.name} lets a job span at most "
            f"{most} node{'s' if most != 1 else ''}; ask for fewer nodes or another profile",
            field="nodes",
        )
    return shape.model_copy(update={"nodes": nodes})


def request_digest(user: str, req: JobRequest) -> str:
    """A digest of a request, telling a retry apart from another request under one key
    (the tier and retry policy only where given, so digests from before them still hold)."""
    left_out = {"user"} | ({"tier"} if req.tier == "guaranteed" else set())
    left_out |= {"retry"} if req.retry is None else set()
    body = [user, req.model_dump(mode="json", exclude=left_out)]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class JobIntake:
    """Creates jobs: checks, the job's lease request and its record, in that order."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        executor: JobExecutor,
        db: JobStore,
        profiles: list[Profile],
        limits: JobLimits,
        clock: Callable[[], float],
        on_granted: Callable[[], None],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.scheduler, self.executor, self.db = scheduler, executor, db
        self.profiles, self.limits, self.clock = profiles, limits, clock
        self.on_granted = on_granted  # a job's GPUs were granted at once: start it soon
        self.log = log
        self._next_id = db.max_job_id() + 1

    def check(self, req: JobRequest, groups: list[str]) -> Selection:
        """Check ``req`` for a user in ``groups``; the profile selection it gets. (A job's
        own request is checked by the scheduler too; a definition's only here.)"""
        check_request(req, self.limits)
        if req.tier == "spot" and not self.scheduler.spot.enabled:
            raise JobInvalid(
                "tier: this site offers no spot capacity; leave tier out (guaranteed)",
                field="tier",
            )
        selection = select_profile(req, self.profiles, groups)
        job_shape(req, selection, self.executor)
        return selection

    async def submit(
        self,
        req: JobRequest,
        *,
        user: str,
        groups: Iterable[str],
        idempotency_key: str | None = None,
        definition: tuple[int, float | None, dict] | None = None,
    ) -> tuple[Job, bool]:
        """Create a job and request its GPUs; ``(job, replayed)``. A refusal raises a
        ``SchedulerError`` and leaves nothing behind. ``definition`` = (id, due time,
        values) updates that job definition in the job's own transaction."""
        groups = list(groups)
        check_request(req, self.limits)
        digest = request_digest(user, req)
        if idempotency_key is not None:
            known = self._known(user, idempotency_key, digest)
            if known is not None:
                return known, True
        selection = select_profile(req, self.profiles, groups)
        shape = job_shape(req, selection, self.executor)
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
        p = selection.profile
        lease = self.scheduler.request(
            user=user, user_groups=groups, shape=shape, group=selection.group,
            profile=p.name, label=job_label(user, job_id), tier=req.tier,
        )  # fmt: skip
        job = Job(
            id=job_id, user=user, name=req.name or req.stem[:100], path=req.path,
            kind=req.kind, status=JOB_QUEUED, profile=p.name, group=lease.group,
            image=selection.image if digest_of_image else None, image_digest=digest_of_image,
            shape=shape.model_dump(exclude_none=True),
            limits={"cpu_limit": p.cpu_limit, "mem_limit": p.mem_limit, "shm_size": p.shm_size},
            parameters=req.parameters,
            max_runtime_s=req.max_runtime_s or self.limits.default_max_runtime,
            source=source_of(req.notebook, req.script), lease_id=lease.id,
            executor=self.executor.name, created_at=self.clock(),
            definition_id=definition[0] if definition else None,
            idempotency_key=idempotency_key, request_digest=digest, tier=req.tier,
            retry=(req.retry or RetryPolicy()).model_dump(),
        )  # fmt: skip
        try:
            self.db.insert_job(job, definition)
        except BaseException:
            self.scheduler.release(lease.id, reason=f"job {job_id} was not created")
            raise
        self.log.info(
            "job %s of %s submitted: %s (%s), lease %s %s",
            job_id, user, req.path, shape_text(job.shape), lease.id, lease.status,
        )  # fmt: skip
        if lease.status == ACTIVE:
            self.on_granted()
        return self.db.job(job_id) or job.but(source=None), False

    def _known(self, user: str, key: str, digest: str) -> Job | None:
        known = self.db.job_by_key(user, key)
        if known is not None and known.request_digest != digest:
            raise IdempotencyConflict(
                f"idempotency key {key!r} of {user} was used for job {known.id} with a "
                "different request; send a new key for a new request",
                field="Idempotency-Key",
            )
        return known
