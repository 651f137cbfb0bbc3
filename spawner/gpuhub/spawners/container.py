"""The Docker container of a user's server: the shared parts, plus what an admin adds.

:func:`build_container_spec` assembles a server's ``create_container`` arguments from the
parts every gpuhub container is made of (:mod:`gpuhub.containers.spec`: the lease's
devices and environment, the home volume, labels, limits, the hardened host config) and
adds what is a server's own: the port it serves, and DockerSpawner's ``volumes``,
``mounts``, ``links``, ``extra_host_config`` and ``extra_create_kwargs`` of the admin,
which may not undo an invariant (:func:`check_extras`) and are warned about where the spec
decides instead (:func:`shadowed_extras`). Plain functions of (profile, lease, settings),
checked exhaustively by unit tests without Docker; the spawner only calls them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..containers.spec import (
    DEFAULT_CONTAINER_USER,
    DEFAULT_HOME,
    LABEL_SERVER,
    ContainerSpecError,
    Limits,
    build_env,
    check_binds,
    check_user,
    container_spec,
    device_uuids,
    gpuhub_labels,
    hardened_host_config,
    home_binds,
    home_volume_name,
    is_simulated,
    mentions_socket,
    no_gpu_env,
)
from ..profiles import Profile

__all__ = [
    "build_container_spec",
    "check_extras",
    "shadowed_extras",
    # the shared parts the other spawner modules name through this one
    "ContainerSpecError",
    "build_env",
    "device_uuids",
    "is_simulated",
    "no_gpu_env",
]

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
    lease: Mapping[str, Any] | None,
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
    """The ``create_container`` keyword arguments of ``user``'s server holding ``lease``
    (None for a CPU-only profile: no devices and no lease label; ``env`` has no GPU).

    ``network`` is ``"host"`` (the server binds a port on the host itself), ``"bridge"``
    (the port is published on ``publish_ip``) or a user-defined network (reached at the
    container's own address; nothing published). ``host_cpus`` (the engine's CPU count)
    caps ``cpu_limit``, which Docker refuses above it. ``extra_*`` and ``links`` are the
    admin's additions (DockerSpawner's ``volumes``, ``mounts``, ``links``,
    ``extra_host_config``, ``extra_create_kwargs``); they may not undo the invariants of
    :mod:`gpuhub.containers.spec` (:class:`ContainerSpecError`).
    """
    check_user(container_user)
    lease = lease or {}
    if profile.has_gpu and not lease:
        raise ContainerSpecError(
            f"profile {profile.name} has a GPU shape: its server needs a lease"
        )
    if not profile.image:
        raise ContainerSpecError(
            f"profile {profile.name} names no image; give it one or set c.DockerSpawner.image"
        )
    check_extras(extra_host_config, extra_create_kwargs, network=network)

    home_volume = home_volume or home_volume_name(user)
    extra_hc = dict(extra_host_config or {})
    binds = home_binds(home_volume, home_dir)
    more = dict(extra_binds or {})
    if isinstance(extra_hc.get("binds"), Mapping):
        more.update(extra_hc.pop("binds"))
    for source, target in more.items():
        if source != home_volume:
            binds[source] = (
                target if isinstance(target, Mapping) else {"bind": target, "mode": "rw"}
            )
    for mount in extra_mounts or ():
        if mentions_socket(mount):
            raise ContainerSpecError(
                f"mount {dict(mount)!r} would give a user container a container engine socket"
            )
    for key in ("binds", "mounts", "volumes_from"):
        if key in extra_hc:
            value = extra_hc[key]
            check_binds(value if isinstance(value, Mapping | list) else [value])
    if profile.cpu_limit:
        for key in ("cpu_quota", "cpu_period"):
            if key in extra_hc:  # Docker refuses them next to nano_cpus
                raise ContainerSpecError(
                    f"extra_host_config sets {key}, but profile {profile.name} has a cpu_limit; "
                    "set CPUs with the profile's cpu_limit or c.DockerSpawner.cpu_limit"
                )

    limits = Limits(profile.cpu_limit, profile.mem_limit, profile.shm_size)
    host_config = hardened_host_config(
        lease, binds=binds, network=network, limits=limits, host_cpus=host_cpus
    )
    if extra_mounts:
        host_config["mounts"] = [*extra_mounts, *(extra_hc.pop("mounts", None) or ())]
    if links:
        host_config["links"] = dict(links)
    ports: dict[str, Any] = {}
    if network == "bridge":
        ports["ports"] = {f"{port}/tcp": {}}
        if publish_ip is not None:
            host_config["port_bindings"] = {port: (publish_ip,)}
    for key, value in extra_hc.items():
        host_config.setdefault(key, value)  # the admin adds; the invariants above stay

    labels = gpuhub_labels(
        user=user,
        lease=lease,
        profile=profile.name,
        own={LABEL_SERVER: server_name},
        extra=extra_labels,
    )
    spec = container_spec(
        image=profile.image,
        name=name,
        container_user=container_user,
        env=env,
        labels=labels,
        home_dir=home_dir,
        host_config=host_config,
        command=command,
    )
    return {**dict(extra_create_kwargs or {}), **spec, **ports}
