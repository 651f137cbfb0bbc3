"""The one client of the gpuhub REST API: the spawners, the CLI and the notebook side use it.

Two flavours share how a request is built, how an answer is decoded and when a failed
request is tried again: :class:`GpuhubClient` (blocking, for the CLI) and
:class:`AsyncGpuhubClient` (for the hub's spawners and the notebook extension).

* ``url`` is the service's URL (``http://HUB/services/gpuhub``); the API is under
  :func:`api_root`. A ``token`` is a JupyterHub token, sent as ``Authorization: token ...``.
* Every failure is one :class:`GpuhubError`: the API's JSON ``{status, error, message,
  field}`` for a refusal, or a sentence saying the service cannot be reached, did not answer
  in time, or answered with something that is not JSON.
* A request that is safe to repeat is tried again, with exponential backoff and within a
  total time budget (:class:`RetryPolicy`), when the service (or the proxy in front of it)
  answers 502, 503 or 504, or the connection fails: a restart of the service must not cost
  a client its request. Safe to repeat are ``GET``/``HEAD``/``OPTIONS``, a ``POST`` that
  carries an ``Idempotency-Key`` (the service answers a repeat with the lease the first
  one created) and requests the caller marks as free of side effects (the lease preview).
  :meth:`AsyncGpuhubClient.request_lease` makes one key per lease and sends it on every try.
  These rules live once, in :meth:`_Requests.retry_loop`, a loop that does no I/O: it says
  :class:`Send` or :class:`Sleep` and is told what came back; each flavour only drives it.
* Names in URL paths are quoted whole (:func:`quote_name`): user and group names may be
  any Unicode and may contain ``/``.
* The batch-job calls (``submit_job``, ``jobs``, ``job_log``, ...) and the reservation
  calls (``reservations``, ``reserve``, ...) are written once, in
  :mod:`gpuhub.client_calls`: each describes its request as an :class:`Op`, which the
  blocking client sends at once and the asyncio client in a coroutine (so there they are
  awaited).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .client_calls import Op, Params, _JobCalls, _ReservationCalls, new_idempotency_key, quote_name
from .terms import LIVE_STATUSES

API_PATH = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Answers of a proxy (or service) that is restarting or overloaded: worth another try.
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GpuhubError(Exception):
    """A request the gpuhub service refused, or that got no usable answer.

    ``status`` is the HTTP status (None when no answer came), ``code`` the API's error
    code (``error`` in its JSON; ``unavailable`` without an answer), ``field`` the request
    field the API blamed, when it named one. ``message`` is one sentence for people.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.field = message, status, code, field

    def __str__(self) -> str:
        return self.message

    @property
    def unreachable(self) -> bool:
        """No answer, or the service (or the proxy in front of it) failed: worth retrying."""
        return self.status is None or self.status >= 500


