"""The job tables (``jobs``, ``job_definitions``) and their SQL.

They live in the scheduler's database, declared on the scheduler's ``Base`` and created by
Alembic revision 0003. The service's event loop is the one writer: the job manager calls
these functions there, one short transaction each. Times are POSIX seconds (UTC). Jobs go
in and come out as :class:`~gpuhub.jobs.record.Job` records; definitions as rows (dicts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..scheduler.db import Base
from ..terms import JOB_LIVE_STATUSES
from .record import Job

#: The end of a job's log kept in the database when it ends (logs outlive containers).
LOG_TAIL_BYTES = 1024 * 1024


class DefinitionMoved(Exception):
    """A definition's run was booked meanwhile (or it was changed): the job is not inserted."""


class JobRow(Base):
    """A batch job: its snapshot, its GPU lease, its executor's state and how it ended."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))  # notebook | script
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(1024))
    profile: Mapped[str | None] = mapped_column(String(64))
    group: Mapped[str | None] = mapped_column("group_name", String(255))
    image: Mapped[str | None] = mapped_column(String(500))
    image_digest: Mapped[str | None] = mapped_column(String(255))
    shape: Mapped[dict] = mapped_column(JSON)
    limits: Mapped[dict] = mapped_column(JSON)  # cpu_limit, mem_limit, shm_size of the profile
    parameters: Mapped[dict] = mapped_column(JSON)
    max_runtime_s: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # the snapshot: notebook JSON or script source
    lease_id: Mapped[int | None] = mapped_column(Integer)
    executor: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict | None] = mapped_column(JSON)  # the executor's, to find the job again
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    gpu_hours: Mapped[float | None] = mapped_column(Float)  # from its lease, once it ended
    log_tail: Mapped[bytes | None] = mapped_column(LargeBinary)  # the last LOG_TAIL_BYTES
    log_offset: Mapped[int | None] = mapped_column(BigInteger)  # where the tail starts
    log_size: Mapped[int | None] = mapped_column(BigInteger)  # the whole log's size
    definition_id: Mapped[int | None] = mapped_column(Integer, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16), default="guaranteed")  # or "spot"
    retry: Mapped[dict | None] = mapped_column(JSON)  # tries per failure class, backoff
    attempt: Mapped[int] = mapped_column(Integer, default=1)  # this attempt's number
    attempts: Mapped[list | None] = mapped_column(JSON)  # the attempts that ended before
    next_attempt_at: Mapped[float | None] = mapped_column(Float)  # a retry's backoff ends

    __table_args__ = (
        Index("ix_jobs_user_idempotency_key", "user", "idempotency_key", unique=True),
    )


class JobDefinitionRow(Base):
    """A recurring job: a job request and a cron schedule (UTC)."""

    __tablename__ = "job_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    groups: Mapped[list] = mapped_column(JSON)  # the user's groups when it was created
    name: Mapped[str] = mapped_column(String(100))
    schedule: Mapped[str] = mapped_column(String(200))
    paused: Mapped[bool] = mapped_column(Boolean)
    request: Mapped[str] = mapped_column(Text)  # the JobRequest as JSON (snapshot included)
    path: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    profile: Mapped[str | None] = mapped_column(String(64))
    shape: Mapped[dict] = mapped_column(JSON)
    parameters: Mapped[dict] = mapped_column(JSON)
    max_runtime_s: Mapped[int] = mapped_column(Integer)
    next_run_at: Mapped[float | None] = mapped_column(Float, index=True)
    last_run_at: Mapped[float | None] = mapped_column(Float)
    last_job_id: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[float] = mapped_column(Float)


JOBS = JobRow.__table__
DEFINITIONS = JobDefinitionRow.__table__
_LIGHT = [c for c in JOBS.c if c.name not in ("source", "log_tail")]  # what views need


def _job(row: Any) -> Job | None:
    return None if row is None else Job.from_row(row._mapping)


class JobStore:
    """Reads and writes of the job tables; each call is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- jobs --------------------------------------------------------------------------

    def max_job_id(self) -> int:
        """The largest job id so far (0 when there is none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(JOBS.c.id))).scalar() or 0)

    def insert_job(
        self, job: Job, definition: tuple[int, float | None, dict] | None = None
    ) -> None:
        """Insert a job; with ``definition`` = (id, due time, values), update that
        definition in the same transaction, only if it is still due at that time."""
        with self.engine.begin() as conn:
            conn.execute(insert(JOBS).values(**job.row()))
            if definition is not None:
                def_id, due, values = definition
                if not self._update_definition(conn, def_id, due, values):
                    raise DefinitionMoved(f"job definition {def_id} is no longer due at {due}")

    def job(self, job_id: int, *, full: bool = False) -> Job | None:
        """A job by id (``full``: with its snapshot and log tail), or None."""
        cols = list(JOBS.c) if full else _LIGHT
        with self.engine.connect() as conn:
            return _job(conn.execute(select(*cols).where(JOBS.c.id == job_id)).first())

    def job_by_key(self, user: str, key: str) -> Job | None:
        """The job ``user`` submitted with idempotency key ``key``, or None."""
        q = select(*_LIGHT).where(JOBS.c.user == user, JOBS.c.idempotency_key == key)
        with self.engine.connect() as conn:
            return _job(conn.execute(q).first())

    def source(self, job_id: int) -> str:
        """A job's snapshot (the notebook's JSON text or the script's source); "" if none."""
        with self.engine.connect() as conn:
            value = conn.execute(select(JOBS.c.source).where(JOBS.c.id == job_id)).scalar()
        return value or ""

    def jobs(
        self,
        *,
        user: str | None = None,
        statuses: Iterable[str] | None = None,
        limit: int = 1000,
        full: bool = False,
    ) -> list[Job]:
        """Jobs, newest first."""
        q = select(*(list(JOBS.c) if full else _LIGHT)).order_by(JOBS.c.id.desc()).limit(limit)
        if user is not None:
            q = q.where(JOBS.c.user == user)
        if statuses is not None:
            q = q.where(JOBS.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return [Job.from_row(r._mapping) for r in conn.execute(q)]

    def live_jobs(self) -> list[Job]:
        """Jobs that have not ended, oldest first."""
        q = select(*_LIGHT).where(JOBS.c.status.in_(JOB_LIVE_STATUSES)).order_by(JOBS.c.id)
        with self.engine.connect() as conn:
            return [Job.from_row(r._mapping) for r in conn.execute(q)]

    def update_job(
        self,
        job_id: int,
        *,
        was: Iterable[str] | None = None,
        on_attempt: int | None = None,
        **values: Any,
    ) -> bool:
        """Update a job's columns (only while its status is in ``was`` and it is on
        attempt ``on_attempt``, when given); whether it was: the compare-and-set every step
        of the lifecycle writes with."""
        q = update(JOBS).where(JOBS.c.id == job_id)
        if was is not None:
            q = q.where(JOBS.c.status.in_(list(was)))
        if on_attempt is not None:
            q = q.where(JOBS.c.attempt == on_attempt)
        with self.engine.begin() as conn:
            return conn.execute(q.values(**values)).rowcount == 1

    # -- definitions -------------------------------------------------------------------

    def insert_definition(self, row: dict[str, Any]) -> int:
        """Insert a definition; its id."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(DEFINITIONS).values(**row))
            return int(result.inserted_primary_key[0])

    def definition(self, def_id: int) -> dict[str, Any] | None:
        """A definition by id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(DEFINITIONS).where(DEFINITIONS.c.id == def_id)).first()
        return None if row is None else dict(row._mapping)

    def definitions(self, *, user: str | None = None) -> list[dict[str, Any]]:
        """Definitions, newest first."""
        q = select(DEFINITIONS).order_by(DEFINITIONS.c.id.desc())
        if user is not None:
            q = q.where(DEFINITIONS.c.user == user)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def due_definitions(self, now: float) -> list[dict[str, Any]]:
        """Definitions not paused whose next run is due at ``now``, earliest first."""
        q = (
            select(DEFINITIONS)
            .where(DEFINITIONS.c.paused.is_(False), DEFINITIONS.c.next_run_at <= now)
            .order_by(DEFINITIONS.c.next_run_at, DEFINITIONS.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def next_due(self) -> float:
        """The earliest next run of a definition not paused; infinity if there is none."""
        q = select(func.min(DEFINITIONS.c.next_run_at)).where(DEFINITIONS.c.paused.is_(False))
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return math.inf if value is None else float(value)

    def update_definition(self, def_id: int, due: float | None = None, **values: Any) -> bool:
        """Update a definition (only if its next run is still ``due``, when given)."""
        with self.engine.begin() as conn:
            return self._update_definition(conn, def_id, due, values)

    @staticmethod
    def _update_definition(conn: Any, def_id: int, due: float | None, values: dict) -> bool:
        q = update(DEFINITIONS).where(DEFINITIONS.c.id == def_id)
        if due is not None:
            q = q.where(DEFINITIONS.c.next_run_at == due)
        return conn.execute(q.values(**values)).rowcount == 1

    def delete_definition(self, def_id: int) -> None:
        """Remove a definition (its past runs stay)."""
        with self.engine.begin() as conn:
            conn.execute(delete(DEFINITIONS).where(DEFINITIONS.c.id == def_id))
