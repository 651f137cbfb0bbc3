"""The service's index and the pool (``/api/v1``, ``/api/v1/pool``).

Authentication is JupyterHub's: OAuth cookies for browsers, ``Authorization: token ...``
for API clients. Errors are JSON ``{"status", "error", "message", "field"}``, rendered in
one place (:mod:`gpuhub.service.base`, :mod:`gpuhub.service.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import __version__
from ..scheduler.pool import GpuView, NodeView
from .base import BaseHandler


class IndexHandler(BaseHandler):
    """``GET /api/v1``: version and whether the pool is simulated."""

    requires_auth = False

    def get(self) -> None:
        self.write_json(
            {
                "service": "gpuhub",
                "version": __version__,
                "api": "v1",
                "simulated": self.settings["simulated"],
            }
        )


#: ``holder(lease id or None, device uuid)``: who holds a device slot, as the caller may see it.
HolderOf = Callable[[int | None, str], dict | None]


def gpu_item(gv: GpuView, holder: HolderOf) -> dict[str, Any]:
    """A GPU of ``GET /api/v1/pool`` (``PoolGpu``): its record, its state and its holders;
    ``held_outside`` names who holds it outside gpuhub ("Slurm job 42 (outside gpuhub)")."""
    g = gv.gpu
    item: dict[str, Any] = {
        "uuid": g.uuid, "index": g.index, "model": g.model, "memory_mb": g.memory_mb,
        "mode": g.mode, "shares": g.shares, "simulated": g.simulated,
        "nvlink_peers": list(g.nvlink_peers),
    }  # fmt: skip
    if g.mig_enabled:
        item["mig_instances"] = [
            {"uuid": m.uuid, "index": m.index, "profile": m.profile, "memory_mb": m.memory_mb,
             "slices": m.slices, "holder": holder(gv.mig_holders.get(m.uuid), m.uuid),
             "held_outside": gv.mig_held_outside.get(m.uuid)}
            for m in g.mig_instances
        ]  # fmt: skip
    else:
        item["holders"] = [holder(lid, g.uuid) for lid in gv.holders]
    item["held_outside"] = gv.held_outside
    item["state"] = gv.state
    return item


def node_item(nv: NodeView, holder: HolderOf) -> dict[str, Any]:
    """A node of ``GET /api/v1/pool`` (``PoolNode``): whether it takes new leases
    (``usable``), its source's word for its state, and its GPUs."""
    return {
        "name": nv.node.name,
        "simulated": nv.node.simulated,
        "usable": nv.node.usable,
        "state": nv.node.state,
        "gpus": [gpu_item(gv, holder) for gv in nv.gpus],
    }


class PoolHandler(BaseHandler):
    """``GET /api/v1/pool``: every node and device and its state. Holders: own or admin."""

    def get(self) -> None:
        view = self.view.pool_view()
        self.write_json(
            {
                "simulated": self.settings["simulated"],
                "units_total": float(view.units_total),
                "units_free": float(view.units_free),
                "queue_length": self.view.queue_length(),
                "nodes": [node_item(nv, self._holder) for nv in view.nodes],
            }
        )

    def _holder(self, lease_id: int | None, uuid: str) -> dict | None:
        """Who holds device ``uuid`` (a GPU or MIG instance), with what their server
        reported of that device; only to the holder and admins."""
        if lease_id is None:
            return None
        lease = self.view.live_lease(lease_id)
        if lease is None:  # a slot kept out of use: claimed in the database by no live lease
            return {"lease": None, "user": None, "group": None, "units": 0.0, "activity": None}
        if lease.user == self.user_name or self.is_admin:
            activity = self.view.activity(lease.id)
            now = self.view.clock()
            return {
                "lease": lease.id,
                "user": lease.user,
                "group": lease.group,
                "units": float(lease.units),
                "activity": None if activity is None else activity.device_dict(uuid, now),
            }
        return {
            "lease": None, "user": None, "group": None, "units": float(lease.units), "activity": None,
        }  # fmt: skip


default_handlers = [(r"/?", IndexHandler), (r"/pool", PoolHandler)]
