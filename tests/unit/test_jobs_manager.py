"""The job manager with the real local executor, on SQLite and PostgreSQL.

Jobs are tiny scripts and notebooks run as real processes by
:class:`~gpuhub.jobs.local.LocalProcessExecutor`; the manager and the scheduler share a
fake clock, so GPU-hours and maximum runtimes are exact and nothing sleeps through a
window (the only waiting is for the tiny processes themselves).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from gpuhub.jobs.errors import JobEnded, JobInvalid
from gpuhub.jobs.executor import ENGINE_WAIT_S, EngineUnavailable
from gpuhub.jobs.local import LocalProcessExecutor
from gpuhub.jobs.models import DefinitionRequest, JobRequest
from gpuhub.jobs.recurring import LOOK_AGAIN_S
from gpuhub.scheduler.shapes import WholeGpus
from sqlalchemy import event

from tests.support.jobs import LocalJobs, notebook, script

pytestmark = pytest.mark.timeout(120)

PROFILES = [
    {"name": "gpu-1", "default": True, "shape": {"kind": "gpu", "count": 1}},
    {"name": "duo", "shape": {"kind": "gpu", "count": 2}, "gpu_counts": [1, 2]},
    {"name": "staff", "shape": {"kind": "gpu", "count": 1}, "groups": ["staff"]},
    {"name": "cpu", "shape": None},  # CPU only: a job on it needs a shape
]
WAIT_FOR_FLAG = """
import os, pathlib, time
flag = pathlib.Path(os.environ["HOME"]) / "go"
while not flag.exists():
    time.sleep(0.05)
