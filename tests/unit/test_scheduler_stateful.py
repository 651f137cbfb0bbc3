"""A Hypothesis state machine over the scheduler: random requests (guaranteed and spot),
releases, quota changes (groups lending in cohorts among them), rate changes, clock
moves, ticks and restarts, with the database checked against memory after every step,
and what each step changed (grants, loans, preemption notices, endings) judged against
the state before it.

Each example starts on a fresh database (a SQLite file, or a PostgreSQL database created
on the session's throwaway server) and a fake clock at Monday 2026-11-23 09:00 UTC. The
scheduler offers spot capacity (``SPOT``: its minimum runtime and grace are short next to
the clock's moves, so that spot leases are preempted) and orders its queue by fair share
(``HALF_LIFE``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import (
    Forbidden,
    NotFound,
    QuotaExceeded,
    Scheduler,
    SchedulerError,
    Unsatisfiable,
)
from gpuhub.scheduler.db import ClaimRow, LeaseRow, QuotaRow, open_engine
from gpuhub.scheduler.pricing import RateCard
from gpuhub.scheduler.quota import QuotaSpec, period_window
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus
from gpuhub.scheduler.spot import SpotPolicy
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from tests.support import pg
from tests.support.properties import examples

SPEC = (
    "a: 4xH100-80GB[nvlink], 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]; "
    "b: 2xL4-24GB[shared=3], 2xA100-80GB"
)
MEMBERS = {
    "ann": {"cs101"},
    "ben": {"cs101", "ml"},
    "cat": {"ml"},
    "dov": set(),
    "eve": {"bio"},
}
USERS = sorted(MEMBERS)
GROUPS = ["bio", "cs101", "ml"]
LIVE = ("queued", "active")
ENDED = ("released", "cancelled", "refused")
FAR = 4e9  # a ledger window end past any clock here
#: The configured rates (credits per GPU-hour); the L4s take the default (1.0).
RATES = {"H100": 2.0, "A100-40GB": 1.5, "A100": 1.25}
MODELS = ("A100-40GB", "A100-80GB", "H100-80GB", "L4-24GB")
#: Spot capacity: a lease is preemptible after 15 minutes, and has 5 to leave.
SPOT = SpotPolicy(enabled=True, discount=0.3, grace_s=300, min_runtime_s=900, kill_after_s=60)
HALF_LIFE = 3600.0  # fair share: usage an hour old counts half; ten hours, it is not read back

LEASES = LeaseRow.__table__
CLAIMS = ClaimRow.__table__
QUOTAS = QuotaRow.__table__

# mostly shapes the pool can serve, now and then one it never can
SHAPES = st.one_of(
    st.builds(WholeGpus, count=st.integers(1, 4), model=st.sampled_from([None, "H100"])),
    st.builds(WholeGpus, count=st.integers(1, 2), model=st.just("A100")),
    st.builds(
        MigSlice,
        kind=st.just("mig"),
        profile=st.sampled_from(["1g.10gb", "2g.20gb"]),
        model=st.sampled_from([None, "A100"]),
    ),
    st.builds(SharedGpu, kind=st.just("shared"), model=st.sampled_from([None, "L4"])),
    st.sampled_from(
        [
            WholeGpus(count=5),
            WholeGpus(count=3, model="A100"),
            WholeGpus(model="V100"),
            WholeGpus(model="L4"),
            MigSlice(kind="mig", profile="3g.40gb"),
            MigSlice(kind="mig", profile="1g.10gb", model="H100"),
            SharedGpu(kind="shared", model="H100"),
        ]
    ),
)
SPOT_SHAPES = [
    WholeGpus(count=2),
    WholeGpus(model="A100"),
    MigSlice(kind="mig", profile="1g.10gb"),
    SharedGpu(kind="shared"),
]
QUOTA_SPECS = st.builds(
    QuotaSpec,
    max_units=st.sampled_from([None, 0.5, 1, 2, 3, 4.5]),
    gpu_hours=st.sampled_from([None, 0.5, 2, 5, 20]),
    credits=st.sampled_from([None, None, 1, 4, 30]),
    period=st.sampled_from(["day", "week", "month"]),
    priority=st.integers(-1, 3),
    allowed_shapes=st.sampled_from([None, None, None, ["gpu"], ["mig:*", "shared"]]),
    allowed_profiles=st.sampled_from([None, None, None, ["small"]]),
    spot_max_units=st.sampled_from([None, None, 0, 1, 2.5]),
    spot_gpu_hours=st.sampled_from([None, None, 1, 10]),
    fair_share=st.sampled_from([None, None, None, 0.5, 4]),
)
#: Group quotas in a cohort: small shares, so that groups go past theirs and borrow (a
#: group lends at most its share).
COHORT_SPECS = st.builds(
    dict,
    max_units=st.sampled_from([0, 0.5, 1, 2, 3]),
    cohort=st.sampled_from(["dept", "dept", "lab"]),
    borrow_limit=st.sampled_from([None, None, 0, 1, 2.5]),
    lend_limit=st.sampled_from([None, None, 0, 1, 2]),
    gpu_hours=st.sampled_from([None, None, 5, 20]),
    priority=st.sampled_from([0, 0, 0, 1]),
    spot_max_units=st.sampled_from([None, 1, 3]),
    fair_share=st.sampled_from([None, None, 0.5, 4]),
).map(lambda d: QuotaSpec(**{**d, "lend_limit": _at_most(d["lend_limit"], d["max_units"])}))
NOT_IN_A_COHORT = {"cohort": None, "borrow_limit": None, "lend_limit": None}


def _at_most(value: float | None, limit: float) -> float | None:
    return None if value is None else min(value, limit)


def _matches(model: str, wanted: str | None) -> bool:
    return wanted is None or wanted.lower() in model.lower()


def _lends(specs: tuple[QuotaSpec, QuotaSpec]) -> bool:
    """Whether one of two cohort quotas can lend the other something."""
    return any(
        a.max_units and a.lend_limit != 0 and b.borrow_limit != 0 for a, b in (specs, specs[::-1])
    )


def _units(row) -> Fraction:
    return Fraction(row.units_num, row.units_den)


def _nodes(row) -> set[str]:
    return set((row.node or "").split(","))


def _principals(row) -> list[tuple]:
    """Whom a lease row is charged to; a spot lease's keys start with "spot"."""
    keys = [("user", row.user)]
    if row.group_name:
        keys += [("group", row.group_name), ("member", row.group_name, row.user)]
    return [("spot", *k) for k in keys] if row.tier == "spot" else keys


