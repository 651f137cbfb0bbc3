"""DockerSpawner's own settings in gpuhub's profile model.

:class:`gpuhub.spawners.docker.GPUDockerSpawner` is a DockerSpawner, and deployments
bring their DockerSpawner configuration. In gpuhub a user picks a *profile* (image × GPU
shape × limits), so some of DockerSpawner's settings change meaning:

* ``image`` is the image of profiles that name none;
* ``cpu_limit`` and ``mem_limit`` (also as ``c.Spawner.*``, or callables of the spawner)
  are the limits of profiles that set none, and a bound: a profile that sets more is
  refused, with both values named;
* ``allowed_images`` is the allow-list every profile's image must be in (a dict's values,
  a list's items; ``"*"`` or empty: no restriction). Users choose profiles, not images.

What cannot apply is refused, or warned about, with a sentence that names the setting and
what replaces it (:func:`findings`); nothing is ignored silently. Plain functions of
values, checked by unit tests; the spawner reads its traits into :class:`DockerSettings`
and calls them. ``docs/reference/dockerspawner.md`` has the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..profiles import Profile, ProfileConfigError
from ..terms import fmt_bytes
from .container import ContainerSpecError, check_extras, shadowed_extras

#: Variables the lease sets in every server; ``c.Spawner.environment`` cannot.
LEASE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "GPUHUB_LEASE_ID")


@dataclass(frozen=True)
class DockerSettings:
    """The DockerSpawner settings of one spawner (callables already evaluated).

    ``image`` None: not configured. ``allowed_images`` None: no restriction, else the
    allowed images. ``custom_options_form``: ``options_form`` or ``options_from_form``
    is set by the admin (it replaces gpuhub's profile form).
    """

    image: str | None = None
    cpu_limit: float | None = None
    mem_limit: int | None = None
    allowed_images: frozenset[str] | None = None
    remove: bool = True
    custom_options_form: bool = False
    mem_guarantee: int | None = None
    cpu_guarantee: float | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    extra_host_config: Mapping[str, Any] | None = None
    extra_create_kwargs: Mapping[str, Any] | None = None
    volume_targets: tuple[str, ...] = ()
    home_dir: str = "/home/jovyan"
    network: str = "bridge"


@dataclass(frozen=True)
class Finding:
    """A setting that does not apply as DockerSpawner would apply it.

    ``refuse``: the spawner refuses to start servers until it is changed; else a warning.
    """

    setting: str
    message: str
    refuse: bool = False


def allowed_image_set(value: Any) -> frozenset[str] | None:
    """DockerSpawner's ``allowed_images`` (validated: a dict or ``"*"``) as a set of images.

    None means no restriction: ``"*"``, or nothing configured.
    """
    if value is None or value == "*" or not value:
        return None
    if isinstance(value, Mapping):
        return frozenset(str(v) for v in value.values())
    return frozenset(str(v) for v in value)


def _cpus(n: float) -> str:
    return f"{n:g} CPU{'s' if n != 1 else ''}"


def apply_settings(profiles: Sequence[Profile], settings: DockerSettings) -> list[Profile]:
    """The profiles with DockerSpawner's ``image``, limits and ``allowed_images`` applied.

    Raises :class:`ProfileConfigError` naming the profile, its value and the setting when
    a profile has no image and none is configured, runs an image ``allowed_images`` does
    not allow, or sets a limit above ``cpu_limit``/``mem_limit``.
    """
    out = []
    for p in profiles:
        update: dict[str, Any] = {}
        image = p.image
        if image is None:
            if not settings.image:
                raise ProfileConfigError(
                    f"profile {p.name} names no image and c.DockerSpawner.image is not set; "
                    "give the profile an image or set c.DockerSpawner.image"
                )
            image = update["image"] = settings.image
        allowed = settings.allowed_images
        if allowed is not None and image not in allowed:
            raise ProfileConfigError(
                f"profile {p.name} runs image {image}, which c.DockerSpawner.allowed_images "
                f"does not allow ({', '.join(sorted(allowed))}); add the image there or "
                "give the profile an allowed one"
            )
        for name, bound, fmt in (
            ("cpu_limit", settings.cpu_limit, _cpus),
            ("mem_limit", settings.mem_limit, fmt_bytes),
        ):
            if bound is None:
                continue
            own = getattr(p, name)
            if own is None:
                update[name] = bound
            elif own > bound:
                raise ProfileConfigError(
                    f"profile {p.name} sets {name} {fmt(own)}, above c.DockerSpawner.{name} "
                    f"{fmt(bound)}, which bounds every profile; lower the profile's {name} or "
                    f"raise c.DockerSpawner.{name}"
                )
        out.append(p.model_copy(update=update) if update else p)
    return out


def findings(settings: DockerSettings) -> list[Finding]:
    """Every DockerSpawner setting of ``settings`` that cannot apply as DockerSpawner's."""
    out = []
    if not settings.remove:
        out.append(
            Finding(
                "c.DockerSpawner.remove",
                "c.DockerSpawner.remove = False cannot apply: every start gets a new "
                "container whose environment names the devices of its new lease (a kept "
                "container would start again with an old lease's devices); files outlive "
                "containers in the home volume gpuhub-home-<user>. Remove the setting.",
                refuse=True,
            )
        )
    for which, host, create in (
        ("extra_host_config", settings.extra_host_config, None),
        ("extra_create_kwargs", None, settings.extra_create_kwargs),
    ):
        try:
            check_extras(host, create, network=settings.network)
        except ContainerSpecError as e:
            out.append(Finding(f"c.DockerSpawner.{which}", f"c.DockerSpawner.{which}: {e}", True))
    for sentence in shadowed_extras(settings.extra_host_config, settings.extra_create_kwargs):
        setting = sentence.split(" sets ", 1)[0]
        out.append(Finding(setting, sentence))
    if settings.custom_options_form:
        out.append(
            Finding(
                "c.Spawner.options_form",
                "c.Spawner.options_form (or options_from_form) is set and replaces gpuhub's "
                "profile form: users choose profiles (c.GPUSpawnerMixin.profiles), not "
                "images, and the form must send profile, gpus and group.",
            )
        )
    for name, value in (("mem_guarantee", settings.mem_guarantee),
                        ("cpu_guarantee", settings.cpu_guarantee)):  # fmt: skip
        if value:
            limit = name.replace("guarantee", "limit")
            out.append(
                Finding(
                    f"c.Spawner.{name}",
                    f"c.Spawner.{name} is not applied to containers (DockerSpawner ignores it "
                    f"too); containers get limits only: the profile's {limit} or "
                    f"c.DockerSpawner.{limit}.",
                )
            )
    for var in LEASE_VARIABLES:
        if var in settings.environment:
            out.append(
                Finding(
                    "c.Spawner.environment",
                    f"c.Spawner.environment sets {var}, which every server gets from its "
                    "GPU lease instead; remove it there.",
                )
            )
    for target in settings.volume_targets:
        if target.rstrip("/") == settings.home_dir.rstrip("/"):
            out.append(
                Finding(
                    "c.DockerSpawner.volumes",
                    f"c.DockerSpawner.volumes mounts a volume on {target}, where the home "
                    "volume gpuhub-home-<user> is mounted (GPUDockerSpawner.home_dir); mount "
                    "it elsewhere or change home_dir.",
                    refuse=True,
                )
            )
    return out
