"""GPU spawner for machines without a Docker engine: the embedded default.

Runs ``jupyterhub-singleuser`` as a process of the hub's own OS user (JupyterHub's
``SimpleLocalProcessSpawner``), with the leased devices in ``CUDA_VISIBLE_DEVICES`` and
``NVIDIA_VISIBLE_DEVICES``. What a process on the host cannot do, it does not pretend to:

* the profile's ``image`` is ignored: the server runs in the hub's Python environment;
* ``cpu_limit``, ``mem_limit`` and ``shm_size`` are not enforced, and nothing but
  ``CUDA_VISIBLE_DEVICES`` keeps a process off other GPUs; every user runs as the same
  OS user. Use it on a laptop, in CI, or for one trusted person; use
  :class:`gpuhub.spawners.docker.GPUDockerSpawner` for anything shared.
"""

from __future__ import annotations

from jupyterhub.spawner import SimpleLocalProcessSpawner

from .mixin import GPUSpawnerMixin


class GPULocalProcessSpawner(GPUSpawnerMixin, SimpleLocalProcessSpawner):
    """GPU profiles and leases for local ``jupyterhub-singleuser`` processes (no isolation).

    Select it with ``c.JupyterHub.spawner_class = "gpu-local"``. Each user's home is
    ``SimpleLocalProcessSpawner.home_dir_template``; the process id is kept in the state
    next to the lease id, so a restarted hub (``JupyterHub.cleanup_servers = False``)
    re-adopts running servers and their leases.
    """
