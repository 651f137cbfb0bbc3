"""What a user's server gets: its GPU environment and its Docker container spec.

Plain functions of (profile, lease, settings) → dict, checked exhaustively by unit tests
without Docker; the spawners only call them. The container spec is the keyword
arguments of docker-py's ``APIClient.create_container``, with ``host_config`` holding the
keyword arguments of ``APIClient.create_host_config``.

Invariants every spec keeps, whatever the admin's extra settings say: a non-root user,
never privileged, no Docker socket, GPUs only through ``device_requests`` built from the
lease (and none at all for simulated devices), the profile's memory, CPU and shm limits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from .profiles import Profile

#: Where the home volume is mounted unless configured otherwise (Jupyter docker stacks).
DEFAULT_HOME = "/home/jovyan"
#: uid:gid of the notebook user in Jupyter docker stacks (jovyan:users).
DEFAULT_CONTAINER_USER = "1000:100"
HOME_VOLUME_PREFIX = "gpuhub-home-"
LABEL_USER, LABEL_LEASE, LABEL_SERVER, LABEL_PROFILE = (
    "gpuhub.user",
    "gpuhub.lease",
    "gpuhub.server",
    "gpuhub.profile",
)

_VOLUME_SAFE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,100}$")
_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")
# settings that would hand a container GPUs or the host outside its lease
_FORBIDDEN_EXTRAS = {
    "privileged": "privileged containers can reach every device of the host",
    "device_requests": "GPUs come from the lease only",
    "devices": "devices come from the lease only",
    "pid_mode": "a container may not see the host's processes",
    "ipc_mode": "a container may not share the host's IPC namespace",
    "cap_add": "containers run without extra capabilities",
    "user": "containers run as the configured non-root user",
}


# extra settings the spec sets itself, and what decides them instead
_LIMIT_NOTE = "; the value here is used only where neither is set"
_SPEC_HOST_KEYS = {
    "mem_limit": "memory comes from the profile's mem_limit or c.DockerSpawner.mem_limit"
    + _LIMIT_NOTE,
    "memswap_limit": "swap is off: memswap_limit follows the profile's mem_limit or "
    "c.DockerSpawner.mem_limit" + _LIMIT_NOTE,
    "nano_cpus": "CPUs come from the profile's cpu_limit or c.DockerSpawner.cpu_limit"
    + _LIMIT_NOTE,
    "cpu_quota": "CPUs come from the profile's cpu_limit or c.DockerSpawner.cpu_limit (Docker "
    "refuses cpu_quota next to them)",
    "cpu_period": "CPUs come from the profile's cpu_limit or c.DockerSpawner.cpu_limit (Docker "
    "refuses cpu_period next to them)",
    "shm_size": "/dev/shm comes from the profile's shm_size; the value here is used only for "
    "profiles that set none",
    "cap_drop": "user containers drop every capability (ALL)",
    "security_opt": "user containers run with no-new-privileges",
    "init": "user containers always run an init process",
    "port_bindings": "the port is published from network_name, host_ip and port",
}
_SPEC_CREATE_KEYS = {
    "name": "container names come from c.DockerSpawner.name_template",
    "working_dir": "the working directory is GPUDockerSpawner.home_dir",
    "command": "the command comes from c.Spawner.cmd and c.Spawner.args",
    "ports": "the port comes from network_name and port",
}


class ContainerSpecError(ValueError):
    """Settings that would break an invariant of user containers (root, privileged, socket)."""


def device_uuids(lease: Mapping[str, Any]) -> list[str]:
    """The leased devices' UUIDs in lease order (``GPU-...`` or ``MIG-...``)."""
    return [str(d["uuid"]) for d in lease.get("devices") or ()]


def is_simulated(lease: Mapping[str, Any]) -> bool:
    """Whether the lease's devices are simulated (no device can be handed to a container)."""
    return any(bool(d.get("simulated")) for d in lease.get("devices") or ())


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
        # NVML (nvidia-smi, the extension's sampler) needs 'utility' besides 'compute'
        env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility"
    return env


