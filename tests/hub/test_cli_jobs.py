"""``gpuhub jobs`` and ``gpuhub job ...``: what the command does on the user's side, then
end to end against a real hub whose gpuhub service runs jobs with the local executor: the
shared hub (``shared_hub``), where each test's people have names of their own.

The first part needs no server: the path checks against a temporary ``$HOME`` (``..``,
absolute paths, a symlink out of the home), reading notebooks and scripts, ``-p`` and
``--max-runtime``, the service's field names put back into flags, the tables and
sentences made from Job and Definition views shaped as the API answers them, and the log
loop of ``job log [--follow]`` against a stand-in client (no sleeping: the wait is
replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gpuhub.cli import jobs as cli_jobs
from gpuhub.cli.commands import CliError
from gpuhub.cli.job_input import (
    MAX_SOURCE_BYTES,
    parameters,
    parse_duration,
    parse_param,
    read_source,
    resolve_in_home,
)
from gpuhub.cli.job_render import (
    definition_sentence,
    definitions_table,
    elapsed_text,
    ended_sentence,
    job_details,
    jobs_table,
    submitted_sentence,
)
from gpuhub.cli.main import build_parser, main
from gpuhub.cli.tables import duration_text
from gpuhub.client import GpuhubClient, GpuhubError

from tests.support.hub import free_port, unique, wait_for

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"cell_type": "code", "id": "p1", "metadata": {"tags": ["parameters"]},
         "execution_count": None, "outputs": [], "source": "lr = 0.1\n"},
        {"cell_type": "code", "id": "c2", "metadata": {}, "execution_count": None,
         "outputs": [], "source": "print(lr)\n"},
    ],
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder with a notebook and a script in work/, and a file outside the home."""
    home = tmp_path / "home" / "ana"
    (home / "work").mkdir(parents=True)
    (home / "work" / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    (home / "work" / "run.py").write_text("print('hi')\n")
    (tmp_path / "secret.py").write_text("print('not yours')\n")
    return Path(os.path.realpath(home))


# -- the path, inside the home ----------------------------------------------------------


def test_paths_resolve_against_the_current_folder(home: Path) -> None:
    src = read_source("train.ipynb", home=home, cwd=home / "work")
    assert (src.path, src.kind, src.content) == ("work/train.ipynb", "notebook", NOTEBOOK)
    assert src.body() == {"path": "work/train.ipynb", "notebook": NOTEBOOK}
    src = read_source("work/run.py", home=home, cwd=home)
    assert src.body() == {"path": "work/run.py", "script": "print('hi')\n"}
    assert (
        read_source(str(home / "work" / "run.py"), home=home, cwd=Path("/")).path == "work/run.py"
    )
    assert read_source("~/work/run.py", home=home, cwd=Path("/")).path == "work/run.py"
    # dots that stay inside are fine; the real path is what is sent
    assert read_source("../work/./run.py", home=home, cwd=home / "work").path == "work/run.py"


def test_a_symlink_inside_the_home_is_followed(home: Path) -> None:
    (home / "link.py").symlink_to(home / "work" / "run.py")
    (home / "w").symlink_to(home / "work")
    assert read_source("link.py", home=home, cwd=home).path == "work/run.py"
    assert read_source("w/train.ipynb", home=home, cwd=home).path == "work/train.ipynb"


@pytest.mark.parametrize(
    "given",
    ["../../secret.py", "/etc/passwd", "{outside}", "~/../../secret.py", "~", "."],
)
def test_paths_out_of_the_home_are_refused(home: Path, given: str) -> None:
    given = given.format(outside=home.parent.parent / "secret.py")
    with pytest.raises(CliError) as e:
        read_source(given, home=home, cwd=home)
    assert "outside your home folder" in e.value.message and str(home) in e.value.message


def test_a_symlink_out_of_the_home_is_refused(home: Path) -> None:
    (home / "escape.py").symlink_to(home.parent.parent / "secret.py")
    (home / "etc").symlink_to("/etc")
    for given in ("escape.py", "etc/passwd", "work/../escape.py"):
        with pytest.raises(CliError) as e:
            read_source(given, home=home, cwd=home)
        assert "links to" in e.value.message and "outside your home folder" in e.value.message
    # a home that is itself a symlink is its real path
    (home.parent / "alias").symlink_to(home)
    real, rel = resolve_in_home("work/run.py", home=home, cwd=home.parent / "alias")
    assert rel == "work/run.py" and real == home / "work" / "run.py"


def test_only_valid_notebooks_and_scripts(home: Path) -> None:
    def refused(name: str, content: str | bytes | None = None) -> str:
        if content is not None:
            p = home / name
            p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        with pytest.raises(CliError) as e:
            read_source(name, home=home, cwd=home)
        return e.value.message

    assert "not a notebook or a script" in refused("notes.txt", "hello")
    assert "not a notebook or a script" in refused(".bashrc", "x")
    assert "no such file" in refused("missing.ipynb")
    (home / "dir.py").mkdir()
    assert "is not a file" in refused("dir.py")
    assert "not JSON" in refused("broken.ipynb", "{nope")
    assert "nbformat 4" in refused("old.ipynb", json.dumps({"nbformat": 3, "worksheets": []}))
    bad = {**NOTEBOOK, "cells": [{"cell_type": "code", "metadata": {}}]}
    assert "not a valid notebook" in refused("bad.ipynb", json.dumps(bad))
    assert "not UTF-8" in refused("latin.py", b"print('\xe9')\n")
    big = home / "big.py"
    with big.open("wb") as f:
        f.truncate(MAX_SOURCE_BYTES + 1)
    assert "larger than the 16 MiB" in refused("big.py")


# -- -p and --max-runtime ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=0.01", ("lr", 0.01)),
        ("epochs=3", ("epochs", 3)),
        ("resume=true", ("resume", True)),
        ("sizes=[1,2]", ("sizes", [1, 2])),
        ('opts={"a": 1}', ("opts", {"a": 1})),
        ("ckpt=null", ("ckpt", None)),
        ("tag=hello world", ("tag", "hello world")),
        ('tag="3"', ("tag", "3")),
        ("tag=", ("tag", "")),
        ("expr=a=b", ("expr", "a=b")),
        ("x=NaN", ("x", "NaN")),
        ("x=Infinity", ("x", "Infinity")),
        ("élan=1", ("élan", 1)),
    ],
)
def test_parameter_values_are_json_when_they_parse(text: str, expected: tuple) -> None:
    name, value = parse_param(text)
    assert (name, value) == expected and type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["lr", "my-lr=1", "1x=2", "class=3", "=4", "a b=1"])
