"""Job bodies as clients send them (a notebook with a parameters cell, or a script), and
:class:`LocalJobs`: a job manager with the real local executor over a test database."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nbformat
from gpuhub.inventory.simulated import parse_spec
from gpuhub.jobs.local import LocalProcessExecutor
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.models import JobRequest
from gpuhub.jobs.record import Job
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine

from tests.support.clock import FakeClock

#: A script that waits for a preemption notice, prints the notice file and ends (exit 0).
NOTICED = """
import os, pathlib, signal, sys, time
def noticed(signum, frame):
    print("notice:", pathlib.Path(os.environ["GPUHUB_PREEMPT_FILE"]).read_text(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, noticed)
print("attempt", os.environ["GPUHUB_ATTEMPT"], "ready", flush=True)
time.sleep(300)
"""
#: A preemption notice as the lifecycle hands it to an executor's ``notify``.
NOTICE = {
    "reason": "preempted", "notice_at": "2026-12-01T10:00:00+00:00",
    "deadline": "2026-12-01T10:02:00+00:00", "grace_s": 120.0, "attempt": 1,
}  # fmt: skip


def notebook(*sources: str, parameters: str | None = None) -> dict:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def script(source: str, path: str = "job.py", **kw) -> dict:
    return {"path": path, "script": source, **kw}


class LocalJobs:
    """A scheduler (2 simulated GPUs on node ``n``) and a job manager with the local
    executor over one database and one fake clock; ``scheduler_kw`` for the scheduler
    (``spot=SpotPolicy(...)``)."""

    def __init__(
        self, url: str, home_root: Path, clock: FakeClock, profiles: list[dict], **scheduler_kw: Any
    ) -> None:
        self.url, self.home_root, self.clock = url, home_root, clock
        self.profiles, self.scheduler_kw = profiles, scheduler_kw
        self.manager = self.new_manager()

    def new_manager(self, executor_class: type = LocalProcessExecutor) -> JobManager:
        """A fresh scheduler and manager over the same database (a service restart)."""
        engine = open_engine(self.url)
        scheduler = Scheduler(
            engine, parse_spec("n: 2xH100-80GB"), clock=self.clock, **self.scheduler_kw
        )
        executor = executor_class(home_dir_template=str(self.home_root / "{username}"))
        m = JobManager(
            scheduler=scheduler, executor=executor, profiles=self.profiles, clock=self.clock,
            stop_grace=2.0,
        )  # fmt: skip
        m.adopt()
        return m

    def restart(self) -> None:
        """The service goes away (its jobs go on) and a new one starts."""
        self.manager.scheduler.engine.dispose()
        self.manager = self.new_manager()

    def home(self, user: str = "alice") -> Path:
        path = self.home_root / user
        path.mkdir(parents=True, exist_ok=True)
        return path

    def submit(self, body: dict, user: str = "alice", groups=(), *, start=True, **kw) -> Job:
        """Submit as the service does (a job granted its GPUs at once is started before
        the answer); ``start=False``: only the intake's part, as a crash right after it
        would leave the job."""
        req = JobRequest.model_validate(body)
        submit = self.manager.submit if start else self.manager.intake.submit
        job, _ = asyncio.run(submit(req, user=user, groups=list(groups), **kw))
        return job

    def tick(self) -> None:
        asyncio.run(self.manager.tick())

    def wait(self, job_id: int, *statuses: str, timeout: float = 60) -> Job:
        """Tick until the job reaches one of ``statuses`` (the processes take real time)."""
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            job = self.manager.job(job_id)
            if job.status in statuses:
                return job
            assert time.monotonic() < deadline, f"job {job_id} is {job.status}: {job}"
            time.sleep(0.05)

    def lease(self, job: Job):
        return self.manager.scheduler.get(job.lease_id)

    def stop_all(self) -> None:
        """Stop every live job's process and close the database (the end of a test)."""
        for job in self.manager.db.live_jobs():
            if job.state:
                self.manager.executor.stop(self.manager.lifecycle.spec(job), job.state, 1.0)
        self.manager.scheduler.engine.dispose()
