"""What the benchmarks share: percentiles as the reports give them, numbers as the tables
print them, and the machine a run was measured on. Each benchmark is a script
(``python benchmarks/bench_X.py``), so this module is imported as ``common``."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p95 of 10 values is the largest); None for no values."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)] if s else None


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for a report's table; ``-`` for none."""
    return "-" if x is None else f"{x:.{digits}f}"


def host() -> dict[str, Any]:
    """This machine: CPUs and their model, memory, the operating system, Python."""
    model, mem = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


class SpawnFailed(Exception):
    """A server that did not come up (its hub said why)."""


async def ready_after(client: Any, user: str, options: dict | None = None) -> float:
    """Ask the hub (``client``: an ``httpx.AsyncClient`` on ``/hub/api/`` as an admin) for
    ``user``'s server; seconds until it is ready: the POST's 201, or the ``ready`` event
    of the server's progress stream after a 202 (a spawn longer than the hub's
    ``slow_spawn_timeout``)."""
    t0 = time.perf_counter()
    r = await client.post(f"users/{user}/server", json=options or {})
    if r.status_code == 201:
        return time.perf_counter() - t0
    if r.status_code != 202:
        raise SpawnFailed(f"{user}: POST answered {r.status_code}: {r.text[:300]}")
    async with client.stream("GET", f"users/{user}/server/progress") as resp:
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return time.perf_counter() - t0
            if event.get("failed"):
                raise SpawnFailed(f"{user}: {event.get('message')}")
    raise SpawnFailed(f"{user}: the progress stream ended before ready")