def test_parameter_names_are_identifiers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_param(text)


def test_a_parameter_given_twice_is_refused() -> None:
    assert parameters([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    assert parameters(None) == {}
    with pytest.raises(CliError, match="parameter a is given twice"):
        parameters([("a", 1), ("a", 2)])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("3600", 3600), ("1.5h", 5400),
     (" 2H ", 7200), ("45", 45)],
)  # fmt: skip
def test_max_runtime_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "-5", "h", "1e9", "0", "nan", "2 hours"])
def test_max_runtime_refuses_what_is_no_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_duration_text() -> None:
    assert [duration_text(s) for s in (7200, 5400, 86400, 90, 45)] == [
        "2h",
        "90m",
        "1d",
        "90s",
        "45s",
    ]


# -- the request body -------------------------------------------------------------------


def _submit_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["job", "submit", *argv])


def test_submit_builds_the_job_request(home: Path) -> None:
    args = _submit_args("train.ipynb", "--gpus", "2", "-p", "lr=0.01", "-p", "tag=x",
                        "--max-runtime", "2h", "--name", "nightly", "--profile", "gpu-1")  # fmt: skip
    body = cli_jobs.job_request(args, home=home, cwd=home / "work")
    assert body == {
        "path": "work/train.ipynb",
        "notebook": NOTEBOOK,
        "parameters": {"lr": 0.01, "tag": "x"},
        "profile": "gpu-1",
        "shape": {"kind": "gpu", "count": 2},
        "max_runtime_s": 7200,
        "name": "nightly",
    }
    body = cli_jobs.job_request(
        _submit_args("run.py", "--mig", "1g.10gb"), home=home, cwd=home / "work"
    )
    assert body == {"path": "work/run.py", "script": "print('hi')\n",
                    "shape": {"kind": "mig", "profile": "1g.10gb"}}  # fmt: skip
    body = cli_jobs.job_request(_submit_args("work/run.py", "--shared"), home=home, cwd=home)
    assert body["shape"] == {"kind": "shared"}
    with pytest.raises(CliError, match="parameters are injected into notebooks only"):
        cli_jobs.job_request(_submit_args("work/run.py", "-p", "a=1"), home=home, cwd=home)
    # the limits of the maximum runtime are the service's (me/options), not the command's
    body = cli_jobs.job_request(
        _submit_args("work/run.py", "--max-runtime", "30s"), home=home, cwd=home
    )
    assert body["max_runtime_s"] == 30


