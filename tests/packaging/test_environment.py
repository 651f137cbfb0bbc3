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
