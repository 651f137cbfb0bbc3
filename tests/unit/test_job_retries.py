"""Retries of jobs without processes: the retry policy as the API parses it, how an
attempt's end is classed, the backoff, and what the executors and the runner do to tell
one attempt from the next (Slurm's job names and id file, the batch script's signals, the
runner's SIGUSR1 that reaches only the processes that handle it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml
from gpuhub.jobs.executor import JobExit, JobSpec
from gpuhub.jobs.models import JobRequest, RetryPolicy
from gpuhub.jobs.retries import (
    FAILED,
    NODE_FAILED,
    OUT_OF_MEMORY,
    PREEMPTED,
    backoff,
    exhausted_reason,
    failure_of,
    notice_of,
)
from gpuhub.jobs.slurm import SlurmExecutor
from gpuhub.scheduler.lease import Lease
from gpuhub.scheduler.shapes import WholeGpus
from gpuhub.service.body import parse_body
from gpuhub.service.errors import ApiError
from gpuhub.terms import JOB_STATUSES, JOB_TIERS

from tests.support.clock import CLOCK_START
from tests.support.hub import wait_for
from tests.support.paths import OPENAPI

pytestmark = pytest.mark.timeout(60)

T0 = CLOCK_START


def body(**kw) -> bytes:
    return json.dumps({"path": "train.py", "script": "print(1)", **kw}).encode()


# -- the policy, parsed strictly ----------------------------------------------------------


def test_a_request_without_a_policy_gets_the_defaults_where_it_is_kept():
    req = parse_body(body(), JobRequest)
    assert req.tier == "guaranteed" and req.retry is None
    assert RetryPolicy().model_dump() == {
        "preempted": 10, "node_failed": 1, "failed": 0, "out_of_memory": 0,
        "backoff_s": 30, "backoff_max_s": 3600,
    }  # fmt: skip
    spot = parse_body(body(tier="spot", retry={"failed": 2, "backoff_s": 0}), JobRequest)
    assert spot.tier == "spot" and spot.retry == RetryPolicy(failed=2, backoff_s=0)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"tier": "cheap"}, "tier", "'guaranteed' or 'spot'"),
        ({"tier": None}, "tier", "'guaranteed' or 'spot'"),
        ({"retry": {"preempted": "3"}}, "retry.preempted", "valid integer"),
        ({"retry": {"failed": True}}, "retry.failed", "valid integer"),
        ({"retry": {"failed": 1.5}}, "retry.failed", "valid integer"),
        ({"retry": {"node_failed": -1}}, "retry.node_failed", "greater than or equal to 0"),
        ({"retry": {"out_of_memory": 101}}, "retry.out_of_memory", "less than or equal to 100"),
        ({"retry": {"backoff_s": 86401}}, "retry.backoff_s", "less than or equal to 86400"),
        ({"retry": {"backoff_s": 60, "backoff_max_s": 59}}, "retry.backoff_max_s",
         "at least retry.backoff_s (60)"),
        ({"retry": {"cancelled": 1}}, "retry.cancelled", "unknown field 'retry.cancelled'"),
        ({"retry": [1]}, "retry", "should be an object"),
    ],
)  # fmt: skip
def test_a_bad_policy_is_refused_naming_its_field(fields, field, words):
    with pytest.raises(ApiError) as e:
        parse_body(body(**fields), JobRequest)
    assert e.value.status == 400 and e.value.field == field
    assert words in e.value.message, e.value.message
    assert e.value.message.startswith(field) or e.value.message.startswith("unknown field")


def test_the_openapi_document_states_the_policy_as_the_model_checks_it():
    schemas = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]
    policy = schemas["RetryPolicy"]
    assert policy["additionalProperties"] is False
    assert set(policy["properties"]) == set(RetryPolicy.model_fields)
    for name, field in RetryPolicy.model_fields.items():
        documented = policy["properties"][name]
        bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in field.metadata}
        assert (documented["default"], documented["type"]) == (field.default, "integer"), name
        assert (documented["minimum"], documented["maximum"]) == (bounds["Ge"], bounds["Le"]), name
    request = schemas["JobRequest"]["properties"]
    assert set(request) == set(JobRequest.model_fields)
    assert schemas["JobTier"]["enum"] == list(JOB_TIERS)
    assert schemas["JobStatus"]["enum"] == list(JOB_STATUSES)


# -- how an attempt ended -----------------------------------------------------------------


def lease(**kw) -> Lease:
    fields = dict(
        id=5, user="alice", group=None, status="active", shape=WholeGpus(count=1), units=1,
        granted_at=T0, tier="spot",
    )  # fmt: skip
    return Lease(**{**fields, **kw})


def ended(outcome: str, at: float | None = T0 + 100, **kw) -> JobExit:
    return JobExit(exit_code=kw.pop("code", 1), outcome=outcome, ended_at=at, **kw)


def test_an_attempt_is_classed_by_how_it_ended_and_its_lease():
    quiet = lease()
    noticed = lease(notice_at=T0 + 50, deadline=T0 + 170)
    taken = lease(status="released", end_reason="preempted", ended_at=T0 + 200)
    released = lease(status="released", end_reason="released by admin", ended_at=T0 + 200)
    assert failure_of(ended("succeeded", code=0), quiet) is None
    assert failure_of(ended("failed"), quiet) == FAILED
    assert failure_of(ended("lost"), quiet) == FAILED
    assert failure_of(ended("terminated"), released) == FAILED
    assert failure_of(ended("node_failed"), quiet) == NODE_FAILED
    assert failure_of(ended("failed", out_of_memory=True), quiet) == OUT_OF_MEMORY
    # under notice: preempted whatever the exit (a checkpoint and exit 0 included)
    assert failure_of(ended("succeeded", code=0), noticed) == PREEMPTED
    assert failure_of(ended("failed", out_of_memory=True), noticed) == PREEMPTED
    assert failure_of(ended("lost", at=None), noticed) == PREEMPTED
    assert failure_of(ended("failed"), taken) == PREEMPTED
    # it had ended before the notice came: the notice does not change how (nor the
    # scheduler's taking the lease back later, while the service was away)
    assert failure_of(ended("succeeded", at=T0 + 49, code=0), noticed) is None
    assert failure_of(ended("failed", at=T0 + 49), noticed) == FAILED
    late = lease(notice_at=T0 + 50, deadline=T0 + 170, status="released",
                 end_reason="preempted", ended_at=T0 + 230)  # fmt: skip
    assert failure_of(ended("succeeded", at=T0 + 49, code=0), late) is None
    assert failure_of(ended("succeeded", at=T0 + 60, code=0), late) == PREEMPTED


def test_the_backoff_doubles_per_retry_of_a_class_up_to_its_most_and_then_none_is_left():
    policy = RetryPolicy(preempted=3, failed=5, backoff_s=30, backoff_max_s=100).model_dump()
    before: list[dict] = []
    waits = []
    while (wait := backoff(policy, before, PREEMPTED)) is not None:
        waits.append(wait)
        before.append({"failure": PREEMPTED})
    assert waits == [30, 60, 100]  # 120 capped at 100; then the 3 retries are used
    # another class counts its own retries, from the first backoff again
    assert backoff(policy, before, FAILED) == 30
    assert backoff(policy, [*before, {"failure": FAILED}], FAILED) == 60
    assert backoff(policy, before, NODE_FAILED) == 30  # the default: one retry
    assert backoff(policy, [{"failure": NODE_FAILED}], NODE_FAILED) is None
    assert backoff(policy, [], OUT_OF_MEMORY) is None  # none by default
    assert backoff(None, [], PREEMPTED) is None  # a job from before retries: none
    huge = RetryPolicy(failed=100, backoff_s=86400, backoff_max_s=86400).model_dump()
    assert backoff(huge, [{"failure": FAILED}] * 99, FAILED) == 86400


def test_the_final_reason_says_the_retries_were_used():
    policy = RetryPolicy(preempted=2).model_dump()
    assert exhausted_reason("x", policy, PREEMPTED) == "x (no retry left: 2 preempted retries used)"
    assert exhausted_reason("x", policy, FAILED) == "x"  # none were asked for


def test_the_notice_a_job_reads():
    assert notice_of(lease(notice_at=T0, deadline=T0 + 120), 3) == {
        "reason": "preempted",
        "notice_at": "2026-11-23T09:00:00+00:00",
        "deadline": "2026-11-23T09:02:00+00:00",
        "grace_s": 120.0,
        "attempt": 3,
    }


# -- Slurm tells attempts apart -------------------------------------------------------------


def slurm_spec(**kw) -> JobSpec:
    fields = dict(
        id=12, user="alice", name="train", kind="script", path="train.py",
        folder="gpuhub-jobs/12-train", source="print(1)\n", lease_id=7,
        shape={"kind": "gpu", "count": 1}, node="gpu1", max_runtime_s=3600,
    )  # fmt: skip
    return JobSpec(**{**fields, **kw})


def test_slurm_names_each_attempt_and_does_not_take_an_earlier_ones_job(tmp_path):
    executor = SlurmExecutor(home_dir_template=str(tmp_path / "{username}"), python="/opt/py")
    first, second = slurm_spec(), slurm_spec(attempt=2, retried_after="preempted")
    assert executor.job_name(first) == "gpuhub-12" and executor.job_name(second) == "gpuhub-12.2"
    assert "--job-name=gpuhub-12.2" in executor.sbatch_command(second)
    folder = tmp_path / "alice/gpuhub-jobs/12-train"
    folder.mkdir(parents=True)
    (folder / ".slurm-job").write_text("41\n")  # as the first attempt wrote it before
    assert executor._submitted(first) == "41"
    (folder / ".slurm-job").write_text("42 2\n")  # the second attempt's own
    assert executor._submitted(second) == "42"
    # without an id file of its own attempt, an attempt asks the real cluster by its name
    # (squeue --name): tests/slurm/test_jobs.py runs a second attempt on the local cluster


# -- the runner: the notice reaches only the processes that handle it ----------------------

HANDLES = """
import os, pathlib, signal, subprocess, sys, time
out = pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"])
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
def saved(signum, frame):
    notice = pathlib.Path(os.environ["GPUHUB_PREEMPT_FILE"]).read_text()
    (out / "checkpoint").write_text(notice)
    child.terminate()
    (out / "child").write_text(str(child.wait()))  # -15: spared by the runner's SIGUSR1
    sys.exit(0)
