"""Spawn profiles and the validation of ``user_options`` against them.

A *profile* is what an admin offers: an environment image × a GPU shape × limits
(CPU, memory, ``/dev/shm``) × which JupyterHub groups may use it. Profiles are plain
configuration; no GPU model is named anywhere in code. A profile whose shape is None is
CPU-only: its servers ask the scheduler for nothing (no lease, no queue, no quota) and see
no GPU; batch jobs, which need one, take a GPU profile instead.

``user_options`` come from the spawn form or straight from the REST API
(``POST /hub/api/users/NAME/server``) and are untrusted: :func:`validate_user_options`
checks them against an allow-list and the profiles, and refuses anything else with a
sentence a person understands (:class:`UserOptionsError`, HTTP 400).

Servers (the spawners) and batch jobs (``gpuhub.jobs``) choose from the same profiles, so
this module belongs to neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .scheduler.shapes import MAX_NODES, MigSlice, Shape, SharedGpu, WholeGpus, describe

#: What a selection asks the scheduler for: a GPU shape, or None (a CPU-only profile).
GpuShape = WholeGpus | MigSlice | SharedGpu

#: The keys ``user_options`` may have; anything else is refused.
ALLOWED_OPTIONS = ("profile", "gpus", "group", "image")

_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: What a profile's name may be, in the words of every refusal.
PROFILE_NAME_RULE = (
    "must be 1-64 lower-case letters, digits or '._-', starting with a letter or digit, "
    "e.g. 'h100x2'"
)


def check_profile_name(value: str) -> str:
    """``value`` if it may be a profile's name; else ValueError saying the rule."""
    if not _PROFILE_NAME.fullmatch(value):
        raise ValueError(PROFILE_NAME_RULE)
    return value


_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SHAPE = TypeAdapter(Shape)


class UserOptionsError(ValueError):
    """``user_options`` the spawner refuses; ``str(e)`` is the sentence to show (HTTP 400)."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option


class ProfileConfigError(ValueError):
    """The admin's profile configuration is wrong; the message names the profile and field."""


