"""Free TCP ports on 127.0.0.1 for the servers tests start (hubs, proxies, PostgreSQL):
gpuhub's own rule (:mod:`gpuhub.ports`), drawn from below the ephemeral range, where none
of the suite's many outgoing connections takes its local port."""

from __future__ import annotations

from gpuhub.ports import free_port

__all__ = ["free_port"]
