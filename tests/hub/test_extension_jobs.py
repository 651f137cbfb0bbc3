"""The server extension's job routes (``gpuhub/api/v1/jobs...``) against a real jupyter server.

The server runs in this process with the extension loaded (pytest-jupyter, as in
test_extension_api.py); requests go through ``jp_fetch``. Two services stand behind it:

* a recording stand-in (a small real tornado app) that answers canned views and keeps every
  request it gets, so the tests can say that a refused path reached nothing;
* the real gpuhub service of a real hub (tests/hub.py), for a notebook that is submitted
  through the extension, runs (local-process executor, papermill) and is read back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_gpuhub.job_files import home_prefix
from jupyter_gpuhub.job_parameters import parse_parameters
from pytest_jupyter.jupyter_core import *  # noqa: F403 (fixtures)
from pytest_jupyter.jupyter_server import *  # noqa: F403 (fixtures)
from pytest_jupyter.pytest_tornasync import *  # noqa: F403 (fixtures)
from tornado import httpclient, httpserver, netutil, web

from tests.support.hub import unique

pytestmark = pytest.mark.timeout(120)

ROOT = "/services/gpuhub/api/v1"
PARAMETERS = """\
epochs = 3  # passes over the data
lr = 1e-3
use_amp: bool = True
run_name = "baseline"
layers = [64, 32]
opts = {"a": 1, "b": [1, 2]}
seed = None
neg = -2
shape = (2, 3)
data = list(range(3))
x, y = 1, 2
epochs = 5
"""

#: What the stand-in's GET me/options answers: shapes with the scheduler's preview of
#: each (the quota refuses the shared seat), the job limits, the queue's length.
OPTIONS = {
    "user": "alice", "profiles": [], "queue_length": 3,
    "jobs": {"max_runtime_s": {"min": 60, "default": 7200, "max": 86400}, "schedules": True},
    "spot": {"enabled": True, "discount": 0.3, "grace_s": 120, "min_runtime_s": 600},
    "shapes": [
        {"shape": {"kind": "gpu", "count": 1}, "label": "gpu", "text": "1 whole GPU",
         "models": ["H100-80GB"], "models_text": "H100-80GB", "outcome": "grant",
         "message": "3 of 4 H100-80GB GPUs free", "free": 3, "total": 4, "ahead": None,
         "simulated": True},
        {"shape": {"kind": "gpu", "count": 2}, "label": "gpu", "text": "2 whole GPUs",
         "models": ["H100-80GB"], "models_text": "H100-80GB", "outcome": "queue",
         "message": "1 request ahead of you", "free": 1, "total": 2, "ahead": 1,
         "simulated": True},
        {"shape": {"kind": "shared"}, "label": "shared", "text": "a shared GPU",
         "models": ["L4-24GB"], "models_text": "L4-24GB", "outcome": "refuse",
         "message": "alice may not use a shared GPU (allowed: gpu, mig:*)", "free": 4,
         "total": 4, "ahead": None, "simulated": True},
    ],
}  # fmt: skip
LEASE = {
    "id": 5, "status": "active", "user": "alice", "node": "sim", "simulated": True,
    "profile": "gpu-1", "shape": {"kind": "gpu", "count": 1}, "gpu_hours": 0.0,
    "devices": [{"uuid": "GPU-0", "index": 0, "model": "NVIDIA H100 80GB HBM3",
                 "memory_mb": 81559, "simulated": True, "slot": 0}],
}  # fmt: skip
JOB = {"id": 12, "user": "alice", "name": "train", "path": "train.ipynb", "status": "queued",
       "folder": "gpuhub-jobs/12-train", "output_notebook": None}  # fmt: skip
#: JOB as the extension answers it when the server's root is the home.
LOCAL = {**JOB, "local": {"path": "train.ipynb", "output_notebook": None,
                          "folder": "gpuhub-jobs/12-train"}}  # fmt: skip


def notebook(params: str | None = PARAMETERS, body: str = "print(epochs)") -> dict[str, Any]:
    """A valid nbformat 4 notebook, with a ``parameters``-tagged cell unless None."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if params is not None:
        nb.cells.append(nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell(body))
    return json.loads(nbformat.writes(nb))


