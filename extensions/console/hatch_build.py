"""Hatch build hook: gpuhub's web console (this folder) bundled into the wheel.

``npm run build`` (a type check, then esbuild) writes ``spawner/gpuhub/service/static/
console.{js,js.map,css}``, which are gitignored and so listed here as build artifacts.
The bundle is rebuilt when it is missing or older than its sources and npm is at hand;
an existing bundle is used as it is where npm is not (the hub image's build, whose
context carries the bundle scripts/setup built). A standard (non-editable) build without
a bundle and without npm fails, naming what is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

HERE = Path(__file__).resolve().parent
STATIC = Path("spawner/gpuhub/service/static")
OUTPUTS = ("console.js", "console.js.map", "console.css")
SOURCES = ("src", "style", "package.json", "package-lock.json", "tsconfig.json")
#: The API's types, generated from docs/reference/openapi.yaml and shared with the
#: JupyterLab extension (relative to the console's folder).
SHARED_SOURCES = ("../api-types/src",)


def newest_source(root: Path = HERE) -> float:
    """The latest modification time of the console's sources."""
    times = []
    for name in SOURCES + SHARED_SOURCES:
        p = root / name
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        times += [f.stat().st_mtime for f in files]
    return max(times, default=0.0)


def build(root: Path = HERE) -> None:
    """``npm ci`` (when node_modules is missing or older than the lockfile), then
    ``npm run build``."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: it builds gpuhub's web console (extensions/console)")
    modules = root / "node_modules" / ".package-lock.json"
    lock = root / "package-lock.json"
    if not modules.exists() or modules.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
    subprocess.run([npm, "run", "build"], cwd=root, check=True)


class ConsoleBuildHook(BuildHookInterface):
    """Builds the console's bundle when needed and ships it in the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Build (or reuse) the bundle; list it as artifacts of the wheel."""
        if self.target_name not in ("wheel", "sdist"):
            return
        static = Path(self.root) / STATIC
        outputs = [static / name for name in OUTPUTS]
        missing = [p for p in outputs if not p.exists()]
        stale = not missing and min(p.stat().st_mtime for p in outputs) < newest_source()
        if missing or stale:
            try:
                build()
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                if missing and version != "editable":
                    names = ", ".join(str(p) for p in missing)
                    raise RuntimeError(f"gpuhub's web console is not built ({names}): {e}") from e
                warnings.warn(f"gpuhub's web console was not rebuilt: {e}", stacklevel=1)
        build_data.setdefault("artifacts", []).extend(
            f"/{(STATIC / name).as_posix()}" for name in OUTPUTS
        )