def _units_limit(quotas: dict, key: tuple) -> Fraction | None:
    """The units limit on a principal: a spot key's is the spot allowance (its members
    have none); a group's caps its own units, borrowed ones apart."""
    spot = key[0] == "spot"
    kind, name = (key[1:] if spot else key)[:2]
    if kind == "member":
        spec, field = quotas.get(("group", name)), None if spot else "per_user_max_units"
    else:
        spec, field = quotas.get((kind, name)), "spot_max_units" if spot else "max_units"
    return spec.exact(field) if spec is not None and field else None


def _total(rows, keep: Callable[[Any], bool]) -> Fraction:
    return sum((_units(r) for r in rows if keep(r)), Fraction(0))


def _ending(row) -> tuple:
    """What an ended lease ended as: it stays so."""
    return (
        row.status, row.ended_at, row.granted_at, row.end_reason, row.notice_at, row.borrowed_from
    )  # fmt: skip


@dataclass
class Before:
    """What the machine saw before a step, to judge what the step changed."""

    rows: dict[int, Any]
    snapshot: tuple
    #: Queued leases dispatch may refuse: their quotas (their tier's allowance) forbid
    #: them now, or they are of a group in a cohort (a loan may be gone by their turn).
    may_refuse: set[int]
    guaranteed_waiting: bool
    orders: dict[int, tuple]  # the queued leases' queue order

    def active(self) -> list:
        return [r for r in self.rows.values() if r.status == "active"]