# -- a recording stand-in service ---------------------------------------------------------


class Recorder:
    """A real tornado app at /services/gpuhub/api/v1 that answers canned views and keeps
    every request: ``(method, path, query, headers, body)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {
            ("GET", "me/options"): (200, OPTIONS),
            ("GET", "leases/5"): (200, LEASE),
            ("POST", "jobs"): (201, JOB),
            ("GET", "jobs"): (200, {"jobs": [JOB]}),
            ("GET", "jobs/12"): (200, JOB),
            ("DELETE", "jobs/12"): (200, {**JOB, "status": "cancelled"}),
            ("GET", "jobs/12/log"): (200, {"offset": 5, "next_offset": 9, "text": "step",
                                           "complete": False}),
            ("POST", "job-definitions"): (201, {"id": 3, "schedule": "0 2 * * *"}),
            ("GET", "job-definitions"): (200, {"definitions": []}),
            ("DELETE", "job-definitions/3"): (204, None),
        }  # fmt: skip
        self.server: httpserver.HTTPServer | None = None
        self.url = ""

    def calls(self, *, besides: tuple[str, ...] = ("leases/5",)) -> list[tuple[str, str]]:
        """(method, path) of the requests received, leaving out the sampler's own."""
        return [
            (r["method"], r["path"])
            for r in self.requests
            if r["path"] not in besides and not r["path"].endswith("/activity")
        ]

    def app(self) -> web.Application:
        rec = self

        class Any_(web.RequestHandler):
            SUPPORTED_METHODS = ("GET", "POST", "DELETE", "PATCH")

            def handle(self, path: str) -> None:
                req = self.request
                body = json.loads(req.body) if req.body else None
                rec.requests.append(
                    {"method": req.method, "path": path, "query": req.query_arguments,
                     "headers": dict(req.headers), "body": body}
                )  # fmt: skip
                if path.startswith("leases/") and path.endswith("/activity"):
                    self.finish(body)
                    return
                status, answer = rec.answers.get(
                    (req.method, path),
                    (404, {"status": 404, "error": "not_found", "message": f"No {path}."}),
                )
                self.set_status(status)
                if answer is None:
                    self.finish()
                else:
                    self.finish(json.dumps(answer))

            get = post = delete = patch = handle

        return web.Application([(rf"{ROOT}/(.*)", Any_)])

    async def start(self) -> None:
        [sock] = netutil.bind_sockets(0, "127.0.0.1")
        self.server = httpserver.HTTPServer(self.app())
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/services/gpuhub"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def run(jp_asyncio_loop):
    """Run a coroutine on the server's loop."""
    return lambda coro: jp_asyncio_loop.run_until_complete(asyncio.wait_for(coro, 60))


@pytest.fixture
def service(run) -> Iterator[Recorder]:
    """The recording stand-in on 127.0.0.1."""
    rec = Recorder()
    run(rec.start())
    yield rec
    rec.stop()


@pytest.fixture
def env(request) -> dict[str, str]:
    """The server's environment: by default the stand-in with a token, a simulated lease and
    a profile; ``"cpu"``: the stand-in, no lease, a CPU-only profile; ``"none"``: no
    service; ``"real"``: the real hub's service (the shared hub) as a user of its own."""
    which = getattr(request, "param", "stand-in")
    if which == "none":
        return {}
    if which == "cpu":
        service = request.getfixturevalue("service")
        return {"GPUHUB_SERVICE_URL": service.url, "JUPYTERHUB_API_TOKEN": "secret",
                "GPUHUB_NO_GPU": "1", "GPUHUB_PROFILE": "cpu", "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    if which == "real":  # the shared hub (tests/conftest.py), as a user of this test's own
        hub = request.getfixturevalue("shared_hub")
        token = hub.add_user(unique("jobber"))
        return {"GPUHUB_SERVICE_URL": f"{hub.url}/services/gpuhub", "JUPYTERHUB_API_TOKEN": token}
    service = request.getfixturevalue("service")
    return {
        "GPUHUB_SERVICE_URL": service.url, "JUPYTERHUB_API_TOKEN": "secret",
        "GPUHUB_LEASE_ID": "5", "GPUHUB_SIMULATED": "1", "GPUHUB_PROFILE": "gpu-1",
    }  # fmt: skip


@pytest.fixture
def jp_server_config(env, monkeypatch) -> dict[str, Any]:
    """The server's configuration; sets its environment."""
    for name in ("GPUHUB_LEASE_ID", "GPUHUB_SIMULATED", "GPUHUB_SERVICE_URL", "GPUHUB_PROFILE",
                 "GPUHUB_NO_GPU", "CUDA_VISIBLE_DEVICES", "JUPYTERHUB_API_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_gpuhub": True}},
        "GpuhubExtension": {"interval": 0.5, "report_interval": 3600.0},
    }


