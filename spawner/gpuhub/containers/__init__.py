"""Containers on a Docker engine, for users' servers and batch jobs alike.

* :mod:`gpuhub.containers.spec`: the parts every gpuhub container is made of (the lease's
  devices and environment, the home volume, labels, limits, a hardened host config), as
  plain functions;
* :mod:`gpuhub.containers.job`: a batch job's container, built from those parts (a
  server's is :func:`gpuhub.spawners.container.build_container_spec`);
* :mod:`gpuhub.containers.engine`: the Docker engine of this process (client, thread
  pool, boot turns), configured once with DockerSpawner's settings;
* :mod:`gpuhub.containers.turns`: boot turns.

Nothing here knows of JupyterHub, spawners or the job manager; the spawners and the job
executors use it.
"""
