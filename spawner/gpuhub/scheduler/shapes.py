"""What a request asks for: N whole GPUs, one MIG slice, or a seat on a shared GPU."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..terms import describe

__all__ = ["MAX_NODES", "MigSlice", "Shape", "SharedGpu", "WholeGpus", "describe", "model_matches"]

# matched whole (fullmatch: "$" would also match before a trailing newline), ASCII digits
_PROFILE = re.compile(r"([0-9]+c\.)?[0-9]+g\.[0-9]+gb")
#: The most nodes one request may span.
MAX_NODES = 16
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.*?\-]{0,63}")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        None, description="GPU model to match, e.g. 'H100' (substring, or a glob such as 'A100*')"
    )

    @field_validator("model")
    @classmethod
    def _check_model(cls, v: str | None) -> str | None:
        if v is not None and not _MODEL.fullmatch(v):
            raise ValueError("must be 1-64 letters, digits, spaces or '._-*?', e.g. 'H100'")
        return v


class WholeGpus(_Shape):
    """``count`` whole GPUs on one node, NVLink-connected where possible; or, with
    ``nodes`` > 1, ``count`` on each of that many nodes, all granted at once (a multi-node
    job). One node is kept as None, so shapes without ``nodes`` read and dump as before."""

    kind: Literal["gpu"] = "gpu"
    count: int = Field(1, ge=1, le=64)
    nodes: int | None = Field(
        None, ge=1, le=MAX_NODES, description="nodes, each with `count` GPUs (default 1)"
    )

    @field_validator("nodes")
    @classmethod
    def _one_node_is_none(cls, v: int | None) -> int | None:
        return None if v == 1 else v

    @property
    def node_count(self) -> int:
        """How many nodes the shape spans."""
        return self.nodes or 1

    @property
    def units(self) -> int:
        """Whole GPUs in all: ``count`` on each node."""
        return self.count * self.node_count

    @property
    def label(self) -> str:
        """The name quotas match with ``allowed_shapes``."""
        return "gpu"

    @property
    def bucket(self) -> tuple:
        """Requests with equal buckets fit exactly when each other fits."""
        return ("gpu", self.count, self.model, self.node_count)


class MigSlice(_Shape):
    """One MIG instance of a named profile such as ``1g.10gb``."""

    kind: Literal["mig"]
    profile: str

    @field_validator("profile")
    @classmethod
    def _check_profile(cls, v: str) -> str:
        if not _PROFILE.fullmatch(v):
            raise ValueError("must be a MIG profile such as '1g.10gb' or '1c.3g.40gb'")
        return v

    @property
    def label(self) -> str:
        """The name quotas match with ``allowed_shapes``."""
        return f"mig:{self.profile}"

    @property
    def bucket(self) -> tuple:
        """Requests with equal buckets fit exactly when each other fits."""
        return ("mig", self.profile, self.model)


class SharedGpu(_Shape):
    """A seat on a time-sliced GPU (at most k holders; charged 1/k)."""

    kind: Literal["shared"]

    @property
    def label(self) -> str:
        """The name quotas match with ``allowed_shapes``."""
        return "shared"

    @property
    def bucket(self) -> tuple:
        """Requests with equal buckets fit exactly when each other fits."""
        return ("shared", self.model)


Shape = Annotated[WholeGpus | MigSlice | SharedGpu, Field(discriminator="kind")]


def model_matches(model: str, wanted: str | None) -> bool:
    """Whether a GPU model (as NVML names it) matches what a request asked for."""
    if not wanted:
        return True
    m, w = model.lower(), wanted.lower()
    if any(c in w for c in "*?"):
        return fnmatch(m, w)
    return w in m or w.replace("-", " ") in m.replace("-", " ")
