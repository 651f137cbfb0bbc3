"""Batch GPU jobs from JupyterLab: the extension's ``jobs`` routes under ``gpuhub/api/v1/``.

``POST jobs`` submits a notebook or script of the server's root folder to the gpuhub
service with the server's own token, after the checks of :mod:`.job_files` (every refusal
is a 400 naming the problem); the service's own errors pass through with their status,
``error``, message and field. ``GET jobs/parameters?path=`` reads the notebook's cell
tagged ``parameters`` (:mod:`.job_parameters`) with what the dialog needs to pre-fill
itself: this server's profile, the GPU shapes the user's quotas allow, what is free of
each now, the queue's length and how many nodes a job of the profile may span. From a
CPU-only server the job goes to the pool on the default GPU profile
(:func:`gpu_profile_of`), not on the server's own.
"""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath
from typing import Any

from gpuhub.client import AsyncGpuhubClient, GpuhubError, RetryPolicy, new_idempotency_key
from jupyter_server.utils import url_path_join
from tornado import web

from .handlers import API_PREFIX, GpuhubAPIHandler
from .job_files import Refused, home_prefix, localize, read_snapshot, resolve
from .job_parameters import parameters_cell, parse_parameters
from .services import GpuhubServices

#: The fields of ``POST jobs`` (and their JSON types); anything else is refused.
SUBMIT_FIELDS: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "profile": (str, type(None)),
    "gpus": (int, type(None)),
    "nodes": (int, type(None)),
    "shape": (dict, type(None)),
    "parameters": (dict,),
    "max_runtime_s": (int, type(None)),
    "name": (str, type(None)),
    "schedule": (str, type(None)),
    "paused": (bool,),
    # the service checks the values (JobTier, RetryPolicy); here only their JSON types
    "tier": (str,),
    "retry": (dict, type(None)),
}
#: A cancel waits for the job to stop (SIGTERM, grace, kill): longer than other calls.
CANCEL_TIMEOUT_S = 120.0
#: A submission is tried again (same Idempotency-Key) while the service restarts, this long.
SUBMIT_RETRY = RetryPolicy(budget=20.0)
NO_SERVICE = "This server does not know the gpuhub service (GPUHUB_SERVICE_URL is not set)."


# -- what the dialog offers ---------------------------------------------------------------


