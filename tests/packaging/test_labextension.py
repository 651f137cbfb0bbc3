"""The JupyterLab front end ships inside gpuhub's wheel and installs cleanly.

The wheel is built offline from this checkout (``--no-build-isolation``; the labextension is
prebuilt by scripts/setup, so the hatch-jupyter-builder hook skips npm) and installed with
``--no-deps`` into a fresh virtual environment whose dependencies come from the test
environment's site-packages; only the fresh environment's own ``share/jupyter`` is searched, so
what ``jupyter labextension list`` finds there came from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO

ROOT = REPO
SOURCE = ROOT / "extensions" / "labextension"
BUILT = ROOT / "extensions" / "jupyter_gpuhub" / "labextension"
PACKAGE = json.loads((SOURCE / "package.json").read_text())
NAME = PACKAGE["name"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.timeout(240)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{cmd[:4]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gpuhub's wheel, built from this checkout without network."""
    if not (BUILT / "package.json").exists():
        pytest.fail(f"{BUILT} is not built; scripts/setup builds it (npm ci, npm run build:prod)")
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-w", str(out), str(ROOT)]
    )
    [whl] = out.glob("gpuhub-*.whl")
    return whl


@pytest.fixture(scope="module")
def clean_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A fresh venv with the wheel installed (--no-deps), and an environment to run it in."""
    tmp = tmp_path_factory.mktemp("clean")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    # A plain path line: the test venv's packages are importable, but its own .pth files
    # (the editable gpuhub) are not processed, so gpuhub and jupyter_gpuhub come from the wheel.
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        HOME=str(tmp / "home"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_PLATFORM_DIRS="1",
        PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
    )
    return venv, env


def test_sources_agree_with_the_packaging() -> None:
    """package.json, the settings schema and the build output name the same extension."""
    assert PACKAGE["jupyterlab"]["extension"] is True
    assert (SOURCE / PACKAGE["jupyterlab"]["outputDir"]).resolve() == BUILT
    assert (SOURCE / "package-lock.json").exists(), "the npm lockfile is committed"
    schema = json.loads((SOURCE / "schema" / "plugin.json").read_text())
    assert schema["properties"]["refreshRate"]["type"] == "integer"
    index = (SOURCE / "src" / "index.ts").read_text()
    assert f"'{NAME}:plugin'" in index, "the plugin id names the settings schema"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"share/jupyter/labextensions/{NAME}"' in pyproject


def test_wheel_contains_the_labextension_and_the_server_extension(wheel: Path) -> None:
    """The wheel holds the prebuilt labextension, its schema, the jupyter-config file and
    both Python packages."""
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/")[0] for n in names if ".data/" in n)
    share = f"{data}/data/share/jupyter/labextensions/{NAME}"
    built = json.loads(zipfile.ZipFile(wheel).read(f"{share}/package.json"))
    assert built["name"] == NAME
    remote = built["jupyterlab"]["_build"]["load"]
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", remote)
    assert f"{share}/{remote}" in names
    assert f"{share}/install.json" in names
    assert f"{share}/schemas/{NAME}/plugin.json" in names
    assert f"{data}/data/etc/jupyter/jupyter_server_config.d/jupyter_gpuhub.json" in names
    assert "jupyter_gpuhub/__init__.py" in names
    assert "gpuhub/__init__.py" in names
    # the web console's bundle, served by the gpuhub service (built at wheel build time)
    assert {f"gpuhub/service/static/console.{x}" for x in ("js", "css")} <= names
    # the build output lives only under share/, not inside the Python package
    assert not any(n.startswith("jupyter_gpuhub/labextension/") for n in names)


def test_clean_install_lists_the_labextension_enabled_and_ok(clean_env: tuple[Path, dict]) -> None:
    """`jupyter labextension list` in the fresh venv reports it enabled and OK."""
    venv, env = clean_env
    proc = _run([str(venv / "bin" / "python"), "-m", "jupyterlab.labextensions", "list"], env=env)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert f"{venv}/share/jupyter/labextensions" in out, out
    line = next((ln for ln in out.splitlines() if NAME in ln), "")
    assert "enabled" in line and "OK" in line and "(python, gpuhub)" in line, out


def test_clean_install_enables_the_server_extension(clean_env: tuple[Path, dict]) -> None:
    """`jupyter server extension list` in the fresh venv reports jupyter_gpuhub enabled, OK."""
    venv, env = clean_env
    cmd = [str(venv / "bin" / "python"), "-m", "jupyter_server.extension.serverextension", "list"]
    proc = _run(cmd, env=env)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert f"{venv}/etc/jupyter" in out, out
    assert re.search(r"jupyter_gpuhub\s+enabled", out), out
    assert re.search(r"jupyter_gpuhub\s+\S+\s+OK", out), out
