"""The Slurm inventory against the real local cluster (``scripts/slurm``): its nodes and
GPUs, a drained node, and a GPU held by a job submitted outside gpuhub.

The module's fixture starts the cluster unless it runs already (then it is left running)
and cancels the tests' jobs and resumes the nodes they drained, whatever happens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gpuhub.inventory.slurm import SlurmInventory

from tests.support.slurm import PREFIX, slurm, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def inventory(cluster: Path) -> SlurmInventory:
    return SlurmInventory(slurm_conf=str(cluster), command_timeout=10)


def by_name(inventory: SlurmInventory) -> dict:
    return {n.name: n for n in inventory.nodes()}


def sbatch(*args: str) -> str:
    """Submit a job (its name starts with PREFIX) and return its id."""
    return slurm("sbatch", "--parsable", "-o", "/dev/null", *args).strip().split(";")[0]


def test_nodes_gpus_and_models(inventory):
    nodes = by_name(inventory)
    assert sorted(nodes) == ["gpu1", "gpu2", "gpu3"]
    assert [(g.index, g.model) for g in nodes["gpu1"].gpus] == [(i, "H100-80GB") for i in range(4)]
    assert [g.model for g in nodes["gpu2"].gpus] == ["H100-80GB"] * 2
    assert [g.model for g in nodes["gpu3"].gpus] == ["L4-24GB"] * 2
    assert all(n.usable for n in nodes.values()), {n.name: n.state for n in nodes.values()}
    assert nodes["gpu1"].gpus[0].memory_mb == 80 * 1024


def test_drained_node_is_unusable_until_resumed(inventory):
    slurm("scontrol", "update", "nodename=gpu2", "state=drain", f"reason={PREFIX}-drain")
    try:
        gpu2 = by_name(inventory)["gpu2"]
        assert not gpu2.usable
        assert "DRAIN" in gpu2.state and f"{PREFIX}-drain" in gpu2.state
        assert by_name(inventory)["gpu1"].usable
    finally:
        slurm("scontrol", "update", "nodename=gpu2", "state=resume")
    wait_for("gpu2 usable again", lambda: by_name(inventory)["gpu2"].usable, 15)


def test_job_outside_gpuhub_holds_a_gpu(inventory):
    outside = sbatch("--gres=gpu:h100:1", "-J", f"{PREFIX}-outside", "--wrap", "sleep 30")
    own = sbatch(
        "--gres=gpu:l4:1", "-J", f"{PREFIX}-own", "--comment=gpuhub:lease=0", "--wrap", "sleep 30"
    )
    try:
        wait_for(
            "both jobs running",
            lambda: (
                slurm("squeue", "-h", "-t", "R", "-j", f"{outside},{own}", "-o", "%i").split()
                == sorted([outside, own], key=int)
            ),
            15,
        )
        holds = inventory.outside_holds()
        mine = [h for node in holds.values() for h in node if h.job_id == outside]
        assert len(mine) == 1, holds
        [hold] = mine
        assert hold.node in ("gpu1", "gpu2")
        assert len(hold.indices) == 1
        assert hold.holder == f"Slurm job {outside} (outside gpuhub)"
        gpu = {g.uuid: g for n in inventory.nodes() for g in n.gpus}[hold.gpu_uuids[0]]
        assert gpu.model == "H100-80GB" and gpu.index == hold.indices[0]
        assert all(h.job_id != own for node in holds.values() for h in node)  # gpuhub's own
    finally:
        slurm("scancel", outside, own)
    wait_for(
        "the GPU free again",
        lambda: all(h.job_id != outside for n in inventory.outside_holds().values() for h in n),
        15,
    )


def test_the_configured_slurm_conf_and_scontrol_beat_the_environment(cluster, monkeypatch):
    """The default runner: ``slurm_conf`` and ``scontrol`` as configured, whatever
    ``SLURM_CONF`` the service's environment has (here one that does not exist)."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.parent / "elsewhere.conf"))
    inv = SlurmInventory(
        slurm_conf=str(cluster), scontrol=shutil.which("scontrol"), command_timeout=10
    )
    assert sorted(n.name for n in inv.nodes()) == ["gpu1", "gpu2", "gpu3"]


def test_partition_keeps_its_nodes_only(cluster):
    """``partition``: the nodes of that partition (the local cluster's ``gpu`` has all)."""
    conf = str(cluster)
    assert len(SlurmInventory(slurm_conf=conf, partition="gpu").nodes()) == 3
    assert SlurmInventory(slurm_conf=conf, partition="not-here").nodes() == []
