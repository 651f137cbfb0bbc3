"""Job requests the service refuses. Like the scheduler's errors they know nothing of HTTP
(``gpuhub.service.errors`` maps them to statuses): a ``code``, a sentence, a ``field``."""

from __future__ import annotations

from ..scheduler.errors import SchedulerError


class JobInvalid(SchedulerError):
    """A job request that is malformed in a way its schema cannot say (400)."""

    code = "invalid"


class JobEnded(SchedulerError):
    """The job has already ended: it cannot be cancelled (409)."""

    code = "job_ended"
