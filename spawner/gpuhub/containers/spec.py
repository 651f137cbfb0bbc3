"""What every gpuhub container is made of: plain functions of a lease and a few values.

A user's server (:func:`gpuhub.spawners.container.build_container_spec`) and a batch job
(:func:`gpuhub.containers.job.build_job_spec`) are both assembled from these parts, so
both keep the same invariants whatever else is configured: a non-root user, never
privileged, every capability dropped, no-new-privileges, an init process, no container
engine socket, the user's home volume, GPUs only through ``device_requests`` built from
the lease (none at all for simulated devices), and the CPU, memory and shm limits.

Specs are the keyword arguments of docker-py's ``APIClient.create_container``, with
``host_config`` holding those of ``APIClient.create_host_config``; unit tests check them
without Docker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Where the home volume is mounted unless configured otherwise (Jupyter docker stacks).
DEFAULT_HOME = "/home/jovyan"
#: uid:gid of the notebook user in Jupyter docker stacks (jovyan:users).
DEFAULT_CONTAINER_USER = "1000:100"
HOME_VOLUME_PREFIX = "gpuhub-home-"
LABEL_USER, LABEL_LEASE, LABEL_SERVER, LABEL_PROFILE, LABEL_JOB = (
    "gpuhub.user",
    "gpuhub.lease",
    "gpuhub.server",
    "gpuhub.profile",
    "gpuhub.job",
)
#: NVML (nvidia-smi, the extension's sampler) needs 'utility' besides 'compute'.
DRIVER_CAPABILITIES = "compute,utility"

_VOLUME_SAFE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,100}")
_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")


class ContainerSpecError(ValueError):
    """Settings that would break an invariant of gpuhub containers (root, privileged, socket)."""


@dataclass(frozen=True)
class Limits:
    """A container's CPU, memory and ``/dev/shm`` limits (None: not limited)."""

    cpu_limit: float | None = None  # CPUs
    mem_limit: int | None = None  # bytes
    shm_size: int | None = None  # bytes


# -- the lease's devices ----------------------------------------------------------------------


def device_uuids(lease: Mapping[str, Any]) -> list[str]:
    """The leased devices' UUIDs in lease order (``GPU-...`` or ``MIG-...``)."""
    return [str(d["uuid"]) for d in lease.get("devices") or ()]


def is_simulated(lease: Mapping[str, Any]) -> bool:
    """Whether the lease's devices are simulated (no device can be handed to a container)."""
    return any(bool(d.get("simulated")) for d in lease.get("devices") or ())


