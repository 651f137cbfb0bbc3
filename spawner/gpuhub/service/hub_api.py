"""The few questions the gpuhub service asks JupyterHub's REST API, with its own token."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


async def fetch_user(api_url: str, token: str, user: str) -> dict[str, Any] | None:
    """The hub's model of ``user`` (groups, servers, ...), or None if there is no such user.

    The name is quoted whole (``/`` included): names may be any Unicode JupyterHub accepts.
    """
    req = HTTPRequest(
        url_path_join(api_url, "users", quote(user, safe="")),
        headers={"Authorization": f"token {token}"},
        request_timeout=10,
    )
    try:
        resp = await AsyncHTTPClient().fetch(req)
    except HTTPClientError as e:
        if e.code == 404:
            return None
        raise
    return json.loads(resp.body)
