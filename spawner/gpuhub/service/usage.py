"""``GET /api/v1/usage``: GPU-hours from the ledger, per day (or week, month), user and group.

A user sees their own; admins everyone's. Reports only read, in a worker thread on a
database connection of their own.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

from ..scheduler.core import iso
from ..scheduler.ledger import TIME_FIELDS, USAGE_FIELDS
from .base import BaseHandler
from .errors import ApiError


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
        user = self.listed_user()
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
            w = csv.DictWriter(
                buf, fieldnames=[*by, "gpu_hours", "credits", "leases"], lineterminator="\n"
            )
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


default_handlers = [(r"/usage", UsageHandler)]
