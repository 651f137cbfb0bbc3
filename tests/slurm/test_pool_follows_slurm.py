"""The pool follows the real local Slurm cluster (``scripts/slurm``): the service's
refresher reads ``scontrol`` in a worker thread and the scheduler applies the picture, so a
drained node takes no new leases until it is resumed, and a GPU that a Slurm job outside
gpuhub holds is shown with that job and never granted until the job ends.

Each test's pool is node gpu2 alone (two ``gpu:h100``), read through the real Slurm
inventory, so that work elsewhere on the shared cluster does not move its numbers. The
module's fixture cancels the tests' jobs and resumes the nodes they drained, whatever
happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpuhub.inventory import Node
from gpuhub.inventory.slurm import SlurmInventory
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.service.inventory_refresh import InventoryRefresher

from tests.support.scheduler import ask, assert_consistent, gpu, uuids
from tests.support.slurm import PREFIX, slurm, wait_for

pytestmark = pytest.mark.timeout(60)

NODE = "gpu2"


class OneNode(SlurmInventory):
    """The Slurm inventory, its nodes narrowed to :data:`NODE` (holds elsewhere are ignored
    by the pool anyway: it does not know those GPUs)."""

    def nodes(self) -> list[Node]:
        return [n for n in super().nodes() if n.name == NODE]


@pytest.fixture
def refresher(cluster: Path, tmp_path: Path) -> Iterator[InventoryRefresher]:
    inventory = OneNode(slurm_conf=str(cluster), command_timeout=10)
    engine = open_engine(f"sqlite:///{tmp_path / 'gpuhub.sqlite'}")
    nodes, held = inventory.nodes(), inventory.held_outside()
    scheduler = Scheduler(engine, nodes, held_outside=held)
    yield InventoryRefresher(inventory, scheduler, interval=30)
    engine.dispose()


def refresh(r: InventoryRefresher):
    """One refresh as the service's periodic callback runs it (read in a thread, apply)."""
    return asyncio.run(r.refresh())


def node_view(s: Scheduler):
    (nv,) = s.pool_view().nodes
    return nv


def test_a_drained_node_takes_no_leases_until_it_is_resumed(refresher):
    s = refresher.scheduler
    assert node_view(s).node.usable
    slurm("scontrol", "update", f"nodename={NODE}", "state=drain", f"reason={PREFIX}-follow")
    try:
        change = refresh(refresher)
        assert change is not None and change.unusable == (NODE,)
        nv = node_view(s)
        assert not nv.node.usable and f"DRAIN: {PREFIX}-follow" in nv.node.state
        assert s.pool_view().units_free == 0
        waiting = ask(s, "ann", gpu(1))
        assert waiting.status == "queued"  # it waits for the node: not refused
        assert refresh(refresher) is None  # nothing changed: nothing done, nothing logged
    finally:
        slurm("scontrol", "update", f"nodename={NODE}", "state=resume")
    changes: list = []

    def resumed() -> bool:
        changes.append(refresh(refresher))
        return node_view(s).node.usable

    wait_for("gpu2 usable again in the pool", resumed, 15)
    assert [c.usable for c in changes if c and c.usable] == [(NODE,)]  # logged once
    assert (s.live[waiting.id].status, s.live[waiting.id].node) == ("active", NODE)
    assert waiting.id in changes[-1].granted
    assert_consistent(s)


def test_a_job_outside_gpuhub_holds_its_gpu_until_it_ends(refresher):
    s = refresher.scheduler
    job = slurm(
        "sbatch", "--parsable", "-o", "/dev/null", f"--nodelist={NODE}", "--gres=gpu:h100:1",
        "-J", f"{PREFIX}-outside", "--wrap", "sleep 60",
    ).strip().split(";")[0]  # fmt: skip
    holder = f"Slurm job {job} (outside gpuhub)"
    try:
        wait_for(
            "the job's GPU held outside gpuhub in the pool",
            lambda: (refresh(refresher), holder in s.held_outside.values())[1],
            15,
        )
        (held,) = [g for g in node_view(s).gpus if g.held_outside]
        assert (held.state, held.held_outside) == ("busy", holder)
        assert s.pool_view().units_free == 1
        whole_node = ask(s, "ann", gpu(2))
        assert whole_node.status == "queued"  # both of gpu2's GPUs: one is the job's
        one = ask(s, "ben", gpu(1))
        assert one.status == "active" and held.gpu.uuid not in uuids(one)
        s.release(one.id)
    finally:
        slurm("scancel", job)
    wait_for(
        "the GPU given back in the pool",
        lambda: (refresh(refresher), holder not in s.held_outside.values())[1],
        15,
    )
    assert s.live[whole_node.id].status == "active"  # granted by the refresh that saw it end
    assert sorted(uuids(s.live[whole_node.id])) == [f"GPU-slurm-{NODE}-0", f"GPU-slurm-{NODE}-1"]
    assert_consistent(s)