def device_requests(lease: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Docker ``DeviceRequests`` for the lease's real devices; none for simulated ones."""
    uuids = [str(d["uuid"]) for d in lease.get("devices") or () if not d.get("simulated")]
    if not uuids:
        return []
    return [{"Driver": "nvidia", "DeviceIDs": uuids, "Capabilities": [["gpu"]]}]


def home_volume_name(user: str) -> str:
    """The per-user named volume holding the home directory: ``gpuhub-home-<user>``.

    Names Docker would refuse (upper case, ``@``, ...) get a readable slug plus a short
    hash, so two users never share a volume.
    """
    if _VOLUME_SAFE.match(user):
        return HOME_VOLUME_PREFIX + user
    slug = re.sub(r"[^a-z0-9_.-]+", "-", user.lower()).strip("-._")[:40] or "user"
    digest = hashlib.sha256(user.encode()).hexdigest()[:10]
    return f"{HOME_VOLUME_PREFIX}{slug}-{digest}"


def is_root(container_user: str | int) -> bool:
    """Whether a Docker ``user`` setting means root (``root``, ``0``, ``0:0``, ``root:x``)."""
    who = str(container_user).strip().split(":", 1)[0]
    return who in ("", "0", "root")


def _mentions_socket(value: Any) -> bool:
    return any(s in str(value) for s in _SOCKETS)


def _check_binds(binds: Mapping[str, Any] | list) -> None:
    for source in binds:
        target = binds[source] if isinstance(binds, Mapping) else source
        if _mentions_socket(source) or _mentions_socket(target):
            raise ContainerSpecError(
                f"volume {source!r} would give a user container a container engine socket"
            )


def check_extras(
    extra_host_config: Mapping[str, Any] | None,
    extra_create_kwargs: Mapping[str, Any] | None,
    *,
    network: str,
) -> None:
    """Refuse the admin's extra Docker settings that would break an invariant of user
    containers (:class:`ContainerSpecError`, naming the setting and what replaces it)."""
    for extras in (extra_host_config or {}, extra_create_kwargs or {}):
        for key, why in _FORBIDDEN_EXTRAS.items():
            if key in extras and not (key == "privileged" and extras[key] is False):
                raise ContainerSpecError(f"{key} cannot be set for user containers: {why}")
    for key in ("environment", "image", "labels", "host_config"):
        if key in (extra_create_kwargs or {}):
            raise ContainerSpecError(
                f"extra_create_kwargs may not set {key}; it comes from the profile and the lease"
            )
    if (extra_host_config or {}).get("network_mode") not in (None, network):
        raise ContainerSpecError("set the network with network_name, not extra_host_config")


def shadowed_extras(
    extra_host_config: Mapping[str, Any] | None, extra_create_kwargs: Mapping[str, Any] | None
) -> list[str]:
    """Sentences for the admin's extra Docker settings that the spec sets itself.

    They are not refused (a deployment keeps working), but they do not apply as given,
    so the spawner warns about each at start-up.
    """
    out = []
    for setting, extras, known in (
        ("extra_host_config", extra_host_config or {}, _SPEC_HOST_KEYS),
        ("extra_create_kwargs", extra_create_kwargs or {}, _SPEC_CREATE_KEYS),
    ):
        for key, why in known.items():
            if key in extras:
                out.append(
                    f"c.DockerSpawner.{setting} sets {key}, which does not apply as given: {why}"
                )
    return out


def build_container_spec(
    profile: Profile,
    lease: Mapping[str, Any],
    *,
    user: str,
    name: str,
    env: Mapping[str, str],
    command: list[str] | None = None,
    server_name: str = "",
    home_volume: str | None = None,
    home_dir: str = DEFAULT_HOME,
    container_user: str = DEFAULT_CONTAINER_USER,
    network: str = "bridge",
    port: int = 8888,
    publish_ip: str | None = "127.0.0.1",
    host_cpus: int | None = None,
    extra_binds: Mapping[str, Any] | None = None,
    extra_mounts: list[Mapping[str, Any]] | None = None,
    links: Mapping[str, str] | None = None,
    extra_labels: Mapping[str, str] | None = None,
    extra_host_config: Mapping[str, Any] | None = None,
    extra_create_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``create_container`` keyword arguments of ``user``'s server holding ``lease``.

    ``network`` is ``"host"`` (the server binds a port on the host itself), ``"bridge"``
    (the port is published on ``publish_ip``) or a user-defined network (reached at the
    container's own address; nothing published). ``host_cpus`` (the engine's CPU count)
    caps ``cpu_limit``, which Docker refuses above it. ``extra_*`` and ``links`` are the
    admin's additions (DockerSpawner's ``volumes``, ``mounts``, ``links``,
    ``extra_host_config``, ``extra_create_kwargs``); they may not undo the invariants above
    (:class:`ContainerSpecError`).
    """
    if is_root(container_user):
        raise ContainerSpecError(
            f"user containers must not run as root (container user {container_user!r}); "
            "use a uid such as 1000:100"
        )
    if not profile.image:
        raise ContainerSpecError(
            f"profile {profile.name} names no image; give it one or set c.DockerSpawner.image"
        )
    check_extras(extra_host_config, extra_create_kwargs, network=network)

    home_volume = home_volume or home_volume_name(user)
    extra_hc = dict(extra_host_config or {})
    binds: dict[str, Any] = {home_volume: {"bind": home_dir, "mode": "rw"}}
    more = dict(extra_binds or {})
    if isinstance(extra_hc.get("binds"), Mapping):
        more.update(extra_hc.pop("binds"))
    for source, target in more.items():
        if source != home_volume:
            binds[source] = (
                target if isinstance(target, Mapping) else {"bind": target, "mode": "rw"}
            )
    _check_binds(binds)
    for mount in extra_mounts or ():
        if _mentions_socket(mount):
            raise ContainerSpecError(
                f"mount {dict(mount)!r} would give a user container a container engine socket"
            )
    for key in ("binds", "mounts", "volumes_from"):
        if key in extra_hc:
            value = extra_hc[key]
            _check_binds(value if isinstance(value, Mapping | list) else [value])

    host_config: dict[str, Any] = {
        "binds": binds,
        "network_mode": network,
        "privileged": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "init": True,  # reap the zombies kernels leave behind
        "device_requests": device_requests(lease),
    }
    if profile.mem_limit:
        host_config["mem_limit"] = profile.mem_limit
        host_config["memswap_limit"] = profile.mem_limit  # no swap beyond the limit
    if profile.cpu_limit:
        cpus = min(profile.cpu_limit, host_cpus) if host_cpus else profile.cpu_limit
        host_config["nano_cpus"] = int(cpus * 1e9)
        for key in ("cpu_quota", "cpu_period"):
            if key in extra_hc:  # Docker refuses them next to nano_cpus
                raise ContainerSpecError(
                    f"extra_host_config sets {key}, but profile {profile.name} has a cpu_limit; "
                    "set CPUs with the profile's cpu_limit or c.DockerSpawner.cpu_limit"
                )
    if extra_mounts:
        host_config["mounts"] = [*extra_mounts, *(extra_hc.pop("mounts", None) or ())]
    if links:
        host_config["links"] = dict(links)
    if profile.shm_size:
        host_config["shm_size"] = profile.shm_size
    create: dict[str, Any] = {}
    if network == "bridge":
        create["ports"] = {f"{port}/tcp": {}}
        if publish_ip is not None:
            host_config["port_bindings"] = {port: (publish_ip,)}
    for key, value in extra_hc.items():
        host_config.setdefault(key, value)  # the admin adds; the invariants above stay

    labels = {
        **(extra_labels or {}),
        LABEL_USER: user,
        LABEL_SERVER: server_name,
        LABEL_LEASE: str(lease["id"]),
        LABEL_PROFILE: profile.name,
    }
    spec: dict[str, Any] = {
        **dict(extra_create_kwargs or {}),
        "image": profile.image,
        "name": name,
        "user": str(container_user),
        "environment": {str(k): str(v) for k, v in env.items()},
        "labels": labels,
        "working_dir": home_dir,
        "host_config": host_config,
        **create,
    }
    if command:
        spec["command"] = list(command)
    return spec
