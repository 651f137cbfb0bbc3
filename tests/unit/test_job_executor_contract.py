"""The job executor contract, from the executor's side.

:class:`EngineExecutor` below hands jobs to a cluster engine as a Slurm executor would
(``sbatch`` / ``squeue`` / ``scancel``), written only from the public API: the hooks of
:class:`~gpuhub.jobs.executor.JobExecutor`, the fields of
:class:`~gpuhub.jobs.executor.JobSpec` and the runner's helpers. Its engine,
:class:`FakeEngine`, runs each submission as a real process of the job runner and outlives
the executor, as a cluster outlives a restarted gpuhub service. Every hook call is
recorded, so the tests check what the real :class:`~gpuhub.jobs.manager.JobManager`
(its lifecycle, a real scheduler on SQLite and PostgreSQL, a fake clock) calls, in which
order, with which :class:`JobSpec`: through success, cancel, the maximum runtime, and a
restart that takes up a running job (or one caught mid-start) without starting it twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.jobs.executor import EXIT_FILE, JobExecutor, JobExit, JobSpec
from gpuhub.jobs.manager import JobManager
from gpuhub.jobs.models import JobRequest
from gpuhub.jobs.record import Job
from gpuhub.jobs.runner import exit_from_status, job_document, job_environment
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine

from tests.support.clock import FakeClock
from tests.support.hub import wait_for
from tests.support.jobs import notebook, script

pytestmark = pytest.mark.timeout(120)

PROFILES = [
    {
        "name": "duo", "default": True, "image": "lab/train:1",
        "shape": {"kind": "gpu", "count": 1}, "gpu_counts": [1, 2],
        "cpu_limit": 4, "mem_limit": "8G",
    },
]  # fmt: skip
STOP_GRACE = 2.0
#: What an engine adds to a job's maximum runtime (gpuhub's own stop comes first).
TIME_LIMIT_MARGIN = 60
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n"
WAIT_FOR_FLAG = """
import os, pathlib, time
flag = pathlib.Path(os.environ["HOME"]) / "go"
while not flag.exists():
    time.sleep(0.05)
