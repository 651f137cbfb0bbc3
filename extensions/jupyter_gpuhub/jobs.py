"""Batch GPU jobs from JupyterLab: the extension's ``jobs`` routes under ``gpuhub/api/v1/``.

The browser names a notebook or script by its path in the server's contents root; the
server reads it (the snapshot: later edits do not change the job) and submits it to the
gpuhub service with the server's own token. The service never reads users' files, so every
check on the path happens here, before anything is sent:

* the path is relative (no leading ``/`` or ``~``), has no ``.``/``..``/empty segment, no
  control character or backslash, and ends in ``.ipynb`` or ``.py``;
* its real path (symlinks resolved) stays inside the real contents root;
* it is a regular file of at most 16 MiB, and a notebook is valid nbformat 4.

Every refusal is a 400 naming the problem; the service's own errors pass through with their
status, code, message and field. ``GET jobs/parameters?path=`` reads the notebook's cell
tagged ``parameters`` (as papermill does) into typed values, with what the dialog needs
to pre-fill itself: this server's profile, the GPU shapes the user's quotas allow, what is
free of each now, and the queue's length.
"""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat
from gpuhub.client import AsyncGpuhubClient, GpuhubError, RetryPolicy, new_idempotency_key
from jupyter_server.utils import url_path_join
from tornado import web

from .handlers import API_PREFIX, GpuhubAPIHandler
from .services import GpuhubServices

#: The largest notebook or script that is sent as a job.
MAX_FILE_BYTES = 16 * 2**20
#: What may run as a job, and its kind.
KINDS = {".ipynb": "notebook", ".py": "script"}
#: The fields of ``POST jobs`` (and their JSON types); anything else is refused.
SUBMIT_FIELDS: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "profile": (str, type(None)),
    "gpus": (int, type(None)),
    "shape": (dict, type(None)),
    "parameters": (dict,),
    "max_runtime_s": (int, type(None)),
    "name": (str, type(None)),
    "schedule": (str, type(None)),
    "paused": (bool,),
}
#: A cancel waits for the job to stop (SIGTERM, grace, kill): longer than other calls.
CANCEL_TIMEOUT_S = 120.0
#: A submission is tried again (same Idempotency-Key) while the service restarts, this long.
SUBMIT_RETRY = RetryPolicy(budget=20.0)
#: Whole-GPU counts offered in the dialog (up to the largest node).
GPU_COUNTS = (1, 2, 4, 8)
NO_SERVICE = "This server does not know the gpuhub service (GPUHUB_SERVICE_URL is not set)."


class Refused(Exception):
    """A request refused before anything reached the service: 400 with ``message``."""

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(message)
        self.message, self.field = message, field


# -- the path and the snapshot -----------------------------------------------------------