def api_root(url: str) -> str:
    """``http://h/services/gpuhub`` (or ``.../api/v1/``) → ``http://h/services/gpuhub/api/v1``."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH


def hub_root(url: str) -> str:
    """The hub's URL guessed from the service URL (for pointing at ``/hub/token``)."""
    url = url.rstrip("/")
    if url.endswith(API_PATH):
        url = url[: -len(API_PATH)]
    return url.split("/services/", 1)[0]


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed request that is safe to repeat is tried again.

    The n-th retry waits ``first_delay * factor**(n-1)`` seconds, at most ``max_delay``;
    no retry starts later than ``budget`` seconds after the first try began.
    ``retry_refused``: also retry when the connection is refused (nothing listens yet,
    as while a service restarts on its own port); off, a wrong URL fails at once.
    """

    budget: float = 60.0
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0
    retry_refused: bool = True

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        return min(self.first_delay * self.factor ** (retry - 1), self.max_delay)


#: Never retry.
NO_RETRY = RetryPolicy(budget=0.0)
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Call:
    """One request as built, before it is sent (and re-sent as is on a retry)."""

    method: str
    path: str
    url: str
    params: Params = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retryable: bool = False


@dataclass(frozen=True)
class Send:
    """A step of the retry loop: send ``call`` (again) and tell the loop what came back."""

    call: Call


@dataclass(frozen=True)
class Sleep:
    """A step of the retry loop: wait ``seconds`` before the next try, then resume it."""

    seconds: float


#: What a driver tells the retry loop after a :class:`Send`: the answer, or the exception
#: of a request that got none (an ``httpx.TransportError``, a malformed URL, ...).
Outcome = httpx.Response | Exception
#: The retry loop of one call: it yields steps, is sent an :data:`Outcome` after each
#: :class:`Send` (None after a :class:`Sleep`) and returns the decoded answer or raises
#: :class:`GpuhubError`.
RetryLoop = Generator[Send | Sleep, Outcome | None, Any]
#: Exceptions of sending a request that the retry loop judges (rather than the caller).
SEND_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ValueError)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # made once: building a context loads the CA bundle, too slow for each request
    return ssl.create_default_context()


class _Requests:
    """What both flavours share: building requests, decoding answers, the retry loop."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        on_retry: Callable[[GpuhubError, float, int], None] | None = None,
        trust_env: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.api = api_root(url)
        self.token = token or None
        self.timeout = timeout
        self.retry_policy = retry
        self.on_retry = on_retry
        self.trust_env = trust_env
        self.clock = clock

    def _http_options(self) -> dict[str, Any]:
        return {
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            "trust_env": self.trust_env,
            "verify": _ssl_context(),
        }

    def build(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
    ) -> Call:
        """The request ``method path`` (relative to the API root), ready to send.

        ``retry`` None: retried if the method is safe or an ``idempotency_key`` is sent.
        """
        method = method.upper()
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        if retry is None:
            retry = method in SAFE_METHODS or idempotency_key is not None
        path = path.lstrip("/")
        url = f"{self.api}/{path}" if path else self.api
        return Call(method, path, url, params, json, headers, retry)

    def decode(self, call: Call, resp: httpx.Response, *, text: bool = False) -> Any:
        """The answer's JSON (its text with ``text``; None when empty), or :class:`GpuhubError`."""
        if not resp.is_success:
            raise self.answer_error(call, resp)
        if text:
            return resp.text
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as e:
            raise GpuhubError(
                f"gpuhub at {self.url} answered {call.method} {call.path or '/'} with something "
                "that is not JSON (is the URL the gpuhub service?)",
                status=resp.status_code,
                code="bad_response",
            ) from e

    def answer_error(self, call: Call, resp: httpx.Response) -> GpuhubError:
        """The error of a non-2xx answer, in the API's own words when it gave some."""
        status = resp.status_code
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str) and data["message"]:
            message = data["message"].removeprefix(": ")  # whole-body errors name no field
            if status == 401 and self.token:
                message = (
                    f"the token was not accepted ({message}); "
                    f"get a new one on {hub_root(self.url)}/hub/token"
                )
            code = data.get("error")
            return GpuhubError(
                message,
                status=status,
                code=code if isinstance(code, str) and code else "error",
                field=data.get("field") if isinstance(data.get("field"), str) else None,
            )
        answered = f"{status} {resp.reason_phrase}".strip()
        if status in RETRY_STATUSES:
            message = f"gpuhub at {self.url} is unavailable ({answered}); it may be restarting"
        elif status >= 500:
            message = f"gpuhub at {self.url} failed ({answered}); see its log"
        else:
            message = f"gpuhub at {self.url} answered {answered} for {call.method} /{call.path}"
            if status in (404, 301, 302, 303, 307, 308):
                message += " (is the URL the gpuhub service, e.g. http://HUB/services/gpuhub?)"
        return GpuhubError(message, status=status, code="unavailable" if status >= 500 else "error")

    def transport_error(self, exc: Exception) -> GpuhubError:
        """The error of a request that got no answer."""
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            message = f"gpuhub at {self.url} did not answer in time ({detail})"
        else:
            message = f"cannot reach gpuhub at {self.url}: {detail}"
        error = GpuhubError(message, code="unavailable")
        error.__cause__ = exc
        return error

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
        text: bool = False,
    ) -> Any:
        """Send one request (retrying as the policy allows); the decoded answer, awaited
        in :class:`AsyncGpuhubClient`."""
        call = self.build(
            method, path, params=params, json=json, idempotency_key=idempotency_key, retry=retry
        )
        return self._drive(self.retry_loop(call, text=text))

    def _send(self, op: Op) -> Any:
        """Send a named call's operation; its result (awaited in the asyncio client)."""
        call = self.build(
            op.method, op.path, params=op.params, json=op.json, idempotency_key=op.idempotency_key
        )
        return self._drive(self._result_of(op, self.retry_loop(call)))

    @staticmethod
    def _result_of(op: Op, tries: RetryLoop) -> RetryLoop:
        return op.result((yield from tries))

    def _drive(self, tries: RetryLoop) -> Any:
        """Hook: run the tries of a call, sending and sleeping as they ask; the answer
        (a coroutine of it in the asyncio client)."""
        raise NotImplementedError

    def retry_loop(self, call: Call, *, text: bool = False) -> RetryLoop:
        """The tries of ``call`` under the retry policy, free of I/O (see :data:`RetryLoop`).

        Both clients drive it, so which calls, answers and errors are retried, the
        backoff, the budget, ``on_retry`` and the "tried N times" note live here only.
        """
        started, tries = self.clock(), 0
        while True:
            tries += 1
            outcome = yield Send(call)
            if isinstance(outcome, Exception):
                exc: Exception | None = outcome
                error = self.transport_error(outcome)
            else:
                exc = None
                try:
                    return self.decode(call, outcome, text=text)
                except GpuhubError as e:
                    error = e
            delay = self._retry_delay(call, error, exc, tries, started)
            if delay is None:
                if tries > 1:
                    error.message += f" (tried {tries} times in {self.clock() - started:.0f} s)"
                    error.args = (error.message,)
                raise error
            if self.on_retry is not None:
                self.on_retry(error, delay, tries)
            yield Sleep(delay)

    def _retry_delay(
        self, call: Call, error: GpuhubError, exc: Exception | None, retry: int, started: float
    ) -> float | None:
        """Seconds before retry number ``retry`` of ``call``; None: give up."""
        policy = self.retry_policy
        if not call.retryable:
            return None
        if exc is not None:
            if isinstance(exc, httpx.ConnectError) and not policy.retry_refused:
                return None
            if not isinstance(exc, httpx.TransportError) or isinstance(
                exc, httpx.UnsupportedProtocol
            ):
                return None  # a malformed URL: trying again changes nothing
        elif error.status not in RETRY_STATUSES:
            return None
        delay = policy.delay(retry)
        if self.clock() - started + delay > policy.budget:
            return None
        return delay


