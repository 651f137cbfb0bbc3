"""Reservations: devices set aside for a group's members in a time window, once or weekly.

An admin reserves ``count`` concrete devices of a shape (whole GPUs, MIG instances of a
profile, or shared GPUs with all their seats) for a hub group. The scheduler places a
lease with the reservation's rules (:meth:`ReservationBook.rules`):

* while a window is open, only the group's members (the lease's user's groups when they
  asked) are placed on the reserved devices, and members are placed on them first;
* outside it the devices serve everyone, except that a non-member lease is not placed on
  them when its expected end (now + its ``hours``, or + ``reservation_guard`` when it
  states none) would reach into the next window.

Running leases are never pre-empted: a window that opens only changes where the next
leases go. Two reservations whose windows overlap never share a device.

The scheduler owns one :class:`ReservationBook` (``Scheduler.book``) and stays the one
writer: it calls the book's writes inside its own transactions, and :meth:`ReservationBook.load`
rebuilds the book after a restart. The book asks nothing of the scheduler: it is given the
inventory and the guard when made (and each new inventory,
:meth:`~ReservationBook.use_inventory`), and the time and the pool with each question
(:meth:`~ReservationBook.place`, :meth:`~ReservationBook.held_back`,
:meth:`~ReservationBook.next_boundary`, :meth:`~ReservationBook.tick`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ..inventory import Node
from .db import ReservationRow
from .errors import NotFound, ReservationConflict, SchedulerError, Unsatisfiable
from .lease import SHAPE, Lease, iso
from .pool import Placement, Pool
from .shapes import MigSlice, SharedGpu, WholeGpus, model_matches
from .waiting import word
from .windows import REPEATS, WEEK, Windows, describe, local_iso, overlap, wall, zone

AnyShape = WholeGpus | MigSlice | SharedGpu
RESERVATIONS = ReservationRow.__table__

#: Default seconds a lease that states no hours is expected to run, for reservations.
RESERVATION_GUARD = 2 * 3600.0
#: The longest window, and the longest note.
MAX_WINDOW = WEEK
MAX_NOTE = 500


def _plural(n: int, shape: AnyShape) -> str:
    if isinstance(shape, SharedGpu):
        model = f" {shape.model}" if shape.model else ""
        return f"{n} shared{model} GPU{'' if n == 1 else 's'} (all their seats)"
    return f"{n} {word(shape)}{'' if n == 1 else 's'}"


@dataclass(kw_only=True)
class Reservation:
    """Devices reserved for the members of ``group`` in the windows ``start``-``end``
    (the first one; ``repeat`` "weekly" brings it back each week at the same wall-clock
    time in ``timezone``)."""

    id: int
    group: str
    shape: AnyShape
    count: int
    devices: list[dict]
    start: float
    end: float
    repeat: str
    timezone: str
    note: str
    created_by: str
    created_at: float
    deleted_at: float | None = None
    deleted_by: str | None = None
    windows: Windows = field(init=False, repr=False, compare=False)
    device_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.windows = Windows(self.start, self.end, self.repeat, zone(self.timezone))
        self.device_ids = frozenset(d["uuid"] for d in self.devices)

    def state(self, now: float) -> str:
        """``open`` (a window is open now), ``upcoming`` or ``ended``."""
        if self.windows.at(now) is not None:
            return "open"
        return "upcoming" if self.windows.after(now) is not None else "ended"

    def to_dict(self, now: float) -> dict[str, Any]:
        """The reservation as the REST API shows it."""
        tz = self.windows.tz
        cur, nxt = self.windows.at(now), self.windows.after(now)

        def span(w: tuple[float, float] | None) -> dict[str, str] | None:
            return None if w is None else {"start": local_iso(w[0], tz), "end": local_iso(w[1], tz)}

        if cur is not None:
            when = f"open now until {wall(cur[1], tz, now)}"
        elif nxt is not None:
            when = f"next open {wall(nxt[0], tz, now)}"
        else:
            when = "ended"
        return {
            "id": self.id,
            "group": self.group,
            "shape": self.shape.model_dump(exclude_none=True),
            "count": self.count,
            "devices": [dict(d) for d in self.devices],
            "repeat": self.repeat,
            "timezone": self.timezone,
            "start": local_iso(self.start, tz),
            "end": local_iso(self.end, tz),
            "state": "open" if cur else ("upcoming" if nxt else "ended"),
            "current": span(cur),
            "next": span(nxt),
            "note": self.note,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "message": f"{_plural(len(self.devices), self.shape)} reserved for {self.group} "
            f"{describe(self.windows)}; {when}",
        }


# attribute -> column of the ``reservations`` table (see ReservationRow)
_COLUMNS = {"id": "id", "group": "group_name", "count": "count", "devices": "devices",
            "start": "start_at", "end": "end_at", "repeat": "repeat", "timezone": "timezone",
            "note": "note", "created_by": "created_by", "created_at": "created_at",
            "deleted_at": "deleted_at", "deleted_by": "deleted_by"}  # fmt: skip


def reservation_row(r: Reservation) -> dict[str, Any]:
    """The ``reservations`` row of a reservation (by column name)."""
    row = {col: getattr(r, attr) for attr, col in _COLUMNS.items()}
    return {**row, "shape": r.shape.model_dump(exclude_none=True)}


def _candidates(nodes: list[Node], shape: AnyShape) -> list[dict]:
    """Every device a reservation of ``shape`` could hold, packed: nodes with the most
    of them first, then by GPU and MIG index."""
    out: list[dict] = []
    for node in nodes:
        for g in node.gpus:
            if not model_matches(g.model, shape.model):
                continue
            base = {"node": node.name, "model": g.model, "index": g.index,
                    "simulated": g.simulated}  # fmt: skip
            if isinstance(shape, WholeGpus) and g.mode == "exclusive":
                out.append({"uuid": g.uuid, "name": f"GPU {g.index}", **base})
            elif isinstance(shape, SharedGpu) and g.shares > 1:
                name = f"GPU {g.index} (shared by {g.shares})"
                out.append({"uuid": g.uuid, "name": name, **base, "shared_by": g.shares})
            elif isinstance(shape, MigSlice) and g.mig_enabled:
                for m in g.mig_instances:
                    if m.profile == shape.profile:
                        out.append({
                            "uuid": m.uuid, "name": f"GPU {g.index} slice {m.profile} #{m.index}",
                            **base, "parent_uuid": g.uuid, "mig_index": m.index,
                            "profile": m.profile,
                        })  # fmt: skip
    per_node: dict[str, int] = {}
    for d in out:
        per_node[d["node"]] = per_node.get(d["node"], 0) + 1
    return sorted(out, key=lambda d: (-per_node[d["node"]], d["node"]))  # stable: index order


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchedulerError(f"{name} must be a time (POSIX seconds), not {value!r}", field=name)
    return float(value)


class ReservationBook:
    """The scheduler's reservations and the placement rule they make.

    The scheduler owns one, built with the pool's inventory and its ``reservation_guard``,
    and alone calls its writes (:meth:`load`, :meth:`add`, :meth:`remove`), each inside one
    of its transactions; everything else here only reads. The book has no clock and no
    pool of its own: each question takes the time (``now``) and the pool to place on, so
    that the waiting estimate can ask the same ones of a copy of the pool at a later time.
    """

    def __init__(self, inventory: list[Node], *, guard: float = RESERVATION_GUARD) -> None:
        self.inventory = inventory
        #: Seconds a lease that states no hours is expected to run.
        self.guard = guard
        self._reservations: dict[int, Reservation] = {}
        self._next_rid = 1
        self._phase_cache: tuple[float, list] | None = None
        self._open: frozenset[int] = frozenset()  # ids whose window was open at the last tick

    def use_inventory(self, inventory: list[Node]) -> None:
        """Pick the devices of new reservations from ``inventory`` (the pool changed).
        Reservations made already keep their devices, also those gone from it."""
        self.inventory = inventory

    def __len__(self) -> int:
        """How many reservations there are (not deleted)."""
        return len(self._reservations)

    # -- the reservations --------------------------------------------------------------

    def load(self, conn: Connection, now: float) -> None:
        """Rebuild the reservations from the table (at load and after a failure)."""
        t = RESERVATIONS
        self._reservations, self._phase_cache = {}, None
        top = 0
        for row in conn.execute(select(t).order_by(t.c.id)):
            top = max(top, row.id)
            if row.deleted_at is not None:
                continue
            self._reservations[row.id] = Reservation(
                id=row.id, group=row.group_name, shape=SHAPE.validate_python(row.shape),
                count=row.count, devices=list(row.devices), start=row.start_at, end=row.end_at,
                repeat=row.repeat, timezone=row.timezone, note=row.note,
                created_by=row.created_by, created_at=row.created_at,
            )  # fmt: skip
        self._next_rid = top + 1
        self._open = self._open_at(now)

    def plan(
        self,
        *,
        group: str,
        shape: AnyShape,
        count: int,
        start: float,
        end: float,
        repeat: str,
        timezone: str,
        note: str,
        by: str,
        now: float,
    ) -> Reservation:
        """The reservation :meth:`Scheduler.reserve <gpuhub.scheduler.core.Scheduler.reserve>`
        would make at ``now``, its devices picked among those no reservation with an
        overlapping window holds; changes nothing (:meth:`add` keeps it).

        Raises :class:`ReservationConflict` when too few are left, :class:`Unsatisfiable`
        when the pool does not have them at all, and :class:`SchedulerError` naming the
        field for a bad value.
        """
        if not isinstance(group, str) or not group.strip() or len(group) > 255:
            raise SchedulerError("group must be a hub group name (1-255 characters)", field="group")
        if not isinstance(shape, WholeGpus | MigSlice | SharedGpu):
            raise SchedulerError("shape must be a GPU, MIG or shared shape", field="shape")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise SchedulerError(f"count must be a whole number >= 1, not {count!r}", field="count")
        start, end = _number(start, "start"), _number(end, "end")
        if repeat not in REPEATS:
            raise SchedulerError(
                f"repeat must be 'once' or 'weekly', not {repeat!r}", field="repeat"
            )
        try:
            tz = zone(timezone if isinstance(timezone, str) else "")
        except ValueError as e:
            raise SchedulerError(str(e), field="timezone") from None
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise SchedulerError(
                f"note must be text of at most {MAX_NOTE} characters", field="note"
            )
        if end <= start:
            raise SchedulerError("end must be after start", field="end")
        if end - start > MAX_WINDOW or (repeat == "weekly" and end - start >= WEEK):
            limit = "shorter than 7 days" if repeat == "weekly" else "at most 7 days long"
            raise SchedulerError(f"a {repeat} window must be {limit}", field="end")
        if repeat == "once" and end <= now:
            raise SchedulerError("this window has already ended; end must be in the future",
                                 field="end")  # fmt: skip
        windows = Windows(start, end, repeat, tz)
        need = count * shape.count if isinstance(shape, WholeGpus) else count
        candidates = _candidates(self.inventory, shape)
        if not candidates:
            raise Unsatisfiable(f"the pool has no {word(shape)}s to reserve", field="shape")
        if len(candidates) < need:
            raise Unsatisfiable(
                f"the pool has only {_plural(len(candidates), shape)}; cannot reserve {need}",
                field="count",
            )
        clashing = [r for r in self._reservations.values() if overlap(r.windows, windows)]
        taken = frozenset().union(*(r.device_ids for r in clashing))
        free = [d for d in candidates if d["uuid"] not in taken]
        if len(free) < need:
            who = "; ".join(
                f"reservation {r.id} for {r.group} {describe(r.windows)} holds {len(r.devices)}"
                for r in clashing
            )
            raise ReservationConflict(
                f"only {len(free)} of {_plural(len(candidates), shape)} are free of reservations "
                f"whose windows overlap this one ({who}); cannot reserve {need}",
                field="start",
            )
        return Reservation(
            id=self._next_rid, group=group, shape=shape, count=count, devices=free[:need],
            start=start, end=end, repeat=repeat, timezone=tz.key, note=note, created_by=by,
            created_at=now,
        )  # fmt: skip

    def add(self, conn: Connection, r: Reservation) -> Reservation:
        """Keep a reservation :meth:`plan` made: its row in ``conn``'s transaction, then memory."""
        conn.execute(insert(RESERVATIONS), reservation_row(r))
        self._next_rid = r.id + 1
        self._reservations[r.id] = r
        self._phase_cache = None
        return r

    def remove(self, conn: Connection, rid: int, *, now: float, by: str) -> Reservation:
        """Delete a reservation in ``conn``'s transaction (the row is kept, marked deleted)
        and from memory; returns it. :class:`NotFound` if there is none."""
        r = self.get(rid)
        t = RESERVATIONS
        conn.execute(
            update(t)
            .where(t.c.id == rid, t.c.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by=by)
        )
        del self._reservations[rid]
        self._phase_cache = None
        return r

    def all(self, *, group: str | None = None) -> list[Reservation]:
        """Reservations not deleted (of ``group`` if given), by id."""
        return [
            r for _, r in sorted(self._reservations.items()) if group is None or r.group == group
        ]

    def get(self, rid: int) -> Reservation:
        """A reservation by id; :class:`NotFound` if there is none (or it was deleted)."""
        r = self._reservations.get(rid)
        if r is None:
            raise NotFound(f"no reservation {rid}", field="id")
        return r

    # -- time --------------------------------------------------------------------------

    def tick(self, now: float) -> list[tuple[Reservation, str]]:
        """Open and close windows at ``now``: the reservations whose window ``opened`` or
        ``closed`` since the last tick, with that word (for the log; the rules themselves
        follow the time passed to each question)."""
        now_open = self._open_at(now)
        changes = [(self._reservations[i], "opened") for i in sorted(now_open - self._open)]
        changes += [
            (self._reservations[i], "closed")
            for i in sorted(self._open - now_open)
            if i in self._reservations
        ]
        self._open = now_open
        return changes

    def next_boundary(self, now: float) -> float | None:
        """The next time after ``now`` at which placement rules change: a window opens or
        closes, or the guard before a window starts to keep leases without hours off."""
        times = []
        for r in self._reservations.values():
            cur, nxt = r.windows.at(now), r.windows.after(now)
            if cur is not None:
                times.append(cur[1])
            if nxt is not None:
                times += [nxt[0] - self.guard, nxt[0], nxt[1]]
        return min((t for t in times if t > now), default=None)

    def boundaries(self, now: float, until: float) -> list[float]:
        """Times after ``now`` up to ``until`` at which placement rules change: windows
        opening and closing, and guards starting, sorted."""
        guard = self.guard
        out: set[float] = set()
        for r in self._reservations.values():
            for s, e in r.windows.between(now, until + guard):
                out.update(t for t in (s - guard, s, e) if now < t <= until)
        return sorted(out)

    def _open_at(self, now: float) -> frozenset[int]:
        return frozenset(r.id for r, cur, _ in self._phases(now) if cur is not None)

    def _phases(self, now: float) -> list[tuple]:
        """(reservation, its window open now or None, its next window or None), for the
        reservations that still have windows; remembered for one ``now``."""
        cache = self._phase_cache
        if cache is not None and cache[0] == now:
            return cache[1]
        out = []
        for r in self._reservations.values():
            cur, nxt = r.windows.at(now), r.windows.after(now)
            if cur is not None or nxt is not None:
                out.append((r, cur, nxt))
        self._phase_cache = (now, out)
        return out

    # -- placement: the one rule every grant, preview and estimate uses ------------------

    def rules(self, lease: Lease, now: float) -> tuple | None:
        """(device ids to avoid, device ids to prefer) for placing ``lease`` at ``now``
        (each None when empty); None when there are no reservations at all."""
        if not self._reservations:
            return None
        groups = lease.user_groups
        horizon = now + (lease.hours * 3600 if lease.hours else self.guard)
        avoid: set[str] = set()
        prefer: set[str] = set()
        for r, cur, nxt in self._phases(now):
            if r.group in groups:
                if cur is not None:
                    prefer |= r.device_ids
            elif cur is not None or (nxt is not None and nxt[0] < horizon):
                avoid |= r.device_ids
        prefer -= avoid
        return (frozenset(avoid) or None, frozenset(prefer) or None)

    def place(
        self, lease: Lease, now: float, pool: Pool, *, shape: AnyShape | None = None
    ) -> Placement | None:
        """Where ``lease`` (or ``shape`` for its user) goes in ``pool`` at ``now`` under
        the reservations, or None when it does not fit."""
        shape = lease.shape if shape is None else shape
        if not self._reservations:  # the hot path: no reservations, no rules
            return pool.place(shape)
        return pool.place(shape, *self.rules(lease, now))  # type: ignore[misc]

    def blocks(self, lease: Lease, now: float, pool: Pool) -> bool:
        """Whether reservations alone keep ``lease`` from fitting in ``pool`` now."""
        rules = self.rules(lease, now)
        return bool(rules and rules[0]) and pool.place(lease.shape) is not None

    def place_reserved(self, lease: Lease, now: float, pool: Pool) -> Placement | None:
        """Where ``lease`` fits on the devices of its groups' open reservations, or None.

        Under the strict policy, once a request that reservations hold back heads the
        queue, these devices are the only ones served past it: they are not its to wait for.
        """
        rules = self.rules(lease, now)
        if not rules or rules[1] is None:
            return None
        return pool.place_within(lease.shape, rules[0], rules[1])

    def protects(self, lease: Lease, now: float) -> bool:
        """Whether ``lease`` runs on the devices of a reservation of one of its user's
        groups during that reservation's window (preemption never takes it then)."""
        if not self._reservations:
            return False
        held = {d["uuid"] for d in lease.devices}
        return any(
            cur is not None and r.group in lease.user_groups and r.device_ids & held
            for r, cur, _ in self._phases(now)
        )

    def held_back(self, lease: Lease, now: float, pool: Pool) -> str | None:
        """Which reservations keep ``lease`` off devices of ``pool`` it would fit on now,
        and until when, for people; None when none do (the pool is busy anyway)."""
        rules = self.rules(lease, now)
        if rules is None or rules[0] is None or pool.place(lease.shape) is None:
            return None
        avoid = rules[0]
        mine = set(lease.user_groups)
        holding = [(r, cur, nxt) for r, cur, nxt in self._phases(now)
                   if r.group not in mine and r.device_ids & avoid]  # fmt: skip
        decisive = [
            x for x in holding if pool.place(lease.shape, avoid - x[0].device_ids) is not None
        ]
        parts, guard = [], False
        for r, cur, nxt in decisive or holding:
            tz = r.windows.tz
            if cur is not None:
                parts.append(f"{r.group} until {wall(cur[1], tz, now)}")
            else:
                guard = True
                parts.append(
                    f"{r.group} from {wall(nxt[0], tz, now)} until {wall(nxt[1], tz, now)}"
                )
        msg = f"the free {word(lease.shape)}s are reserved for {' and '.join(parts)}"
        if guard:
            ask = f"for {lease.hours:g} h" if lease.hours else "stating no hours"
            msg += f" (a request {ask} would still run then)"
        return msg