def check_path(path: Any) -> str:
    """``path`` if it is a relative POSIX path to a ``.ipynb``/``.py`` file; else
    :class:`Refused` naming the problem."""
    if not isinstance(path, str) or not path:
        raise Refused("path must name a notebook (.ipynb) or script (.py).")
    if len(path) > 1024:
        raise Refused("path is longer than 1024 characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in path) or "\\" in path:
        raise Refused("path must not contain control characters or backslashes.")
    if path.startswith(("/", "~")):
        raise Refused(f"path {path!r} is absolute; give it relative to the server's root folder.")
    parts = path.split("/")
    if ".." in parts:
        raise Refused(f"path {path!r} contains '..'; it must stay inside the server's root folder.")
    if any(p in ("", ".") for p in parts):
        raise Refused(f"path {path!r} has an empty or '.' segment.")
    if PurePosixPath(path).suffix not in KINDS:
        raise Refused(
            f"path {path!r} is not a notebook (.ipynb) or a Python script (.py); "
            "only those run as jobs."
        )
    return path


def resolve(root: str, path: Any) -> Path:
    """The real file of ``path`` inside ``root``: checked, inside the root after symlinks,
    a regular file, at most :data:`MAX_FILE_BYTES`."""
    path = check_path(path)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / path))
    if real != real_root and real_root not in real.parents:
        raise Refused(f"path {path!r} leads outside the server's root folder (a symlink?).")
    try:
        st = real.stat()
    except FileNotFoundError:
        raise Refused(f"path {path!r} does not exist.") from None
    except OSError as e:
        raise Refused(f"path {path!r} cannot be read: {e.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"path {path!r} is not a file.")
    if st.st_size > MAX_FILE_BYTES:
        raise Refused(
            f"path {path!r} is {st.st_size / 2**20:.1f} MiB; a job's notebook or script "
            f"may be at most {MAX_FILE_BYTES // 2**20} MiB."
        )
    return real


def read_snapshot(real: Path, path: str) -> dict[str, Any]:
    """``{"notebook": ...}`` or ``{"script": ...}``: the file's content as the service takes
    it; :class:`Refused` for an invalid notebook or a script that is not UTF-8."""
    try:
        data = real.read_bytes()
    except OSError as e:
        raise Refused(f"path {path!r} cannot be read: {e.strerror}.") from None
    if len(data) > MAX_FILE_BYTES:  # grew since the check
        raise Refused(f"path {path!r} is larger than {MAX_FILE_BYTES // 2**20} MiB.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"path {path!r} is not UTF-8 text.") from None
    if KINDS[PurePosixPath(path).suffix] == "script":
        return {"script": text}
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("nbformat") != 4:
            raise ValueError("it is not an nbformat 4 notebook")
        nb = nbformat.from_dict(raw)
        nbformat.validate(nb)
    except (ValueError, nbformat.ValidationError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Refused(f"path {path!r} is not a valid notebook: {first[:200]}") from None
    return {"notebook": raw}


def home_prefix(root: str, home: str | None = None) -> str:
    """The server's root folder relative to the user's home ("" when it is the home, or
    not inside it): the service takes paths relative to the home."""
    real_root = Path(os.path.realpath(root))
    real_home = Path(os.path.realpath(home or os.path.expanduser("~")))
    if real_root == real_home or real_home not in real_root.parents:
        return ""
    return real_root.relative_to(real_home).as_posix()


def localize(answer: Any, prefix: str) -> Any:
    """Give each job view of ``answer`` (a job, or ``{"jobs": [...]}``) a ``local`` object:
    its ``path``, ``output_notebook`` and ``folder`` relative to the server's root folder
    (None where outside it), as the front end opens them."""
    if isinstance(answer, dict) and isinstance(answer.get("jobs"), list):
        for job in answer["jobs"]:
            localize(job, prefix)
        return answer
    if not isinstance(answer, dict) or "path" not in answer:
        return answer

    def local(path: Any) -> str | None:
        if not isinstance(path, str) or not prefix:
            return path if isinstance(path, str) else None
        return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None

    answer["local"] = {k: local(answer.get(k)) for k in ("path", "output_notebook", "folder")}
    return answer


# -- parameters ------------------------------------------------------------------------


def type_of(value: Any) -> str:
    """The dialog's type of a literal: int, float, bool, str, list, dict or None."""
    if value is None:
        return "None"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    raise TypeError(type(value).__name__)


def _plain(value: Any) -> Any:
    """A literal as JSON takes it (tuples and sets as lists), or TypeError."""
    if isinstance(value, (tuple, list, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dict keys must be strings")
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN has no JSON
            raise TypeError("nan")
        return value
    raise TypeError(type(value).__name__)


def parse_parameters(source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The simple assignments of a ``parameters`` cell as ``[{name, value, type, help}]``
    (papermill-like: ``name = literal`` or ``name: T = literal``, a trailing comment as its
    help), and the names set otherwise (expressions) that the dialog cannot edit."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []
    lines = source.splitlines()
    params: list[dict[str, Any]] = []
    other: list[str] = []
    seen: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        name = target.id
        try:
            literal = _plain(ast.literal_eval(value))
            entry = {"name": name, "value": literal, "type": type_of(literal), "help": None}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            if name not in other:
                other.append(name)
            continue
        line = lines[node.end_lineno - 1] if node.end_lineno else ""
        rest = line[node.end_col_offset or 0 :].strip()
        if rest.startswith("#"):
            entry["help"] = rest.lstrip("#").strip() or None
        if name in seen:  # the last assignment wins, as when the cell runs
            params[seen[name]] = entry
        else:
            seen[name] = len(params)
            params.append(entry)
    return params, [n for n in other if n not in seen]


def parameters_cell(nb: dict[str, Any]) -> str | None:
    """The source of the first code cell tagged ``parameters``, or None."""
    for cell in nb.get("cells") or ():
        tags = (cell.get("metadata") or {}).get("tags") or ()
        if cell.get("cell_type") == "code" and "parameters" in tags:
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None


# -- shapes for the dialog ----------------------------------------------------------------


def shape_label(shape: dict[str, Any]) -> str:
    """The quota label of a shape: ``gpu``, ``mig:<profile>`` or ``shared``."""
    return f"mig:{shape.get('profile')}" if shape["kind"] == "mig" else shape["kind"]


def shape_text(shape: dict[str, Any]) -> str:
    """A shape for people: "2x GPU", "MIG 1g.10gb", "a shared GPU seat"."""
    if shape["kind"] == "gpu":
        return f"{shape.get('count', 1)}x GPU"
    if shape["kind"] == "mig":
        return f"MIG {shape.get('profile')}"
    return "a shared GPU seat"


def pool_shapes(pool: dict[str, Any]) -> list[dict[str, Any]]:
    """The shapes the pool can give: whole GPUs (1, 2, 4, 8 up to the largest node), each
    MIG profile it has, and a shared seat when it has a shared GPU."""
    largest, migs, shared = 0, [], False
    for node in pool.get("nodes") or ():
        whole = 0
        for gpu in node.get("gpus") or ():
            mode = gpu.get("mode")
            if mode == "exclusive":
                whole += 1
            elif mode == "shared":
                shared = True
            elif mode == "mig":
                for inst in gpu.get("mig_instances") or ():
                    if inst.get("profile") and inst["profile"] not in migs:
                        migs.append(inst["profile"])
        largest = max(largest, whole)
    shapes: list[dict[str, Any]] = [{"kind": "gpu", "count": n} for n in GPU_COUNTS if n <= largest]
    if largest and largest not in GPU_COUNTS and largest < 64:
        shapes.append({"kind": "gpu", "count": largest})
    shapes += [{"kind": "mig", "profile": p} for p in sorted(migs)]
    if shared:
        shapes.append({"kind": "shared"})
    return shapes


def allowed(shape: dict[str, Any], quotas: list[dict[str, Any]]) -> bool:
    """Whether every quota of the user allows the shape's label and (whole GPUs) count."""
    label = shape_label(shape)
    for q in quotas:
        spec = q.get("quota") or {}
        globs = spec.get("allowed_shapes")
        if globs is not None and not any(fnmatch.fnmatchcase(label, g) for g in globs):
            return False
        most = spec.get("max_units")
        if shape["kind"] == "gpu" and most is not None and shape.get("count", 1) > most:
            return False
    return True


def same_shape(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Whether a lease's shape is the candidate ``b`` (ignoring a model filter)."""
    if not a or a.get("kind") != b["kind"]:
        return False
    if b["kind"] == "gpu":
        return int(a.get("count") or 1) == b["count"]
    return b["kind"] != "mig" or a.get("profile") == b["profile"]


async def dialog_defaults(services: GpuhubServices, client: AsyncGpuhubClient) -> dict[str, Any]:
    """What the dialog pre-fills: this server's profile and shape, the shapes the quotas
    allow with a preview of each (free now, queue ahead), the queue's length."""
    profile = os.environ.get("GPUHUB_PROFILE") or None
    out: dict[str, Any] = {
        "profile": profile, "current_shape": None, "shapes": [], "queue_length": None,
        "quotas": [], "error": None,
    }  # fmt: skip
    try:
        me, pool = await asyncio.gather(client.request("GET", "me"), client.request("GET", "pool"))
        if services.lease_id is not None:
            out["current_shape"] = (await services.lease()).get("shape")
    except (GpuhubError, RuntimeError) as e:
        out["error"] = f"The gpuhub service did not answer: {e}"
        return out
    out["queue_length"] = pool.get("queue_length")
    out["quotas"] = me.get("quotas") or []
    candidates = [s for s in pool_shapes(pool) if allowed(s, out["quotas"])]

    async def preview(shape: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"shape": shape}
        if profile:
            body["profile"] = profile
        try:
            p = await client.request("POST", "leases/preview", json=body, retry=True)
        except GpuhubError as e:
            p = {"outcome": "refuse", "message": e.message, "free": None, "total": None}
        return {
            "shape": shape, "label": shape_label(shape), "text": shape_text(shape),
            "current": same_shape(out["current_shape"], shape), "outcome": p.get("outcome"),
            "message": p.get("message"), "free": p.get("free"), "total": p.get("total"),
            "ahead": p.get("ahead"),
        }  # fmt: skip

    out["shapes"] = list(await asyncio.gather(*(preview(s) for s in candidates)))
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
            defaults: dict[str, Any] = {
                "profile": os.environ.get("GPUHUB_PROFILE") or None, "current_shape": None,
                "shapes": [], "queue_length": None, "quotas": [], "error": NO_SERVICE,
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
