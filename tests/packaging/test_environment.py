"""The environment ``scripts/setup`` makes has nothing that only slows every start down.

pip brings in packages that no part of gpuhub, JupyterHub or JupyterLab uses but that
every hub, server and job runner imports at start (``UNNEEDED`` in images/requirements.py,
which the image builds and ``scripts/setup`` remove after installing); the images are
checked the same way in tests/docker/test_images.py.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.support.paths import REPO


def unneeded() -> list[str]:
    out = subprocess.run(
        [sys.executable, str(REPO / "images" / "requirements.py"), "--unneeded"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_the_unneeded_packages_are_named_and_left_out_of_the_environment() -> None:
    names = unneeded()
    assert "rfc3987-syntax" in names
    left = [n for n in names if importlib.util.find_spec(n.replace("-", "_"))]
    assert not left, f"{left} installed: run scripts/setup test (it removes them)"


def test_jupyter_starts_without_them_and_jsonschema_still_checks_formats() -> None:
    code = (
        "import sys, jupyter_server.serverapp, jupyterhub.app, jsonschema; "
        "assert 'rfc3987_syntax' not in sys.modules; "
        "c = jsonschema.FormatChecker(); "
        "assert not c.conforms('2026-13-40', 'date') and c.conforms('2026-12-07', 'date')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_local_servers_start_without_asking_node_for_yarns_configuration(tmp_path) -> None:
    """JupyterLab's labapp asks ``node yarn.js config`` at import (0.3 CPU-s of every
    server's start); ``jupyter_gpuhub.singleuser``, the local spawner's command, does not,
    and still hands JupyterLab the registry the environment names."""
    marker = tmp_path / "node-ran"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "node").write_text(f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    (fake / "node").chmod(0o755)
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "YARN_REGISTRY": "https://r.example/",
    }

    def start(prelude: str) -> str:
        code = (
            f"{prelude}; import jupyterlab.labapp, jupyterlab.commands as c; "
            "print(c.AppOptions().registry)"
        )
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
            timeout=60,
        ).stdout.strip()  # fmt: skip

    assert (
        start("import jupyter_gpuhub.singleuser as s; s.skip_yarn_config()") == "https://r.example/"
    )
    assert not marker.exists(), "node ran"
    start("pass")  # JupyterLab alone asks node: the check above can fail
    assert marker.exists()


def test_the_local_spawner_starts_servers_with_it() -> None:
    from gpuhub.spawners.local import GPULocalProcessSpawner

    assert GPULocalProcessSpawner().cmd == [sys.executable, "-m", "jupyter_gpuhub.singleuser"]