def parse_bytes(value: int | float | str) -> int:
    """Docker-style sizes to bytes: ``"16G"``, ``"512m"``, ``"1.5GiB"``, ``2**30`` (binary units)."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as '16G' or a number of bytes")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be more than 0 bytes")
        return int(value)
    m = _BYTES.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size such as '16G', '512M' or a number of bytes")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size <= 0:
        raise ValueError("must be more than 0 bytes")
    return size


class Profile(BaseModel):
    """One spawn choice an admin offers: image × GPU shape × limits × groups.

    ``image``, ``cpu_limit`` and ``mem_limit`` may be left out: the Docker spawner fills
    them in from ``c.DockerSpawner.image``, ``cpu_limit`` and ``mem_limit``; local
    processes have no image and no limits.

    Example (in ``jupyterhub_config.py``)::

        c.GPUSpawnerMixin.profiles = [
            {"name": "h100x2", "display_name": "2 NVLinked H100",
             "image": "gpuhub/pytorch:latest",
             "shape": {"kind": "gpu", "count": 2, "model": "H100"},
             "gpu_counts": [1, 2], "cpu_limit": 16, "mem_limit": "128G", "shm_size": "16G",
             "groups": ["research"]},
            {"name": "cpu", "display_name": "No GPU (CPU only)", "shape": None,
             "cpu_limit": 2, "mem_limit": "8G"},
        ]

    ``"shape": None`` makes a CPU-only profile (it must be said: a forgotten shape is an
    error, not a server without GPUs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short id, sent as user_options.profile, e.g. 'h100x2'")
    display_name: str = Field("", max_length=200, description="What the form shows")
    description: str = Field("", max_length=2000, description="A line under the name")
    image: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="Container image; None: the spawner's default (c.DockerSpawner.image)",
    )
    shape: Shape | None = Field(
        description="The GPU shape (the scheduler's Shape); None: no GPU (CPU only, quota-free)"
    )
    gpu_counts: tuple[int, ...] = Field(
        (), description="Whole-GPU counts a user may choose; default: only shape.count"
    )
    max_nodes: int = Field(
        1,
        ge=1,
        le=MAX_NODES,
        description="Nodes a job of this profile may span (whole GPUs, a multi-node executor)",
    )
    cpu_limit: float | None = Field(None, gt=0, le=1024, description="CPU cores")
    mem_limit: int | None = Field(None, description="Memory, e.g. '32G'")
    shm_size: int | None = Field(None, description="/dev/shm size, e.g. '8G'")
    groups: tuple[str, ...] | None = Field(None, description="Groups allowed; None: everyone")
    default: bool = Field(False, description="Preselected in the form; used without a profile")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return check_profile_name(v)

    @field_validator("image")
    @classmethod
    def _check_image(cls, v: str | None) -> str | None:
        if v is not None and any(c.isspace() for c in v):
            raise ValueError("must be an image reference without spaces, e.g. 'gpuhub/pytorch:1.0'")
        return v

    @field_validator("mem_limit", "shm_size", mode="before")
    @classmethod
    def _sizes(cls, v: Any) -> int | None:
        return None if v is None else parse_bytes(v)

    @model_validator(mode="after")
    def _check_counts(self) -> Profile:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        if self.max_nodes > 1 and not isinstance(self.shape, WholeGpus):
            raise ValueError(
                f"max_nodes is only for whole-GPU shapes; {describe(self.shape)} is on one node"
            )
        if isinstance(self.shape, WholeGpus) and self.shape.node_count > 1:
            raise ValueError(
                "shape.nodes: a profile's shape is what one server gets, on one node; "
                "set max_nodes to let its jobs span nodes"
            )
        if self.shape is None:
            if self.gpu_counts:
                raise ValueError("gpu_counts is only for whole-GPU shapes; this profile has no GPU")
            return self
        if not isinstance(self.shape, WholeGpus):
            if self.gpu_counts and tuple(self.gpu_counts) != (1,):
                raise ValueError(
                    f"gpu_counts is only for whole-GPU shapes; {describe(self.shape)} has no count"
                )
            object.__setattr__(self, "gpu_counts", ())
            return self
        counts = tuple(sorted(set(self.gpu_counts or (self.shape.count,))))
        if any(not 1 <= n <= 64 for n in counts):
            raise ValueError("gpu_counts must be whole numbers from 1 to 64")
        object.__setattr__(self, "gpu_counts", counts)
        return self

    @property
    def has_gpu(self) -> bool:
        """Whether servers of this profile get a GPU (False: CPU only, no lease, no quota)."""
        return self.shape is not None

    @property
    def choosable_counts(self) -> tuple[int, ...]:
        """The GPU counts a person picks from (empty for MIG slices and shared GPUs)."""
        return self.gpu_counts

    @property
    def default_count(self) -> int | None:
        """The count used when ``gpus`` is not given (whole-GPU shapes only)."""
        if not isinstance(self.shape, WholeGpus):
            return None
        return self.shape.count if self.shape.count in self.gpu_counts else self.gpu_counts[0]

    def shape_for(self, gpus: int | None) -> GpuShape | None:
        """The shape to request for ``gpus`` whole GPUs (the profile's own for other kinds;
        None for a CPU-only profile)."""
        if isinstance(self.shape, WholeGpus) and gpus is not None:
            return self.shape.model_copy(update={"count": gpus})
        return self.shape

    def allows(self, user_groups: Iterable[str]) -> bool:
        """Whether a member of ``user_groups`` may use this profile."""
        return self.groups is None or bool(set(self.groups) & set(user_groups))

    def unusable_reason(self, user_groups: Iterable[str]) -> str | None:
        """Why a member of ``user_groups`` may not use this profile; None if they may."""
        if self.allows(user_groups):
            return None
        groups = ", ".join(self.groups or ())
        plural = "s" if len(self.groups or ()) > 1 else ""
        return f"only for members of group{plural} {groups}"


def profile_name(text: str, *, max_length: int = 64) -> str:
    """A valid profile name made from ``text`` (an image reference, a label), e.g.
    ``"quay.io/jupyter/scipy-notebook:2024-01"`` → ``"scipy-notebook-2024-01"``.

    The last path component of an image, without a ``:latest`` tag or a digest, in lower
    case with anything but letters, digits and ``._-`` turned into ``-``; ``"image"`` if
    nothing is left.
    """
    base = text.strip().split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(":latest")
    slug = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("._-")
    return slug[:max_length].rstrip("._-") or "image"


