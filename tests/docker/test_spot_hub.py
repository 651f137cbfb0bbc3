"""A spot training job preempted and resumed, end to end: a real hub in Docker mode on a
one-GPU simulated pool, the example notebook as a spot job in ``gpuhub/pytorch``.

The job trains; another user asks for the GPU in the guaranteed tier; the job gets the
notice (``SIGUSR1`` to its kernel, the notice file), saves a checkpoint and stops; its
attempt ends ``preempted``, the guaranteed request gets the GPU, and when that is released
the job's second attempt resumes from the checkpoint and finishes. The statement books
both attempts at the spot rate. ``GPUHUB_TEST_NO_DOCKER=1`` leaves this module out.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.docker import engine_client, read_home
from tests.support.hub import Hub, wait_for
from tests.support.paths import REPO

pytestmark = [pytest.mark.hub, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "train-classifier.ipynb"
RUN = secrets.token_hex(3)
USER = f"sp{RUN}-hopper"  # the spot job's owner
OTHER = f"sp{RUN}-knuth"  # asks for the GPU in the guaranteed tier
IMAGE = "gpuhub/pytorch:latest"
CONFIG = f"""
c.DockerSpawner.image = {IMAGE!r}
c.DockerSpawner.allowed_images = [{IMAGE!r}]
c.GPUSpawnerMixin.profiles = [
    {{"name": "gpu-1", "display_name": "1 GPU", "default": True,
      "shape": {{"kind": "gpu", "count": 1}}, "image": {IMAGE!r}, "mem_limit": "2G"}},
]
"""
EPOCHS = 40


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    engine_client(IMAGE).close()  # the images built, the engine answering
    env = {
        "GPUHUB_SPAWNER": "docker", "GPUHUB_DOCKER_NETWORK": "host",
        "GPUHUB_POLL_INTERVAL": "0.2", "GPUHUB_SIMULATED_SPEC": "n1: 1xH100-80GB",
        "GPUHUB_SPOT_MIN_RUNTIME_S": "0", "GPUHUB_SPOT_GRACE_S": "60",
    }  # fmt: skip
    h = Hub(tmp_path_factory.mktemp("spot-hub"), env=env, extra_config=CONFIG)
    try:
        h.start()
        yield h
    finally:
        h.stop()
        for cid in _docker("ps", "-aq", "--filter", f"label=gpuhub.user={USER}").stdout.split():
            _docker("rm", "-f", cid)
        _docker("volume", "rm", "-f", f"gpuhub-home-{USER}")


def test_a_preempted_spot_notebook_resumes_from_its_checkpoint_and_finishes(hub: Hub) -> None:
    api = hub.client(hub.add_user(USER))
    other = hub.client(hub.add_user(OTHER))

    def job() -> dict:
        r = api.get(f"/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def log() -> str:
        return api.get(f"/jobs/{job_id}/log").json()["text"]

    r = api.post(
        "/jobs",
        json={
            "path": "train.ipynb", "notebook": json.loads(EXAMPLE.read_text()),
            "profile": "gpu-1", "parameters": {"epochs": EPOCHS, "samples": 16384},
            "tier": "spot", "retry": {"preempted": 2, "backoff_s": 1}, "max_runtime_s": 900,
        },
    )  # fmt: skip
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert r.json()["tier"] == "spot"
    wait_for(lambda: "epoch 2/" in log(), timeout=240, step=0.5)

    # guaranteed work needs the only GPU: the spot lease gets the notice
    r = other.post("/leases", json={"shape": {"kind": "gpu", "count": 1}, "label": "needs it"})
    assert r.status_code == 201 and r.json()["status"] == "queued", r.text
    theirs = r.json()["id"]
    wait_for(lambda: job()["attempt"] == 2, timeout=120, step=0.5)
    first = job()["attempts"][0]
    assert (first["status"], first["tier"]) == ("preempted", "spot"), first
    assert "preemption notice: stopping after epoch" in log()
    mine = api.get(f"/leases/{first['lease_id']}").json()
    assert (mine["status"], mine["end_reason"]) == ("released", "preempted")
    assert mine["preemption"] is not None and mine["discount"] == 0.3
    # the guaranteed request got the GPU; when it is done, the job goes on
    wait_for(lambda: other.get(f"/leases/{theirs}").json()["status"] == "active", timeout=30)
    assert other.delete(f"/leases/{theirs}").status_code == 200

    done = wait_for(
        lambda: (j := job())["status"] not in ("queued", "starting", "running") and j,
        timeout=300,
        step=1,
    )
    text = log()
    assert done["status"] == "succeeded", f"{done}\n{text}"
    assert "--- attempt 2 (after preempted) ---" in text
    resumed = text.split("--- attempt 2")[1]
    assert "resuming from" in resumed and f"epoch {EPOCHS}/{EPOCHS}" in resumed
    assert "epoch 1/" not in resumed  # it went on, it did not start again
    metrics = json.loads(read_home(USER, f"{done['folder']}/artifacts/metrics.json"))
    assert metrics["attempt"] == 2 and len(metrics["history"]) == EPOCHS
    assert [a["status"] for a in done["attempts"]] == ["preempted", "succeeded"]

    # both attempts are on the statement, at the spot rate (H100: 2.0 x 0.3)
    rows = [x for x in api.get("/statements").json()["rows"] if x["tier"] == "spot"]
    assert len(rows) == 1 and rows[0]["leases"] == 2, rows
    assert rows[0]["credits"] == pytest.approx(rows[0]["gpu_hours"] * 2.0 * 0.3, abs=2e-6)
    spent = sum(a["gpu_hours"] for a in done["attempts"])
    assert rows[0]["gpu_hours"] == pytest.approx(spent, rel=1e-3)
    api.close()
    other.close()
