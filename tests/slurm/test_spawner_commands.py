"""``GPUSlurmSpawner``'s own Slurm commands against the real local cluster, without a hub:
``poll`` of a running, a cancelled and an unknown job, ``poll`` counting a silent
controller as running up to ``poll_error_limit_s`` (a real ``slurmctld`` stopped, the
spawner's clock injected), ``stop`` (``scancel``, then waiting for the end), and the
node's address. The whole spawn through a hub is in test_spawner_slurm.py and the faults
(a failed node, a controller restarting mid-spawn) in test_faults.py.

Jobs are named ``gpuhub-test-...``, so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from gpuhub.spawners.slurm import GPUSlurmSpawner
from jupyterhub.objects import Hub

from tests.support.slurm import PREFIX, controller_away, slurm, wait_for

pytestmark = pytest.mark.timeout(120)


def sleeper(node: str = "gpu3") -> str:
    """A Slurm job that sleeps on ``node``, once it runs; its id."""
    out = slurm(
        "sbatch", "--parsable", f"--job-name={PREFIX}-{uuid.uuid4().hex[:6]}",
        f"--nodelist={node}", "--output=/dev/null", "--wrap=sleep 300",
    )  # fmt: skip
    job = out.strip().split(";")[0]
    wait_for(
        "the job running", lambda: slurm("squeue", "-h", "-j", job, "-o", "%T").strip() == "RUNNING"
    )
    return job


def spawner(cluster: Path, tmp_path: Path, **kw) -> GPUSlurmSpawner:
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", escaped_name="alice")
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    return GPUSlurmSpawner(
        user=user, hub=hub, home_dir_template=str(tmp_path / "{username}"),
        slurm_conf=str(cluster), status_interval=0.2, **kw,
    )  # fmt: skip


def test_poll_reads_the_job(cluster, tmp_path):
    s = spawner(cluster, tmp_path)
    assert asyncio.run(s.poll()) == 0  # no job: not running
    s.slurm_job = sleeper()
    assert asyncio.run(s.poll()) is None
    slurm("scancel", s.slurm_job)
    wait_for("the job ended", lambda: asyncio.run(s.poll()) == 0)
    assert s.slurm_job is None  # cancelled: stopped
    s.slurm_job = "9999999"
    assert asyncio.run(s.poll()) == 1 and s.slurm_job is None  # unknown to Slurm: stopped


def test_poll_counts_a_silent_slurm_as_running_up_to_a_bound(cluster, tmp_path, caplog):
    s = spawner(cluster, tmp_path, poll_error_limit_s=300, command_timeout=2)
    now = [1000.0]
    s.clock = lambda: now[0]
    job = s.slurm_job = sleeper()
    with controller_away():
        assert asyncio.run(s.poll()) is None
        now[0] += 299
        assert asyncio.run(s.poll()) is None
        assert "counting the server as running" in caplog.text
        now[0] += 2
        assert asyncio.run(s.poll()) == 1 and s.slurm_job is None
        assert "counting the server as stopped" in caplog.text
    # the controller kept the job; the spawner's scancel could not reach it
    assert slurm("squeue", "-h", "-j", job, "-o", "%T").strip() == "RUNNING"
    slurm("scancel", job)


def test_stop_cancels_and_waits_for_the_end(cluster, tmp_path):
    s = spawner(cluster, tmp_path)
    s.slurm_job, s.slurm_node = sleeper(), "gpu3"
    job = s.slurm_job
    env_file = s.server_file(".env")
    env_file.parent.mkdir(parents=True)
    env_file.write_text("export X=1\n")
    asyncio.run(s.stop())
    assert s.slurm_job is None and not env_file.exists()
    assert slurm("squeue", "-h", "-j", job, "-o", "%T").strip() in ("", "CANCELLED")


def test_the_nodes_address_is_slurms(cluster, tmp_path):
    assert asyncio.run(spawner(cluster, tmp_path).node_address("gpu2")) == "127.0.0.1"
