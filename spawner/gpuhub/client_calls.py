"""The named calls of the gpuhub REST API, written once for both clients.

Each call describes its request as an :class:`Op`; :class:`~gpuhub.client.GpuhubClient`
sends it at once and :class:`~gpuhub.client.AsyncGpuhubClient` in a coroutine (so there
the calls are awaited). :class:`_JobCalls`: batch jobs and job definitions;
:class:`_ReservationCalls`: reservations of devices for a group (lab hours).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

Params = Any  # a mapping or a list of (name, value) pairs, as httpx takes them


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key`` for one request that creates something."""
    return str(uuid.uuid4())


def quote_name(name: str) -> str:
    """A user or group name as one URL path segment (``/`` and non-ASCII quoted)."""
    return quote(name, safe="")


@dataclass(frozen=True)
class Op:
    """One API operation as a named call describes it; either client sends it the same way.

    ``key``: the answer is the list under this key of its JSON (``{"jobs": [...]}``).
    """

    method: str
    path: str
    params: Params = None
    json: Any = None
    idempotency_key: str | None = None
    key: str | None = None

    def result(self, answer: Any) -> Any:
        """What the call returns for the decoded ``answer``."""
        if self.key is None:
            return answer
        return list((answer or {}).get(self.key) or [])


def _query(**values: Any) -> list[tuple[str, Any]]:
    """Query parameters of the values that are not None."""
    return [(name, v) for name, v in values.items() if v is not None]


#: What a call returns in a client: a dict (D), a list (L) or nothing (N) for the blocking
#: client, awaitables of those for the asyncio one.
D = TypeVar("D")
L = TypeVar("L")
N = TypeVar("N")


class _JobCalls(Generic[D, L, N]):
    """Batch jobs and job definitions (schedules), written once for both clients: a call
    answers at once in :class:`GpuhubClient` and is awaited in :class:`AsyncGpuhubClient`."""

    def _send(self, op: Op) -> Any:
        raise NotImplementedError

    def submit_job(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> D:
        """``POST /jobs`` with one idempotency key for every try: the new Job."""
        key = idempotency_key or new_idempotency_key()
        return self._send(Op("POST", "jobs", json=body, idempotency_key=key))

    def jobs(
        self,
        *,
        user: str | None = None,
        status: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> L:
        """``GET /jobs``, newest first: mine (admins: everyone's, or ``user``'s); only
        those with ``status`` (one, or any of several) when given."""
        statuses = [status] if isinstance(status, str) else list(status or ())
        params = _query(user=user, limit=limit) + [("status", s) for s in statuses]
        return self._send(Op("GET", "jobs", params=params, key="jobs"))

    def job(self, job_id: int) -> D:
        """``GET /jobs/{id}``."""
        return self._send(Op("GET", f"jobs/{int(job_id)}"))

    def cancel_job(self, job_id: int) -> D:
        """``DELETE /jobs/{id}``: cancel a queued job, stop a running one; the Job after."""
        return self._send(Op("DELETE", f"jobs/{int(job_id)}"))

    def job_log(self, job_id: int, offset: int = 0, limit: int = 65536) -> D:
        """``GET /jobs/{id}/log``: ``{offset, next_offset, text, complete}``."""
        params = _query(offset=offset, limit=limit)
        return self._send(Op("GET", f"jobs/{int(job_id)}/log", params=params))

    def job_definitions(self, *, user: str | None = None) -> L:
        """``GET /job-definitions``: scheduled (cron) job definitions."""
        params = _query(user=user)
        return self._send(Op("GET", "job-definitions", params=params, key="definitions"))

    def create_job_definition(self, body: dict[str, Any]) -> D:
        """``POST /job-definitions``: a job request with a ``schedule``."""
        return self._send(Op("POST", "job-definitions", json=body))

    def update_job_definition(self, def_id: int, *, paused: bool) -> D:
        """``PATCH /job-definitions/{id}``: pause or resume a schedule."""
        return self._send(Op("PATCH", f"job-definitions/{int(def_id)}", json={"paused": paused}))

    def delete_job_definition(self, def_id: int) -> N:
        """``DELETE /job-definitions/{id}`` (its past runs stay)."""
        return self._send(Op("DELETE", f"job-definitions/{int(def_id)}"))


class _ReservationCalls(Generic[D, L, N]):
    """Reservations of devices for a group (lab hours), for both clients. Reading is open
    to every user; creating and deleting need the gpuhub admin scope."""

    def _send(self, op: Op) -> Any:
        raise NotImplementedError

    def reservations(self, *, group: str | None = None) -> L:
        """``GET /reservations``: every reservation not deleted (only ``group``'s when given)."""
        return self._send(Op("GET", "reservations", params=_query(group=group), key="reservations"))

    def reservation(self, reservation_id: int) -> D:
        """``GET /reservations/{id}``."""
        return self._send(Op("GET", f"reservations/{int(reservation_id)}"))

    def reserve(self, body: dict[str, Any]) -> D:
        """``POST /reservations`` (admins): ``{group, shape, count, start, end, repeat,
        timezone, note}``; the new Reservation. Not retried (it has no idempotency key)."""
        return self._send(Op("POST", "reservations", json=body))

    def delete_reservation(self, reservation_id: int) -> D:
        """``DELETE /reservations/{id}`` (admins): the Reservation as it was."""
        return self._send(Op("DELETE", f"reservations/{int(reservation_id)}"))
