"""What a GPU spawner remembers: its saved state, and the user_options it accepted.

The state a GPU spawner adds to its parent's is small and versioned,
``{"gpuhub_state_version": 1, "lease_id": N}``, so a restarted hub finds each server's
lease again and a configuration change never orphans one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Version of the state the GPU spawners add to the spawner's state.
STATE_VERSION = 1

# the last accepted user_options of each server (user name, server name) in this hub
# process; spawner objects do not outlive a failed spawn
_ACCEPTED_OPTIONS: dict[tuple[str, str], dict] = {}


def state_with_lease(state: dict[str, Any], lease_id: int | None) -> dict[str, Any]:
    """``state`` plus the version and ``lease_id`` while a lease is held (else unchanged)."""
    if lease_id is not None:
        state["gpuhub_state_version"] = STATE_VERSION
        state["lease_id"] = lease_id
    return state


def lease_id_from_state(state: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The lease id kept in a spawner state, and a warning to log if the state is odd.

    No ``gpuhub_state_version``: state of a spawner without GPUs (no lease). Version 1:
    ``lease_id``. A newer version (a hub downgraded under running servers): its
    ``lease_id`` is still used, since every version keeps it.
    """
    version = state.get("gpuhub_state_version")
    if version is None:
        return None, None
    lease_id = state.get("lease_id")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None, f"unreadable gpuhub_state_version {version!r}; the lease is not adopted"
    warning = None
    if version > STATE_VERSION:
        warning = (
            f"gpuhub state version {version} is newer than this hub's ({STATE_VERSION}); "
            "adopting its lease_id only"
        )
    if lease_id is None:
        return None, warning
    if not isinstance(lease_id, int) or isinstance(lease_id, bool) or lease_id < 1:
        return None, f"unreadable lease_id {lease_id!r} in gpuhub state; the lease is not adopted"
    return lease_id, warning


def remember_accepted_options(user: str, server: str, user_options: Mapping[str, Any]) -> None:
    """Keep ``user_options`` that passed validation for ``user``'s server ``server``."""
    _ACCEPTED_OPTIONS[user, server] = dict(user_options)


def accepted_options(user: str, server: str) -> dict[str, Any]:
    """The last ``user_options`` accepted for that server in this hub process (else ``{}``)."""
    return dict(_ACCEPTED_OPTIONS.get((user, server), {}))
