"""Why a queued request waits, until about when, and what is free instead.

Read only, and computed only when someone asks (lease views, the queue, spawn progress):
the scheduler's decisions never pay for it. :class:`WaitingExplainer` is a reader over the
scheduler's state (a :class:`~gpuhub.scheduler.state.SchedulerState`); the read API
(:class:`~gpuhub.scheduler.reads.SchedulerView`) holds one and answers ``waiting`` with
it. It places requests only through the reservation book's rule, as the scheduler does.
For each queued lease it gives

* a ``reason`` code and a sentence: the pool has no room for the shape (``pool_busy``),
  a quota no longer allows it (``quota_limit``), devices it would fit on are reserved for
  another group now or before it would end (``reserved``), or requests ahead of it come
  first (``queue_order``);
* an ``estimate``: the earliest time it could be granted, found by replaying the queue
  on a copy of the pool as the running leases end. A lease is expected to end at its
  stated ``hours`` when it gave them, else after the median length of ended leases of
  its shape over the last :data:`HISTORY_DAYS` days (those longer than it has already
  run), else never, and reserved windows open and close as they will; the estimate says
  which of these it rests on, and is null when the request cannot be reached through
  known ends;
* ``alternatives``: shapes with devices free now that the user's quota allows (on top of
  what they already run).
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..inventory import Node
from ..terms import ACTIVE, QUEUED, RELEASED
from .lease import SHAPE, Lease, iso, queue_order
from .shapes import MigSlice, SharedGpu, WholeGpus
from .store import LEASES, Store

if TYPE_CHECKING:
    from .state import SchedulerState

#: Days of ended leases whose lengths estimate when running leases without stated hours end.
HISTORY_DAYS = 14
#: At most this many recent ended leases are read for those lengths.
HISTORY_LIMIT = 5000
#: Seconds those lengths are reused before the ledger is read again.
HISTORY_TTL = 60.0
#: How far ahead estimates follow reserved windows opening and closing.
REPLAY_SPAN = 14 * 86400.0

POOL_BUSY = "pool_busy"
QUOTA_LIMIT = "quota_limit"
QUEUE_ORDER = "queue_order"
RESERVED = "reserved"
#: Every reason code a queued request can carry.
REASONS = (POOL_BUSY, QUOTA_LIMIT, QUEUE_ORDER, RESERVED)

RESERVATION = "reservation"  # in a replay: a reserved window opened or closed
#: An estimate this close (seconds) is "any moment": its clock time would be now's.
ANY_MOMENT_S = 60.0
#: What an estimate rests on, in words.
BASES = {
    "hours": "from running leases' stated hours",
    "history": f"from the lengths of leases of the same shapes in the last {HISTORY_DAYS} days",
    "mixed": "from running leases' stated hours and the lengths of recent leases",
}

AnyShape = WholeGpus | MigSlice | SharedGpu


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def word(shape: AnyShape) -> str:
    """One of what a shape takes: 'H100 GPU', 'MIG 1g.5gb slice', 'shared L4 GPU seat'."""
    model = f" {shape.model}" if shape.model else ""
    if isinstance(shape, WholeGpus):
        return f"{model} GPU".strip()
    if isinstance(shape, MigSlice):
        return f"MIG {shape.profile}{model} slice"
    return f"shared{model} GPU seat"


def noun(shape: AnyShape, n: int) -> str:
    """``n`` of what a shape takes, counted: '4 H100 GPUs', '7 MIG 1g.5gb slices'."""
    return _plural(n, word(shape))


def _share_percent(factor: float) -> str:
    """The use a fair-share factor ``2 ** -(use / share)`` stands for, as a percentage of
    the share: 0.5 -> "100 %"."""
    return f"{-math.log2(max(factor, 1e-12)) * 100:.0f} %"


def clock_time(ts: float, now: float) -> str:
    """'14:20 UTC' today, 'Tue 24 Nov 14:20 UTC' on another day."""
    t, today = dt.datetime.fromtimestamp(ts, dt.UTC), dt.datetime.fromtimestamp(now, dt.UTC)
    return f"{t:%H:%M} UTC" if t.date() == today.date() else f"{t:%a %d %b %H:%M} UTC"


class _History:
    """Lengths (seconds) of leases released in the last :data:`HISTORY_DAYS` days, by shape
    bucket; read from the ledger once, and only if a running lease states no hours."""

    def __init__(self, store: Store, now: float) -> None:
        self.store, self.now = store, now
        self._by_bucket: dict[tuple, list[float]] | None = None

    def _load(self) -> dict[tuple, list[float]]:
        t = LEASES.c
        q = (
            select(t.shape, t.granted_at, t.ended_at)
            .where(
                t.status == RELEASED,
                t.granted_at.is_not(None),
                t.ended_at >= self.now - HISTORY_DAYS * 86400,
                t.ended_at <= self.now,
            )
            .order_by(t.ended_at.desc())
            .limit(HISTORY_LIMIT)
        )
        out: dict[tuple, list[float]] = defaultdict(list)
        for shape, granted, ended in self.store.rows(q):
            out[SHAPE.validate_python(shape).bucket].append(ended - granted)
        return out

    def median_beyond(self, bucket: tuple, elapsed: float) -> float | None:
        """The median length of recent leases of ``bucket`` longer than ``elapsed``."""
        if self._by_bucket is None:
            self._by_bucket = self._load()
        longer = [d for d in self._by_bucket.get(bucket, ()) if d > elapsed]
        return statistics.median(longer) if longer else None


def _expected_end(lease: Lease, start: float, now: float, history: _History) -> tuple:
    """(when ``lease``, running since ``start``, is expected to end, its basis), or (None, None)."""
    if lease.hours and start + lease.hours * 3600 > now:
        return start + lease.hours * 3600, "hours"
    length = history.median_beyond(lease.shape.bucket, max(0.0, now - start))
    if length is not None:
        return start + length, "history"
    return None, None


class WaitingExplainer:
    """Why queued requests wait: a reader over the scheduler's state (it writes nothing).

    Built with the scheduler seen as a :class:`~gpuhub.scheduler.state.SchedulerState`;
    places requests only through the reservation book's rule, as the scheduler does.
    :meth:`waiting` answers for one lease; :meth:`waiting_all` for many at once, with one
    replay of the queue for all of them (what the queue and lease lists use).
    """

    def __init__(self, state: SchedulerState) -> None:
        self._state = state
        self._history: _History | None = None  # lengths of recent leases, reused for HISTORY_TTL

    def waiting(self, lease: Lease) -> dict[str, Any] | None:
        """Why ``lease`` waits, when it may be granted and what is free instead; None
        unless it is queued. Reads only."""
        return self.waiting_all([lease]).get(lease.id)

    def waiting_all(self, leases: Iterable[Lease]) -> dict[int, dict[str, Any]]:
        """:meth:`waiting` of each queued lease among ``leases``, by lease id."""
        state = self._state
        targets = [x for x in leases if x.status == QUEUED and x.id in state.live]
        if not targets:
            return {}
        now = state.clock()
        queue = queue_order(state.live.values())
        history = self._history
        if history is None or not 0 <= now - history.now < HISTORY_TTL:
            history = self._history = _History(state.store, now)
        problems = {q.id: self._quota_problem(q, now) for q in queue}
        grants = self._replay(queue, problems, {x.id for x in targets}, now, history)
        places = {q.id: i for i, q in enumerate(queue, 1)}
        out = {}
        for lease in targets:
            position = places[lease.id]
            reason, message = self._reason(lease, queue, position, problems[lease.id], now)
            if not problems[lease.id]:
                message += self._taking_back(lease, now)
            estimate = _estimate(grants.get(lease.id), reason, now)
            alternatives = self._alternatives(lease, queue, now)
            free = "; ".join(a["message"].removesuffix(" free now") for a in alternatives)
            summary = f"Queued at position {position}: {message}; {estimate['message']}." + (
                f" Free now: {free}" if free else ""
            )
            out[lease.id] = {
                "reason": reason, "message": message, "position": position,
                "estimate": estimate, "alternatives": alternatives, "summary": summary,
            }  # fmt: skip
        return out

    # -- reason ------------------------------------------------------------------------

    def _quota_problem(self, lease: Lease, now: float) -> str | None:
        return self._state.accounting.quota_problem(
            lease.user, lease.group, lease.shape, lease.profile, lease.units, lease.hours, now,
            queued_too=False, label=lease.label, tier=lease.tier,
        )  # fmt: skip

    def _taking_back(self, lease: Lease, now: float) -> str:
        """Where ``lease`` would borrow from, and leases being preempted to make room."""
        state, out = self._state, ""
        lender = state.accounting.loan_for(lease, queued_too=False)
        if lender is not None:
            cohort = state.quotas[("group", lease.group or "")].cohort
            out += f"; past group {lease.group}'s share, it would borrow from {lender} (cohort {cohort})"
        passed = [  # newer requests of the same priority served first: fair share's doing
            q for q in state.live.values()
            if q.status == QUEUED and q.order < lease.order and q.priority == lease.priority
            and q.id > lease.id and q.tier == lease.tier
        ]  # fmt: skip
        who = f"group {lease.group}" if lease.group else "requests without a group"
        days = f"{state.fair.half_life_s / 86400:g}" if state.fair.half_life_s else ""
        if passed and lease.fair[0] < min(q.fair[0] for q in passed):
            others = {q.group for q in passed}
            out += (
                f"; {who} {'has' if lease.group else 'have'} used "
                f"{_share_percent(lease.fair[0])} of {'its' if lease.group else 'their'} share "
                f"lately (usage halves every {days} days); {_plural(len(passed), 'newer request')} "
                f"of {'a group' if len(others) == 1 else 'groups'} with less use go first"
            )
        elif passed:
            out += (
                f"; you have used {_share_percent(lease.fair[1])} of your share of {who} lately "
                f"(usage halves every {days} days); {_plural(len(passed), 'newer request')} "
                "of members with less use go first"
            )
        deadlines = [x.deadline for x in state.live.values() if x.status == ACTIVE and x.deadline]
        if deadlines and lease.tier == "guaranteed":
            out += (
                f"; {_plural(len(deadlines), 'preempted lease')} "
                f"{'gives its' if len(deadlines) == 1 else 'give their'} GPUs back by "
                f"{clock_time(max(deadlines), now)}"
            )
        return out

    def _reason(
        self, lease: Lease, queue: list[Lease], position: int, problem: str | None, now: float
    ) -> tuple[str, str]:
        if problem:
            return QUOTA_LIMIT, (
                f"{problem} (unless that changes, the request is refused when its turn comes)"
            )
        state = self._state
        strict = state.queue_policy == "strict"
        ahead = sum(
            1 for q in queue[: position - 1] if strict or q.shape.bucket == lease.shape.bucket
        )
        behind = f"; {_plural(ahead, 'request')} ahead of you" if ahead else ""
        if state.book.place(lease, now, state.pool) is None:
            held = state.book.held_back(lease, now, state.pool)
            if held:
                return RESERVED, held + behind
            free, withheld, total, _ = state.pool.tally(lease.shape)
            return POOL_BUSY, _busy(lease.shape, free, total, withheld) + behind
        if ahead:
            return QUEUE_ORDER, (
                f"the queue is served strictly in order: {_plural(ahead, 'request')} of "
                "higher priority or older ahead of you"
            )
        return QUEUE_ORDER, "you are next; it is granted when the queue is next served"

    # -- estimate ----------------------------------------------------------------------

    def _replay(
        self,
        queue: list[Lease],
        problems: dict[int, str | None],
        targets: set[int],
        now: float,
        history: _History,
    ) -> dict[int, tuple[float, frozenset[str]]]:
        """When each target would be granted if running leases end as expected and no
        new request comes: (time, the bases of the ends it waited for)."""
        state, book = self._state, self._state.book
        pool = state.pool.copy()
        ends: list[tuple] = []  # (end, lease id, node, slots, units, basis)
        for lease in state.live.values():
            if lease.status == ACTIVE:
                end, basis = _expected_end(lease, lease.granted_at or now, now, history)
                if end is not None:
                    ends.append((end, lease.id, lease.node or "", lease.slots, lease.units, basis))
        # windows opening and closing change where requests may go: serve the queue then too
        ends += [(t, -1, "", (), 0, RESERVATION) for t in book.boundaries(now, now + REPLAY_SPAN)]
        heapq.heapify(ends)
        # requests a quota would refuse leave the queue when their turn comes
        waiting = [q for q in queue if not problems[q.id]]
        grants: dict[int, tuple[float, frozenset[str]]] = {}
        used: set[str] = set()

        def serve(t: float) -> None:  # the scheduler's dispatch, without quotas
            blocked: set[tuple] = set()
            members_only = False  # as in the scheduler's dispatch (strict, reservations)
            for q in list(waiting):
                key = (q.shape.bucket, book.rules(q, t))  # rules: reservations (or None)
                if key in blocked:
                    continue
                if members_only:
                    placement = book.place_reserved(q, t, pool)
                else:
                    placement = book.place(q, t, pool)
                if placement is None:
                    if state.queue_policy == "strict":
                        if members_only or book.blocks(q, t, pool):
                            members_only = True
                            continue
                        return
                    blocked.add(key)
                    continue
                waiting.remove(q)
                pool.claim(q.id, placement.node, placement.slots, placement.units)
                grants[q.id] = (t, frozenset(used))
                end, basis = _expected_end(q, t, now, history)
                if end is not None:
                    heapq.heappush(
                        ends, (end, q.id, placement.node, placement.slots, placement.units, basis)
                    )

        serve(now)
        while ends and not targets <= grants.keys():
            t = ends[0][0]
            while ends and ends[0][0] == t:
                _, lid, node, slots, units, basis = heapq.heappop(ends)
                if lid >= 0:
                    pool.free(lid, node, slots, units)
                used.add(basis)  # "reservation": a window opened or closed
            serve(t)
        return grants

    # -- alternatives ------------------------------------------------------------------

    def _alternatives(self, lease: Lease, queue: list[Lease], now: float) -> list[dict[str, Any]]:
        """Shapes free now that the lease's user could take instead under their quotas."""
        state = self._state
        if state.queue_policy == "strict":
            # a new request would queue behind every other request before it
            order = (-state.accounting.priority(lease.user, lease.group), now, float("inf"))
            if any(q.id != lease.id and q.order < order for q in queue):
                return []
        out = []
        for shape in _shapes(state.inventory):
            if (
                shape.bucket == lease.shape.bucket
                or state.book.place(lease, now, state.pool, shape=shape) is None
            ):
                continue
            units = state.pool.max_units(shape)
            if state.accounting.quota_problem(
                lease.user, lease.group, shape, lease.profile, units, lease.hours, now,
                queued_too=False, tier=lease.tier,
            ):  # fmt: skip
                continue
            free, _, simulated = state.pool.count(shape)
            out.append(
                {
                    "shape": shape.model_dump(exclude_none=True),
                    "free": free,
                    "units": float(units),
                    "simulated": simulated,
                    "message": f"{noun(shape, free)}{' (simulated)' if simulated else ''} free now",
                }
            )
        return out