@pytest.fixture
def call(jp_fetch, run):
    """Call a job route: ``call(method, route, body=None, **query)`` -> (status, JSON)."""

    def call(method: str, route: str, body: Any = None, **params: str) -> tuple[int, Any]:
        async def fetch() -> tuple[int, Any]:
            kw: dict[str, Any] = {"method": method, "params": params}
            if body is not None:
                kw["body"] = body if isinstance(body, str) else json.dumps(body)
            elif method in ("POST", "PATCH"):
                kw["body"] = ""
            try:
                resp = await jp_fetch("gpuhub", "api", "v1", *route.split("/"), **kw)
            except httpclient.HTTPClientError as e:
                call.headers = e.response.headers
                return e.code, json.loads(e.response.body)
            call.headers = resp.headers
            return resp.code, json.loads(resp.body) if resp.body else None

        return run(fetch())

    call.headers = None  # the last answer's headers
    return call


def write_nb(path: Path, nb: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb or notebook()))
    return path


# -- refusals: nothing reaches the service ------------------------------------------------


def _refusals(root: Path, tmp_path: Path) -> list[tuple[str, str]]:
    """(path, words the refusal must contain) for each way a path is refused; makes the files."""
    outside = write_nb(tmp_path / "outside" / "secret.ipynb")
    (root / "escape.ipynb").symlink_to(outside)
    (root / "notes.txt").write_text("hello")
    (root / "broken.ipynb").write_text("{not json")
    (root / "v3.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    bad_cells = notebook()
    bad_cells["cells"][0]["cell_type"] = "nonsense"
    (root / "invalid.ipynb").write_text(json.dumps(bad_cells))
    with open(root / "huge.py", "wb") as f:
        f.truncate(16 * 2**20 + 1)  # sparse: no 16 MiB written
    (root / "folder.ipynb").mkdir()
    return [
        ("../../etc/passwd", "'..'"),
        ("../outside/secret.ipynb", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/train.ipynb", "absolute"),
        ("escape.ipynb", "outside the server's root folder"),
        ("notes.txt", "not a notebook (.ipynb) or a Python script (.py)"),
        ("broken.ipynb", "not a valid notebook"),
        ("v3.ipynb", "not a valid notebook"),
        ("invalid.ipynb", "not a valid notebook"),
        ("huge.py", "larger than the 16 MiB"),
        ("missing.ipynb", "does not exist"),
        ("folder.ipynb", "not a file"),
        ("a//b.ipynb", "empty or '.' segment"),
        ("a\\b.ipynb", "backslashes"),
        ("", "must name a notebook"),
    ]


def test_refused_paths_are_400_and_reach_nothing(call, service, jp_root_dir, tmp_path):
    for path, words in _refusals(jp_root_dir, tmp_path):
        body = {"path": path, "parameters": {}, "max_runtime_s": 600}
        status, answer = call("POST", "jobs", body)
        assert status == 400, (path, answer)
        assert answer["field"] == "path", (path, answer)
        assert words in answer["message"], (path, answer)
        status, answer = call("GET", "jobs/parameters", path=path)
        assert status == 400, (path, answer)
        assert words in answer["message"], (path, answer)
        assert service.calls() == [], path  # nothing reached the service


def test_bad_bodies_are_400_and_reach_nothing(call, service, jp_root_dir):
    write_nb(jp_root_dir / "train.ipynb")
    for body, field in [
        ({"path": "train.ipynb", "parameters": {}, "secret": 1}, "secret"),
        ({"path": "train.ipynb", "parameters": []}, "parameters"),
        ({"path": "train.ipynb", "parameters": {}, "gpus": True}, "gpus"),
        ({"path": "train.ipynb", "parameters": {}, "max_runtime_s": "1h"}, "max_runtime_s"),
        ({"parameters": {}}, "path"),
        ({"path": "train.ipynb", "paused": True}, "paused"),
        ({"path": "train.ipynb", "parameters": {}, "tier": None}, "tier"),
        ({"path": "train.ipynb", "parameters": {}, "tier": 1}, "tier"),
        ({"path": "train.ipynb", "parameters": {}, "retry": [10]}, "retry"),
        ({"path": "train.ipynb", "parameters": {}, "retry": 10}, "retry"),
        ({"path": "train.ipynb", "parameters": {}, "retry": True}, "retry"),
        ("[1, 2]", "body"),
        ("{not json", "body"),
    ]:
        status, answer = call("POST", "jobs", body)
        assert (status, answer["field"]) == (400, field), (body, answer)
        # the service's error shape: "error", never "code"
        assert sorted(answer) == ["error", "field", "message", "status"], answer
        assert answer["error"] == "invalid"
    assert service.calls() == []


# -- submitting and reading through the stand-in --------------------------------------------


def test_submit_sends_the_snapshot_with_a_key_and_answers_the_job(call, service, jp_root_dir):
    nb = notebook()
    write_nb(jp_root_dir / "work" / "train.ipynb", nb)
    body = {"path": "work/train.ipynb", "parameters": {"epochs": 7}, "max_runtime_s": 3600,
            "profile": "gpu-1", "shape": {"kind": "mig", "profile": "1g.10gb"}, "name": None}  # fmt: skip
    status, job = call("POST", "jobs", body)
    assert (status, job) == (201, LOCAL)
    assert call.headers["Location"].endswith(f"/gpuhub/api/v1/jobs/{LOCAL['id']}")
    [sent] = [r for r in service.requests if r["path"] == "jobs"]
    assert sent["method"] == "POST"
    assert sent["headers"]["Authorization"] == "token secret"
    assert sent["headers"]["Idempotency-Key"]
    assert sent["body"] == {
        "path": "work/train.ipynb", "notebook": nb, "parameters": {"epochs": 7},
        "max_runtime_s": 3600, "profile": "gpu-1",
        "shape": {"kind": "mig", "profile": "1g.10gb"},
    }  # fmt: skip

    # the snapshot: a later edit changes nothing that was sent
    write_nb(jp_root_dir / "work" / "train.ipynb", notebook(body="print('edited')"))
    assert sent["body"]["notebook"] == nb

    (jp_root_dir / "run.py").write_text("print('hi')\n")
    status, _ = call("POST", "jobs", {"path": "run.py", "parameters": {}})
    assert status == 201
    assert service.requests[-1]["body"] == {"path": "run.py", "script": "print('hi')\n",
                                            "parameters": {}}  # fmt: skip


def test_a_spot_job_with_retries_passes_through(call, service, jp_root_dir):
    """``tier`` and ``retry`` go to the service as they came (it checks their values, and
    its refusal passes through naming the field); a null ``retry`` is left out (the
    service's defaults)."""
    (jp_root_dir / "train.py").write_text("from gpuhub import checkpoint\n")
    body = {"path": "train.py", "parameters": {}, "tier": "spot", "retry": {"preempted": 20}}
    status, _ = call("POST", "jobs", body)
    assert status == 201
    sent = service.requests[-1]["body"]
    assert (sent["tier"], sent["retry"]) == ("spot", {"preempted": 20})
    status, _ = call("POST", "jobs", {**body, "tier": "guaranteed", "retry": None})
    assert status == 201
    sent = service.requests[-1]["body"]
    assert sent["tier"] == "guaranteed" and "retry" not in sent
    # a recurring one carries them to its definition
    status, _ = call("POST", "jobs", {**body, "schedule": "0 2 * * *"})
    assert status == 201
    sent = service.requests[-1]
    assert sent["path"] == "job-definitions"
    assert (sent["body"]["tier"], sent["body"]["retry"]) == ("spot", {"preempted": 20})
    service.answers[("POST", "jobs")] = (
        400, {"status": 400, "error": "invalid", "field": "tier",
              "message": "This site offers no spot capacity."},
    )  # fmt: skip
    status, answer = call("POST", "jobs", body)
    assert (status, answer["field"]) == (400, "tier"), answer


def test_a_root_inside_the_home_sends_paths_from_the_home(call, service, jp_root_dir, monkeypatch):
    """The service takes paths relative to the home; the answers carry them relative to
    the server's root again (None where outside it)."""
    monkeypatch.setenv("HOME", str(jp_root_dir.parent))
    prefix = jp_root_dir.name
    write_nb(jp_root_dir / "train.ipynb")
    service.answers[("POST", "jobs")] = (
        201, {**JOB, "path": f"{prefix}/train.ipynb", "folder": "gpuhub-jobs/12-train",
              "output_notebook": "gpuhub-jobs/12-train/train.ipynb"},
    )  # fmt: skip
    status, job = call("POST", "jobs", {"path": "train.ipynb", "parameters": {}})
    assert status == 201
    assert service.requests[-1]["body"]["path"] == f"{prefix}/train.ipynb"
    assert job["local"] == {"path": "train.ipynb", "output_notebook": None, "folder": None}


def test_a_schedule_makes_a_definition(call, service, jp_root_dir):
    write_nb(jp_root_dir / "nightly.ipynb")
    body = {"path": "nightly.ipynb", "parameters": {}, "schedule": "0 2 * * *", "paused": False}
    status, answer = call("POST", "jobs", body)
    assert (status, answer) == (201, {"id": 3, "schedule": "0 2 * * *"})
    assert call.headers["Location"].endswith("/gpuhub/api/v1/job-definitions/3")
    sent = service.requests[-1]
    assert (sent["method"], sent["path"]) == ("POST", "job-definitions")
    assert sent["body"]["schedule"] == "0 2 * * *"
    assert sent["body"]["paused"] is False
    assert call("GET", "job-definitions") == (200, {"definitions": []})
    assert call("DELETE", "job-definitions/3") == (204, None)


def test_list_get_cancel_and_log_are_proxied(call, service):
    assert call("GET", "jobs") == (200, {"jobs": [LOCAL]})
    assert call("GET", "jobs/12") == (200, LOCAL)
    assert call("DELETE", "jobs/12") == (200, {**LOCAL, "status": "cancelled"})
    status, log = call("GET", "jobs/12/log", offset="5", limit="10")
    assert (status, log["text"]) == (200, "step")
    assert service.requests[-1]["query"] == {"offset": [b"5"], "limit": [b"10"]}
    assert call("GET", "jobs/12/log", offset="-1")[0] == 400
    assert service.calls() == [
        ("GET", "jobs"), ("GET", "jobs/12"), ("DELETE", "jobs/12"), ("GET", "jobs/12/log"),
    ]  # fmt: skip


def test_service_errors_pass_through_with_their_status(call, service, jp_root_dir):
    write_nb(jp_root_dir / "train.ipynb")
    service.answers[("POST", "jobs")] = (
        400,
        {"status": 400, "error": "invalid", "field": "parameters",
         "message": "parameters: 'x y' is not a Python identifier."},
    )  # fmt: skip
    status, answer = call("POST", "jobs", {"path": "train.ipynb", "parameters": {"x y": 1}})
    assert status == 400
    assert answer["message"] == "parameters: 'x y' is not a Python identifier."
    assert answer["field"] == "parameters"
    status, answer = call("GET", "jobs/99")
    assert (status, answer["message"]) == (404, "No jobs/99.")
    service.answers[("GET", "jobs")] = (503, "not json")
    status, answer = call("GET", "jobs")
    assert status == 502
    assert answer["message"].startswith("The gpuhub service did not answer")


@pytest.mark.parametrize("env", ["none"], indirect=True)
def test_without_a_service_it_says_so(call, jp_root_dir):
    write_nb(jp_root_dir / "train.ipynb")
    status, answer = call("POST", "jobs", {"path": "train.ipynb", "parameters": {}})
    assert (status, answer["error"]) == (503, "no_service")
    assert "GPUHUB_SERVICE_URL is not set" in answer["message"]
    status, answer = call("GET", "jobs/parameters", path="train.ipynb")
    assert status == 200
    assert [p["name"] for p in answer["parameters"]][:2] == ["epochs", "lr"]
    assert "GPUHUB_SERVICE_URL is not set" in answer["defaults"]["error"]


# -- parameters and the dialog's defaults -------------------------------------------------------


def test_the_parameters_cell_is_read_into_typed_values(call, service, jp_root_dir):
    write_nb(jp_root_dir / "exp" / "train.ipynb")
    status, answer = call("GET", "jobs/parameters", path="exp/train.ipynb")
    assert status == 200, answer
    assert answer["kind"] == "notebook"
    assert answer["name"] == "train"
    assert answer["has_parameters_cell"] is True
    got = {p["name"]: (p["value"], p["type"]) for p in answer["parameters"]}
    assert got == {
        "epochs": (5, "int"),  # the last assignment wins
        "lr": (0.001, "float"),
        "use_amp": (True, "bool"),
        "run_name": ("baseline", "str"),
        "layers": ([64, 32], "list"),
        "opts": ({"a": 1, "b": [1, 2]}, "dict"),
        "seed": (None, "None"),
        "neg": (-2, "int"),
        "shape": ([2, 3], "list"),
    }
    assert [p["name"] for p in answer["parameters"]][0] == "epochs"  # in the cell's order
    assert answer["unsupported"] == ["data"]
    help_of = {p["name"]: p["help"] for p in answer["parameters"]}
    assert help_of["epochs"] is None and help_of["lr"] is None
    assert parse_parameters("epochs = 3  # passes over the data\n")[0][0]["help"] == (
        "passes over the data"
    )

    d = answer["defaults"]
    assert d["profile"] == "gpu-1"
    assert d["current_shape"] == {"kind": "gpu", "count": 1}
    assert d["queue_length"] == 3
    assert d["error"] is None
    # the service's own answer (me/options, asked for this server's profile), with which
    # shape this server has: the extension derives no shape rule and no limit of its own
    assert d["runtime"] == {"min": 60, "default": 7200, "max": 86400}
    assert d["schedules"] is True
    assert d["spot"] == {"enabled": True, "discount": 0.3, "grace_s": 120, "min_runtime_s": 600}
    assert [s["label"] for s in d["shapes"]] == ["gpu", "gpu", "shared"]
    assert [s["current"] for s in d["shapes"]] == [True, False, False]
    assert [s["outcome"] for s in d["shapes"]] == ["grant", "queue", "refuse"]
    assert d["shapes"][0]["models_text"] == "H100-80GB"
    [asked] = [r for r in service.requests if r["path"] == "me/options"]
    assert asked["query"] == {"profile": [b"gpu-1"]}
    assert not [r for r in service.requests if r["method"] != "GET"]


@pytest.mark.parametrize("env", ["cpu"], indirect=True)
def test_a_cpu_only_server_sends_its_jobs_to_a_gpu_profile(call, service, jp_root_dir):
    """A server without a GPU (its profile has none) pre-fills the dialog with the profile
    a job runs on: the default GPU profile (here none is the default: the first)."""
    profiles = [
        {"name": "cpu", "shape": None, "default": True},
        {"name": "duo", "shape": {"kind": "gpu", "count": 2}, "default": False},
        {"name": "gpu-1", "shape": {"kind": "gpu", "count": 1}, "default": False},
    ]
    service.answers[("GET", "me/options")] = (200, {**OPTIONS, "profiles": profiles})
    write_nb(jp_root_dir / "train.ipynb")
    status, answer = call("GET", "jobs/parameters", path="train.ipynb")
    assert status == 200, answer
    d = answer["defaults"]
    assert (d["profile"], d["server_profile"], d["no_gpu"]) == ("duo", "cpu", True)
    assert d["current_shape"] == {"kind": "gpu", "count": 2} and d["error"] is None
    assert [s["current"] for s in d["shapes"]] == [False, True, False]
    # the shapes are previewed as a job of the GPU profile asks for them
    asked = [r["query"] for r in service.requests if r["path"] == "me/options"]
    assert asked == [{"profile": [b"cpu"]}, {"profile": [b"duo"]}]
    assert not [r for r in service.requests if r["path"].startswith("leases/")]
    # the GPU routes say "no GPU", which is not a missing lease
    status, devices = call("GET", "devices")
    assert (status, devices["lease_id"], devices["devices"]) == (200, None, [])
    assert (devices["no_gpu"], devices["profile"]) == (True, "cpu")
    status, lease = call("GET", "lease")
    assert lease["message"] == "This server has no GPU: its profile (cpu) is CPU only."
    status, kept = call("POST", "lease/keep", {"seconds": 60})
    assert status == 409 and "has no GPU" in kept["message"]


def test_a_notebook_without_parameters_and_a_script(call, jp_root_dir):
    write_nb(jp_root_dir / "plain.ipynb", notebook(params=None))
    (jp_root_dir / "train.py").write_text("epochs = 3\n")
    _, answer = call("GET", "jobs/parameters", path="plain.ipynb")
    assert (answer["has_parameters_cell"], answer["parameters"]) == (False, [])
    _, answer = call("GET", "jobs/parameters", path="train.py")
    assert (answer["kind"], answer["parameters"]) == ("script", [])


def test_home_prefix(tmp_path):
    (tmp_path / "home" / "work").mkdir(parents=True)
    home = str(tmp_path / "home")
    assert home_prefix(home, home) == ""
    assert home_prefix(str(tmp_path / "home" / "work"), home) == "work"
    assert home_prefix(str(tmp_path), home) == ""  # not inside the home: as is


# -- through the real gpuhub service ------------------------------------------------------------


@pytest.mark.hub
@pytest.mark.timeout(240)
@pytest.mark.parametrize("env", ["real"], indirect=True)
def test_a_notebook_runs_through_the_real_service(call, run, jp_root_dir):
    """Submitted through the extension, the job runs to succeeded with the parameter the
    request gave, and its log and executed notebook are there; a refused path created
    nothing."""
    write_nb(jp_root_dir / "nb" / "train.ipynb", notebook(body="print('epochs', epochs)"))

    status, answer = call("POST", "jobs", {"path": "../../etc/passwd", "parameters": {}})
    assert status == 400
    status, listed = call("GET", "jobs")
    assert (status, listed["jobs"]) == (200, [])  # nothing was created

    status, params = call("GET", "jobs/parameters", path="nb/train.ipynb")
    assert status == 200, params
    assert params["defaults"]["error"] is None, params["defaults"]
    assert params["defaults"]["shapes"], params["defaults"]

    body = {"path": "nb/train.ipynb", "parameters": {"epochs": 11}, "max_runtime_s": 600,
            "shape": {"kind": "gpu", "count": 1}}  # fmt: skip
    status, job = call("POST", "jobs", body)
    assert status == 201, job
    assert job["parameters"] == {"epochs": 11}
    deadline = time.monotonic() + 180
    while job["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
        assert time.monotonic() < deadline, job
        run(asyncio.sleep(0.5))
        status, job = call("GET", f"jobs/{job['id']}")
        assert status == 200, job
    status, log = call("GET", f"jobs/{job['id']}/log", offset="0")
    assert job["status"] == "succeeded", (job, log)
    assert "epochs 11" in log["text"]
    assert job["output_notebook"]
    status, listed = call("GET", "jobs")
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