def test_submit_asks_for_spot_and_a_retry_policy(home: Path) -> None:
    args = _submit_args("work/run.py", "--spot", "--retry", "preempted=20,failed=2",
                        "--retry", "out_of_memory=1", "--backoff", "2m", "--backoff-max", "1h")  # fmt: skip
    body = cli_jobs.job_request(args, home=home, cwd=home)
    assert body["tier"] == "spot"
    assert body["retry"] == {"preempted": 20, "failed": 2, "out_of_memory": 1,
                             "backoff_s": 120, "backoff_max_s": 3600}  # fmt: skip
    body = cli_jobs.job_request(_submit_args("work/run.py", "--backoff", "0"), home=home, cwd=home)
    assert body["retry"] == {"backoff_s": 0} and "tier" not in body
    plain = cli_jobs.job_request(_submit_args("work/run.py"), home=home, cwd=home)
    assert "retry" not in plain and "tier" not in plain  # the service's defaults
    with pytest.raises(CliError, match="--retry: failed is given twice"):
        cli_jobs.job_request(
            _submit_args("work/run.py", "--retry", "failed=1", "--retry", "failed=2"),
            home=home, cwd=home,
        )  # fmt: skip


@pytest.mark.parametrize(
    "retry", ["failed", "failed=", "failed=-1", "failed=x", "cancelled=1", "failed=1,failed=2"]
)
def test_retry_refuses_what_is_no_class_and_count(retry: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["job", "submit", "x.py", "--retry", retry])
    assert e.value.code == 2
    assert "--retry" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys) -> None:
    for argv in (
        ["job", "submit", "x.py", "--gpus", "1", "--shared"],
        ["job", "submit", "x.py", "-p", "my-lr=1"],
        ["job", "submit", "x.py", "--max-runtime", "soon"],
        ["job", "show", "abc"],
        ["jobs", "--all", "--user", "bo"],
        ["jobs", "--status", "done"],
    ):
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args(argv)
        assert e.value.code == 2, argv
    err = capsys.readouterr().err
    assert "my-lr" in err and "soon" in err