def load_profiles(items: Sequence[Mapping[str, Any] | Profile]) -> list[Profile]:
    """Validate the admin's profile list; raise :class:`ProfileConfigError` naming the culprit."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise ProfileConfigError("profiles must be a list of profile dicts")
    profiles: list[Profile] = []
    for i, item in enumerate(items):
        if isinstance(item, Profile):
            profiles.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ProfileConfigError(f"profile #{i + 1} must be a dict, not {type(item).__name__}")
        label = f"profile {item.get('name')!r}" if item.get("name") else f"profile #{i + 1}"
        try:
            profiles.append(Profile.model_validate(dict(item)))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"] if p not in ("gpu", "mig", "shared"))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "is not a profile field"
            elif err["type"] == "missing":
                msg = "is required"
            raise ProfileConfigError(
                f"{label}: {where + ' ' if where else ''}{msg}".rstrip()
            ) from e
    names = [p.name for p in profiles]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProfileConfigError(f"profile names must be unique; {', '.join(dupes)} repeats")
    defaults = [p.name for p in profiles if p.default]
    if len(defaults) > 1:
        raise ProfileConfigError(
            f"at most one profile may be the default; {', '.join(defaults)} all say default"
        )
    return profiles


@dataclass(frozen=True)
class Selection:
    """What validated ``user_options`` ask for: a profile, a GPU count and a group to charge."""

    profile: Profile
    gpus: int | None = None
    group: str | None = None

    @property
    def shape(self) -> GpuShape | None:
        """The shape to ask the scheduler for (None: a CPU-only profile asks for nothing)."""
        return self.profile.shape_for(self.gpus)

    @property
    def needs_lease(self) -> bool:
        """Whether a server of this selection needs a GPU lease (False: CPU only)."""
        return self.profile.has_gpu

    @property
    def image(self) -> str | None:
        """The container image (None: the profile names none; local processes need none)."""
        return self.profile.image

    def lease_body(self, *, user: str, label: str) -> dict[str, Any]:
        """The body of ``POST /api/v1/leases`` for this selection, on behalf of ``user``."""
        if self.shape is None:
            raise ValueError(
                f"profile {self.profile.name} has no GPU: there is no lease to ask for"
            )
        return {
            "shape": self.shape.model_dump(exclude_none=True),
            "group": self.group,
            "profile": self.profile.name,
            "label": label,
            "user": user,
        }


def _pick_default(profiles: Sequence[Profile], user_groups: set[str]) -> Profile:
    usable = [p for p in profiles if p.allows(user_groups)]
    if not usable:
        raise UserOptionsError(
            "no GPU profile is open to you; ask an admin to add you to a group that has one",
            option="profile",
        )
    return next((p for p in usable if p.default), usable[0])


def default_gpu_profile(profiles: Sequence[Profile], user_groups: Iterable[str]) -> Profile | None:
    """The profile with a GPU that work sent to the pool takes when none is named (a job,
    "Run as GPU job" from a CPU-only server): the default profile if it has a GPU, else
    the first open to the user that has one; None if none has."""
    groups = set(user_groups)
    usable = [p for p in profiles if p.has_gpu and p.allows(groups)]
    return next((p for p in usable if p.default), usable[0] if usable else None)


def _as_count(value: Any) -> int:
    if isinstance(value, bool):
        raise UserOptionsError("gpus must be a whole number such as 1 or 2", option="gpus")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise UserOptionsError(
        f"gpus must be a whole number such as 1 or 2, not {value!r:.40}", option="gpus"
    )


def _text(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 500:
        raise UserOptionsError(f"{key} must be a non-empty string", option=key)
    return value


def validate_user_options(
    options: Any, profiles: Sequence[Profile], user_groups: Iterable[str]
) -> Selection:
    """Check untrusted ``user_options`` against the allow-list and the profiles.

    Keys: ``profile`` (a profile name; default: the default profile open to the user),
    ``gpus`` (a count from the profile's ``gpu_counts``), ``group`` (a JupyterHub group
    of the user to charge) and ``image`` (must be the profile's image). Anything else
    raises :class:`UserOptionsError` with the sentence to show; nothing is changed.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise UserOptionsError('user_options must be a JSON object such as {"profile": "..."}')
    unknown = sorted(str(k) for k in options if k not in ALLOWED_OPTIONS)
    if unknown:
        names = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise UserOptionsError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {names}; "
            f"the options are {', '.join(ALLOWED_OPTIONS)}",
            option=unknown[0],
        )
    groups = set(user_groups)
    by_name = {p.name: p for p in profiles}
    name = _text(options, "profile")
    image = _text(options, "image")

    if name is not None:
        profile = by_name.get(name)
        if profile is None:
            offered = ", ".join(p.name for p in profiles if p.allows(groups)) or "none"
            raise UserOptionsError(
                f"there is no profile {name[:64]!r}; the profiles open to you are {offered}",
                option="profile",
            )
        reason = profile.unusable_reason(groups)
        if reason:
            raise UserOptionsError(
                f"profile {profile.name} is {reason}; you are not in any of them",
                option="profile",
            )
    elif image is not None:
        # an image alone names the first profile open to the user that runs it
        matching = [p for p in profiles if p.image == image and p.allows(groups)]
        if not matching:
            raise UserOptionsError(_image_refusal(image, profiles, groups), option="image")
        profile = next((p for p in matching if p.default), matching[0])
    else:
        profile = _pick_default(profiles, groups)

    if image is not None and image != profile.image:
        runs = f"({profile.image})" if profile.image else "(it names no image)"
        raise UserOptionsError(
            f"image {image[:100]!r} is not the image of profile {profile.name} "
            f"{runs}; leave image out or pick the profile that runs it",
            option="image",
        )

    gpus = profile.default_count
    if options.get("gpus") is not None:
        count = _as_count(options["gpus"])
        if profile.shape is None:
            if count != 0:
                raise UserOptionsError(
                    f"profile {profile.name} has no GPU (CPU only); leave gpus out or choose "
                    "a profile with GPUs",
                    option="gpus",
                )
        elif not isinstance(profile.shape, WholeGpus):
            if count != 1:
                raise UserOptionsError(
                    f"profile {profile.name} gives {describe(profile.shape)}; it has no GPU count "
                    "to choose (leave gpus out)",
                    option="gpus",
                )
        elif count not in profile.gpu_counts:
            allowed = ", ".join(str(n) for n in profile.gpu_counts)
            raise UserOptionsError(
                f"profile {profile.name} offers {allowed} GPU"
                f"{'s' if profile.gpu_counts != (1,) else ''}, not {count}",
                option="gpus",
            )
        else:
            gpus = count

    group = _text(options, "group")
    if group is not None:
        if group not in groups:
            raise UserOptionsError(
                f"you are not a member of group {group[:64]!r}, so it cannot be charged",
                option="group",
            )
        if profile.groups is not None and group not in profile.groups:
            raise UserOptionsError(
                f"profile {profile.name} is for group{'s' if len(profile.groups) > 1 else ''} "
                f"{', '.join(profile.groups)}; choose one of them to charge, not {group}",
                option="group",
            )
    return Selection(profile=profile, gpus=gpus, group=group)


