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
from typing import Any, ClassVar

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import List, TraitError, Unicode, default, validate

from .form import ServerKind
from .mixin import GPUSpawnerMixin
from .warm import ANY, IMPORT_TIME_ENV, MISMATCH, WarmPool, parse_rules, zone

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


class WarmLocalProcessSpawner(SimpleLocalProcessSpawner):
    """``SimpleLocalProcessSpawner`` whose starts claim a warm server where the pool has
    one (:mod:`gpuhub.spawners.warm`), and start cold otherwise.

    The pool belongs to the hub process: it fills when the hub starts
    (:func:`fill_warm_pool_at_start`) or at the first spawn, and refills after each claim.
    """

    warm_pool = List(
        default_value=[{"size": 1}],
        config=True,
        help="""Warm servers to keep ready, as rules: ``{"size": N}`` for any profile,
        ``"profile": NAME`` for one profile's spawns only, ``"days": "mon-fri"`` and
        ``"hours": "08:00-10:00"`` (in ``warm_pool_timezone``) for some times only. At any
        moment a profile keeps the largest size among its rules that hold. ``[]`` keeps
        none: every start is cold.""",
    )
    warm_pool_timezone = Unicode(
        "",
        config=True,
        help="The IANA time zone of the warm pool rules' days and hours ('': this machine's).",
    )

    _pools: ClassVar[dict[asyncio.AbstractEventLoop, WarmPool]] = {}

    @validate("warm_pool", "warm_pool_timezone")
    def _check_warm_pool(self, proposal):
        check = parse_rules if proposal.trait.name == "warm_pool" else zone
        try:
            check(proposal.value)
        except ValueError as e:
            raise TraitError(str(e)) from None
        return proposal.value

    def warm_profile(self) -> str:
        """The profile key a warm server is claimed for (``*``: any)."""
        return ANY

    def neutral_env(self) -> dict[str, str]:
        """A warm server's environment before its claim: what every server of this hub
        has (``env_keep`` of the hub's environment, this Python's ``bin`` on ``PATH``), and
        nothing of any user's."""
        env = {key: os.environ[key] for key in self.env_keep if key in os.environ}
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        return env

    def warm_pool_for_this_hub(self) -> WarmPool | None:
        """The hub process's pool, made and started on first use; None when there are no
        rules, or the command is not the default one a warm server runs."""
        if not self.warm_pool or self.shell_cmd or self.popen_kwargs:
            return None
        if list(self.cmd) != self._default_cmd():
            return None
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = WarmPool(
                parse_rules(self.warm_pool),
                self.neutral_env(),
                tz=zone(self.warm_pool_timezone),
                log=self.log,
            )
            self._pools.clear()  # (a loop of an earlier run in this process: gone)
            self._pools[loop] = pool
            pool.start()
        return pool

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # jupyterhub-singleuser of this Python, without JupyterLab's start-up call to Node
        # (jupyter_gpuhub.singleuser); c.Spawner.cmd still chooses another
        return [sys.executable, "-m", "jupyter_gpuhub.singleuser"]

    async def start(self):
        """Claim a warm server and hand it this user's environment, home and arguments;
        start a cold one where there is none (or the claim fails before it answers)."""
        pool = self.warm_pool_for_this_hub()
        if pool is None:
            return await super().start()
        if self.port == 0:
            self.port = random_port()
        env = self.get_env()
        # what jupyterhub-singleuser reads at import must be what the pool started with
        if any(env.get(k, "") != pool.neutral_env.get(k, "") for k in IMPORT_TIME_ENV):
            return await super().start()
        warm = pool.claim(self.warm_profile())
        if warm is None:
            return await super().start()
        self.log.info("Starting %s's server in warm server %d", self.user.name, warm.proc.pid)
        warm.claim(env, self.home_dir, self.get_args())
        try:
            await asyncio.wait_for(asyncio.shield(warm.ready), self.http_timeout)
        except ProcessLookupError:
            code = await asyncio.get_running_loop().run_in_executor(None, warm.proc.wait)
            if code != MISMATCH:
                raise RuntimeError(
                    f"the server's process exited with status {code} as it started"
                ) from None
            self.log.warning("warm server %d refused the claim: starting cold", warm.proc.pid)
            return await super().start()
        except TimeoutError:
            warm.proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, warm.proc.wait)
            raise
        self.proc = warm.proc
        self.pid = warm.proc.pid
        return (self.ip or "127.0.0.1", self.port)


def fill_warm_pool_at_start(app: Any) -> None:
    """Have the hub fill the warm pool as soon as it has started, rather than at the
    first spawn (which then starts cold). Called from the hub's configuration with the
    ``JupyterHub`` application; does nothing for a spawner without a warm pool."""
    start = app.start

    async def start_then_fill() -> None:
        await start()
        if issubclass(app.spawner_class, WarmLocalProcessSpawner):
            app.spawner_class(config=app.config, log=app.log).warm_pool_for_this_hub()

    app.start = start_then_fill


class GPULocalProcessSpawner(GPUSpawnerMixin, WarmLocalProcessSpawner):
    """GPU profiles and leases for local ``jupyterhub-singleuser`` processes (no isolation).

    Select it with ``c.JupyterHub.spawner_class = "gpu-local"``. Each user's home is
    ``SimpleLocalProcessSpawner.home_dir_template``; the process id is kept in the state
    next to the lease id, so a restarted hub (``JupyterHub.cleanup_servers = False``)
    re-adopts running servers and their leases.
    """

    server_kind = LOCAL_PROCESS

    def warm_profile(self) -> str:
        """The profile this start asked for (its own warm servers first, then any)."""
        selection = getattr(self, "_selection", None)
        return selection.profile.name if selection is not None else ANY

    def get_env(self) -> dict[str, str]:
        """The GPU spawner's environment with this Python's ``bin`` first on ``PATH``, so
        the server's terminals find ``gpuhub`` (and ``jupyter``) of the hub's environment."""
        env = super().get_env()
        bin_dir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        if bin_dir not in path:
            env["PATH"] = os.pathsep.join([bin_dir, *path])
        return env
