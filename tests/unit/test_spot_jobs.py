"""Spot jobs, preemption and retries: the job manager with the real local executor and a
real scheduler offering spot capacity, on SQLite and PostgreSQL, with a fake clock.

A spot job's lease is preempted as the scheduler does it: a guaranteed request waits for
its GPUs, the clock passes the spot lease's minimum runtime, and the scheduler's tick
gives the lease a notice. The jobs are tiny scripts run as real processes: one saves a
checkpoint in ``$GPUHUB_OUTPUT_DIR`` when SIGUSR1 comes and its next attempt resumes from
it; others fail, ignore the notice, or sleep. Nothing here waits on the fake clock: only
on the processes themselves.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from gpuhub.jobs.errors import JobInvalid
from gpuhub.jobs.models import DefinitionRequest
from gpuhub.scheduler.errors import SchedulerError
from gpuhub.scheduler.lease import iso
from gpuhub.scheduler.shapes import WholeGpus
from gpuhub.scheduler.spot import SpotPolicy
from jsonschema import Draft202012Validator

from tests.support.hub import wait_for
from tests.support.jobs import LocalJobs, script
from tests.support.paths import OPENAPI

pytestmark = pytest.mark.timeout(120)

PROFILES = [{"name": "gpu-1", "default": True, "shape": {"kind": "gpu", "count": 1}}]
SPOT = SpotPolicy(enabled=True, discount=0.3, grace_s=120, min_runtime_s=300, kill_after_s=60)

#: Saves a checkpoint on the notice and stops; the next attempt resumes from it.
RESUMES = """
import json, os, pathlib, signal, sys, time
out = pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"])
ckpt = out / "checkpoint.txt"
start = int(ckpt.read_text()) if ckpt.exists() else 0
print("attempt", os.environ["GPUHUB_ATTEMPT"], os.environ["GPUHUB_TIER"], "from", start, flush=True)
if start:
    print("resumed and done", flush=True)
    sys.exit(0)
def save(signum, frame):
    notice = json.loads(pathlib.Path(os.environ["GPUHUB_PREEMPT_FILE"]).read_text())
    ckpt.write_text("42")
    print("saved 42 before", notice["deadline"], flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, save)
(out / "ready").touch()
while True:
    time.sleep(0.05)
"""
#: Counts the notices it gets and works on (until it is stopped).
COUNTS = """
import os, pathlib, signal, time
notices = 0
def noticed(signum, frame):
    global notices
    notices += 1
    print("notice", notices, pathlib.Path(os.environ["GPUHUB_PREEMPT_FILE"]).read_text(), flush=True)