def device_requests(lease: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Docker ``DeviceRequests`` for the lease's real devices; none for simulated ones."""
    uuids = [str(d["uuid"]) for d in lease.get("devices") or () if not d.get("simulated")]
    if not uuids:
        return []
    return [{"Driver": "nvidia", "DeviceIDs": uuids, "Capabilities": [["gpu"]]}]


def build_env(lease: Mapping[str, Any], *, service_url: str) -> dict[str, str]:
    """The GPU environment of a server (or job) holding ``lease``.

    ``CUDA_VISIBLE_DEVICES`` and ``NVIDIA_VISIBLE_DEVICES`` name the leased devices by UUID
    (CUDA accepts ``GPU-...`` and ``MIG-...`` UUIDs), so the order and identity stay right
    whether or not the container runtime renumbers devices. ``GPUHUB_SERVICE_URL`` is where
    the notebook extension reaches the service with the server's own token; no other
    credential is put here. ``GPUHUB_PROFILE`` names the spawn profile, so that "Run as GPU
    job" starts in the same environment.
    """
    uuids = ",".join(device_uuids(lease))
    env = {
        "CUDA_VISIBLE_DEVICES": uuids,
        "NVIDIA_VISIBLE_DEVICES": uuids,
        "GPUHUB_LEASE_ID": str(lease["id"]),
        "GPUHUB_SERVICE_URL": service_url,
    }
    if lease.get("node"):
        env["GPUHUB_NODE"] = str(lease["node"])
    if lease.get("profile"):  # the environment a job from this server starts in
        env["GPUHUB_PROFILE"] = str(lease["profile"])
    if is_simulated(lease):
        env["GPUHUB_SIMULATED"] = "1"
    else:
        env["NVIDIA_DRIVER_CAPABILITIES"] = DRIVER_CAPABILITIES
    return env


def no_gpu_env(*, profile: str, service_url: str) -> dict[str, str]:
    """The GPU environment of a server whose profile has no GPU (CPU only, no lease).

    ``CUDA_VISIBLE_DEVICES`` is empty, so CUDA frameworks see no GPU even on a host that has
    some; ``NVIDIA_VISIBLE_DEVICES=void`` overrides the ``all`` of CUDA base images, so the
    NVIDIA container runtime hands the container neither devices nor driver libraries.
    ``GPUHUB_NO_GPU=1`` tells the notebook extension that no GPU is by design (not a lease
    that is missing); ``GPUHUB_SERVICE_URL`` and ``GPUHUB_PROFILE`` are there as in every
    server, so quota and "Run as GPU job" work from it.
    """
    return {
        "CUDA_VISIBLE_DEVICES": "",
        "NVIDIA_VISIBLE_DEVICES": "void",
        "GPUHUB_NO_GPU": "1",
        "GPUHUB_PROFILE": profile,
        "GPUHUB_SERVICE_URL": service_url,
    }


# -- who runs it, and on what ---------------------------------------------------------------


def is_root(container_user: str | int) -> bool:
    """Whether a Docker ``user`` setting means root (``root``, ``0``, ``0:0``, ``root:x``)."""
    who = str(container_user).strip().split(":", 1)[0]
    return who in ("", "0", "root")


def home_volume_name(user: str) -> str:
    """The per-user named volume holding the home directory: ``gpuhub-home-<user>``.

    Names Docker would refuse (upper case, ``@``, ...) get a readable slug plus a short
    hash, so two users never share a volume.
    """
    if _VOLUME_SAFE.fullmatch(user):
        return HOME_VOLUME_PREFIX + user
    slug = re.sub(r"[^a-z0-9_.-]+", "-", user.lower()).strip("-._")[:40] or "user"
    digest = hashlib.sha256(user.encode()).hexdigest()[:10]
    return f"{HOME_VOLUME_PREFIX}{slug}-{digest}"


def home_binds(volume: str, home_dir: str = DEFAULT_HOME, mode: str = "rw") -> dict[str, Any]:
    """The bind of the home volume on ``home_dir`` (``binds`` of a host config)."""
    return {volume: {"bind": home_dir, "mode": mode}}


def mentions_socket(value: Any) -> bool:
    """Whether a bind, mount or path names a container engine's socket."""
    return any(s in str(value) for s in _SOCKETS)


def check_binds(binds: Mapping[str, Any] | list) -> None:
    """Refuse binds (a mapping or a list of sources) that hand over an engine socket."""
    for source in binds:
        target = binds[source] if isinstance(binds, Mapping) else source
        if mentions_socket(source) or mentions_socket(target):
            raise ContainerSpecError(
                f"volume {source!r} would give a user container a container engine socket"
            )


# -- the parts of a spec -------------------------------------------------------------------


def limit_config(limits: Limits, *, host_cpus: int | None = None) -> dict[str, Any]:
    """The host config of ``limits``: memory without swap, CPUs as ``nano_cpus`` (capped at
    ``host_cpus``, the engine's CPU count, which Docker refuses to exceed), ``shm_size``."""
    out: dict[str, Any] = {}
    if limits.mem_limit:
        out["mem_limit"] = limits.mem_limit
        out["memswap_limit"] = limits.mem_limit  # no swap beyond the limit
    if limits.cpu_limit:
        cpus = min(limits.cpu_limit, host_cpus) if host_cpus else limits.cpu_limit
        out["nano_cpus"] = int(cpus * 1e9)
    if limits.shm_size:
        out["shm_size"] = limits.shm_size
    return out


def hardened_host_config(
    lease: Mapping[str, Any],
    *,
    binds: Mapping[str, Any],
    network: str,
    limits: Limits,
    host_cpus: int | None = None,
) -> dict[str, Any]:
    """The host config every gpuhub container starts from: ``binds`` (checked for engine
    sockets), ``network``, never privileged, no capabilities, no-new-privileges, an init
    process, the lease's devices and ``limits``."""
    check_binds(binds)
    return {
        "binds": dict(binds),
        "network_mode": network,
        "privileged": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "init": True,  # reap the zombies kernels and dataloader workers leave behind
        "device_requests": device_requests(lease),
        **limit_config(limits, host_cpus=host_cpus),
    }


def gpuhub_labels(
    *,
    user: str,
    lease: Mapping[str, Any],
    profile: str,
    own: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A container's labels: ``extra`` (an admin's), then gpuhub's own, which ``extra``
    cannot replace: ``gpuhub.user``, ``gpuhub.lease`` (only with a lease: start-up
    reconciliation takes a labelled container without a live lease for an orphan),
    ``gpuhub.profile``, and ``own`` (``gpuhub.server`` for a server, ``gpuhub.job`` for a job)."""
    labels = {**(extra or {})}
    labels.pop(LABEL_LEASE, None)
    labels.update({LABEL_USER: user, LABEL_PROFILE: profile})
    if lease.get("id") is not None:
        labels[LABEL_LEASE] = str(lease["id"])
    labels.update(own or {})
    return labels


def check_user(container_user: str | int) -> None:
    """Refuse a root container user (:class:`ContainerSpecError`)."""
    if is_root(container_user):
        raise ContainerSpecError(
            f"user containers must not run as root (container user {container_user!r}); "
            "use a uid such as 1000:100"
        )


def container_spec(
    *,
    image: str | None,
    name: str,
    container_user: str | int,
    env: Mapping[str, Any],
    labels: Mapping[str, str],
    home_dir: str,
    host_config: Mapping[str, Any],
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The ``create_container`` arguments shared by servers and jobs.

    Refuses root (:class:`ContainerSpecError`) and a missing image (``ValueError``). A
    container given devices gets ``NVIDIA_DRIVER_CAPABILITIES`` unless ``env`` sets it.
    """
    check_user(container_user)
    if not image:
        raise ValueError(f"container {name} names no image")
    environment = {str(k): str(v) for k, v in env.items()}
    if host_config.get("device_requests"):
        environment.setdefault("NVIDIA_DRIVER_CAPABILITIES", DRIVER_CAPABILITIES)
    spec: dict[str, Any] = {
        "image": image,
        "name": name,
        "user": str(container_user),
        "environment": environment,
        "labels": dict(labels),
        "working_dir": home_dir,
        "host_config": dict(host_config),
    }
    if command:
        spec["command"] = list(command)
    return spec


def orphan_containers(
    containers: Iterable[Mapping[str, Any]], live_lease_ids: Iterable[int]
) -> list[Mapping[str, Any]]:
    """Running containers labelled with a lease that is no longer queued or active.

    ``containers`` are Docker's ``GET /containers/json`` entries (``Id``, ``Names``,
    ``Labels``); a label that is not a lease number counts as no lease.
    """
    live = {int(x) for x in live_lease_ids}
    out = []
    for c in containers:
        label = (c.get("Labels") or {}).get(LABEL_LEASE, "")
        if not (label.isdigit() and int(label) in live):
            out.append(c)
    return out
