"""HTTP from the tests, on one TLS context per test process.

A new httpx client builds a TLS context of its own from the CA bundle: about 20 ms of
CPU, twenty times what a request to 127.0.0.1 costs, and ``httpx.get()`` builds one per
call. The suite makes thousands of requests while other workers wait for the CPU, so its
clients come from here: :func:`client` and :func:`async_client` share :data:`TLS`, and
one-off requests (:func:`get`, :func:`post`, ...) go through one shared client that keeps
no connection open, so each request is on a fresh connection, as ``httpx.get()``'s is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx

#: The one TLS context of this process's clients (httpx's default: certifi's CAs)
TLS = httpx.create_ssl_context()
_ONE_OFF = httpx.Client(verify=TLS, limits=httpx.Limits(max_keepalive_connections=0))


def client(**kw: Any) -> httpx.Client:
    """``httpx.Client(**kw)`` on the shared TLS context."""
    return httpx.Client(verify=TLS, **kw)


def async_client(**kw: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kw)`` on the shared TLS context."""
    return httpx.AsyncClient(verify=TLS, **kw)


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """One request on a connection of its own, as ``httpx.request()`` sends it."""
    return _ONE_OFF.request(method, url, **kw)


get = partial(request, "GET")
post = partial(request, "POST")
put = partial(request, "PUT")
delete = partial(request, "DELETE")


@contextmanager
def stream(method: str, url: str, **kw: Any) -> Iterator[httpx.Response]:
    """A streamed response on a connection of its own, as ``httpx.stream()`` gives it."""
    with _ONE_OFF.stream(method, url, **kw) as response:
        yield response
