"""Running the ``gpuhub`` CLI as its users do: with a clean environment, its output and
exit status as a shell sees them.

:func:`run_cli` runs the installed command in a subprocess (the entry point, the
environment variables, a missing token, ``--help``). :func:`cli_as` runs a command against
a hub with a token, as most tests do: the same ``gpuhub.cli.main.main`` in this process,
with the same clean environment, standard output and error captured, and argparse's exits
turned into the status, which saves an interpreter and its imports (0.2 CPU-s) per call.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

from tests.support.hub import Hub

ADMIN = "admin"  # in the gpuhub-admin role by hub_config (GPUHUB_ADMIN)


def run_cli(
    *args: str,
    url: str | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``gpuhub ARGS`` in a clean environment; GPUHUB_URL/GPUHUB_TOKEN when given."""
    clean = _clean_env(url, token, env)
    return subprocess.run(
        [sys.executable, "-m", "gpuhub.cli.main", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _clean_env(url: str | None, token: str | None, env: dict[str, str] | None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "JUPYTERHUB_"))}
    if url is not None:
        clean["GPUHUB_URL"] = url
    if token is not None:
        clean["GPUHUB_TOKEN"] = token
    clean.update(env or {})
    return clean


def run_in_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``gpuhub ARGS`` through ``main()`` in this process, in environment ``env`` alone."""
    from gpuhub.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: usage errors and --help
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["gpuhub", *args], code, out.getvalue(), err.getvalue())


def service_url(hub: Hub) -> str:
    return f"{hub.url}/services/gpuhub"


def cli_as(hub: Hub, token: str, *args: str) -> subprocess.CompletedProcess:
    """``gpuhub ARGS`` against ``hub``'s service with ``token`` (:func:`run_in_process`)."""
    return run_in_process(*args, env=_clean_env(service_url(hub), token, None))


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