def test_submit_refusals_exit_1_before_any_request(home: Path, monkeypatch, capsys) -> None:
    """Nothing listens at the URL: the refusals come before any request is made."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GPUHUB_URL", f"http://127.0.0.1:{free_port()}/services/gpuhub")
    monkeypatch.setenv("GPUHUB_TOKEN", "t")
    monkeypatch.chdir(home / "work")
    (home / "escape.py").symlink_to(home.parent.parent / "secret.py")
    for argv, words in (
        (["../../../secret.py"], "outside your home folder"),
        (["../escape.py"], "links to"),
        (["notes.txt"], "not a notebook or a script"),
        (["train.ipynb", "-p", "a=1", "-p", "a=2"], "given twice"),
        (["run.py", "-p", "a=1"], "notebooks only"),
    ):
        assert main(["job", "submit", *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("gpuhub: error: ") and err.count("\n") == 1, err
        assert words in err


# -- the service's words, in the command's ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "message", "expected"),
    [
        ("max_runtime_s", "max_runtime_s: Input should be less than or equal to 604800",
         "--max-runtime: Input should be less than or equal to 604800 s (7d)"),
        ("max_runtime_s", "max_runtime_s: at most 7200 seconds", "--max-runtime: at most 7200 s (2h)"),
        ("max_runtime_s", "the maximum runtime max_runtime_s is above the limit of 7 days",
         "the maximum runtime --max-runtime is above the limit of 7 days"),
        ("name", "field 'name' must not hold control characters",
         "field --name must not hold control characters"),
        ("name", "name: too long", "--name: too long"),
        ("parameters.lr", "parameters.lr: not JSON", "-p lr: not JSON"),
        ("parameters", "parameters are larger than 64 KiB", "parameters are larger than 64 KiB (-p)"),
        ("parameters", "parameters: are 70012 bytes as JSON; at most 65536 (64 KiB)",
         "parameters (-p): are 70012 bytes as JSON; at most 65536 (64 KiB)"),
        ("shape.count", "shape.count: at most 8", "--gpus: at most 8"),
        ("schedule", "'0 25 * * *' is not a cron schedule", "'0 25 * * *' is not a cron schedule (--schedule)"),
        ("profile", "no profile named 'big'; profiles: cpu, gpu-1", "no profile named 'big'; profiles: cpu, gpu-1 (--profile)"),
        ("user", "ana may not act for user bo", "ana may not act for user bo (--user)"),
        ("retry.failed", "retry.failed: Input should be less than or equal to 100",
         "--retry failed: Input should be less than or equal to 100"),
        ("retry.backoff_s", "retry.backoff_s: Input should be less than or equal to 86400",
         "--backoff: Input should be less than or equal to 86400"),
        ("tier", "spot capacity is not offered here (an admin turns it on)",
         "spot capacity is not offered here (an admin turns it on) (--spot)"),
        ("lease", "something else", "something else"),
        (None, "a sentence", "a sentence"),
    ],
)  # fmt: skip
def test_fields_become_flags(field: str | None, message: str, expected: str) -> None:
    e = cli_jobs.in_cli_words(GpuhubError(message, status=400, field=field))
    assert e.message == expected and str(e) == expected


# -- tables and sentences ---------------------------------------------------------------


def job_view(**kw) -> dict:
    """A Job view as the contract shapes it."""
    view = {
        "id": 12, "user": "alice", "name": "train", "path": "work/train.ipynb",
        "kind": "notebook", "status": "running", "position": None, "reason": None,
        "profile": "gpu-1", "image": "gpuhub/pytorch:latest", "image_digest": "sha256:ab12",
        "shape": {"kind": "gpu", "count": 1}, "shape_text": "1x GPU",
        "parameters": {"lr": 0.01, "tag": "x"}, "max_runtime_s": 7200, "lease_id": 41,
        "node": "sim-node-1", "devices": ["GPU-1"], "simulated": True,
        "created_at": "2026-12-01T10:00:00+00:00", "started_at": "2026-12-01T10:00:05+00:00",
        "ended_at": None, "elapsed_s": 3725.0, "gpu_hours": 1.0347, "exit_code": None,
        "folder": "gpuhub-jobs/12-train", "output_notebook": "gpuhub-jobs/12-train/train.ipynb",
        "executor": "local", "definition_id": None,
    }  # fmt: skip
    view.update(kw)
    return view


JOBS = [
    job_view(id=14, name="sweep", status="queued", position=2, started_at=None, elapsed_s=None,
             gpu_hours=0.0, lease_id=None, node=None, devices=[], shape_text="MIG 1g.10gb",
             reason="waiting for a MIG slice"),
    job_view(),
    job_view(id=11, user="bo", status="timed_out", elapsed_s=7200.0, gpu_hours=2.0, exit_code=-15,
             ended_at="2026-12-01T12:00:05+00:00", reason="stopped at its maximum runtime of 2h"),
    job_view(id=9, status="succeeded", elapsed_s=42.4, gpu_hours=0.001, exit_code=0, simulated=False),
]  # fmt: skip


def test_jobs_table() -> None:
    lines = jobs_table(JOBS).splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "SHAPE", "ELAPSED", "GPU-H", "CREATED"]
    assert lines[1].split()[:4] == ["14", "sweep", "queued", "(#2)"]
    assert "MIG 1g.10gb" in lines[1] and "0  2026-12-01 10:00 UTC" in lines[1]
    assert "- " in lines[1]  # no elapsed time yet
    assert lines[2].split()[:3] == ["12", "train", "running"]
    assert "1h 02m" in lines[2] and "1.03" in lines[2] and lines[2].endswith("simulated")
    assert "timed_out" in lines[3] and "2h 00m" in lines[3]
    assert "42s" in lines[4] and "<0.01" in lines[4] and not lines[4].endswith("simulated")
    lines = jobs_table(JOBS, users=True).splitlines()
    assert lines[0].split()[:3] == ["ID", "USER", "NAME"] and lines[3].split()[:2] == ["11", "bo"]


def test_elapsed_text() -> None:
    assert [elapsed_text(s) for s in (None, 0, 59.9, 61, 3600, 86400 * 2 + 3600)] == [
        None, "0s", "59s", "1m 01s", "1h 00m", "2d 01h",
    ]  # fmt: skip


def test_job_details_and_sentences() -> None:
    text = job_details(JOBS[1])
    fields = dict(line.split(": ", 1) for line in text.splitlines())
    assert fields["job"].strip() == "12" and fields["status"].strip() == "running"
    assert fields["parameters"].strip() == 'lr=0.01, tag="x"'
    assert fields["max runtime"].strip() == "2h"
    assert fields["executed notebook"].strip() == "gpuhub-jobs/12-train/train.ipynb"
    assert "reason" not in fields and "exit code" not in fields and "ended" not in fields
    queued = dict(line.split(": ", 1) for line in job_details(JOBS[0]).splitlines())
    assert queued["status"].strip() == "queued (#2)" and "MIG slice" in queued["reason"]

    out = submitted_sentence(JOBS[0])
    assert out.splitlines() == [
        "job 14 submitted: sweep (work/train.ipynb), MIG 1g.10gb, queued at position 2 "
        "(waiting for a MIG slice)",
        "follow its log with: gpuhub job log 14 --follow",
    ]
    assert submitted_sentence(JOBS[1]).startswith(
        "job 12 submitted: train (work/train.ipynb), 1x GPU, running\n"
    )
    assert ended_sentence(JOBS[2]) == (
        "job 11 timed_out, exit code -15, after 2h 00m (stopped at its maximum runtime of 2h)"
    )
    assert cli_jobs.r.job_sentence(job_view(status="cancelled")) == "job 12 cancelled"
    failed = job_view(status="node_failed", elapsed_s=300.0, exit_code=143,
                      reason="node gpu2 failed: disk errors (Slurm job 42 ended with it)")  # fmt: skip
    assert ended_sentence(failed) == (
        "job 12 node_failed, exit code 143, after 5m 00s "
        "(node gpu2 failed: disk errors (Slurm job 42 ended with it))"
    )


def test_job_details_show_the_tier_the_attempts_and_a_notice() -> None:
    attempts = [
        {"attempt": 1, "status": "preempted", "failure": "preempted",
         "reason": "preempted: its spot GPU lease 40 was taken back; finished",
         "lease_id": 40, "tier": "spot", "started_at": "2026-12-01T09:00:00+00:00",
         "ended_at": "2026-12-01T09:30:00+00:00", "exit_code": 0, "gpu_hours": 0.5,
         "credits": 0.15},
        {"attempt": 2, "status": "running", "failure": None, "reason": None, "lease_id": 41,
         "tier": "spot", "started_at": "2026-12-01T10:00:05+00:00", "ended_at": None,
         "exit_code": None, "gpu_hours": 0.25, "credits": 0.075},
    ]  # fmt: skip
    retry = {"preempted": 10, "node_failed": 1, "failed": 0, "out_of_memory": 0,
             "backoff_s": 30, "backoff_max_s": 3600}  # fmt: skip
    notice = {"notice_at": "2026-12-01T10:15:00+00:00", "deadline": "2026-12-01T10:17:00+00:00"}
    job = job_view(tier="spot", retry=retry, attempt=2, attempts=attempts, preemption=notice)
    text = job_details(job)
    head, table = text.split("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    assert fields["tier"].strip() == "spot" and fields["attempt"].strip() == "2"
    assert fields["retry"].strip() == "preempted 10, node_failed 1; backoff 30s doubling to 1h"
    assert fields["preemption"].strip() == (
        "its GPUs are taken back: notice at 2026-12-01 10:15 UTC, stopped at 2026-12-01 10:17 UTC"
    )
    lines = table.splitlines()
    assert lines[0].split() == ["ATTEMPT", "STATUS", "WHY", "GPU-H", "STARTED", "ENDED"]
    assert lines[1].split()[:3] == ["1", "preempted", "preempted:"]
    assert "0.5" in lines[1] and lines[1].endswith("2026-12-01 09:30 UTC")
    assert lines[2].split()[:2] == ["2", "running"] and lines[2].endswith("-")
    # one attempt: no table; a job between attempts says when the next one comes
    once = job_view(tier="guaranteed", attempt=1, attempts=attempts[1:], retry=retry)
    assert "\n\n" not in job_details(once) and "attempt:" not in job_details(once)
    waiting = job_view(status="queued", attempt=3, next_attempt_at="2026-12-01T11:00:00+00:00",
                       tier="spot")  # fmt: skip
    details = dict(line.split(": ", 1) for line in job_details(waiting).splitlines())
    assert details["status"].strip() == "queued (attempt 3 at 2026-12-01 11:00 UTC)"
    assert details["next attempt"].strip() == "2026-12-01 11:00 UTC"
    assert jobs_table([waiting]).splitlines()[1].endswith("simulated, spot, attempt 3")


DEFS = [
    {"id": 3, "user": "alice", "name": "nightly", "schedule": "0 2 * * *", "paused": False,
     "next_run_at": "2026-12-02T02:00:00+00:00", "last_run_at": "2026-12-01T02:00:00+00:00",
     "last_job_id": 9, "created_at": "2026-11-20T09:00:00+00:00", "path": "work/train.ipynb",
     "kind": "notebook", "profile": "gpu-1", "shape": {"kind": "gpu", "count": 1},
     "parameters": {}, "max_runtime_s": 3600},
    {"id": 4, "user": "alice", "name": "weekly", "schedule": "0 0 * * 1", "paused": True,
     "next_run_at": None, "last_run_at": None, "last_job_id": None,
     "created_at": "2026-11-21T09:00:00+00:00", "path": "run.py", "kind": "script",
     "profile": None, "shape": None, "parameters": {}, "max_runtime_s": 86400},
]  # fmt: skip


def test_schedules_table_and_sentences() -> None:
    lines = definitions_table(DEFS).splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCHEDULE", "(UTC)", "STATE", "NEXT", "RUN",
                                "LAST", "RUN", "LAST", "JOB", "PATH"]  # fmt: skip
    assert lines[1].split()[:7] == ["3", "nightly", "0", "2", "*", "*", "*"]
    assert (
        "active" in lines[1]
        and "2026-12-02 02:00 UTC" in lines[1]
        and "work/train.ipynb" in lines[1]
    )
    assert "paused" in lines[2] and "2026" not in lines[2]
    assert definition_sentence(DEFS[0], "created") == (
        "schedule 3 (nightly) created: work/train.ipynb at '0 2 * * *' UTC; "
        "next run 2026-12-02 02:00 UTC"
    )
    assert definition_sentence(DEFS[1], "paused").endswith("resume it with: gpuhub job resume 4)")


# -- end to end: the command against a real hub, jobs run by the local executor ----------

TINY = "import os\nprint('hello from job', os.environ['GPUHUB_JOB_ID'])\n"
SLOW = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"


# ``hub`` is the shared hub (tests/hub/conftest.py).


class Person:
    """A hub user who runs ``gpuhub`` in a terminal whose ``$HOME`` is their home as the
    local executor sees it (the local spawner's ``state/homes/NAME``). The name is the
    one given with a suffix of its own (``unique``), unless ``exact``."""

    def __init__(self, hub, name: str, *, exact: bool = False) -> None:
        self.hub, self.name = hub, name if exact else unique(name)
        self.token = hub.add_user(self.name)
        self.home = Path(os.path.realpath(hub.state)) / "homes" / self.name
        (self.home / "work").mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 90):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "JUPYTERHUB_"))}
        env.update(GPUHUB_URL=f"{self.hub.url}/services/gpuhub", GPUHUB_TOKEN=self.token,
                   HOME=str(self.home))  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "gpuhub.cli.main", *args],
            env=env, cwd=cwd or self.home, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def ok(self, *args: str, **kw) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r.stdout

    def refused(self, *args: str, **kw) -> str:
        """The one ``gpuhub: error:`` line of a run that exits 1, without the prefix."""
        r = self.run(*args, **kw)
        assert r.returncode == 1, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        assert r.stderr.startswith("gpuhub: error: ") and r.stderr.count("\n") == 1, r.stderr
        return r.stderr.removeprefix("gpuhub: error: ").strip()

    def job(self, job_id: int) -> dict:
        return json.loads(self.ok("job", "show", str(job_id), "--json"))

    def job_ids(self) -> list[int]:
        return [j["id"] for j in json.loads(self.ok("jobs", "--json"))["jobs"]]


def _submitted_id(out: str) -> int:
    assert out.startswith("job ") and " submitted: " in out, out
    return int(out.split()[1])


@pytest.mark.hub
def test_submit_follow_list_and_show(hub) -> None:
    jo = Person(hub, "jo")
    (jo.home / "work" / "tiny.py").write_text(TINY)
    out = jo.ok("job", "submit", "tiny.py", "--shared", "--max-runtime", "5m",
                cwd=jo.home / "work")  # fmt: skip
    job_id = _submitted_id(out)
    assert "tiny (work/tiny.py), shared GPU" in out
    assert f"gpuhub job log {job_id} --follow" in out

    r = jo.run("job", "log", str(job_id), "--follow", timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"hello from job {job_id}" in r.stdout
    assert r.stderr.startswith(f"gpuhub: job {job_id} succeeded, exit code 0"), r.stderr
    assert f"hello from job {job_id}" in jo.ok("job", "log", str(job_id))  # all of it, again

    lines = jo.ok("jobs").splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "STATUS", "SHAPE"]
    row = next(line for line in lines if line.split()[0] == str(job_id))
    assert row.split()[1:3] == ["tiny", "succeeded"] and "shared GPU" in row
    listed = json.loads(jo.ok("jobs", "--status", "succeeded", "--json"))["jobs"]
    assert [j["id"] for j in listed] == [job_id] == jo.job_ids()
    assert "no jobs queued" in jo.ok("jobs", "--status", "queued")

    job = jo.job(job_id)
    assert job["status"] == "succeeded" and job["kind"] == "script"
    assert job["max_runtime_s"] == 300 and job["path"] == "work/tiny.py"
    shown = jo.ok("job", "show", str(job_id))
    fields = {k: v.strip() for k, v in (line.split(": ", 1) for line in shown.splitlines())}
    assert fields["status"] == "succeeded" and fields["max runtime"] == "5m"
    assert fields["exit code"] == "0" and fields["folder"] == job["folder"]
    log = jo.home / job["folder"] / "job.log"
    assert f"hello from job {job_id}" in log.read_text()


@pytest.mark.hub
def test_a_notebook_with_parameters(hub) -> None:
    uma = Person(hub, "uma")
    (uma.home / "work" / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    out = uma.ok("job", "submit", "work/train.ipynb", "-p", "lr=0.5", "--name", "lr-0.5")
    job_id = _submitted_id(out)
    r = uma.run("job", "log", str(job_id), "--follow", timeout=180)
    assert r.returncode == 0 and "succeeded, exit code 0" in r.stderr, r.stdout + r.stderr
    job = uma.job(job_id)
    assert job["parameters"] == {"lr": 0.5} and job["kind"] == "notebook"
    executed = json.loads((uma.home / job["output_notebook"]).read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("0.5" in "".join(o.get("text", "")) for o in outputs), outputs
    # the snapshot: editing the notebook now changes nothing of the job
    assert json.loads((uma.home / job["folder"] / "input.ipynb").read_text())["cells"]


@pytest.mark.hub
def test_cancel_a_running_job(hub) -> None:
    kim = Person(hub, "kim")
    (kim.home / "slow.py").write_text(SLOW)
    job_id = _submitted_id(kim.ok("job", "submit", "slow.py", "--gpus", "1", "--name", "slow"))
    wait_for(lambda: kim.job(job_id)["status"] == "running", timeout=60, step=0.5)
    assert "started" in wait_for(lambda: kim.ok("job", "log", str(job_id)), timeout=30)
    assert kim.ok("job", "cancel", str(job_id)).startswith(f"job {job_id} cancelled")
    assert kim.job(job_id)["status"] == "cancelled"
    r = kim.run("job", "log", str(job_id), "--follow")  # an ended job: it ends at once
    assert r.returncode == 0 and "started" in r.stdout and "cancelled" in r.stderr
    msg = kim.refused("job", "cancel", str(job_id))
    assert "ended" in msg or "cancelled" in msg, msg


#: Writes two lines, then waits for the test's go (a file in the home) before the third:
#: the test reads the log while the job surely runs, however slow the machine is.
PAGED = (
    "import os, pathlib, time\nprint('a', flush=True)\nprint('bé', flush=True)\n"
    "go = pathlib.Path(os.environ['HOME']) / 'go-paged'\n"
    "while not go.exists():\n    time.sleep(0.05)\nprint('c')\n"
)


@pytest.mark.hub
def test_log_pages_through_what_there_is_then_follows_to_the_end(hub, monkeypatch, capsys):
    """``job log`` prints what the running job wrote so far (a two-byte character across
    pages intact); ``--follow`` polls every FOLLOW_INTERVAL until the job has ended."""
    lu = Person(hub, "lu")
    (lu.home / "paged.py").write_text(PAGED)
    job_id = _submitted_id(lu.ok("job", "submit", "paged.py", "--shared"))
    wait_for(lambda: "bé" in lu.ok("job", "log", str(job_id)), timeout=60, step=0.2)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(cli_jobs, "sleep", sleep)
    with GpuhubClient(f"{hub.url}/services/gpuhub", lu.token) as client:
        assert cli_jobs.print_log(client, job_id, follow=False) is False  # still running
        first = capsys.readouterr().out  # the runner's first line, then the script's
        assert first.startswith(f"gpuhub: job {job_id}: ") and first.endswith("\na\nbé\n")
        threading.Timer(2.0, (lu.home / "go-paged").touch).start()  # while --follow polls
        cli_jobs.cmd_job_log(argparse.Namespace(id=job_id, follow=True), client)
    out = capsys.readouterr()
    assert out.out == first + "c\ngpuhub: succeeded (exit code 0)\n"  # the runner's last line
    assert out.err.startswith(f"gpuhub: job {job_id} succeeded, exit code 0, after "), out.err
    assert slept and set(slept) == {cli_jobs.FOLLOW_INTERVAL}
    with GpuhubClient(f"{hub.url}/services/gpuhub", lu.token) as client:
        assert cli_jobs.print_log(client, job_id, follow=False) is True  # ended: complete


@pytest.mark.hub
def test_log_follow_ends_quietly_on_ctrl_c(hub, monkeypatch, capsys) -> None:
    mo = Person(hub, "mo")
    (mo.home / "slow.py").write_text(SLOW)
    job_id = _submitted_id(mo.ok("job", "submit", "slow.py", "--shared"))
    wait_for(lambda: "started" in mo.ok("job", "log", str(job_id)), timeout=60, step=0.2)

    def ctrl_c(seconds: float) -> None:  # the person presses Ctrl-C while it waits
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_jobs, "sleep", ctrl_c)
    with GpuhubClient(f"{hub.url}/services/gpuhub", mo.token) as client:
        cli_jobs.cmd_job_log(argparse.Namespace(id=job_id, follow=True), client)
    out = capsys.readouterr()
    assert out.out.endswith("\nstarted\n") and out.err == "\n" and "Traceback" not in out.err
    assert mo.ok("job", "cancel", str(job_id)).startswith(f"job {job_id} cancelled")


@pytest.mark.hub
def test_cancel_a_queued_job_and_what_admins_see(hub, busy_pool) -> None:
    admin = Person(hub, "admin", exact=True)  # in the gpuhub-admin role by hub_config
    vic = Person(hub, "vic")
    (vic.home / "wait.py").write_text(TINY)
    pos = busy_pool.position  # every whole GPU is held
    out = vic.ok("job", "submit", "wait.py", "--gpus", "1")
    job_id = _submitted_id(out)
    assert f"queued at position {pos}" in out
    row = next(x for x in vic.ok("jobs").splitlines() if x.split()[0] == str(job_id))
    assert f"queued (#{pos})" in row
    lines = admin.ok("jobs", "--all").splitlines()
    assert lines[0].split()[:3] == ["ID", "USER", "NAME"]
    assert any(x.split()[:2] == [str(job_id), vic.name] for x in lines[1:])
    assert str(job_id) not in admin.ok("jobs")  # an admin's own unless told
    theirs = json.loads(admin.ok("jobs", "--user", vic.name, "--limit", "5", "--json"))
    assert [j["id"] for j in theirs["jobs"]] == [job_id]
    assert vic.ok("job", "cancel", str(job_id)).startswith(f"job {job_id} cancelled")
    assert vic.job(job_id)["status"] == "cancelled"


@pytest.mark.hub
def test_refusals_are_one_line_and_create_nothing(hub) -> None:
    lee = Person(hub, "lee")
    other = Person(hub, "max")
    (lee.home / "ok.py").write_text(TINY)
    (lee.home / "notes.txt").write_text("x")
    (lee.home / "escape.py").symlink_to(
        Path(os.path.realpath(hub.dir)) / "test_jupyterhub_config.py"
    )
    (other.home / "theirs.py").write_text(TINY)
    their_job = _submitted_id(other.ok("job", "submit", "theirs.py", "--shared"))

    assert "outside your home folder" in lee.refused("job", "submit", f"../{other.name}/theirs.py")
    assert "outside your home folder" in lee.refused("job", "submit", "/etc/passwd")
    msg = lee.refused("job", "submit", "escape.py")
    assert "links to" in msg and "outside your home folder" in msg
    assert "not a notebook or a script" in lee.refused("job", "submit", "notes.txt")
    # the service's refusals, in the command's words
    for too in ("30d", "30s"):  # the service's limits, in the command's words
        msg = lee.refused("job", "submit", "ok.py", "--max-runtime", too)
        assert "--max-runtime" in msg and "max_runtime_s" not in msg
    assert "--profile" in lee.refused("job", "submit", "ok.py", "--profile", "no-such-profile")
    assert "--schedule" in lee.refused("job", "submit", "ok.py", "--schedule", "61 * * * *")
    assert lee.refused("job", "submit", "ok.py", "--mig", "99g.1tb")
    # this hub runs jobs as local processes: one node each, said in the command's words
    msg = lee.refused("job", "submit", "ok.py", "--nodes", "2", "--gpus-per-node", "1")
    assert msg.endswith("(--nodes)") and "one node each" in msg and "Slurm" in msg, msg
    msg = lee.refused("job", "submit", "ok.py", "--nodes", "2", "--schedule", "@daily")
    assert msg.endswith("(--nodes)") and "one node each" in msg, msg
    (lee.home / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    msg = lee.refused("job", "submit", "nb.ipynb", "-p", f"blob={json.dumps('x' * 70000)}")
    assert msg.startswith("parameters (-p): ") and "64 KiB" in msg
    # another user's job is not found
    for action in ("show", "log", "cancel"):
        assert str(their_job) in lee.refused("job", action, str(their_job))
    assert lee.job_ids() == []
    assert lee.ok("jobs").strip() == "no jobs"
    assert "no schedules" in lee.ok("job", "schedules")
    other.run("job", "cancel", str(their_job))  # (it may have ended already)


@pytest.mark.hub
def test_schedules(hub) -> None:
    ned = Person(hub, "ned")
    (ned.home / "work" / "nightly.py").write_text(TINY)
    out = ned.ok("job", "submit", "work/nightly.py", "--shared", "--name", "nightly",
                 "--schedule", "0 2 * * *")  # fmt: skip
    assert (
        out.startswith("schedule ")
        and "(nightly) created: work/nightly.py at '0 2 * * *' UTC" in out
    )
    def_id = out.split()[1]
    lines = ned.ok("job", "schedules").splitlines()
    assert lines[1].split()[:2] == [def_id, "nightly"] and "active" in lines[1]
    assert "paused" in ned.ok("job", "pause", def_id)
    assert json.loads(ned.ok("job", "schedules", "--json"))["definitions"][0]["paused"] is True
    assert "next run" in ned.ok("job", "resume", def_id)
    assert "removed" in ned.ok("job", "unschedule", def_id)
    assert "no schedules" in ned.ok("job", "schedules")
    assert def_id in ned.refused("job", "pause", def_id)
    assert ned.job_ids() == []  # a schedule submits nothing until its time
