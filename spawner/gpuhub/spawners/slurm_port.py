"""How a notebook server on a Slurm node tells the hub its port: both ends.

The hub cannot know which port is free on a node, and no file should carry it (a file
others can read tells them where a server listens; one only its user can read needs a
file system the hub shares, and a poll). So the server picks its own port once it is on
its node, and reports it to the hub in an authenticated API call:

* on the node, the batch script runs ``python -m gpuhub.spawners.slurm_port --
  jupyterhub-singleuser ...`` (:func:`main`): it binds a free port on the server's bind
  address, ``POST``\\ s ``{"port": P, "slurm_job": "ID"}`` to
  ``{JUPYTERHUB_API_URL}/users/NAME/server/slurm-port`` (``.../servers/NAME/...`` for a
  named server) with the server's own ``JUPYTERHUB_API_TOKEN``, then becomes the server,
  listening on that port;
* in the hub, :class:`SlurmPortHandler` (registered with ``c.JupyterHub.extra_handlers =
  slurm_port_handlers``) accepts the report only with *that server's own* token (not
  any token of its user), only while the spawner waits for it, and only from the Slurm
  job the spawner submitted; it hands the port to the spawner
  (:meth:`~gpuhub.spawners.slurm.SlurmSpawner.port_reported`).

The address is never taken from the report: the hub reads the node's ``NodeAddr`` from
Slurm, so a token cannot point the proxy at another host. This is batchspawner's
pattern (``/api/batchspawner``) without its faults: no handler registered at import
time, no attribute of the spawner set from the request, errors answered, not ignored.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from ..ports import free_port

#: Seconds the node side keeps trying to reach the hub (it may be restarting).
REPORT_TIMEOUT_S = 60.0


class PortRefused(Exception):
    """A port report the spawner does not take (not waiting, or from another job)."""


def report_url(api_url: str, user: str, server: str = "") -> str:
    """Where a server reports its port: ``{api}/users/NAME/server/slurm-port``."""
    base = f"{api_url.rstrip('/')}/users/{quote(user, safe='')}"
    if server:
        return f"{base}/servers/{quote(server, safe='')}/slurm-port"
    return f"{base}/server/slurm-port"


def parse_report(body: Any) -> tuple[int, str]:
    """``(port, slurm_job)`` from a report's JSON body; ValueError with the reason."""
    if not isinstance(body, dict) or set(body) != {"port", "slurm_job"}:
        raise ValueError('the body must be {"port": N, "slurm_job": "ID"} and nothing else')
    port, job = body["port"], body["slurm_job"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError("port must be a whole number from 1 to 65535")
    if not isinstance(job, str) or not job.isdigit() or len(job) > 20:
        raise ValueError('slurm_job must be the Slurm job id, e.g. "123"')
    return port, job


class SlurmPortHandler(APIHandler):
    """``POST /hub/api/users/NAME/server[s/SERVER]/slurm-port``: a Slurm server's port."""

    async def post(self, user_name: str, server_name: str = "") -> None:
        """Hand the reported port to the waiting spawner; 403 for any token but the
        server's own, 409 when the spawner waits for no report from that job."""
        user = self.current_user
        spawners = getattr(user, "spawners", None)
        spawner = spawners.get(server_name) if spawners is not None else None
        if user is None or user.name != user_name or spawner is None:
            raise web.HTTPError(404, "no such server")
        token = self.get_auth_token() or ""
        own = getattr(spawner, "api_token", "") or ""
        if not own or not hmac.compare_digest(token.encode(), own.encode()):
            raise web.HTTPError(403, "only the server's own token may report its port")
        if not hasattr(spawner, "port_reported"):
            raise web.HTTPError(409, "this server is not started by the Slurm spawner")
        try:
            port, job = parse_report(self.get_json_body())
            spawner.port_reported(port, job)
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from None
        except PortRefused as e:
            raise web.HTTPError(409, str(e)) from None
        self.write({"port": port, "slurm_job": job})


#: ``c.JupyterHub.extra_handlers = slurm_port_handlers`` (the hub adds its prefix).
slurm_port_handlers = [
    (r"/api/users/([^/]+)/server/slurm-port", SlurmPortHandler),
    (r"/api/users/([^/]+)/servers/([^/]+)/slurm-port", SlurmPortHandler),
]


# -- the node's side ---------------------------------------------------------------------


def with_port(service_url: str, port: int) -> str:
    """``JUPYTERHUB_SERVICE_URL`` with its port replaced: where the server binds."""
    url = urlparse(service_url)
    host = url.hostname or "0.0.0.0"
    host = f"[{host}]" if ":" in host else host
    return urlunparse(url._replace(netloc=f"{host}:{port}"))


def send_report(env: Mapping[str, str], port: int, timeout: float = REPORT_TIMEOUT_S) -> None:
    """POST the port to the hub with the server's token, retrying while the hub does not
    answer (or answers 5xx) for up to ``timeout`` seconds; SystemExit on a refusal."""
    url = report_url(env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_USER"],
                     env.get("JUPYTERHUB_SERVER_NAME", ""))  # fmt: skip
    body = json.dumps({"port": port, "slurm_job": env["SLURM_JOB_ID"]}).encode()
    headers = {
        "Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}",
        "Content-Type": "application/json",
    }
    # the hub is reached directly, never through a proxy of the node's environment
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if env.get("JUPYTERHUB_SSL_CLIENT_CA"):
        from jupyterhub.utils import make_ssl_context

        ctx = make_ssl_context(env.get("JUPYTERHUB_SSL_KEYFILE"),
                               env.get("JUPYTERHUB_SSL_CERTFILE"),
                               cafile=env["JUPYTERHUB_SSL_CLIENT_CA"])  # fmt: skip
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=10):
                return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                text = e.read().decode(errors="replace")[:500]
                raise SystemExit(
                    f"gpuhub: the hub refused port {port} ({e.code}): {text}"
                ) from None
            error: Exception = e
        except OSError as e:  # not reachable (yet): the hub may be restarting
            error = e
        if time.monotonic() + delay > deadline:
            raise SystemExit(f"gpuhub: could not report port {port} to {url}: {error}")
        print(f"gpuhub: reporting port {port} failed ({error}); retrying", file=sys.stderr)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def main(argv: Sequence[str] | None = None) -> None:
    """Pick a port, report it, become the server: ``python -m gpuhub.spawners.slurm_port
    -- jupyterhub-singleuser [ARGS...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: python -m gpuhub.spawners.slurm_port -- COMMAND [ARGS...]")
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/")
    port = free_port(urlparse(service_url).hostname or "0.0.0.0")
    send_report(os.environ, port)
    os.environ["JUPYTERHUB_SERVICE_URL"] = with_port(service_url, port)
    print(f"gpuhub: the server listens on port {port}", file=sys.stderr, flush=True)
    try:
        os.execvp(args[0], args)
    except OSError as e:
        raise SystemExit(f"gpuhub: cannot run {args[0]}: {e.strerror}") from None


if __name__ == "__main__":
    main()
