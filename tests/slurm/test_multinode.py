"""A training job on two nodes through gpuhub on the real local cluster: one lease for
both nodes (granted at once, charged 2 x 2 GPUs), ``sbatch --nodes=2``, then ``srun`` and
``torchrun`` on each node with the rendezvous from Slurm's environment, and a real
``torch.distributed`` all-reduce (gloo, on CPU) across the four processes. Slurm's device
indices on each node are read back onto the lease; the end is booked once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from gpuhub.jobs.errors import JobInvalid
from gpuhub.scheduler.errors import Unsatisfiable

from tests.slurm.slurm_site import Site
from tests.support.torch_env import python_with_torch

pytestmark = pytest.mark.timeout(600)  # the first run on a machine installs PyTorch

PROFILES = [
    {
        "name": "h100", "default": True, "gpu_counts": [1, 2], "max_nodes": 2,
        "shape": {"kind": "gpu", "count": 1, "model": "H100"},
    }
]  # fmt: skip
TRAIN = """
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
total = torch.tensor([float(rank)])
dist.all_reduce(total)
node, gpus = os.environ["SLURMD_NODENAME"], os.environ.get("CUDA_VISIBLE_DEVICES")
print(f"rank {rank} of {world} on {node}: sum {total.item():.0f} gpus {gpus};", flush=True)
dist.destroy_process_group()
"""


@pytest.fixture
def site(cluster, db_url, tmp_path, clock) -> Iterator[Site]:
    python = python_with_torch(tmp_path)
    s = Site(
        cluster, db_url, tmp_path / "homes", clock, profiles=PROFILES, nodes=["gpu1", "gpu2"],
        executor={"python": str(python)},
    )  # fmt: skip
    yield s
    s.stop_all()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_two_node_job_all_reduces_across_both_nodes(site):
    job = site.submit(TRAIN, gpus=2, nodes=2)
    lease = site.manager.scheduler.get(job.lease_id)
    assert (lease.status, lease.node, lease.units) == ("active", "gpu1,gpu2", 4)
    assert job.shape == {"kind": "gpu", "count": 2, "model": "H100", "nodes": 2}
    site.clock.advance(3600)
    job = site.until(job.id, "the job's end", lambda j: j.ended, timeout=300)
    log = (site.homes / "alice" / site.manager.lifecycle.spec(job).log_path).read_text()
    assert job.status == "succeeded", (job, log)
    # the four processes print at once, so their lines may run into each other in the log
    ranks = re.findall(r"rank (\d) of 4 on (gpu\d): sum (\d+) gpus ([\d,]+);", log)
    assert sorted(r[0] for r in ranks) == ["0", "1", "2", "3"], log
    assert {r[1] for r in ranks} == {"gpu1", "gpu2"} and {r[2] for r in ranks} == {"6"}
    assert site.slurm_jobs() == [job.state["slurm_job"]]
    placed = job.state["placed"]  # Slurm's indices on each node, read while it ran
    assert sorted(placed) == ["gpu1", "gpu2"] and all(len(i) == 2 for i in placed.values())
    assert {(n, ",".join(map(str, i))) for n, i in placed.items()} == {(r[1], r[3]) for r in ranks}
    lease = site.manager.scheduler.get(job.lease_id)
    assert lease.status == "released" and job.gpu_hours == pytest.approx(4.0)
    assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(4.0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shapes_the_nodes_cannot_hold_are_refused_and_nothing_is_submitted(site):
    with pytest.raises(JobInvalid, match="lets a job span at most 2 nodes") as refused:
        site.submit(TRAIN, gpus=1, nodes=3)
    assert refused.value.field == "nodes"
    with pytest.raises(Unsatisfiable, match="1 node of the pool has 4 whole H100 GPUs"):
        site.submit(TRAIN, shape={"kind": "gpu", "count": 4, "model": "H100", "nodes": 2})
    assert site.manager.db.jobs() == [] and site.manager.scheduler.leases() == []
    assert site.slurm_jobs() == []