def _image_refusal(image: str, profiles: Sequence[Profile], groups: set[str]) -> str:
    if any(p.image == image for p in profiles):
        return f"image {image[:100]!r} belongs to no profile open to you"
    images = sorted({p.image for p in profiles if p.allows(groups) and p.image})
    return (
        f"image {image[:100]!r} is not offered; the images are "
        f"{', '.join(images) or 'none'} (choose a profile instead)"
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Turn the spawn form's fields into ``user_options`` (still validated afterwards).

    The form sends ``profile``, ``group`` and one ``gpus-<profile>`` select per profile
    with a count to choose; only the chosen profile's count is kept. Any other field is
    passed on as is, so that validation refuses it exactly as it would from the REST API.
    """
    options: dict[str, Any] = {}
    fields = {k: (v[0] if isinstance(v, list | tuple) and v else v) for k, v in formdata.items()}
    fields.pop("_xsrf", None)
    profile = fields.pop("profile", None)
    if profile not in (None, ""):
        options["profile"] = profile
    counts = {k: fields.pop(k) for k in list(fields) if k.startswith("gpus-")}
    if profile and f"gpus-{profile}" in counts:
        options["gpus"] = counts[f"gpus-{profile}"]
    group = fields.pop("group", None)
    if group not in (None, ""):
        options["group"] = group
    for key, value in fields.items():  # unexpected fields: validation refuses them
        options[key] = value
    if "gpus" in options and isinstance(options["gpus"], str) and options["gpus"].isdigit():
        options["gpus"] = int(options["gpus"])
    return options


def shape_of(data: Mapping[str, Any]) -> WholeGpus | MigSlice | SharedGpu:
    """Parse a shape dict (as in a lease) with the scheduler's model."""
    return _SHAPE.validate_python(dict(data))
