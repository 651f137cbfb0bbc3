"""Batch jobs end to end: a real hub in Docker mode, a user's server in ``gpuhub/pytorch``
(built from ``images/`` by the first Docker test of the run), jobs in containers of the
same image.

A user spawns, promotes the example training notebook to a job through their server's
``gpuhub/api/v1/jobs`` route, and stops the server; the job runs on, finishes, leaves an
executed notebook with outputs in their home volume, and its GPU-hours are in the
ledger. A running job outlives a hub restart and a kill of the gpuhub service: the
restarted service re-adopts the same container under the same job id, and the job ends
and is booked once. ``GPUHUB_TEST_NO_DOCKER=1`` leaves this module out.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.support import http
from tests.support.docker import engine_client, read_home
from tests.support.hub import Hub, wait_for
from tests.support.paths import REPO

pytestmark = [pytest.mark.hub, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "train-classifier.ipynb"
RUN = secrets.token_hex(3)
USER = f"jh{RUN}-ada"
PREFIX = f"gpuhubjh{RUN}"  # this module's server containers: {PREFIX}-{user}
IMAGE = "gpuhub/pytorch:latest"
CONFIG = f"""
c.DockerSpawner.image = {IMAGE!r}
c.DockerSpawner.allowed_images = [{IMAGE!r}]
c.DockerSpawner.prefix = {PREFIX!r}
c.GPUSpawnerMixin.profiles = [
    {{"name": "gpu-1", "display_name": "1 GPU", "default": True,
      "shape": {{"kind": "gpu", "count": 1}}, "image": {IMAGE!r}, "mem_limit": "2G"}},
]
"""
# a script that runs until the test lets it finish (a file "go" in its output folder), at
# most 5 minutes: long enough to restart the hub and the service under it
SLOW = """
import os, time
out = os.environ["GPUHUB_OUTPUT_DIR"]
print("job", os.environ["GPUHUB_JOB_ID"], "starts", flush=True)
for i in range(600):
    if os.path.exists(os.path.join(out, "go")):
        break
    time.sleep(0.5)
    print("tick", i, flush=True)
open(os.path.join(out, "done.txt"), "w").write("done")
"""


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def _job_containers(job_id: int | None = None) -> list[str]:
    """This module's user's job containers (of job ``job_id``: another hub's jobs have
    the same ids)."""
    labels = [f"gpuhub.user={USER}"] + ([f"gpuhub.job={job_id}"] if job_id is not None else [])
    filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
    return _docker("ps", "-aq", *filters).stdout.split()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    engine_client(IMAGE).close()  # the images built, the engine answering
    env = {"GPUHUB_SPAWNER": "docker", "GPUHUB_DOCKER_NETWORK": "host",
           "GPUHUB_POLL_INTERVAL": "0.2"}  # fmt: skip
    h = Hub(tmp_path_factory.mktemp("jobs-hub"), env=env, extra_config=CONFIG)
    try:
        h.start()
        yield h
    finally:
        try:
            if h.proc is not None and h.server(USER) is not None:
                h.stop_server(USER)
        finally:
            h.stop()
            for cid in (
                _job_containers()
                + _docker("ps", "-aq", "--filter", f"name=^{PREFIX}-").stdout.split()
            ):
                _docker("rm", "-f", cid)
            _docker("volume", "rm", "-f", f"gpuhub-home-{USER}")


def _job(api: httpx.Client, job_id: int) -> dict:
    r = api.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_promoted_notebook_runs_on_after_its_server_stops(hub: Hub) -> None:
    token = hub.add_user(USER)
    api = hub.client(token)
    assert hub.spawn(USER, {"profile": "gpu-1"}).status_code in (201, 202)
    hub.wait_ready(USER, timeout=120)
    server = http.client(
        base_url=f"{hub.url}/user/{USER}", headers={"Authorization": f"token {token}"},
        timeout=60,
    )  # fmt: skip
    # the example goes into the user's home, as if they had written it there
    nb = json.loads(EXAMPLE.read_text())
    r = server.put("/api/contents/train.ipynb", json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text
    # "Run as GPU job": the server extension snapshots it and submits it with the
    # server's own token, in the server's environment (profile)
    r = server.post(
        "/gpuhub/api/v1/jobs",
        json={"path": "train.ipynb", "parameters": {"epochs": 2}, "max_runtime_s": 900},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["user"] == USER and job["profile"] == "gpu-1" and job["kind"] == "notebook"
    assert job["image"] == IMAGE and job["image_digest"].startswith("sha256:")
    assert job["executor"] == "docker" and job["parameters"] == {"epochs": 2}

    hub.stop_server(USER, timeout=60)  # the job does not depend on the server
    done = wait_for(
        lambda: (
            (j := _job(api, job["id"]))["status"] not in ("queued", "starting", "running") and j
        ),
        timeout=300,
        step=1,
    )
    log = api.get(f"/jobs/{job['id']}/log").json()["text"]
    assert done["status"] == "succeeded", f"{done}\n{log}"
    assert done["exit_code"] == 0 and done["gpu_hours"] > 0

    executed = json.loads(read_home(USER, done["output_notebook"]))
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert outputs, "the executed notebook has no outputs"
    text = json.dumps(outputs)
    assert "epoch" in text.lower()
    # the injected parameters cell papermill adds
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert json.loads(read_home(USER, f"{done['folder']}/exit_status.json"))["exit_code"] == 0

    # the ledger: the job's lease, released once, with the job's GPU-hours
    lease = api.get(f"/leases/{done['lease_id']}").json()
    assert lease["status"] == "released" and lease["label"] == f"job:{USER}/{job['id']}"
    usage = api.get("/usage", params={"by": "user"}).json()
    assert usage["total_gpu_hours"] >= done["gpu_hours"] > 0
    assert not _job_containers(job["id"]), "the finished job's container is left behind"


def test_a_running_job_outlives_hub_and_service_restarts(hub: Hub) -> None:
    token = hub.add_user(USER)
    api = hub.client(token)
    r = api.post(
        "/jobs",
        json={"path": "slow.py", "script": SLOW, "profile": "gpu-1", "max_runtime_s": 600},
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    wait_for(lambda: _job(api, job_id)["status"] == "running", timeout=120)
    [container] = _job_containers(job_id)

    hub.restart()
    api = hub.client(token)
    assert _job(api, job_id)["status"] == "running"
    hub.kill_service()
    wait_for(lambda: api.get("/jobs").status_code == 200, timeout=60)
    assert _job(api, job_id)["status"] == "running"
    assert _job_containers(job_id) == [container], "the job was started again"
    job = _job(api, job_id)
    go = f"/home/jovyan/{job['folder']}/artifacts/go"
    r = _docker("exec", container, "touch", go)
    assert r.returncode == 0, r.stderr

    done = wait_for(
        lambda: (j := _job(api, job_id))["status"] != "running" and j, timeout=180, step=1
    )
    assert done["status"] == "succeeded", api.get(f"/jobs/{job_id}/log").json()["text"]
    log = api.get(f"/jobs/{job_id}/log").json()["text"]
    assert log.count("starts") == 1 and "tick 3" in log  # it ran through both restarts
    assert read_home(USER, f"{done['folder']}/artifacts/done.txt") == "done"
    # one lease for the job, released once
    leases = api.get("/leases", params={"status": ["released", "active", "queued"]}).json()
    mine = [x for x in leases["leases"] if x["label"] == f"job:{USER}/{job_id}"]
    assert len(mine) == 1 and mine[0]["status"] == "released"
    assert mine[0]["id"] == done["lease_id"]
