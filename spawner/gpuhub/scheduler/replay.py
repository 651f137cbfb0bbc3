"""Replaying requests through the real scheduler on an injected clock.

A :class:`Replay` drives a :class:`~gpuhub.scheduler.core.Scheduler` (with a database and
a :class:`ReplayClock` of its own) through a list of :class:`Demand` — who asked for which
shape when, and how long they hold it once granted — one event at a time:

* an arrival is :meth:`~gpuhub.scheduler.core.Scheduler.request`; granted at once or
  later, the demand holds its devices for ``hold`` seconds, then releases them;
* a request a quota refuses is asked again, as a job waiting for its quota is, whenever a
  lease of the same user or group ends and at each midnight UTC (when budgets renew);
* a demand still waiting at ``gives_up`` withdraws (the person stopped waiting);
* a lease given a preemption notice (spot, or borrowed in a cohort) is released by its
  holder at its deadline; with ``requeue_preempted`` the rest of its hold is asked for
  again at once, as a job that resumes from its checkpoint is;
* the scheduler is ticked at its next boundary (a spot lease ripens, a notice runs out)
  and, while requests wait and fair share orders them, every ``tick_every`` seconds, as the
  service's timer does.

Nothing happens between events, so time jumps from one to the next. Each demand ends as an
:class:`Outcome`: when it was granted, how long it waited, whether it was refused, what it
was charged. The replay is the core of the trace benchmark (``benchmarks/bench_trace.py``)
and of the admins' what-if (:mod:`.whatif`).
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..terms import ACTIVE, QUEUED, REFUSED
from .core import Scheduler
from .errors import QuotaExceeded, SchedulerError
from .lease import Lease
from .shapes import MigSlice, SharedGpu, WholeGpus
from .spot import GUARANTEED, PREEMPTED, SPOT

DAY = 86_400.0
#: End reasons the replay writes on the leases it ends.
DONE, WITHDRAWN = "replay: hold ended", "replay: withdrawn"
# Events at one instant, in this order: devices are given back before they are asked for.
_END, _PREEMPT, _GIVE_UP, _TICK, _ARRIVE, _RETRY = range(6)


class ReplayClock:
    """The injected clock of a replayed scheduler: replay time, moved only by the replay."""

    def __init__(self, now: float) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Demand:
    """One request to replay: ``user`` asks for ``shape`` at ``at`` (POSIX seconds) and,
    once granted, holds it for ``hold`` seconds (``math.inf``: to the end of the replay).

    ``gives_up``: when it stops waiting if it still does, queued or refused by a quota
    (None: it waits as long as it takes). ``counted``: False for what was there before the replayed window
    began (it takes its devices and quota, and is left out of the numbers). ``ref``: the
    source's own id of it (a lease id, a pod name).
    """

    at: float
    user: str
    shape: WholeGpus | MigSlice | SharedGpu
    hold: float = math.inf
    group: str | None = None
    user_groups: tuple[str, ...] = ()
    tier: str = GUARANTEED
    profile: str | None = None
    label: str = ""
    hours: float | None = None
    gives_up: float | None = None
    counted: bool = True
    ref: Any = None


@dataclass(eq=False)
class Outcome:
    """What became of a demand in a replay.

    ``waited``: seconds spent waiting (queued, or refused by a quota and asking again)
    over all its attempts (a preempted and requeued demand makes several); ``refused``:
    why it was refused for good (the scheduler's words); ``withdrawn``: it gave up while
    queued; ``credits`` and ``gpu_hours``: charged for what it held, up to the end of the
    replay. Outcomes compare (and hash) by identity.
    """

    demand: Demand
    granted_at: float | None = None  # the first grant
    done_at: float | None = None  # its hold ended
    waited: float = 0.0
    waiting_since: float | None = None  # queued now (at the end: still waiting)
    refused: str | None = None
    withdrawn: bool = False
    preemptions: int = 0
    credits: float = 0.0
    gpu_hours: float = 0.0
    leases: list[int] = field(default_factory=list)

    @property
    def granted(self) -> bool:
        """Whether it ever got its devices."""
        return self.granted_at is not None

    def wait(self, until: float) -> float | None:
        """Seconds it waited, counting a wait still going on at ``until``; None when it
        was refused or withdrawn without ever being granted."""
        if self.waiting_since is not None:
            return self.waited + max(0.0, until - self.waiting_since)
        if not self.granted:
            return None
        return self.waited


@dataclass
class _Held:
    outcome: Outcome
    remaining: float  # seconds of hold left when granted
    lease: Lease


class Replay:
    """Drives ``scheduler`` (whose clock must be ``clock``) through demands.

    ``observe(now)`` is called after each event, with the scheduler in its state after
    it (benchmarks sample the pool there). ``requeue_preempted``: a preempted demand
    asks again for the rest of its hold. ``retry_quota``: a request a quota refuses is
    asked again (see the module) instead of being refused for good.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        clock: ReplayClock,
        *,
        requeue_preempted: bool = False,
        retry_quota: bool = True,
        tick_every: float = 300.0,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        if scheduler.clock is not clock:
            raise ValueError("the replayed scheduler must run on the replay's clock")
        self.scheduler = scheduler
        self.clock = clock
        self.requeue_preempted = requeue_preempted
        self.retry_quota = retry_quota
        self.tick_every = float(tick_every)
        self.observe = observe
        self.waiting: dict[int, _Held] = {}  # queued lease id -> its demand
        self.holding: dict[int, _Held] = {}  # active lease id -> its demand
        self.preemptible: set[int] = set()  # active spot or borrowed lease ids, no notice yet
        #: Demands a quota refused, waiting to ask again: outcome -> (hold, the refusal).
        self.parked: dict[Outcome, tuple[float, str]] = {}
        self._parked_by: dict[tuple, set[Outcome]] = defaultdict(set)  # (user|group, name)
        self.preemptions = 0
        self._events: list[tuple] = []
        self._seq = 0
        self._next_tick: float | None = None
        self._next_retry: float | None = None
        self._due = 0  # events due that are not ticks: without ``until``, the replay ends with them

    # -- the event loop ----------------------------------------------------------------

    def run(self, demands: Iterable[Demand], until: float | None = None) -> list[Outcome]:
        """Replay ``demands`` up to ``until``, else until nothing but ticks is left to
        happen (what still waits then waits for ever); their outcomes, in the order given."""
        outcomes = [Outcome(d) for d in demands]
        for o in outcomes:
            self._push(o.demand.at, _ARRIVE, (o, o.demand.hold))
            if o.demand.gives_up is not None:
                self._push(max(o.demand.gives_up, o.demand.at), _GIVE_UP, o)
        end = math.inf if until is None else until
        while self._events and self._events[0][0] <= end and (until is not None or self._due):
            t, kind, _, payload = heapq.heappop(self._events)
            self._due -= kind not in (_TICK, _RETRY) or payload is not None
            if (kind == _TICK and t != self._next_tick) or (
                kind == _RETRY and payload is None and t != self._next_retry
            ):
                continue  # superseded by an earlier one
            self.clock.now = max(self.clock.now, t)
            self._handle(kind, payload)
            self._arm()
            if self.observe is not None:
                self.observe(self.clock.now)
        self._close(self.clock.now if until is None else until)
        return outcomes

    def _push(self, t: float, kind: int, payload: Any) -> None:
        self._due += kind not in (_TICK, _RETRY) or payload is not None
        self._seq += 1
        heapq.heappush(self._events, (t, kind, self._seq, payload))

    def _handle(self, kind: int, payload: Any) -> None:
        if kind in (_ARRIVE, _RETRY) and payload is not None:
            self._arrive(*payload)
            if self.preemptible:  # a request that waits may give spot leases notice
                self._settle()
            return
        if kind == _RETRY:  # every parked demand asks again
            self._next_retry = None
            for outcome in sorted(self.parked, key=lambda o: o.waiting_since or 0.0):
                self._arrive(outcome, self._unpark(outcome)[0])
        elif kind == _TICK:
            self._next_tick = None
            self.scheduler.tick()
        elif kind == _GIVE_UP:
            self._give_up(payload)
        elif payload in self.holding:  # _END or _PREEMPT, unless ended already
            self.scheduler.release(payload, reason=DONE if kind == _END else PREEMPTED)
        self._settle()

    def _arrive(self, outcome: Outcome, hold: float) -> None:
        d, now = outcome.demand, self.clock.now
        try:
            lease = self.scheduler.request(
                user=d.user, user_groups=d.user_groups, shape=d.shape, group=d.group,
                profile=d.profile, label=d.label, hours=d.hours, tier=d.tier,
            )  # fmt: skip
        except QuotaExceeded as e:
            if self.retry_quota:
                self._park(outcome, hold, e.message)
            else:
                self._refused(outcome, e.message)
            return
        except SchedulerError as e:
            self._refused(outcome, e.message)
            return
        outcome.leases.append(lease.id)
        held = _Held(outcome, hold, lease)
        if lease.status == ACTIVE:
            self._granted(held)
            return
        if outcome.waiting_since is None:
            outcome.waiting_since = now
        self.waiting[lease.id] = held

    def _park(self, outcome: Outcome, hold: float, refusal: str) -> None:
        if outcome.waiting_since is None:
            outcome.waiting_since = self.clock.now
        self.parked[outcome] = (hold, refusal)
        for key in _whose(outcome.demand.user, outcome.demand.group):
            self._parked_by[key].add(outcome)

    def _unpark(self, outcome: Outcome) -> tuple[float, str]:
        for key in _whose(outcome.demand.user, outcome.demand.group):
            self._parked_by[key].discard(outcome)
        return self.parked.pop(outcome)

    def _refused(self, outcome: Outcome, refusal: str) -> None:
        """The demand is refused for good: it stops waiting."""
        outcome.refused = refusal
        self._stop_waiting(outcome)

    def _stop_waiting(self, outcome: Outcome) -> None:
        if outcome.waiting_since is not None:
            outcome.waited += self.clock.now - outcome.waiting_since
            outcome.waiting_since = None

    def _give_up(self, outcome: Outcome) -> None:
        """The demand's ``gives_up`` time: it stops waiting, if it still does."""
        if outcome in self.parked:
            self._refused(outcome, self._unpark(outcome)[1])
            return
        for lid in outcome.leases[-1:]:
            if lid in self.waiting:
                outcome.withdrawn = True
                self.scheduler.release(lid, reason=WITHDRAWN)

    def _granted(self, held: _Held) -> None:
        lease, outcome = held.lease, held.outcome
        if outcome.waiting_since is not None:
            outcome.waited += (lease.granted_at or 0.0) - outcome.waiting_since
            outcome.waiting_since = None
        if outcome.granted_at is None:
            outcome.granted_at = lease.granted_at
        self.holding[lease.id] = held
        if lease.tier == SPOT or lease.borrowed_from is not None:
            self.preemptible.add(lease.id)
        if held.remaining < math.inf:
            self._push((lease.granted_at or 0.0) + held.remaining, _END, lease.id)

    def _settle(self) -> None:
        """Take in what the scheduler did meanwhile: queued requests granted or refused,
        notices given, leases it ended itself (overdue after a notice)."""
        for lid in [lid for lid, h in self.waiting.items() if h.lease.status != QUEUED]:
            held = self.waiting.pop(lid)
            if held.lease.status == ACTIVE:
                self._granted(held)
            else:
                self._ended(held)
        for lid in list(self.preemptible):
            lease = self.holding[lid].lease
            if lease.status == ACTIVE and lease.notice_at is not None:
                self.preemptible.discard(lid)  # its holder leaves at the deadline
                self._push(lease.deadline or self.clock.now, _PREEMPT, lid)
        for lid in [lid for lid, h in self.holding.items() if h.lease.status != ACTIVE]:
            held = self.holding[lid]  # preempted: by its holder, or by the scheduler when late
            self._preempted(held) if held.lease.end_reason == PREEMPTED else self._ended(held)

    def _ended(self, held: _Held) -> None:
        """Book a lease that ended (released, refused from the queue or withdrawn); the
        demands its user's or group's quota kept waiting ask again."""
        lease, outcome = held.lease, held.outcome
        self.holding.pop(lease.id, None)
        self.preemptible.discard(lease.id)
        if lease.granted_at is not None:
            end = lease.ended_at or self.clock.now
            outcome.credits += lease.credits(end)
            outcome.gpu_hours += lease.gpu_hours(end)
            if lease.end_reason == DONE:
                outcome.done_at = end
        elif lease.status == REFUSED and self.retry_quota:
            self._park(outcome, held.remaining, lease.end_reason or "refused")
        elif lease.status == REFUSED:
            self._refused(outcome, lease.end_reason or "refused")
        else:
            self._stop_waiting(outcome)
        if self.parked:
            self._wake(lease)

    def _wake(self, ended: Lease) -> None:
        """Parked demands of ``ended``'s user or group ask again (its quota may allow it now)."""
        woken = set().union(*(self._parked_by[k] for k in _whose(ended.user, ended.group)))
        for outcome in sorted(woken, key=lambda o: o.waiting_since or 0.0):
            self._push(self.clock.now, _RETRY, (outcome, self._unpark(outcome)[0]))

    def _preempted(self, held: _Held) -> None:
        lease = held.lease
        self.preemptions += 1
        held.outcome.preemptions += 1
        self._ended(held)
        left = held.remaining - ((lease.ended_at or self.clock.now) - (lease.granted_at or 0.0))
        if self.requeue_preempted and left > 0:
            self._push(self.clock.now, _ARRIVE, (held.outcome, left))

    def _arm(self) -> None:
        """Let parked demands ask again at the next midnight UTC; tick at the scheduler's
        next boundary while requests wait or leases may be preempted, and every
        ``tick_every`` while requests wait in an order fair share keeps changing."""
        now = self.clock.now
        if self.parked and self._next_retry is None:
            self._next_retry = (now // DAY + 1) * DAY
            self._push(self._next_retry, _RETRY, None)
        if not (self.waiting or self.preemptible):
            return
        at = self.scheduler.view.next_boundary() or math.inf
        if self.waiting and self.scheduler.fair.enabled:
            at = min(at, now + self.tick_every)
        if at < math.inf and (self._next_tick is None or at < self._next_tick):
            self._next_tick = max(at, now)
            self._push(self._next_tick, _TICK, None)

    def _close(self, until: float) -> None:
        """Charge what still holds devices up to ``until``."""
        for held in self.holding.values():
            held.outcome.credits += held.lease.credits(until)
            held.outcome.gpu_hours += held.lease.gpu_hours(until)


def _whose(user: str, group: str | None) -> list[tuple[str, str]]:
    """The principals a demand's quota checks count against: its user, and its group."""
    return [("user", user)] + ([("group", group)] if group is not None else [])


@contextmanager
def quiet_here(*loggers: str) -> Iterator[None]:
    """Drop the records of ``loggers`` logged on this thread, for as long as it lasts: a
    replayed scheduler's grants must not fill the service's log, while the real one
    (on the event loop's thread) goes on logging."""
    me = threading.get_ident()

    def elsewhere(record: logging.LogRecord) -> bool:
        return record.thread != me

    targets = [logging.getLogger(name) for name in loggers]
    for lg in targets:
        lg.addFilter(elsewhere)
    try:
        yield
    finally:
        for lg in targets:
            lg.removeFilter(elsewhere)
