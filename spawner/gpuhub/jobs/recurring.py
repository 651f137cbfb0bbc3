"""Recurring job definitions: a job request and a cron schedule (UTC) that submits one run
each time it is due, through the same intake as any job.

A run is booked once per due time, also across restarts: the definition's next due time
is written in the new job's own transaction, only if the definition was still due at that
time (:class:`~gpuhub.jobs.store.DefinitionMoved` otherwise). A run the intake refuses
(a quota, a profile taken away) is skipped with its reason, and the next one is scheduled.

The service ticks every second, and most ticks find nothing due: the earliest next run is
kept in memory, so such a tick reads no table. Every change of a definition goes through
this object (the service is the tables' one writer), which forgets it; it is read again
at least every :data:`LOOK_AGAIN_S` seconds all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..scheduler.errors import NotFound, SchedulerError
from .cron import CronSchedule
from .intake import JobIntake
from .models import DefinitionRequest, JobRequest
from .store import DefinitionMoved, JobStore
from .views import definition_view

#: Seconds after which the earliest next run is read from the table again, even though no
#: change went through this object (a definition written by hand, a restored backup).
LOOK_AGAIN_S = 60.0


class RecurringJobs:
    """Job definitions: created, paused, resumed, deleted, and run when due."""

    def __init__(
        self,
        *,
        db: JobStore,
        intake: JobIntake,
        clock: Callable[[], float],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.db, self.intake, self.clock, self.log = db, intake, clock, log
        self._next_due: float | None = None  # None: read it from the table
        self._read_at = 0.0

    def may_be_due(self, now: float) -> bool:
        """Whether a definition may be due at ``now`` (if not, :meth:`run_due` reads no
        table)."""
        if self._next_due is None or not 0 <= now - self._read_at < LOOK_AGAIN_S:
            return True
        return now >= self._next_due

    def _forget(self) -> None:
        self._next_due = None

    def create(self, req: DefinitionRequest, *, user: str, groups: Iterable[str]) -> dict[str, Any]:
        """Check a definition as a job request (profile, fields) and save it."""
        groups = list(groups)
        job_req = req.job_request()
        selection = self.intake.check(job_req, groups)
        shape = job_req.shape or selection.shape
        now = self.clock()
        row = {
            "user": user, "groups": sorted(groups), "name": job_req.name or job_req.stem[:100],
            "schedule": req.schedule, "paused": req.paused,
            "request": job_req.model_dump_json(exclude={"user"}), "path": job_req.path,
            "kind": job_req.kind, "profile": selection.profile.name,
            "shape": shape.model_dump(exclude_none=True), "parameters": job_req.parameters,
            "max_runtime_s": job_req.max_runtime_s or self.intake.limits.default_max_runtime,
            "next_run_at": None if req.paused else CronSchedule.parse(req.schedule).next_time(now),
            "created_at": now,
        }  # fmt: skip
        def_id = self.db.insert_definition(row)
        self._forget()
        self.log.info("job definition %s of %s: %s %s", def_id, user, req.schedule, req.path)
        return self.get(def_id)

    def get(self, def_id: int) -> dict[str, Any]:
        """A definition row by id; NotFound if none."""
        d = self.db.definition(def_id) if 0 <= def_id < 2**31 else None
        if d is None:
            raise NotFound(f"no job definition {def_id}")
        return d

    def definitions(self, *, user: str | None) -> list[dict[str, Any]]:
        """Definition rows, newest first (all users' when ``user`` is None)."""
        return self.db.definitions(user=user)

    def set_paused(self, def_id: int, paused: bool) -> dict[str, Any]:
        """Pause or resume a definition; resuming schedules its next run after now."""
        d = self.get(def_id)
        nxt = None if paused else CronSchedule.parse(d["schedule"]).next_time(self.clock())
        self.db.update_definition(def_id, paused=paused, next_run_at=nxt)
        self._forget()
        return self.get(def_id)

    def delete(self, def_id: int) -> None:
        """Remove a definition; its past runs stay."""
        self.get(def_id)
        self.db.delete_definition(def_id)
        self._forget()

    @staticmethod
    def view(d: dict[str, Any]) -> dict[str, Any]:
        """A definition as the API shows it."""
        return definition_view(d)

    async def run_due(self) -> list[int]:
        """Submit one run of each definition that is due; the new job ids."""
        now = self.clock()
        out: list[int] = []
        if not self.may_be_due(now):
            return out
        for d in self.db.due_definitions(now):
            due = d["next_run_at"]
            nxt = CronSchedule.parse(d["schedule"]).next_time(now)
            values = {"last_run_at": now, "next_run_at": nxt, "last_error": None}
            try:
                req = JobRequest.model_validate_json(d["request"])
                job, _ = await self.intake.submit(
                    req, user=d["user"], groups=d["groups"],
                    definition=(d["id"], due, values),
                )  # fmt: skip
                out.append(job.id)
            except DefinitionMoved:
                continue
            except (SchedulerError, ValueError) as e:
                message = getattr(e, "message", str(e))
                self.log.warning("job definition %s: run refused: %s", d["id"], message)
                values["last_error"] = message[:1024]
                self.db.update_definition(d["id"], due, **values)
        # read after every await above: a definition changed meanwhile is in this answer
        self._next_due, self._read_at = self.db.next_due(), now
        return out
