"""Free TCP ports for servers gpuhub starts on a host's network (a container on the host
network, a notebook server on a Slurm node).

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range
every outgoing connection takes its local port from: between choosing it and the server
binding it, a connection on the host may take it ("Address already in use"). So ports are
drawn from below that range, where no connection's local end lands, and checked free by
binding them; only where that range leaves no room does the kernel choose.

A port is free when drawn but bound only when its server starts, which for a server
waiting for its turn to boot is seconds later: two servers drawn in that window could get
the same port, the second would fail to bind, and the hub, whose check accepts any HTTP
answer, would take the first one's answer for the second's. So a port handed out is not
handed out again by this process for :data:`HELD_S` seconds.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: The lowest port drawn: above the well-known and most registered services' ports.
LOWEST = 10000
#: How long a port handed out stays out of the draw (its server binds it well before).
HELD_S = 600.0

_handed: dict[int, float] = {}  # port -> when this process handed it out (monotonic)
_lock = threading.Lock()


def ephemeral_start() -> int:
    """The first port of this host's ephemeral range (Linux's default where unreadable)."""
    try:
        return int(_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, outside the ephemeral range where it can be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    top = ephemeral_start()
    with _lock:
        now = time.monotonic()
        for port in [p for p, at in _handed.items() if now - at > HELD_S]:
            del _handed[port]
        if top - LOWEST >= 1000:
            for _ in range(100):
                port = random.randrange(LOWEST, top)
                if port in _handed:
                    continue
                with socket.socket(family) as s:
                    try:
                        s.bind((host, port))
                    except OSError:
                        continue
                _handed[port] = now
                return port
        with socket.socket(family) as s:  # no room below the range: let the kernel choose
            s.bind((host, 0))
            port = s.getsockname()[1]
        _handed[port] = now
        return port
