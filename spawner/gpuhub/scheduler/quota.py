"""Quotas of users and groups, and the periods their GPU-hour budgets run over."""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatch
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..terms import fmt_hours, fmt_units

__all__ = ["QuotaSpec", "fmt_hours", "fmt_units", "period_phrase", "period_window"]

UTC = dt.UTC


class QuotaSpec(BaseModel):
    """What a user or group may hold. ``None`` means no limit on that axis.

    ``max_units`` caps concurrent GPU units (whole GPU = 1, MIG slice = its share of
    the GPU's slices, shared GPU = 1/k); ``gpu_hours`` caps GPU-hours per ``period``,
    ``credits`` what they are charged per ``period`` (GPU-hours x the models' rates);
    ``per_user_max_units`` (groups only) caps each member's share of the group.
    ``spot_max_units`` and ``spot_gpu_hours`` are the spot allowance: spot (preemptible)
    leases count against them instead of ``max_units`` and ``gpu_hours``; ``credits`` pay
    for both tiers. Group quotas only: ``cohort`` names the groups that lend each other
    their unused ``max_units``; ``borrow_limit`` caps what this group borrows at once,
    ``lend_limit`` what it lends (None: no cap).
    """

    model_config = ConfigDict(extra="forbid")

    max_units: float | None = Field(None, ge=0, le=100_000)
    gpu_hours: float | None = Field(None, ge=0, le=10_000_000)
    credits: float | None = Field(
        None, ge=0, le=1_000_000_000, description="Credits per period (GPU-hours x rates)"
    )
    period: Literal["day", "week", "month", "term"] = "week"
    term_start: dt.date | None = None
    term_end: dt.date | None = None
    allowed_shapes: list[str] | None = Field(
        None, description="Globs over 'gpu', 'mig:<profile>', 'shared'; None allows all"
    )
    allowed_profiles: list[str] | None = Field(
        None, description="Globs over spawner profile names; None allows all"
    )
    priority: int = Field(0, ge=-1000, le=1000)
    per_user_max_units: float | None = Field(None, ge=0, le=100_000)
    spot_max_units: float | None = Field(
        None, ge=0, le=100_000, description="Concurrent GPU units of spot leases"
    )
    spot_gpu_hours: float | None = Field(
        None, ge=0, le=10_000_000, description="GPU-hours of spot leases per period"
    )
    cohort: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Groups naming the same cohort lend each other unused max_units",
    )
    borrow_limit: float | None = Field(None, ge=0, le=100_000)
    fair_share: float | None = Field(
        None, gt=0, le=1_000_000, description="Group fair-share weight; default max_units, else 1"
    )
    lend_limit: float | None = Field(None, ge=0, le=100_000)

    @model_validator(mode="after")
    def _check_term(self) -> QuotaSpec:
        if self.period == "term":
            if not (self.term_start and self.term_end):
                raise ValueError("period 'term' needs term_start and term_end (YYYY-MM-DD)")
            if self.term_end <= self.term_start:
                raise ValueError("term_end must be after term_start")
        elif self.term_start or self.term_end:
            raise ValueError("term_start and term_end are only for period 'term'")
        lending = ("borrow_limit", "lend_limit")
        if self.cohort is None and any(getattr(self, f) is not None for f in lending):
            raise ValueError("borrow_limit and lend_limit need a cohort")
        if self.lend_limit is not None and self.max_units is not None:
            if self.lend_limit > self.max_units:
                raise ValueError(
                    f"lend_limit ({self.lend_limit:g}) cannot be above max_units "
                    f"({self.max_units:g}): a group lends only its own unused share"
                )
        if self.cohort is not None and self.max_units is None:
            raise ValueError(
                "a quota in a cohort needs max_units: the share it lends and borrows beyond"
            )
        for field in ("allowed_shapes", "allowed_profiles"):
            for pat in getattr(self, field) or ():
                if not pat or len(pat) > 128:
                    raise ValueError(f"{field} entries must be 1-128 characters")
        return self

    @property
    def max_units_exact(self) -> Fraction | None:
        """``max_units`` as an exact fraction (limits compare exactly with 1/7 slices)."""
        return None if self.max_units is None else _exact(self.max_units)

    @property
    def spot_max_units_exact(self) -> Fraction | None:
        """``spot_max_units`` as an exact fraction."""
        return None if self.spot_max_units is None else _exact(self.spot_max_units)

    def exact(self, field: str) -> Fraction | None:
        """A units field (``borrow_limit``, ``lend_limit``, ...) as an exact fraction."""
        value = getattr(self, field)
        return None if value is None else _exact(value)

    @property
    def per_user_exact(self) -> Fraction | None:
        """``per_user_max_units`` as an exact fraction."""
        return None if self.per_user_max_units is None else _exact(self.per_user_max_units)

    def allows_shape(self, label: str) -> bool:
        """Whether a shape label ('gpu', 'mig:1g.10gb', 'shared') is allowed."""
        return self.allowed_shapes is None or any(fnmatch(label, p) for p in self.allowed_shapes)

    def allows_profile(self, profile: str | None) -> bool:
        """Whether a spawner profile name is allowed."""
        if self.allowed_profiles is None:
            return True
        return profile is not None and any(fnmatch(profile, p) for p in self.allowed_profiles)


@lru_cache(maxsize=1024)
def _exact(value: float) -> Fraction:
    """A units figure as the exact fraction its decimal spells (66.67 -> 6667/100); checked
    on every decision, and the figures quotas use are few."""
    return Fraction(str(value))


_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def period_window(spec: QuotaSpec, now: float) -> tuple[float, float]:
    """The budget window ``[start, end)`` (POSIX seconds) that contains ``now``."""
    t = dt.datetime.fromtimestamp(now, UTC)
    day = dt.datetime(t.year, t.month, t.day, tzinfo=UTC)
    if spec.period == "day":
        start, end = day, day + dt.timedelta(days=1)
    elif spec.period == "week":
        start = day - dt.timedelta(days=t.weekday())
        end = start + dt.timedelta(days=7)
    elif spec.period == "month":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        assert spec.term_start and spec.term_end
        start = dt.datetime.combine(spec.term_start, dt.time(), UTC)
        end = dt.datetime.combine(spec.term_end, dt.time(), UTC)
    return start.timestamp(), end.timestamp()


def period_phrase(spec: QuotaSpec, now: float) -> str:
    """'this week (resets Monday 00:00 UTC)' and the like, for messages."""
    _, end = period_window(spec, now)
    e = dt.datetime.fromtimestamp(end, UTC)
    if spec.period == "day":
        return "today (resets 00:00 UTC)"
    if spec.period == "week":
        return f"this week (resets {_WEEKDAYS[e.weekday()]} 00:00 UTC)"
    if spec.period == "month":
        return f"this month (resets {e:%Y-%m-%d} 00:00 UTC)"
    return f"this term ({spec.term_start} to {spec.term_end})"
