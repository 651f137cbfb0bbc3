"""A small client of the gpuhub REST API with one error path.

Every failure becomes a :class:`CliError` whose message is one sentence for people:
the ``message`` of the API's JSON error for a non-2xx answer, or "cannot reach gpuhub
at URL: ..." when no answer came at all.
"""

from __future__ import annotations

from typing import Any

import httpx

API_PATH = "/api/v1"


class CliError(Exception):
    """A failure to report as ``gpuhub: error: <message>`` (exit status 1).

    ``status`` is the HTTP status when the API answered, ``field`` the request field
    the API blamed (when it named one).
    """

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field

    def __str__(self) -> str:
        return self.message


def api_root(url: str) -> str:
    """The API root for a service URL: ``.../services/gpuhub`` -> ``.../services/gpuhub/api/v1``."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH


def hub_root(url: str) -> str:
    """The hub's public URL guessed from the service URL (for pointing at ``/hub/token``)."""
    url = url.rstrip("/")
    if url.endswith(API_PATH):
        url = url[: -len(API_PATH)]
    return url.split("/services/", 1)[0]


def no_token_message(url: str) -> str:
    """The one-liner for a missing token."""
    return (
        "no API token: set GPUHUB_TOKEN (or pass --token) to a JupyterHub token; "
        f"get one on the hub's token page, {hub_root(url)}/hub/token"
    )


class GpuhubClient:
    """Calls the gpuhub REST API at ``url`` (the service URL) with a JupyterHub ``token``."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api = api_root(url)
        self.token = token or None
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request; return the 2xx response or raise :class:`CliError`."""
        headers = {"Accept": "application/json"}
        if auth:
            if not self.token:
                raise CliError(no_token_message(self.url))
            headers["Authorization"] = f"token {self.token}"
        url = self.api + "/" + path.lstrip("/") if path else self.api
        try:
            resp = httpx.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as e:
            raise CliError(
                f"cannot reach gpuhub at {self.url}: {str(e) or type(e).__name__}"
            ) from e
        except ValueError as e:  # httpx refuses malformed URLs with ValueError subclasses
            raise CliError(f"cannot reach gpuhub at {self.url}: {e}") from e
        if resp.is_success:
            return resp
        raise self._error(resp)

    def _error(self, resp: httpx.Response) -> CliError:
        message = field = None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            message, field = data.get("message"), data.get("field") or None
            if isinstance(message, str):
                message = message.removeprefix(": ")  # whole-body errors name no field
        if not message:
            message = (
                f"gpuhub at {self.url} answered {resp.status_code} {resp.reason_phrase} "
                f"for {resp.request.method} {resp.request.url.path}"
            )
            if resp.status_code in (404, 302, 301):
                message += " (is the URL the gpuhub service, e.g. http://HUB/services/gpuhub?)"
        elif resp.status_code == 401 and self.token:
            message = (
                f"the token was not accepted ({message}); "
                f"get a new one on {hub_root(self.url)}/hub/token"
            )
        return CliError(str(message), status=resp.status_code, field=field)

    def get(self, path: str, params: Any = None, *, auth: bool = True) -> Any:
        """``GET`` and decode the JSON answer."""
        return self._json(self.request("GET", path, params=params, auth=auth))

    def get_text(self, path: str, params: Any = None) -> str:
        """``GET`` and return the body as text (CSV)."""
        return self.request("GET", path, params=params).text

    def post(self, path: str, body: Any) -> Any:
        """``POST`` a JSON body and decode the JSON answer."""
        return self._json(self.request("POST", path, json=body))

    def put(self, path: str, body: Any) -> Any:
        """``PUT`` a JSON body and decode the JSON answer."""
        return self._json(self.request("PUT", path, json=body))

    def delete(self, path: str) -> Any:
        """``DELETE``; the decoded JSON answer, or None for an empty one (204)."""
        resp = self.request("DELETE", path)
        return self._json(resp) if resp.content else None

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError as e:
            raise CliError(
                f"gpuhub at {self.url} answered {resp.request.url.path} with something "
                "that is not JSON (is the URL the gpuhub service?)",
                status=resp.status_code,
            ) from e
