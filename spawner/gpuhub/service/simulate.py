"""``POST /api/v1/simulate``: an admin's what-if of a quota or rate change.

The body proposes quota fields of users and groups and rates of GPU models; the last
``weeks`` of the ledger are replayed through two fresh schedulers, as things are and with
the change (:mod:`gpuhub.scheduler.whatif`), and the answer says per user and group how
waits, refusals and credits would differ. Nothing of the real scheduler changes. The
settings are read on the event loop; the replays run in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..scheduler.pricing import MAX_RATE
from ..scheduler.quota import QuotaSpec
from ..scheduler.whatif import MAX_WEEKS, WhatIf
from .base import BaseHandler, checked_name
from .body import validation_message
from .errors import ApiError

#: The most quota or rate changes one simulation takes.
MAX_CHANGES = 50
#: Quota fields only group quotas have.
GROUP_ONLY = ("per_user_max_units", "cohort", "borrow_limit", "lend_limit", "fair_share")


class QuotaChange(BaseModel):
    """A quota proposed: ``kind`` and ``name`` say whose; ``set`` holds fields of a quota
    (as in ``PUT /quotas/...``), set over the quota as it is."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["user", "group"]
    name: str = Field(..., min_length=1, max_length=255)
    set: dict[str, Any]


class ProposedRate(BaseModel):
    """A proposed rate: ``model`` names pool models as a configured rate's key does."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, max_length=128)
    credits_per_gpu_hour: float = Field(..., ge=0, le=MAX_RATE, allow_inf_nan=False)


class SimulateBody(BaseModel):
    """``POST /simulate``: the weeks to replay and the change proposed (``quotas`` in the
    body: ``quota_changes`` here, as the scheduler's own quotas are no one else's to read)."""

    model_config = ConfigDict(extra="forbid")

    weeks: int = Field(2, ge=1, le=MAX_WEEKS)
    quota_changes: list[QuotaChange] = Field(
        default_factory=list, max_length=MAX_CHANGES, alias="quotas"
    )
    rates: list[ProposedRate] = Field(default_factory=list, max_length=MAX_CHANGES)


class SimulateHandler(BaseHandler):
    """``POST /api/v1/simulate``: replay the ledger with a proposed change (admins)."""

    async def post(self) -> None:
        self.require_admin("simulating a quota or rate change")
        body = self.body(SimulateBody)
        quotas = [self._proposed(i, change) for i, change in enumerate(body.quota_changes)]
        if not quotas and not body.rates:
            raise ApiError(400, "propose at least one quota or rate change", field="quotas")
        plan = WhatIf.prepare(
            self.scheduler, weeks=body.weeks, quotas=quotas,
            rates=[(r.model, r.credits_per_gpu_hour) for r in body.rates],
        )  # fmt: skip
        lock: asyncio.Lock = self.settings.setdefault("simulation_lock", asyncio.Lock())
        if lock.locked():
            raise ApiError(
                409,
                "another simulation is running; try again when it has finished",
                code="conflict",
            )
        async with lock:
            report = await asyncio.to_thread(plan.run)
        self.write_json(report)

    def _proposed(self, i: int, change: QuotaChange) -> tuple[str, str, QuotaSpec]:
        """The quota ``change`` proposes: its fields over the quota as it is now (a user's
        own, else the default), checked as a quota body is."""
        where = f"quotas.{i}"
        name = checked_name(change.kind, change.name, f"{where}.name")
        for key in change.set:
            if key not in QuotaSpec.model_fields:
                raise ApiError(
                    400, f"unknown field '{where}.set.{key}'", field=f"{where}.set.{key}"
                )
            if change.kind == "user" and key in GROUP_ONLY:
                raise ApiError(
                    400,
                    f"{where}.set.{key} applies to group quotas only",
                    field=f"{where}.set.{key}",
                )
        if not change.set:
            raise ApiError(400, f"{where}.set: give at least one quota field", field=f"{where}.set")
        view = self.view
        now = view.quota_for_user(name) if change.kind == "user" else view.quota("group", name)
        merged = {**(now.model_dump(mode="json") if now is not None else {}), **change.set}
        try:
            spec = QuotaSpec.model_validate_json(json.dumps(merged), strict=True)
        except ValidationError as e:
            field, message = validation_message(e)
            where = f"{where}.set"
            raise ApiError(
                400, f"{where}: {message}", field=f"{where}.{field}" if field else where
            ) from e
        return change.kind, name, spec


default_handlers = [(r"/simulate", SimulateHandler)]
