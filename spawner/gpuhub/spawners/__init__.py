"""gpuhub's GPU-aware JupyterHub spawners.

* :class:`gpuhub.spawners.docker.GPUDockerSpawner` (entry point ``gpu-docker``): containers
  on a Docker engine, GPUs through ``device_requests``;
* :class:`gpuhub.spawners.local.GPULocalProcessSpawner` (entry point ``gpu-local``): local
  processes, the embedded default where no Docker engine answers.

Both share :class:`gpuhub.spawners.mixin.GPUSpawnerMixin` (profiles, leases, state). The
modules are imported on use, so the local spawner needs no Docker client library.
"""