class GpuhubClient(
    _Requests,
    _JobCalls[dict[str, Any], list[dict[str, Any]], None],
    _ReservationCalls[dict[str, Any], list[dict[str, Any]], None],
):
    """The gpuhub REST API, blocking (the CLI). Close it, or use it as a context manager.

    ``retry`` is the :class:`RetryPolicy`; ``on_retry(error, delay, retry)`` is told of
    each retry before its wait (the CLI says so on stderr).
    """

    def __init__(
        self, url: str, token: str | None = None, *, sleep: Callable[[float], None] = time.sleep,
        **kw: Any,
    ) -> None:  # fmt: skip
        super().__init__(url, token, **kw)
        self.sleep = sleep
        self._http: httpx.Client | None = None

    def __enter__(self) -> GpuhubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections kept open."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _drive(self, tries: RetryLoop) -> Any:
        """Run ``tries``: send each request on the kept connections, sleep as it asks."""
        if self._http is None:
            self._http = httpx.Client(**self._http_options())
        http = self._http
        try:
            step = next(tries)
            while True:
                if isinstance(step, Sleep):
                    self.sleep(step.seconds)
                    step = tries.send(None)
                    continue
                c = step.call
                try:
                    outcome: Outcome = http.request(
                        c.method, c.url, params=c.params, json=c.json, headers=c.headers
                    )
                except SEND_ERRORS as e:
                    outcome = e
                step = tries.send(outcome)
        except StopIteration as done:
            return done.value

    def get(self, path: str, params: Params = None) -> Any:
        """``GET`` and decode the JSON answer."""
        return self.request("GET", path, params=params)

    def get_text(self, path: str, params: Params = None) -> str:
        """``GET`` and return the body as text (CSV)."""
        return self.request("GET", path, params=params, text=True)

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None) -> Any:
        """``POST`` a JSON body (retried only with an ``idempotency_key``)."""
        return self.request("POST", path, json=body, idempotency_key=idempotency_key)

    def put(self, path: str, body: Any) -> Any:
        """``PUT`` a JSON body and decode the JSON answer."""
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        """``DELETE``; the decoded JSON answer, or None for an empty one (204)."""
        return self.request("DELETE", path)

    def request_lease(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        """``POST /leases`` with one idempotency key for every try: granted or queued."""
        return self.post("leases", body, idempotency_key=idempotency_key or new_idempotency_key())


class AsyncGpuhubClient(
    _Requests,
    _JobCalls[Awaitable[dict[str, Any]], Awaitable[list[dict[str, Any]]], Awaitable[None]],
    _ReservationCalls[Awaitable[dict[str, Any]], Awaitable[list[dict[str, Any]]], Awaitable[None]],
):
    """The gpuhub REST API for asyncio code (the spawners, the notebook extension).

    It keeps no connections between requests, so it needs no closing and may be made
    per use. ``retry``, ``on_retry``: as for :class:`GpuhubClient`.
    """

    def __init__(
        self, url: str, token: str | None = None, *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, **kw: Any,
    ) -> None:  # fmt: skip
        super().__init__(url, token, **kw)
        self.sleep = sleep

    async def _drive(self, tries: RetryLoop) -> Any:
        """Run ``tries``: send each request on connections of this call, sleep as it asks."""
        async with httpx.AsyncClient(**self._http_options()) as http:
            try:
                step = next(tries)
                while True:
                    if isinstance(step, Sleep):
                        await self.sleep(step.seconds)
                        step = tries.send(None)
                        continue
                    c = step.call
                    try:
                        outcome: Outcome = await http.request(
                            c.method, c.url, params=c.params, json=c.json, headers=c.headers
                        )
                    except SEND_ERRORS as e:
                        outcome = e
                    step = tries.send(outcome)
            except StopIteration as done:
                return done.value

    # -- the calls the spawners make ---------------------------------------------------

    async def request_lease(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /leases``, one idempotency key for every try: granted (``active``) or
        ``queued``; refusals raise."""
        key = idempotency_key or new_idempotency_key()
        return await self.request("POST", "leases", json=body, idempotency_key=key)

    async def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /leases/preview``: what the request would get now (changes nothing)."""
        return await self.request("POST", "leases/preview", json=body, retry=True)

    async def lease(self, lease_id: int) -> dict[str, Any]:
        """``GET /leases/{id}``."""
        return await self.request("GET", f"leases/{int(lease_id)}")

    async def release(self, lease_id: int) -> dict[str, Any] | None:
        """``DELETE /leases/{id}``: release if active, cancel if queued; None if unknown."""
        try:
            return await self.request("DELETE", f"leases/{int(lease_id)}")
        except GpuhubError as e:
            if e.status == 404:
                return None
            raise

    async def place_lease(self, lease_id: int, indices: Iterable[int]) -> dict[str, Any]:
        """``PUT /leases/{id}/devices`` (admins): move an active lease onto the GPU indices
        of its node that a cluster engine gave its work; the lease as it is then."""
        body = {"indices": [int(i) for i in indices]}
        return await self.request("PUT", f"leases/{int(lease_id)}/devices", json=body)

    async def leases(self, *, status: Iterable[str] = LIVE_STATUSES) -> list[dict]:
        """Leases with these statuses (everyone's with an admin token)."""
        data = await self.request("GET", "leases", params={"status": list(status), "limit": 10000})
        return list(data.get("leases", []))

    async def me(self, user: str | None = None) -> dict[str, Any]:
        """``GET /me`` (``?user=NAME`` with an admin token): quotas with what is left,
        leases and queue."""
        return await self.request("GET", "me", params={"user": user} if user else None)

    async def options(self, user: str | None = None) -> dict[str, Any]:
        """``GET /me/options`` (``?user=NAME`` with an admin token): the shapes (with their
        models and what is free), profiles and job limits open to the user now."""
        return await self.request(
            "GET", "me/options", params={"user": user} if user else None, retry=True
        )


__all__ = [
    "API_PATH",
    "DEFAULT_RETRY",
    "IDEMPOTENCY_HEADER",
    "NO_RETRY",
    "AsyncGpuhubClient",
    "Call",
    "GpuhubClient",
    "GpuhubError",
    "Op",
    "RetryLoop",
    "RetryPolicy",
    "Send",
    "Sleep",
    "api_root",
    "hub_root",
    "new_idempotency_key",
    "quote_name",
]
