"""Reservations over REST: devices kept for a JupyterHub group in a time window (lab hours).

``GET /api/v1/reservations[?group=NAME]`` and ``GET .../{id}`` are open to every logged-in
user (reservations are no secret: they explain why the queue waits); ``POST`` and
``DELETE`` need the gpuhub admin scope. A new reservation's group must exist in the hub.
Start and end are ISO 8601 times; without an offset they are wall times in the
reservation's ``timezone`` (default: ``GpuhubService.reservation_timezone``).

The scheduler re-dispatches its queue when a window opens or closes: the service calls
:meth:`~gpuhub.scheduler.core.Scheduler.tick` at each
:meth:`~gpuhub.scheduler.reads.SchedulerView.next_boundary` (:class:`ReservationTimer`),
and after each change.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tornado.ioloop import IOLoop

from ..names import check_name
from ..scheduler.core import Scheduler
from ..scheduler.errors import NotFound
from ..scheduler.shapes import Shape
from ..scheduler.windows import zone
from .base import BaseHandler, path_id
from .errors import ApiError

log = logging.getLogger("gpuhub.service")

#: The most devices one reservation may hold.
MAX_COUNT = 1024
MAX_NOTE = 500
#: The timer looks again at least this often (seconds), whatever the next boundary.
MAX_TIMER_DELAY = 300.0
#: Years a reservation's times may fall in.
_YEARS = (1970, 9000)


def check_time_zone(value: str) -> str:
    """``value`` if it is a known IANA time zone name, else ValueError with a sentence."""
    zone(value)  # the scheduler's own check, which it makes again when reserving
    return value


def parse_time(value: str, zone: str, field: str) -> float:
    """An ISO 8601 date-time as POSIX seconds; without an offset, a wall time in ``zone``."""
    try:
        t = dt.datetime.fromisoformat(value)
        if t.tzinfo is None:
            t = t.replace(tzinfo=zoneinfo.ZoneInfo(zone))
        ok = _YEARS[0] <= t.astimezone(dt.UTC).year < _YEARS[1]
    except (ValueError, OverflowError):
        ok = False
    if not ok or not re.search(r"[0-9][T ][0-9]", value):  # a date alone has no time
        raise ApiError(
            400,
            f"{field} must be an ISO 8601 date and time like 2026-12-08T14:00 (in the "
            f"reservation's time zone) or 2026-12-08T14:00+01:00, from {_YEARS[0]} to "
            f"{_YEARS[1] - 1}, not {value!r}",
            field=field,
        )
    return t.timestamp()


class ReservationRequest(BaseModel):
    """Body of ``POST /api/v1/reservations``."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(description="The JupyterHub group the devices are kept for")
    shape: Shape = Field(description="What is reserved: whole GPUs, MIG slices or shared GPUs")
    count: int = Field(ge=1, le=MAX_COUNT, description="How many devices of that shape")
    start: str = Field(max_length=64, description="Start of the first window (ISO 8601)")
    end: str = Field(max_length=64, description="End of the first window (ISO 8601)")
    repeat: Literal["once", "weekly"] = "once"
    timezone: str | None = Field(None, max_length=64, description="IANA time zone name")
    note: str = Field("", max_length=MAX_NOTE)

    @field_validator("group")
    @classmethod
    def _group(cls, v: str) -> str:
        return check_name("group", v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else check_time_zone(v)


class ReservationTimer:
    """Calls ``scheduler.tick()`` at each ``scheduler.view.next_boundary()`` (a window opens or
    closes) and arms itself again; :meth:`changed` after a reservation is made or deleted."""

    def __init__(self, scheduler: Scheduler, *, max_delay: float = MAX_TIMER_DELAY) -> None:
        self.scheduler = scheduler
        self.max_delay = max_delay
        self._handle: object | None = None
        self._loop: IOLoop | None = None

    def start(self) -> None:
        """Arm the timer on the running loop."""
        self._loop = IOLoop.current()
        self.arm()

    def arm(self) -> None:
        """(Re)schedule the next tick at the next boundary, or ``max_delay`` from now."""
        if self._loop is None:
            return
        if self._handle is not None:
            self._loop.remove_timeout(self._handle)
        boundary = self.scheduler.view.next_boundary()
        delay = self.max_delay
        if boundary is not None:
            # a hair late: the loop's monotonic clock and the wall clock may differ a little
            delay = min(max(boundary - self.scheduler.view.clock(), 0.0) + 0.01, self.max_delay)
        self._handle = self._loop.call_later(delay, self._fire)

    def _tick(self) -> None:
        try:
            self.scheduler.tick()
        except Exception:  # a failed tick must not stop the timer: log it, try again later
            log.exception("re-dispatching the queue at a reservation boundary failed")

    def _fire(self) -> None:
        self._handle = None
        self._tick()
        self.arm()

    def changed(self) -> None:
        """A reservation was made or deleted: dispatch now, then wait for the next boundary.
        (The change itself is done: a failure here is logged, and the timer tries again.)"""
        self._tick()
        self.arm()

    def stop(self) -> None:
        """Disarm."""
        if self._loop is not None and self._handle is not None:
            self._loop.remove_timeout(self._handle)
        self._handle = None


class _ReservationBase(BaseHandler):
    def _changed(self) -> None:
        changed: Callable[[], None] | None = self.settings.get("reservations_changed")
        if changed is not None:
            changed()
        else:
            self.scheduler.tick()

    def _view(self, reservation) -> dict:
        return reservation.to_dict(self.view.clock())


class ReservationsHandler(_ReservationBase):
    """``GET /api/v1/reservations`` (everyone) and ``POST`` (admins: reserve devices)."""

    def get(self) -> None:
        group = self.query_name("group", "group")
        items = self.view.reservations(group=group)
        self.write_json({"reservations": [self._view(r) for r in items]})

    async def post(self) -> None:
        self.require_admin("reserving devices")
        req: ReservationRequest = self.body(ReservationRequest)
        zone = req.timezone or self.settings.get("reservation_timezone") or "UTC"
        start = parse_time(req.start, zone, "start")
        end = parse_time(req.end, zone, "end")
        if req.shape.kind == "gpu" and req.shape.count != 1:
            raise ApiError(
                400,
                "shape.count must be 1 (or left out) in a reservation: give the number of "
                "GPUs as count",
                field="shape.count",
            )
        if req.shape.kind == "gpu" and req.shape.node_count > 1:
            raise ApiError(
                400,
                "shape.nodes must be 1 (or left out) in a reservation: it holds GPUs by "
                "count, wherever they are; a multi-node job asks for its nodes itself",
                field="shape.nodes",
            )
        if await self.settings["hub_api"].group(req.group) is None:
            raise NotFound(
                f"JupyterHub has no group {req.group}: check the name, or create the group "
                "first (gpuhub cohort create)",
                field="group",
            )
        reservation = self.scheduler.reserve(
            group=req.group, shape=req.shape, count=req.count, start=start, end=end,
            repeat=req.repeat, timezone=zone, note=req.note, by=self.user_name,
        )  # fmt: skip
        self._changed()
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{reservation.id}")
        self.write_json(self._view(reservation), status=201)


class ReservationHandler(_ReservationBase):
    """``GET`` (everyone) or ``DELETE`` (admins) one reservation."""

    def get(self, rid: str) -> None:
        self.write_json(self._view(self.view.reservation(path_id(rid, "reservation"))))

    def delete(self, rid: str) -> None:
        self.require_admin("deleting reservations")
        reservation = self.scheduler.unreserve(path_id(rid, "reservation"), by=self.user_name)
        self._changed()
        self.write_json(self._view(reservation))


__all__ = [
    "ReservationHandler",
    "ReservationRequest",
    "ReservationTimer",
    "ReservationsHandler",
    "check_time_zone",
    "parse_time",
]


default_handlers = [
    (r"/reservations", ReservationsHandler),
    (r"/reservations/([0-9]+)", ReservationHandler),
]