signal.signal(signal.SIGUSR1, noticed)
(pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"]) / "ready").touch()
while True:
    time.sleep(0.05)
"""
FAILS = (
    'import os\nprint("attempt", os.environ["GPUHUB_ATTEMPT"], flush=True)\nraise SystemExit(3)\n'
)
SLEEPER = "import time\ntime.sleep(120)\n"


@pytest.fixture
def env(db_url, tmp_path, clock):
    e = LocalJobs(db_url, tmp_path / "homes", clock, PROFILES, spot=SPOT)
    yield e
    e.stop_all()


def job_leases(env: LocalJobs, job) -> list:
    """The job's leases, oldest first (every status)."""
    every = env.manager.scheduler.leases(
        user=job.user, status=["queued", "active", "released", "cancelled"]
    )
    return sorted((x for x in every if x.label == f"job:{job.user}/{job.id}"), key=lambda x: x.id)


def preempt(env: LocalJobs) -> object:
    """A guaranteed request for the whole pool (2 GPUs) waits; once the spot lease has run
    its minimum, the scheduler's tick gives it a notice. Bob's waiting lease."""
    bob = env.manager.scheduler.request(user="bob", user_groups=[], shape=WholeGpus(count=2))
    assert bob.status == "queued"
    env.clock.advance(SPOT.min_runtime_s)
    env.manager.scheduler.tick()
    return bob


def ready(env: LocalJobs, job) -> None:
    """Wait until the job's script has set up its handler (it touches ``ready``)."""
    path = env.home() / env.manager.view(job)["folder"] / "artifacts" / "ready"
    wait_for(path.exists, timeout=30)
    path.unlink()


def on_attempt(env: LocalJobs, job_id: int, attempt: int):
    """Tick until the job waits to start ``attempt`` (its attempt before has ended)."""

    def there():
        env.tick()
        job = env.manager.job(job_id)
        return job if job.attempt == attempt or job.ended else None

    return wait_for(there, timeout=60, step=0.05)


def conforms(view: dict) -> dict:
    """``view`` after checking it against the OpenAPI document's ``Job``."""
    spec = yaml.safe_load(OPENAPI.read_text())
    schema = {"$ref": "#/components/schemas/Job", "components": spec["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(view), key=str)
    assert not errors, errors[0]
    return view


def log_of(env: LocalJobs, job_id: int) -> str:
    return asyncio.run(env.manager.read_log(env.manager.job(job_id), 0, 1 << 20))["text"]


# -- preempted, then resumed ---------------------------------------------------------------


def test_a_spot_job_is_noticed_checkpoints_is_requeued_and_resumes_from_its_checkpoint(env):
    job = env.submit(script(RESUMES, tier="spot", retry={"preempted": 2, "backoff_s": 30}))
    first = env.lease(job)
    assert job.status == "running" and (job.tier, first.tier) == ("spot", "spot")
    ready(env, job)
    bob = preempt(env)
    noticed = env.lease(job)
    assert noticed.notice_at == env.clock() and noticed.deadline == env.clock() + 120
    assert conforms(env.manager.view(env.manager.job(job.id)))["preemption"] == {
        "notice_at": iso(env.clock()), "deadline": iso(env.clock() + 120),
    }  # fmt: skip
    waiting = env.wait(job.id, "queued")  # the notice, the checkpoint, the end of attempt 1
    assert (waiting.attempt, waiting.lease_id, waiting.state) == (2, None, None)
    assert waiting.next_attempt_at == env.clock() + 30
    (ended,) = waiting.attempts
    assert ended["status"] == ended["failure"] == "preempted" and ended["exit_code"] == 0
    assert ended["lease_id"] == first.id and ended["tier"] == "spot"
    assert ended["gpu_hours"] == round(300 / 3600, 6)
    assert ended["credits"] == round(300 / 3600 * 0.3, 6)  # rate 1, the spot discount
    assert "stopped" not in ended["reason"] and ended["reason"].startswith("preempted: its spot")
    gone = env.manager.scheduler.get(first.id)
    assert (gone.status, gone.end_reason) == ("released", "preempted")
    assert env.manager.scheduler.get(bob.id).status == "active"  # the GPUs went to bob
    folder = env.home() / conforms(env.manager.view(waiting))["folder"]
    notice = json.loads((folder / "preempt.json").read_text())
    assert notice == {
        "reason": "preempted", "notice_at": iso(noticed.notice_at),
        "deadline": iso(noticed.deadline), "grace_s": 120.0, "attempt": 1,
    }  # fmt: skip
    # the backoff: nothing is asked for before it is over
    env.clock.advance(29)
    env.tick()
    assert env.manager.job(job.id).lease_id is None and len(job_leases(env, job)) == 1
    env.manager.scheduler.release(bob.id)
    env.clock.advance(1)
    done = env.wait(job.id, "succeeded")
    assert done.attempt == 2 and done.reason == "finished"
    second = job_leases(env, job)[1]
    assert second.tier == "spot" and second.idempotency_key == f"job-{job.id}-attempt-2"
    assert len(job_leases(env, job)) == 2
    log = log_of(env, job.id)
    assert "attempt 1 spot from 0" in log and "saved 42 before" in log
    assert "--- attempt 2 (after preempted) ---\n" in log
    assert "attempt 2 spot from 42\nresumed and done" in log
    view = conforms(env.manager.view(done))
    assert (view["tier"], view["attempt"], view["next_attempt_at"]) == ("spot", 2, None)
    assert view["retry"]["preempted"] == 2 and view["retry"]["backoff_s"] == 30
    assert [a["status"] for a in view["attempts"]] == ["preempted", "succeeded"]
    assert view["attempts"][0]["ended_at"] == iso(ended["ended_at"])
    assert view["gpu_hours"] == round(ended["gpu_hours"] + second.gpu_hours(env.clock()), 6)
    assert view["preemption"] is None


def test_a_job_that_keeps_working_is_told_once_and_stopped_at_the_deadline(env):
    """The notice reaches the job once, also through a restart of the service; at the
    deadline the job is stopped and, with no preempted retry asked for, ends preempted."""
    job = env.submit(script(COUNTS, tier="spot", retry={"preempted": 0}))
    ready(env, job)
    preempt(env)
    env.tick()
    wait_for(lambda: "notice 1" in log_of(env, job.id), timeout=30)
    assert env.manager.job(job.id).state["notified"] == env.lease(job).notice_at
    env.restart()
    env.clock.advance(119)
    for _ in range(3):
        env.tick()
    assert env.manager.job(job.id).status == "running"
    env.clock.advance(1)  # the deadline
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "preempted" and done.attempts == []
    assert done.reason.endswith("; stopped at the deadline")
    assert '"grace_s": 120.0' in log_of(env, job.id)
    log = log_of(env, job.id)
    assert log.count("notice ") == 1  # never told twice
    assert env.lease(done).end_reason == "preempted"
    assert env.manager.scheduler.usage(0, env.clock() + 1, by=("user",))[0]["leases"] == 1


def test_a_lease_taken_back_before_its_job_started_requeues_it_and_retries_run_out(env):
    """A queued job whose granted lease is noticed is not started: it is given back and the
    job retried. Its second attempt, preempted again and its lease released by the
    scheduler itself past the deadline, has no preempted retry left: the job ends
    preempted."""
    job = env.submit(script(SLEEPER, tier="spot", retry={"preempted": 1}), start=False)
    assert job.status == "queued" and env.lease(job).status == "active"
    bob = preempt(env)
    env.tick()
    waiting = env.manager.job(job.id)
    assert (waiting.status, waiting.attempt) == ("queued", 2)
    assert waiting.attempts[0]["started_at"] is None and waiting.attempts[0]["gpu_hours"] > 0
    assert "before the job started" in waiting.attempts[0]["reason"]
    assert not (env.home() / "gpuhub-jobs").exists()  # never started
    env.manager.scheduler.release(bob.id)
    env.clock.advance(30)
    env.wait(job.id, "running")
    preempt(env)
    env.clock.advance(SPOT.grace_s + SPOT.kill_after_s)
    env.manager.scheduler.tick()  # the scheduler releases the lease its holder kept
    assert env.manager.scheduler.get(env.manager.job(job.id).lease_id).end_reason == "preempted"
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "preempted", done
    assert done.reason.endswith("(no retry left: 1 preempted retry used)")
    assert [x.end_reason for x in job_leases(env, job)] == ["preempted", "preempted"]


# -- failures: backoff, restart safety, cancel, timeouts ----------------------------------


def crash_before_the_lease_is_written(env: LocalJobs, monkeypatch) -> None:
    """The next write of a retry's lease onto the job fails, as a crash right after the
    scheduler granted it would leave the job."""
    write = env.manager.db.update_job

    def crashes(job_id, **values):
        if values.get("lease_id") is not None:
            monkeypatch.setattr(env.manager.db, "update_job", write)
            raise RuntimeError("the service crashed")
        return write(job_id, **values)

    monkeypatch.setattr(env.manager.db, "update_job", crashes)


def test_failed_attempts_retry_with_a_doubling_backoff_one_lease_each_then_it_ends(
    env, monkeypatch
):
    retry = {"failed": 2, "backoff_s": 10, "backoff_max_s": 15}
    job = env.submit(script(FAILS, retry=retry))
    second = on_attempt(env, job.id, 2)
    assert second.status == "queued" and second.next_attempt_at == env.clock() + 10
    assert second.attempts[0]["status"] == "failed" and second.attempts[0]["exit_code"] == 3
    env.clock.advance(10)
    crash_before_the_lease_is_written(env, monkeypatch)
    env.tick()  # the lease is granted, the job's row not told
    assert env.manager.job(job.id).lease_id is None and len(job_leases(env, job)) == 2
    env.restart()
    third = on_attempt(env, job.id, 3)
    assert (third.status, third.attempt) == ("queued", 3)
    assert third.next_attempt_at == env.clock() + 15  # 20, at most 15
    assert [a["lease_id"] for a in third.attempts] == [x.id for x in job_leases(env, job)]
    env.clock.advance(15)
    done = env.wait(job.id, "failed")
    assert done.attempt == 3 and done.exit_code == 3
    assert done.reason == "the script exited with code 3 (no retry left: 2 failed retries used)"
    leases = job_leases(env, job)
    assert len(leases) == 3 and {x.status for x in leases} == {"released"}
    log = log_of(env, job.id)
    for n in (1, 2, 3):
        assert log.count(f"\nattempt {n}\n") == 1 or log.startswith(f"attempt {n}")
    assert "--- attempt 2 (after failed) ---" in log and "--- attempt 3 (after failed) ---" in log
    view = conforms(env.manager.view(done))
    assert [(a["attempt"], a["status"]) for a in view["attempts"]] == [
        (1, "failed"), (2, "failed"), (3, "failed"),
    ]  # fmt: skip


def test_cancel_during_the_backoff_ends_the_job_and_its_next_lease(env, monkeypatch):
    waits = env.submit(script(FAILS, retry={"failed": 1, "backoff_s": 60}))
    crashed = env.submit(script(FAILS, retry={"failed": 1, "backoff_s": 60}))
    on_attempt(env, waits.id, 2)
    on_attempt(env, crashed.id, 2)
    cancelled = asyncio.run(env.manager.cancel(waits.id, by="alice"))
    assert cancelled.status == "cancelled" and cancelled.attempt == 2
    assert "attempt 1" in log_of(env, waits.id)  # the log of the attempt that ran is kept
    env.clock.advance(60)
    crash_before_the_lease_is_written(env, monkeypatch)
    env.tick()
    (_, granted) = job_leases(env, crashed)
    assert granted.status == "active" and env.manager.job(crashed.id).lease_id is None
    asyncio.run(env.manager.cancel(crashed.id, by="alice"))
    assert env.manager.scheduler.get(granted.id).status == "released"
    env.clock.advance(600)
    env.tick()
    assert len(job_leases(env, waits)) == 1 and len(job_leases(env, crashed)) == 2
    assert env.manager.job(waits.id).status == "cancelled"


def test_a_retry_its_quota_refuses_now_waits_and_asks_again(env):
    from gpuhub.scheduler.quota import QuotaSpec

    env.manager.scheduler.set_quota("user", "alice", QuotaSpec(max_units=1), by="admin")
    job = env.submit(script(FAILS, retry={"failed": 1, "backoff_s": 5}))
    on_attempt(env, job.id, 2)
    other = env.manager.scheduler.request(user="alice", user_groups=[], shape=WholeGpus(count=1))
    env.clock.advance(5)
    env.tick()
    waiting = env.manager.job(job.id)
    assert waiting.status == "queued" and waiting.lease_id is None, waiting
    assert waiting.reason.startswith("attempt 2 waits for the quota: ")
    assert waiting.next_attempt_at == env.clock() + 60
    env.manager.scheduler.release(other.id)
    env.clock.advance(60)
    done = env.wait(job.id, "failed")
    assert done.attempt == 2 and len(job_leases(env, job)) == 2


def test_a_timed_out_job_is_never_retried(env):
    job = env.submit(
        script(SLEEPER, max_runtime_s=60, retry={"failed": 5, "preempted": 5, "backoff_s": 0})
    )
    env.clock.advance(60)
    env.tick()
    done = env.manager.job(job.id)
    assert done.status == "timed_out" and done.attempts == [] and done.attempt == 1
    env.tick()
    assert len(job_leases(env, job)) == 1


# -- where spot is not offered -------------------------------------------------------------


def test_spot_is_refused_where_it_is_not_offered_and_definitions_carry_tier_and_retry(
    db_url, tmp_path, clock
):
    off = LocalJobs(db_url, tmp_path / "off", clock, PROFILES)
    try:
        with pytest.raises(SchedulerError) as e:
            off.submit(script(SLEEPER, tier="spot"))
        assert e.value.field == "tier" and off.manager.db.jobs() == []
        body = {**script(SLEEPER, tier="spot"), "schedule": "@hourly"}
        with pytest.raises(JobInvalid) as e:
            off.manager.create_definition(
                DefinitionRequest.model_validate(body), user="alice", groups=[]
            )
        assert e.value.field == "tier"
    finally:
        off.stop_all()
    on = LocalJobs(db_url, tmp_path / "on", clock, PROFILES, spot=SPOT)
    try:
        body = {**script(SLEEPER, tier="spot", retry={"preempted": 3}), "schedule": "@hourly"}
        req = DefinitionRequest.model_validate(body)
        on.manager.create_definition(req, user="alice", groups=[])
        clock.advance(3600)
        (job_id,) = asyncio.run(on.manager.run_definitions())
        run = on.manager.job(job_id)
        assert run.tier == "spot" and run.retry["preempted"] == 3
        assert on.lease(run).tier == "spot"
    finally:
        on.stop_all()
