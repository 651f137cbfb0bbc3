"""What a new picture of the inventory changes, for the scheduler's refresh and its log.

The service reads its inventory source again every ``inventory_refresh_interval`` seconds
and hands the nodes, and the devices that work outside gpuhub holds, to
:meth:`Scheduler.refresh_inventory <gpuhub.scheduler.core.Scheduler.refresh_inventory>`.
:func:`compare` says what differs from the last picture (nodes that came or went, stopped
or started taking work, GPUs that changed, devices taken or given back outside gpuhub) and
:func:`messages` says it for the log (:func:`log_change`), once per change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..inventory import Node
from ..terms import ACTIVE
from .lease import Lease


@dataclass(frozen=True)
class InventoryChange:
    """What changed between two pictures of the inventory (names and ids sorted).

    ``unusable`` names the nodes that stopped taking new work (and new nodes that take
    none); ``usable`` those that take work again. ``held_outside`` are the devices that
    work outside gpuhub holds now and did not before (or now under another holder);
    ``freed_outside`` those it no longer holds. ``granted``: the queued leases the
    refresh granted.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unusable: tuple[str, ...] = ()
    usable: tuple[str, ...] = ()
    gpus_changed: tuple[str, ...] = ()
    held_outside: tuple[str, ...] = ()
    freed_outside: tuple[str, ...] = ()
    granted: tuple[int, ...] = ()

    @property
    def devices_changed(self) -> bool:
        """Whether devices appeared or disappeared (or changed): the device records follow."""
        return bool(self.added or self.removed or self.gpus_changed)


def compare(
    old_nodes: Sequence[Node],
    old_outside: Mapping[str, str],
    new_nodes: Sequence[Node],
    new_outside: Mapping[str, str],
) -> InventoryChange:
    """What changed from (``old_nodes``, ``old_outside``) to (``new_nodes``, ``new_outside``);
    the ``*_outside`` map device ids to who holds them outside gpuhub."""
    old = {n.name: n for n in old_nodes}
    new = {n.name: n for n in new_nodes}
    return InventoryChange(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        unusable=tuple(
            sorted(k for k, n in new.items() if not n.usable and (k not in old or old[k].usable))
        ),
        usable=tuple(
            sorted(k for k, n in new.items() if n.usable and k in old and not old[k].usable)
        ),
        gpus_changed=tuple(sorted(k for k, n in new.items() if k in old and old[k].gpus != n.gpus)),
        held_outside=tuple(
            sorted(d for d, who in new_outside.items() if old_outside.get(d) != who)
        ),
        freed_outside=tuple(sorted(old_outside.keys() - new_outside.keys())),
    )


def messages(
    change: InventoryChange,
    nodes: Sequence[Node],
    held_outside: Mapping[str, str],
    leases: Iterable[Lease],
) -> list[tuple[int, str]]:
    """(log level, message) for each thing ``change`` changed, in the new picture's words
    (``nodes``, ``held_outside``). ``leases``: the live leases, to warn of a device that
    work outside gpuhub took while one of them holds it."""
    by_name = {n.name: n for n in nodes}
    leased = {
        uuid: x.id
        for x in leases
        if x.status == ACTIVE
        for d in x.devices
        for uuid in (d["uuid"], d.get("parent_uuid"))
        if uuid
    }
    out: list[tuple[int, str]] = []
    for name in change.added:
        gpus = len(by_name[name].gpus)
        out.append((logging.INFO, f"node {name} joined the pool with {gpus} GPU(s)"))
    for name in change.removed:
        out.append(
            (
                logging.WARNING,
                f"node {name} left the pool; leases there keep their records until they end",
            )
        )
    for name in change.gpus_changed:
        gpus = ", ".join(f"{g.index}:{g.model}" for g in by_name[name].gpus) or "none"
        out.append((logging.INFO, f"node {name} has other GPUs now: {gpus}"))
    for name in change.unusable:
        why = by_name[name].state or "no reason given"
        out.append(
            (
                logging.WARNING,
                f"node {name} takes no new leases ({why}); its running leases stay",
            )
        )
    for name in change.usable:
        out.append((logging.INFO, f"node {name} takes new leases again ({by_name[name].state})"))
    if change.held_outside:
        held = "; ".join(f"{d}: {held_outside[d]}" for d in change.held_outside)
        out.append((logging.INFO, f"held outside gpuhub now, not granted: {held}"))
        for d in change.held_outside:
            if d in leased:
                out.append(
                    (
                        logging.WARNING,
                        f"device {d} of lease {leased[d]} is held outside gpuhub too "
                        f"({held_outside[d]})",
                    )
                )
    if change.freed_outside:
        out.append(
            (
                logging.INFO,
                f"no longer held outside gpuhub: {', '.join(change.freed_outside)}",
            )
        )
    return out


def log_change(
    log: logging.Logger,
    change: InventoryChange,
    nodes: Sequence[Node],
    held_outside: Mapping[str, str],
    leases: Iterable[Lease],
) -> InventoryChange:
    """Log each of :func:`messages` to ``log``; returns ``change``."""
    for level, message in messages(change, nodes, held_outside, leases):
        log.log(level, "inventory: %s", message)
    return change
