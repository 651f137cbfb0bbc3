"""Batch jobs through the REST API, end to end: a real JupyterHub, its proxy, the gpuhub
service and the local executor running tiny scripts and notebooks as real processes.

The pool is two simulated GPUs; every user has the default quota (2 GPU units). Jobs
run in ``<state>/homes/<user>`` like the local spawner's servers.
"""

from __future__ import annotations

import json
import signal
import time
from types import SimpleNamespace

import httpx
import pytest

from tests.support import http
from tests.support.hub import Hub, wait_for
from tests.support.jobs import notebook

pytestmark = [pytest.mark.hub, pytest.mark.timeout(180)]

EXTRA = """
c.JobManager.tick_interval = 0.2
c.JobManager.stop_grace = 2
"""
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n"
WAIT_FOR_FLAG = """
import os, pathlib, time
flag = pathlib.Path(os.environ["HOME"]) / "go"
while not flag.exists():
    time.sleep(0.05)
print("flag seen", flush=True)
"""


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """A hub with users alice, bob and an admin, and a client for each."""
    hub = Hub(
        tmp_path_factory.mktemp("jobs"),
        env={"GPUHUB_SIMULATED_SPEC": "n1: 2xH100-80GB"},
        extra_config=EXTRA,
    )
    clients = []
    try:
        hub.start()
        admin = hub.credentials()["admin_user"]
        ns = SimpleNamespace(hub=hub, homes=hub.state / "homes")
        for name in ("alice", "bob", admin):
            client = hub.client(hub.add_user(name))
            clients.append(client)
            setattr(ns, "admin" if name == admin else name, client)
        yield ns
    finally:
        for c in clients:
            c.close()
        try:
            for pid_file in (hub.state / "homes").glob("*/gpuhub-jobs/*/.runner.json"):
                pid = json.loads(pid_file.read_text())["pid"]
                try:  # a job a failed test left running
                    import os

                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        finally:
            hub.stop()


@pytest.fixture(autouse=True)
def _clean(w):
    """After each test: cancel live jobs, end leases, remove definitions and quotas."""
    yield
    for job in w.admin.get("/jobs", params={"status": ["queued", "starting", "running"]}).json()[
        "jobs"
    ]:
        w.admin.delete(f"/jobs/{job['id']}")
    for lease in w.admin.get("/leases").json()["leases"]:
        w.admin.delete(f"/leases/{lease['id']}")
    for d in w.admin.get("/job-definitions").json()["definitions"]:
        w.admin.delete(f"/job-definitions/{d['id']}")


