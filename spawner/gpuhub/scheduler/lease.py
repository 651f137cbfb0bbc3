"""The lease: a request for GPUs and, once granted, the devices that belong to it.

:data:`FIELDS` is the one list of what a lease is made of: for each part, its column(s)
in the ``leases`` table and how the REST API shows it. The row mapping both ways
(:func:`lease_row`, :func:`lease_from_row`) and :meth:`Lease.to_dict` are built from it,
so a new field is added in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from ..terms import QUEUED
from .shapes import MigSlice, Shape, SharedGpu, WholeGpus

SHAPE = TypeAdapter(Shape)
UTC = dt.UTC


def iso(ts: float | None) -> str | None:
    """POSIX seconds to an ISO 8601 UTC string."""
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(kw_only=True)
class Lease:
    """A request for GPUs and, once granted, the devices that belong to it.

    ``idempotency_key`` is the client's key for the request that created the lease (unique
    per user) and ``request_digest`` a digest of that request, so that a retry with the
    same key is told apart from a different request reusing it. ``user_groups`` are the
    user's hub groups when they asked: reservations place their groups' members.
    """

    id: int
    user: str
    group: str | None
    status: str
    shape: WholeGpus | MigSlice | SharedGpu
    units: Fraction
    priority: int = 0
    profile: str | None = None
    label: str = ""
    hours: float | None = None
    node: str | None = None
    devices: list[dict] = field(default_factory=list)
    requested_at: float = 0.0
    granted_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    idempotency_key: str | None = None
    request_digest: str | None = None
    user_groups: list[str] = field(default_factory=list)  # the user's hub groups when asked
    rate: float | None = None  # credits per GPU-hour (of one unit), fixed when granted
    tier: str = "guaranteed"  # or "spot": preemptible, discounted
    discount: float = 1.0
    notice_at: float | None = None  # a preemption notice: when it was given,
    deadline: float | None = None  # and when the work must be gone
    borrowed_from: str | None = None  # the group whose unused share it runs on
    #: Fair-share factors (its group's, its user's in the group), memory only: recomputed
    #: when it is asked for and at each tick (:mod:`.fairshare`); 1 is who used nothing.
    fair: tuple[float, float] = (1.0, 1.0)

    @property
    def slots(self) -> tuple[tuple[str, int], ...]:
        """The (device id, slot) pairs this lease holds."""
        return tuple((d["uuid"], d.get("slot", 0)) for d in self.devices)

    @property
    def order(self) -> tuple[bool, int, float, float, float, int]:
        """Queue order: guaranteed before spot, then higher priority, then the higher
        fair-share factor of its group, then of its user in the group, then older first."""
        return (
            self.tier == "spot", -self.priority, -self.fair[0], -self.fair[1],
            self.requested_at, self.id,
        )  # fmt: skip

    def principals(self) -> list[tuple]:
        """Whom this lease is charged to: ``("user", name)``, ``("group", name)``,
        ``("member", group, user)``; a spot lease's keys start with ``"spot"`` (its own
        allowance)."""
        keys: list[tuple] = [("user", self.user)]
        if self.group:
            keys += [("group", self.group), ("member", self.group, self.user)]
        if self.tier == "spot":
            return [("spot", *k) for k in keys]
        return keys

    def gpu_hours(self, now: float) -> float:
        """GPU-hours used so far (units x hours held)."""
        if self.granted_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else now
        return float(self.units) * max(0.0, end - self.granted_at) / 3600

    def overlap_hours(self, start: float, end: float) -> float:
        """GPU-hours of this lease that fall between ``start`` and ``end``."""
        if self.granted_at is None:
            return 0.0
        a = max(self.granted_at, start)
        b = end if self.ended_at is None else min(self.ended_at, end)
        return float(self.units) * max(0.0, b - a) / 3600

    def overlap_credits(self, start: float, end: float) -> float:
        """Credits this lease is charged between ``start`` and ``end``: its GPU-hours
        there x its rate x its tier's discount (0 before it is granted)."""
        return self.overlap_hours(start, end) * (self.rate or 0.0) * self.discount

    def credits(self, now: float) -> float:
        """Credits charged so far."""
        return self.overlap_credits(self.granted_at or 0.0, now)

    def to_dict(self, now: float, position: int | None = None) -> dict[str, Any]:
        """The lease as the REST API shows it (``position``: its place in the queue)."""
        return {f.name: f.show(self, now, position) for f in FIELDS if f.show is not None}


def log_line(lease: Lease) -> str:
    """A lease for the log: id, status, user, group, shape, node and devices."""
    devices = ",".join(d["uuid"] for d in lease.devices) or "-"
    return (
        f"lease {lease.id} {lease.status}: user={lease.user} group={lease.group} "
        f"shape={lease.shape.label} node={lease.node} devices={devices}"
    )


