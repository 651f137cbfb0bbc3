"""Request bodies of the REST API. Unknown fields are refused; every field is checked."""

from __future__ import annotations

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

    @field_validator("group", "user")
    @classmethod
    def _names(cls, v: str | None, info) -> str | None:
        return None if v is None else check_name(info.field_name, v)


__all__ = ["ActivityReport", "LeaseRequest", "QuotaSpec", "ValidationError", "check_name"]
