"""A GPU spawn in progress survives a restart of the gpuhub service (real hub, local spawner).

A ``pre_spawn_hook`` (test configuration only) holds the spawn until the test has killed
the gpuhub service process, so the spawner's lease request meets a service that is not
there; the spawner retries it with one idempotency key until the service is back, and the
server starts holding exactly one lease.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.hub import Hub

pytestmark = [pytest.mark.hub, pytest.mark.timeout(240)]

USER = "restart"

HOLD_HOOK = """
import asyncio as _asyncio, os as _os, pathlib as _pathlib


async def _hold_spawn(spawner):
    # the test kills the gpuhub service while this spawn waits here
    gate = _pathlib.Path(_os.environ["GPUHUB_TEST_GATE"])
    (gate / "spawning").touch()
    for _ in range(600):
        if (gate / "go").exists():
            return
        await _asyncio.sleep(0.05)


c.Spawner.pre_spawn_hook = _hold_spawn
"""


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """A hub whose spawns wait for ``go`` in the gate folder; yields (hub, gate)."""
    work = tmp_path_factory.mktemp("spawn-restart")
    gate = work / "gate"
    gate.mkdir()
    hub = Hub(
        work / "hub",
        env={"GPUHUB_SPAWNER": "local", "GPUHUB_POLL_INTERVAL": "0.2",
             "GPUHUB_TEST_GATE": str(gate)},
        extra_config=HOLD_HOOK,
    )  # fmt: skip
    try:
        hub.start()
        yield hub, gate
    finally:
        try:
            if hub.proc is not None:
                hub.hub_api("DELETE", f"users/{USER}/server")
                time.sleep(1)
        finally:
            hub.stop()


def wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.05)


def test_spawn_survives_a_restart_of_the_service(gated) -> None:
    hub, gate = gated
    hub.add_user(USER)
    answers: list = []
    spawning = threading.Thread(
        target=lambda: answers.append(hub.spawn(USER, {"profile": "gpu-1"})), daemon=True
    )
    spawning.start()
    wait_for(gate / "spawning", 30)
    killed = hub.kill_service()
    (gate / "go").touch()  # the lease request goes out while the service is gone
    spawning.join(60)
    assert answers and answers[0].status_code in (201, 202), answers
    server = hub.wait_ready(USER, timeout=120)

    _, pid = hub.service_pids()
    assert pid is not None and pid != killed  # it really was restarted
    log = hub.log_tail(2000)
    assert f"gpuhub service for {USER}:" in log and "retry 1 in" in log, log[-4000:]
    with hub.client(hub.admin_token) as admin:
        statuses = ["queued", "active", "released", "cancelled", "refused"]
        r = admin.get("/leases", params={"user": USER, "status": statuses})
    assert r.status_code == 200, r.text
    leases = r.json()["leases"]
    assert [(x["status"], x["label"]) for x in leases] == [("active", f"server:{USER}/")]
    assert server["state"]["lease_id"] == leases[0]["id"]

    hub.stop_server(USER)
