"""gpuhub's scheduler and job manager over the real local cluster (``scripts/slurm``), in
the test process: ``SlurmExecutor`` submits, a fake clock makes GPU-hours exact, Slurm's
jobs take real time. Used by tests/slurm/test_jobs_through_gpuhub.py and test_faults.py.

Slurm jobs are named ``gpuhub-test-<run>-<id>``, so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gpuhub.inventory.slurm import SlurmInventory
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.models import JobRequest
from gpuhub.jobs.record import Job
from gpuhub.jobs.slurm import SlurmExecutor
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine

from tests.support.clock import FakeClock
from tests.support.slurm import PREFIX, submitted, wait_for

#: One L4 of gpu3, the default profile of a site.
L4_PROFILES = [
    {"name": "l4", "default": True, "shape": {"kind": "gpu", "count": 1, "model": "L4*"}}
]
#: A job script that says which devices it sees, then waits for the file ``$HOME/go``.
WAIT_FOR_FLAG = """
import os, pathlib, time
flag = pathlib.Path(os.environ["HOME"]) / "go"
print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
while not flag.exists():
    time.sleep(0.1)
print("flag seen", flush=True)
"""


class Site:
    """gpuhub's scheduler and job manager over the local cluster (its nodes in ``nodes``,
    all when None), one database, one clock; Slurm commands time out after
    ``command_timeout`` seconds (a client retries an absent controller for about 18 s)."""

    def __init__(
        self,
        cluster: Path,
        db_url: str,
        homes: Path,
        clock: FakeClock,
        *,
        profiles: list[dict[str, Any]] = L4_PROFILES,
        nodes: Iterable[str] | None = None,
        command_timeout: float = 10,
        executor: dict[str, Any] | None = None,
    ) -> None:
        self.cluster, self.db_url, self.homes, self.clock = cluster, db_url, homes, clock
        self.profiles, self.command_timeout = profiles, command_timeout
        self.executor_options = dict(executor or {})  # more SlurmExecutor settings
        self.prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}-"
        found = SlurmInventory(slurm_conf=str(cluster), command_timeout=10).nodes()
        wanted = None if nodes is None else set(nodes)
        self.nodes = [n for n in found if wanted is None or n.name in wanted]
        self.manager = self.restart()

    def restart(self) -> JobManager:
        """A new scheduler and manager over the same database: a restarted service."""
        executor = SlurmExecutor(
            home_dir_template=str(self.homes / "{username}"), job_name_prefix=self.prefix,
            slurm_conf=str(self.cluster), command_timeout=self.command_timeout,
            **self.executor_options,
        )  # fmt: skip
        scheduler = Scheduler(open_engine(self.db_url), self.nodes, clock=self.clock)
        self.manager = JobManager(
            scheduler=scheduler, executor=executor, profiles=self.profiles, clock=self.clock,
            stop_grace=5.0,
        )  # fmt: skip
        self.manager.adopt()
        return self.manager

    def submit(self, source: str, user: str = "alice", **fields: Any) -> Job:
        """Submit the script ``source`` (``fields``: more of the request, e.g. ``nodes``)."""
        req = JobRequest.model_validate({"path": "probe.py", "script": source, **fields})
        job, _ = asyncio.run(self.manager.submit(req, user=user, groups=[]))
        return job

    def until(
        self, job_id: int, what: str, done: Callable[[Job], bool], timeout: float = 30
    ) -> Job:
        """Tick until ``done(job)``."""

        def probe() -> Job | None:
            asyncio.run(self.manager.tick())
            job = self.manager.job(job_id)
            return job if done(job) else None

        return wait_for(what, probe, timeout)

    def slurm_jobs(self) -> list[str]:
        """Ids of the Slurm jobs of this site (ended ones too, while Slurm knows them)."""
        return submitted(self.prefix)

    def stop_all(self) -> None:
        for job in self.manager.db.live_jobs():
            if job.state:
                self.manager.executor.stop(self.manager.lifecycle.spec(job), job.state, 1.0)
        self.manager.scheduler.engine.dispose()
