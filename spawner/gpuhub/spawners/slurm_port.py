"""How a notebook server on a Slurm node tells the hub its port: the hub's end (the
node's is :mod:`gpuhub.spawners.slurm_node`, which imports nothing of JupyterHub, so the
server starts a second sooner).

The hub cannot know which port is free on a node, and no file should carry it (a file
others can read tells them where a server listens; one only its user can read needs a
file system the hub shares, and a poll). So the server picks its own port once it is on
its node, and reports it to the hub in an authenticated API call:

* on the node, the batch script runs ``python -m gpuhub.spawners.slurm_node --
  jupyterhub-singleuser ...`` (:func:`gpuhub.spawners.slurm_node.main`): it binds a free port on the server's bind
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
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web


class PortRefused(Exception):
    """A port report the spawner does not take (not waiting, or from another job)."""


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