def submitted(client: httpx.Client, body: dict, **kw) -> dict:
    r = client.post("/jobs", json=body, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def wait_status(client: httpx.Client, job_id: int, *statuses: str, timeout: float = 60) -> dict:
    def reached():
        job = client.get(f"/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(reached, timeout=timeout, step=0.1)


def everything(w) -> dict:
    """What a refused request must leave alone: jobs, leases (all), definitions."""
    statuses = ["queued", "active", "released", "cancelled", "refused"]
    return {
        "jobs": w.admin.get("/jobs").json()["jobs"],
        "leases": [x["id"] for x in w.admin.get("/leases", params={"status": statuses}).json()["leases"]],
        "definitions": w.admin.get("/job-definitions").json()["definitions"],
    }  # fmt: skip


# -- a job to its end --------------------------------------------------------------------


def test_a_notebook_job_succeeds_with_its_output_log_and_gpu_hours(w):
    nb = notebook("print('loss', lr * 2)", parameters="lr = 0.1")
    body = {"path": "work/train.ipynb", "notebook": nb, "parameters": {"lr": 0.5}}
    job = submitted(w.alice, body)
    assert job["user"] == "alice" and job["name"] == "train" and job["kind"] == "notebook"
    assert job["status"] in ("queued", "starting", "running") and job["executor"] == "local"
    assert job["profile"] == "gpu-1" and job["shape_text"] == "1x GPU"
    done = wait_status(w.alice, job["id"], "succeeded", "failed")
    assert done["status"] == "succeeded", done
    assert done["exit_code"] == 0 and done["gpu_hours"] > 0 and done["devices"]
    lease = w.alice.get(f"/leases/{done['lease_id']}").json()
    assert lease["status"] == "released" and lease["label"] == f"job:alice/{job['id']}"
    assert lease["end_reason"] == f"job {job['id']} succeeded"
    assert lease["gpu_hours"] == done["gpu_hours"]
    executed = w.homes / "alice" / done["output_notebook"]
    cells = json.loads(executed.read_text())["cells"]
    assert any(
        "loss 1.0" in "".join(o.get("text", "")) for c in cells for o in c.get("outputs", [])
    )
    log = w.alice.get(f"/jobs/{job['id']}/log").json()
    assert "loss 1.0" in log["text"] and log["complete"] is True
    assert (w.homes / "alice" / done["folder"] / "artifacts").is_dir()
    listed = w.alice.get("/jobs").json()["jobs"]
    assert listed[0]["id"] == job["id"]


def test_a_failing_script_is_failed_with_its_log(w):
    job = submitted(w.alice, {"path": "bad.py", "script": "print('oops')\nraise SystemExit(4)\n"})
    done = wait_status(w.alice, job["id"], "failed", "succeeded")
    assert done["status"] == "failed" and done["exit_code"] == 4
    assert "oops" in w.alice.get(f"/jobs/{job['id']}/log").json()["text"]
    r = w.alice.delete(f"/jobs/{job['id']}")
    assert r.status_code == 409 and r.json()["error"] == "job_ended"


def test_a_failing_script_with_a_retry_runs_again_and_shows_both_attempts(w):
    body = {"path": "flaky.py", "script": "import os\nprint('attempt', os.environ['GPUHUB_ATTEMPT'])\n"
            "raise SystemExit(2 - int(os.environ['GPUHUB_ATTEMPT']))\n",
            "retry": {"failed": 1, "backoff_s": 0}}  # fmt: skip
    job = submitted(w.alice, body)
    assert job["tier"] == "guaranteed" and job["attempt"] == 1
    assert job["retry"] == {"preempted": 10, "node_failed": 1, "failed": 1, "out_of_memory": 0,
                            "backoff_s": 0, "backoff_max_s": 3600}  # fmt: skip
    done = wait_status(w.alice, job["id"], "succeeded", "failed")
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    first, second = done["attempts"]
    assert (first["status"], first["failure"], first["exit_code"]) == ("failed", "failed", 1)
    assert (second["status"], second["exit_code"]) == ("succeeded", 0)
    assert first["lease_id"] != second["lease_id"] == done["lease_id"]
    assert done["next_attempt_at"] is None and done["preemption"] is None
    log = w.alice.get(f"/jobs/{job['id']}/log").json()["text"]
    assert "attempt 1" in log and "--- attempt 2 (after failed) ---" in log and "attempt 2" in log
    r = w.alice.get("/jobs", params={"status": "preempted"})
    assert r.status_code == 200 and r.json()["jobs"] == []


def test_idempotent_submit_replays_and_refuses_a_different_body(w):
    body = {"path": "once.py", "script": "print(1)\n"}
    headers = {"Idempotency-Key": "job-key-1"}
    first = submitted(w.alice, body, headers=headers)
    again = w.alice.post("/jobs", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    other = w.alice.post("/jobs", json={**body, "script": "print(2)\n"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_conflict"


# -- cancel --------------------------------------------------------------------------------


def test_cancel_a_queued_job_behind_a_full_pool(w):
    for _ in range(2):
        assert w.bob.post("/leases", json={"shape": {"kind": "gpu"}}).status_code == 201
    job = submitted(w.alice, {"path": "wait.py", "script": SLEEPER})
    assert job["status"] == "queued" and job["position"] == 1
    # why it waits, as for a server's spawn: the reason and the estimate
    assert job["reason"].startswith("Queued at position 1: all 2 GPUs are held; "), job["reason"]
    listed = {j["id"]: j for j in w.alice.get("/jobs").json()["jobs"]}
    # the list explains it the same way (the estimate's minute may have moved on)
    assert listed[job["id"]]["reason"].split(";")[0] == job["reason"].split(";")[0]
    time.sleep(0.5)  # a few ticks: still queued
    assert w.alice.get(f"/jobs/{job['id']}").json()["status"] == "queued"
    r = w.alice.delete(f"/jobs/{job['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["gpu_hours"] == 0
    assert w.alice.get(f"/leases/{job['lease_id']}").json()["status"] == "cancelled"


def test_cancel_a_running_job_stops_it(w):
    job = submitted(w.alice, {"path": "sleep.py", "script": SLEEPER})
    running = wait_status(w.alice, job["id"], "running")
    assert running["started_at"] and running["elapsed_s"] is not None
    log = f"/jobs/{job['id']}/log"
    wait_for(lambda: "sleeping" in w.alice.get(log).json()["text"], timeout=30)
    assert w.alice.get(log).json()["complete"] is False
    r = w.alice.delete(f"/jobs/{job['id']}")
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"]
    assert w.alice.get(f"/leases/{job['lease_id']}").json()["status"] == "released"
    assert "sleeping" in w.alice.get(log).json()["text"]
    assert w.alice.get(log).json()["complete"] is True


# -- who sees what -----------------------------------------------------------------------------


def test_users_see_only_their_own_jobs(w):
    job = submitted(w.alice, {"path": "mine.py", "script": "print(1)\n"})
    for method, path in [
        ("GET", f"/jobs/{job['id']}"),
        ("DELETE", f"/jobs/{job['id']}"),
        ("GET", f"/jobs/{job['id']}/log"),
    ]:
        r = w.bob.request(method, path)
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    assert all(j["user"] == "bob" for j in w.bob.get("/jobs").json()["jobs"])
    assert w.bob.get("/jobs", params={"user": "alice"}).status_code == 403
    assert w.admin.get(f"/jobs/{job['id']}").status_code == 200
    assert job["id"] in [
        j["id"] for j in w.admin.get("/jobs", params={"user": "alice"}).json()["jobs"]
    ]
    assert w.alice.get("/jobs/99999999999").status_code == 404
    by_admin = w.admin.post("/jobs", json={"path": "x.py", "script": "print(1)\n", "user": "bob"})
    assert by_admin.status_code == 201 and by_admin.json()["user"] == "bob"
    r = w.alice.post("/jobs", json={"path": "x.py", "script": "print(1)\n", "user": "bob"})
    assert r.status_code == 403


# -- refusals: 4xx naming the field, nothing created ----------------------------------------


BIG_PARAMS = {f"p{i}": "x" * 700 for i in range(99)}  # ~70 KiB as JSON


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "../../etc/passwd", "script": "x"}, "path"),
        ({"path": "../../etc/x.py", "script": "x"}, "path"),
        ({"path": "/etc/passwd.py", "script": "x"}, "path"),
        ({"path": "~root/x.py", "script": "x"}, "path"),
        ({"path": "a//b.py", "script": "x"}, "path"),
        ({"path": "a\\b.py", "script": "x"}, "path"),
        ({"path": "notes.txt", "script": "x"}, "path"),
        ({"path": "fake.ipynb", "notebook": {"cells": "not a notebook"}}, "notebook"),
        ({"path": "fake.ipynb", "notebook": {"nbformat": 4, "cells": [{"x": 1}]}}, "notebook"),
        ({"path": "fake.ipynb", "script": "print(1)"}, "notebook"),
        ({"path": "n.ipynb", "notebook": notebook("1"), "parameters": BIG_PARAMS}, "parameters"),
        (
            {"path": "n.ipynb", "notebook": notebook("1"), "parameters": {"not-a-name": 1}},
            "parameters",
        ),
        (
            {
                "path": "n.ipynb",
                "notebook": notebook("1"),
                "parameters": {f"p{i}": i for i in range(101)},
            },
            "parameters",
        ),
        ({"path": "a.py", "script": "x", "max_runtime_s": 10}, "max_runtime_s"),
        ({"path": "a.py", "script": "x", "profile": "no-such"}, "profile"),
        ({"path": "a.py", "script": "x", "name": "a\nb"}, "name"),
        ({"path": "a.py", "script": "x", "surprise": 1}, "surprise"),
        ({"path": "a.py", "script": "x", "gpus": "2"}, "gpus"),
        ({"path": "a.py", "script": "x", "tier": "cheap"}, "tier"),
        ({"path": "a.py", "script": "x", "retry": {"failed": "1"}}, "retry.failed"),
        ({"path": "a.py", "script": "x", "retry": {"failed": 101}}, "retry.failed"),
        ({"path": "a.py", "script": "x", "retry": {"timed_out": 1}}, "retry.timed_out"),
        ({"path": "a.py", "script": "x", "retry": {"backoff_s": 9, "backoff_max_s": 8}},
         "retry.backoff_max_s"),
    ],
)  # fmt: skip
def test_bad_submissions_are_refused_naming_the_field_and_create_nothing(w, body, field):
    before = everything(w)
    r = w.alice.post("/jobs", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.json()
    assert everything(w) == before


def test_job_bodies_may_be_large_but_other_routes_keep_64_kib(w):
    big = "# " + "x" * (200 * 1024) + "\nprint('big')\n"
    job = submitted(w.alice, {"path": "big.py", "script": big})
    wait_status(w.alice, job["id"], "succeeded")
    r = w.alice.post("/leases", json={"shape": {"kind": "gpu"}, "label": "x" * (100 * 1024)})
    assert r.status_code == 413 and "64 KiB" in r.json()["message"]
    r = w.alice.post("/jobs", content=b"{" + b" " * (17 * 1024 * 1024) + b"}")
    assert r.status_code == 413 and "16 MiB" in r.json()["message"]


# -- definitions ----------------------------------------------------------------------------


def test_job_definitions_create_list_pause_delete(w):
    body = {"path": "nightly.py", "script": "print(1)\n", "schedule": "0 2 * * *"}
    r = w.alice.post("/job-definitions", json=body)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["schedule"] == "0 2 * * *" and d["paused"] is False and d["next_run_at"]
    assert d["next_run_at"].endswith("02:00:00+00:00") and d["profile"] == "gpu-1"
    assert [x["id"] for x in w.alice.get("/job-definitions").json()["definitions"]] == [d["id"]]
    assert w.bob.get(f"/job-definitions/{d['id']}").status_code == 404
    assert w.bob.patch(f"/job-definitions/{d['id']}", json={"paused": True}).status_code == 404
    paused = w.alice.patch(f"/job-definitions/{d['id']}", json={"paused": True}).json()
    assert paused["paused"] is True and paused["next_run_at"] is None
    r = w.alice.patch(f"/job-definitions/{d['id']}", json={"paused": "yes"})
    assert r.status_code == 400 and r.json()["field"] == "paused"
    resumed = w.alice.patch(f"/job-definitions/{d['id']}", json={"paused": False}).json()
    assert resumed["next_run_at"] == d["next_run_at"]
    assert w.alice.delete(f"/job-definitions/{d['id']}").status_code == 204
    assert w.alice.get(f"/job-definitions/{d['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "n.py", "script": "x", "schedule": "0 2 * *"}, "schedule"),
        ({"path": "n.py", "script": "x", "schedule": "61 * * * *"}, "schedule"),
        ({"path": "../n.py", "script": "x", "schedule": "0 2 * * *"}, "path"),
        ({"path": "n.py", "script": "x"}, "schedule"),
        ({"path": "n.py", "script": "x", "schedule": "0 2 * * *", "profile": "nope"}, "profile"),
        ({"path": "n.py", "script": "x", "schedule": "0 2 * * *", "tier": "on"}, "tier"),
        ({"path": "n.py", "script": "x", "schedule": "0 2 * * *", "retry": {"x": 1}}, "retry.x"),
    ],
)
def test_bad_definitions_are_refused(w, body, field):
    before = everything(w)
    r = w.alice.post("/job-definitions", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert everything(w) == before


# -- a service restart --------------------------------------------------------------------------


def test_a_running_job_survives_a_service_restart_and_ends_once(w):
    home = w.homes / "alice"
    (home / "go").unlink(missing_ok=True)
    job = submitted(w.alice, {"path": "flag.py", "script": WAIT_FOR_FLAG})
    running = wait_status(w.alice, job["id"], "running")
    pid_file = w.homes / "alice" / running["folder"] / ".runner.json"
    pid = json.loads(pid_file.read_text())["pid"]
    w.hub.kill_service()  # the supervisor starts it again
    wait_for(lambda: http.get(w.hub.api, timeout=2).status_code == 200, timeout=60, step=0.2)
    again = wait_for(lambda: w.alice.get(f"/jobs/{job['id']}").status_code == 200 and w.alice.get(f"/jobs/{job['id']}").json(), timeout=30)  # fmt: skip
    assert again["status"] == "running"
    assert json.loads(pid_file.read_text())["pid"] == pid  # taken up, not started again
    (home / "go").touch()
    done = wait_status(w.alice, job["id"], "succeeded", "failed")
    assert done["status"] == "succeeded", done
    assert w.alice.get(f"/jobs/{job['id']}/log").json()["text"].count("flag seen") == 1
    statuses = ["queued", "active", "released", "cancelled", "refused"]
    mine = [
        x for x in w.admin.get("/leases", params={"status": statuses}).json()["leases"]
        if x["label"] == f"job:alice/{job['id']}"
    ]  # fmt: skip
    assert [x["status"] for x in mine] == ["released"]
    assert mine[0]["end_reason"] == f"job {job['id']} succeeded"
    (home / "go").unlink()
