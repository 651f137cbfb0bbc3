"""The warm pool of the embedded default (local servers), on the shared hub: a spawn claims
a server started ahead of demand, the pool refills, and a warm server knows nobody until
its claim. The hub keeps one warm server (``GPUHUB_WARM_POOL``'s default); the rules by
profile, day and hour, and the runner itself, are tested in tests/unit/test_warm_pool.py.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.support import http
from tests.support import warm as pool
from tests.support.hub import Hub, unique, wait_for

pytestmark = [pytest.mark.hub, pytest.mark.timeout(240)]

#: What a warm server must not have before its claim: anyone's identity, token or GPUs.
IDENTITY = (
    "JUPYTERHUB_API_TOKEN",
    "JPY_API_TOKEN",
    "JUPYTERHUB_USER",
    "JUPYTERHUB_SERVICE_PREFIX",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "GPUHUB_LEASE_ID",
    "HOME",
)


def _spawn(hub: Hub, user: str) -> dict:
    r = hub.spawn(user, {"profile": "gpu-1"})
    assert r.status_code in (201, 202), r.text
    return hub.wait_ready(user, timeout=90)


def _devices(hub: Hub, user: str, token: str) -> httpx.Response:
    url = f"{hub.url}/user/{quote(user)}/gpuhub/api/v1/devices"
    return http.get(url, headers={"Authorization": f"token {token}"}, timeout=30)


@pytest.fixture
def pool_ready(shared_hub: Hub) -> list[int]:
    """The shared hub's warm server, once it has one waiting."""
    return wait_for(lambda: pool.unclaimed(shared_hub), timeout=90)


def test_a_warm_server_knows_nobody_before_its_claim(
    shared_hub: Hub, pool_ready: list[int]
) -> None:
    [pid] = pool_ready
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0].decode() for item in environ if item}
    assert not names & set(IDENTITY), names & set(IDENTITY)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    assert Path(cwd).name.startswith("gpuhub-warm-") and not any(Path(cwd).iterdir())
    assert str(shared_hub.state) not in cwd  # not in anyone's home


def test_a_spawn_claims_the_warm_server_and_the_pool_refills(
    shared_hub: Hub, pool_ready: list[int]
) -> None:
    hub = shared_hub
    user = unique("warm-ann")
    token = hub.add_user(user)
    [warm] = wait_for(lambda: pool.waiting(hub), timeout=90)
    server = _spawn(hub, user)
    assert server["state"]["pid"] == warm  # the warm one, not a cold start
    # bound at claim: the server is this user's, with this user's lease
    r = _devices(hub, user, token)
    assert r.status_code == 200, r.text
    assert r.json()["lease_id"] == server["state"]["lease_id"] is not None
    assert Path(f"/proc/{warm}/cwd").resolve() == hub.state / "homes" / user
    # and a replacement is started and waits
    [again] = wait_for(lambda: pool.waiting(hub), timeout=90)
    assert again != warm
    hub.stop_server(user)
    wait_for(lambda: not Path(f"/proc/{warm}").exists() or _zombie(warm), timeout=30)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_two_users_at_once_get_a_process_each_and_only_their_own(
    shared_hub: Hub, pool_ready: list[int]
) -> None:
    """One warm server, two spawns at the same moment: one claims it, the other starts
    cold (or claims the replacement); each server is its user's alone."""
    hub = shared_hub
    users = [unique("warm-bo"), unique("warm-cy")]
    tokens = {user: hub.add_user(user) for user in users}
    wait_for(lambda: pool.waiting(hub), timeout=90)
    servers: dict[str, dict] = {}
    threads = [
        threading.Thread(target=lambda u=user: servers.__setitem__(u, _spawn(hub, u)))
        for user in users
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert set(servers) == set(users)
        pids = {servers[u]["state"]["pid"] for u in users}
        leases = {servers[u]["state"]["lease_id"] for u in users}
        assert len(pids) == 2 and len(leases) == 2
        for user, other in (users, users[::-1]):
            mine = _devices(hub, user, tokens[user])
            assert mine.json()["lease_id"] == servers[user]["state"]["lease_id"]
            # another user's token does not open this server
            assert _devices(hub, user, tokens[other]).status_code in (302, 403)
    finally:
        for user in users:
            hub.stop_server(user)


def test_a_killed_warm_server_is_replaced_and_the_next_spawn_is_warm(
    shared_hub: Hub, pool_ready: list[int]
) -> None:
    hub = shared_hub
    [victim] = wait_for(lambda: pool.waiting(hub), timeout=90)
    os.kill(victim, signal.SIGKILL)
    [fresh] = wait_for(lambda: [p for p in pool.waiting(hub) if p != victim], timeout=90)
    user = unique("warm-dee")
    hub.add_user(user)
    try:
        assert _spawn(hub, user)["state"]["pid"] == fresh
    finally:
        hub.stop_server(user)


def test_a_claim_while_the_service_restarts_waits_for_its_lease(
    shared_hub: Hub, pool_ready: list[int]
) -> None:
    """The lease comes first (the spawner retries while the supervisor restarts the
    service), then the claim: the warm server gets the lease granted after the restart."""
    hub = shared_hub
    user = unique("warm-eve")
    token = hub.add_user(user)
    [warm] = wait_for(lambda: pool.waiting(hub), timeout=90)
    hub.kill_service()
    try:
        server = _spawn(hub, user)
        assert server["state"]["pid"] == warm
        assert _devices(hub, user, token).json()["lease_id"] == server["state"]["lease_id"]
    finally:
        hub.stop_server(user)
    wait_for(lambda: http.get(hub.api, timeout=2).status_code == 200, timeout=60)
