"""Leases and the queue (``/api/v1/leases``, ``/leases/preview``, ``/leases/{id}``,
``/leases/{id}/activity``, ``/leases/{id}/devices``, ``/api/v1/queue``).

A user sees and acts on their own leases and queue entries; the ``custom:gpuhub:admin``
scope is needed for everyone else's. Keeping a lease from idle reclaim
(``/leases/{id}/keep``) is :mod:`gpuhub.service.keep`'s, beside the reclaimer.
"""

from __future__ import annotations

from jupyterhub.utils import url_path_join

from ..scheduler.core import iso
from ..terms import LEASE_STATUSES
from .base import BaseHandler
from .errors import ApiError
from .models import ActivityReport, LeasePlacement, LeaseRequest

#: The longest ``reason`` a release may give (characters).
MAX_REASON = 200


class LeasesHandler(BaseHandler):
    """``GET /api/v1/leases`` (mine, or anyone's for admins) and ``POST`` (request GPUs)."""

    STATUSES = tuple(sorted(LEASE_STATUSES))

    def get(self) -> None:
        user = self.listed_user()
        statuses = self.query_statuses(self.STATUSES) or {"queued", "active"}
        limit = self.query_int("limit", 1000, 1, 10000)
        leases = self.view.leases(user=user, status=statuses, limit=limit)
        self.write_json({"leases": self.lease_views(leases)})

    async def post(self) -> None:
        key = self.idempotency_key()
        req: LeaseRequest = self.body(LeaseRequest)
        user, groups = await self.acting_for(req.user)
        asked = dict(
            user=user, user_groups=groups, shape=req.shape, group=req.group,
            profile=req.profile, label=req.label, hours=req.hours, tier=req.tier,
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
                profile=req.profile, hours=req.hours, tier=req.tier,
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


class LeaseDevicesHandler(BaseHandler):
    """``PUT /api/v1/leases/{id}/devices``: record on an active lease the GPUs of its node
    that a cluster engine gave its work (the hub's Slurm spawner, with the gpuhub admin
    scope; Slurm picks the indices for ``--gres``). The lease moves onto them; another
    lease holding one of them takes in exchange a GPU this one leaves."""

    def put(self, lease_id: str) -> None:
        self.require_admin("recording the devices an engine gave a lease")
        lease = self.own_lease(lease_id)
        placement: LeasePlacement = self.body(LeasePlacement)
        if lease.status != "active":
            raise ApiError(
                409, f"lease {lease.id} is {lease.status}, not active: it holds no devices",
                code="not_active",
            )  # fmt: skip
        try:
            lease = self.scheduler.rebind(lease.id, placement.indices)
        except ValueError as e:
            raise ApiError(400, str(e), field="indices") from None
        self.write_json(self.lease_view(lease))


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


# tornado takes the first route that matches: /leases/preview before /leases/{id}
default_handlers = [
    (r"/leases", LeasesHandler),
    (r"/leases/preview", LeasePreviewHandler),
    (r"/leases/([0-9]+)", LeaseHandler),
    (r"/leases/([0-9]+)/activity", LeaseActivityHandler),
    (r"/leases/([0-9]+)/devices", LeaseDevicesHandler),
    (r"/queue", QueueHandler),
]