signal.signal(signal.SIGUSR1, saved)
print("attempt", os.environ["GPUHUB_ATTEMPT"], "ready", flush=True)
time.sleep(60)
"""


def test_the_runner_passes_sigusr1_to_the_job_that_handles_it_and_spares_the_others(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "artifacts").mkdir()
    (folder / "input.py").write_text(HANDLES)
    document = {"id": 7, "kind": "script", "input": "input.py", "output": None,
                "parameters": {}, "gpus": 0, "cwd": str(tmp_path), "attempt": 2,
                "after": "preempted"}  # fmt: skip
    (folder / "job.json").write_text(json.dumps(document))
    (folder / "exit_status.json").write_text('{"exit_code": 0, "outcome": "succeeded"}')
    (folder / "preempt.json").write_text('{"attempt": 1}')  # the first attempt's notice
    (folder / "job.log").write_text("the first attempt's output\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUHUB_")}
    proc = subprocess.Popen([sys.executable, "-m", "gpuhub.jobs.runner", str(folder)], env=env,
                            stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        log = folder / "job.log"
        wait_for(lambda: "ready" in log.read_text(), timeout=30)
        assert not (folder / "preempt.json").exists()  # the earlier attempt's is gone
        assert not (folder / "exit_status.json").exists()
        (folder / "preempt.json").write_text('{"attempt": 2, "deadline": "soon"}')
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=30) == 0  # the runner itself stays up to the job's end
        assert (folder / "artifacts" / "checkpoint").read_text() == (
            '{"attempt": 2, "deadline": "soon"}'
        )
        # the job's own child has no handler: SIGUSR1 would have killed it (-10) before
        # the job's handler stopped it with SIGTERM
        assert (folder / "artifacts" / "child").read_text() == "-15"
        status = json.loads((folder / "exit_status.json").read_text())
        assert status["outcome"] == "succeeded"
        text = log.read_text()
        assert text.startswith("the first attempt's output\n--- attempt 2 (after preempted) ---\n")
        assert "attempt 2 ready" in text
    finally:
        if proc.poll() is None:
            proc.kill()
