"""The spawn profiles of the hub's spawners, as the service sees them.

The service loads the configuration file of the hub, so it knows ``c.GPUSpawnerMixin.profiles``
(and the same setting in the sections of the hub's spawner class). With the Docker
spawner and no gpuhub profiles, the hub's spawners derive profiles from DockerSpawner's
own settings: ``image``/``allowed_images`` and ``c.GPUDockerSpawner.default_gpu_shapes``,
limited by ``cpu_limit``/``mem_limit``. The service derives the same from the same
settings, with the same functions (:mod:`gpuhub.spawners.docker_settings`), so that
``GET /me/options`` lists them and batch jobs may run them.

A setting that is a callable of the spawner (per-user policy) cannot be evaluated here,
where there is no spawner: it is said in the log, and what depends on it is left out.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from jupyterhub.spawner import LocalProcessSpawner, Spawner
from jupyterhub.traitlets import ByteSpecification, EntryPointType
from traitlets import HasTraits, TraitError
from traitlets.config import Config, LazyConfigValue

from ..profiles import Profile, ProfileConfigError, load_profiles
from ..spawners.docker_settings import (
    DockerSettings,
    allowed_image_set,
    apply_settings,
    default_profiles,
)
from ..spawners.mixin import GPUSpawnerMixin

if TYPE_CHECKING:
    from ..spawners.docker import GPUDockerSpawner

#: The DockerSpawner settings the profiles of a Docker spawner depend on.
DOCKER_SETTINGS = ("image", "allowed_images", "default_gpu_shapes", "cpu_limit", "mem_limit")


class _SpawnerClass(HasTraits):
    """JupyterHub's ``spawner_class`` trait, to resolve its value as the hub does (an entry
    point name such as ``"gpu-docker"``, an import string, or a class)."""

    spawner_class = EntryPointType(
        default_value=LocalProcessSpawner, klass=Spawner, entry_point_group="jupyterhub.spawners"
    )


def hub_spawner_class(config: Config) -> type[Spawner]:
    """The spawner class ``c.JupyterHub.spawner_class`` names (JupyterHub's default if it
    is not set). TraitError if it names no spawner class."""
    value = (config.get("JupyterHub") or {}).get("spawner_class")
    return _SpawnerClass(spawner_class=value).spawner_class if value else LocalProcessSpawner


def configured(config: Config, cls: type, name: str) -> Any:
    """The value trait ``name`` of a ``cls`` made with ``config`` starts with: its default,
    replaced by the sections of ``cls`` and its bases that set it, the most derived last
    (as traitlets loads them); the value as configured, not yet validated."""
    value = cls.class_traits()[name].default()
    for section in cls.section_names():
        values = config.get(section) or {}
        if name in values:
            set_to = values[name]
            value = set_to.get_value(value) if isinstance(set_to, LazyConfigValue) else set_to
    return value


def hub_profiles(config: Config, log: logging.Logger) -> list[Profile] | list[Any]:
    """The profiles the hub's spawners offer, as far as the configuration says them.

    The configured profiles as they are, except for a Docker spawner
    (:func:`docker_profiles`). A callable (per-user) profile list cannot be known here:
    no profiles. A spawner class that cannot be resolved: ``c.GPUSpawnerMixin.profiles``.
    """
    try:
        cls = hub_spawner_class(config)
    except TraitError:
        log.warning(
            "c.JupyterHub.spawner_class %r names no spawner class the gpuhub service can "
            "import; it reads c.GPUSpawnerMixin.profiles only",
            (config.get("JupyterHub") or {}).get("spawner_class"),
        )
        return (config.get("GPUSpawnerMixin") or {}).get("profiles", [])
    if not issubclass(cls, GPUSpawnerMixin):
        return (config.get("GPUSpawnerMixin") or {}).get("profiles", [])
    profiles = configured(config, cls, "profiles")
    if callable(profiles):
        log.warning(
            "c.GPUSpawnerMixin.profiles is a callable (per user), which the gpuhub service "
            "cannot call: GET /me/options lists no profiles and jobs cannot choose one"
        )
        return []
    # a GPUDockerSpawner (or a subclass) was imported with its module: the service does
    # not import Docker's client where the hub spawns no containers
    docker = sys.modules.get("gpuhub.spawners.docker")
    if docker is not None and issubclass(cls, docker.GPUDockerSpawner):
        return docker_profiles(config, cls, profiles, log)
    return profiles


def docker_profiles(
    config: Config, cls: type[GPUDockerSpawner], profiles: Any, log: logging.Logger
) -> list[Profile]:
    """The profiles a Docker spawner ``cls`` configured by ``config`` offers: the configured
    ``profiles``, or without them those derived from DockerSpawner's settings, with
    ``image``, ``cpu_limit``/``mem_limit`` and ``allowed_images`` applied, as the spawner
    does (``GPUDockerSpawner.get_profiles``).

    A misconfigured profile list raises ValueError (the service does not start, as
    before). What the spawner refuses at each spawn (a profile outside the limits or the
    allow-list, a default shape that is no GPU shape) is logged and offers no profiles.
    """
    try:
        own = load_profiles(profiles)
    except ProfileConfigError as e:
        raise ValueError(f"c.GPUSpawnerMixin.profiles: {e}") from e
    values = {name: configured(config, cls, name) for name in DOCKER_SETTINGS}
    per_user = {name for name, value in values.items() if callable(value)}
    if per_user:
        log.warning(
            "%s: a callable (per user), which the gpuhub service cannot call without a user; "
            "the profiles of jobs and GET /me/options go without it",
            ", ".join(f"c.DockerSpawner.{name}" for name in sorted(per_user)),
        )
    if "allowed_images" in per_user and not own:
        log.warning("the gpuhub service derives no profiles from per-user allowed_images")
        return []
    try:
        settings = DockerSettings(
            image=values["image"] or None,
            cpu_limit=None if "cpu_limit" in per_user else float(values["cpu_limit"] or 0) or None,
            mem_limit=None if "mem_limit" in per_user else _bytes(values["mem_limit"]),
            allowed_images=None
            if "allowed_images" in per_user
            else allowed_image_set(values["allowed_images"]),
        )
        if not own:
            own = default_profiles(
                values["image"], values["allowed_images"], values["default_gpu_shapes"]
            )
        return apply_settings(own, settings)
    except (ValueError, TraitError) as e:  # ProfileConfigError is a ValueError
        log.error(
            "the GPU profiles of the Docker spawner are misconfigured: %s. GET /me/options "
            "lists no profiles and jobs cannot choose one until then",
            e,
        )
        return []


def _bytes(value: Any) -> int | None:
    """A memory setting (``"4G"``, bytes, None) in bytes, as JupyterHub reads it; 0: None."""
    return ByteSpecification().validate(None, value) or None if value else None
