"""Errors as the REST API answers them: HTTP statuses are chosen here, and only here.

The scheduler's errors know nothing of HTTP: they carry a ``code``, a sentence and a
``field``. :func:`status_of` maps their classes to HTTP statuses; :class:`ApiError` is a
refusal by the service itself (a bad query argument, a body too large, no login), which
names its status. :func:`error_answer` turns any exception (these, tornado's own
``HTTPError`` and unexpected ones) into the one JSON shape every error has:
``{"status", "error", "message", "field"}``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from tornado import web

from ..jobs.errors import JobEnded, JobInvalid
from ..scheduler.activity import LeaseNotActive
from ..scheduler.errors import (
    Forbidden,
    IdempotencyConflict,
    NotFound,
    QuotaExceeded,
    ReservationConflict,
    SchedulerError,
    Unsatisfiable,
)
from .reclaim import NotReclaimable

#: HTTP status of each scheduler error class; a subclass not listed gets its parent's.
STATUS_OF_ERROR: dict[type[SchedulerError], int] = {
    SchedulerError: 400,
    Forbidden: 403,
    QuotaExceeded: 403,
    NotFound: 404,
    LeaseNotActive: 409,  # an activity report for a lease that is queued or has ended
    NotReclaimable: 409,  # keeping a job's lease from idle reclaim, which never stops jobs
    Unsatisfiable: 422,
    IdempotencyConflict: 422,  # well-formed, but the key already stands for another request
    ReservationConflict: 409,  # too few devices free of reservations with overlapping windows
    JobEnded: 409,  # cancelling a job that has already ended
    JobInvalid: 400,  # a job request wrong in a way its schema cannot say
}

INTERNAL_MESSAGE = (
    "the gpuhub service failed on this request; nothing may have changed, or the change may "
    "be incomplete: retry, and if it fails again tell an admin (the error is in the service log)"
)

#: ``error`` codes of tornado's own errors that are not a plain "http".
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 500: "internal"}


class ApiError(Exception):
    """A refusal by the service itself: a bad query argument or body, no login, ..."""

    def __init__(
        self, status: int, message: str, *, code: str = "invalid", field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def status_of(error: SchedulerError) -> int:
    """The HTTP status of a scheduler error, by its class (or the nearest listed parent)."""
    for cls in type(error).__mro__:
        if cls in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[cls]
    return 400


def is_refusal(error: BaseException | None) -> bool:
    """Whether an exception is an expected refusal (logged briefly, no traceback)."""
    return isinstance(error, ApiError | SchedulerError)


def error_answer(error: BaseException | None, status: int) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` for an exception; ``status`` is tornado's guess.

    Unexpected exceptions become a 500 with a generic sentence: their text may hold
    internals (SQL, paths), and the traceback goes to the service log instead.
    """
    if isinstance(error, ApiError):
        status, code, message, field = error.status, error.code, error.message, error.field
    elif isinstance(error, SchedulerError):
        status, code, message, field = status_of(error), error.code, error.message, error.field
    elif isinstance(error, web.HTTPError) or (error is None and status != 500):
        status = error.status_code if error is not None else status
        code, field = _HTTP_CODES.get(status, "http"), None
        message = _http_message(error, status)
    else:
        status, code, message, field = 500, "internal", INTERNAL_MESSAGE, None
    return status, {"status": status, "error": code, "message": message, "field": field}


def _http_message(error: web.HTTPError | None, status: int) -> str:
    if status == 500:
        return INTERNAL_MESSAGE
    if error is not None and error.log_message:
        text = error.log_message % error.args if error.args else error.log_message
        return text
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"HTTP error {status}"
