"""GPU activity of active leases: the latest summary each lease's server reported.

A single-user server samples its own devices and sends a short summary every so often
(``POST /api/v1/leases/{id}/activity``). Only the latest summary of each active lease is
kept, in memory: it is no time series, it is dropped when the lease ends, and a restart
of the service forgets it until the next report (at most one report interval later).

:class:`ActivityReport` is the request body, checked strictly; :class:`Activity` the
summary as kept, with the time it was reported; :class:`ActivityBoard` holds them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import SchedulerError
from .lease import Lease, iso

MAX_DEVICES = 64
#: Most kernels or terminals a report may count.
MAX_COUNT = 10000
#: A report may say the lease was last active at most this far in the future (clock skew).
CLOCK_SKEW_S = 300.0
_YEARS = (1970, 9000)


def _pct() -> Any:
    return Field(None, ge=0, le=100, description="percent, null when not available")


class DeviceReport(BaseModel):
    """What one device of the lease did over the window."""

    model_config = ConfigDict(extra="forbid")

    uuid: str = Field(min_length=1, max_length=255)
    utilization_mean_pct: float | None = _pct()
    utilization_max_pct: float | None = _pct()
    memory_used_mb: float = Field(ge=0, le=1e9)

    @model_validator(mode="after")
    def _mean_below_max(self) -> DeviceReport:
        _check_mean(self.utilization_mean_pct, self.utilization_max_pct, f"device {self.uuid}")
        return self


class ActivityReport(BaseModel):
    """Body of ``POST /api/v1/leases/{id}/activity``: the lease's activity over a window.

    Utilization is null where the device does not report it (MIG slices without GPM
    metrics): unknown, never 0. ``last_active_at`` is when any device was last busy
    above the server's threshold, or null when the server has not seen it busy.
    """

    model_config = ConfigDict(extra="forbid")

    window_s: float = Field(ge=1, le=3600)
    utilization_mean_pct: float | None = _pct()
    utilization_max_pct: float | None = _pct()
    memory_used_mb: float = Field(ge=0, le=1e9)
    last_active_at: str | None = Field(None, max_length=64)
    devices: list[DeviceReport] = Field(default_factory=list, max_length=MAX_DEVICES)
    # what the notebook side does besides the GPUs (absent from older servers: unknown)
    busy_kernels: int | None = Field(None, ge=0, le=MAX_COUNT)
    terminals: int | None = Field(None, ge=0, le=MAX_COUNT)

    @field_validator("last_active_at")
    @classmethod
    def _iso_time(cls, v: str | None) -> str | None:
        if v is not None:
            posix(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ActivityReport:
        _check_mean(self.utilization_mean_pct, self.utilization_max_pct, "the lease")
        uuids = [d.uuid for d in self.devices]
        dup = next((u for u in uuids if uuids.count(u) > 1), None)
        if dup is not None:
            raise ValueError(f"devices: device {dup} is listed twice")
        return self


#: How far a mean may lie above its max (a server rounds the mean, not always the max).
ROUNDING_PCT = 0.01


def _check_mean(mean: float | None, top: float | None, what: str) -> None:
    if mean is not None and top is not None and mean > top + ROUNDING_PCT:
        raise ValueError(
            f"utilization_mean_pct of {what} ({mean:g}) is above its utilization_max_pct ({top:g})"
        )


def posix(text: str) -> float:
    """An ISO 8601 date-time as POSIX seconds (UTC when it names no zone); ValueError if not."""
    try:
        t = dt.datetime.fromisoformat(text)
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        if _YEARS[0] <= t.astimezone(dt.UTC).year < _YEARS[1]:
            return t.timestamp()
    except (ValueError, OverflowError):
        pass
    raise ValueError(
        f"last_active_at must be an ISO 8601 date-time like 2026-11-01T12:00:00Z "
        f"from {_YEARS[0]} to {_YEARS[1] - 1}, not {text!r}"
    )


class LeaseNotActive(SchedulerError):
    """The lease is queued or has ended: it has no devices to report on."""

    code = "not_active"


@dataclass(frozen=True)
class DeviceActivity:
    """One device's part of a summary, with where it sits (for metrics and the pool)."""

    uuid: str
    utilization_mean_pct: float | None
    utilization_max_pct: float | None
    memory_used_mb: float
    slot: int = 0
    parent_uuid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The device's values as the API shows them."""
        return {
            "uuid": self.uuid,
            "utilization_mean_pct": self.utilization_mean_pct,
            "utilization_max_pct": self.utilization_max_pct,
            "memory_used_mb": self.memory_used_mb,
        }


