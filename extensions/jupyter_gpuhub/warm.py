"""``python -m jupyter_gpuhub.warm``: a JupyterLab server started ahead of demand, for
the local-process spawner's warm pool (``gpuhub.spawners.warm``).

Most of a server's start is Python importing JupyterLab, Jupyter Server, JupyterHub's
single-user code and the server extensions (about 0.5 of a start's 1.1 CPU-s on this
machine, before any user is known). A warm server does that part early, as nobody:

1. The hub starts it with a neutral environment (no user, no token, no GPU: the pool's
   ``neutral_env``) in an empty folder of the pool's. It imports what every server start
   imports (:func:`preload`), writes ``warm`` to its status pipe (``GPUHUB_WARM_FD``) and
   waits on its standard input.
2. A claim is one JSON line on standard input: ``{"env": ..., "cwd": ..., "argv": ...}``,
   the spawner's whole environment, the user's home and ``jupyterhub-singleuser``'s
   arguments, computed for that user at that moment, as a cold start would. The process
   replaces its entire environment with ``env``, moves to ``cwd``, and runs
   ``jupyterhub-singleuser`` with ``argv``; once its HTTP server listens and its loop
   runs, it writes ``ready``.
3. Standard input closed without a claim (the pool shrank, the hub went away) ends it.

A warm server serves one claim at most, and knows nobody before it: user, token, home and
GPUs all arrive with the claim, so there is nothing of one user's for another to find.
The environment variables that decide *at import* how ``jupyterhub-singleuser`` runs
(:data:`IMPORT_TIME_ENV`) must be the same in the claim as at the start, or the process
exits with :data:`MISMATCH` and the spawner starts that server cold.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import sys
from typing import IO, Any

#: Read by ``jupyterhub.singleuser`` when it is imported: they choose how it runs.
IMPORT_TIME_ENV = ("JUPYTERHUB_SINGLEUSER_APP", "JUPYTERHUB_SINGLEUSER_EXTENSION")
#: The exit status of a claim whose import-time environment differs from the start's.
MISMATCH = 3
#: The modules every server start imports, whatever extensions are enabled.
CORE_MODULES = (
    "jupyterhub.singleuser",
    "jupyter_server.serverapp",
    "jupyterlab.labapp",
    "jupyter_gpuhub.app",
    "jupyter_gpuhub.handlers",
)


def enabled_extensions(prefix: str = sys.prefix) -> list[str]:
    """The server extensions this environment enables (``etc/jupyter`` of ``prefix``:
    not a user's own configuration, which is read after the claim, in their home)."""
    names: list[str] = []
    pattern = os.path.join(prefix, "etc", "jupyter", "jupyter_server_config.d", "*.json")
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, encoding="utf-8") as f:
                enabled = json.load(f).get("ServerApp", {}).get("jpserver_extensions", {})
        except (OSError, ValueError, AttributeError):
            continue
        names += [name for name, on in enabled.items() if on is True and name not in names]
    return names


def preload() -> list[str]:
    """Import what a server start imports; the modules that failed (a start would say why)."""
    from .singleuser import skip_yarn_config

    skip_yarn_config()  # before jupyterlab.labapp: no Node call at its import
    failed = []
    for name in (*CORE_MODULES, *enabled_extensions()):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an extension that cannot load fails so in the server too
            failed.append(name)
    return failed


def _status_pipe() -> IO[str] | None:
    fd = os.environ.get("GPUHUB_WARM_FD")
    return os.fdopen(int(fd), "w", buffering=1) if fd and fd.isdigit() else None


def _say(status: IO[str] | None, word: str) -> None:
    if status is not None:
        try:
            status.write(word + "\n")
        except OSError:  # the hub stopped reading: nothing to tell
            pass


def _say_ready_when_serving(status: IO[str] | None) -> None:
    """Write ``ready`` once the server's loop runs (its port listens since ``initialize``)."""
    from jupyter_server.serverapp import ServerApp

    start_ioloop = ServerApp.start_ioloop

    def start_ioloop_and_say_ready(app: Any) -> None:
        app.io_loop.add_callback(_say, status, "ready")
        start_ioloop(app)

    ServerApp.start_ioloop = start_ioloop_and_say_ready


def take(claim: dict[str, Any], started_env: dict[str, str]) -> None:
    """Become the claimed server's process: its environment, its folder, its arguments."""
    env, cwd, argv = claim["env"], claim["cwd"], claim["argv"]
    if not (isinstance(env, dict) and isinstance(cwd, str) and isinstance(argv, list)):
        raise ValueError("a claim has env (object), cwd (string) and argv (list)")
    for name in IMPORT_TIME_ENV:
        if env.get(name, "") != started_env.get(name, ""):
            print(f"jupyter_gpuhub.warm: {name} differs from the pool's", file=sys.stderr)
            sys.exit(MISMATCH)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    os.makedirs(cwd, mode=0o755, exist_ok=True)
    os.chdir(cwd)
    sys.argv = [sys.argv[0], *map(str, argv)]


def main() -> None:
    """Preload, say ``warm``, wait for one claim, then run ``jupyterhub-singleuser``."""
    status = _status_pipe()
    started_env = {name: os.environ.get(name, "") for name in IMPORT_TIME_ENV}
    preload()
    _say(status, "warm")
    line = sys.stdin.readline()
    if not line.strip():
        sys.exit(0)  # no claim: the pool let this one go
    take(json.loads(line), started_env)
    # the claim pipe is done with: the server (and its kernels) read nothing from it
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)
    os.environ.pop("GPUHUB_WARM_FD", None)
    _say_ready_when_serving(status)
    from jupyterhub.singleuser import main as singleuser

    sys.exit(singleuser())


if __name__ == "__main__":
    main()
