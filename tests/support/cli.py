"""Running the ``gpuhub`` CLI as its users do: a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.hub import Hub

ADMIN = "admin"  # in the gpuhub-admin role by hub_config (GPUHUB_ADMIN)


def run_cli(
    *args: str,
    url: str | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``gpuhub ARGS`` in a clean environment; GPUHUB_URL/GPUHUB_TOKEN when given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "JUPYTERHUB_"))}
    if url is not None:
        clean["GPUHUB_URL"] = url
    if token is not None:
        clean["GPUHUB_TOKEN"] = token
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gpuhub.cli.main", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_url(hub: Hub) -> str:
    return f"{hub.url}/services/gpuhub"


def cli_as(hub: Hub, token: str, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, url=service_url(hub), token=token)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The single ``gpuhub: error:`` line of a failed run (exit 1), without the prefix."""
    assert r.returncode == 1, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("gpuhub: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr.removeprefix("gpuhub: error: ").strip()
