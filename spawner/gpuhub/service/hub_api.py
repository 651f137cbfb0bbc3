"""The questions and changes the gpuhub service sends JupyterHub's REST API, with its own token.

Reads (users, groups) need the ``read:users``/``read:groups`` scopes of the service's role;
cohorts (:mod:`gpuhub.service.cohorts`) and ``PUT /quotas/groups/NAME?create=true`` also
create groups and change their members (``admin:groups``) and create users
(``admin:users``). The hub's refusals become :class:`HubRefused`, which carries the hub's
status and sentence, and is answered as an :class:`~gpuhub.service.errors.ApiError`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..scheduler.errors import NotFound
from .errors import ApiError

#: What each change needs in the service's role, for the sentence when the hub says 403.
_SCOPE_OF = {"groups": "admin:groups", "users": "admin:users"}
#: Groups asked for per page (JupyterHub's default most per page).
GROUP_PAGE = 200


class HubRefused(ApiError):
    """JupyterHub refused a change. Its 4xx is passed on (an invalid name, ...), except a
    403: that is the service's role lacking a scope, no fault of the caller (502)."""

    def __init__(self, hub_status: int, message: str) -> None:
        super().__init__(502 if hub_status == 403 else hub_status, message, code="hub_refused")
        self.hub_status = hub_status


def _hub_message(e: HTTPClientError) -> str:
    body = e.response.body if e.response is not None else b""
    try:
        return str(json.loads(body).get("message") or e.message)
    except (ValueError, AttributeError):
        return str(e.message)


async def _call(
    api_url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 10
) -> tuple[int, Any]:
    """(status, decoded JSON or None) of one hub API call; 4xx answers are returned, not
    raised; a hub that does not answer is a 502 naming it."""
    req = HTTPRequest(
        url_path_join(api_url, path),
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        body=None if body is None and method != "POST" else json.dumps(body or {}),
        allow_nonstandard_methods=True,  # DELETE with a body (group members)
        request_timeout=timeout,
    )
    try:
        resp = await AsyncHTTPClient().fetch(req)
    except HTTPClientError as e:
        if e.response is not None and 400 <= e.code < 500:
            return e.code, _hub_message(e)
        raise ApiError(
            502, f"JupyterHub did not answer {method} {path} ({e}); try again", code="hub_error"
        ) from e
    except OSError as e:
        raise ApiError(
            502, f"JupyterHub is not reachable ({e}); try again", code="hub_error"
        ) from e
    return resp.code, json.loads(resp.body) if resp.body else None


def _scope_of(path: str) -> str:
    """The scope a change of ``path`` needs."""
    return "admin:servers" if "/server" in path else _SCOPE_OF[path.split("/")[0]]


def _name(name: str) -> str:
    return quote(name, safe="")


class HubApi:
    """The hub's users, groups and servers as the gpuhub service may read and change them:
    the one caller of JupyterHub's REST API in the service (requests, the quoting of names,
    what an answer of the hub means). Names are quoted whole (``/`` included): names may
    be any Unicode JupyterHub accepts."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url, self.token = api_url, token

    async def _change(
        self,
        what: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        allow: int = 0,
        timeout: float = 10,
    ) -> int:
        """Send a change; its status (``allow`` is a 4xx status that is no refusal)."""
        status, answer = await _call(self.api_url, self.token, method, path, body, timeout)
        if status == allow:
            return status
        if status == 403:
            raise HubRefused(
                403,
                f"JupyterHub refused to change {what}: the gpuhub service's role needs the "
                f"{_scope_of(path)} scope (see docs/how-to/cohorts.md)",
            )
        if status >= 400:
            raise HubRefused(status, f"JupyterHub refused to change {what}: {answer}")
        return status

    async def user(self, name: str) -> dict[str, Any] | None:
        """The hub's model of a user, or None if the hub has no such user."""
        status, answer = await _call(self.api_url, self.token, "GET", f"users/{_name(name)}")
        return None if status == 404 else self._read(status, answer, f"user {name}")

    async def user_groups(self, name: str) -> list[str]:
        """A user's JupyterHub groups (404 naming the user if the hub has none such)."""
        model = await self.user(name)
        if model is None:
            raise NotFound(f"JupyterHub has no user {name}")
        return list(model.get("groups") or [])

    async def group(self, name: str) -> dict[str, Any] | None:
        """The hub's model of a group (``users`` its members), or None if there is none."""
        status, answer = await _call(self.api_url, self.token, "GET", f"groups/{_name(name)}")
        return None if status == 404 else self._read(status, answer, f"group {name}")

    async def groups(self) -> list[dict[str, Any]]:
        """Every group of the hub (``users`` its members), a page at a time."""
        out: list[dict[str, Any]] = []
        while True:
            path = f"groups?offset={len(out)}&limit={GROUP_PAGE}"
            status, answer = await _call(self.api_url, self.token, "GET", path)
            page = self._read(status, answer, "its groups")
            out += page
            if len(page) < GROUP_PAGE:
                return out

    @staticmethod
    def _read(status: int, answer: Any, what: str) -> Any:
        if status >= 400:
            raise ApiError(502, f"JupyterHub did not tell {what}: {answer}", code="hub_error")
        return answer

    async def stop_server(self, user: str, server: str = "") -> None:
        """Stop a user's server (``server`` "" is the default one); one already gone is
        fine. The hub answers once the stop is under way."""
        path = f"users/{_name(user)}/" + (f"servers/{_name(server)}" if server else "server")
        what = f"the server {user}/{server}" if server else f"{user}'s default server"
        await self._change(what, "DELETE", path, allow=404, timeout=30)

    async def create_group(self, name: str) -> bool:
        """Create an empty group; False if it existed already."""
        path = f"groups/{_name(name)}"
        return await self._change(f"group {name}", "POST", path, allow=409) != 409

    async def create_users(self, names: list[str]) -> None:
        """Create users (the hub skips any that exist meanwhile)."""
        if names:
            # 409: all exist by now (created meanwhile, or named as the hub normalizes them)
            what = f"users {', '.join(names)}"
            await self._change(what, "POST", "users", {"usernames": list(names)}, allow=409)

    async def add_members(self, group: str, users: list[str]) -> None:
        """Add users (who must exist) to a group."""
        if users:
            path = f"groups/{_name(group)}/users"
            await self._change(f"the members of group {group}", "POST", path, {"users": users})

    async def remove_members(self, group: str, users: list[str]) -> None:
        """Remove users from a group."""
        if users:
            path = f"groups/{_name(group)}/users"
            await self._change(f"the members of group {group}", "DELETE", path, {"users": users})
