"""The web console's sources agree with what the service serves and what the wheel ships.

Fast checks without a hub or a browser (tests/test_console_browser.py drives the pages):
every page the service routes has a module the bundle registers, the bundle is built and
current, nothing in it is fetched from elsewhere, and the build is wired into the wheel.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from gpuhub.service.console import ADMIN_PAGES, CSP, STATIC_DIR, USER_PAGES, console_routes

from tests.support.hub import REPO

CONSOLE = REPO / "extensions" / "console"
OUTPUTS = ("console.js", "console.js.map", "console.css")


def _sources() -> list[Path]:
    files = [CONSOLE / n for n in ("package.json", "package-lock.json", "tsconfig.json")]
    shared = sorted((REPO / "extensions" / "api-types" / "src").glob("*.ts"))  # the API's types
    return (
        files
        + sorted((CONSOLE / "src").rglob("*.ts"))
        + shared
        + [CONSOLE / "style" / "console.css"]
    )


def test_every_routed_page_has_a_registered_module() -> None:
    index = (CONSOLE / "src" / "index.ts").read_text()
    for page in ["me", *ADMIN_PAGES, *USER_PAGES]:
        assert (CONSOLE / "src" / "pages" / f"{page}.ts").exists(), page
        assert f"import {{ page as {page} }} from './pages/{page}';" in index, page
    registered = re.search(r"PAGES: Record<string, Page> = \{([^}]*)\}", index).group(1)
    assert {p.strip() for p in registered.split(",")} == {"me", *ADMIN_PAGES, *USER_PAGES}


def test_routes_cover_the_home_the_admin_pages_and_static_files() -> None:
    routes = console_routes("/services/gpuhub/")
    paths = [r[0] for r in routes]
    assert paths[0] == "/services/gpuhub/?"
    pages = [*ADMIN_PAGES, *USER_PAGES]
    assert [f"/services/gpuhub/console/{p}" for p in pages] == paths[1:-1]
    # admin pages refuse others; everyone's pages (statements) do not
    admin_only = {r[2]["page"]: r[2].get("admin_only", False) for r in routes[1:-1]}
    assert admin_only == {**dict.fromkeys(ADMIN_PAGES, True), **dict.fromkeys(USER_PAGES, False)}
    assert paths[-1] == "/services/gpuhub/static/(.*)"
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP


def test_the_bundle_is_built_from_the_current_sources() -> None:
    """scripts/setup and the wheel build write it; run `npm run build` in extensions/console
    after changing its sources."""
    for name in OUTPUTS:
        assert (STATIC_DIR / name).exists(), f"{name} is missing: npm run build in {CONSOLE}"
    built = min((STATIC_DIR / n).stat().st_mtime for n in OUTPUTS)
    stale = [str(p.relative_to(REPO)) for p in _sources() if p.stat().st_mtime > built]
    assert not stale, f"changed since the bundle was built (npm run build): {stale}"
    assert (STATIC_DIR / "console.css").read_text() == (CONSOLE / "style/console.css").read_text()


def test_nothing_is_fetched_from_elsewhere() -> None:
    """Chart.js is bundled; the only URLs in the bundle are in its licence comments."""
    js = (STATIC_DIR / "console.js").read_text()
    assert "Chart" in js and "sourceMappingURL=console.js.map" in js
    urls = set(re.findall(r"https?://[^\s\"'`)]+", js))
    assert urls <= {"https://www.chartjs.org", "https://github.com/kurkle/color#readme"}, urls
    for src in (CONSOLE / "src").rglob("*.ts"):
        assert not re.search(r"https?://", src.read_text()), src


def test_the_wheel_build_and_the_lockfile_carry_the_console() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    hooks = pyproject["tool"]["hatch"]["build"]["hooks"]
    assert hooks["custom"]["path"] == "extensions/console/hatch_build.py"
    sdist = pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["artifacts"]
    assert "spawner/gpuhub/service/static/console.*" in sdist
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for name in OUTPUTS:
        assert f"spawner/gpuhub/service/static/{name}" in ignored
    package = json.loads((CONSOLE / "package.json").read_text())
    lock = json.loads((CONSOLE / "package-lock.json").read_text())
    assert set(package["dependencies"]) == {"chart.js"}
    assert {"esbuild", "typescript"} <= set(package["devDependencies"])
    for name in ("chart.js", "esbuild", "typescript"):
        assert f"node_modules/{name}" in lock["packages"], name
    assert "tsc --noEmit" in package["scripts"]["check"]
    assert (
        "--minify" in package["scripts"]["bundle"] and "--sourcemap" in package["scripts"]["bundle"]
    )
