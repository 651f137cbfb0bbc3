"""The base of every gpuhub REST handler: login, strict input, and the one error path.

Authentication is JupyterHub's: OAuth cookies for browsers, ``Authorization: token ...``
for API clients. Bodies are read as a stream so that one over the limit is refused with
a JSON 413 before it is read (tornado's own limit would answer a bare 400). Every error,
a scheduler's refusal, the service's own, tornado's (unknown route, method, bad
encoding) or an unexpected exception, is rendered by :meth:`BaseHandler.write_error`;
a path nothing serves is the catch-all :class:`NotFoundHandler`'s (the last route).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from pydantic import BaseModel
from tornado import web

from ..names import check_name
from ..scheduler.core import Scheduler
from ..scheduler.errors import Forbidden, NotFound, SchedulerError
from ..scheduler.reads import SchedulerView
from .body import MAX_BODY_BYTES, parse_body, too_large
from .errors import ApiError, error_answer, is_refusal

if TYPE_CHECKING:
    from ..scheduler.core import Lease

log = logging.getLogger("gpuhub.service")

ADMIN_SCOPE = "custom:gpuhub:admin"
#: Bodies up to this size are read (and dropped) before a refusal is answered, so that
#: the answer reaches the client through the proxy; larger ones are answered at once.
DRAIN_BYTES = 4 * 1024 * 1024
#: The largest lease id the database can hold (PostgreSQL ``integer``).
MAX_LEASE_ID = 2**31 - 1
#: Times outside these years cannot be written back as ISO dates in every time zone.
_YEARS = (1970, 9000)

M = TypeVar("M", bound=BaseModel)


def checked_name(kind: str, value: str, field: str) -> str:
    """``check_name`` for names from the URL or query: a 400 naming ``field``."""
    try:
        return check_name(kind, value)
    except ValueError as e:
        raise ApiError(400, str(e), field=field) from e


IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


def path_id(raw: str, what: str) -> int:
    """A numeric id from the URL path; ids beyond the database's range are not found."""
    if len(raw) > 10 or int(raw) > MAX_LEASE_ID:
        raise NotFound(f"no {what} {raw}")
    return int(raw)


