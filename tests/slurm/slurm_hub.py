"""A real JupyterHub whose servers are Slurm jobs on the local cluster (``scripts/slurm``):
``GPUSlurmSpawner``, the port handler, and the gpuhub service's pool read from Slurm. Used
by tests/slurm/test_spawner_slurm.py and the browser test of the GPU panel on Slurm.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from tests.support.hub import Hub
from tests.support.slurm import PREFIX, local_cluster, slurm, wait_for

#: The hub's configuration on top of the default one (``{conf}``: the cluster's slurm.conf).
CONFIG = """
from gpuhub.spawners.slurm_port import slurm_port_handlers

c.JupyterHub.spawner_class = "gpu-slurm"
c.JupyterHub.extra_handlers = slurm_port_handlers
c.GPUSlurmSpawner.slurm_conf = {conf!r}
c.GPUSlurmSpawner.home_dir_template = {homes!r}
c.GPUSlurmSpawner.job_name_prefix = {prefix!r}
c.GPUSlurmSpawner.status_interval = 0.3
c.GPUSlurmSpawner.max_runtime_s = 600
c.Spawner.ip = "127.0.0.1"
c.Spawner.poll_interval = 1
c.Spawner.http_timeout = 60
c.GpuhubService.inventory_class = "slurm"
c.GpuhubService.job_executor_class = "gpuhub.jobs.slurm.SlurmExecutor"
c.SlurmExecutor.slurm_conf = {conf!r}
c.SlurmExecutor.home_dir_template = {homes!r}
c.SlurmExecutor.job_name_prefix = {prefix!r}
c.SlurmInventory.slurm_conf = {conf!r}
c.SlurmInventory.simulated = True
c.GPUSpawnerMixin.profiles = [
    {{"name": "h100", "display_name": "1 H100", "default": True,
      "shape": {{"kind": "gpu", "count": 1, "model": "H100"}}, "cpu_limit": 1, "mem_limit": "256M"}},
    {{"name": "cpu", "display_name": "No GPU", "shape": None, "cpu_limit": 1}},
]
"""


@contextmanager
def slurm_hub(work: Path, extra_config: str = "") -> Iterator[SimpleNamespace]:
    """The cluster and a started hub on it (servers outlive a hub restart:
    ``GPUHUB_KEEP_SERVERS=1``): ``hub``, ``admin`` (a gpuhub API client as test-admin),
    ``prefix`` (of this hub's job names: ``gpuhub-test-<run>-``) and ``homes``. At the end
    the servers are stopped, their jobs waited for, and the hub stopped."""
    with local_cluster() as conf:
        prefix = f"{PREFIX}-{uuid.uuid4().hex[:6]}-"
        config = CONFIG.format(conf=str(conf), homes=str(work / "homes" / "{username}"),
                               prefix=prefix)  # fmt: skip
        hub = Hub(
            work / "hub",
            env={"GPUHUB_POLL_INTERVAL": "0.2", "GPUHUB_KEEP_SERVERS": "1",
                 "GPUHUB_CULL_IDLE_TIMEOUT": "0"},
            extra_config=config + extra_config,
        )  # fmt: skip
        admin = None
        try:
            hub.start()
            admin = hub.client(hub.admin_token)
            yield SimpleNamespace(hub=hub, admin=admin, prefix=prefix, homes=work / "homes")
        finally:
            if admin is not None:
                admin.close()
            if hub.proc is not None:
                r = hub.hub_api("GET", "users")
                for user in r.json() if r.status_code == 200 else ():
                    if user["servers"]:
                        hub.hub_api("DELETE", f"users/{quote(user['name'], safe='')}/server")
                wait_for("the test jobs' end", lambda: not jobs_named(prefix), 30)
            hub.stop()


def jobs_named(prefix: str) -> list[str]:
    """Ids of the live Slurm jobs whose name starts with ``prefix``."""
    out = slurm("squeue", "-h", "-o", "%i %j")
    return [i for i, _, n in (x.partition(" ") for x in out.splitlines()) if n.startswith(prefix)]