def queue_order(leases: Iterable[Lease]) -> list[Lease]:
    """The queued leases among ``leases``, in the order the scheduler considers them."""
    return sorted((x for x in leases if x.status == QUEUED), key=lambda x: x.order)


# -- the one field list ------------------------------------------------------------------


class LeaseField(NamedTuple):
    """One part of a lease: how it goes into a row, comes out of one, and is shown.

    ``to_row`` gives the column values of the part (None: not stored), ``from_row`` reads
    it back from a ``leases`` row, ``show(lease, now, position)`` is its value in the REST
    API (None: not shown). Parts that are only shown (``gpu_hours``) have no column.
    """

    name: str
    to_row: Callable[[Lease], dict[str, Any]] | None
    from_row: Callable[[Any], Any] | None
    show: Callable[[Lease, float, int | None], Any] | None


def _same(value: Any) -> Any:
    return value


def stored(
    name: str,
    column: str | None = None,
    *,
    dump: Callable[[Any], Any] = _same,
    load: Callable[[Any], Any] = _same,
    show: Callable[[Any], Any] | None = _same,
) -> LeaseField:
    """A part kept in one column (``column`` defaults to ``name``)."""
    col = column or name
    return LeaseField(
        name,
        lambda lease: {col: dump(getattr(lease, name))},
        lambda row: load(getattr(row, col)),
        None if show is None else lambda lease, _now, _pos: show(getattr(lease, name)),
    )


def shown(name: str, show: Callable[[Lease, float, int | None], Any]) -> LeaseField:
    """A part the API shows but the table does not keep (derived from the others)."""
    return LeaseField(name, None, None, show)


def _notice(lease: Lease) -> dict[str, str | None] | None:
    if lease.notice_at is None:
        return None
    return {"notice_at": iso(lease.notice_at), "deadline": iso(lease.deadline)}


def _dump_shape(shape: WholeGpus | MigSlice | SharedGpu) -> dict:
    return shape.model_dump(exclude_none=True)


FIELDS: tuple[LeaseField, ...] = (  # in the order the API shows them
    stored("id"),
    stored("user"),
    stored("group", "group_name"),
    stored("status"),
    stored("shape", dump=_dump_shape, load=SHAPE.validate_python, show=_dump_shape),
    stored("profile"),
    stored("label"),
    stored("priority"),
    LeaseField(
        "units",
        lambda lease: {"units_num": lease.units.numerator, "units_den": lease.units.denominator},
        lambda row: Fraction(row.units_num, row.units_den),
        lambda lease, _now, _pos: float(lease.units),
    ),
    stored("hours", show=None),
    stored("node"),
    stored("devices", dump=lambda d: d or None, load=lambda d: list(d or [])),
    shown("simulated", lambda lease, _now, _pos: any(d.get("simulated") for d in lease.devices)),
    shown("position", lambda _lease, _now, pos: pos),
    stored("requested_at", show=iso),
    stored("granted_at", show=iso),
    stored("ended_at", show=iso),
    stored("end_reason"),
    shown("gpu_hours", lambda lease, now, _pos: round(lease.gpu_hours(now), 6)),
    stored("rate"),
    stored("tier"),
    stored("discount"),
    shown("credits", lambda lease, now, _pos: round(lease.credits(now), 6)),
    shown("preemption", lambda lease, _now, _pos: _notice(lease)),
    stored("notice_at", show=None),
    stored("deadline", show=None),
    stored("borrowed_from"),
    stored("idempotency_key", show=None),
    stored("request_digest", show=None),
    stored("user_groups", dump=lambda g: g or None, load=lambda g: list(g or []), show=None),
)

_TO_ROW = tuple(f.to_row for f in FIELDS if f.to_row is not None)
_FROM_ROW = tuple((f.name, f.from_row) for f in FIELDS if f.from_row is not None)


def lease_row(lease: Lease) -> dict[str, Any]:
    """The ``leases`` row of a lease (every column)."""
    row: dict[str, Any] = {}
    for to_row in _TO_ROW:
        row.update(to_row(lease))
    return row


def lease_from_row(row: Any) -> Lease:
    """The lease a ``leases`` row holds."""
    return Lease(**{name: from_row(row) for name, from_row in _FROM_ROW})


def request_digest(
    *,
    user: str,
    shape: WholeGpus | MigSlice | SharedGpu,
    group: str | None,
    profile: str | None,
    label: str,
    hours: float | None,
    tier: str = "guaranteed",
) -> str:
    """A digest of a lease request as it was asked (before the scheduler chose a group),
    to tell a retry (same digest) from another request that reuses an idempotency key."""
    asked = {
        "user": user,
        "shape": {  # one node dumps as before multi-node shapes were known
            k: v for k, v in shape.model_dump(mode="json").items() if k != "nodes" or v
        },
        "group": group,
        "profile": profile,
        "label": label,
        "hours": hours,
    }
    if tier != "guaranteed":  # guaranteed requests digest as before tiers were known
        asked["tier"] = tier
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
