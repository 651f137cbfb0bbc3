"""The service's index and the pool (``/api/v1``, ``/api/v1/pool``).

Authentication is JupyterHub's: OAuth cookies for browsers, ``Authorization: token ...``
for API clients. Errors are JSON ``{"status", "error", "message", "field"}``, rendered in
one place (:mod:`gpuhub.service.base`, :mod:`gpuhub.service.errors`).
"""

from __future__ import annotations

from typing import Any

from .. import __version__
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


class PoolHandler(BaseHandler):
    """``GET /api/v1/pool``: every node and device and its state. Holders: own or admin."""

    def get(self) -> None:
        view = self.view.pool_view()
        nodes = []
        for nv in view.nodes:
            gpus = []
            for gs in nv.gpus:
                g = gs.gpu
                item: dict[str, Any] = {
                    "uuid": g.uuid, "index": g.index, "model": g.model, "memory_mb": g.memory_mb,
                    "mode": g.mode, "shares": g.shares, "simulated": g.simulated,
                    "nvlink_peers": list(g.nvlink_peers),
                }  # fmt: skip
                if g.mig_enabled:
                    item["mig_instances"] = [
                        {"uuid": m.uuid, "index": m.index, "profile": m.profile, "memory_mb": m.memory_mb, "slices": m.slices,
                         "holder": self._holder(gs.mig_holders.get(m.uuid), m.uuid)}
                        for m in g.mig_instances
                    ]  # fmt: skip
                else:
                    item["holders"] = [self._holder(lid, g.uuid) for lid in gs.holders]
                item["state"] = gs.state
                gpus.append(item)
            nodes.append({"name": nv.node.name, "simulated": nv.node.simulated, "gpus": gpus})
        self.write_json(
            {
                "simulated": self.settings["simulated"],
                "units_total": float(view.units_total),
                "units_free": float(view.units_free),
                "queue_length": self.view.queue_length(),
                "nodes": nodes,
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
