"""Free TCP ports for servers gpuhub starts on a host's network (a container on the host
network, a notebook server on a Slurm node).

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range
every outgoing connection takes its local port from: between choosing it and the server
binding it, a connection on the host may take it ("Address already in use"). So ports are
drawn from below that range, where no connection's local end lands, and checked free by
binding them; only where that range leaves no room does the kernel choose.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: The lowest port drawn: above the well-known and most registered services' ports.
LOWEST = 10000


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
    if top - LOWEST >= 1000:
        for _ in range(100):
            port = random.randrange(LOWEST, top)
            with socket.socket(family) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(family) as s:  # no room below the range: let the kernel choose
        s.bind((host, 0))
        return s.getsockname()[1]