class SchedulerMachine(RuleBasedStateMachine):
    """Set ``new_database`` (-> (url, cleanup)) and ``clock_class`` in a subclass."""

    new_database: Callable[[], tuple[str, Callable[[], None]]]
    clock_class: type

    def __init__(self) -> None:
        super().__init__()
        self.url, self._cleanup = self.new_database()
        self.engine = open_engine(self.url)
        self.nodes = parse_spec(SPEC)
        self.clock = self.clock_class()
        self.s = self.new_scheduler()
        self.quotas: dict[tuple[str, str], QuotaSpec] = {}
        self.rate_now = {m: RateCard(self.engine, RATES).rate(m) for m in MODELS}
        self.tiers: dict[int, str] = {}  # lease id -> the tier it was requested in
        self.priced: dict[int, tuple] = {}  # lease id -> (rate, tier, discount, lender) granted
        self.notices: dict[int, tuple] = {}  # lease id -> (notice_at, deadline) when given
        self.ended: dict[int, tuple] = {}  # lease id -> what it ended as (_ending)
        # what each device slot is worth, from the inventory (not from the scheduler)
        self.slot_units: dict[tuple[str, int], Fraction] = {}
        self.device_node: dict[str, str] = {}
        for node in self.nodes:
            for g in node.gpus:
                if g.mig_enabled:
                    for m in g.mig_instances:
                        self.slot_units[(m.uuid, 0)] = Fraction(m.slices, g.total_slices)
                        self.device_node[m.uuid] = node.name
                else:
                    for k in range(g.shares):
                        self.slot_units[(g.uuid, k)] = Fraction(1, g.shares)
                    self.device_node[g.uuid] = node.name

    def new_scheduler(self) -> Scheduler:
        return Scheduler(
            self.engine, self.nodes, clock=self.clock,
            rates=RateCard(self.engine, RATES, clock=self.clock),
            spot=SPOT, fair_share_half_life=HALF_LIFE,
        )  # fmt: skip

    def teardown(self) -> None:
        self.engine.dispose()
        self._cleanup()

    # -- reading the database and memory -----------------------------------------------

    def rows(self) -> dict[int, Any]:
        with self.engine.connect() as c:
            return {r.id: r for r in c.execute(select(LEASES))}

    def claims(self) -> dict[tuple[str, int], int]:
        with self.engine.connect() as c:
            return {(r.device_id, r.slot): r.lease_id for r in c.execute(select(CLAIMS))}

    def snapshot(self) -> tuple:
        """Live leases in memory (notices apart: a restart may give new ones) and the queue."""
        live = {
            x.id: (
                x.status, x.node, tuple(x.slots), x.units, x.user, x.group, x.priority,
                x.tier, x.discount, x.rate, x.borrowed_from, x.label,
            )
            for x in self.s.live.values()
        }  # fmt: skip
        return live, [x.id for x in self.s.queue()]

    def observe(self) -> Before:
        """The state before a step."""
        queue = self.s.queue()
        may_refuse = {x.id for x in queue if self.in_cohort(x.group) or self.forbidden(x)}
        waiting = any(x.tier == "guaranteed" for x in queue)
        orders = {x.id: x.order for x in queue}
        return Before(self.rows(), self.snapshot(), may_refuse, waiting, orders)

    def forbidden(self, x) -> str | None:
        """Why the quotas forbid queued lease ``x`` now (its tier's allowance), or None."""
        return self.s.accounting.quota_problem(
            x.user, x.group, x.shape, x.profile, x.units, x.hours, self.clock(),
            queued_too=False, tier=x.tier, label=x.label,
        )  # fmt: skip

    def in_cohort(self, group: str | None) -> bool:
        spec = self.quotas.get(("group", group or ""))
        return spec is not None and spec.cohort is not None

    def units_by_principal(self, rows, statuses) -> dict[tuple, Fraction]:
        out: dict[tuple, Fraction] = defaultdict(Fraction)
        for r in rows.values():
            if r.status in statuses:
                for p in _principals(r):
                    out[p] += _units(r)
        return out

    def hours_used(self, rows, key: tuple, start: float, now: float, *, credits=False) -> float:
        """GPU-hours (``credits``: their charges) of ``key`` from ``start`` to ``now``."""
        total = 0.0
        for r in rows.values():
            if r.granted_at is None or key not in _principals(r):
                continue
            a = max(r.granted_at, start)
            b = now if r.ended_at is None else min(r.ended_at, now)
            price = r.rate * r.discount if credits else 1.0
            total += r.units_num / r.units_den * max(0.0, b - a) / 3600 * price
        return total

    def active_ids(self) -> set[int]:
        return {i for i, x in self.s.live.items() if x.status == "active"}

    # -- what a step changed -----------------------------------------------------------

    def check_step(self, before: Before, *, new=None, released=None, tick=False) -> None:
        """Judge a step against the state ``before`` it: its grants (``new``: the lease it
        requested), the loans and notices it made, and what it ended besides ``released``
        (``tick``: overdue leases are released)."""
        rows = self.rows()
        was_active = {r.id for r in before.active()}
        granted = sorted(i for i, r in rows.items() if r.status == "active" and i not in was_active)
        for i in granted:
            self.check_grant(rows, rows[i])
        self.check_loans(before, rows, [rows[i] for i in granted if rows[i].borrowed_from])
        self.check_grant_order(before, granted)
        self.check_notices(before, rows, new)
        self.check_endings(before, rows, granted, released, tick)
        if tick:  # nothing overdue is left
            late = self.clock() - SPOT.kill_after_s
            noticed = [r for r in rows.values() if r.status == "active" and r.deadline]
            assert not [r.id for r in noticed if r.deadline <= late], noticed
        loans = sum(1 for i in granted if rows[i].borrowed_from)
        event(f"step: {min(len(granted), 2)}+ granted, {min(loans, 1)}+ borrowed")

    def check_grant(self, rows, row) -> None:
        """A lease granted in this step: priced at the rates and its tier's discount now,
        and within every quota of its tier as set now."""
        now = self.clock()
        assert row.granted_at == now
        # priced at the rates in force now: each device its model's, the lease their mean
        rates = [self.rate_now[d["model"]] for d in row.devices]
        assert [d["rate"] for d in row.devices] == rates
        assert row.rate == pytest.approx(sum(rates) / len(rates), abs=1e-12)
        spot = self.tiers[row.id] == "spot"
        assert (row.tier, row.discount) == (("spot", SPOT.discount) if spot else ("guaranteed", 1))
        self.priced[row.id] = (row.rate, row.tier, row.discount, row.borrowed_from)
        event(f"grant: {row.tier}{' borrowed' if row.borrowed_from else ''}")
        active = self.units_by_principal(rows, ("active",))
        for key in _principals(row):
            plain = key[1:] if spot else key
            limit = _units_limit(self.quotas, key)
            if limit is not None:
                held = active[key]
                if key[0] == "group":  # its own share: borrowed units apart (check_loans)
                    held -= self.borrowed_units(rows, key[1])
                if not (key[0] == "group" and row.borrowed_from):
                    assert held <= limit, (key, held, limit)
            spec = self.quotas.get(plain)
            if plain[0] == "member" or spec is None:
                continue
            budget = spec.spot_gpu_hours if spot else spec.gpu_hours
            if budget is not None:
                start, _ = period_window(spec, now)
                used = self.hours_used(rows, key, start, now)
                assert used < budget + 1e-6, (key, used, budget)
                if row.hours:
                    need = row.units_num / row.units_den * row.hours
                    assert need <= budget - used + 1e-6, (key, used, need)
            if spec.credits is not None:  # they pay for both tiers
                start, _ = period_window(spec, now)
                used = sum(
                    self.hours_used(rows, k, start, now, credits=True)
                    for k in (plain, ("spot", *plain))
                )
                assert used < spec.credits + 1e-6, (key, used, spec.credits)
            assert spec.allows_shape(self.s.live[row.id].shape.label)
            assert spec.allows_profile(row.profile)

    def check_loans(self, before: Before, rows, loans: list) -> None:
        """Loans made in this step: from a group of the borrower's cohort, within the
        lender's unused share (its ``max_units`` less its own units and what it lends)
        and ``lend_limit``, and within the borrower's ``borrow_limit``. Leases that ended
        in the step may have made room first."""
        was = before.active()
        gone = [r for r in was if rows[r.id].status != "active"]
        for row in loans:
            mine = self.quotas.get(("group", row.group_name or ""))
            theirs = self.quotas.get(("group", row.borrowed_from))
            assert row.tier == "guaranteed" and not row.label.startswith("server:"), row
            assert mine is not None and theirs is not None and row.borrowed_from != row.group_name
            assert mine.cohort is not None and mine.cohort == theirs.cohort, (mine, theirs)
        for lender in {r.borrowed_from for r in loans}:
            spec = self.quotas[("group", lender)]
            new = _total(loans, lambda r, g=lender: r.borrowed_from == g)

            def own(r, g=lender):
                return r.tier == "guaranteed" and r.group_name == g and not r.borrowed_from

            def lent(r, g=lender):
                return r.borrowed_from == g

            own_now = _total(was, own) - _total(gone, own)
            lent_now = _total(was, lent) - _total(gone, lent)
            assert own_now + lent_now + new <= spec.max_units_exact, (
                lender,
                own_now,
                lent_now,
                new,
            )
            if spec.lend_limit is not None:
                assert lent_now + new <= spec.exact("lend_limit"), (lender, lent_now, new)
        for group in {r.group_name for r in loans}:
            limit = self.quotas[("group", group)].exact("borrow_limit")

            def borrowed(r, g=group):
                return r.group_name == g and bool(r.borrowed_from)

            new = _total(loans, borrowed)
            if limit is not None:
                assert _total(was, borrowed) - _total(gone, borrowed) + new <= limit, group

    def check_grant_order(self, before: Before, granted: list[int]) -> None:
        """Grants follow the queue order: no request still queued of the same shape
        bucket (which fits exactly when the granted one does) comes before a lease granted
        in this step; so spot requests never pass guaranteed ones. (A tick re-ranks the
        queue after it releases overdue leases: a grant may follow either order.)"""
        for i in granted:
            x = self.s.live[i]
            passed = [
                q.id
                for q in self.s.queue()
                if q.shape.bucket == x.shape.bucket
                and q.order < x.order
                and before.orders.get(q.id, q.order) < x.order
            ]
            assert not passed, (x.id, x.order, [self.s.live[q].order for q in passed])

    def check_notices(self, before: Before, rows, new) -> None:
        """Notices given in this step: to active spot or borrowed leases past their minimum
        runtime, for a guaranteed request that waits, youngest first (no younger lease of
        the kind on the same devices' nodes goes without one); the deadline after the grace."""
        now = self.clock()
        waiting = before.guaranteed_waiting or (
            new is not None and new.tier == "guaranteed" and new.status == "queued"
        )
        for r in rows.values():
            if r.notice_at is None or r.id in self.notices:
                continue
            event("notice given")
            assert r.status == "active" and waiting, r
            assert (r.notice_at, r.deadline) == (now, now + SPOT.grace_s), r
            assert r.tier == "spot" or r.borrowed_from, r
            assert r.granted_at + SPOT.min_runtime_s <= now, r
            spared = [
                y.id
                for y in rows.values()
                if y.status == "active" and y.notice_at is None
                and (y.tier, y.borrowed_from) == (r.tier, r.borrowed_from)
                and y.granted_at + SPOT.min_runtime_s <= now
                and _nodes(r) <= _nodes(y) and (y.granted_at, y.id) > (r.granted_at, r.id)
            ]  # fmt: skip
            assert not spared, (r.id, spared)
            self.notices[r.id] = (r.notice_at, r.deadline)

    def check_endings(self, before: Before, rows, granted, released, tick: bool) -> None:
        """Besides ``released``, a step ends only queued requests their quotas forbid
        (refused), and in a tick the leases overdue after a notice (preempted)."""
        now = self.clock()
        grown = {k for i in granted for k in _principals(rows[i])}
        for i, was in before.rows.items():
            r = rows[i]
            if was.status not in LIVE or r.status in LIVE or i == released:
                continue
            event(f"ended by the scheduler: {r.status}")
            assert r.ended_at == now, r
            if r.status == "refused":
                # forbidden before, or by what this step granted (a quota lowered since
                # they were admitted)
                assert was.status == "queued" and r.end_reason, r
                assert i in before.may_refuse or grown & set(_principals(r)), (r, before.may_refuse)
            else:
                assert tick and (r.status, r.end_reason) == ("released", "preempted"), r
                assert was.deadline is not None and was.deadline + SPOT.kill_after_s <= now, r

    # -- rules -------------------------------------------------------------------------

    @initialize(
        quotas=st.lists(
            st.tuples(
                st.sampled_from(["user", "group"]),
                st.integers(0, 10_000),
                QUOTA_SPECS,
                st.sampled_from([None, 1, 2]),
            ),
            min_size=1,
            max_size=4,
        ),
        cohort=st.one_of(st.none(), *[st.tuples(COHORT_SPECS, COHORT_SPECS).filter(_lends)] * 2),
    )
    def start_with_quotas(self, quotas, cohort):
        """Some quotas; often cs101 and ml lend each other in cohort "dept"."""
        for kind, pick, spec, per_user in quotas:
            self.quota(kind, pick, spec, per_user)
        for group, spec in zip(("cs101", "ml"), cohort or (), strict=False):
            spec = spec.model_copy(update={"cohort": "dept"})
            self.quota("group", GROUPS.index(group), spec, None)

    @initialize(
        spot=st.lists(
            st.tuples(st.sampled_from(USERS), st.sampled_from(SPOT_SHAPES)), min_size=1, max_size=3
        )
    )
    def start_with_spot(self, spot):
        """Spot leases from the start: what guaranteed requests preempt once they ripen."""
        for user, shape in spot:
            self._request(user, "none", 0, shape, None, None, "spot", "")

    REQUEST = {
        "user": st.sampled_from(USERS),
        "via": st.sampled_from(["none"] * 4 + ["member"] * 5 + ["stranger"]),
        "pick": st.integers(0, 10),
        "shape": SHAPES,
        "hours": st.sampled_from([None, None, 0.5, 2, 12]),
        "profile": st.sampled_from([None, None, "small", "big"]),
        "tier": st.sampled_from(["guaranteed", "guaranteed", "spot"]),
        "label": st.sampled_from(["", "", "", "server:"]),
    }

    REQUEST_TIER = {"via": REQUEST["via"], "tier": REQUEST["tier"]}

    @rule(**REQUEST)
    def request(self, **kwargs):
        self._request(**kwargs)

    @rule(**REQUEST)
    def request_more(self, **kwargs):
        self._request(**kwargs)

    @rule(burst=st.lists(st.fixed_dictionaries(REQUEST), min_size=2, max_size=4))
    def request_burst(self, burst):
        for kwargs in burst:
            self._request(**kwargs)

    def _request(self, user, via, pick, shape, hours, profile, tier, label):
        if via == "member" and MEMBERS[user]:
            group = sorted(MEMBERS[user])[pick % len(MEMBERS[user])]
        elif via == "stranger" and MEMBERS[user] != set(GROUPS):
            others = sorted(set(GROUPS) - MEMBERS[user])
            group = others[pick % len(others)]
        else:
            group = None
        before, claims = self.observe(), self.claims()
        groups = MEMBERS[user]
        with_quota = sorted(g for g in groups if ("group", g) in self.quotas)
        forbidden = group is not None and group not in groups
        ambiguous = group is None and len(with_quota) > 1
        effective = group if group is not None else (with_quota[0] if with_quota else None)
        try:
            lease = self.s.request(
                user=user,
                user_groups=groups,
                shape=shape,
                group=group,
                profile=profile,
                hours=hours,
                tier=tier,
                label=label and f"server:{user}/",
            )
        except SchedulerError as e:
            event(f"request refused: {type(e).__name__}")
            if forbidden:
                assert isinstance(e, Forbidden), e
            elif ambiguous:
                assert type(e) is SchedulerError and "say which group" in e.message, e
            elif not self.feasible(shape):
                assert isinstance(e, Unsatisfiable), e
            else:
                assert isinstance(e, QuotaExceeded), e
                assert ("user", user) in self.quotas or ("group", effective) in self.quotas
            # a refused request writes nothing and changes nothing
            assert (self.rows(), self.claims()) == (before.rows, claims)
            assert self.snapshot() == before.snapshot
            return
        event(f"request {tier} {lease.status}")
        assert not (forbidden or ambiguous) and self.feasible(shape)
        assert (lease.group, lease.tier) == (effective, tier)
        assert lease.status in LIVE, (lease.tier, lease.status, lease.end_reason)
        self.tiers[lease.id] = tier
        rows = self.rows()
        assert lease.id not in before.rows and rows[lease.id].status == lease.status
        # the request was within every units limit of its tier counting what is queued
        # (a group's own share apart: past it, a group in a cohort borrows)
        held = self.units_by_principal(rows, LIVE)
        for key in _principals(rows[lease.id]):
            limit = _units_limit(self.quotas, key)
            if key[0] == "group" and self.in_cohort(key[1]):
                continue
            if limit is not None:
                own = held[key] - (self.borrowed_units(rows, key[1]) if key[0] == "group" else 0)
                assert own <= limit, (key, own, limit)
        self.check_step(before, new=lease)

    @precondition(lambda self: self.active_ids())
    @rule(
        pick=st.integers(0, 10_000),
        users=st.lists(st.sampled_from(USERS), min_size=1, max_size=3),
        **REQUEST_TIER,
    )
    def request_held_shape(self, pick, users, via, tier):
        """Ask (once or a few times) for the shape an active lease holds: requests wait,
        and what spot leases hold is asked for guaranteed (what preemption is for)."""
        held = [self.s.live[i] for i in sorted(self.active_ids())]
        lease = held[pick % len(held)]
        tier = "guaranteed" if lease.tier == "spot" else tier
        for user in users:
            self._request(user, via, pick, lease.shape, None, None, tier, "")

    def cohort_members(self) -> list[tuple[str, str]]:
        return [(u, g) for u in USERS for g in sorted(MEMBERS[u]) if self.in_cohort(g)]

    @precondition(cohort_members)
    @rule(pick=st.integers(0, 10_000), count=st.integers(1, 3))
    def request_past_share(self, pick, count):
        """A member of a group in a cohort asks for GPUs for it, past its share (borrows)."""
        members = self.cohort_members()
        user, group = members[pick % len(members)]
        mine = sorted(MEMBERS[user]).index(group)
        self._request(user, "member", mine, WholeGpus(count=count), None, None, "guaranteed", "")

    def borrowed_units(self, rows, group: str) -> Fraction:
        """Units of the active leases ``group`` runs on others' shares."""
        return _total(
            rows.values(),
            lambda r: r.status == "active" and r.group_name == group and bool(r.borrowed_from),
        )

    def feasible(self, shape) -> bool:
        gpus = [(n.name, g) for n in self.nodes for g in n.gpus if _matches(g.model, shape.model)]
        if isinstance(shape, WholeGpus):
            per_node: dict[str, int] = defaultdict(int)
            for name, g in gpus:
                if not g.mig_enabled and g.shares == 1:
                    per_node[name] += 1
            return max(per_node.values(), default=0) >= shape.count
        if isinstance(shape, MigSlice):
            return any(m.profile == shape.profile for _, g in gpus for m in g.mig_instances)
        return any(g.shares > 1 for _, g in gpus)

    @precondition(lambda self: self.s.live)
    @rule(pick=st.integers(0, 10_000))
    def release(self, pick):
        self._release(pick)

    @precondition(lambda self: self.s.live)
    @rule(pick=st.integers(0, 10_000))
    def release_more(self, pick):
        self._release(pick)

    def has_queue(self) -> bool:
        return any(x.status == "queued" for x in self.s.live.values())

    @precondition(lambda self: self.has_queue() and self.active_ids())
    @rule(pick=st.integers(0, 10_000))
    def release_for_queue(self, pick):
        """End an active lease of the kind someone waits for, theirs when they hold one
        (a user ending one session to get the next): the queue moves."""
        queue = self.s.queue()
        waiting = queue[pick % len(queue)]
        active = [self.s.live[i] for i in sorted(self.active_ids())]
        kind = [x for x in active if x.shape.kind == waiting.shape.kind]
        theirs = [x for x in kind if x.user == waiting.user]
        pool = theirs or kind or active
        self._release(pick, pool[pick % len(pool)].id)

    def under_notice(self) -> list[int]:
        return sorted(x.id for x in self.s.live.values() if x.notice_at is not None)

    @precondition(under_notice)
    @rule(pick=st.integers(0, 10_000))
    def vacate(self, pick):
        """The holder of a lease under notice ends its work in time, as asked."""
        ids = self.under_notice()
        self._release(pick, ids[pick % len(ids)], reason="preempted")

    @precondition(has_queue)
    @rule(
        pick=st.integers(0, 10_000),
        of_group=st.booleans(),
        spec=st.sampled_from(
            [
                QuotaSpec(max_units=0),
                QuotaSpec(max_units=0.5, per_user_max_units=0),
                QuotaSpec(gpu_hours=0.5, period="day"),
                QuotaSpec(allowed_shapes=["mig:*"]),
                QuotaSpec(spot_max_units=0),
                QuotaSpec(max_units=0, cohort="dept", borrow_limit=0),
            ]
        ),
    )
    def squeeze_queued(self, pick, of_group, spec):
        """Tighten the quota of someone who waits: dispatch must refuse, never grant."""
        queue = self.s.queue()
        lease = queue[pick % len(queue)]
        key = ("group", lease.group) if of_group and lease.group else ("user", lease.user)
        if key[0] == "user":
            spec = spec.model_copy(update={"per_user_max_units": None, **NOT_IN_A_COHORT})
        self.s.set_quota(*key, spec, by="admin")
        self.quotas[key] = spec

    def _release(self, pick, lease_id=None, reason="released"):
        ids = sorted(self.s.live)
        lease_id = ids[pick % len(ids)] if lease_id is None else lease_id
        was = self.s.live[lease_id].status
        before = self.observe()
        out = self.s.release(lease_id, reason=reason)
        event(f"release ({reason}): {was} -> {out.status}")
        assert out.status == ("released" if was == "active" else "cancelled")
        assert out.ended_at == self.clock()
        row = self.rows()[lease_id]
        assert (row.status, row.ended_at, row.end_reason) == (out.status, out.ended_at, reason)
        self.check_step(before, released=lease_id)

    @precondition(lambda self: self.ended)
    @rule(pick=st.integers(0, 10_000))
    def release_ended(self, pick):
        ids = sorted(self.ended)
        lease_id = ids[pick % len(ids)]
        before = (self.rows(), self.claims(), self.snapshot())
        out = self.s.release(lease_id)
        assert out.status == self.ended[lease_id][0]
        with pytest.raises(NotFound):
            self.s.release(self.s.next_id + pick)
        assert (self.rows(), self.claims(), self.snapshot()) == before

    @rule(
        seconds=st.one_of(
            st.sampled_from([60, 600, 1800, 3600, 6 * 3600, 24 * 3600, 3 * 24 * 3600]),
            st.integers(1, 30 * 3600),
        )
    )
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def tick(self):
        """What the service calls at each boundary: overdue leases go, the queue is re-ranked
        by fair share and served again."""
        before = self.observe()
        self.s.tick()
        self.check_step(before, tick=True)

    @precondition(lambda self: self.s.next_boundary() is not None)
    @rule()
    def tick_at_boundary(self):
        """Move the clock to the next boundary (a spot lease ripens, or one under notice is
        overdue) and tick there."""
        at = self.s.next_boundary()
        assert at is not None and at > self.clock()
        event("tick at a boundary")
        self.clock.advance(at - self.clock())
        self.tick()

    @rule(
        kind=st.sampled_from(["user", "group"]),
        pick=st.integers(0, 10_000),
        spec=st.one_of(st.none(), QUOTA_SPECS, QUOTA_SPECS, COHORT_SPECS),
        per_user=st.sampled_from([None, None, 1, 2]),
    )
    def quota(self, kind, pick, spec, per_user):
        """Set a quota, or delete one when ``spec`` is None; a cohort only on a group's."""
        names = USERS if kind == "user" else GROUPS
        name = names[pick % len(names)]
        if spec is None:
            if (kind, name) not in self.quotas:
                with pytest.raises(NotFound):
                    self.s.delete_quota(kind, name, by="admin")
                return
            self.s.delete_quota(kind, name, by="admin")
            del self.quotas[(kind, name)]
            return
        if kind == "group" and per_user is not None:
            spec = spec.model_copy(update={"per_user_max_units": per_user})
        if kind == "user":
            spec = spec.model_copy(update=NOT_IN_A_COHORT)
        before = self.rows()
        self.s.set_quota(kind, name, spec, by="admin")
        self.quotas[(kind, name)] = spec
        assert self.rows() == before  # leases are untouched

    @rule(model=st.sampled_from(MODELS), rate=st.sampled_from([None, 0, 0.5, 3, 7.25]))
    def change_rate(self, model, rate):
        """An admin sets a model's rate (or unsets it: None); leases keep theirs."""
        before = self.rows()
        if rate is None:
            if model not in self.s.rates.admin:
                with pytest.raises(NotFound):
                    self.s.rates.unset(model, by="admin")
                return
            self.s.rates.unset(model, by="admin")
            self.rate_now[model] = RateCard(self.engine, RATES).rate(model)
        else:
            self.s.rates.set(model, rate, by="admin", known=MODELS)
            self.rate_now[model] = rate
        assert self.rows() == before  # no lease is repriced

    @precondition(lambda self: self.s.live or self.ended)
    @rule()
    def restart(self):
        """A new scheduler on the same database: the same leases, loans and notices, and
        the queue in the order the old one would re-rank it in now."""
        old = self.s
        before = self.observe()
        live, _ = before.snapshot
        now = self.clock()
        # load() re-ranks the queue by fair share from the ledger: as the running
        # scheduler does from what it kept in memory
        queued = [replace(x) for x in old.queue()]
        old.fair.factors(queued, old.live, old.quotas, now)
        ranked = sorted(queued, key=lambda x: x.order)
        self.s = self.new_scheduler()
        assert {m: self.s.rates.rate(m) for m in MODELS} == self.rate_now  # admins' kept
        after_live, after_queue = self.snapshot()
        # load() dispatches, and dispatch refuses a queued request at the head of its
        # line that a quota now forbids (changed since, or out of GPU-hours by now);
        # nothing else may change, and nothing is granted (nothing was freed)
        refused = set(live) - set(after_live)
        event(f"restart: {len(live)} live, {len(refused)} refused at load")
        expected = {i: v for i, v in live.items() if i not in refused}
        assert after_live == expected, {
            i: (expected.get(i), after_live.get(i))
            for i in set(expected) | set(after_live)
            if expected.get(i) != after_live.get(i)
        }
        for x in ranked:  # what memory kept is what the ledger gives back (rounded)
            if x.id not in refused:
                got = self.s.live[x.id].fair
                assert got == pytest.approx(x.fair, abs=2e-6), (x.id, x.fair, got)
        assert after_queue == [x.id for x in ranked if x.id not in refused]
        for i in refused:
            assert self.s.get(i).status == "refused"
        self.check_step(before)
        assert self.s.quotas == old.quotas == self.quotas
        assert self.s.next_id == old.next_id

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def database_matches_memory(self):
        rows = self.rows()
        self.check_claims(rows)
        self.check_live(rows)
        self.check_tiers_and_loans(rows)
        self.check_queue(rows)
        self.check_counters(rows)

        # quotas: the table is what was set
        with self.engine.connect() as c:
            stored = {
                (q.kind, q.name): QuotaSpec.model_validate(q.spec)
                for q in c.execute(select(QUOTAS))
            }
        assert stored == self.quotas == self.s.quotas
        self.check_ledger(rows)

    def check_claims(self, rows) -> None:
        """No slot is held twice; the claims table is exactly the active leases' slots."""
        claims = self.claims()
        held: dict[tuple[str, int], int] = {}
        for r in rows.values():
            if r.status != "active":
                assert not any(lid == r.id for lid in claims.values())
                continue
            slots = [(d["uuid"], d.get("slot", 0)) for d in r.devices]
            assert len(set(slots)) == len(slots)
            for slot in slots:
                assert slot not in held, f"{slot} held by {held[slot]} and {r.id}"
                held[slot] = r.id
            # units are what the granted slots are worth, all on the lease's node
            units = _units(r)
            assert units == sum((self.slot_units[s] for s in slots), Fraction(0))
            assert {self.device_node[u] for u, _ in slots} == {r.node}
            shape = self.s.live[r.id].shape
            if isinstance(shape, WholeGpus):
                assert len(slots) == shape.count
            for d in r.devices:
                assert _matches(d["model"], shape.model)
                if isinstance(shape, MigSlice):
                    assert d["profile"] == shape.profile
            for u, k in slots:
                assert self.s.pool.holder(u, k) == r.id
        assert claims == held

    def check_live(self, rows) -> None:
        """Memory and database agree on what is live; an ended lease stays as it ended."""
        now = self.clock()
        live_rows = {i: r.status for i, r in rows.items() if r.status in LIVE}
        assert {i: x.status for i, x in self.s.live.items()} == live_rows
        for i, x in self.s.live.items():
            r = rows[i]
            assert x.units == _units(r)
            memory = (x.tier, x.discount, x.rate, x.notice_at, x.deadline, x.borrowed_from)
            assert memory == (r.tier, r.discount, r.rate, r.notice_at, r.deadline, r.borrowed_from)
        for i, r in rows.items():
            if r.status in ENDED:
                assert _ending(r) == self.ended.setdefault(i, _ending(r))
                assert r.ended_at is not None and r.ended_at <= now
            else:
                assert i not in self.ended
                assert r.ended_at is None
            if r.status in ("cancelled", "refused", "queued"):
                assert r.granted_at is None

    def check_tiers_and_loans(self, rows) -> None:
        """Each lease has the tier it was asked in, spot ones at the discount; notices only
        on spot or borrowed leases, as given; loans only on granted guaranteed leases, as
        granted; and the scheduler counts loans as the database holds them."""
        lent: dict[str, Fraction] = defaultdict(Fraction)
        borrowed: dict[str, Fraction] = defaultdict(Fraction)
        preemptible = 0
        for i, r in rows.items():
            assert r.tier == self.tiers[i]
            if r.granted_at is not None:
                assert r.discount == (SPOT.discount if r.tier == "spot" else 1.0)
                assert self.priced[i] == (r.rate, r.tier, r.discount, r.borrowed_from), i
            if r.notice_at is None:
                assert r.deadline is None and i not in self.notices
                assert r.end_reason != "preempted", r
            else:
                assert r.tier == "spot" or r.borrowed_from, r
                assert r.deadline == r.notice_at + SPOT.grace_s
                assert self.notices[i] == (r.notice_at, r.deadline)
            if r.borrowed_from is not None:
                assert r.granted_at is not None and r.tier == "guaranteed", r
                assert r.group_name is not None and r.group_name != r.borrowed_from, r
            if r.status == "active":
                preemptible += r.tier == "spot" or r.borrowed_from is not None
                if r.borrowed_from is not None:
                    lent[r.borrowed_from] += _units(r)
                    borrowed[r.group_name] += _units(r)
        accounting = self.s.accounting
        assert accounting.preemptible == preemptible
        for group in GROUPS:
            counted = (accounting.lent[group], accounting.borrowed[group])
            assert counted == (lent[group], borrowed[group]), group

    def check_queue(self, rows) -> None:
        """The queue: every queued lease, in the order of priority, fair share and age,
        guaranteed requests before spot ones."""
        queue = self.s.queue()
        assert {x.id for x in queue} == {i for i, r in rows.items() if r.status == "queued"}
        for x in queue:
            r = rows[x.id]
            assert 0 <= x.fair[0] <= 1 and 0 <= x.fair[1] <= 1, x.fair
            assert x.order == (
                r.tier == "spot", -r.priority, -x.fair[0], -x.fair[1], r.requested_at, r.id
            )  # fmt: skip
        assert all(a.order < b.order for a, b in pairwise(queue))
        tiers = [x.tier for x in queue]
        assert tiers == sorted(tiers, key=lambda t: t == "spot"), tiers
        assert [self.s.position(x) for x in queue] == list(range(1, len(queue) + 1))

    def check_counters(self, rows) -> None:
        """The scheduler's per-principal counters agree with the database."""
        active = self.units_by_principal(rows, ("active",))
        held = self.units_by_principal(rows, LIVE)
        for kind, names in (("user", USERS), ("group", GROUPS)):
            for name in names:
                key = (kind, name)
                status = self.s.quota_status(kind, name, self.quotas.get(key))
                assert abs(status["units_active"] - float(active[key])) < 1e-9
                assert abs(status["units_queued"] - float(held[key] - active[key])) < 1e-9
                assert abs(status["spot_units_active"] - float(active[("spot", *key)])) < 1e-9
                if "lent_units" in status:  # a group in a cohort
                    lent = _total(
                        rows.values(),
                        lambda r, g=name: r.status == "active" and r.borrowed_from == g,
                    )
                    assert status["lent_units"] == float(lent)
                    assert status["borrowed_units"] == float(self.borrowed_units(rows, name))

    def check_ledger(self, rows) -> None:
        """Caches, prices and the ledger agree with the leases, lease by lease."""
        now = self.clock()
        # white box: the scheduler's caches of GPU-hours (and credits) of ended leases per
        # budget window (filled lazily; reading them here must not fill them)
        caches = ((self.s.accounting.closed_hours, False), (self.s.accounting.closed_credits, True))
        for cache, charged in caches:
            for key, by_start in cache.items():
                for start, cached in by_start.items():
                    truth = sum(
                        r.units_num / r.units_den * (r.ended_at - max(r.granted_at, start)) / 3600
                        * (r.rate * r.discount if charged else 1.0)
                        for r in rows.values()
                        if r.status in ENDED
                        and r.granted_at is not None
                        and r.ended_at > start
                        and key in _principals(r)
                    )  # fmt: skip
                    assert abs(cached - truth) < 1e-6, (key, start, cached, truth, charged)

        # charges are units x time x rate x discount, lease by lease
        credits = sum(
            r.units_num / r.units_den
            * ((r.ended_at if r.ended_at is not None else now) - r.granted_at) / 3600
            * r.rate * r.discount
            for r in rows.values()
            if r.granted_at is not None
        )  # fmt: skip
        assert abs(self.s.ledger.total_credits(now) - credits) < 1e-6
        statement = self.s.ledger.statement(0, FAR, now=now)
        assert abs(sum(x["credits"] for x in statement) - credits) <= 1e-6 * max(1, len(statement))

        # the ledger: GPU-hours over all days equal units x time held, lease by lease
        usage = self.s.usage(0, FAR)
        expected = (
            sum(
                r.units_num
                / r.units_den
                * ((r.ended_at if r.ended_at is not None else now) - r.granted_at)
                for r in rows.values()
                if r.granted_at is not None
            )
            / 3600
        )
        total = sum(u["gpu_hours"] for u in usage)
        # usage() rounds each row to 1e-6
        assert abs(total - expected) <= 1e-6 * max(1, len(usage)), (total, expected)


def _run(machine: type, **kwargs) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            **kwargs,
        ),
    )


def test_scheduler_state_machine_sqlite(clock, sqlite_template):
    def new_database():
        d = tempfile.mkdtemp(prefix="gpuhub-sm-")
        shutil.copyfile(sqlite_template, f"{d}/gpuhub.sqlite")
        return f"sqlite:///{d}/gpuhub.sqlite", lambda: shutil.rmtree(d, ignore_errors=True)

    machine = type(
        "SqliteSchedulerMachine",
        (SchedulerMachine,),
        {"new_database": staticmethod(new_database), "clock_class": type(clock)},
    )
    _run(machine, max_examples=examples(60), stateful_step_count=26)


@pytest.mark.postgres
def test_scheduler_state_machine_postgresql(postgres, clock):
    def new_database():
        return postgres.create_database(template=pg.TEMPLATE), lambda: None

    machine = type(
        "PostgresSchedulerMachine",
        (SchedulerMachine,),
        {"new_database": staticmethod(new_database), "clock_class": type(clock)},
    )
    _run(machine, max_examples=examples(15), stateful_step_count=26)
