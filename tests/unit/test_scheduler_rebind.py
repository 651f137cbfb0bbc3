"""A lease moved onto the devices a cluster engine gave its work (``Scheduler.rebind``):
Slurm picks the GPU indices for ``--gres=gpu:N`` on the node gpuhub chose, and gpuhub
records them, on SQLite and PostgreSQL. Every test checks the database and the pool
agree (``assert_consistent``), and a restart reads the same picture back."""

from __future__ import annotations

import pytest
from gpuhub.scheduler.core import NotFound, Scheduler

from tests.support.scheduler import ask, assert_consistent, gpu, mig, shared, uuids

SPEC = "n: 4xH100-80GB; m: 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=2]"


def test_a_lease_moves_to_free_gpus_of_its_node(make, engine, clock):
    s = make(SPEC)
    lease = ask(s, "alice", gpu(2))
    assert uuids(lease) == ["GPU-sim-n-0", "GPU-sim-n-1"]
    s.rebind(lease.id, [3, 1])
    assert uuids(lease) == ["GPU-sim-n-1", "GPU-sim-n-3"]
    assert [d["index"] for d in lease.devices] == [1, 3]
    assert all(d["model"] == "H100-80GB" and d["slot"] == 0 for d in lease.devices)
    assert_consistent(s)
    # what was freed is granted again; a restart reads the same
    other = ask(s, "bob", gpu(2))
    assert sorted(uuids(other)) == ["GPU-sim-n-0", "GPU-sim-n-2"]
    again = Scheduler(engine, s.inventory, clock=clock)
    assert uuids(again.get(lease.id)) == ["GPU-sim-n-1", "GPU-sim-n-3"]
    assert_consistent(again)


def test_the_same_devices_change_nothing(make):
    s = make(SPEC)
    lease = ask(s, "alice", gpu(2))
    before = [dict(d) for d in lease.devices]
    assert s.rebind(lease.id, [1, 0]) is lease
    assert lease.devices == before
    assert_consistent(s)


def test_a_gpu_another_lease_holds_is_swapped(make):
    """The engine gave A the GPU gpuhub had granted B: B takes the one A leaves (its work
    got that one from the engine, read back in turn)."""
    s = make(SPEC)
    a = ask(s, "alice", gpu(1))
    b = ask(s, "bob", gpu(1))
    c = ask(s, "carol", gpu(1))
    assert [uuids(x) for x in (a, b, c)] == [["GPU-sim-n-0"], ["GPU-sim-n-1"], ["GPU-sim-n-2"]]
    s.rebind(a.id, [1])
    assert (uuids(a), uuids(b), uuids(c)) == (["GPU-sim-n-1"], ["GPU-sim-n-0"], ["GPU-sim-n-2"])
    assert_consistent(s)
    s.rebind(b.id, [3])  # then B's own answer: the free one
    assert (uuids(a), uuids(b)) == (["GPU-sim-n-1"], ["GPU-sim-n-3"])
    assert_consistent(s)
    s.release(a.id)
    s.release(b.id)
    assert_consistent(s)
    assert s.view.pool_view().units_free == 6 - 1  # all but the GPU C holds


@pytest.mark.parametrize(
    "indices, message",
    [([0], "holds 2 device"), ([0, 1, 2], "holds 2 device"), ([0, 9], "no GPU 9")],
)
def test_answers_that_do_not_fit_change_nothing(make, indices, message):
    s = make(SPEC)
    lease = ask(s, "alice", gpu(2))
    before = [dict(d) for d in lease.devices]
    with pytest.raises(ValueError, match=message):
        s.rebind(lease.id, indices)
    assert lease.devices == before
    assert_consistent(s)


def test_slices_seats_and_ended_leases_are_refused(make):
    s = make(SPEC)
    sliced = ask(s, "alice", mig("1g.5gb"))
    seat = ask(s, "bob", shared())
    with pytest.raises(ValueError, match="no GPU 0 granted whole"):
        s.rebind(sliced.id, [0])  # m's GPU 0 is in MIG mode
    with pytest.raises(ValueError, match="no GPU 1 granted whole"):
        s.rebind(seat.id, [1])  # m's GPU 1 is shared
    whole = ask(s, "carol", gpu(1))
    s.release(whole.id)
    with pytest.raises(NotFound, match="not active"):
        s.rebind(whole.id, [1])
    assert_consistent(s)
