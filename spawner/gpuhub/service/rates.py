"""Prices (``/api/v1/rates``, ``/rates/{model}``) and statements (``/api/v1/statements``).

Everyone may read the rate card: it is shown where people choose a GPU. Setting or
unsetting a model's rate needs the ``custom:gpuhub:admin`` scope, applies to leases
granted from then on, and never changes a lease already granted (the scheduler writes
the rate in force on each lease: :mod:`gpuhub.scheduler.pricing`).

A statement is what the ledger charged in a period, per group, user, GPU model, tier and
rate, as JSON or CSV: a user's own, or anyone's for admins. Its totals are the sums of
its rows.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..scheduler.core import iso
from .base import BaseHandler
from .errors import ApiError

STATEMENT_FIELDS = (
    "group", "user", "model", "tier", "credits_per_gpu_hour", "discount", "gpu_hours",
    "credits", "leases",
)  # fmt: skip


class RateChange(BaseModel):
    """``PUT /rates/{model}``: the model's new rate."""

    model_config = ConfigDict(extra="forbid")

    credits_per_gpu_hour: float = Field(
        ..., ge=0, le=100_000, allow_inf_nan=False, description="Credits per GPU-hour"
    )


def pool_models(view: Any) -> list[str]:
    """The GPU models of the pool (its inventory now)."""
    return sorted({gs.gpu.model for nv in view.pool_view().nodes for gs in nv.gpus})


class RatesHandler(BaseHandler):
    """``GET /api/v1/rates``: credits per GPU-hour of each model of the pool."""

    def get(self) -> None:
        rates = self.scheduler.rates
        self.write_json(
            {
                "unit": "credits per GPU-hour",
                "default_credits_per_gpu_hour": rates.default,
                "rates": rates.listing(pool_models(self.view)),
            }
        )


class RateHandler(BaseHandler):
    """``PUT/DELETE /api/v1/rates/{model}``: an admin's rate for a model, or none."""

    def put(self, model: str) -> None:
        self.require_admin("setting rates")
        change = self.body(RateChange)
        self.write_json(
            self.scheduler.rates.set(
                model, change.credits_per_gpu_hour, by=self.user_name,
                known=pool_models(self.view),
            )
        )  # fmt: skip

    def delete(self, model: str) -> None:
        self.require_admin("unsetting rates")
        self.write_json(self.scheduler.rates.unset(model, by=self.user_name))


def month_start(now: float) -> float:
    """00:00 UTC on the first of ``now``'s month."""
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    return dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC).timestamp()


class StatementHandler(BaseHandler):
    """``GET /api/v1/statements``: credits and GPU-hours per group, user, model, tier and
    rate in a period (default: this month so far); JSON or ``?format=csv``."""

    async def get(self) -> None:
        now = self.view.clock()
        start = self.query_time("start", month_start(now))
        end = self.query_time("end", now)
        if end <= start:
            raise ApiError(400, "end must be after start", field="end")
        user = self.listed_user()
        group = self.query_name("group", "group")
        fmt = self.query_default("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, "format must be json or csv", field="format")
        rows = await asyncio.to_thread(
            self.view.ledger.statement, start, end, now=now, user=user, group=group
        )
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=STATEMENT_FIELDS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            w.writerow(
                {"group": "total", "gpu_hours": _total(rows, "gpu_hours"),
                 "credits": _total(rows, "credits"), "leases": sum(r["leases"] for r in rows)}
            )  # fmt: skip
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="gpuhub-statement.csv"')
            self.finish(buf.getvalue())
            return
        self.write_json(
            {"start": iso(start), "end": iso(min(end, now)), "user": user, "group": group,
             "rows": rows, "total_gpu_hours": _total(rows, "gpu_hours"),
             "total_credits": _total(rows, "credits")}
        )  # fmt: skip


def _total(rows: list[dict[str, Any]], field: str) -> float:
    """The sum of the rows' (rounded) values, so that a statement adds up as printed."""
    return round(sum(r[field] for r in rows), 6)


default_handlers = [
    (r"/rates", RatesHandler),
    (r"/rates/([^/]+)", RateHandler),
    (r"/statements", StatementHandler),
]
