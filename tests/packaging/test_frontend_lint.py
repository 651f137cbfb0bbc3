"""The front ends keep JupyterLab's front-end habits: eslint and prettier pass.

``npm run lint:check`` (prettier --check, then eslint with no warnings allowed) runs in both
npm projects, the web console (extensions/console) and the JupyterLab extension
(extensions/labextension), with the tools their lockfiles pin. scripts/setup installs them
(npm ci); a checkout without node_modules skips, saying so. Run ``npm run lint`` in a
folder to format and fix what the check finds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(240)

PROJECTS = [REPO / "extensions" / "console", REPO / "extensions" / "labextension"]
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
