"""The Docker GPU spawner against a real hub, the gpuhub service and a real Docker engine.

A hub with a simulated pool of eight GPUs starts users' servers as containers of
``gpuhub/base`` on the host network (everything on 127.0.0.1). What a server got is read
from its container (``docker inspect``: environment, user, limits, mounts) and checked
against its lease in the service; the flows go through JupyterHub's REST API as a
browser or a script would.

Containers of this module are named ``gpuhubdt<run>-*`` (``DockerSpawner.prefix``) and
belong to users named ``dt<run>-*``, so a module fixture can remove them, and their home
volumes ``gpuhub-home-dt<run>-*``, whatever happens. When a test fails, the report holds
the hub's log and the tail of each container's log. ``GPUHUB_TEST_NO_DOCKER=1`` leaves
these tests out.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import docker
import pytest
from gpuhub.containers.engine import Engine
from gpuhub.containers.spec import home_volume_name
from gpuhub.ports import free_port
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.errors import GPUSpawnError
from jupyterhub.objects import Hub as HubAddress

from tests.support import http
from tests.support.docker import engine_client, remove_leftovers
from tests.support.hub import Hub, pauses

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

IMAGE = "gpuhub/base:latest"  # the smallest image with JupyterLab and the gpuhub extension
RUN = secrets.token_hex(3)
PREFIX = f"gpuhubdt{RUN}"  # container names: {PREFIX}-{user}
USERS = f"dt{RUN}"  # user names: {USERS}-{name}; home volumes: gpuhub-home-{USERS}-{name}
POLL = 3  # c.Spawner.poll_interval: how soon a dead container is noticed
BOOTS = 2  # c.GPUDockerSpawner.concurrent_boots: containers booting at once
HOME = "/home/jovyan"
GIB, MIB = 2**30, 2**20

LIMITS = {"image": IMAGE, "cpu_limit": 1, "mem_limit": "1G", "shm_size": "256M"}
PROFILES = [
    {"name": "gpu-1", "display_name": "1 GPU", "default": True,
     "shape": {"kind": "gpu", "count": 1}, **LIMITS},
    {"name": "gpu-2", "display_name": "2 GPUs", "shape": {"kind": "gpu", "count": 2}, **LIMITS},
    {"name": "staff-gpu", "display_name": "Staff GPU", "shape": {"kind": "gpu", "count": 1},
     "groups": ["staff"], **LIMITS},
    # no image, no limits: DockerSpawner's settings below give them
    {"name": "plain", "display_name": "Plain", "shape": {"kind": "gpu", "count": 1}},
]  # fmt: skip
EXTRA_CONFIG = f"""
c.DockerSpawner.image = {IMAGE!r}
c.DockerSpawner.allowed_images = [{IMAGE!r}]
c.DockerSpawner.mem_limit = "1G"
c.DockerSpawner.cpu_limit = 1.0
c.DockerSpawner.prefix = {PREFIX!r}
c.Spawner.poll_interval = {POLL}
c.GPUDockerSpawner.concurrent_boots = {BOOTS}
c.GPUSpawnerMixin.profiles = {PROFILES!r}
"""
ENV = {
    "GPUHUB_SPAWNER": "docker",
    "GPUHUB_DOCKER_NETWORK": "host",
    "GPUHUB_SIMULATED_SPEC": "n1: 8xH100-80GB[nvlink]",
    "GPUHUB_POLL_INTERVAL": "0.5",
}
ALL_STATUSES = ["queued", "active", "released", "cancelled", "refused"]


def user(name: str) -> str:
    """The user name of this run for ``name``."""
    return f"{USERS}-{name}"


class DockerHub(Hub):
    """A test hub whose log tail (shown when a test fails) ends with its containers' logs."""

    engine: docker.APIClient | None = None

    def log_tail(self, n: int = 80) -> str:
        text = super().log_tail(n)
        if self.engine is None:
            return text
        try:
            for c in self.engine.containers(all=True, filters={"name": f"^/{PREFIX}-"}):
                logs = self.engine.logs(c["Id"], tail=12).decode(errors="replace")
                text += f"\n--- container {c['Names'][0]} ({c['Status']}) ---\n{logs}"
        except docker.errors.DockerException as e:
            text += f"\n(container logs unavailable: {e})"
        return text


