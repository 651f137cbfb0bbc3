"""A Hypothesis state machine over the scheduler: random requests, releases, quota changes,
clock moves and restarts, with the database checked against memory after every step.

Each example starts on a fresh database (a SQLite file, or a PostgreSQL database created
on the session's throwaway server) and a fake clock at Monday 2026-11-23 09:00 UTC.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction

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
MEMBERS = {"ann": {"cs101"}, "ben": {"cs101", "ml"}, "cat": {"ml"}, "dov": set()}
USERS = sorted(MEMBERS)
GROUPS = ["cs101", "ml"]
ENDED = ("released", "cancelled", "refused")
FAR = 4e9  # a ledger window end past any clock here
#: The configured rates (credits per GPU-hour); the L4s take the default (1.0).
RATES = {"H100": 2.0, "A100-40GB": 1.5, "A100": 1.25}
MODELS = ("A100-40GB", "A100-80GB", "H100-80GB", "L4-24GB")

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
QUOTA_SPECS = st.builds(
    QuotaSpec,
    max_units=st.sampled_from([None, 0.5, 1, 2, 3, 4.5]),
    gpu_hours=st.sampled_from([None, 0.5, 2, 5, 20]),
    credits=st.sampled_from([None, None, 1, 4, 30]),
    period=st.sampled_from(["day", "week", "month"]),
    priority=st.integers(-1, 3),
    allowed_shapes=st.sampled_from([None, None, None, ["gpu"], ["mig:*", "shared"]]),
    allowed_profiles=st.sampled_from([None, None, None, ["small"]]),
)


def _matches(model: str, wanted: str | None) -> bool:
    return wanted is None or wanted.lower() in model.lower()


def _principals(row) -> list[tuple]:
    keys = [("user", row.user)]
    if row.group_name:
        keys += [("group", row.group_name), ("member", row.group_name, row.user)]
    return keys


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
        self.priced: dict[int, tuple] = {}  # lease id -> (rate, tier, discount) when granted
        self.ended: dict[int, tuple] = {}  # id -> (status, ended_at, granted_at)
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
        )  # fmt: skip

    def teardown(self) -> None:
        self.engine.dispose()
        self._cleanup()

    # -- reading the database ----------------------------------------------------------

    def rows(self) -> dict[int, object]:
        with self.engine.connect() as c:
            return {r.id: r for r in c.execute(select(LEASES))}

    def claims(self) -> dict[tuple[str, int], int]:
        with self.engine.connect() as c:
            return {(r.device_id, r.slot): r.lease_id for r in c.execute(select(CLAIMS))}

    def db_state(self) -> tuple:
        rows = self.rows()
        return (
            {i: tuple(r) for i, r in rows.items()},
            self.claims(),
        )

    def snapshot(self) -> tuple:
        live = {
            x.id: (x.status, x.node, tuple(x.slots), x.units, x.user, x.group, x.priority)
            for x in self.s.live.values()
        }
        return live, [x.id for x in self.s.queue()]

    def units_by_principal(self, rows, statuses) -> dict[tuple, Fraction]:
        out: dict[tuple, Fraction] = defaultdict(Fraction)
        for r in rows.values():
            if r.status in statuses:
                for p in _principals(r):
                    out[p] += Fraction(r.units_num, r.units_den)
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

    def check_grants(self, before_active: set[int]) -> None:
        """Every lease granted in this step was within every quota as set at that moment."""
        rows = self.rows()
        now = self.clock()
        active = self.units_by_principal(rows, ("active",))
        for lease_id in self.active_ids() - before_active:
            row = rows[lease_id]
            assert row.status == "active" and row.granted_at == now
            # priced at the rates in force now: each device its model's, the lease their mean
            rates = [self.rate_now[d["model"]] for d in row.devices]
            assert [d["rate"] for d in row.devices] == rates
            assert row.rate == pytest.approx(sum(rates) / len(rates), abs=1e-12)
            assert (row.tier, row.discount) == ("guaranteed", 1.0)
            self.priced[lease_id] = (row.rate, row.tier, row.discount)
            for key in _principals(row):
                if key[0] == "member":
                    spec = self.quotas.get(("group", key[1]))
                    if spec is not None and spec.per_user_max_units is not None:
                        assert active[key] <= Fraction(str(spec.per_user_max_units)), key
                    continue
                spec = self.quotas.get(key)
                if spec is None:
                    continue
                if spec.max_units is not None:
                    assert active[key] <= Fraction(str(spec.max_units)), (key, active[key])
                if spec.gpu_hours is not None:
                    start, _ = period_window(spec, now)
                    used = self.hours_used(rows, key, start, now)
                    assert used < spec.gpu_hours + 1e-6, (key, used, spec.gpu_hours)
                    if row.hours:
                        need = row.units_num / row.units_den * row.hours
                        assert need <= spec.gpu_hours - used + 1e-6, (key, used, need)
                if spec.credits is not None:
                    start, _ = period_window(spec, now)
                    used = self.hours_used(rows, key, start, now, credits=True)
                    assert used < spec.credits + 1e-6, (key, used, spec.credits)
                assert spec.allows_shape(self.s.live[lease_id].shape.label)
                assert spec.allows_profile(row.profile)

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
        )
    )
    def start_with_quotas(self, quotas):
        for kind, pick, spec, per_user in quotas:
            self.quota(kind, pick, spec, per_user)

    REQUEST = {
        "user": st.sampled_from(USERS),
        "via": st.sampled_from(["none"] * 4 + ["member"] * 5 + ["stranger"]),
        "pick": st.integers(0, 10),
        "shape": SHAPES,
        "hours": st.sampled_from([None, None, 0.5, 2, 12]),
        "profile": st.sampled_from([None, None, "small", "big"]),
    }

    @rule(**REQUEST)
    def request(self, user, via, pick, shape, hours, profile):
        self._request(user, via, pick, shape, hours, profile)

    @rule(**REQUEST)
    def request_more(self, user, via, pick, shape, hours, profile):
        self._request(user, via, pick, shape, hours, profile)

    @rule(burst=st.lists(st.fixed_dictionaries(REQUEST), min_size=2, max_size=4))
    def request_burst(self, burst):
        for kwargs in burst:
            self._request(**kwargs)

    def _request(self, user, via, pick, shape, hours, profile):
        if via == "member" and MEMBERS[user]:
            group = sorted(MEMBERS[user])[pick % len(MEMBERS[user])]
        elif via == "stranger" and MEMBERS[user] != set(GROUPS):
            others = sorted(set(GROUPS) - MEMBERS[user])
            group = others[pick % len(others)]
        else:
            group = None
        before = self.db_state()
        before_active = self.active_ids()
        before_snapshot = self.snapshot()
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
            assert self.db_state() == before
            assert self.snapshot() == before_snapshot
            return
        event(f"request {lease.status}")
        assert not (forbidden or ambiguous) and self.feasible(shape)
        assert lease.group == effective
        assert lease.status in ("active", "queued")
        rows = self.rows()
        assert lease.id not in before[0] and rows[lease.id].status == lease.status
        # the request was within every max_units counting what is queued
        held = self.units_by_principal(rows, ("active", "queued"))
        for key in _principals(rows[lease.id]):
            if key[0] == "member":
                spec = self.quotas.get(("group", key[1]))
                limit = spec.per_user_max_units if spec else None
            else:
                spec = self.quotas.get(key)
                limit = spec.max_units if spec else None
            if limit is not None:
                assert held[key] <= Fraction(str(limit)), (key, held[key], limit)
        self.check_grants(before_active)

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
            ]
        ),
    )
    def squeeze_queued(self, pick, of_group, spec):
        """Tighten the quota of someone who waits: dispatch must refuse, never grant."""
        queue = self.s.queue()
        lease = queue[pick % len(queue)]
        key = ("group", lease.group) if of_group and lease.group else ("user", lease.user)
        if key[0] == "user":
            spec = spec.model_copy(update={"per_user_max_units": None})
        self.s.set_quota(*key, spec, by="admin")
        self.quotas[key] = spec

    def _release(self, pick, lease_id=None):
        ids = sorted(self.s.live)
        lease_id = ids[pick % len(ids)] if lease_id is None else lease_id
        was = self.s.live[lease_id].status
        before_active = self.active_ids()
        out = self.s.release(lease_id)
        event(f"release: {was} -> {out.status}")
        assert out.status == ("released" if was == "active" else "cancelled")
        assert out.ended_at == self.clock()
        row = self.rows()[lease_id]
        assert (row.status, row.ended_at) == (out.status, out.ended_at)
        granted = len(self.active_ids() - before_active)
        refused = sum(1 for r in self.rows().values() if r.status == "refused") - sum(
            1 for v in self.ended.values() if v[0] == "refused"
        )
        event(f"release: {min(granted, 2)}+ granted from queue, {min(refused, 1)}+ refused")
        self.check_grants(before_active)

    @precondition(lambda self: self.ended)
    @rule(pick=st.integers(0, 10_000))
    def release_ended(self, pick):
        ids = sorted(self.ended)
        lease_id = ids[pick % len(ids)]
        before = self.db_state()
        before_snapshot = self.snapshot()
        out = self.s.release(lease_id)
        assert out.status == self.ended[lease_id][0]
        with pytest.raises(NotFound):
            self.s.release(self.s.next_id + pick)
        assert self.db_state() == before
        assert self.snapshot() == before_snapshot

    @rule(
        seconds=st.one_of(
            st.sampled_from([60, 1800, 3600, 6 * 3600, 24 * 3600, 3 * 24 * 3600]),
            st.integers(1, 30 * 3600),
        )
    )
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule(
        kind=st.sampled_from(["user", "group"]),
        pick=st.integers(0, 10_000),
        spec=st.one_of(st.none(), QUOTA_SPECS, QUOTA_SPECS),
        per_user=st.sampled_from([None, None, 1, 2]),
    )
    def quota(self, kind, pick, spec, per_user):
        """Set a quota, or delete one when ``spec`` is None."""
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
        before = self.db_state()[0]
        self.s.set_quota(kind, name, spec, by="admin")
        self.quotas[(kind, name)] = spec
        assert self.db_state()[0] == before  # leases are untouched

    @rule(model=st.sampled_from(MODELS), rate=st.sampled_from([None, 0, 0.5, 3, 7.25]))
    def change_rate(self, model, rate):
        """An admin sets a model's rate (or unsets it: None); leases keep theirs."""
        before = self.db_state()[0]
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
        assert self.db_state()[0] == before  # no lease is repriced

    @precondition(lambda self: self.s.live or self.ended)
    @rule()
    def restart(self):
        old = self.s
        live, queue = self.snapshot()
        now = self.clock()
        # load() dispatches, and dispatch refuses a queued request at the head of its
        # line that a quota now forbids (changed since, or out of GPU-hours by now);
        # nothing else may change, and nothing is granted (nothing was freed)
        forbidden = {
            x.id
            for x in old.queue()
            if old.accounting.quota_problem(
                x.user, x.group, x.shape, x.profile, x.units, x.hours, now, queued_too=False
            )
        }
        self.s = self.new_scheduler()
        assert {m: self.s.rates.rate(m) for m in MODELS} == self.rate_now  # admins' kept
        after_live, after_queue = self.snapshot()
        refused = set(live) - set(after_live)
        event(f"restart: {len(live)} live, {len(refused)} refused at load")
        assert refused <= forbidden, (refused, forbidden)
        expected = {i: v for i, v in live.items() if i not in refused}
        assert after_live == expected, {
            i: (expected.get(i), after_live.get(i))
            for i in set(expected) | set(after_live)
            if expected.get(i) != after_live.get(i)
        }
        assert after_queue == [i for i in queue if i not in refused]
        rows = self.rows()
        for i in refused:
            assert rows[i].status == "refused" and rows[i].end_reason
            assert rows[i].ended_at == now
        assert self.s.quotas == old.quotas == self.quotas
        assert self.s.next_id == old.next_id

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def database_matches_memory(self):
        rows = self.rows()
        claims = self.claims()
        now = self.clock()

        # no slot is held twice; the claims table is exactly the active leases' slots
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
            units = Fraction(r.units_num, r.units_den)
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

        # memory and database agree on what is live
        live_rows = {i: r.status for i, r in rows.items() if r.status in ("queued", "active")}
        assert {i: x.status for i, x in self.s.live.items()} == live_rows
        for i, x in self.s.live.items():
            assert x.units == Fraction(rows[i].units_num, rows[i].units_den)
        queued = sorted(
            (r for r in rows.values() if r.status == "queued"),
            key=lambda r: (-r.priority, r.requested_at, r.id),
        )
        assert [x.id for x in self.s.queue()] == [r.id for r in queued]
        assert [self.s.position(x) for x in self.s.queue()] == list(range(1, len(queued) + 1))

        # the scheduler's per-principal counters agree with the database
        active = self.units_by_principal(rows, ("active",))
        held_units = self.units_by_principal(rows, ("active", "queued"))
        for kind, names in (("user", USERS), ("group", GROUPS)):
            for name in names:
                status = self.s.quota_status(kind, name, None)
                assert abs(status["units_active"] - float(active[(kind, name)])) < 1e-9
                queued_units = held_units[(kind, name)] - active[(kind, name)]
                assert abs(status["units_queued"] - float(queued_units)) < 1e-9

        # quotas: the table is what was set
        with self.engine.connect() as c:
            stored = {
                (q.kind, q.name): QuotaSpec.model_validate(q.spec)
                for q in c.execute(select(QUOTAS))
            }
        assert stored == self.quotas == self.s.quotas

        # an ended lease stays ended, exactly as it ended
        for i, r in rows.items():
            if r.status in ENDED:
                seen = self.ended.setdefault(i, (r.status, r.ended_at, r.granted_at))
                assert (r.status, r.ended_at, r.granted_at) == seen
                assert r.ended_at is not None and r.ended_at <= now
            else:
                assert i not in self.ended
                assert r.ended_at is None
            if r.status in ("cancelled", "refused", "queued"):
                assert r.granted_at is None

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

        # prices: a lease's stays what it was granted at (rate changes and restarts alike),
        # and the charges are units x time x rate x discount, lease by lease
        for i, priced in self.priced.items():
            assert (rows[i].rate, rows[i].tier, rows[i].discount) == priced, i
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
    _run(machine, max_examples=examples(60), stateful_step_count=30)


@pytest.mark.postgres
def test_scheduler_state_machine_postgresql(postgres, clock):
    def new_database():
        return postgres.create_database(template=pg.TEMPLATE), lambda: None

    machine = type(
        "PostgresSchedulerMachine",
        (SchedulerMachine,),
        {"new_database": staticmethod(new_database), "clock_class": type(clock)},
    )
    _run(machine, max_examples=examples(15), stateful_step_count=30)
