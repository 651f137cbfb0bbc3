"""jupyter_gpuhub in a real user server: spawned by a real hub with the local-process
spawner on the embedded default's simulated pool.

The server loads the extension because the wheel's config enables it; the routes answer
through the hub's proxy; the sampler's activity reports reach the real gpuhub service; the
``gpuhub`` command is on the server's PATH and uses the server's own token.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.support import http
from tests.support.hub import Hub, wait_for

pytestmark = [pytest.mark.hub, pytest.mark.timeout(180)]

FAST = {"GPUHUB_SPAWNER": "local", "GPUHUB_POLL_INTERVAL": "0.2"}
EXTRA = """
c.Spawner.args = [*c.Spawner.args, "--GpuhubExtension.interval=0.2",
                  "--GpuhubExtension.report_interval=1"]
"""


def environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = Hub(tmp_path_factory.mktemp("extension-hub"), env=FAST, extra_config=EXTRA)
    pids: list[int] = []
    hub.pids = pids
    try:
        hub.start()
        yield hub
    finally:
        try:
            hub.hub_api("DELETE", "users/ada/server")
            time.sleep(1)
        finally:
            hub.stop()
            for pid in pids:  # servers run in sessions of their own
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_a_users_server_shows_its_lease_and_reports_activity(hub):
    token = hub.add_user("ada")
    r = hub.spawn("ada", {"profile": "gpu-2"})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready("ada", timeout=60)
    pid, lease_id = server["state"]["pid"], server["state"]["lease_id"]
    hub.pids.append(pid)
    own = http.client(
        base_url=f"{hub.url}/user/ada/gpuhub/api/v1/",
        headers={"Authorization": f"token {token}"},
        timeout=15,
    )

    def devices():
        body = own.get("devices").json()
        return body if len(body["devices"]) == 2 and body["devices"][1]["latest"] else None

    body = wait_for(devices)
    assert body["lease_id"] == lease_id and body["simulated"] is True and body["error"] is None
    assert all(d["simulated"] and d["kind"] == "gpu" for d in body["devices"])
    lease = own.get("lease").json()
    assert lease["message"] is None and lease["lease"]["id"] == lease_id
    assert [d["uuid"] for d in body["devices"]] == [d["uuid"] for d in lease["lease"]["devices"]]
    me = own.get("me")
    assert me.status_code == 200 and me.json()["name"] == "ada", me.text
    assert "gpuhub_server_device_memory_used_mb{" in own.get("metrics").text
    own.close()

    # the activity report reached the service
    admin = hub.client(hub.admin_token)
    activity = wait_for(lambda: admin.get(f"/leases/{lease_id}").json().get("activity"))
    assert {d["uuid"] for d in activity["devices"]} == {d["uuid"] for d in body["devices"]}
    admin.close()

    # the gpuhub command is on the server's PATH and uses the server's own token
    env = environ(pid)
    exe = shutil.which("gpuhub", path=env["PATH"])
    assert exe, env["PATH"]
    clean = {k: v for k, v in env.items() if k not in ("GPUHUB_URL", "GPUHUB_TOKEN")}
    done = subprocess.run(
        [exe, "quota", "show"], env=clean, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
