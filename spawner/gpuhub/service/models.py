"""Request bodies of the REST API. Unknown fields are refused; every field is checked."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..names import check_name
from ..scheduler.activity import ActivityReport
from ..scheduler.quota import QuotaSpec
from ..scheduler.shapes import Shape


class LeaseRequest(BaseModel):
    """Body of ``POST /api/v1/leases``."""

    model_config = ConfigDict(extra="forbid")

    shape: Shape
    group: str | None = Field(
        None, description="JupyterHub group to charge; default: the one with a quota"
    )
    profile: str | None = Field(None, max_length=255, description="Spawner profile name")
    label: str = Field("", max_length=255, description="What holds the lease, e.g. 'server:alice/'")
    hours: float | None = Field(None, gt=0, le=24 * 366, description="Expected duration in hours")
    user: str | None = Field(None, description="Request for this user (admins only)")
    tier: Literal["guaranteed", "spot"] = Field(
        "guaranteed",
        description="'spot': preemptible capacity at a discount, where an admin offers it",
    )

    @field_validator("group", "user")
    @classmethod
    def _names(cls, v: str | None, info) -> str | None:
        return None if v is None else check_name(info.field_name, v)


class LeasePlacement(BaseModel):
    """Body of ``PUT /api/v1/leases/{id}/devices``: the GPU indices on the lease's node
    that a cluster engine gave the lease's work (Slurm picks them for ``--gres=gpu:N``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    indices: list[Annotated[int, Field(ge=0, le=4095)]] = Field(
        min_length=1, max_length=64, description="GPU indices on the lease's node"
    )

    @field_validator("indices")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("indices must be distinct")
        return v


__all__ = [
    "ActivityReport",
    "LeasePlacement",
    "LeaseRequest",
    "QuotaSpec",
    "ValidationError",
    "check_name",
]
