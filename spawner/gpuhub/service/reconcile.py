"""Release leases whose single-user server is gone from JupyterHub.

A spawner releases its lease when its server stops. If that never happens (the hub was
killed, a stop failed half-way), the lease would hold GPUs forever. Leases held for a
server carry the label ``server:USER/SERVERNAME``; this check asks the hub which servers
each such user has (running or pending) and releases the leases of servers it does not.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from ..scheduler.core import Scheduler
from ..terms import server_of
from .hub_api import HubApi

log = logging.getLogger("gpuhub.reconcile")


async def hub_servers(api_url: str, token: str, user: str) -> set[str] | None:
    """Names of the user's servers the hub knows (running or pending); None if no such user."""
    model = await HubApi(api_url, token).user(user)
    return None if model is None else set((model.get("servers") or {}).keys())


async def reconcile_servers(scheduler: Scheduler, api_url: str, token: str, grace: float) -> int:
    """Release leases of servers the hub no longer has; returns how many were released.

    Leases younger than ``grace`` seconds are left alone: their spawn may still be
    registering with the hub.
    """
    now = scheduler.view.clock()
    held: dict[str, list] = defaultdict(list)
    for lease in scheduler.view.live_leases():
        owner = server_of(lease.label)
        if owner and now - lease.requested_at >= grace:
            held[owner[0]].append((owner[1], lease.id))
    released = 0
    for user, leases in held.items():
        try:
            servers = await hub_servers(api_url, token, user)
        except Exception as e:  # noqa: BLE001 - the hub may be restarting; try next round
            log.warning("cannot ask the hub for %s's servers: %s", user, e)
            continue
        for name, lease_id in leases:
            # the lease may have ended while the hub was asked
            if scheduler.view.live_lease(lease_id) and (servers is None or name not in servers):
                what = f"{user}/{name}" if name else f"{user}'s default server"
                scheduler.release(lease_id, reason=f"server {what} is gone (reconciled)")
                log.warning("released lease %s: server %s is gone from the hub", lease_id, what)
                released += 1
    return released