@web.stream_request_body
class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Authenticates through JupyterHub; turns every refusal into a JSON 4xx."""

    requires_auth = True
    #: The largest request body this route reads (bytes); larger ones are refused with 413.
    max_body_bytes = MAX_BODY_BYTES
    #: Refused bodies up to this size are read (and dropped) before the answer.
    drain_bytes = DRAIN_BYTES
    #: Set once ``prepare`` has accepted the request; the body is read only after that.
    _prepared = False
    _body_refused = False

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler the service serves: its methods are the writes."""
        return self.settings["scheduler"]

    @property
    def view(self) -> SchedulerView:
        """The scheduler's read API: every read goes through it."""
        return self.scheduler.view

    # -- the request -----------------------------------------------------------------

    async def prepare(self) -> None:
        """Admit the request (size, login), or refuse it once its body has been read."""
        self._body = bytearray()
        self._received = 0
        self._refusal: BaseException | None = None
        try:
            if self._declared_length() > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            await self.admit()
        except (ApiError, SchedulerError) as e:
            if not self._body_expected() or self._declared_length() > self.drain_bytes:
                raise  # answered now; the connection closes (see write_error)
            self._refuse_after_body(e)
        self._prepared = True

    async def admit(self) -> None:
        """Authenticate through JupyterHub; raise a refusal, or redirect a browser to log in."""
        # HubOAuth accepts a cookie on POST/PUT/DELETE only with a valid XSRF token
        self._hub_auth_user_cache = None
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            try:
                self._hub_auth_user_cache = self.check_hub_user(model)
            except UserNotAllowed as e:
                raise ApiError(
                    403,
                    f"{model.get('name')} lacks the access:services!service=gpuhub scope",
                    code="forbidden",
                ) from e
        if self.current_user is None and self.requires_auth:
            if self._browser_get():
                # a browser without our OAuth cookie: send it through the hub's login
                self._refuse_body_unread()
                self.redirect(self.get_login_url())
                return
            raise ApiError(
                401, "authentication required: log in, or send 'Authorization: token <JupyterHub token>'",
                code="unauthenticated",
            )  # fmt: skip

    def data_received(self, chunk: bytes) -> None:
        """Keep the body up to the limit; past it, drop it and refuse with 413."""
        if self._finished:
            return
        self._received += len(chunk)
        if self._refusal is None and self._received > self.max_body_bytes:
            self._refuse_after_body(too_large(self.max_body_bytes))
        if self._refusal is None:
            self._body += chunk
        elif self._received > self.drain_bytes:  # not worth reading on: answer now and close
            self._body_refused = True
            error = self._refusal
            self.log_exception(type(error), error, None)
            self.send_error(400, exc_info=(type(error), error, None))

    def _declared_length(self) -> int:
        length = self.request.headers.get("Content-Length", "0")
        return int(length) if re.fullmatch(r"[0-9]{1,30}", length) else 0

    def _body_expected(self) -> bool:
        chunked = "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        return chunked or self._declared_length() > 0

    def _refuse_after_body(self, error: BaseException) -> None:
        # Answering before the body is read makes tornado close the connection with data
        # unread, and the proxy then reports the reset as a 503 instead of our answer. So
        # the body is read and dropped, and the method this request would call raises.
        self._refusal = error
        self._body = bytearray()

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise error

        setattr(self, self.request.method.lower(), refuse)

    def _refuse_body_unread(self) -> None:
        # An answer before the body is read (no body, or one too large to read): tornado
        # then closes the connection, so say so to the proxy, which would otherwise reuse
        # it ("socket hang up", 503); and the rest of the body must not be checked against
        # the server's own size limit (a bare "400 Bad Request" after our answer).
        self.set_header("Connection", "close")
        if self.request.connection is not None:
            self.request.connection.set_max_body_size(sys.maxsize)

    def _browser_get(self) -> bool:
        """A page load by a browser (no token; HTML accepted), which OAuth can log in."""
        r = self.request
        return (
            r.method in ("GET", "HEAD")
            and "Authorization" not in r.headers
            and "token" not in r.query_arguments
            and "text/html" in r.headers.get("Accept", "")
        )

    def body(self, model: type[M]) -> M:
        """The request body as ``model``, parsed strictly (see :mod:`gpuhub.service.body`)."""
        return parse_body(bytes(self._body), model, self.max_body_bytes)

    def query(self, name: str) -> str | None:
        """A query argument given at most once, as sent (not stripped); None when absent."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise ApiError(400, f"give {name} once, not {len(values)} times", field=name)
        return self._decoded(name, values[0])

    def query_default(self, name: str, default: str) -> str:
        """A query argument given at most once, or ``default`` when absent (not when empty)."""
        value = self.query(name)
        return default if value is None else value

    def query_list(self, name: str) -> list[str]:
        """Every value of a repeatable query argument."""
        return [self._decoded(name, v) for v in self.request.query_arguments.get(name, [])]

    def _decoded(self, name: str, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApiError(400, f"{name} is not UTF-8 text", field=name) from e

    def query_statuses(self, allowed: Sequence[str]) -> set[str]:
        """The ``status`` query arguments (repeatable), each one of ``allowed``."""
        statuses = set(self.query_list("status"))
        bad = statuses - set(allowed)
        if bad:
            raise ApiError(
                400,
                f"unknown status {sorted(bad)[0]!r}; use {', '.join(allowed)}",
                field="status",
            )
        return statuses

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """A whole-number query argument from ``low`` to ``high`` (digits only)."""
        raw = self.query(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
            raise ApiError(400, f"{name} must be a whole number from {low} to {high}", field=name)
        return int(raw)

    def query_time(self, name: str, default: float) -> float:
        """A date or time query argument as POSIX seconds (UTC when no zone is given)."""
        raw = self.query(name)
        if raw is None:
            return default
        try:
            t = dt.datetime.fromisoformat(raw)
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.UTC)
            ok = _YEARS[0] <= t.astimezone(dt.UTC).year < _YEARS[1]
        except (ValueError, OverflowError):
            ok = False
        if not ok:
            raise ApiError(
                400,
                f"{name} must be a date or time like 2026-11-01 or 2026-11-01T12:00Z, "
                f"from {_YEARS[0]} to {_YEARS[1] - 1}",
                field=name,
            )
        return t.timestamp()

    def idempotency_key(self) -> str | None:
        """The ``Idempotency-Key`` header (1-128 of ``A-Za-z0-9._:-``), or None if not sent."""
        key = self.request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise ApiError(
                400,
                f"the {IDEMPOTENCY_HEADER} header must be 1-128 characters from "
                "A-Z, a-z, 0-9 and . _ : - (one per request)",
                field=IDEMPOTENCY_HEADER,
            )
        return key

    def query_name(self, kind: str, name: str) -> str | None:
        """A user or group name from the query, checked whole; None when absent."""
        value = self.query(name)
        return None if value is None else checked_name(kind, value, name)

    # -- who is asking -----------------------------------------------------------------

    @property
    def user_name(self) -> str:
        """The caller's JupyterHub name."""
        return self.current_user["name"]

    @property
    def is_admin(self) -> bool:
        """Whether the caller has the gpuhub admin scope."""
        return ADMIN_SCOPE in self.current_user.get("scopes", ())

    def require_admin(self, what: str) -> None:
        """Refuse (403) unless the caller is a gpuhub admin."""
        if not self.is_admin:
            raise Forbidden(f"{what} needs the {ADMIN_SCOPE} scope (gpuhub admins)")

    def for_user(self, name: str | None) -> str:
        """The user a request acts for: oneself, or anyone for admins."""
        if name is None or name == self.user_name:
            return self.user_name
        checked_name("user", name, "user")
        if not self.is_admin:
            raise Forbidden(f"{self.user_name} may not act for user {name}; only admins can")
        return name

    def listed_user(self) -> str | None:
        """Whose items a list shows (``?user=``): oneself, or anyone (None: everyone) for
        admins."""
        user = self.query_name("user", "user")
        if user is not None or not self.is_admin:
            user = self.for_user(user)
        return user

    async def acting_for(self, name: str | None) -> tuple[str, list[str]]:
        """(user, their JupyterHub groups) a request acts for: oneself, or anyone for admins."""
        user = self.for_user(name)
        if user == self.user_name:
            return user, list(self.current_user.get("groups") or [])
        return user, await self.settings["hub_groups"](user)

    # -- answers -----------------------------------------------------------------------

    def write_json(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Render any error as ``{"status", "error", "message", "field"}``: the one place."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        status, answer = error_answer(error, status_code)
        if not self._prepared or self._body_refused:
            self._refuse_body_unread()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 401:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
        if status == 405:
            allowed = self.allowed_methods()
            self.set_header("Allow", ", ".join(allowed))
            answer["message"] = (
                f"{self.request.method} is not allowed on {self.request.path}; "
                f"use {' or '.join(allowed)}"
            )
        self.finish(json.dumps(answer))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Refusals are expected: one line, no traceback; anything else as tornado logs it."""
        if is_refusal(value):
            log.info("refused %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler implements."""
        return [
            m
            for m in cls.SUPPORTED_METHODS
            if getattr(cls, m.lower()) is not getattr(web.RequestHandler, m.lower())
        ]

    # -- leases ------------------------------------------------------------------------

    def lease_view(self, lease: Lease, waits: dict[int, dict] | None = None) -> dict:
        """A lease as the API shows it, with its queue position, latest GPU activity and,
        while queued, why it waits (``waits``: :meth:`SchedulerView.waiting_all` of a list)."""
        now = self.view.clock()
        out = lease.to_dict(now, self.view.position(lease))
        activity = self.view.activity(lease.id)
        out["activity"] = None if activity is None else activity.to_dict(now)
        if waits is None:
            waits = self.view.waiting_all([lease])
        out["waiting"] = waits.get(lease.id)
        reclaimer = self.settings.get("reclaimer")
        out["idle_warning"] = None if reclaimer is None else reclaimer.warning(lease.id)
        return out

    def lease_views(self, leases: list[Lease]) -> list[dict]:
        """:meth:`lease_view` of each lease; the queued ones explained in one go."""
        waits = self.view.waiting_all(leases)
        return [self.lease_view(x, waits) for x in leases]

    def own_lease(self, lease_id: str) -> Lease:
        """A lease the caller may see; ids beyond the database's range are not found."""
        lease = self.view.get(path_id(lease_id, "lease"))
        if lease.user != self.user_name and not self.is_admin:
            raise NotFound(f"no lease {lease_id}")  # others' leases are not even acknowledged
        return lease


class NotFoundHandler(BaseHandler):
    """Any other path: a JSON 404."""

    requires_auth = False

    async def admit(self) -> None:
        """Refuse whatever the method: there is nothing here."""
        raise ApiError(404, f"no such endpoint: {self.request.path}", code="not_found")
