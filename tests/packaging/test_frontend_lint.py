"""The front ends keep JupyterLab's front-end habits: eslint and prettier pass, and the
REST API's types are generated once, from the API document, for both.

``npm run lint:check`` (prettier --check, then eslint with no warnings allowed) runs in both
npm projects, the web console (extensions/console) and the JupyterLab extension
(extensions/labextension), with the tools their lockfiles pin. scripts/setup installs them
(npm ci); a checkout without node_modules skips, saying so. Run ``npm run lint`` in a
folder to format and fix what the check finds.

The API's types (extensions/api-types/src/openapi.d.ts) are generated from
docs/reference/openapi.yaml by openapi-typescript (``npm run gen:api`` there) and imported
by both front ends; a file older than the document fails here, and so does one that
regenerating would change (where scripts/setup installed the generator).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(240)

PROJECTS = [REPO / "extensions" / "console", REPO / "extensions" / "labextension"]
API_TYPES = REPO / "extensions" / "api-types"
GENERATED = API_TYPES / "src" / "openapi.d.ts"
OPENAPI = REPO / "docs" / "reference" / "openapi.yaml"
#: Service answers the front ends once described by hand: now aliases of the schemas.
SCHEMA_NAMES = ("Lease", "QuotaStatus", "QuotaSpec", "Me", "Job", "Pool", "Reservation", "Shape")
#: The linters each project has, in its lockfile (and so in node_modules after npm ci).
LINTERS = ("eslint", "prettier", "typescript-eslint", "eslint-config-prettier")
REGISTRY = "https://registry.npmjs.org/"


def _ids(p: Path) -> str:
    return p.name


@pytest.mark.parametrize("project", PROJECTS, ids=_ids)
def test_lint_check_passes(project: Path) -> None:
    if not (project / "node_modules" / "eslint").is_dir():
        pytest.skip(f"{project.relative_to(REPO)}/node_modules is missing: scripts/setup (npm ci)")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is missing: it runs the front ends' linters")
    proc = subprocess.run(
        [npm, "run", "--silent", "lint:check"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, (
        f"npm run lint:check failed in {project.relative_to(REPO)} "
        f"(npm run lint formats and fixes):\n{proc.stdout}\n{proc.stderr}"
    )


@pytest.mark.parametrize("project", PROJECTS, ids=_ids)
def test_the_linters_come_from_the_npm_registry(project: Path) -> None:
    """The scripts are there, the lockfile pins the linters, and it downloads nothing from
    anywhere but the npm registry."""
    package = json.loads((project / "package.json").read_text())
    lock = json.loads((project / "package-lock.json").read_text())
    scripts = package["scripts"]
    assert "prettier --check" in scripts["prettier:check"]
    assert "eslint" in scripts["eslint:check"] and "--max-warnings=0" in scripts["eslint:check"]
    assert scripts["lint:check"] == "npm run prettier:check && npm run eslint:check"
    assert package["prettier"]["singleQuote"] is True
    assert (project / "eslint.config.mjs").exists()
    for name in LINTERS:
        assert name in package["devDependencies"], name
        assert f"node_modules/{name}" in lock["packages"], name
    for path, entry in lock["packages"].items():
        resolved = entry.get("resolved")
        if resolved is not None and not entry.get("link"):
            assert resolved.startswith(REGISTRY), f"{path} comes from {resolved}"


# -- the API's types, generated once for both front ends ----------------------------------


def test_the_api_types_are_generated_from_the_current_document() -> None:
    """The generated file's header names the sha256 of the document it was made from."""
    header = GENERATED.read_text()[:1000]
    recorded = re.search(r"openapi\.yaml \(sha256 ([0-9a-f]{64})\)", header)
    assert recorded, f"{GENERATED.relative_to(REPO)} has no generated header: npm run gen:api"
    current = hashlib.sha256(OPENAPI.read_bytes()).hexdigest()
    assert recorded.group(1) == current, (
        f"{GENERATED.relative_to(REPO)} is stale against {OPENAPI.relative_to(REPO)}: "
        "run `npm run gen:api` in extensions/api-types, then rebuild both front ends"
    )


def test_regenerating_the_api_types_changes_nothing() -> None:
    """openapi-typescript, as the lockfile pins it, writes exactly the committed file."""
    if not (API_TYPES / "node_modules" / "openapi-typescript").is_dir():
        pytest.skip("extensions/api-types/node_modules is missing: scripts/setup (npm ci)")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing: it runs the API types' generator")
    proc = subprocess.run(
        [node, "gen-api.mjs", "--stdout"],
        cwd=API_TYPES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == GENERATED.read_text(), (
        f"{GENERATED.relative_to(REPO)} differs from what `npm run gen:api` writes"
    )


def test_the_generator_is_pinned_and_both_front_ends_use_its_types() -> None:
    package = json.loads((API_TYPES / "package.json").read_text())
    lock = json.loads((API_TYPES / "package-lock.json").read_text())
    assert package["scripts"]["gen:api"] == "node gen-api.mjs"
    pinned = package["devDependencies"]["openapi-typescript"]  # an exact version
    assert lock["packages"]["node_modules/openapi-typescript"]["version"] == pinned
    for path, entry in lock["packages"].items():
        resolved = entry.get("resolved")
        if resolved is not None:
            assert resolved.startswith(REGISTRY), f"{path} comes from {resolved}"
    for project in PROJECTS:
        sources = {p: p.read_text() for p in (project / "src").rglob("*.ts")}
        users = [p for p, text in sources.items() if "from '../../api-types/src'" in text]
        assert users, f"{project.name} does not import extensions/api-types"
        for p, text in sources.items():
            for name in SCHEMA_NAMES:
                written = re.search(rf"\binterface I?{name}\b", text)
                assert not written, f"{p.relative_to(REPO)} writes {name} by hand: alias the schema"
