"""The local-process GPU spawner against a real hub and gpuhub service (simulated GPUs).

Servers are started through JupyterHub's REST API with JSON ``user_options`` (and once
through the spawn form, as a browser does); what a server got is read from its process
environment; leases are checked in the service.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.support import http
from tests.support.hub import Hub, descendants, pauses, put_notebook, wait_for

pytestmark = [pytest.mark.hub, pytest.mark.timeout(180)]

FAST = {"GPUHUB_SPAWNER": "local", "GPUHUB_POLL_INTERVAL": "0.2"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class Servers:
    """Starts, watches and stops users' servers of one hub; cleans up after the tests."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.admin = hub.client(hub.admin_token)  # the gpuhub API as test-admin
        self.pids: set[int] = set()

    def start(self, user: str, options: dict | None = None, **kw) -> httpx.Response:
        return self.hub.spawn(user, options, **kw)

    def model(self, user: str) -> dict | None:
        return self.hub.server(user)

    def wait(self, user: str, what: Callable[[dict | None], bool], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for pause in pauses():
            server = self.model(user)
            if what(server):
                if server and (server.get("state") or {}).get("pid"):
                    self.pids.add(server["state"]["pid"])
                return server
            if time.monotonic() > deadline:
                break
            time.sleep(pause)
        raise AssertionError(f"{user}'s server did not get there in {timeout}s: {server}")

    def wait_ready(self, user: str, timeout: float = 30) -> dict:
        return self.wait(user, lambda s: bool(s and s["ready"]), timeout)

    def stop(self, user: str) -> None:
        r = self.hub.hub_api("DELETE", f"users/{user}/server")
        assert r.status_code in (202, 204), r.text
        self.wait(user, lambda s: s is None)

    def lease(self, lease_id: int) -> dict:
        r = self.admin.get(f"/leases/{lease_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def leases_of(self, user: str) -> list[dict]:
        statuses = ["queued", "active", "released", "cancelled", "refused"]
        r = self.admin.get("/leases", params={"user": user, "status": statuses})
        assert r.status_code == 200, r.text
        return r.json()["leases"]

    def wait_lease(self, lease_id: int, status: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        for pause in pauses():
            if (lease := self.lease(lease_id))["status"] == status:
                return lease
            assert time.monotonic() < deadline, f"lease {lease_id} is not {status}: {lease}"
            time.sleep(pause)
        raise AssertionError("unreachable")

    def progress(self, user: str, until: Callable[[dict], bool], timeout: float = 30) -> list:
        """Read the spawn's progress event stream until an event satisfies ``until``."""
        return self.hub.progress_events(user, until, timeout)

    def cleanup(self) -> None:
        r = self.hub.hub_api("GET", "users")
        for user in r.json() if r.status_code == 200 else ():
            if user["servers"]:
                self.hub.hub_api("DELETE", f"users/{user['name']}/server")
        self.admin.close()

    def kill_leftovers(self) -> None:
        for pid in self.pids:  # servers run in their own sessions: the hub's stop spares them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"


def run_hub(tmp_path_factory, name: str, env: dict, extra_config: str = ""):
    hub = Hub(tmp_path_factory.mktemp(name), env={**FAST, **env}, extra_config=extra_config)
    servers = Servers(hub)
    try:
        hub.start()
        yield servers
    finally:
        try:
            servers.cleanup()
            time.sleep(1)
        finally:
            hub.stop()
            servers.kill_leftovers()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A hub with the embedded default's simulated pool and local GPU servers.

    Its servers outlive a hub restart (``GPUHUB_KEEP_SERVERS=1``), as in Docker mode, and
    a user may have named servers besides the default one, as a site's own configuration
    allows them (JupyterHub's ``allow_named_servers``).
    """
    yield from run_hub(
        tmp_path_factory, "spawner-local", {"GPUHUB_KEEP_SERVERS": "1"},
        extra_config="\nc.JupyterHub.allow_named_servers = True\n",
    )  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A hub whose pool is two GPUs, so that a third request waits in the queue."""
    yield from run_hub(
        tmp_path_factory, "spawner-queue", {"GPUHUB_SIMULATED_SPEC": "n1: 2xH100-80GB"}
    )


# -- start, environment, stop ----------------------------------------------------------


def test_rest_spawn_gets_the_leased_devices_and_stop_releases(servers):
    hub = servers.hub
    hub.add_user("ada")
    r = servers.start("ada", {"profile": "gpu-2"})
    assert r.status_code in (201, 202), r.text
    server = servers.wait_ready("ada")
    state = server["state"]
    assert state["gpuhub_state_version"] == 1 and state["pid"] > 0
    lease = servers.lease(state["lease_id"])
    assert lease["status"] == "active" and lease["label"] == "server:ada/"
    assert lease["profile"] == "gpu-2" and lease["shape"] == {"kind": "gpu", "count": 2}
    uuids = ",".join(d["uuid"] for d in lease["devices"])
    assert len(lease["devices"]) == 2

    env = environ(state["pid"])
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == uuids
    assert env["GPUHUB_LEASE_ID"] == str(lease["id"]) and env["GPUHUB_SIMULATED"] == "1"
    assert env["GPUHUB_NODE"] == lease["node"] and env["GPUHUB_PROFILE"] == "gpu-2"
    # no admin credential inside: the server's own token is its only one
    service_token = (hub.state / "gpuhub_service_token").read_text()
    for secret in (service_token, hub.admin_token):
        assert not any(secret in value for value in env.values())
    own = {"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"}
    api = env["GPUHUB_SERVICE_URL"].rstrip("/") + "/api/v1"
    me = http.get(f"{api}/me", headers=own, timeout=10)
    assert me.status_code == 200 and me.json()["name"] == "ada", me.text
    assert [x["id"] for x in me.json()["leases"]] == [lease["id"]]
    assert http.get(f"{api}/quotas", headers=own, timeout=10).status_code == 403

    servers.stop("ada")
    assert servers.wait_lease(lease["id"], "released")["end_reason"]
    assert not alive(state["pid"])
    # stopping again releases nothing twice
    assert [x["status"] for x in servers.leases_of("ada")] == ["released"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "gpu-1", "privileged": True}, "unknown option 'privileged'"),
        ({"profile": "tpu-9"}, "there is no profile 'tpu-9'"),
        ({"image": "evil/miner:latest"}, "image 'evil/miner:latest' is not offered"),
        ({"profile": "gpu-1", "image": "ubuntu"}, "image 'ubuntu' is not the image of profile gpu-1"),
        ({"profile": "gpu-2", "gpus": 8}, "profile gpu-2 offers 2 GPUs, not 8"),
        ({"profile": "mig-1g.5gb", "gpus": 3}, "it has no GPU count to choose"),
        ({"profile": "gpu-1", "group": "staff"}, "you are not a member of group 'staff'"),
        ({"profile": "cpu", "gpus": 1}, "profile cpu has no GPU (CPU only); leave gpus out"),
    ],
)  # fmt: skip
def test_crafted_user_options_are_refused_before_anything_starts(servers, options, message):
    servers.hub.add_user("mallory", groups=["students"])
    r = servers.start("mallory", options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert servers.model("mallory") is None
    assert servers.leases_of("mallory") == []


def test_refused_options_do_not_become_the_next_spawns_defaults(servers):
    hub = servers.hub
    hub.add_user("otto")
    r = servers.start("otto", {"profile": "gpu-2", "gpus": 8})
    assert r.status_code == 400, r.text
    # a request without options gets the default profile, not the refused options again
    r = servers.start("otto")
    assert r.status_code in (201, 202), r.text
    first = servers.lease(servers.wait_ready("otto")["state"]["lease_id"])
    assert first["profile"] == "gpu-1"
    servers.stop("otto")
    servers.wait_lease(first["id"], "released")
    # accepted options are the defaults; a refused request in between leaves them so
    assert servers.start("otto", {"profile": "gpu-2"}).status_code in (201, 202)
    second = servers.lease(servers.wait_ready("otto")["state"]["lease_id"])
    servers.stop("otto")
    servers.wait_lease(second["id"], "released")
    r = servers.start("otto", {"profile": "nope"})
    assert r.status_code == 400 and "there is no profile 'nope'" in r.json()["message"]
    assert servers.start("otto").status_code in (201, 202)
    third = servers.lease(servers.wait_ready("otto")["state"]["lease_id"])
    assert (second["profile"], third["profile"]) == ("gpu-2", "gpu-2")
    servers.stop("otto")
    servers.wait_lease(third["id"], "released")


def test_quota_refusal_names_the_quota(servers):
    servers.hub.add_user("quinn")
    r = servers.admin.put("/quotas/users/quinn", json={"max_units": 0})
    assert r.status_code == 200, r.text
    r = servers.start("quinn", {"profile": "gpu-1"})
    assert r.status_code == 403, r.text
    assert "user quinn uses 0 of their 0 GPU units" in r.json()["message"]
    events = servers.progress("quinn", lambda e: e.get("failed"))
    assert "Spawn failed: user quinn uses 0 of their 0 GPU units" in events[-1]["message"]
    assert servers.model("quinn") is None
    assert servers.leases_of("quinn") == []


def test_a_server_that_dies_gives_its_lease_back(servers):
    servers.hub.add_user("dora")
    assert servers.start("dora", {"profile": "mig-1g.5gb"}).status_code in (201, 202)
    state = servers.wait_ready("dora")["state"]
    lease = servers.lease(state["lease_id"])
    assert lease["devices"][0]["uuid"].startswith("MIG-")
    assert environ(state["pid"])["CUDA_VISIBLE_DEVICES"] == lease["devices"][0]["uuid"]
    os.kill(state["pid"], signal.SIGKILL)
    # the hub polls it (here: because of the stop request) and finds it dead
    r = servers.hub.hub_api("DELETE", "users/dora/server")
    assert r.status_code in (202, 204), r.text
    servers.wait_lease(lease["id"], "released")
    servers.wait("dora", lambda s: s is None)


def test_spawn_form_shows_profiles_availability_and_quota(servers):
    hub = servers.hub
    hub.add_user("fiona")
    with http.client(base_url=hub.url, headers=BROWSER, timeout=30) as browser:
        page = browser.get("/hub/login")
        xsrf = html.unescape(re.search(r'name="_xsrf"\s+value="([^"]*)"', page.text).group(1))
        password = hub.credentials()["user_password"]
        r = browser.post(
            "/hub/login", data={"username": "fiona", "password": password, "_xsrf": xsrf}
        )
        assert r.status_code == 302, r.text
        form = browser.get("/hub/spawn")
        assert form.status_code == 200, form.text
        text = form.text
        xsrf = re.search(r'xsrf_token: "([^"]+)"', text).group(1)
        assert re.findall(r'name="profile"[^>]*value="([^"]+)"', text) == [
            "gpu-1", "gpu-2", "mig-1g.5gb", "shared", "cpu",
        ]  # fmt: skip
        # the CPU-only profile says plainly that it has no GPU and costs no quota
        assert '<div class="gpuhub-shape">No GPU · quota-free</div>' in html.unescape(text)
        assert "Starts at once: no GPU is requested" in text
        assert 'value="gpu-1" checked' in text
        assert re.search(r"\d+ of 8 GPUs free", text), text
        assert "of 7 MIG 1g.5gb slices free" in text and "simulated" in text
        assert "Your quota: 0 of 2 GPUs in use" in text
        # the models behind each profile's shape (GET /me/options)
        assert "1 whole GPU · A100-80GB or H100-80GB" in html.unescape(text)
        assert "A shared GPU · L4-24GB" in html.unescape(text)
        # and the price of each GPU profile where the person chooses (credits_text)
        prices = re.findall(r'<span class="gpuhub-price">([^<]*)</span>', html.unescape(text))
        assert len(prices) == 4 and all(p.endswith(("credits/h", "GPU")) for p in prices), prices
        # a crafted form field is refused like a crafted REST request, and nothing starts
        r = browser.post("/hub/spawn", data={"_xsrf": xsrf, "profile": "gpu-1", "cmd": "sh"})
        assert r.status_code == 400 and "unknown option &#39;cmd&#39;" in r.text  # the form again
        assert servers.leases_of("fiona") == []
        r = browser.post("/hub/spawn", data={"_xsrf": xsrf, "profile": "shared"})
        assert r.status_code == 302, r.text
    state = servers.wait_ready("fiona")["state"]
    lease = servers.lease(state["lease_id"])
    assert lease["profile"] == "shared" and lease["devices"][0]["shared_by"] == 4
    servers.stop("fiona")
    servers.wait_lease(lease["id"], "released")


def test_a_cpu_server_starts_without_quota_holds_no_lease_and_sees_no_gpu(servers):
    hub = servers.hub
    token = hub.add_user("carla")
    own = {"Authorization": f"token {token}"}
    # no GPU unit and no GPU-hour left, and only gpu-1 allowed: every GPU profile is refused
    quota = {"max_units": 0, "gpu_hours": 0, "allowed_profiles": ["gpu-1"]}
    assert servers.admin.put("/quotas/users/carla", json=quota).status_code == 200
    r = servers.start("carla", {"profile": "gpu-1"})
    assert r.status_code == 403 and "user carla" in r.json()["message"], r.text
    # the CPU-only profile asks the scheduler for nothing, so no quota can refuse it
    r = servers.start("carla", {"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    state = servers.wait_ready("carla")["state"]
    assert "lease_id" not in state and servers.leases_of("carla") == []
    env = environ(state["pid"])
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["GPUHUB_NO_GPU"] == "1" and env["GPUHUB_PROFILE"] == "cpu"
    assert "GPUHUB_LEASE_ID" not in env and env["GPUHUB_SERVICE_URL"]

    # the server extension's GPU routes say "no GPU", not "no lease" and not an error
    ext = f"{hub.url}/user/carla/gpuhub/api/v1"
    devices = http.get(f"{ext}/devices", headers=own, timeout=10).json()
    assert (devices["lease_id"], devices["devices"], devices["error"]) == (None, [], None)
    assert devices["no_gpu"] is True and devices["profile"] == "cpu"
    lease = http.get(f"{ext}/lease", headers=own, timeout=10).json()
    assert lease == {
        "lease": None,
        "message": "This server has no GPU: its profile (cpu) is CPU only.",
    }
    me = http.get(f"{ext}/me", headers=own, timeout=10)
    assert me.status_code == 200 and me.json()["leases"] == [], me.text

    # /me/options lists it without a shape, whatever the quota's allowed_profiles say
    with hub.client(token) as client:
        options = client.get("/me/options").json()
    by_name = {p["name"]: p for p in options["profiles"]}
    assert set(by_name) == {"gpu-1", "cpu"}
    assert (by_name["cpu"]["shape"], by_name["cpu"]["text"]) == (None, "no GPU")

    # "Run as GPU job" from here goes to the pool: the dialog defaults to the GPU profile
    put_notebook(hub, "carla", token, "train.ipynb", "print(epochs)", parameters="epochs = 1")
    r = http.get(f"{ext}/jobs/parameters", params={"path": "train.ipynb"}, headers=own, timeout=30)
    d = r.json()["defaults"]
    assert (d["profile"], d["server_profile"], d["no_gpu"]) == ("gpu-1", "cpu", True), d
    assert d["current_shape"] == {"kind": "gpu", "count": 1} and d["error"] is None
    assert [s["current"] for s in d["shapes"]].count(True) == 1
    # a job on the CPU profile itself is refused with a sentence, and nothing is created
    body = {"path": "train.ipynb", "profile": "cpu", "parameters": {}}
    r = http.post(f"{ext}/jobs", json=body, headers=own, timeout=30)
    assert r.status_code == 400 and r.json()["field"] == "profile", r.text
    assert r.json()["message"].startswith("profile cpu has no GPU, and a job runs on one")
    assert servers.leases_of("carla") == []

    servers.stop("carla")
    assert not alive(state["pid"]) and servers.leases_of("carla") == []


def test_a_named_gpu_server_holds_its_own_lease_beside_a_cpu_server(servers):
    """JupyterHub's named servers: nora edits on a CPU server and trains on a named GPU
    one; each server is its own spawn, the GPU one holds its own lease, labelled with the
    server's name, and stopping it releases that lease only."""
    hub = servers.hub
    hub.add_user("nora")
    r = hub.hub_api("POST", "users/nora/servers/train", json={"user_options": {"profile": "gpu-1"}})
    assert r.status_code in (201, 202), r.text
    assert servers.start("nora", {"profile": "cpu"}).status_code in (201, 202)

    def named() -> dict | None:
        model = hub.hub_api("GET", "users/nora").json()["servers"].get("train")
        return model if model and model["ready"] else None

    train = wait_for(named, timeout=30)["state"]
    servers.pids.add(train["pid"])
    try:
        assert "lease_id" not in servers.wait_ready("nora")["state"]  # the CPU server's
        lease = servers.lease(train["lease_id"])
        assert lease["status"] == "active" and lease["label"] == "server:nora/train"
        assert environ(train["pid"])["CUDA_VISIBLE_DEVICES"] == lease["devices"][0]["uuid"]
        assert [x["id"] for x in servers.leases_of("nora")] == [lease["id"]]
    finally:
        r = hub.hub_api("DELETE", "users/nora/servers/train")
        assert r.status_code in (202, 204), r.text
    assert servers.wait_lease(lease["id"], "released")["end_reason"]
    wait_for(lambda: not alive(train["pid"]), timeout=30)
    assert hub.server("nora")["ready"]  # the default server runs on
    servers.stop("nora")


# -- the queue -------------------------------------------------------------------------


def test_queued_spawn_shows_its_position_and_starts_when_a_gpu_frees(small):
    hub = small.hub
    for name in ("q1", "q2", "q3", "q4"):
        hub.add_user(name)
    for name in ("q1", "q2"):
        assert small.start(name, {"profile": "gpu-1"}).status_code in (201, 202)
    first = small.wait_ready("q1")["state"]["lease_id"]
    small.wait_ready("q2")

    answers: dict[str, httpx.Response] = {}

    def spawn(name: str) -> None:
        answers[name] = small.start(name, {"profile": "gpu-1"})

    threads = []
    for name in ("q3", "q4"):
        threads.append(threading.Thread(target=spawn, args=(name,)))
        threads[-1].start()
        small.wait(name, lambda s: bool(s and s["pending"] == "spawn"))
        deadline = time.monotonic() + 10
        while not [x for x in small.leases_of(name) if x["status"] == "queued"]:
            assert time.monotonic() < deadline, small.leases_of(name)
            time.sleep(0.1)

    # why they wait: servers state no hours and no lease has ended yet, so no estimate
    events = small.progress("q4", lambda e: "ahead of you" in e.get("message", ""))
    assert events[-1]["message"] == (
        "Queued at position 2: all 2 GPUs are held; 1 request ahead of you; no estimate."
    )
    events = small.progress("q3", lambda e: "position 1" in e.get("message", ""))
    assert events[-1]["message"] == "Queued at position 1: all 2 GPUs are held; no estimate."

    small.stop("q1")
    small.wait_lease(first, "released")
    events = small.progress("q3", lambda e: e.get("ready") or e.get("failed"), timeout=40)
    assert events[-1].get("ready"), events
    assert any(e["message"].startswith("Got 1 × H100-80GB (simulated)") for e in events)
    q3 = small.wait_ready("q3")["state"]
    assert small.lease(q3["lease_id"])["status"] == "active"
    # q4 moved up; then its person gives up: the queued request is cancelled
    # (q1's ended lease may now give an estimate from its length)
    small.progress(
        "q4", lambda e: e["message"].startswith("Queued at position 1: all 2 GPUs are held; ")
    )
    queued = [x for x in small.leases_of("q4") if x["status"] == "queued"][0]
    small.stop("q4")
    assert small.wait_lease(queued["id"], "cancelled")
    for t in threads:
        t.join(30)
    # 202 if the grant came after JupyterHub's slow_spawn_timeout, else 201
    assert answers["q3"].status_code in (201, 202), answers["q3"].text
    assert all(x["status"] != "active" for x in small.leases_of("q4"))


# -- hub restarts ----------------------------------------------------------------------


def test_hub_restart_readopts_servers_and_their_leases(servers):
    hub = servers.hub
    before = {}
    for name, profile in (("rita", "gpu-1"), ("remy", "shared")):
        hub.add_user(name)
        assert servers.start(name, {"profile": profile}).status_code in (201, 202)
    for name in ("rita", "remy"):
        before[name] = servers.wait_ready(name)["state"]

    hub.restart()

    for name, state in before.items():
        server = servers.wait_ready(name)
        assert server["state"] == state
        assert alive(state["pid"])
        assert servers.lease(state["lease_id"])["status"] == "active"
    # the re-adopted servers still release their leases when stopped
    servers.stop("rita")
    servers.wait_lease(before["rita"]["lease_id"], "released")
    assert servers.lease(before["remy"]["lease_id"])["status"] == "active"
    servers.stop("remy")
    servers.wait_lease(before["remy"]["lease_id"], "released")


async def _kernel_with_a_client(hub: Hub, user: str, token: str) -> object:
    """Start a kernel in ``user``'s server and connect to it as JupyterLab does (a
    websocket on its channels); the open connection, to close at the end."""
    headers = {"Authorization": f"token {token}"}
    base = f"{hub.url}/user/{quote(user)}/api/kernels"
    r = http.post(base, headers=headers, json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text
    url = f"{base}/{r.json()['id']}/channels".replace("http://", "ws://")
    return await websocket_connect(HTTPRequest(url, headers=headers))


@pytest.mark.parametrize(
    "how",
    [
        # Ctrl-C in the terminal of scripts/run: SIGINT to the hub's process group (the
        # gpuhub service and the servers run in sessions of their own)
        pytest.param(lambda pid: os.killpg(pid, signal.SIGINT), id="ctrl-c"),
        # `kill PID`, or a service manager stopping the hub: SIGTERM to the hub alone
        pytest.param(lambda pid: os.kill(pid, signal.SIGTERM), id="sigterm"),
    ],
)
def test_stopping_the_embedded_default_stops_its_servers_and_releases_their_leases(
    tmp_path_factory, how
):
    # the embedded default as it ships: with its warm server (gpuhub.spawners.warm)
    hub = Hub(tmp_path_factory.mktemp("spawner-stop"), env={**FAST, "GPUHUB_WARM_POOL": "1"})
    servers = Servers(hub)
    try:
        hub.start()
        before, tokens = {}, {}
        for name, profile in (("carl", "gpu-1"), ("cleo", "mig-1g.5gb")):
            tokens[name] = hub.add_user(name)
            assert servers.start(name, {"profile": profile}).status_code in (201, 202)
        for name in ("carl", "cleo"):
            before[name] = servers.wait_ready(name)["state"]
            assert servers.lease(before[name]["lease_id"])["status"] == "active"
        servers.admin.close()
        warm = [p for p, argv in descendants(hub.proc.pid) if "jupyter_gpuhub.warm" in argv]
        assert warm  # the servers (one claimed from the pool) and the pool's new one

        async def stop_with_a_kernel_open() -> float:
            client = await _kernel_with_a_client(hub, "carl", tokens["carl"])
            try:
                start = time.monotonic()
                how(hub.proc.pid)
                while hub.proc.poll() is None and time.monotonic() - start < 60:
                    await asyncio.sleep(0.1)
                return time.monotonic() - start
            finally:
                client.close()

        took = asyncio.run(stop_with_a_kernel_open())
        # everything stops in a few seconds (the servers' own shut-down), not at a timeout
        assert hub.proc.poll() is not None and took < 20, f"the hub took {took:.1f} s to stop"
        ended = {}
        with sqlite3.connect(hub.state / "gpuhub.sqlite") as db:
            for name, state in before.items():
                assert not alive(state["pid"]), name
                ended[name] = db.execute(
                    "SELECT status, end_reason FROM leases WHERE id = ?", (state["lease_id"],)
                ).fetchone()
        assert all(status == "released" for status, _ in ended.values()), ended
        # nothing of the pool outlives the hub: an unclaimed warm server reads the end of
        # its input and exits
        wait_for(lambda: not any(alive(pid) for pid in warm), timeout=20)
        stopping = hub.log_tail(400).split("initiating shutdown", 1)[-1]
        assert "Traceback" not in stopping and "Error" not in stopping, stopping
    finally:
        hub.stop()
