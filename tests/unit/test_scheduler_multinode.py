"""Multi-node leases (``WholeGpus.nodes``): a job on N nodes with M GPUs each gets all
its nodes at once or waits for them as one queue entry, is charged N x M units, frees
every node when it ends, and follows the devices Slurm gives it on each node
(``Scheduler.rebind`` with node -> indices), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.errors import Unsatisfiable
from gpuhub.scheduler.shapes import WholeGpus
from gpuhub.terms import describe, shape_text
from pydantic import ValidationError

from tests.support.scheduler import ask, assert_consistent, gpu, uuids

SPEC = "a: 2xH100-80GB; b: 2xH100-80GB; c: 4xH100-80GB; d: 1xL4-24GB"


def nodes(n: int, count: int, model: str | None = None) -> WholeGpus:
    return WholeGpus(count=count, nodes=n, model=model)


def nodes_of(lease) -> list[str]:
    return [d["node"] for d in lease.devices]


def test_a_two_node_lease_takes_both_nodes_at_once_and_costs_all_its_gpus(make, engine, clock):
    s = make(SPEC)
    lease = ask(s, "alice", nodes(2, 2))
    assert lease.status == "active" and lease.units == 4
    assert lease.node == "a,b"  # the best fit: the two nodes with exactly two GPUs
    assert nodes_of(lease) == ["a", "a", "b", "b"]
    assert uuids(lease) == ["GPU-sim-a-0", "GPU-sim-a-1", "GPU-sim-b-0", "GPU-sim-b-1"]
    assert lease.to_dict(clock())["shape"] == {"kind": "gpu", "count": 2, "nodes": 2}
    assert_consistent(s)
    again = Scheduler(engine, s.inventory, clock=clock)  # a restart reads the same
    assert again.get(lease.id).node == "a,b" and again.get(lease.id).units == 4
    assert_consistent(again)
    s.release(lease.id)
    assert_consistent(s)
    assert ask(s, "bob", gpu(2)).node == "a"  # both nodes are free again


def test_it_waits_as_one_entry_until_enough_nodes_are_free(make):
    s = make(SPEC)
    blocker = ask(s, "bob", gpu(2))
    big = ask(s, "dave", gpu(4))
    small = ask(s, "carol", gpu(1, "H100"))
    assert (blocker.node, big.node, small.node) == ("a", "c", "b")
    waiting = ask(s, "alice", nodes(2, 2))
    assert waiting.status == "queued" and waiting.devices == [] and waiting.units == 4
    assert_consistent(s)
    s.release(small.id)  # b has two free now, a is still held: still one node short
    assert waiting.status == "queued"
    s.release(blocker.id)
    assert waiting.status == "active" and waiting.node == "a,b"
    assert_consistent(s)
    s.release(big.id)
    assert_consistent(s)


def test_what_no_pool_could_hold_is_refused_with_a_sentence(make):
    s = make(SPEC)
    with pytest.raises(
        Unsatisfiable, match="1 node of the pool has 4 whole GPUs, and this request spans 2"
    ):
        ask(s, "alice", nodes(2, 4))
    with pytest.raises(Unsatisfiable, match="spans 4"):
        ask(s, "alice", nodes(4, 2))
    with pytest.raises(Unsatisfiable, match="no node has 5 whole GPUs"):
        ask(s, "alice", nodes(2, 5))
    assert not s.live
    assert_consistent(s)


def test_one_node_is_the_shape_as_before():
    assert WholeGpus(count=2, nodes=1) == WholeGpus(count=2)
    assert WholeGpus(count=2, nodes=1).model_dump(exclude_none=True) == {"kind": "gpu", "count": 2}
    with pytest.raises(ValidationError):
        WholeGpus(count=2, nodes=17)
    with pytest.raises(ValidationError):
        WholeGpus(count=2, nodes=0)
    assert describe({"kind": "gpu", "count": 2, "nodes": 3}) == "3 nodes with 2 whole GPUs each"
    assert shape_text({"kind": "gpu", "count": 2, "nodes": 3}) == "3 nodes × 2x GPU"


def test_it_follows_the_devices_slurm_gave_on_each_node(make, engine, clock):
    s = make(SPEC)
    lease = ask(s, "alice", nodes(2, 1, "H100"))  # a-0 and b-0
    assert lease.node == "a,b"
    other = ask(s, "bob", gpu(1))  # a-1
    assert other.node == "a" and uuids(other) == ["GPU-sim-a-1"]
    s.rebind(lease.id, {"a": [1], "b": [1]})  # Slurm gave the job a-1 and b-1
    assert uuids(lease) == ["GPU-sim-a-1", "GPU-sim-b-1"] and nodes_of(lease) == ["a", "b"]
    assert uuids(other) == ["GPU-sim-a-0"]  # bob's lease took the GPU alice's left on a
    assert "node" not in other.devices[0]
    assert_consistent(s)
    again = Scheduler(engine, s.inventory, clock=clock)
    assert uuids(again.get(lease.id)) == ["GPU-sim-a-1", "GPU-sim-b-1"]
    assert_consistent(again)


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ({"a": [1]}, "is on a,b, not on a"),
        ({"a": [1], "c": [0]}, "is on a,b, not on a,c"),
        ({"a": [0, 1], "b": [0]}, "holds 1 device"),
        ([0], "is on a,b, not on a"),
    ],
)
def test_answers_that_do_not_fit_its_nodes_change_nothing(make, indices, message):
    s = make(SPEC)
    lease = ask(s, "alice", nodes(2, 1, "H100"))
    before = [dict(d) for d in lease.devices]
    with pytest.raises(ValueError, match=message):
        s.rebind(lease.id, indices)
    assert lease.devices == before
    assert_consistent(s)


def test_why_waiting_says_it_needs_its_nodes_at_once(make):
    s = make(SPEC)
    blocker = ask(s, "bob", gpu(2))  # a
    big = ask(s, "dave", gpu(4))  # c
    waiting = ask(s, "alice", nodes(2, 2, "H100"))
    why = s.view.waiting(waiting)
    assert why["message"] == (
        "2 of 8 H100 GPUs are free, but not 2 on each of 2 nodes at once "
        "(this request spans 2 nodes)"
    )
    s.release(blocker.id)
    assert s.view.waiting(waiting) is None
    s.release(big.id)
    assert_consistent(s)
