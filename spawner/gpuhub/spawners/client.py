"""A small async client of the gpuhub service, for the hub's spawners.

It authenticates with a token holding the ``custom:gpuhub:admin`` scope and acts for
users with the API's ``user`` field. Every failure becomes one :class:`ServiceError`:
the API's own JSON ``message`` and ``error`` code for a 4xx/5xx answer, or "the gpuhub
service at URL cannot be reached" when no answer came at all.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

API_PATH = "api/v1"


class ServiceError(Exception):
    """The gpuhub service refused a request, or could not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "unavailable"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code

    def __str__(self) -> str:
        return self.message

    @property
    def unreachable(self) -> bool:
        """No answer, or the service (or the proxy in front of it) failed: worth retrying."""
        return self.status is None or self.status >= 500


def api_root(url: str) -> str:
    """``http://h:p/services/gpuhub/`` (or ``.../api/v1``) → ``http://h:p/services/gpuhub/api/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/" + API_PATH) else f"{url}/{API_PATH}"


class GpuhubServiceClient:
    """Calls the gpuhub REST API at ``url`` with an admin ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 20.0) -> None:
        self.api = api_root(url)
        self.token = token
        self.timeout = timeout

    async def call(
        self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """One request; the decoded JSON answer, or :class:`ServiceError`."""
        url = f"{self.api}/{path.lstrip('/')}" if path else self.api
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        req = HTTPRequest(
            url,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
            request_timeout=self.timeout,
            connect_timeout=min(self.timeout, 10.0),
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as e:
            if e.response is None:  # a timeout (599) without a response
                raise ServiceError(
                    f"the gpuhub service at {self.api} did not answer in time ({e.message})"
                ) from e
            raise _error_from(e.code, e.response.body, self.api) from e
        except OSError as e:
            raise ServiceError(f"the gpuhub service at {self.api} cannot be reached: {e}") from e
        if resp.code == 204 or not resp.body:
            return None
        try:
            return json.loads(resp.body)
        except ValueError as e:
            raise ServiceError(
                f"the gpuhub service at {self.api} answered {path} with something that is not JSON",
                status=resp.code,
                code="bad_response",
            ) from e

    # -- the calls the spawners make ---------------------------------------------------

    async def request_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /leases``: granted (``active``) or ``queued``; refusals raise."""
        return await self.call("POST", "leases", body=body)

    async def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /leases/preview``: what the request would get now (changes nothing)."""
        return await self.call("POST", "leases/preview", body=body)

    async def lease(self, lease_id: int) -> dict[str, Any]:
        """``GET /leases/{id}``."""
        return await self.call("GET", f"leases/{int(lease_id)}")

    async def release(self, lease_id: int) -> dict[str, Any] | None:
        """``DELETE /leases/{id}``: release if active, cancel if queued; None if unknown."""
        try:
            return await self.call("DELETE", f"leases/{int(lease_id)}")
        except ServiceError as e:
            if e.status == 404:
                return None
            raise

    async def leases(self, *, status: tuple[str, ...] = ("active", "queued")) -> list[dict]:
        """Everyone's leases with these statuses (admin token)."""
        data = await self.call("GET", "leases", query={"status": list(status), "limit": 10000})
        return list(data.get("leases", []))

    async def me(self, user: str) -> dict[str, Any]:
        """``GET /me?user=NAME``: the user's quotas with what is left, leases and queue."""
        return await self.call("GET", "me", query={"user": user})


def _error_from(status: int, body: bytes | None, api: str) -> ServiceError:
    data: Any = None
    try:
        data = json.loads(body or b"")
    except ValueError:
        pass
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return ServiceError(data["message"], status=status, code=str(data.get("error") or "error"))
    if status >= 500:
        return ServiceError(
            f"the gpuhub service at {api} failed (HTTP {status}); see its log", status=status
        )
    return ServiceError(f"the gpuhub service refused the request (HTTP {status})", status=status,
                        code="error")  # fmt: skip


__all__ = ["GpuhubServiceClient", "ServiceError", "api_root"]
