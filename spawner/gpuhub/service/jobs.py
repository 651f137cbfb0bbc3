"""REST handlers of batch jobs and job definitions (``/api/v1/jobs``, ``/job-definitions``).

A user sees and acts on their own jobs and definitions; others' ids are not found (404),
as leases are. Admins (``custom:gpuhub:admin``) see and act on all, and may submit for
another user. The bodies carry the notebook or script, so these two POST routes read up
to 16 MiB; every other route keeps the 64 KiB limit.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.utils import url_path_join

from ..jobs.manager import JobManager
from ..jobs.models import DefinitionPatch, DefinitionRequest, JobRequest
from ..jobs.record import Job
from ..scheduler.errors import NotFound
from ..terms import JOB_STATUSES
from .base import DRAIN_BYTES, BaseHandler, path_id
from .body import MAX_JOB_BODY_BYTES
from .errors import ApiError

MAX_LOG_LIMIT = 1024 * 1024


class JobBaseHandler(BaseHandler):
    """Reaches the job manager; finds jobs and definitions the caller may see."""

    @property
    def jobs(self) -> JobManager:
        """The service's job manager."""
        return self.settings["jobs"]

    def own_job(self, job_id: str) -> Job:
        """A job the caller may see (others' are not found)."""
        job = self.jobs.job(path_id(job_id, "job"))
        if job.user != self.user_name and not self.is_admin:
            raise NotFound(f"no job {job_id}")
        return job

    def own_definition(self, def_id: str) -> dict[str, Any]:
        """A job definition the caller may see (others' are not found)."""
        d = self.jobs.definition(path_id(def_id, "job definition"))
        if d["user"] != self.user_name and not self.is_admin:
            raise NotFound(f"no job definition {def_id}")
        return d


class JobsHandler(JobBaseHandler):
    """``GET /api/v1/jobs`` (mine, or anyone's for admins) and ``POST`` (submit a job)."""

    max_body_bytes = MAX_JOB_BODY_BYTES
    drain_bytes = MAX_JOB_BODY_BYTES + DRAIN_BYTES

    def get(self) -> None:
        user = self.listed_user()
        statuses = self.query_statuses(JOB_STATUSES)
        limit = self.query_int("limit", 1000, 1, 10000)
        rows = self.jobs.jobs(user=user, statuses=statuses or None, limit=limit)
        self.write_json({"jobs": self.jobs.views(rows)})

    async def post(self) -> None:
        key = self.idempotency_key()
        req: JobRequest = self.body(JobRequest)
        user, groups = await self.acting_for(req.user)
        job, replayed = await self.jobs.submit(req, user=user, groups=groups, idempotency_key=key)
        self.set_header("Location", url_path_join(self.request.path, str(job.id)))
        if replayed:
            self.set_header("Idempotent-Replayed", "true")
        self.write_json(self.jobs.view(job), status=200 if replayed else 201)


class JobHandler(JobBaseHandler):
    """``GET`` one job, or ``DELETE`` it: cancel (a running one is stopped first)."""

    def get(self, job_id: str) -> None:
        self.write_json(self.jobs.view(self.own_job(job_id)))

    async def delete(self, job_id: str) -> None:
        job = self.own_job(job_id)
        self.write_json(self.jobs.view(await self.jobs.cancel(job.id, by=self.user_name)))


class JobLogHandler(JobBaseHandler):
    """``GET /api/v1/jobs/{id}/log?offset=&limit=``: a page of the job's log."""

    async def get(self, job_id: str) -> None:
        job = self.own_job(job_id)
        offset = self.query_int("offset", 0, 0, 2**40)
        limit = self.query_int("limit", 65536, 1, MAX_LOG_LIMIT)
        self.write_json(await self.jobs.read_log(job, offset, limit))

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """Offsets may be larger than the base's 9 digits allow."""
        raw = self.query(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 13) or not low <= int(raw) <= high:
            raise ApiError(400, f"{name} must be a whole number from {low} to {high}", field=name)
        return int(raw)


class DefinitionsHandler(JobBaseHandler):
    """``GET /api/v1/job-definitions`` and ``POST`` (a recurring job on a cron schedule)."""

    max_body_bytes = MAX_JOB_BODY_BYTES
    drain_bytes = MAX_JOB_BODY_BYTES + DRAIN_BYTES

    def get(self) -> None:
        rows = self.jobs.definitions(user=self.listed_user())
        self.write_json({"definitions": [self.jobs.definition_view(d) for d in rows]})

    async def post(self) -> None:
        req: DefinitionRequest = self.body(DefinitionRequest)
        user, groups = await self.acting_for(req.user)
        d = self.jobs.create_definition(req, user=user, groups=groups)
        self.set_header("Location", url_path_join(self.request.path, str(d["id"])))
        self.write_json(self.jobs.definition_view(d), status=201)


class DefinitionHandler(JobBaseHandler):
    """``GET``, ``PATCH`` (pause or resume) or ``DELETE`` one job definition."""

    def get(self, def_id: str) -> None:
        self.write_json(self.jobs.definition_view(self.own_definition(def_id)))

    def patch(self, def_id: str) -> None:
        d = self.own_definition(def_id)
        patch: DefinitionPatch = self.body(DefinitionPatch)
        self.write_json(self.jobs.definition_view(self.jobs.set_paused(d["id"], patch.paused)))

    def delete(self, def_id: str) -> None:
        d = self.own_definition(def_id)
        self.jobs.delete_definition(d["id"])
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"/jobs", JobsHandler),
    (r"/jobs/([0-9]+)", JobHandler),
    (r"/jobs/([0-9]+)/log", JobLogHandler),
    (r"/job-definitions", DefinitionsHandler),
    (r"/job-definitions/([0-9]+)", DefinitionHandler),
]
