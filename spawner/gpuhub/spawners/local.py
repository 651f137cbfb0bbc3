"""GPU spawner for machines without a Docker engine: the embedded default.

Runs ``jupyterhub-singleuser`` as a process of the hub's own OS user (JupyterHub's
``SimpleLocalProcessSpawner``), with the leased devices in ``CUDA_VISIBLE_DEVICES`` and
``NVIDIA_VISIBLE_DEVICES``. What a process on the host cannot do, it does not pretend to:

* the profile's ``image`` is ignored: the server runs in the hub's Python environment;
* ``cpu_limit``, ``mem_limit`` and ``shm_size`` are not enforced, and nothing but
  ``CUDA_VISIBLE_DEVICES`` keeps a process off other GPUs; every user runs as the same
  OS user. Use it on a laptop, in CI, or for one trusted person; use
  :class:`gpuhub.spawners.docker.GPUDockerSpawner` for anything shared.

The spawn form says so (:data:`LOCAL_PROCESS`). In the embedded default, stopping the hub
stops these servers and releases their leases (:func:`stop_servers_before_services`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import default

from .form import ServerKind
from .mixin import GPUSpawnerMixin

#: What the spawn form says a local server is: no image, no limits; only the GPUs are real.
LOCAL_PROCESS = ServerKind(
    images=False,
    limits=False,
    note=(
        "Servers here are processes on this machine: yours runs in the hub's own Python "
        "environment, with no container image and no CPU or memory limits. What you choose "
        "below is the GPU shape; your server sees only the GPUs of its lease (none at all "
        "on a profile without a GPU)."
    ),
)


def stop_servers_before_services(app: Any) -> None:
    """Make a stopping hub stop its servers while the gpuhub service still answers.

    JupyterHub's ``cleanup()`` (on SIGINT/SIGTERM, e.g. Ctrl-C) stops managed services
    first and single-user servers after them, so with ``JupyterHub.cleanup_servers`` the
    servers' lease releases would find the service gone and their leases would stay
    active. Called from the hub's configuration with the ``JupyterHub`` application,
    this stops JupyterHub's periodic checks and every active server first (each GPU
    spawner releases its lease as it stops), then runs JupyterHub's own clean-up. Without ``cleanup_servers`` it does
    nothing more than JupyterHub's.
    """
    cleanup = app.cleanup

    async def stop_servers_then_cleanup() -> None:
        # JupyterHub's periodic checks go on during its clean-up; the services' health
        # check then reads a stopped service's server and fails with an AttributeError
        # ('NoneType' object has no attribute 'proto'). Nothing needs them while stopping.
        for periodic in getattr(app, "_periodic_callbacks", {}).values():
            periodic.stop()
        if app.cleanup_servers:
            stops = [
                user.stop(name)
                for user in list(app.users.values())
                for name, spawner in list(user.spawners.items())
                if spawner.active
            ]
            if stops:
                app.log.info("Stopping %d single-user server(s) before the services", len(stops))
            for result in await asyncio.gather(*stops, return_exceptions=True):
                if isinstance(result, BaseException):
                    app.log.error("Failed to stop a server: %s", result)
        await cleanup()

    app.cleanup = stop_servers_then_cleanup


class GPULocalProcessSpawner(GPUSpawnerMixin, SimpleLocalProcessSpawner):
    """GPU profiles and leases for local ``jupyterhub-singleuser`` processes (no isolation).

    Select it with ``c.JupyterHub.spawner_class = "gpu-local"``. Each user's home is
    ``SimpleLocalProcessSpawner.home_dir_template``; the process id is kept in the state
    next to the lease id, so a restarted hub (``JupyterHub.cleanup_servers = False``)
    re-adopts running servers and their leases.
    """

    server_kind = LOCAL_PROCESS

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # jupyterhub-singleuser of this Python, without JupyterLab's start-up call to Node
        # (jupyter_gpuhub.singleuser); c.Spawner.cmd still chooses another
        return [sys.executable, "-m", "jupyter_gpuhub.singleuser"]

    def get_env(self) -> dict[str, str]:
        """The GPU spawner's environment with this Python's ``bin`` first on ``PATH``, so
        the server's terminals find ``gpuhub`` (and ``jupyter``) of the hub's environment."""
        env = super().get_env()
        bin_dir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        if bin_dir not in path:
            env["PATH"] = os.pathsep.join([bin_dir, *path])
        return env
