"""Free TCP ports on 127.0.0.1 for the servers tests start (hubs, proxies, PostgreSQL).

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range
every outgoing connection takes its local port from: between choosing it and the server
binding it, one of the suite's many connections may take it ("Address already in use").
So ports are drawn from below that range, where no connection's local end lands, and
checked free by binding them.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000


def _ephemeral_start() -> int:
    try:
        return int(_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, outside the ephemeral range where it can be."""
    top = _ephemeral_start()
    if top - _LOWEST >= 1000:
        for _ in range(100):
            port = random.randrange(_LOWEST, top)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:  # no room below the range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
