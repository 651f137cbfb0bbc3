"""The job record: one batch job as the service keeps it (a row of the ``jobs`` table).

:class:`Job` is what the job manager, its lifecycle and its views pass around instead of
rows. It is immutable: a step of the lifecycle writes the row (a compare-and-set on the
status, see :meth:`JobStore.update_job <gpuhub.jobs.store.JobStore.update_job>`) and goes on
with :meth:`Job.but` of the values it wrote. The REST layer shows it through
:func:`gpuhub.jobs.views.job_view`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..terms import JOB_ENDED_STATUSES, JOB_LIVE_STATUSES

#: Field names whose column in the ``jobs`` table has another name.
_COLUMNS = {"group": "group_name"}
_FIELDS = {v: k for k, v in _COLUMNS.items()}


@dataclass(frozen=True, kw_only=True)
class Job:
    """One batch job: what to run, on which lease, by which executor, and how it ended.

    ``source`` (the snapshot) and ``log_tail`` are large and only read where they are
    needed (``JobStore.job(id, full=True)``); elsewhere they are None.
    """

    id: int
    user: str
    name: str
    path: str  # the notebook or script, relative to the user's home
    kind: str  # "notebook" | "script"
    status: str
    reason: str | None = None
    profile: str | None = None
    group: str | None = None  # the quota group charged (column ``group_name``)
    image: str | None = None
    image_digest: str | None = None
    shape: dict[str, Any] = field(default_factory=dict)  # as the API shows shapes
    limits: dict[str, Any] = field(default_factory=dict)  # cpu_limit, mem_limit, shm_size
    parameters: dict[str, Any] = field(default_factory=dict)
    max_runtime_s: int = 0
    source: str | None = None
    lease_id: int | None = None
    executor: str = ""
    state: dict[str, Any] | None = None  # what the executor's start returned
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    gpu_hours: float | None = None  # from its lease, once it ended
    log_tail: bytes | None = None
    log_offset: int | None = None  # where the tail starts in the whole log
    log_size: int | None = None  # the whole log's size
    definition_id: int | None = None
    idempotency_key: str | None = None
    request_digest: str | None = None
    tier: str = "guaranteed"  # or "spot": preemptible capacity at a discount
    retry: dict[str, Any] | None = None  # the RetryPolicy as JSON (None: no retries)
    attempt: int = 1  # this attempt's number (1, 2, ...)
    #: the attempts that ended before this one and were retried, oldest first (see
    #: :func:`gpuhub.jobs.retries.attempt_record`)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_attempt_at: float | None = None  # while a retry waits out its backoff

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """A job from a row of the ``jobs`` table (any subset of its columns; rows from
        before spot jobs have NULL tier, attempt and attempts)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {_FIELDS.get(k, k): v for k, v in row.items()}
        for name in ("tier", "attempt", "attempts"):
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**{k: v for k, v in values.items() if k in names})

    def row(self) -> dict[str, Any]:
        """The job as column values of the ``jobs`` table."""
        return {
            _COLUMNS.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)
        }

    def but(self, **changes: Any) -> Job:
        """This job with ``changes`` (field names), e.g. after a step wrote them."""
        return dataclasses.replace(self, **changes)

    @property
    def live(self) -> bool:
        """Whether the job has not ended (queued, starting or running)."""
        return self.status in JOB_LIVE_STATUSES

    @property
    def ended(self) -> bool:
        """Whether the job has ended (succeeded, failed, cancelled, timed out, node failed,
        preempted)."""
        return self.status in JOB_ENDED_STATUSES

    @property
    def retry_key(self) -> str:
        """The idempotency key of this attempt's lease request, when it is a retry: the
        scheduler grants one lease per key, however often the request is made."""
        return f"job-{self.id}-attempt-{self.attempt}"

    def __getitem__(self, key: str) -> Any:
        """A field by its name or column name: ``job["status"]``, as rows were read before
        this type existed (kept for callers not yet moved to attributes)."""
        name = _FIELDS.get(key, key)
        if name not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, name)
