"""Requests the scheduler refuses: each error carries a ``code``, a sentence and a ``field``."""

from __future__ import annotations


class SchedulerError(Exception):
    """A request the scheduler refuses; ``status`` is the HTTP status it maps to."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Forbidden(SchedulerError):
    """The caller may not do this (acting for another user, a group they are not in)."""

    status, code = 403, "forbidden"


class QuotaExceeded(SchedulerError):
    """A quota forbids the request; the message names the quota and what is left."""

    status, code = 403, "quota_exceeded"


class Unsatisfiable(SchedulerError):
    """The pool could never meet the request, however long it waited."""

    status, code = 422, "unsatisfiable"


class NotFound(SchedulerError):
    """No such lease or quota."""

    status, code = 404, "not_found"


class IdempotencyConflict(SchedulerError):
    """An idempotency key already used by the same user for a different request."""

    status, code = 422, "idempotency_conflict"