class Fleet:
    """Users' servers of one hub, their containers on the engine, and their leases."""

    def __init__(self, hub: DockerHub, engine: docker.APIClient) -> None:
        self.hub = hub
        self.engine = engine
        self.admin = hub.client(hub.admin_token)  # the gpuhub API as test-admin

    # -- the service's leases ----------------------------------------------------------

    def lease(self, lease_id: int) -> dict:
        r = self.admin.get(f"/leases/{lease_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def leases(self, user: str | None = None, statuses=("active", "queued")) -> list[dict]:
        params = {"status": list(statuses), **({"user": user} if user else {})}
        r = self.admin.get("/leases", params=params)
        assert r.status_code == 200, r.text
        return r.json()["leases"]

    def wait_lease(self, lease_id: int, status: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        for pause in pauses():
            if (lease := self.lease(lease_id))["status"] == status:
                return lease
            assert time.monotonic() < deadline, f"lease {lease_id} is not {status}: {lease}"
            time.sleep(pause)
        raise AssertionError("unreachable")

    # -- containers ----------------------------------------------------------------------

    def containers(self, name: str) -> list[dict]:
        """``docker inspect`` of every container labelled as ``name``'s (running or not)."""
        found = self.engine.containers(all=True, filters={"label": f"gpuhub.user={name}"})
        return [self.engine.inspect_container(c["Id"]) for c in found]

    def container(self, name: str) -> dict:
        """The one container of ``name``."""
        found = self.containers(name)
        assert len(found) == 1, [c["Name"] for c in found]
        return found[0]

    def exec(self, container_id: str, *cmd: str) -> str:
        """Run ``cmd`` in the container as its user; its output (it must succeed)."""
        ex = self.engine.exec_create(container_id, list(cmd))
        out = self.engine.exec_start(ex["Id"]).decode()
        assert self.engine.exec_inspect(ex["Id"])["ExitCode"] == 0, out
        return out

    def volume_exists(self, name: str) -> bool:
        try:
            self.engine.inspect_volume(name)
        except docker.errors.NotFound:
            return False
        return True

    # -- clean-up --------------------------------------------------------------------------

    def stop_all(self, timeout: float = 90) -> None:
        """Stop every server of the hub (in parallel) and wait until none is left."""
        r = self.hub.hub_api("GET", "users")
        names = [u["name"] for u in r.json() if u["servers"]] if r.status_code == 200 else []
        for name in names:
            self.hub.hub_api("DELETE", f"users/{name}/server")
        for name in names:
            self.hub.wait_server(name, lambda s: s is None, timeout)


RUNNING_AT = re.compile(r"\[I (\S+ \S+) ServerApp\] Jupyter Server \S+ is running at")


def boot_span(dk: Fleet, name: str) -> tuple[datetime.datetime, datetime.datetime]:
    """When ``name``'s container started, and when its server logged that it is running."""
    c = dk.container(name)
    started = datetime.datetime.fromisoformat(c["State"]["StartedAt"][:26].rstrip("Z"))
    logs = dk.engine.logs(c["Id"]).decode(errors="replace")
    found = RUNNING_AT.search(logs)
    assert found, logs[-2000:]
    return started, datetime.datetime.fromisoformat(found.group(1))  # both UTC


def most_at_once(spans: list[tuple[datetime.datetime, datetime.datetime]]) -> int:
    """The most spans that overlap at one moment."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    now = top = 0
    for _, step in edges:  # at a tie an end (-1) sorts before a start (+1)
        now += step
        top = max(top, now)
    return top


def remove_module_leftovers(engine: docker.APIClient) -> None:
    """Remove this run's containers and home volumes, one by one."""
    remove_leftovers(engine, filters={"name": f"^/{PREFIX}-"})
    remove_leftovers(
        engine,
        filters={"label": "gpuhub.user"},
        keep=lambda c: c["Labels"].get("gpuhub.user", "").startswith(f"{USERS}-"),
        volumes=f"gpuhub-home-{USERS}-",
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.APIClient]:
    """The Docker engine, with gpuhub's base image on it."""
    client = engine_client(IMAGE)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, engine) -> Iterator[Fleet]:
    """A hub spawning GPU containers on the engine, its simulated pool eight H100s."""
    hub = DockerHub(tmp_path_factory.mktemp("spawner-docker"), env=ENV, extra_config=EXTRA_CONFIG)
    hub.engine = engine
    fleet = Fleet(hub, engine)
    try:
        hub.start()
        yield fleet
    finally:
        try:
            if hub.proc is not None:
                fleet.stop_all()  # through the hub: the leases are released too
        except Exception as e:  # noqa: BLE001 - clean-up goes on; the engine is cleaned below
            print(f"stopping the servers failed: {e}")
        finally:
            fleet.admin.close()
            hub.stop()
            remove_module_leftovers(engine)


@pytest.fixture
def dk(fleet) -> Iterator[Fleet]:
    """The fleet; every server still running after the test is stopped."""
    yield fleet
    fleet.stop_all()


def check_container(dk: Fleet, name: str, lease: dict, server: dict) -> dict:
    """``name``'s container is what the profile and the lease say, and nothing more."""
    c = dk.container(name)
    assert c["State"]["Running"], c["State"]
    assert c["Id"] == server["state"]["object_id"]
    assert c["Name"] == "/" + server["state"]["object_name"]
    assert c["Name"].startswith(f"/{PREFIX}-")  # DockerSpawner escapes the user name
    assert c["Config"]["Image"] == IMAGE
    env = dict(item.split("=", 1) for item in c["Config"]["Env"])
    uuids = ",".join(d["uuid"] for d in lease["devices"])
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == uuids
    assert env["GPUHUB_LEASE_ID"] == str(lease["id"]) == c["Config"]["Labels"]["gpuhub.lease"]
    assert env["GPUHUB_SIMULATED"] == "1" and env["GPUHUB_NODE"] == lease["node"]
    # no admin credential inside: the server's own token is its only one
    service_token = (dk.hub.state / "gpuhub_service_token").read_text()
    assert not any(
        secret in v for v in env.values() for secret in (service_token, dk.hub.admin_token)
    )
    assert c["Config"]["User"].split(":")[0] not in ("", "0", "root")
    hc = c["HostConfig"]
    assert hc["Privileged"] is False
    assert hc["NetworkMode"] == "host"
    assert "ALL" in hc["CapDrop"] and "no-new-privileges" in hc["SecurityOpt"]
    assert not hc.get("DeviceRequests")  # simulated devices: nothing to hand over
    assert not hc.get("Devices")
    assert (hc["Memory"], hc["NanoCpus"], hc["ShmSize"]) == (GIB, 10**9, 256 * MIB)
    assert "docker.sock" not in json.dumps([hc.get("Binds"), c["Mounts"]])
    home = [m for m in c["Mounts"] if m["Destination"] == HOME]
    assert len(home) == 1 and home[0]["Type"] == "volume", c["Mounts"]
    assert home[0]["Name"] == f"gpuhub-home-{name}" and home[0]["RW"]
    return c


# -- crafted user_options ----------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "gpu-1", "privileged": True}, "unknown option 'privileged'"),
        ({"profile": "gpu-1", "cmd": ["sh"]}, "unknown option 'cmd'"),
        ({"profile": "staff-gpu"}, "profile staff-gpu is only for members of group staff"),
        ({"profile": "nope"}, "there is no profile 'nope'"),
        ({"image": "gpuhub/pytorch:latest"}, "image 'gpuhub/pytorch:latest' is not offered"),
        ({"profile": "gpu-1", "image": "alpine"}, "image 'alpine' is not the image of profile gpu-1"),
        ({"profile": "gpu-2", "gpus": 16}, "profile gpu-2 offers 2 GPUs, not 16"),
        ({"profile": "gpu-1", "gpus": "two"}, "gpus must be a whole number"),
        ({"profile": "gpu-1", "gpus": True}, "gpus must be a whole number"),
        ({"profile": 1}, "profile must be a non-empty string"),
        ({"profile": "gpu-1", "group": ["staff"]}, "group must be a non-empty string"),
        (["gpu-1"], "user_options must be an object"),
    ],
)  # fmt: skip
def test_crafted_user_options_are_refused_and_nothing_is_created(dk, options, message):
    name = user("mallory")
    dk.hub.add_user(name, groups=["students"])
    r = dk.hub.spawn(name, options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert dk.hub.server(name) is None
    assert dk.leases(name, ALL_STATUSES) == []
    assert dk.containers(name) == []
    assert not dk.volume_exists(f"gpuhub-home-{name}")


# -- DockerSpawner's own settings --------------------------------------------------------


def test_dockerspawner_image_and_limits_reach_a_profile_that_sets_none(dk):
    name = user("plato")
    dk.hub.add_user(name)
    r = dk.hub.spawn(name, {"profile": "plain"})
    assert r.status_code in (201, 202), r.text
    dk.hub.wait_ready(name, timeout=120)
    c = dk.container(name)
    assert c["Config"]["Image"] == IMAGE  # c.DockerSpawner.image
    assert c["Config"]["Labels"]["gpuhub.profile"] == "plain"
    hc = c["HostConfig"]
    # c.DockerSpawner.mem_limit and cpu_limit, as docker inspect shows them
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"]) == (GIB, GIB, 10**9)
    dk.hub.stop_server(name)


# -- quota -------------------------------------------------------------------------------


def test_quota_refusal_reaches_the_user_and_nothing_starts(dk):
    name = user("quinn")
    dk.hub.add_user(name)
    r = dk.admin.put(f"/quotas/users/{name}", json={"max_units": 0})
    assert r.status_code == 200, r.text
    r = dk.hub.spawn(name, {"profile": "gpu-1"})
    sentence = f"user {name} uses 0 of their 0 GPU units"
    assert r.status_code == 403, r.text
    assert sentence in r.json()["message"]
    events = dk.hub.progress_events(name, lambda e: e.get("failed"))
    assert f"Spawn failed: {sentence}" in events[-1]["message"]
    assert dk.hub.server(name) is None
    assert dk.leases(name, ALL_STATUSES) == []
    assert dk.containers(name) == []


# -- a spawn storm on eight GPUs ---------------------------------------------------------


def test_ten_users_on_eight_gpus_get_distinct_devices_and_two_wait_in_the_queue(dk):
    hub = dk.hub
    names = [user(f"s{i:02}") for i in range(10)]
    for name in names:
        hub.add_user(name)
    with ThreadPoolExecutor(len(names)) as pool:  # all at once, as a class does at 9:00
        spawned = list(pool.map(lambda n: hub.spawn(n, {"profile": "gpu-1"}), names))
    answers = dict(zip(names, spawned, strict=True))
    for name, r in answers.items():
        assert r.status_code in (201, 202), (name, r.text)

    # the service: eight granted, two queued with positions 1 and 2
    deadline = time.monotonic() + 30
    while True:
        leases = [x for x in dk.leases() if x["user"] in names]
        active = {x["user"]: x for x in leases if x["status"] == "active"}
        queued = sorted((x for x in leases if x["status"] == "queued"), key=lambda x: x["position"])
        if len(active) == 8 and len(queued) == 2:
            break
        assert time.monotonic() < deadline, leases
        time.sleep(0.2)
    assert [x["position"] for x in queued] == [1, 2]
    waiting = [x["user"] for x in queued]

    servers = {name: hub.wait_ready(name, timeout=180) for name in active}
    devices = [d["uuid"] for x in active.values() for d in x["devices"]]
    assert len(devices) == len(set(devices)) == 8
    for name, lease in active.items():
        assert servers[name]["state"]["lease_id"] == lease["id"]
        check_container(dk, name, lease, servers[name])
    # the eight booted in turns: never more than BOOTS between start and running at once
    assert most_at_once([boot_span(dk, name) for name in active]) == BOOTS
    # the two who wait see where they are, and have no container yet
    for name in waiting:
        server = hub.server(name)
        assert server["pending"] == "spawn" and not server["ready"], server
        assert dk.containers(name) == []
    # ... and why: "Queued at position 1: all 8 GPUs are held; expected by ..."
    for position, name in enumerate(waiting, 1):
        events = hub.progress_events(
            name, lambda e, p=position: e.get("message", "").startswith(f"Queued at position {p}:")
        )
        assert "all 8 GPUs are held" in events[-1]["message"], events[-1]

    # two people stop: the two who waited get their GPUs and start (their progress streams,
    # followed from before the stop, end with the grant and the server ready)
    leaving = list(active)[:2]
    with ThreadPoolExecutor(len(waiting)) as pool:
        follow = {
            name: pool.submit(
                hub.progress_events, name, lambda e: e.get("ready") or e.get("failed"), 150
            )
            for name in waiting
        }
        time.sleep(0.5)  # the streams are open
        for name in leaving:
            hub.stop_server(name, timeout=60)
            dk.wait_lease(active[name]["id"], "released")
            assert dk.containers(name) == []
        progress = {name: f.result() for name, f in follow.items()}
    freed = {d["uuid"] for name in leaving for d in active[name]["devices"]}
    for name in waiting:
        events = progress[name]
        assert events[-1].get("ready"), events
        messages = [e["message"] for e in events]
        grant = [m for m in messages if m.startswith("Got 1 × H100-80GB (simulated) on n1")]
        assert len(grant) == 1, messages
        queued = [i for i, m in enumerate(messages) if m.startswith("Queued at position")]
        assert queued and messages.index(grant[0]) > max(queued), messages
        server = hub.wait_ready(name)
        lease = dk.lease(server["state"]["lease_id"])
        assert lease["status"] == "active"
        assert {d["uuid"] for d in lease["devices"]} <= freed
        check_container(dk, name, lease, server)
    now = [x for x in dk.leases() if x["user"] in names]
    assert len(now) == 8 and all(x["status"] == "active" for x in now)
    assert len({d["uuid"] for x in now for d in x["devices"]}) == 8


# -- hub restarts ------------------------------------------------------------------------


def lease_view(leases: list[dict]) -> list[tuple]:
    """What must not change across a hub restart: who holds which devices under which id."""
    return sorted(
        (x["id"], x["user"], x["status"], x["label"], tuple(d["uuid"] for d in x["devices"]))
        for x in leases
    )


def test_hub_restart_keeps_servers_containers_and_leases(dk):
    hub = dk.hub
    names = {user("rita"): "gpu-1", user("remy"): "gpu-2", user("rosa"): "gpu-1"}
    tokens = {name: hub.add_user(name) for name in names}
    for name, profile in names.items():
        assert hub.spawn(name, {"profile": profile}).status_code in (201, 202)
    before = {name: hub.wait_ready(name, timeout=120)["state"] for name in names}
    containers = {name: dk.container(name) for name in names}
    leases = lease_view([x for x in dk.leases(statuses=ALL_STATUSES) if x["user"] in names])
    assert len(leases) == 3 and all(x[2] == "active" for x in leases)

    def reachable(name: str) -> None:
        r = http.get(
            f"{hub.url}/user/{name}/api/status",
            headers={"Authorization": f"token {tokens[name]}"},
            timeout=30,
        )
        assert r.status_code == 200, (name, r.status_code, r.text[:500])
        assert "started" in r.json()

    for name in names:
        reachable(name)

    hub.restart()

    for name, state in before.items():
        assert hub.wait_ready(name)["state"] == state
        reachable(name)
        c = dk.container(name)
        assert c["Id"] == containers[name]["Id"] == state["object_id"]
        assert c["State"]["Running"]
        assert c["State"]["StartedAt"] == containers[name]["State"]["StartedAt"]
    assert lease_view([x for x in dk.leases(statuses=ALL_STATUSES) if x["user"] in names]) == leases
    time.sleep(POLL + 1)  # the restarted hub has polled every server since
    assert lease_view([x for x in dk.leases(statuses=ALL_STATUSES) if x["user"] in names]) == leases
    # a re-adopted server still gives its lease back and its container goes
    name = user("remy")
    hub.stop_server(name)
    dk.wait_lease(before[name]["lease_id"], "released")
    assert dk.containers(name) == []


# -- containers that die behind the hub's back --------------------------------------------


def test_a_killed_container_releases_its_lease_within_a_poll_interval(dk):
    hub = dk.hub
    name = user("kim")
    hub.add_user(name)
    assert hub.spawn(name, {"profile": "gpu-2"}).status_code in (201, 202)
    state = hub.wait_ready(name, timeout=120)["state"]
    assert dk.lease(state["lease_id"])["status"] == "active"
    dk.engine.kill(state["object_id"])
    killed = time.monotonic()
    slack = 5  # the poll's own docker inspect and the release's round trip
    lease = dk.wait_lease(state["lease_id"], "released", timeout=POLL * 1.1 + slack + 5)
    took = time.monotonic() - killed
    assert took <= POLL * 1.1 + slack, f"the lease was released {took:.1f}s after the kill"
    assert lease["end_reason"]
    # the hub forgets the server; the dead container stays for a post-mortem (`docker logs`)
    # until the user's next start replaces it
    hub.wait_server(name, lambda s: s is None, timeout=30)
    assert not dk.container(name)["State"]["Running"]
    assert dk.leases(name) == []
    assert hub.spawn(name, {"profile": "gpu-1"}).status_code in (201, 202)
    server = hub.wait_ready(name, timeout=120)
    assert server["state"]["object_id"] != state["object_id"]
    lease = dk.lease(server["state"]["lease_id"])
    check_container(dk, name, lease, server)  # the one container of the user: the new one


# -- the home volume -----------------------------------------------------------------------


def test_the_home_volume_outlives_the_container(dk):
    hub = dk.hub
    name = user("hana") + " tanaka"  # a name with a space, as JupyterHub allows
    volume = home_volume_name(name)
    assert volume.startswith(f"gpuhub-home-{user('hana')}-tanaka-")  # a slug, and a hash
    hub.add_user(name)
    assert hub.spawn(name, {"profile": "gpu-1"}).status_code in (201, 202)
    first = hub.wait_ready(name, timeout=120)["state"]["object_id"]
    marker = f"written by {name} before the stop"
    dk.exec(first, "sh", "-c", f"echo '{marker}' > {HOME}/marker")

    hub.stop_server(name)
    assert dk.containers(name) == []
    assert dk.volume_exists(volume)

    assert hub.spawn(name, {"profile": "gpu-1"}).status_code in (201, 202)
    second = hub.wait_ready(name, timeout=120)["state"]["object_id"]
    assert second != first
    assert dk.exec(second, "cat", f"{HOME}/marker").strip() == marker
    assert dk.exec(second, "stat", "-c", "%u", f"{HOME}/marker").strip() == "1000"
    hub.stop_server(name)
    assert dk.volume_exists(volume)


# -- boots in turns, against the engine alone ---------------------------------------------


@pytest.fixture
def hub_wide() -> Iterator[None]:
    """Fresh Docker engines (client, thread pool, boot turns), closed afterwards."""
    Engine.close_all()
    yield
    Engine.close_all()


def bare_spawner(name: str, **kw) -> GPUDockerSpawner:
    """A GPU Docker spawner of user ``name`` outside a hub, talking to the real engine."""
    owner = SimpleNamespace(name=name, groups=[], url=f"/user/{name}/", escaped_name=name)
    hub = HubAddress(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = GPUDockerSpawner(user=owner, hub=hub, prefix=PREFIX, **kw)
    s.server = SimpleNamespace(base_url=f"/user/{name}/")
    return s


async def test_concurrent_boots_defaults_to_the_engines_cpus(engine, hub_wide):
    turns = await bare_spawner(user("cpus")).boot_turns()
    assert turns.limit == engine.info()["NCPU"] >= 1
    # one set of turns per hub: a spawner configured otherwise later shares it
    assert await bare_spawner(user("cpus"), concurrent_boots=5).boot_turns() is turns
    Engine.close_all()  # a new hub process
    assert (await bare_spawner(user("cpus"), concurrent_boots=0).boot_turns()).limit == 0


async def test_a_boot_whose_container_stops_or_vanishes_ends_its_turn(engine, hub_wide):
    s = bare_spawner(user("vanish"), http_timeout=120)
    # the container ran and exited without ever answering
    c = engine.create_container(IMAGE, ["true"], name=s.container_name)
    try:
        engine.start(c["Id"])
        engine.wait(c["Id"], timeout=60)
        t0 = time.monotonic()
        assert await s.wait_for_server("127.0.0.1", free_port()) is False
        # the container is checked every 2 s; http_timeout (120 s) is never reached
        assert time.monotonic() - t0 < 60
    finally:
        engine.remove_container(c["Id"], force=True)
    # and one removed meanwhile (docker rm -f)
    assert await s.wait_for_server("127.0.0.1", free_port()) is False


async def test_the_command_and_the_pull_come_from_the_configured_image(engine, hub_wide):
    """Without ``c.Spawner.cmd`` the server's command is the image's own, read from the
    engine, and an image the engine has is used as it is: no pull (no registry here)."""
    tag = f"gpuhub-test/cmd:{secrets.token_hex(3)}"  # the base image, another command
    dockerfile = f'FROM {IMAGE}\nCMD ["start-notebook.sh", "--debug"]\n'
    list(engine.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True))
    try:
        s = bare_spawner(user("image"), image=tag)
        assert (await s.get_command())[0] == "start-notebook.sh"
        await s.pull_image(s.image)  # there: nothing pulled
        assert engine.inspect_image(tag)["Config"]["Cmd"] == ["start-notebook.sh", "--debug"]
    finally:
        engine.remove_image(tag, force=True)


# -- a DockerSpawner configuration as it is, through the spawner -----------------------------


class FakeService:
    """The gpuhub service as a spawner's client sees it: every request granted at once, one
    simulated device per lease."""

    def __init__(self) -> None:
        self.granted: dict[int, dict] = {}

    async def request_lease(self, body: dict) -> dict:
        n = len(self.granted) + 1
        device = {"uuid": f"GPU-sim-n1-{n}", "index": n, "model": "H100", "simulated": True}
        lease = {"id": 9000 + n, "status": "active", "node": "n1", "devices": [device],
                 "profile": body["profile"], "user": body["user"]}  # fmt: skip
        self.granted[lease["id"]] = lease
        return lease

    async def lease(self, lease_id: int) -> dict:
        return self.granted[lease_id]

    async def release(self, lease_id: int) -> dict:
        self.granted[lease_id]["status"] = "released"
        return self.granted[lease_id]

    async def leases(self, status=()) -> list[dict]:
        return [x for x in self.granted.values() if x["status"] in status]


class MigratedSpawner(GPUDockerSpawner):
    """A GPU Docker spawner whose gpuhub service is a :class:`FakeService`."""

    service: FakeService

    @property
    def gpuhub(self) -> FakeService:
        return self.service


# no hub answers these servers: a stand-in serves HTTP on the server's port instead
SERVE = ["sh", "-c", 'url="${JUPYTERHUB_SERVICE_URL#*://*:}"; '
         'exec python3 -m http.server --bind 127.0.0.1 "${url%%/*}"', "serve"]  # fmt: skip


def migrated_spawner(name: str, **kw) -> MigratedSpawner:
    """A spawner of a DockerSpawner configuration (no gpuhub profiles) on the host network."""
    owner = SimpleNamespace(name=name, groups=[], url=f"/user/{name}/", escaped_name=name)
    hub = HubAddress(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = MigratedSpawner(
        user=owner, hub=hub, prefix=PREFIX, network_name="host", http_timeout=60, cmd=SERVE,
        image="gpuhub/pytorch:latest", allowed_images={"pytorch": "gpuhub/pytorch:latest",
                                                        "base": IMAGE}, **kw,
    )  # fmt: skip
    s.server = SimpleNamespace(base_url=f"/user/{name}/")
    s.service = FakeService()
    return s


@pytest.fixture
def migrant(engine, hub_wide) -> Iterator[str]:
    """A user name of this run; its containers and home volume are removed afterwards."""
    name = user(f"migrant{secrets.token_hex(2)}")
    yield name
    for c in engine.containers(all=True, filters={"label": f"gpuhub.user={name}"}):
        engine.remove_container(c["Id"], force=True)
    try:
        engine.remove_volume(f"gpuhub-home-{name}", force=True)
    except docker.errors.NotFound:
        pass


def user_containers(engine: docker.APIClient, name: str) -> list[dict]:
    found = engine.containers(all=True, filters={"label": f"gpuhub.user={name}"})
    return [engine.inspect_container(c["Id"]) for c in found]


async def test_user_options_image_starts_the_allowed_image_and_refuses_another(engine, migrant):
    s = migrated_spawner(migrant)
    # not allowed: HTTP 400 naming it and the allowed images; nothing leased or created
    s.user_options = {"image": "alpine:latest"}
    with pytest.raises(GPUSpawnError) as e:
        await s.start()
    assert e.value.status_code == 400
    assert "image 'alpine:latest' is not offered; the images are gpuhub/base:latest, " in str(
        e.value
    )
    assert user_containers(engine, migrant) == [] and s.lease_id is None
    # DockerSpawner's choice of an allowed image, by its allowed_images name
    s.user_options = {"image": "base"}
    ip, port = await s.start()
    try:
        (c,) = user_containers(engine, migrant)
        assert c["State"]["Running"] and c["Config"]["Image"] == IMAGE  # not c.DockerSpawner.image
        assert c["Config"]["Labels"]["gpuhub.profile"] == "base"
        assert (ip, port) == ("127.0.0.1", s.port) and c["HostConfig"]["NetworkMode"] == "host"
    finally:
        await s.stop()
    assert user_containers(engine, migrant) == []
    assert [x["status"] for x in s.service.granted.values()] == ["released"]


async def test_remove_false_keeps_the_stopped_container_until_the_next_start(engine, migrant):
    s = migrated_spawner(migrant, remove=False)
    await s.start()
    await s.stop()
    (kept,) = user_containers(engine, migrant)
    assert not kept["State"]["Running"]  # its logs and files can still be read
    await s.start()  # a new lease: a new container replaces the kept one
    try:
        (c,) = user_containers(engine, migrant)
        assert c["Id"] != kept["Id"] and c["State"]["Running"]
        env = dict(item.split("=", 1) for item in c["Config"]["Env"])
        assert env["GPUHUB_LEASE_ID"] == str(s.lease_id)
    finally:
        await s.stop()
    # remove = True (the default): the stopped container goes at once
    (kept,) = user_containers(engine, migrant)
    s = migrated_spawner(migrant)
    await s.start()
    try:
        (c,) = user_containers(engine, migrant)  # the one kept above is replaced
        assert c["Id"] != kept["Id"] and s.object_id == c["Id"]
    finally:
        await s.stop()
    assert user_containers(engine, migrant) == []
