"""DockerSpawner's own settings in gpuhub's profile model.

:class:`gpuhub.spawners.docker.GPUDockerSpawner` is a DockerSpawner, and deployments
bring their DockerSpawner configuration. In gpuhub a user picks a *profile* (image × GPU
shape × limits), so some of DockerSpawner's settings change meaning:

* ``image`` is the image of profiles that name none;
* ``cpu_limit`` and ``mem_limit`` (also as ``c.Spawner.*``, or callables of the spawner)
  are the limits of profiles that set none, and a bound: a profile that sets more is
  refused, with both values named;
* ``allowed_images`` is the allow-list every profile's image must be in (a dict's values,
  a list's items; ``"*"`` or empty: no restriction). Users choose profiles; a
  ``user_options.image`` (a dict's name or an image) picks the profile that runs it.

With no gpuhub profiles configured, :func:`default_profiles` makes them from these
settings: one per allowed image (or the one ``image``) and GPU shape
(``GPUDockerSpawner.default_gpu_shapes``), so a DockerSpawner configuration starts GPU
servers as it is; the gpuhub service derives the same from the same settings, so its
``GET /me/options`` and batch jobs offer them too.

What cannot apply is refused, or warned about, with a sentence that names the setting and
what replaces it (:func:`findings`); nothing is ignored silently. Plain functions of
values, checked by unit tests; the spawner reads its traits into :class:`DockerSettings`
and calls them. ``docs/reference/dockerspawner.md`` has the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..profiles import Profile, ProfileConfigError, profile_name, shape_of
from ..scheduler.shapes import MigSlice, SharedGpu, WholeGpus, describe
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


def image_choices(allowed: Any, image: str | None) -> list[tuple[str, str]]:
    """The ``(name, image)`` pairs users may choose from, as DockerSpawner offers them.

    ``allowed``: DockerSpawner's evaluated ``allowed_images`` (a dict of names to images,
    a list of images, each its own name as DockerSpawner makes it, ``"*"`` or empty).
    Empty or ``"*"``: the one ``image`` (none if it is unset).
    """
    if isinstance(allowed, Mapping) and allowed:
        return [(str(k), str(v)) for k, v in allowed.items()]
    if isinstance(allowed, list | tuple) and allowed:
        return [(str(v), str(v)) for v in allowed]
    return [(image, image)] if image else []


def _shape_suffix(shape: WholeGpus | MigSlice | SharedGpu) -> str:
    model = f"-{shape.model}" if shape.model else ""
    if isinstance(shape, WholeGpus):
        return f"gpu{shape.count}{model}"
    if isinstance(shape, MigSlice):
        return f"mig-{shape.profile}{model}"
    return f"shared{model}"


def derive_profiles(
    choices: Sequence[tuple[str, str]],
    shapes: Sequence[WholeGpus | MigSlice | SharedGpu],
    *,
    default_image: str | None = None,
    taken: Iterable[str] = (),
) -> list[Profile]:
    """Profiles for a DockerSpawner configuration without gpuhub profiles.

    One per image of ``choices`` (``(name, image)``, see :func:`image_choices`) and
    shape, in that order: named after the image (``gpuhub/pytorch:latest`` →
    ``pytorch``; with several shapes ``pytorch-gpu1``, ``pytorch-mig-1g.5gb``...; a name
    taken twice gets ``-2``), shown as the allowed_images name. No limits: those of
    ``cpu_limit``/``mem_limit`` are filled in by :func:`apply_settings`. The default is
    the first profile of ``default_image`` (DockerSpawner's ``image``), else the first.
    Names in ``taken`` (of other profiles) are not used.
    """
    out: list[Profile] = []
    taken = set(taken)
    default_at = next((i for i, (_, img) in enumerate(choices) if img == default_image), 0)
    seen: set[str] = set()
    for i, (label, image) in enumerate(choices):
        if image in seen:  # one image under two names: one profile, the first name
            continue
        seen.add(image)
        for j, shape in enumerate(shapes):
            base = profile_name(image, max_length=40)
            if len(shapes) > 1:
                base = profile_name(f"{base}-{_shape_suffix(shape)}", max_length=60)
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base[:60]}-{n}"
            taken.add(name)
            display = label if len(shapes) == 1 else f"{label} · {describe(shape)}"
            out.append(
                Profile(
                    name=name,
                    display_name=display[:200],
                    description=f"{image}, {describe(shape)}"[:2000],
                    image=image,
                    shape=shape,
                    default=(i, j) == (default_at, 0),
                )
            )
    return out


def default_profiles(
    image: str | None, allowed_images: Any, default_gpu_shapes: Sequence[Mapping[str, Any]]
) -> list[Profile]:
    """The profiles of a DockerSpawner configuration without gpuhub profiles, from its
    settings as configured: one per image of ``allowed_images`` (or the one ``image``)
    and shape of ``GPUDockerSpawner.default_gpu_shapes`` (dicts), the first of ``image``
    the default (:func:`derive_profiles`).

    The one rule of the spawner (``GPUDockerSpawner.derived_profiles``) and of the
    gpuhub service, which reads the same settings from the configuration file it shares
    with the hub (:mod:`gpuhub.service.spawn_profiles`). :class:`ProfileConfigError`
    naming a shape that is not a GPU shape.
    """
    shapes = []
    for i, item in enumerate(default_gpu_shapes):
        try:
            shapes.append(shape_of(item))
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            raise ProfileConfigError(
                f"GPUDockerSpawner.default_gpu_shapes #{i + 1} {item!r} is not a GPU shape "
                "such as {'kind': 'gpu', 'count': 1}"
            ) from e
    choices = image_choices(allowed_images, image or None)
    return derive_profiles(choices, shapes, default_image=image or None)


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
                "c.DockerSpawner.remove = False keeps a stopped server's container (its logs "
                "and files) only until the server starts again: every start gets a new "
                "container, whose environment names the devices of its new GPU lease (a kept "
                "container would start with an old lease's devices). Files outlive "
                "containers in the home volume gpuhub-home-<user>.",
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


# what a user may name as an image under allowed_images = "*" (Docker refuses the rest)
_IMAGE_REFERENCE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}\Z")


def any_image_profiles(
    image: str,
    shapes: Sequence[WholeGpus | MigSlice | SharedGpu],
    profiles: Sequence[Profile],
    settings: DockerSettings,
) -> list[Profile]:
    """With ``allowed_images = "*"`` and derived profiles, DockerSpawner runs any image a
    user names: the profiles (one per default shape, none preselected) that run ``image``
    beside ``profiles``. ValueError when ``image`` is no image reference."""
    if not _IMAGE_REFERENCE.match(image):
        raise ValueError(
            f"image {image[:100]!r} is not an image reference such as "
            "'quay.io/jupyter/pytorch-notebook:latest'"
        )
    extra = derive_profiles([(image, image)], shapes, taken=[p.name for p in profiles])
    return apply_settings([p.model_copy(update={"default": False}) for p in extra], settings)


def settings_at_start(
    found: Sequence[Finding],
    configured: Callable[[], list[Profile]] | None,
    derived: Callable[[], list[Profile]],
    settings: DockerSettings,
) -> list[tuple[str, str]]:
    """What a spawner reports when it is made, as ``(level, sentence)``: ``warning`` for a
    setting that cannot apply, ``info`` for the profiles derived from DockerSpawner's
    settings, ``error`` for what makes every spawn impossible (a refused setting, profiles
    outside the limits or ``allowed_images``, no profile and no image). ``configured`` is
    None when the profiles depend on the user: they are checked at each spawn instead."""
    notes = [("error" if f.refuse else "warning", f.message) for f in found]
    if any(level == "error" for level, _ in notes) or configured is None:
        return notes
    try:
        own = configured()
        profiles = apply_settings(own or derived(), settings)
    except ProfileConfigError as e:
        return [*notes, ("error", str(e))]
    if not profiles:
        return [*notes, ("error", "no GPU profiles are configured and c.DockerSpawner.image is "
                                  "empty; set c.GPUSpawnerMixin.profiles or c.DockerSpawner.image")]  # fmt: skip
    if not own:
        listed = ", ".join(f"{p.name} ({p.image}, {p.display_name})" for p in profiles)
        notes.append(("info", "c.GPUSpawnerMixin.profiles is empty: GPU servers are offered as "
                              f"profiles derived from DockerSpawner's settings: {listed}"))  # fmt: skip
    return notes


def settings_of(spawner: Any, image: str | None, allowed_images: Any) -> DockerSettings:
    """The DockerSpawner settings of ``spawner`` (a DockerSpawner), its callables evaluated
    for its user: ``image`` as configured (before a profile chose one) and its
    ``allowed_images`` as ``_get_allowed_images`` gives them."""
    configured = {
        name: getattr(spawner, name) for name in ("extra_host_config", "extra_create_kwargs")
    }
    return DockerSettings(
        image=image or None,
        cpu_limit=spawner.cpu_limit or None,  # 0 and None: no limit, as DockerSpawner has it
        mem_limit=spawner.mem_limit or None,
        allowed_images=allowed_image_set(allowed_images),
        remove=spawner.remove,
        custom_options_form=any(
            getattr(spawner, name) is not spawner.trait_defaults(name)
            for name in ("options_form", "options_from_form")
        ),
        mem_guarantee=spawner.mem_guarantee,
        cpu_guarantee=spawner.cpu_guarantee,
        environment=spawner.environment,
        # callables are checked when each container is built
        extra_host_config=None
        if callable(configured["extra_host_config"])
        else configured["extra_host_config"],
        extra_create_kwargs=None
        if callable(configured["extra_create_kwargs"])
        else configured["extra_create_kwargs"],
        volume_targets=tuple(b["bind"] for b in spawner.volume_binds.values()),
        home_dir=spawner.home_dir,
        network=spawner.network_name,
    )
