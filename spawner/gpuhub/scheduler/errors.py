"""Requests the scheduler refuses: each error carries a ``code``, a sentence and a ``field``.

They know nothing of HTTP: the service maps their classes to statuses in one place
(``gpuhub.service.errors``).
"""

from __future__ import annotations


class SchedulerError(Exception):
    """A request the scheduler refuses: ``code`` says which kind, ``message`` for people."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Forbidden(SchedulerError):
    """The caller may not do this (acting for another user, a group they are not in)."""

    code = "forbidden"


class QuotaExceeded(SchedulerError):
    """A quota forbids the request; the message names the quota and what is left."""

    code = "quota_exceeded"


class Unsatisfiable(SchedulerError):
    """The pool could never meet the request, however long it waited."""

    code = "unsatisfiable"


class NotFound(SchedulerError):
    """No such lease or quota."""

    code = "not_found"


class IdempotencyConflict(SchedulerError):
    """An idempotency key already used by the same user for a different request."""

    code = "idempotency_conflict"


class ReservationConflict(SchedulerError):
    """Too few devices are free of reservations whose windows overlap the one asked for."""

    code = "conflict"
