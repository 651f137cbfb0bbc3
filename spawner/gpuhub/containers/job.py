"""The container of a batch job: the parts of :mod:`gpuhub.containers.spec`, as a job needs them.

A job's container runs the runner (``python -m gpuhub.jobs.runner FOLDER``) in the image
recorded at submit, on the user's home volume, with the lease's devices and the job's
limits, and the same invariants as a user's server. Unlike a server it serves nothing: no
port, and no network at all by default. It is labelled with its job, never with a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .spec import (
    DEFAULT_CONTAINER_USER,
    DEFAULT_HOME,
    LABEL_JOB,
    Limits,
    check_user,
    container_spec,
    gpuhub_labels,
    hardened_host_config,
    home_binds,
    home_volume_name,
)


def build_job_spec(
    *,
    job_id: int | str,
    image: str | None,
    lease: Mapping[str, Any],
    user: str,
    name: str,
    env: Mapping[str, str],
    command: list[str],
    home_dir: str = DEFAULT_HOME,
    home_volume: str | None = None,
    container_user: str = DEFAULT_CONTAINER_USER,
    network: str = "none",
    limits: Limits | None = None,
    host_cpus: int | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``create_container`` arguments of job ``job_id``'s container named ``name``.

    ``lease`` is the job's lease as the scheduler shows it (``{}`` when it has none);
    ``network`` is ``none`` (the default), ``bridge``, ``host`` or a user-defined network;
    ``limits`` None: none.
    Without a network the container's own name resolves to itself, since Docker leaves
    the hostname unresolvable there and torchrun's rendezvous (c10d) waits on it for ever.
    """
    check_user(container_user)
    host_config = hardened_host_config(
        lease,
        binds=home_binds(home_volume or home_volume_name(user), home_dir),
        network=network,
        limits=limits or Limits(),
        host_cpus=host_cpus,
    )
    labels = gpuhub_labels(
        user=user,
        lease=lease,
        profile=str(lease.get("profile") or "job"),
        own={LABEL_JOB: str(job_id)},
        extra=extra_labels,
    )
    spec = container_spec(
        image=image,
        name=name,
        container_user=container_user,
        env=env,
        labels=labels,
        home_dir=home_dir,
        host_config=host_config,
        command=command,
    )
    if network == "none":
        spec["hostname"] = name
        spec["host_config"]["extra_hosts"] = {name: "127.0.0.1"}
    return spec
