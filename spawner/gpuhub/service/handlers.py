"""REST handlers of the gpuhub service (``/services/gpuhub/api/v1/...``).

Authentication is JupyterHub's: OAuth cookies for browsers, ``Authorization: token ...``
for API clients. A user sees and acts on their own leases, queue entries and usage;
the ``custom:gpuhub:admin`` scope is needed for everyone else's and for quotas.
Errors are JSON ``{"status", "error", "message", "field"}``, rendered in one place
(:mod:`gpuhub.service.base`, :mod:`gpuhub.service.errors`).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

from jupyterhub.utils import url_path_join
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..scheduler.core import iso
from ..scheduler.errors import Forbidden, NotFound
from ..scheduler.ledger import TIME_FIELDS, USAGE_FIELDS
from .base import BaseHandler, checked_name
from .errors import ApiError
from .hub_api import HubApi
from .models import ActivityReport, LeaseRequest, QuotaSpec

QUOTA_KINDS = {"users": "user", "groups": "group"}
#: The longest ``reason`` a release may give (characters).
MAX_REASON = 200


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


class MeHandler(BaseHandler):
    """``GET /api/v1/me``: my quotas with what is left, my leases and queued requests.

    Admins may add ``?user=NAME`` to see the same for someone else (spawn forms do).
    """

    async def get(self) -> None:
        s = self.view
        name, groups = await self.acting_for(self.query_name("user", "user"))
        groups = sorted(groups)
        quotas = [s.quota_status("user", name, s.quota_for_user(name))]
        quotas += [
            s.quota_status("group", g, spec)
            for g in groups
            if (spec := s.quota("group", g)) is not None
        ]
        leases = self.lease_views(s.leases(user=name))
        self.write_json(
            {
                "name": name,
                "groups": groups,
                "admin": self.is_admin and name == self.user_name,
                "quotas": quotas,
                "leases": [x for x in leases if x["status"] == "active"],
                "queued": [x for x in leases if x["status"] == "queued"],
            }
        )


class LeasesHandler(BaseHandler):
    """``GET /api/v1/leases`` (mine, or anyone's for admins) and ``POST`` (request GPUs)."""

    STATUSES = {"queued", "active", "released", "cancelled", "refused"}

    def get(self) -> None:
        user = self.query_name("user", "user")
        if user is not None or not self.is_admin:
            user = self.for_user(user)
        statuses = set(self.query_list("status")) or {"queued", "active"}
        bad = statuses - self.STATUSES
        if bad:
            raise ApiError(
                400,
                f"unknown status {sorted(bad)[0]!r}; use {', '.join(sorted(self.STATUSES))}",
                field="status",
            )
        limit = self.query_int("limit", 1000, 1, 10000)
        leases = self.view.leases(user=user, status=statuses, limit=limit)
        self.write_json({"leases": self.lease_views(leases)})

    async def post(self) -> None:
        key = self.idempotency_key()
        req: LeaseRequest = self.body(LeaseRequest)
        user, groups = await self.acting_for(req.user)
        asked = dict(
            user=user, user_groups=groups, shape=req.shape, group=req.group,
            profile=req.profile, label=req.label, hours=req.hours,
        )  # fmt: skip
        replayed = False
        if key is None:
            lease = self.scheduler.request(**asked)
        else:  # a retry of a request already made gets its lease, as it is now
            lease, replayed = self.scheduler.request_once(idempotency_key=key, **asked)
        self.set_header("Location", url_path_join(self.request.path, str(lease.id)))
        if replayed:
            self.set_header("Idempotent-Replayed", "true")
        self.write_json(self.lease_view(lease), status=200 if replayed else 201)


class LeasePreviewHandler(BaseHandler):
    """``POST /api/v1/leases/preview``: what a lease request would get now; changes nothing."""

    async def post(self) -> None:
        req: LeaseRequest = self.body(LeaseRequest)
        user, groups = await self.acting_for(req.user)
        self.write_json(
            self.view.preview(
                user=user, user_groups=groups, shape=req.shape, group=req.group,
                profile=req.profile, hours=req.hours,
            )
        )  # fmt: skip


class LeaseHandler(BaseHandler):
    """``GET`` or ``DELETE`` (release / cancel) one lease."""

    def get(self, lease_id: str) -> None:
        self.write_json(self.lease_view(self.own_lease(lease_id)))

    def delete(self, lease_id: str) -> None:
        lease = self.own_lease(lease_id)
        # a server stopped by idle reclaim: its spawner's release books the reclaim's reason
        reclaimer = self.settings.get("reclaimer")
        reclaiming = reclaimer.end_reason(lease.id) if reclaimer is not None else None
        why = self.release_note()
        reason = reclaiming or f"released by {self.user_name}" + (f": {why}" if why else "")
        self.write_json(self.lease_view(self.scheduler.release(lease.id, reason=reason)))

    def release_note(self) -> str | None:
        """The optional ``reason`` query argument: one line, at most 200 characters."""
        why = self.query("reason")
        if why is None or not why.strip():
            return None
        why = why.strip()
        if len(why) > MAX_REASON or not why.isprintable():
            raise ApiError(
                400,
                f"reason must be one line of at most {MAX_REASON} printable characters",
                field="reason",
            )
        return why


class LeaseActivityHandler(BaseHandler):
    """``POST /api/v1/leases/{id}/activity``: the latest GPU activity of an active lease.

    Sent by the lease's own server (its user's token) every so often; admins may too.
    Others' leases are 404 as everywhere; a lease that is not active is 409.
    """

    def post(self, lease_id: str) -> None:
        lease = self.own_lease(lease_id)
        report: ActivityReport = self.body(ActivityReport)
        activity = self.scheduler.report_activity(lease.id, report)
        self.write_json(activity.to_dict(self.view.clock()))


class QueueHandler(BaseHandler):
    """``GET /api/v1/queue``: the queue in order, with why each request waits (others'
    entries anonymised, and unexplained, for non-admins)."""

    def get(self) -> None:
        now = self.view.clock()
        queue = self.view.queue()
        seen = [x for x in queue if x.user == self.user_name or self.is_admin]
        waits = self.view.waiting_all(seen)  # why each waits: own entries (admins: all)
        out = []
        for pos, lease in enumerate(queue, 1):
            if lease.user == self.user_name or self.is_admin:
                out.append({**lease.to_dict(now, pos), "waiting": waits.get(lease.id)})
            else:
                out.append({"position": pos, "id": None, "user": None, "units": float(lease.units),
                            "shape": lease.shape.model_dump(exclude_none=True), "requested_at": iso(lease.requested_at)})  # fmt: skip
        self.write_json({"length": len(out), "queue": out})


class QuotaListHandler(BaseHandler):
    """``GET /api/v1/quotas``: every quota with its current use (admins)."""

    def get(self) -> None:
        self.require_admin("listing quotas")
        s = self.view
        items = [s.quota_status(kind, name, spec) for (kind, name), spec in s.all_quotas().items()]
        default = s.default_user_quota
        self.write_json(
            {
                "quotas": items,
                "default_user_quota": default.model_dump(mode="json") if default else None,
            }
        )


class QuotaHandler(BaseHandler):
    """``GET/PUT/DELETE /api/v1/quotas/(users|groups)/{name}``."""

    def _target(self, kinds: str, name: str) -> tuple[str, str]:
        checked_name(QUOTA_KINDS[kinds], name, "name")
        return QUOTA_KINDS[kinds], name

    def get(self, kinds: str, name: str) -> None:
        kind, name = self._target(kinds, name)
        own = (kind == "user" and name == self.user_name) or (
            kind == "group" and name in (self.current_user.get("groups") or [])
        )
        if not (own or self.is_admin):
            raise Forbidden(
                f"{self.user_name} may read only their own quota and their groups' quotas"
            )
        s = self.view
        spec = s.quota_for_user(name) if kind == "user" else s.quota(kind, name)
        if spec is None and kind == "group":
            raise NotFound(f"group {name} has no quota")
        out = s.quota_status(kind, name, spec)
        out["default"] = kind == "user" and s.quota("user", name) is None
        self.write_json(out)

    async def put(self, kinds: str, name: str) -> None:
        self.require_admin("setting quotas")
        kind, name = self._target(kinds, name)
        create = self.query_default("create", "false")
        if create not in ("true", "false") or (create == "true" and kind != "group"):
            raise ApiError(
                400, "create must be true or false, on group quotas only", field="create"
            )
        spec: QuotaSpec = self.body(QuotaSpec)
        if kind == "user" and spec.per_user_max_units is not None:
            raise ApiError(
                400, "per_user_max_units applies to group quotas only", field="per_user_max_units"
            )
        if kind == "group":  # a typo'd group would hold a quota nobody is charged to
            await ensure_group(self.settings["hub_api"], name, create=create == "true")
        self.scheduler.set_quota(kind, name, spec, by=self.user_name)
        self.write_json(self.view.quota_status(kind, name, spec))

    def delete(self, kinds: str, name: str) -> None:
        self.require_admin("removing quotas")
        kind, name = self._target(kinds, name)
        self.scheduler.delete_quota(kind, name, by=self.user_name)
        self.set_status(204)
        self.finish()


class UsageHandler(BaseHandler):
    """``GET /api/v1/usage``: GPU-hours per day (or week, month), user and group; JSON or
    ``?format=csv``."""

    FIELDS = USAGE_FIELDS

    async def get(self) -> None:
        now = self.view.clock()
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        start = self.query_time(
            "start",
            dt.datetime.combine(today - dt.timedelta(days=30), dt.time(), dt.UTC).timestamp(),
        )
        end = self.query_time("end", now)
        if end <= start:
            raise ApiError(400, "end must be after start", field="end")
        user = self.query_name("user", "user")
        if user is not None or not self.is_admin:
            user = self.for_user(user)
        group = self.query_name("group", "group")
        by = tuple(self.query_default("by", "day,user,group").split(","))
        if (
            not by
            or any(f not in self.FIELDS for f in by)
            or len(set(by)) != len(by)
            or sum(f in TIME_FIELDS for f in by) > 1
        ):
            raise ApiError(
                400,
                "by must list some of day, week, month, user, group (at most one of day, "
                "week, month), e.g. by=user,week",
                field="by",
            )
        fmt = self.query_default("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, "format must be json or csv", field="format")
        # a report only reads: on a connection of its own in a worker thread, so that a
        # long one does not hold up grants on the event loop
        rows = await asyncio.to_thread(
            self.view.ledger.usage, start, end, now=now, user=user, group=group, by=by
        )
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=[*by, "gpu_hours", "leases"], lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="gpuhub-usage.csv"')
            self.finish(buf.getvalue())
            return
        self.write_json(
            {"start": iso(start), "end": iso(end), "by": list(by), "rows": rows,
             "total_gpu_hours": round(sum(r["gpu_hours"] for r in rows), 6)}
        )  # fmt: skip


class MetricsHandler(BaseHandler):
    """``GET /metrics`` in Prometheus text format (admin token unless configured open)."""

    @property
    def requires_auth(self) -> bool:  # type: ignore[override]
        return self.settings["authenticate_metrics"]

    async def get(self) -> None:
        if self.settings["authenticate_metrics"]:
            self.require_admin("reading metrics")
        await self.settings["metrics"].refresh()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.settings["registry"]))


class NotFoundHandler(BaseHandler):
    """Any other path: a JSON 404."""

    requires_auth = False

    async def admit(self) -> None:
        """Refuse whatever the method: there is nothing here."""
        raise ApiError(404, f"no such endpoint: {self.request.path}", code="not_found")


async def fetch_hub_groups(api_url: str, token: str, user: str) -> list[str]:
    """A user's JupyterHub groups, asked of the hub with the service's own token (a 502
    naming the hub when it does not answer)."""
    model = await HubApi(api_url, token).user(user)
    if model is None:
        raise NotFound(f"JupyterHub has no user {user}")
    return list(model.get("groups") or [])


async def ensure_group(hub: HubApi, name: str, *, create: bool) -> bool:
    """Make sure JupyterHub has group ``name``: create it when ``create``, else refuse (404)
    naming it. True if it was created now."""
    if await hub.group(name) is not None:
        return False
    if not create:
        raise NotFound(
            f"JupyterHub has no group {name}: check the name, or have it created "
            "(create=true; gpuhub quota set --create)",
            field="name",
        )
    return await hub.create_group(name)
