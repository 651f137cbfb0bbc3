"""The documentation builds cleanly and says what the code does.

* the Sphinx build passes with warnings as errors;
* ``docs/reference/openapi.yaml`` describes exactly the routes and methods the service
  serves, and its schemas match the request models and the answers the scheduler builds;
* the generated configuration and CLI references name every setting and every command.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gpuhub.cli.main import build_parser
from gpuhub.inventory import FileInventory, NvmlInventory, SimulatedInventory
from gpuhub.inventory.slurm import SlurmInventory
from gpuhub.jobs.docker import DockerExecutor
from gpuhub.jobs.local import LocalProcessExecutor
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.slurm import SlurmExecutor
from gpuhub.scheduler.core import SchedulerError
from gpuhub.scheduler.quota import QuotaSpec
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus
from gpuhub.service.app import GpuhubService
from gpuhub.service.base import NotFoundHandler
from gpuhub.service.console import ConsoleHandler, ConsoleStaticHandler
from gpuhub.service.models import LeaseRequest
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.local import GPULocalProcessSpawner
from gpuhub.spawners.mixin import GPUSpawnerMixin
from gpuhub.spawners.slurm import GPUSlurmSpawner
from jsonschema import Draft202012Validator
from jupyter_gpuhub.app import GpuhubExtension
from tornado import web

from tests.support.paths import DOCS, OPENAPI, REPO

PREFIX = "/services/gpuhub"
METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
CONFIG_CLASSES = (
    GpuhubService,
    SimulatedInventory,
    NvmlInventory,
    FileInventory,
    SlurmInventory,
    GPUSpawnerMixin,
    GPUDockerSpawner,
    GPULocalProcessSpawner,
    GPUSlurmSpawner,
    JobManager,
    LocalProcessExecutor,
    DockerExecutor,
    SlurmExecutor,
    GpuhubExtension,
)
BUILD_TIMEOUT = 240


# -- the build -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory) -> Path:
    """The HTML docs, built once for this module with warnings as errors."""
    out = tmp_path_factory.mktemp("docs-html")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)]
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"sphinx-build took longer than {BUILD_TIMEOUT}s:\n{e.stderr or ''}")
    if proc.returncode != 0:
        pytest.fail(
            f"sphinx-build failed ({proc.returncode}):\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
        )
    return out


def test_docs_build_without_warnings(built_docs: Path) -> None:
    for page in (
        "index",
        "tutorial/first-steps",
        "how-to/quotas",
        "how-to/authentication",
        "how-to/inventory",
        "how-to/postgresql",
        "how-to/metrics",
        "reference/rest-api",
        "reference/configuration",
        "reference/cli",
        "explanation/architecture",
        "explanation/simulated",
    ):
        assert (built_docs / f"{page}.html").is_file(), page
    assert list(built_docs.glob("_downloads/*/openapi.yaml")), "openapi.yaml is not downloadable"


def test_configuration_reference_names_every_setting(built_docs: Path) -> None:
    html = (built_docs / "reference" / "configuration.html").read_text(encoding="utf-8")
    missing = [
        f"{cls.__name__}.{name}"
        for cls in CONFIG_CLASSES
        for name in cls.class_traits(config=True)
        if f"{cls.__name__}.{name}" not in html
    ]
    assert not missing, f"not in the configuration reference: {missing}"
    hub_config = (REPO / "hub_config" / "jupyterhub_config.py").read_text(encoding="utf-8")
    switches = sorted(set(re.findall(r"\benv\(\s*\"(GPUHUB_[A-Z_]+)\"", hub_config)))
    assert switches, "no GPUHUB_* switches found in the hub configuration"
    undocumented = [s for s in switches if s not in html]
    assert not undocumented, f"GPUHUB_* switches not documented: {undocumented}"


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*path, name))


def test_cli_reference_shows_every_command(built_docs: Path) -> None:
    html = (built_docs / "reference" / "cli.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    for path in _command_paths(build_parser()):
        usage = " ".join(("usage: gpuhub", *path))
        assert usage in text, f"no --help of {' '.join(('gpuhub', *path))} in the CLI reference"


# -- the OpenAPI description -----------------------------------------------------------


@pytest.fixture(scope="module")
def openapi() -> dict:
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    return spec


@pytest.fixture
def service(tmp_path):
    """The gpuhub service on a simulated pool with a SQLite database in ``tmp_path``."""
    app = GpuhubService()
    app.initialize(
        [
            "--GpuhubService.inventory_class=simulated",
            f"--GpuhubService.db_url=sqlite:///{tmp_path}/x.sqlite",
            f"--GpuhubService.service_prefix={PREFIX}/",
        ]
    )
    yield app
    app.scheduler.engine.dispose()


def _paths_of(pattern: str) -> list[str]:
    """OpenAPI path templates (parameters as ``{}``) matched by a tornado route regex."""
    pattern = pattern.removesuffix("$").removeprefix(PREFIX)
    pattern = pattern.removesuffix("/?")
    paths = [""]
    for literal, group in re.findall(r"([^()]*)(?:\(([^()]*)\))?", pattern):
        choices = [literal]
        if group and re.fullmatch(r"[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)+", group):
            choices = [literal + alt for alt in group.split("|")]
        elif group:
            choices = [literal + "{}"]
        paths = [p + c for p in paths for c in choices]
    return paths


def _served(app: web.Application) -> set[tuple[str, str]]:
    """(path template, method) of every API route the service answers itself (the console's
    HTML pages and static files are no API: docs/how-to/console.md describes them)."""
    skip = (NotFoundHandler, web.RedirectHandler, ConsoleHandler, ConsoleStaticHandler)
    served = set()
    for rule in app.wildcard_router.rules:
        handler = rule.target
        pattern = rule.matcher.regex.pattern
        if issubclass(handler, skip) or pattern.endswith("oauth_callback$"):
            continue
        methods = [m for m in METHODS if getattr(handler, m) is not getattr(web.RequestHandler, m)]
        assert methods, f"{handler.__name__} implements no method"
        served |= {(p, m) for p in _paths_of(pattern) for m in methods}
    return served


def _documented(spec: dict) -> set[tuple[str, str]]:
    return {
        (re.sub(r"\{[^}]+\}", "{}", path), m)
        for path, item in spec["paths"].items()
        for m in METHODS
        if m in item
    }


def test_openapi_describes_every_route_and_only_those(openapi: dict, service) -> None:
    served = _served(service.make_app())
    documented = _documented(openapi)
    assert ("/api/v1/leases/{}", "delete") in served  # the route walk itself works
    assert served - documented == set(), "served but not in openapi.yaml"
    assert documented - served == set(), "in openapi.yaml but not served"


def test_openapi_operations_are_complete(openapi: dict) -> None:
    refs = set(re.findall(r"#/components/(\w+)/(\w+)", OPENAPI.read_text(encoding="utf-8")))
    for kind, name in refs:
        assert name in openapi["components"][kind], f"dangling $ref {kind}/{name}"
    for path, item in openapi["paths"].items():
        for m in METHODS:
            if m not in item:
                continue
            op = item[m]
            assert op.get("summary"), f"{m} {path} has no summary"
            codes = set(op["responses"])
            assert codes & {"200", "201", "204"}, f"{m} {path} has no success response"
            if op.get("security", openapi["security"]):
                assert "401" in codes, f"{m} {path} needs auth but documents no 401"
            if path.startswith("/api/v1/quotas/") and m in ("put", "delete"):
                assert "403" in codes


def _null_keys(node, path: str = ""):
    """Keys with no value outside examples and defaults: usually a stray comma in YAML flow."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("example", "examples"):
                continue
            if value is None and key != "default":
                yield f"{path}/{key}"
            yield from _null_keys(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _null_keys(value, f"{path}[{i}]")


def test_openapi_has_no_stray_keys(openapi: dict) -> None:
    assert list(_null_keys(openapi)) == []
    for name, schema in openapi["components"]["schemas"].items():
        for prop, sub in schema.get("properties", {}).items():
            assert isinstance(sub, dict), f"{name}.{prop}"
            unknown = set(sub) - {
                "type", "description", "format", "enum", "items", "const", "oneOf", "$ref",
                "default", "minimum", "maximum", "exclusiveMinimum", "pattern", "maxLength",
                "minLength",
            }  # fmt: skip
            assert not unknown, f"{name}.{prop} has unknown keywords {unknown}"


def _props(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]["properties"]


def test_openapi_request_schemas_match_the_models(openapi: dict) -> None:
    assert set(_props(openapi, "QuotaSpec")) == set(QuotaSpec.model_fields)
    assert set(_props(openapi, "LeaseRequest")) == set(LeaseRequest.model_fields)
    for schema, model in (
        ("GpuShape", WholeGpus),
        ("MigShape", MigSlice),
        ("SharedShape", SharedGpu),
    ):
        assert set(_props(openapi, schema)) == set(model.model_fields), schema
        kind = model.model_fields["kind"].annotation.__args__[0]
        assert _props(openapi, schema)["kind"]["const"] == kind
        assert openapi["components"]["schemas"]["Shape"]["discriminator"]["mapping"][kind].endswith(
            schema
        )
    quota = _props(openapi, "QuotaSpec")
    for name, field in QuotaSpec.model_fields.items():
        assert quota[name].get("default") == field.default, f"QuotaSpec.{name} default"
    assert openapi["components"]["schemas"]["QuotaSpec"]["additionalProperties"] is False
    assert quota["period"]["enum"] == list(QuotaSpec.model_fields["period"].annotation.__args__)


def test_openapi_error_codes_cover_the_scheduler_errors(openapi: dict) -> None:
    codes = set(openapi["components"]["schemas"]["Error"]["properties"]["error"]["enum"])

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in (SchedulerError, *subclasses(SchedulerError)):
        assert cls.code in codes, f"{cls.__name__}.code {cls.code!r} is not documented"
    assert {"unauthenticated", "http"} <= codes


def _validator(spec: dict, name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return Draft202012Validator(schema)


def test_openapi_schemas_match_what_the_scheduler_answers(openapi: dict, service) -> None:
    s = service.scheduler
    lease_schema = _validator(openapi, "Lease")
    status_schema = _validator(openapi, "QuotaStatus")
    usage_schema = _validator(openapi, "UsageRow")

    def view(lease):
        return lease.to_dict(s.clock(), s.position(lease))

    leases = [
        s.request(user="ana", user_groups=[], shape=WholeGpus(count=2, model="H100")),
        s.request(user="ana", user_groups=[], shape=MigSlice(kind="mig", profile="1g.5gb")),
        s.request(user="bo", user_groups=["cs101"], shape=SharedGpu(kind="shared"), hours=2),
        s.request(user="bo", user_groups=[], shape=WholeGpus(count=2), label="server:bo/"),
        s.request(user="cy", user_groups=[], shape=WholeGpus(count=1)),
    ]
    assert [x.status for x in leases] == ["active", "active", "active", "active", "queued"]
    answers = [view(x) for x in leases]
    answers.append(view(s.release(leases[1].id)))  # released
    answers.append(view(s.release(leases[4].id)))  # cancelled while queued
    for answer in answers:
        errors = sorted(lease_schema.iter_errors(answer), key=str)
        assert not errors, f"{answer['status']} lease: {errors[0]}"
    assert answers[4]["position"] == 1

    spec = QuotaSpec(max_units=2, gpu_hours=100, period="term", term_start="2026-09-01",
                     term_end="2027-01-31", allowed_shapes=["mig:*"], per_user_max_units=0.5)  # fmt: skip
    s.set_quota("group", "cs101", spec, by="admin")
    s.set_quota("user", "ana", QuotaSpec(max_units=0.5), by="admin")
    for status in (
        s.quota_status("group", "cs101", spec),
        s.quota_status("user", "ana", s.quota_for_user("ana")),
        s.quota_status("user", "nobody", None),
    ):
        errors = list(status_schema.iter_errors(status))
        assert not errors, errors[0]
    rows = s.usage(0, s.clock() + 1)
    assert rows
    for row in rows:
        assert not list(usage_schema.iter_errors(row))
