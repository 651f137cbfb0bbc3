"""``POST /api/v1/leases/{id}/keep``: keep a warned notebook server from idle reclaim.

The lease's own user (or a gpuhub admin) asks to keep it for ``seconds``, at most what
the lease's idle rule allows at once (:mod:`gpuhub.service.reclaim`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import BaseHandler
from .reclaim import Reclaimer

#: The most seconds a keep request may name at all (the rule's own limit is checked after).
MAX_KEEP_BODY_S = 7 * 24 * 3600


class KeepRequest(BaseModel):
    """Body of ``POST /api/v1/leases/{id}/keep``."""

    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=1, le=MAX_KEEP_BODY_S)


class LeaseKeepHandler(BaseHandler):
    """``POST /api/v1/leases/{id}/keep``: the lease, kept from idle reclaim for a while."""

    def post(self, lease_id: str) -> None:
        lease = self.own_lease(lease_id)
        req: KeepRequest = self.body(KeepRequest)
        reclaimer: Reclaimer = self.settings["reclaimer"]
        reclaimer.keep(lease, req.seconds)
        self.write_json(self.lease_view(lease))


default_handlers = [(r"/leases/([0-9]+)/keep", LeaseKeepHandler)]