def _busy(shape: AnyShape, free: int, total: int, withheld: int = 0) -> str:
    """Why the pool has no room for ``shape`` now, for people; ``withheld``: those held by
    no lease but out of use (a node that takes no new leases, a job outside gpuhub)."""
    if free == 0 and withheld:
        return (
            f"none of the {noun(shape, total)} is free: {total - withheld} held, {withheld} "
            "on nodes that take no new leases or held outside gpuhub"
        )
    if free == 0:
        return (
            f"all {noun(shape, total)} are held"
            if total != 1
            else f"the only {word(shape)} is held"
        )
    if not isinstance(shape, WholeGpus):  # only whole GPUs can be free yet not fit
        return f"no {word(shape)} fits now"
    if shape.node_count > 1:
        return (
            f"{free} of {noun(shape, total)} are free, but not {shape.count} on each of "
            f"{shape.node_count} nodes at once (this request spans {shape.node_count} nodes)"
        )
    if free >= shape.count:
        return f"{free} of {noun(shape, total)} are free, but no node has {shape.count} of them free together"
    return f"{free} of {noun(shape, total)} free; this request needs {shape.count} on one node"


def _estimate(grant: tuple[float, frozenset[str]] | None, reason: str, now: float) -> dict:
    if reason == QUOTA_LIMIT:
        return {
            "at": None,
            "basis": "none",
            "message": "no estimate (a quota holds it, not the pool)",
        }
    if grant is None:
        return {"at": None, "basis": "none", "message": "no estimate"}
    at, bases = grant
    kinds = bases - {RESERVATION}  # windows opening and closing are no basis of their own
    basis = "mixed" if len(kinds) > 1 else next(iter(kinds), "none")
    words = BASES.get(basis, "")
    if RESERVATION in bases:
        words = f"{words} and reserved windows" if words else "as reserved windows open and close"
    words = f" ({words})" if words else ""
    if at < now + ANY_MOMENT_S:  # "expected by 15:16" at 15:16, or already past: say so
        return {"at": iso(max(at, now)), "basis": basis, "message": f"expected any moment{words}"}
    return {"at": iso(at), "basis": basis, "message": f"expected by {clock_time(at, now)}{words}"}


def _shapes(nodes: list[Node]) -> list[AnyShape]:
    """One shape per kind of device the pool has: each whole-GPU model, each MIG profile,
    each shared model."""
    whole: dict[str, None] = {}  # dicts as ordered sets
    migs: dict[str, None] = {}
    shared: dict[str, None] = {}
    for node in nodes:
        for g in node.gpus:
            if g.mig_enabled:
                for m in g.mig_instances:
                    migs.setdefault(m.profile, None)
            elif g.shares > 1:
                shared.setdefault(g.model, None)
            else:
                whole.setdefault(g.model, None)
    out: list[AnyShape] = []
    for make, names in (
        (lambda m: WholeGpus(count=1, model=m), whole),
        (lambda p: MigSlice(kind="mig", profile=p), migs),
        (lambda m: SharedGpu(kind="shared", model=m), shared),
    ):
        for name in names:
            try:
                out.append(make(name))
            except ValueError:  # a model name a request could not spell
                continue
    return out