print("flag seen, job", os.environ["GPUHUB_JOB_ID"], flush=True)
"""
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n"


@pytest.fixture
def env(db_url, tmp_path, clock):
    e = LocalJobs(db_url, tmp_path / "homes", clock, PROFILES)
    yield e
    e.stop_all()  # nothing outlives the test


# -- to the end -------------------------------------------------------------------------


def test_a_notebook_job_runs_to_success_and_its_gpu_hours_are_booked_once(env):
    nb = notebook("print('epochs are', epochs)", parameters="epochs = 1")
    job = env.submit({"path": "train.ipynb", "notebook": nb, "parameters": {"epochs": 3}})
    # granted at once, so started before the answer: it says the state it is in
    assert job.status == "running" and env.lease(job).status == "active"
    assert env.lease(job).label == f"job:alice/{job.id}"
    env.tick()
    running = env.manager.job(job.id)
    assert running.status in ("running", "succeeded") and running.state["pid"] > 0
    env.clock.advance(1800)  # half an hour on one GPU
    done = env.wait(job.id, "succeeded")
    view = env.manager.view(done)
    assert view["exit_code"] == 0 and view["reason"] == "finished"
    assert view["gpu_hours"] == 0.5 and view["elapsed_s"] == 1800.0
    assert view["devices"] == ["GPU-sim-n-0"] and view["simulated"] is True
    assert view["output_notebook"] == f"gpuhub-jobs/{job.id}-train/train.ipynb"
    lease = env.lease(job)
    assert lease.status == "released" and lease.end_reason == f"job {job.id} succeeded"
    usage = env.manager.scheduler.usage(0, env.clock() + 1, by=("user",))
    assert usage == [{"user": "alice", "gpu_hours": 0.5, "credits": 0.5, "leases": 1}]
    executed = env.home() / view["output_notebook"]
    outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
    assert any("epochs are 3" in "".join(o.get("text", "")) for o in outputs)
    log = asyncio.run(env.manager.read_log(done, 0, 65536))
    assert "epochs are 3" in log["text"] and log["complete"] is True
    assert log["next_offset"] == done.log_size > 0
    page = asyncio.run(env.manager.read_log(done, 5, 10))
    assert page["offset"] == 5 and page["next_offset"] == 15 and page["complete"] is False
    env.clock.advance(3600)  # later ticks change nothing: ended and booked once
    env.tick()
    assert env.manager.view(env.manager.job(job.id))["gpu_hours"] == 0.5
    assert env.manager.scheduler.usage(0, env.clock(), by=("user",))[0]["gpu_hours"] == 0.5


def test_a_failing_script_is_failed_with_its_exit_code_and_log(env):
    job = env.submit(script("print('about to fail', flush=True)\nraise SystemExit(3)\n"))
    done = env.wait(job.id, "failed")
    assert done.exit_code == 3 and "3" in done.reason
    assert "about to fail" in asyncio.run(env.manager.read_log(done, 0, 1000))["text"]
    assert env.lease(job).status == "released"


# -- cancel, maximum runtime, a lease ended by someone else --------------------------------


def test_cancel_a_queued_job_withdraws_its_request_and_starts_nothing(env):
    for _ in range(2):  # bob holds the whole pool
        env.manager.scheduler.request(user="bob", user_groups=[], shape=WholeGpus(count=1))
    job = env.submit(script(SLEEPER))
    view = env.manager.view(job)
    assert view["status"] == "queued" and view["position"] == 1
    env.tick()
    assert env.manager.job(job.id).status == "queued"
    cancelled = asyncio.run(env.manager.cancel(job.id, by="alice"))
    assert cancelled.status == "cancelled" and cancelled.reason == "cancelled by alice"
    assert env.lease(job).status == "cancelled"
    assert not (env.home_root / "alice" / "gpuhub-jobs").exists()
    with pytest.raises(JobEnded):
        asyncio.run(env.manager.cancel(job.id, by="alice"))


def test_cancel_a_running_job_stops_it(env):
    job = env.submit(script(SLEEPER))
    env.tick()
    running = env.manager.job(job.id)
    assert running.status == "running"
    pid = running.state["pid"]
    env.clock.advance(600)
    cancelled = asyncio.run(env.manager.cancel(job.id, by="admin"))
    assert cancelled.status == "cancelled" and cancelled.reason == "cancelled by admin"
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert env.lease(job).status == "released"
    assert env.manager.view(cancelled)["gpu_hours"] == round(600 / 3600, 6)
    with pytest.raises(JobEnded):
        asyncio.run(env.manager.cancel(job.id, by="admin"))


def test_a_job_past_its_maximum_runtime_is_timed_out(env):
    job = env.submit(script(SLEEPER, max_runtime_s=60))
    env.tick()
    assert env.manager.job(job.id).status == "running"
    env.clock.advance(59)
    env.tick()
    assert env.manager.job(job.id).status == "running"
    env.clock.advance(1)
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "timed_out" and "maximum runtime of 60 s" in done.reason
    assert env.manager.view(done)["gpu_hours"] == round(60 / 3600, 6)
    assert env.lease(job).status == "released"


def test_a_job_whose_lease_someone_released_fails_and_stops(env):
    job = env.submit(script(SLEEPER))
    env.tick()
    assert env.manager.job(job.id).status == "running"
    env.manager.scheduler.release(job.lease_id, reason="released by admin")
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "failed" and "released by admin" in done.reason


# -- restart --------------------------------------------------------------------------


def test_a_restarted_manager_takes_up_a_running_job_ends_and_books_it_once(env):
    home = env.home()
    job = env.submit(script(WAIT_FOR_FLAG))
    env.tick()
    first = env.manager.job(job.id)
    assert first.status == "running"
    env.clock.advance(900)
    # the service goes away (no stop of the job); a new one starts over the same database
    env.manager.scheduler.engine.dispose()
    env.manager = env.new_manager()
    env.tick()
    again = env.manager.job(job.id)
    assert again.status == "running" and again.state == first.state  # not restarted
    env.clock.advance(900)
    (home / "go").touch()
    done = env.wait(job.id, "succeeded")
    assert done.state["pid"] == first.state["pid"]
    assert env.manager.view(done)["gpu_hours"] == 0.5
    leases = env.manager.scheduler.leases(user="alice", status=["released", "active"])
    assert [(x.id, x.status) for x in leases] == [(job.lease_id, "released")]
    assert env.manager.scheduler.usage(0, env.clock() + 1, by=("user",))[0]["leases"] == 1
    log = asyncio.run(env.manager.read_log(done, 0, 65536))["text"]
    assert log.count(f"flag seen, job {job.id}") == 1  # it ran once
    env.manager.scheduler.engine.dispose()  # a third start: nothing left to do
    env.manager = env.new_manager()
    env.tick()
    assert env.manager.job(job.id).ended_at == done.ended_at


class AwayThenBack(LocalProcessExecutor):
    """A local executor whose engine does not answer while ``away`` is set."""

    away = True

    def start(self, job):
        if AwayThenBack.away:
            raise EngineUnavailable("the controller does not answer")
        return super().start(job)


def test_a_job_waits_for_an_engine_that_does_not_answer_and_starts_once_it_does(env):
    env.manager.scheduler.engine.dispose()
    env.manager = env.new_manager(AwayThenBack)
    AwayThenBack.away = True
    job = env.submit(script("print('ran', flush=True)\n"))
    assert job.status == "starting" and not job.state
    env.clock.advance(ENGINE_WAIT_S - 1)
    env.tick()  # still within the wait: tried again, still starting
    assert env.manager.job(job.id).status == "starting"
    AwayThenBack.away = False
    done = env.wait(job.id, "succeeded")
    assert env.lease(done).status == "released"


def test_a_job_whose_engine_stays_away_fails_and_gives_its_gpu_back(env):
    env.manager.scheduler.engine.dispose()
    env.manager = env.new_manager(AwayThenBack)
    AwayThenBack.away = True
    job = env.submit(script("print('never', flush=True)\n"))
    env.clock.advance(ENGINE_WAIT_S)
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "failed", done
    assert done.reason == (
        f"the job could not be started: the controller does not answer (for {ENGINE_WAIT_S} s)"
    )
    assert env.lease(done).status == "released"


# -- refusals: nothing created ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "groups", "field"),
    [
        (script("x", profile="nope"), (), "profile"),
        (script("x", profile="staff"), (), "profile"),
        (script("x", profile="duo", gpus=3), (), "gpus"),
        (script("x", profile="cpu"), (), "profile"),
        (script("x", profile="cpu", gpus=1), (), "gpus"),
        (script("x", gpus=1, shape={"kind": "gpu", "count": 1}), (), "gpus"),
        ({"path": "a.ipynb", "script": "x"}, (), "notebook"),
        ({"path": "a.py", "notebook": notebook("1")}, (), "script"),
        (script("x", parameters={"a": 1}), (), "parameters"),
        (script("x", nodes=2), (), "nodes"),  # the local executor runs one node a job
        (script("x", shape={"kind": "gpu", "count": 1, "nodes": 2}), (), "nodes"),
        (script("x", nodes=2, shape={"kind": "gpu", "count": 1}), (), "nodes"),
        (script("x", shape={"kind": "mig", "profile": "1g.10gb"}, nodes=2), (), "nodes"),
    ],
)
def test_refused_requests_create_nothing(env, body, groups, field):
    with pytest.raises(JobInvalid) as e:
        env.submit(body, groups=groups)
    assert e.value.field == field, e.value.message
    assert env.manager.db.jobs() == [] and env.manager.scheduler.leases() == []


def test_a_job_from_a_cpu_profile_asks_for_the_shape_it_names(env):
    job = env.submit(script("x", profile="cpu", shape={"kind": "gpu", "count": 1}), start=False)
    lease = env.lease(job)
    assert (job.profile, job.shape, job.status) == ("cpu", {"kind": "gpu", "count": 1}, "queued")
    assert (lease.profile, lease.shape, lease.status) == ("cpu", WholeGpus(count=1), "active")
    asyncio.run(env.manager.cancel(job.id, by="alice"))


def test_the_pool_and_quotas_refuse_as_for_leases_and_nothing_is_created(env):
    from gpuhub.scheduler.errors import QuotaExceeded, Unsatisfiable
    from gpuhub.scheduler.quota import QuotaSpec

    with pytest.raises(Unsatisfiable):
        env.submit(script("x", shape={"kind": "gpu", "count": 8}))
    env.manager.scheduler.set_quota("user", "alice", QuotaSpec(max_units=0), by="admin")
    with pytest.raises(QuotaExceeded):
        env.submit(script("x"))
    assert env.manager.db.jobs() == [] and env.manager.scheduler.leases() == []


def test_idempotency_key_replays_the_job_and_refuses_another_request(env):
    from gpuhub.scheduler.errors import IdempotencyConflict

    req = JobRequest.model_validate(script(SLEEPER))
    m = env.manager
    first, replayed = asyncio.run(m.submit(req, user="alice", groups=[], idempotency_key="k"))
    again, replayed2 = asyncio.run(m.submit(req, user="alice", groups=[], idempotency_key="k"))
    assert (replayed, replayed2) == (False, True) and again.id == first.id
    other = JobRequest.model_validate(script("print(2)"))
    with pytest.raises(IdempotencyConflict):
        asyncio.run(m.submit(other, user="alice", groups=[], idempotency_key="k"))
    assert len(m.db.jobs()) == 1 and len(m.scheduler.leases()) == 1
    asyncio.run(m.cancel(first.id, by="alice"))


def test_job_ids_and_folders_never_collide(env):
    a = env.submit(script("print(1)", name="../x y"))
    b = env.submit(script("print(2)"))
    assert a.id != b.id
    assert env.manager.view(a)["folder"] == f"gpuhub-jobs/{a.id}-x-y"
    env.wait(a.id, "succeeded")
    env.wait(b.id, "succeeded")
    assert os.path.isdir(env.home() / "gpuhub-jobs" / f"{a.id}-x-y" / "artifacts")


def test_a_restart_ends_what_a_crash_left_half_done(env):
    """A job ended in its row whose lease is still held (a crash between the two writes)
    gets its lease released; a job caught while starting (no executor state saved) is
    started by the restarted service, and runs once even when its runner had started."""
    ended = env.submit(script("print(1)"), start=False)
    starting = env.submit(script("print('started')"), start=False)
    launched = env.submit(script("import time; time.sleep(1); print('launched')"), start=False)
    env.manager.db.update_job(ended.id, status="failed", reason="crash test")
    env.manager.db.update_job(starting.id, status="starting", started_at=env.clock())
    # the runner of this one started, but the crash came before its state was saved
    spec = env.manager.lifecycle.spec(env.manager.job(launched.id))
    env.manager.executor.before_start(spec)
    pid = env.manager.executor.start(spec)["pid"]
    env.manager.db.update_job(launched.id, status="starting", started_at=env.clock())
    env.manager.scheduler.engine.dispose()
    env.manager = env.new_manager()  # adopt() runs here
    assert env.lease(ended).status == "released"
    assert env.lease(ended).end_reason == f"job {ended.id} failed"
    for job in (starting, launched):
        env.wait(job.id, "succeeded")
        assert env.lease(job).status == "released"
    assert env.manager.job(launched.id).state["pid"] == pid
    log = asyncio.run(env.manager.read_log(env.manager.job(launched.id), 0, 65536))
    assert log["text"].count("launched") == 1


# -- an idle service reads no table -------------------------------------------------------


def test_an_idle_manager_reads_no_table_until_something_happens(env, clock):
    m = env.manager
    statements: list[str] = []
    event.listen(m.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def intervals(n: int, step: float = 1.0) -> list[str]:
        """``n`` ticks of the interval, ``step`` seconds apart; the SQL they ran."""
        statements.clear()
        for _ in range(n):
            clock.advance(step)
            asyncio.run(m.on_interval())
        return list(statements)

    env.tick()  # nothing live, nothing defined
    assert m.quiet() and intervals(30) == []
    # a submitted job stirs it: the intervals look at it until it has ended, then rest
    job = env.submit(script("print('done')"))
    assert not m.quiet()
    deadline = clock.now + 60
    while m.job(job.id).status != "succeeded":
        assert intervals(1) and clock.now < deadline, m.job(job.id)
        time.sleep(0.05)
    intervals(1)  # the look that finds nothing live
    assert m.quiet() and intervals(10) == []
    # a woken manager (a lease granted or released) looks again at the next interval
    m.wake()
    assert not m.quiet() and intervals(1) and intervals(10) == []
    # a definition due at the next five minutes: nothing read until it is due, then its
    # run is submitted on time
    due = (clock.now // 300 + 1) * 300
    clock.now = due - 40
    m.create_definition(
        DefinitionRequest.model_validate({**script("print(2)"), "schedule": "*/5 * * * *"}),
        user="alice", groups=[],
    )  # fmt: skip
    assert intervals(1) and m.quiet()  # read once
    assert intervals(38) == [] and m.db.jobs(limit=10)[0].id == job.id
    intervals(1)
    assert clock.now == due and m.db.jobs(limit=10)[0].definition_id is not None
    env.wait(m.db.jobs(limit=10)[0].id, "succeeded")
    # with nothing happening at all, it still looks once a minute (a row written by hand)
    looked = [bool(intervals(1)) for _ in range(int(2 * LOOK_AGAIN_S))]
    assert 2 <= sum(looked) <= 4, looked
