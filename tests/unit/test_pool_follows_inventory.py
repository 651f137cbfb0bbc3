"""The pool follows its inventory (``Scheduler.refresh_inventory``): nodes that take no new
work get no grants, devices held outside gpuhub are never granted nor counted free, nodes
and devices come and go; and the pool's read model, API body and CLI table show it.

Deterministic tests on SQLite and PostgreSQL (the ``make`` fixture), then a Hypothesis
state machine of requests, releases, refreshes and restarts on SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import replace
from fractions import Fraction

import pytest
import yaml
from gpuhub.cli.render import pool_table
from gpuhub.inventory import InventorySource, Node
from gpuhub.inventory.simulated import parse_spec
from gpuhub.inventory.slurm import SlurmError
from gpuhub.scheduler.core import Scheduler, Unsatisfiable
from gpuhub.scheduler.db import DeviceRow, open_engine
from gpuhub.scheduler.inventory_change import InventoryChange, compare
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus
from gpuhub.service.app import GpuhubService
from gpuhub.service.inventory_refresh import InventoryRefresher
from gpuhub.service.pool import node_item
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from jsonschema import Draft202012Validator
from sqlalchemy import select
from traitlets import TraitError
from traitlets.config import Config

from tests.support.paths import OPENAPI
from tests.support.properties import examples
from tests.support.scheduler import ask, assert_consistent, claim_rows, gpu, mig, shared, uuids

OUTSIDE = "Slurm job 7 (outside gpuhub)"


def drained(nodes: list[Node], *names: str, why: str = "IDLE+DRAIN: disk") -> list[Node]:
    """``nodes`` with ``names`` marked as taking no new work."""
    return [replace(n, usable=False, state=why) if n.name in names else n for n in nodes]


def anyone(lease) -> dict:
    return {"lease": lease, "user": None, "group": None, "units": 1.0, "activity": None}


# -- nodes that take no new work ---------------------------------------------------------


def test_a_drained_node_gets_no_grants_and_its_return_grants_the_queued_request(make, engine):
    s = make("a: 2xH100-80GB; b: 4xH100-80GB")
    nodes = list(s.inventory)
    running = ask(s, "ann", gpu(2))
    assert running.node == "a"  # best fit: a has exactly two
    change = s.refresh_inventory(drained(nodes, "b"))
    assert change == InventoryChange(unusable=("b",))
    # four GPUs: only b has them; b is drained, so the request waits for it (not refused)
    big = ask(s, "ben", gpu(4))
    small = ask(s, "cat", gpu(1))
    assert (big.status, small.status) == ("queued", "queued")
    view = s.pool_view()
    assert view.units_free == 0 and view.units_total == 6
    b = next(nv for nv in view.nodes if nv.node.name == "b")
    assert (b.node.usable, b.node.state) == (False, "IDLE+DRAIN: disk")
    assert [g.state for g in b.gpus] == ["free"] * 4  # free, but on a node that takes no work
    assert s.view.preview(user="dov", user_groups=[], shape=gpu())["outcome"] == "queue"
    why = s.view.waiting(small)
    assert why is not None and why["reason"] == "pool_busy"
    assert why["message"].startswith(
        "none of the 6 GPUs is free: 2 held, 4 on nodes that take no new leases"
    )
    assert s.pool.tally(gpu()) == (0, 4, 6, True)
    # a lease on a node that becomes unusable stays where it is
    s.refresh_inventory(drained(nodes, "a", "b"))
    assert s.live[running.id].status == "active" and s.live[running.id].node == "a"
    s.release(running.id)
    assert s.live[small.id].status == "queued"  # a freed its GPUs, but a is drained too
    # b takes work again: the queue is served in order
    change = s.refresh_inventory(nodes)
    assert change is not None and change.usable == ("a", "b")
    assert change.granted == (big.id, small.id)
    assert (s.live[big.id].node, s.live[small.id].node) == ("b", "a")
    assert_consistent(s)


def test_nothing_changed_does_nothing(make, engine):
    s = make("a: 2xH100-80GB")
    lease = ask(s, "ann", gpu(2))
    queued = ask(s, "ben", gpu())
    pool, claims = s.pool, claim_rows(engine)
    assert s.refresh_inventory(parse_spec("a: 2xH100-80GB"), {}) is None
    assert s.pool is pool and claim_rows(engine) == claims
    assert (s.live[lease.id].status, s.live[queued.id].status) == ("active", "queued")


def test_a_shape_no_node_could_meet_is_still_refused(make):
    s = make("a: 2xH100-80GB; b: 4xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]")
    s.refresh_inventory(drained(s.inventory, "a", "b"))
    assert ask(s, "ann", gpu(4)).status == "queued"
    assert ask(s, "ann", mig("1g.5gb")).status == "queued"
    with pytest.raises(Unsatisfiable, match="no node has 5 whole GPUs"):
        ask(s, "ann", gpu(5))
    with pytest.raises(Unsatisfiable, match="MIG profile 2g.10gb"):
        ask(s, "ann", mig("2g.10gb"))


# -- devices held outside gpuhub -----------------------------------------------------------


def test_an_outside_hold_blocks_exactly_its_devices_until_it_ends(make, engine):
    s = make("n: 2xH100-80GB; m: 1xH100-80GB")
    nodes = list(s.inventory)
    change = s.refresh_inventory(nodes, {"GPU-sim-n-0": OUTSIDE, "GPU-elsewhere-9": "x"})
    assert change is not None and change.held_outside == ("GPU-elsewhere-9", "GPU-sim-n-0")
    view = s.pool_view()
    assert (view.units_total, view.units_free, view.units_leased) == (3, 2, 0)
    n0 = next(g for nv in view.nodes for g in nv.gpus if g.gpu.uuid == "GPU-sim-n-0")
    assert (n0.state, n0.held_outside, n0.holders) == ("busy", OUTSIDE, ())
    assert s.pool.count(gpu()) == (2, 3, True)
    first = ask(s, "ann", gpu(2))  # n has only one GPU to give now
    assert first.status == "queued"
    second = ask(s, "ben", gpu())
    third = ask(s, "cat", gpu())
    assert sorted(uuids(second) + uuids(third)) == ["GPU-sim-m-0", "GPU-sim-n-1"]
    assert "GPU-sim-n-0" not in {d for d, _ in claim_rows(engine)}
    assert s.pool_view().units_free == 0
    s.release(second.id)
    s.release(third.id)
    assert s.live[first.id].status == "queued"
    change = s.refresh_inventory(nodes, {})  # the outside job ended
    assert change is not None
    assert change.freed_outside == ("GPU-elsewhere-9", "GPU-sim-n-0")
    assert change.granted == (first.id,)
    assert uuids(s.live[first.id]) == ["GPU-sim-n-0", "GPU-sim-n-1"]
    assert_consistent(s)


def test_outside_holds_on_mig_instances_and_shared_gpus(make):
    s = make("a: 1xA100-40GB[mig=2x1g.5gb], 1xL4-24GB[shared=2]; b: 1xA100-40GB[mig=1x3g.20gb]")
    s.refresh_inventory(list(s.inventory), {"MIG-sim-a-0-0": OUTSIDE, "GPU-sim-a-1": OUTSIDE})
    view = s.pool_view()
    a0, a1 = view.nodes[0].gpus
    assert (a0.state, a0.held_outside, dict(a0.mig_held_outside)) == (
        "partial", None, {"MIG-sim-a-0-0": OUTSIDE},
    )  # fmt: skip
    assert (a1.state, a1.held_outside) == ("busy", OUTSIDE)
    # free: all three GPUs but the slice held outside (1/7 GPU) and the shared L4
    assert view.units_free == 3 - Fraction(1, 7) - 1
    assert s.pool.count(shared()) == (0, 2, True)
    assert s.pool.count(mig("1g.5gb")) == (1, 2, True)
    lease = ask(s, "ann", mig("1g.5gb"))
    assert uuids(lease) == ["MIG-sim-a-0-1"]
    waiting = ask(s, "ben", mig("1g.5gb"))
    seat = ask(s, "cat", shared())
    assert waiting.status == seat.status == "queued"
    # the whole MIG GPU held outside (ann's slice too): none of its slices is granted
    change = s.refresh_inventory(
        list(s.inventory), {"GPU-sim-a-0": OUTSIDE, "MIG-sim-a-0-1": OUTSIDE}
    )
    assert change is not None and change.granted == (seat.id,)  # the L4 is back
    s.release(lease.id)
    assert s.live[waiting.id].status == "queued"
    assert s.pool.count(mig("1g.5gb")) == (0, 2, True)
    assert s.pool_view().units_free == Fraction(1, 2) + 1  # a seat of the L4, b's MIG GPU
    assert_consistent(s)


def test_a_lease_on_a_device_taken_outside_stays_and_is_warned_of(make, caplog):
    s = make("n: 2xH100-80GB")
    lease = ask(s, "ann", gpu())
    with caplog.at_level(logging.INFO, logger="gpuhub.scheduler"):
        s.refresh_inventory(list(s.inventory), {uuids(lease)[0]: OUTSIDE})
    assert s.live[lease.id].status == "active"
    assert f"device {uuids(lease)[0]} of lease {lease.id} is held outside gpuhub too" in caplog.text
    view = s.pool_view()
    assert view.units_free == 1 and view.units_leased == 1  # the GPU counts once
    s.release(lease.id)
    assert s.pool.count(gpu()) == (1, 2, True)  # released, but still held outside
    assert_consistent(s)


# -- nodes and devices that come and go ----------------------------------------------------


def test_nodes_that_come_and_go(make, engine):
    s = make("a: 2xH100-80GB")
    held = ask(s, "ann", gpu(2))
    waiting = ask(s, "ben", gpu(2))
    assert waiting.status == "queued"
    with_c = parse_spec("a: 2xH100-80GB; c: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]")
    change = s.refresh_inventory(with_c)
    assert change is not None and (change.added, change.granted) == (("c",), (waiting.id,))
    assert s.live[waiting.id].node == "c"
    slice_ = ask(s, "cat", mig("1g.5gb"))
    with engine.connect() as c:
        present = dict(c.execute(select(DeviceRow.id, DeviceRow.present)).all())
    assert present["GPU-sim-c-0"] and present["MIG-sim-c-2-0"]
    # c goes: its leases keep their records, its devices are marked gone
    change = s.refresh_inventory(parse_spec("a: 2xH100-80GB"))
    assert change is not None and change.removed == ("c",)
    assert s.live[waiting.id].status == s.live[slice_.id].status == "active"
    assert [nv.node.name for nv in s.pool_view().nodes] == ["a"]
    with engine.connect() as c:
        present = dict(c.execute(select(DeviceRow.id, DeviceRow.present)).all())
    assert not present["GPU-sim-c-0"] and present["GPU-sim-a-0"]
    # a request only c could meet is refused now
    with pytest.raises(Unsatisfiable):
        ask(s, "dov", mig("1g.5gb"))
    s.release(slice_.id)
    s.release(held.id)
    assert_consistent(s)
    # c comes back with its lease's GPUs still held by that lease
    s.refresh_inventory(with_c)
    assert s.pool.holder("GPU-sim-c-0") == waiting.id
    assert s.pool_view().units_free == 3  # a's two, c's MIG GPU
    assert_consistent(s)


def test_reservations_pick_devices_from_the_new_inventory(make, clock):
    s = make("a: 2xH100-80GB")
    with pytest.raises(Unsatisfiable):
        s.reserve(group="g", shape=gpu(), count=3, start=clock.now + 3600,
                  end=clock.now + 7200, by="admin")  # fmt: skip
    s.refresh_inventory(parse_spec("a: 2xH100-80GB; b: 1xH100-80GB"))
    r = s.reserve(group="g", shape=gpu(), count=3, start=clock.now + 3600,
                  end=clock.now + 7200, by="admin")  # fmt: skip
    assert {d["node"] for d in r.devices} == {"a", "b"}


def test_a_failed_refresh_reloads_on_the_new_inventory(make, monkeypatch):
    s = make("a: 2xH100-80GB")
    ask(s, "ann", gpu(2))
    waiting = ask(s, "ann", gpu(2))

    sync = s.store.sync_devices

    def fails_once(*args, **kwargs):
        monkeypatch.setattr(s.store, "sync_devices", sync)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(s.store, "sync_devices", fails_once)
    with pytest.raises(RuntimeError, match="went away"):
        s.refresh_inventory(parse_spec("a: 2xH100-80GB; b: 4xH100-80GB"))
    # the picture was rebuilt from the database (load), on the inventory it was given
    assert [nv.node.name for nv in s.pool_view().nodes] == ["a", "b"]
    assert s.live[waiting.id].node == "b"
    assert_consistent(s)


def test_a_restart_takes_the_holds_outside_again(make, engine, clock):
    s = make("n: 2xH100-80GB")
    s.refresh_inventory(list(s.inventory), {"GPU-sim-n-0": OUTSIDE})
    again = Scheduler(engine, list(s.inventory), clock=clock, held_outside=s.held_outside)
    assert uuids(ask(again, "ann", gpu())) == ["GPU-sim-n-1"]
    assert ask(again, "ben", gpu()).status == "queued"


def test_compare_names_each_kind_of_change():
    old = parse_spec("a: 2xH100-80GB; b: 1xL4-24GB; c: 1xL4-24GB")
    new = drained(parse_spec("a: 2xH100-80GB; b: 2xL4-24GB; d: 1xL4-24GB"), "a", "d")
    change = compare(old, {"x": "j1", "y": "j2"}, new, {"y": "j3", "z": "j1"})
    assert change == InventoryChange(
        added=("d",), removed=("c",), unusable=("a", "d"), gpus_changed=("b",),
        held_outside=("y", "z"), freed_outside=("x",),
    )  # fmt: skip
    assert change.devices_changed
    back = compare(new, {}, old, {})
    assert back.usable == ("a",) and back.unusable == ()


# -- the read model, the API's body and the CLI's table ------------------------------------


def test_the_pool_api_and_cli_show_unusable_nodes_and_outside_holders(make):
    s = make("n: 2xH100-80GB, 1xA100-40GB[mig=2x1g.5gb]; m: 1xL4-24GB[shared=2]")
    lease = ask(s, "ann", gpu())
    s.refresh_inventory(drained(s.inventory, "m"), {"GPU-sim-n-1": OUTSIDE})
    nodes = [node_item(nv, lambda lid, uuid: None if lid is None else anyone(lid)) for nv in
             s.pool_view().nodes]  # fmt: skip
    n, m = nodes
    assert (n["usable"], n["state"], m["usable"], m["state"]) == (
        True, "", False, "IDLE+DRAIN: disk",
    )  # fmt: skip
    g0, g1, g2 = n["gpus"]
    assert (g0["state"], g0["held_outside"], g0["holders"]) == ("busy", None, [anyone(lease.id)])
    assert (g1["state"], g1["held_outside"], g1["holders"]) == ("busy", OUTSIDE, [])
    assert g2["held_outside"] is None
    assert [x["held_outside"] for x in g2["mig_instances"]] == [None, None]
    # as the API document says (PoolNode and all within it)
    spec = yaml.safe_load(OPENAPI.read_text())
    schema = {"$ref": "#/components/schemas/PoolNode", "components": spec["components"]}
    for node in nodes:
        errors = list(Draft202012Validator(schema).iter_errors(node))
        assert not errors, errors[0]
    view = s.pool_view()
    text = pool_table({"nodes": nodes, "units_free": float(view.units_free),
                       "units_total": float(view.units_total), "queue_length": 0})  # fmt: skip
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("n ")}
    assert "busy" in rows["1"] and OUTSIDE in rows["1"]
    assert "node m takes no new leases (IDLE+DRAIN: disk)" in text


# -- the service: reading in a thread, applying on the loop, keeping the last picture ---------


class Source(InventorySource):
    """An inventory source whose answers the test sets (``picture``), or that fails
    (``error``); every instance shares them, as the service makes its own."""

    picture: tuple[list[Node], dict[str, str]] = ([], {})
    error: Exception | None = None

    def nodes(self) -> list[Node]:
        if Source.error is not None:
            raise Source.error
        return list(Source.picture[0])

    def held_outside(self) -> dict[str, str]:
        return dict(Source.picture[1])


@pytest.fixture
def source():
    yield Source
    Source.picture, Source.error = ([], {}), None


def test_the_refresher_applies_each_read_and_keeps_the_last_picture_when_one_fails(
    make, source, caplog
):
    s = make("a: 2xH100-80GB; b: 1xH100-80GB")
    nodes = list(s.inventory)
    source.picture = (drained(nodes, "b"), {"GPU-sim-a-0": OUTSIDE})
    r = InventoryRefresher(Source(), s, interval=30)
    with caplog.at_level(logging.INFO, logger="gpuhub"):
        change = asyncio.run(r.refresh())
        assert change is not None
        assert (change.unusable, change.held_outside) == (("b",), ("GPU-sim-a-0",))
        assert asyncio.run(r.refresh()) is None  # the same picture: nothing, and no log
    said = [m for m in caplog.messages if m.startswith("inventory: ")]
    assert said == [
        "inventory: node b takes no new leases (IDLE+DRAIN: disk); its running leases stay",
        f"inventory: held outside gpuhub now, not granted: GPU-sim-a-0: {OUTSIDE}",
    ]
    caplog.clear()
    source.error = SlurmError(
        "`scontrol show node -o` failed (exit status 1): Unable to contact slurm controller"
    )
    with caplog.at_level(logging.INFO, logger="gpuhub"):
        assert asyncio.run(r.refresh()) is None
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and warning.name == "gpuhub.service"
    assert "reading the inventory (Source) failed, so the pool stays as read at" in warning.message
    assert "Unable to contact slurm controller" in warning.message
    # the last picture, never "no nodes"
    assert [(nv.node.name, nv.node.usable) for nv in s.pool_view().nodes] == [
        ("a", True), ("b", False),
    ]  # fmt: skip
    assert s.held_outside == {"GPU-sim-a-0": OUTSIDE}
    waiting = ask(s, "ann", gpu(2))
    assert waiting.status == "queued"
    source.error, source.picture = None, (nodes, {})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gpuhub"):
        change = asyncio.run(r.refresh())
    assert change is not None and change.usable == ("b",) and change.granted == (waiting.id,)
    assert "the inventory (Source) answers again" in caplog.messages


def test_the_service_reads_the_holds_at_start_and_refreshes_every_interval(source, tmp_path):
    assert GpuhubService().inventory_refresh_interval == 30
    with pytest.raises(TraitError, match="inventory_refresh_interval must be seconds >= 0"):
        GpuhubService(config=Config({"GpuhubService": {"inventory_refresh_interval": -1}}))
    source.picture = (parse_spec("n: 2xH100-80GB"), {"GPU-sim-n-1": OUTSIDE})
    app = GpuhubService(
        config=Config({"GpuhubService": {"inventory_class": Source,
                                         "inventory_refresh_interval": 5}})
    )  # fmt: skip
    app.initialize([f"--GpuhubService.db_url=sqlite:///{tmp_path}/x.sqlite"])
    try:
        assert app.scheduler.held_outside == {"GPU-sim-n-1": OUTSIDE}
        assert uuids(ask(app.scheduler, "ann", gpu())) == ["GPU-sim-n-0"]  # never n-1
        assert app.inventory_refresher.interval == 5
        assert app.inventory_refresher.source is app.inventory
    finally:
        app.scheduler.engine.dispose()


# -- a state machine: requests, releases, refreshes and restarts ---------------------------

SPEC = "a: 4xH100-80GB, 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]; b: 2xL4-24GB[shared=3], 2xA100-80GB"
SPEC_C = "; c: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]"
SHAPES = st.one_of(
    st.builds(WholeGpus, count=st.integers(1, 4), model=st.sampled_from([None, "H100", "A100"])),
    st.builds(MigSlice, kind=st.just("mig"), profile=st.sampled_from(["1g.10gb", "1g.5gb"])),
    st.builds(SharedGpu, kind=st.just("shared")),
)


def _device_ids(nodes: list[Node]) -> list[str]:
    return [d for n in nodes for g in n.gpus for d in (g.uuid, *(m.uuid for m in g.mig_instances))]


ALL_DEVICES = _device_ids(parse_spec(SPEC + SPEC_C))


class PoolFollowsMachine(RuleBasedStateMachine):
    """The pool under random requests, releases, refreshes (nodes drained and back, node c
    coming and going, devices held outside gpuhub) and restarts; checked after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="gpuhub-follow-")
        shutil.copyfile(self.template, f"{self.dir}/gpuhub.sqlite")
        self.engine = open_engine(f"sqlite:///{self.dir}/gpuhub.sqlite")
        self.nodes = parse_spec(SPEC)
        self.outside: dict[str, str] = {}
        self.s = Scheduler(self.engine, self.nodes, clock=self.clock)
        self.active_before: set[int] = set()

    template: str
    clock: object

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def active(self) -> set[int]:
        return {i for i, x in self.s.live.items() if x.status == "active"}

    def step(self) -> None:
        self.active_before = self.active()

    @rule(user=st.sampled_from(["ann", "ben", "cat"]), shape=SHAPES)
    def request(self, user, shape):
        self.step()
        feasible = self.s.pool.feasible(shape) is None
        try:
            lease = ask(self.s, user, shape)
        except Unsatisfiable:
            assert not feasible
            event("request refused")
            return
        event(f"request {lease.status}")

    @precondition(lambda self: self.s.live)
    @rule(pick=st.integers(0, 1000))
    def release(self, pick):
        self.step()
        ids = sorted(self.s.live)
        self.s.release(ids[pick % len(ids)])

    @rule(
        unusable=st.sets(st.sampled_from(["a", "b", "c"]), max_size=2),
        with_c=st.booleans(),
        held=st.sets(st.sampled_from(ALL_DEVICES), max_size=4),
        job=st.integers(1, 3),
    )
    def refresh(self, unusable, with_c, held, job):
        self.step()
        live_before = set(self.s.live)
        nodes = drained(parse_spec(SPEC + (SPEC_C if with_c else "")), *unusable)
        outside = {d: f"Slurm job {job} (outside gpuhub)" for d in held}
        change = self.s.refresh_inventory(nodes, outside)
        same = nodes == self.nodes and outside == self.outside
        assert (change is None) == same
        self.nodes, self.outside = nodes, outside
        assert set(self.s.live) == live_before  # a refresh ends nothing (no quotas here)
        assert self.active_before <= self.active()
        if change is not None:
            assert set(change.granted) == self.active() - self.active_before
            event(f"refresh granted {min(len(change.granted), 2)}+")

    @rule()
    def restart(self):
        self.step()
        self.s = Scheduler(self.engine, self.nodes, clock=self.clock, held_outside=self.outside)

    @invariant()
    def consistent(self) -> None:
        assert_consistent(self.s)
        usable = {n.name for n in self.nodes if n.usable}
        blocked = set(self.outside)
        for lid in self.active() - self.active_before:  # granted in this step
            lease = self.s.live[lid]
            assert lease.node in usable, (lid, lease.node)
            for d in lease.devices:
                assert not {d["uuid"], d.get("parent_uuid")} & blocked, (lid, d)
        # best effort, no quotas: nothing that waits fits now
        for lease in self.s.queue():
            assert self.s.pool.place(lease.shape) is None, lease
        assert self.s.pool_view().units_free == self.free_units()
        self.s.view.waiting_all(self.s.live.values())  # the explainer copes with any picture

    def free_units(self) -> Fraction:
        """Free GPU units from the inventory and the leases, not from the pool."""
        held: dict[str, set] = {}
        for lease in self.s.live.values():
            if lease.status == "active":
                for dev, slot in lease.slots:
                    held.setdefault(dev, set()).add(slot)
        free = Fraction(0)
        for node in self.nodes:
            if not node.usable:
                continue
            for g in node.gpus:
                if g.uuid in self.outside:
                    continue
                if g.mig_enabled:
                    taken = sum(
                        m.slices
                        for m in g.mig_instances
                        if m.uuid in held or m.uuid in self.outside
                    )
                    free += 1 - Fraction(taken, g.total_slices)
                else:
                    free += 1 - Fraction(len(held.get(g.uuid, ())), g.shares)
        return free


def test_pool_follows_inventory_state_machine(sqlite_template, clock):
    machine = type(
        "SqlitePoolFollowsMachine",
        (PoolFollowsMachine,),
        {"template": str(sqlite_template), "clock": clock},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(60),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
