"""What a spawn shows while it waits for GPUs: why it waits and until when, the grant.

:class:`ProgressLog` keeps the events of one spawn for every browser tab that follows
it; :func:`queue_message` and :func:`granted_message` are its sentences.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .container import is_simulated


def queue_message(lease: Mapping[str, Any]) -> str:
    """The progress line for a queued lease: why it waits, until when, what is free instead
    ("Queued at position 2: all 4 H100 GPUs are held; expected by 14:20 UTC (from running
    leases' stated hours). Free now: 7 MIG 1g.5gb slices"); from a service that does not
    say why, its place: 'Waiting for a GPU: 2 requests ahead of you'."""
    waiting = lease.get("waiting")
    if isinstance(waiting, Mapping) and isinstance(waiting.get("summary"), str):
        return waiting["summary"]
    position = lease.get("position")
    if not isinstance(position, int) or position < 1:
        return "Waiting for a GPU in the queue"
    ahead = position - 1
    if ahead == 0:
        return "Waiting for a GPU: you are next in the queue"
    return f"Waiting for a GPU: {ahead} request{'s' if ahead > 1 else ''} ahead of you"


def granted_message(lease: Mapping[str, Any]) -> str:
    """The progress line for a granted lease: 'Got 2 × H100-80GB on node-1 (lease 7)'."""
    devices = lease.get("devices") or []
    models = sorted({str(d.get("model", "GPU")) for d in devices})
    what = f"{len(devices)} × {', '.join(models)}" if devices else "a GPU"
    if any(d.get("profile") for d in devices):
        what = f"MIG {devices[0]['profile']} slice of {', '.join(models)}"
    elif any(d.get("shared_by") for d in devices):
        what = f"a shared seat on {', '.join(models)}"
    simulated = " (simulated)" if is_simulated(lease) else ""
    return f"Got {what}{simulated} on {lease.get('node')} (lease {lease.get('id')})"


class ProgressLog:
    """Progress events of one spawn, followed by any number of readers (browser tabs)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def add(self, message: str, progress: int | None = None) -> None:
        """Record one event (``progress`` in percent) and wake the readers."""
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        self._wake()

    def close(self) -> None:
        """No more events: readers stop once they have seen every event."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event from the first, then new ones as they come, until closed."""
        seen = 0
        while True:
            while seen < len(self.events):
                yield self.events[seen]
                seen += 1
            if self.closed:
                return
            await self._changed.wait()
