"""gpuhub's GPU-aware JupyterHub spawners.

* :class:`gpuhub.spawners.local.GPULocalProcessSpawner` (entry point ``gpu-local``): local
  processes, the embedded default where no Docker engine answers;
* :class:`gpuhub.spawners.docker.GPUDockerSpawner` (entry point ``gpu-docker``): containers
  on a Docker engine, GPUs through ``device_requests``;
* :class:`gpuhub.spawners.slurm.GPUSlurmSpawner` (entry point ``gpu-slurm``): Slurm batch
  jobs, pinned to the node and GPUs of the lease (``--nodelist``, ``--gres``).

All three share :class:`gpuhub.spawners.mixin.GPUSpawnerMixin` (profiles, leases, state).
The modules are imported on use, so the local spawner needs neither a Docker client
library nor Slurm.
"""