def same_shape(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Whether a lease's shape is the candidate ``b`` (ignoring a model filter)."""
    if not a or a.get("kind") != b["kind"]:
        return False
    if b["kind"] == "gpu":
        return int(a.get("count") or 1) == int(b.get("count") or 1)
    return b["kind"] != "mig" or a.get("profile") == b.get("profile")


def gpu_profile_of(options: dict[str, Any]) -> dict[str, Any] | None:
    """The profile a job from a CPU-only server runs on: among the profiles of
    ``GET me/options`` that have a GPU, the default one, else the first; None if none has."""
    gpu = [p for p in options.get("profiles") or () if p.get("shape")]
    return next((p for p in gpu if p.get("default")), gpu[0] if gpu else None)


def job_profile_of(options: dict[str, Any], profile: str | None) -> dict[str, Any] | None:
    """The profile a job of ``profile`` runs on as ``GET me/options`` lists it; without a
    profile, the default GPU profile, which the service then picks (None: not listed)."""
    if profile is None:
        return gpu_profile_of(options)
    return next((p for p in options.get("profiles") or () if p.get("name") == profile), None)


def max_nodes_of(options: dict[str, Any], profile: str | None) -> int:
    """The most nodes a job of ``profile`` may span, as ``GET me/options`` says (its
    ``max_nodes``); without a profile, the default GPU profile's, which the service then
    picks. 1 where the service does not say (an older one)."""
    value = (job_profile_of(options, profile) or {}).get("max_nodes")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def prices_of(options: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """What a job of ``profile`` costs, as ``GET me/options`` says: ``credits_per_gpu_hour``
    (one GPU of the profile; the dialog multiplies by GPUs and nodes) and
    ``credits_per_hour`` (at its default count), each ``{min, max}`` over the models that
    may serve it; None where the service does not say (an older one, a CPU-only profile)."""
    chosen = job_profile_of(options, profile) or {}
    return {
        "credits_per_gpu_hour": chosen.get("credits_per_gpu_hour"),
        "credits_per_hour": chosen.get("credits_per_hour"),
    }


async def dialog_defaults(services: GpuhubServices, client: AsyncGpuhubClient) -> dict[str, Any]:
    """What the dialog pre-fills, from the service's ``GET me/options`` (the one place the
    shapes, what is free of each, and the job limits come from): this server's profile and
    shape, the shapes with the scheduler's preview of each, the limits of the maximum
    runtime, whether schedules are taken, the queue's length, ``max_nodes``, the most
    nodes a job of the profile may span (1: no multi-node jobs), the profile's prices
    (:func:`prices_of`), and ``spot``, the site's spot capacity (``enabled``, ``discount``,
    ``grace_s``, ``min_runtime_s``; None where the service does not say).

    A CPU-only server (``no_gpu``) sends its jobs to the pool: ``profile`` and
    ``current_shape`` are then those of the default GPU profile (None: the service
    picks it), and ``server_profile`` is the server's own."""
    profile = services.profile
    out: dict[str, Any] = {
        "profile": None if services.no_gpu else profile, "current_shape": None, "shapes": [],
        "queue_length": None, "runtime": None, "schedules": True, "max_nodes": 1,
        "credits_per_gpu_hour": None, "credits_per_hour": None, "spot": None,
        "error": None, "no_gpu": services.no_gpu, "server_profile": profile,
    }  # fmt: skip
    try:
        options = await client.request(
            "GET", "me/options", params={"profile": profile} if profile else None, retry=True
        )
        if services.no_gpu and (gpu := gpu_profile_of(options)) is not None:
            out.update(profile=gpu["name"], current_shape=gpu["shape"])
            # the shapes as a job of that profile asks for them (its quotas' allowed_profiles)
            options = await client.request(
                "GET", "me/options", params={"profile": gpu["name"]}, retry=True
            )
        if services.lease_id is not None:
            out["current_shape"] = (await services.lease()).get("shape")
    except (GpuhubError, RuntimeError) as e:
        out["error"] = f"The gpuhub service did not answer: {e}"
        return out
    jobs = options.get("jobs") or {}
    out.update(
        queue_length=options.get("queue_length"),
        runtime=jobs.get("max_runtime_s"),
        schedules=bool(jobs.get("schedules", True)),
        spot=options.get("spot"),
        max_nodes=max_nodes_of(options, out["profile"]),
        **prices_of(options, out["profile"]),
        shapes=[
            {**choice, "current": same_shape(out["current_shape"], choice["shape"])}
            for choice in options.get("shapes") or ()
        ],
    )
    return out


# -- handlers ----------------------------------------------------------------------------


class JobsAPIHandler(GpuhubAPIHandler):
    """A route that talks to the gpuhub service: its errors answer with their status."""

    def client(self, timeout: float = 30.0) -> AsyncGpuhubClient:
        """The service's client with the server's own token (``RuntimeError`` without one)."""
        client = self.gpuhub.client()
        client.timeout = timeout
        return client

    def refuse(self, status: int, error: str, message: str, field: str | None = None) -> None:
        """Answer an error in the service's own shape (``status``, ``error``, ``message``,
        ``field``), as the docs' OpenAPI document says."""
        self.write_json(
            {"status": status, "error": error, "message": message, "field": field}, status
        )

    def created(self, body: dict[str, Any], kind: str) -> None:
        """A 201 with ``Location``: this server's route of the new job or definition
        (``kind`` is ``jobs`` or ``job-definitions``), as the service answers its own."""
        self.set_header("Location", url_path_join(self.base_url, API_PREFIX, kind, str(body["id"])))
        self.write_json(body, 201)

    @property
    def root(self) -> str:
        """The server's contents root."""
        return self.settings.get("server_root_dir") or os.getcwd()

    async def proxy(
        self, method: str, path: str, *, timeout: float = 30.0, created: bool = False, **kw: Any
    ) -> None:
        """Send one request to the service and answer what it answered (a 201 with its
        ``Location`` when ``created``; job views with their paths in this server's root,
        see :func:`localize`)."""
        try:
            answer = localize(
                await self.client(timeout).request(method, path, **kw), home_prefix(self.root)
            )
        except RuntimeError:
            self.refuse(503, "no_service", NO_SERVICE)
            return
        except GpuhubError as e:
            self.service_error(e)
            return
        if answer is None:
            self.set_status(204)
            self.finish()
        elif created:
            self.created(answer, path.split("/", 1)[0])
        else:
            self.write_json(answer)

    def service_error(self, e: GpuhubError) -> None:
        """The service's refusal as it was, or 502 when it did not answer."""
        if e.status is None or e.status >= 500:
            self.refuse(502, e.code, f"The gpuhub service did not answer: {e.message}")
        else:
            self.refuse(e.status, e.code, e.message, e.field)

    def body(self) -> dict[str, Any]:
        """The request's JSON object, or a 400."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise Refused("The body is not JSON.", "body") from None
        if not isinstance(body, dict):
            raise Refused("The body must be a JSON object.", "body")
        return body


class JobsHandler(JobsAPIHandler):
    """``GET jobs``: my jobs (the service's list); ``POST jobs``: submit a notebook or
    script of this server's root folder (with ``schedule``: a recurring job definition)."""

    @web.authenticated
    async def get(self) -> None:
        params = {k: self.get_query_arguments(k) for k in ("status", "limit")}
        await self.proxy("GET", "jobs", params={k: v for k, v in params.items() if v})

    @web.authenticated
    async def post(self) -> None:
        try:
            body, path = self.job_request()
        except Refused as e:
            self.refuse(400, "invalid", e.message, e.field)
            return
        schedule = body.pop("schedule", None)
        if schedule is not None:
            await self.proxy(
                "POST", "job-definitions", json={**body, "schedule": schedule}, created=True
            )
            return
        if "paused" in body:
            self.refuse(400, "invalid", "paused goes with a schedule only.", "paused")
            return
        key = self.request.headers.get("Idempotency-Key") or new_idempotency_key()
        try:
            client = self.client()
        except RuntimeError:
            self.refuse(503, "no_service", NO_SERVICE)
            return
        # one key for every try: a restart of the service costs no job and makes no twin
        client.retry_policy = SUBMIT_RETRY
        try:
            job = await client.submit_job(body, idempotency_key=key)
        except GpuhubError as e:
            self.service_error(e)
            return
        self.log.info("gpuhub: submitted %s as job %s", path, job.get("id"))
        self.created(localize(job, home_prefix(self.root)), "jobs")

    def job_request(self) -> tuple[dict[str, Any], str]:
        """The service's JobRequest for this request's body: checked fields, the path
        relative to the home, and the snapshot."""
        body = self.body()
        for name, value in body.items():
            if name not in SUBMIT_FIELDS:
                raise Refused(f"{name} is not a field of a job.", name)
            types = SUBMIT_FIELDS[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                kinds = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise Refused(f"{name} must be {kinds}.", name)
        if "path" not in body:
            raise Refused("path is required: the notebook or script to run.")
        root = self.root
        path = body["path"]
        real = resolve(root, path)
        out = {k: v for k, v in body.items() if v is not None}
        out.update(read_snapshot(real, path))
        prefix = home_prefix(root)
        out["path"] = f"{prefix}/{path}" if prefix else path
        out.setdefault("parameters", {})
        return out, path


class JobHandler(JobsAPIHandler):
    """``GET jobs/{id}``: one job; ``DELETE jobs/{id}``: cancel it (answers once stopped)."""

    @web.authenticated
    async def get(self, job_id: str) -> None:
        await self.proxy("GET", f"jobs/{int(job_id)}")

    @web.authenticated
    async def delete(self, job_id: str) -> None:
        await self.proxy("DELETE", f"jobs/{int(job_id)}", timeout=CANCEL_TIMEOUT_S)


class JobLogHandler(JobsAPIHandler):
    """``GET jobs/{id}/log?offset=&limit=``: a page of the job's log."""

    @web.authenticated
    async def get(self, job_id: str) -> None:
        params = {}
        for name in ("offset", "limit"):
            value = self.get_query_argument(name, None)
            if value is not None:
                if not value.isdigit():
                    self.refuse(400, "invalid", f"{name} must be a whole number.", name)
                    return
                params[name] = int(value)
        await self.proxy("GET", f"jobs/{int(job_id)}/log", params=params)


class JobParametersHandler(JobsAPIHandler):
    """``GET jobs/parameters?path=``: the notebook's parameters and the dialog's defaults."""

    @web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        try:
            real = resolve(self.root, path)
            snapshot = read_snapshot(real, str(path))
        except Refused as e:
            self.refuse(400, "invalid", e.message, e.field)
            return
        assert path is not None
        params: list[dict[str, Any]] = []
        other: list[str] = []
        cell = None
        if "notebook" in snapshot:
            cell = parameters_cell(snapshot["notebook"])
            if cell is not None:
                params, other = parse_parameters(cell)
        try:
            client: AsyncGpuhubClient | None = self.client(timeout=10.0)
        except RuntimeError:
            client = None
        if client is None:
            services = self.gpuhub
            defaults: dict[str, Any] = {
                "profile": None if services.no_gpu else services.profile, "current_shape": None,
                "shapes": [], "queue_length": None, "quotas": [], "max_nodes": 1, "spot": None,
                "error": NO_SERVICE, "no_gpu": services.no_gpu, "server_profile": services.profile,
            }  # fmt: skip
        else:
            defaults = await dialog_defaults(self.gpuhub, client)
        self.write_json(
            {
                "path": path,
                "kind": "notebook" if "notebook" in snapshot else "script",
                "name": PurePosixPath(path).stem,
                "has_parameters_cell": cell is not None,
                "parameters": params,
                "unsupported": other,
                "defaults": defaults,
            }
        )


class JobDefinitionsHandler(JobsAPIHandler):
    """``GET job-definitions``: my recurring jobs."""

    @web.authenticated
    async def get(self) -> None:
        await self.proxy("GET", "job-definitions")


class JobDefinitionHandler(JobsAPIHandler):
    """``PATCH job-definitions/{id}`` ``{"paused": bool}``; ``DELETE job-definitions/{id}``."""

    @web.authenticated
    async def patch(self, def_id: str) -> None:
        try:
            body = self.body()
        except Refused as e:
            self.refuse(400, "invalid", e.message, e.field)
            return
        if set(body) != {"paused"} or not isinstance(body["paused"], bool):
            self.refuse(400, "invalid", 'The body must be {"paused": true|false}.', "paused")
            return
        await self.proxy("PATCH", f"job-definitions/{int(def_id)}", json=body)

    @web.authenticated
    async def delete(self, def_id: str) -> None:
        await self.proxy("DELETE", f"job-definitions/{int(def_id)}")


#: (path below the namespace, handler) of the job routes.
JOB_ROUTES = (
    ("jobs", JobsHandler),
    ("jobs/parameters", JobParametersHandler),
    (r"jobs/(\d+)", JobHandler),
    (r"jobs/(\d+)/log", JobLogHandler),
    ("job-definitions", JobDefinitionsHandler),
    (r"job-definitions/(\d+)", JobDefinitionHandler),
)