print("flag seen, job", os.environ["GPUHUB_JOB_ID"], flush=True)
"""
WRITES_ARTIFACT = """
import os, pathlib
out = pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"])
(out / "model.txt").write_text(f"weights after {epochs} epochs")
print("devices", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
"""


# -- a cluster engine and an executor for it, from the public API only ---------------------


@dataclass
class Submission:
    """One job handed to the engine (what ``sbatch`` would be given)."""

    id: str
    name: str
    command: list[str]
    cwd: str
    env: dict[str, str]
    time_limit_s: int | None
    node: str | None
    gpus: int
    devices: list[str]
    process: subprocess.Popen
    signals: list[int] = dataclasses.field(default_factory=list)


class FakeEngine:
    """A one-machine stand-in for a cluster engine: submit, find by name, state, signal.

    It outlives the executors that use it, as a cluster outlives a restarted service."""

    def __init__(self) -> None:
        self.submissions: dict[str, Submission] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def submit(self, name: str, command: list[str], **kw: Any) -> str:
        """Start ``command`` as a process of its own (``sbatch``); the engine's job id."""
        with self._lock:
            job_id = f"fake-{next(self._ids)}"
            process = subprocess.Popen(
                command, cwd=kw["cwd"], env=kw["env"], start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.submissions[job_id] = Submission(job_id, name, command, process=process, **kw)
        return job_id

    def find(self, name: str) -> str | None:
        """The engine's id of the job named ``name`` (``squeue --name``), if any."""
        return next((s.id for s in self.submissions.values() if s.name == name), None)

    def running(self, job_id: str) -> bool:
        """Whether the engine's job still runs (``squeue -j``)."""
        return self.submissions[job_id].process.poll() is None

    def signal(self, job_id: str, sig: int) -> None:
        """Signal the job's processes (``scancel --signal``)."""
        sub = self.submissions[job_id]
        sub.signals.append(sig)
        if sub.process.poll() is None:
            try:
                os.killpg(sub.process.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Kill whatever still runs (the end of a test)."""
        for sub in self.submissions.values():
            if sub.process.poll() is None:
                os.killpg(sub.process.pid, signal.SIGKILL)
                sub.process.wait()


@dataclass(frozen=True)
class Call:
    """One hook call: which executor instance (0, then 1 after a restart), which job."""

    generation: int
    hook: str
    job_id: int | None
    spec: JobSpec | None


class EngineExecutor(JobExecutor):
    """Hands each job to :class:`FakeEngine` as a Slurm executor hands it to Slurm."""

    name = "engine"

    def __init__(self, engine: FakeEngine, homes: Path, calls: list[Call], generation: int):
        super().__init__()
        self.engine, self.homes, self.calls, self.generation = engine, homes, calls, generation
        self._busy: set[int] = set()  # jobs a hook (other than read_log) is running for
        self._lock = threading.Lock()

    def _record(self, hook: str, job: JobSpec | None) -> None:
        self.calls.append(Call(self.generation, hook, job.id if job else None, job))

    def _enter(self, job: JobSpec) -> None:
        with self._lock:
            assert job.id not in self._busy, f"two hooks of job {job.id} at once"
            self._busy.add(job.id)

    def _leave(self, job: JobSpec) -> None:
        with self._lock:
            self._busy.discard(job.id)

    def folder(self, job: JobSpec) -> Path:
        return self.homes / job.user / job.folder

    def engine_name(self, job: JobSpec) -> str:
        return f"gpuhub-{job.id}"

    # hooks

    def resolve_image(self, image: str | None) -> str | None:
        self._record("resolve_image", None)
        if image is None:
            raise ValueError("an engine job needs an image")
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()

    def before_start(self, job: JobSpec) -> None:
        self._record("before_start", job)
        self._enter(job)
        try:
            folder = self.folder(job)
            (folder / "artifacts").mkdir(parents=True, exist_ok=True)
            (folder / job.input_name).write_text(job.source)
            document = job_document(job, str(self.homes / job.user))
            (folder / "job.json").write_text(json.dumps(document))
        finally:
            self._leave(job)

    def start(self, job: JobSpec) -> dict[str, Any]:
        self._record("start", job)
        self._enter(job)
        try:
            known = self.engine.find(self.engine_name(job))
            if known is not None:  # launched before the service could save the state
                return {"engine_id": known}
            home = self.homes / job.user
            env = {
                "PATH": os.environ["PATH"], "LANG": "C.UTF-8", **job_environment(job.env),
                "HOME": str(home), "GPUHUB_OUTPUT_DIR": str(self.folder(job) / "artifacts"),
            }  # fmt: skip
            engine_id = self.engine.submit(
                self.engine_name(job),
                [sys.executable, "-m", "gpuhub.jobs.runner", str(self.folder(job))],
                cwd=str(self.folder(job)),
                env=env,
                time_limit_s=(job.max_runtime_s or 0) + TIME_LIMIT_MARGIN,
                node=job.node,
                gpus=job.gpus,
                devices=[d.uuid for d in job.devices],
            )
            return {"engine_id": engine_id}
        finally:
            self._leave(job)

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        self._record("poll", job)
        self._enter(job)
        try:
            if self.engine.running(state["engine_id"]):
                return None
            path = self.homes / job.user / job.exit_status_path
            return exit_from_status(path.read_text() if path.exists() else None)
        finally:
            self._leave(job)

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        self._record("stop", job)
        self._enter(job)
        try:
            engine_id = state["engine_id"]
            self.engine.signal(engine_id, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.engine.running(engine_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.engine.signal(engine_id, signal.SIGKILL)
            self.engine.submissions[engine_id].process.wait(10)
        finally:
            self._leave(job)

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        self._record("read_log", job)
        try:
            with open(self.homes / job.user / job.log_path, "rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return b""

    def cleanup(self, job: JobSpec, state: dict[str, Any]) -> None:
        self._record("cleanup", job)


# -- the real manager around it --------------------------------------------------------


class Env:
    """A scheduler (2 simulated GPUs on node n) and a job manager with EngineExecutor."""

    def __init__(self, url: str, homes: Path, clock: FakeClock) -> None:
        self.url, self.homes, self.clock = url, homes, clock
        self.engine = FakeEngine()
        self.calls: list[Call] = []
        self.generation = -1
        self.manager = self.new_manager()

    def new_manager(self) -> JobManager:
        """A fresh scheduler, executor and manager over the same database and engine."""
        self.generation += 1
        scheduler = Scheduler(open_engine(self.url), parse_spec("n: 2xH100-80GB"), clock=self.clock)
        executor = EngineExecutor(self.engine, self.homes, self.calls, self.generation)
        m = JobManager(
            scheduler=scheduler, executor=executor, profiles=PROFILES, clock=self.clock,
            stop_grace=STOP_GRACE,
        )  # fmt: skip
        m.adopt()
        return m

    def restart(self) -> None:
        """The service goes away (its jobs are not stopped) and a new one starts."""
        self.manager.scheduler.engine.dispose()
        self.manager = self.new_manager()

    def submit(self, body: dict, *, start: bool = True, **kw: Any) -> Job:
        """Submit as the service does; ``start=False``: the intake's part only (the job
        queued on its granted lease, as a crash right after the intake leaves it)."""
        req = JobRequest.model_validate(body)
        submit = self.manager.submit if start else self.manager.intake.submit
        job, _ = asyncio.run(submit(req, user="alice", groups=[], **kw))
        return job

    def tick(self) -> None:
        asyncio.run(self.manager.tick())

    def wait(self, job_id: int, *statuses: str) -> Job:
        """Tick until the job reaches one of ``statuses`` (the runner takes real time)."""

        def reached() -> Job | None:
            self.tick()
            job = self.manager.job(job_id)
            return job if job.status in statuses else None

        return wait_for(reached, timeout=60, step=0.05)

    def hooks(self, job_id: int | None = None, generation: int | None = None) -> list[str]:
        """The hooks called (for one job, by one executor), repeats folded into one."""
        names = [
            c.hook
            for c in self.calls
            if (job_id is None or c.job_id in (job_id, None))
            and (generation is None or c.generation == generation)
        ]
        return [h for i, h in enumerate(names) if i == 0 or names[i - 1] != h]

    def specs(self, job_id: int, hook: str | None = None) -> list[JobSpec]:
        return [c.spec for c in self.calls if c.job_id == job_id and (hook in (None, c.hook))]


@pytest.fixture
def env(db_url, tmp_path, clock):
    e = Env(db_url, tmp_path / "homes", clock)
    yield e
    e.engine.close()
    e.manager.scheduler.engine.dispose()


def without_lease(spec: JobSpec) -> JobSpec:
    """A spec without its lease's live view (status and GPU-hours move on)."""
    return dataclasses.replace(spec, lease={})


# -- the tests -------------------------------------------------------------------------


def test_a_job_runs_through_the_hooks_in_order_with_everything_in_its_spec(env):
    nb = notebook(WRITES_ARTIFACT, parameters="epochs = 1")
    body = {
        "path": "work/train.ipynb", "notebook": nb, "parameters": {"epochs": 3}, "gpus": 2,
        "max_runtime_s": 3600,
    }  # fmt: skip
    job = env.submit(body, start=False)
    assert env.hooks() == ["resolve_image"]  # at the intake, before anything was created
    env.tick()
    assert env.manager.job(job.id).status == "running"
    done = env.wait(job.id, "succeeded", "failed")
    assert done.status == "succeeded", done.reason
    assert env.hooks(job.id) == [
        "resolve_image", "before_start", "start", "poll", "read_log", "cleanup",
    ]  # fmt: skip

    lease = env.manager.scheduler.get(job.lease_id)
    spec = env.specs(job.id, "start")[0]
    assert spec.id == job.id and spec.user == "alice" and spec.name == "train"
    assert (spec.kind, spec.path, spec.input_name) == (
        "notebook",
        "work/train.ipynb",
        "input.ipynb",
    )
    assert json.loads(spec.source) == nb and spec.parameters == {"epochs": 3}
    assert spec.max_runtime_s == 3600
    assert spec.shape == {"kind": "gpu", "count": 2} and spec.gpus == 2
    assert spec.node == "n" == lease.node
    assert [d.uuid for d in spec.devices] == ["GPU-sim-n-0", "GPU-sim-n-1"]
    assert [d.uuid for d in spec.devices] == [d["uuid"] for d in lease.devices]
    assert [d.index for d in spec.devices] == [0, 1] and spec.simulated
    assert spec.lease_id == lease.id and spec.lease["id"] == lease.id
    assert spec.profile == "duo"
    assert spec.image == "lab/train:1" and spec.image_digest.startswith("sha256:")
    assert (spec.cpu_limit, spec.mem_limit) == (4, 8 * 1024**3)
    assert (spec.tier, spec.attempt, spec.retried_after) == ("guaranteed", 1, None)
    assert spec.env == {
        "GPUHUB_JOB_ID": str(job.id),
        "GPUHUB_ATTEMPT": "1",
        "GPUHUB_TIER": "guaranteed",
        "GPUHUB_LEASE_ID": str(lease.id),
        "CUDA_VISIBLE_DEVICES": "GPU-sim-n-0,GPU-sim-n-1",
        "NVIDIA_VISIBLE_DEVICES": "GPU-sim-n-0,GPU-sim-n-1",
        "GPUHUB_SIMULATED": "1",
    }
    assert spec.folder == f"gpuhub-jobs/{job.id}-train"
    assert spec.log_path == f"{spec.folder}/job.log"
    assert spec.artifacts_path == f"{spec.folder}/artifacts"
    assert spec.exit_status_path == f"{spec.folder}/{EXIT_FILE}"
    assert spec.output_path == f"{spec.folder}/train.ipynb"
    # every hook saw the same job (the lease's live view aside)
    assert {_frozen(without_lease(s)) for s in env.specs(job.id)} == {_frozen(without_lease(spec))}

    # the engine was handed what a cluster needs, and the job's output is in its folder
    (sub,) = env.engine.submissions.values()
    assert sub.node == "n" and sub.gpus == 2 and sub.devices == ["GPU-sim-n-0", "GPU-sim-n-1"]
    assert sub.time_limit_s == 3600 + TIME_LIMIT_MARGIN
    home = env.homes / "alice"
    assert (home / spec.artifacts_path / "model.txt").read_text() == "weights after 3 epochs"
    assert "devices GPU-sim-n-0,GPU-sim-n-1" in (home / spec.log_path).read_text()
    assert "devices GPU-sim-n-0,GPU-sim-n-1" in (home / spec.output_path).read_text()
    assert done.exit_code == 0 and done.state == {"engine_id": sub.id}
    log = asyncio.run(env.manager.read_log(done, 0, 65536))
    assert "devices GPU-sim-n-0,GPU-sim-n-1" in log["text"] and log["complete"]
    assert env.manager.scheduler.get(job.lease_id).status == "released"


def test_cancel_stops_the_job_through_the_executor(env):
    job = env.submit(script(SLEEPER))
    env.tick()
    running = env.manager.job(job.id)
    assert running.status == "running"
    wait_for(lambda: (env.homes / "alice" / env.specs(job.id)[0].log_path).exists(), timeout=30)
    env.clock.advance(600)
    cancelled = asyncio.run(env.manager.cancel(job.id, by="alice"))
    assert cancelled.status == "cancelled" and cancelled.reason == "cancelled by alice"
    assert env.hooks(job.id)[-4:] == ["stop", "poll", "read_log", "cleanup"]
    assert "start" not in env.hooks(job.id)[env.hooks(job.id).index("stop") :]
    (sub,) = env.engine.submissions.values()
    assert sub.signals[0] == signal.SIGTERM and not env.engine.running(sub.id)
    assert cancelled.exit_code == 143  # the runner stopped the script on SIGTERM
    assert env.manager.view(cancelled)["gpu_hours"] == round(600 / 3600, 6)
    env.tick()  # an ended job is not touched again
    assert env.hooks(job.id)[-1] == "cleanup"


def test_the_maximum_runtime_is_enforced_with_the_executors_stop(env):
    job = env.submit(script(SLEEPER, gpus=1, max_runtime_s=60))
    env.tick()
    spec = env.specs(job.id, "start")[0]
    assert spec.max_runtime_s == 60 and spec.gpus == 1 and len(spec.devices) == 1
    env.clock.advance(59)
    env.tick()
    assert env.manager.job(job.id).status == "running" and "stop" not in env.hooks(job.id)
    env.clock.advance(1)
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "timed_out" and "maximum runtime of 60 s" in done.reason
    assert env.hooks(job.id)[-5:] == ["poll", "stop", "poll", "read_log", "cleanup"]
    assert [c.spec.id for c in env.calls if c.hook == "stop"] == [job.id]


def test_a_restarted_service_takes_up_a_running_job_without_starting_it_again(env):
    job = env.submit(script(WAIT_FOR_FLAG))
    env.tick()
    first = env.manager.job(job.id)
    assert first.status == "running"
    env.restart()
    env.tick()
    again = env.manager.job(job.id)
    assert again.status == "running" and again.state == first.state
    assert env.hooks(job.id, generation=1) == ["poll"]  # no before_start, no start
    (env.homes / "alice" / "go").touch()
    done = env.wait(job.id, "succeeded")
    assert env.hooks(job.id, generation=1) == ["poll", "read_log", "cleanup"]
    assert [c.hook for c in env.calls].count("start") == 1
    assert len(env.engine.submissions) == 1
    # the new executor saw the same job the first one started
    before = without_lease(env.specs(job.id, "start")[0])
    assert all(without_lease(c.spec) == before for c in env.calls if c.generation == 1)
    log = asyncio.run(env.manager.read_log(done, 0, 65536))["text"]
    assert log.count(f"flag seen, job {job.id}") == 1
    env.restart()  # a third service: nothing left to do
    env.tick()
    assert env.hooks(generation=2) == []


def test_a_start_cut_short_by_a_restart_is_finished_by_the_idempotent_start(env):
    """The service stopped after the executor launched the job but before it saved the
    state: the next service calls before_start and start again, and start finds the
    engine's job instead of submitting a second one."""
    job = env.submit(script("print('launched', flush=True)"), start=False)
    spec = env.manager.lifecycle.spec(env.manager.job(job.id))
    env.manager.executor.before_start(spec)
    state = env.manager.executor.start(spec)
    env.manager.db.update_job(job.id, status="starting", started_at=env.clock())
    env.restart()
    done = env.wait(job.id, "succeeded")
    assert done.state == state and len(env.engine.submissions) == 1
    assert env.hooks(job.id, generation=1) == [
        "before_start", "start", "poll", "read_log", "cleanup",
    ]  # fmt: skip
    log = asyncio.run(env.manager.read_log(done, 0, 65536))["text"]
    assert log.count("launched") == 1


def _frozen(spec: JobSpec) -> tuple:
    """A hashable form of a spec (its dicts as sorted JSON)."""
    return tuple(
        json.dumps(v, sort_keys=True, default=repr) if isinstance(v, dict) else v
        for v in (getattr(spec, f.name) for f in dataclasses.fields(spec))
    )


def test_a_job_granted_at_submit_is_started_before_the_answer(env):
    """The service answers a submit with the state the job is in: GPUs granted in the same
    call, so started (not a queued job with no place in the queue)."""
    job = env.submit(script("print('at once', flush=True)"))
    assert job.status == "running" and job.state is not None
    assert env.hooks(job.id) == ["resolve_image", "before_start", "start"]
    assert env.wait(job.id, "succeeded").status == "succeeded"