@dataclass(frozen=True)
class Activity:
    """The latest summary of one active lease, as kept."""

    lease_id: int
    user: str
    node: str
    window_s: float
    utilization_mean_pct: float | None
    utilization_max_pct: float | None
    memory_used_mb: float
    last_active_at: float | None
    reported_at: float
    devices: tuple[DeviceActivity, ...]
    busy_kernels: int | None = None
    terminals: int | None = None

    @property
    def notebook_busy(self) -> bool:
        """Whether a kernel was executing or a terminal was open when the server reported."""
        return bool(self.busy_kernels) or bool(self.terminals)

    def idle_s(self, now: float) -> float | None:
        """Seconds since the lease was last active (None: not seen active)."""
        if self.last_active_at is None:
            return None
        return max(0.0, now - self.last_active_at)

    def to_dict(self, now: float) -> dict[str, Any]:
        """The summary as the API shows it, with ``reported_at`` and ``idle_s`` at ``now``."""
        idle = self.idle_s(now)
        return {
            "window_s": self.window_s,
            "utilization_mean_pct": self.utilization_mean_pct,
            "utilization_max_pct": self.utilization_max_pct,
            "memory_used_mb": self.memory_used_mb,
            "last_active_at": iso(self.last_active_at),
            "reported_at": iso(self.reported_at),
            "idle_s": None if idle is None else round(idle, 3),
            "busy_kernels": self.busy_kernels,
            "terminals": self.terminals,
            "devices": [d.to_dict() for d in self.devices],
        }

    def device_dict(self, uuid: str, now: float) -> dict[str, Any] | None:
        """One device's values with the lease's times: what a pool holder shows."""
        d = next((x for x in self.devices if x.uuid == uuid), None)
        if d is None:
            return None
        out = self.to_dict(now)
        del out["devices"]
        out.update(d.to_dict())
        del out["uuid"]
        return out


class ActivityBoard:
    """The latest :class:`Activity` of each active lease (memory only; see the module)."""

    def __init__(self) -> None:
        self._latest: dict[int, Activity] = {}

    def report(self, lease: Lease, report: ActivityReport, now: float) -> Activity:
        """Keep ``report`` as ``lease``'s latest; refuse one for a lease that is not active
        or that names a device the lease does not hold. Nothing changes on a refusal."""
        if lease.status != "active":
            raise LeaseNotActive(
                f"lease {lease.id} is {lease.status}, not active: only an active lease's "
                "activity is kept"
            )
        held = {d["uuid"]: d for d in lease.devices}
        for i, d in enumerate(report.devices):
            if d.uuid not in held:
                raise SchedulerError(
                    f"device {d.uuid} is not a device of lease {lease.id} "
                    f"(its devices: {', '.join(held) or 'none'})",
                    field=f"devices.{i}.uuid",
                )
        last = None if report.last_active_at is None else posix(report.last_active_at)
        if last is not None and last > now + CLOCK_SKEW_S:
            raise SchedulerError(
                f"last_active_at {report.last_active_at} is in the future; check the clock of "
                "the server that reports",
                field="last_active_at",
            )
        devices = tuple(
            DeviceActivity(
                d.uuid, d.utilization_mean_pct, d.utilization_max_pct, d.memory_used_mb,
                slot=int(held[d.uuid].get("slot", 0)), parent_uuid=held[d.uuid].get("parent_uuid"),
            )
            for d in report.devices
        )  # fmt: skip
        activity = Activity(
            lease_id=lease.id,
            user=lease.user,
            node=lease.node or "",
            window_s=report.window_s,
            utilization_mean_pct=report.utilization_mean_pct,
            utilization_max_pct=report.utilization_max_pct,
            memory_used_mb=report.memory_used_mb,
            last_active_at=None if last is None else min(last, now),
            reported_at=now,
            devices=devices,
            busy_kernels=report.busy_kernels,
            terminals=report.terminals,
        )
        self._latest[lease.id] = activity
        return activity

    def get(self, lease_id: int) -> Activity | None:
        """The latest summary of a lease, or None."""
        return self._latest.get(lease_id)

    def all(self) -> list[Activity]:
        """Every kept summary, by lease id."""
        return [self._latest[k] for k in sorted(self._latest)]

    def drop(self, lease_id: int) -> None:
        """Forget a lease's summary (it ended)."""
        self._latest.pop(lease_id, None)

    def keep_only(self, lease_ids: set[int]) -> None:
        """Forget the summaries of every lease not in ``lease_ids`` (after a reload)."""
        for lid in [k for k in self._latest if k not in lease_ids]:
            del self._latest[lid]
