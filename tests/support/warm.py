"""The warm pool of a test hub (``gpuhub.spawners.warm``) seen from outside: its warm
servers are the hub's child processes running ``jupyter_gpuhub.warm`` that no user's
server state names, and the hub logs each one once it has done its imports."""

from __future__ import annotations

from gpuhub.spawners.warm import WARM_LOG, WARM_MODULE

from tests.support.hub import Hub, descendants


def server_pids(hub: Hub) -> set[int]:
    """The pids of the users' running servers, from the hub's saved spawner state."""
    users = hub.hub_api("GET", "users", params={"state": "active"}).json()
    return {
        server["state"]["pid"]
        for user in users
        for server in user["servers"].values()
        if server.get("state", {}).get("pid")
    }


def unclaimed(hub: Hub) -> list[int]:
    """The pids of the hub's warm servers not claimed by anyone (oldest first)."""
    assert hub.proc is not None, "the hub is not running"
    claimed = server_pids(hub)
    return sorted(
        pid
        for pid, argv in descendants(hub.proc.pid)
        if argv[1:3] == ["-m", WARM_MODULE] and pid not in claimed
    )


def waiting(hub: Hub) -> list[int]:
    """Unclaimed warm servers that have done their imports and wait for a claim."""
    log = hub.log_path.read_text(errors="replace")
    return [pid for pid in unclaimed(hub) if WARM_LOG % pid in log]
