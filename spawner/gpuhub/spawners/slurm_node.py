"""What a notebook server's batch script runs on its Slurm node before the server: pick a
free port, report it to the hub with the server's own token, then become the server on it
(``python -m gpuhub.spawners.slurm_node -- jupyterhub-singleuser ...``). The hub's end is
:mod:`gpuhub.spawners.slurm_port`. Nothing here imports JupyterHub or tornado (the
report is one HTTP request), so the server starts without importing them twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

from ..ports import free_port

#: Seconds the node side keeps trying to reach the hub (it may be restarting).
REPORT_TIMEOUT_S = 60.0


def report_url(api_url: str, user: str, server: str = "") -> str:
    """Where a server reports its port: ``{api}/users/NAME/server/slurm-port``."""
    base = f"{api_url.rstrip('/')}/users/{quote(user, safe='')}"
    if server:
        return f"{base}/servers/{quote(server, safe='')}/slurm-port"
    return f"{base}/server/slurm-port"


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
    """Pick a port, report it, become the server: ``python -m gpuhub.spawners.slurm_node
    -- jupyterhub-singleuser [ARGS...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: python -m gpuhub.spawners.slurm_node -- COMMAND [ARGS...]")
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
