"""Outage after the gpuhub service dies: JupyterHub's poll alone against the supervisor.

Starts a real JupyterHub from ``hub_config/jupyterhub_config.py`` (through tests/support/hub.py's
``Hub``) twice, one after the other, on the default simulated pool:

* **hub-poll**: the service is JupyterHub's managed service and nothing else; JupyterHub
  notices a dead service at its 30-second poll and starts it again (the setting before
  the supervisor).
* **supervised**: the hub configuration as shipped: ``python -m gpuhub.service.supervisor``
  starts the service again as soon as it exits.

Each round waits a random 0-30 s (so the kill lands anywhere in JupyterHub's poll cycle),
kills the service process with SIGKILL, and polls ``GET /services/gpuhub/api/v1`` through
the hub's proxy every 50 ms. The outage runs from the kill to the first 200 answer;
the answers meanwhile (503 from the proxy, refused connections) are counted.

    .venv/bin/python benchmarks/bench_outage.py                 # 5 kills per mode
    .venv/bin/python benchmarks/bench_outage.py --kills 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' support package (tests/support)
from tests.support.hub import Hub  # noqa: E402 - the tests' real-JupyterHub driver, shared

# Appended to the test config: run the service without its supervisor, as before.
HUB_POLL_CONFIG = """
# added by benchmarks/bench_outage.py: no supervisor, JupyterHub's poll alone
for _s in c.JupyterHub.services:
    if _s["name"] == "gpuhub":
        _s["command"] = _s["command"][_s["command"].index("--") + 1 :]
"""

MODES = {"hub-poll": HUB_POLL_CONFIG, "supervised": ""}


def outage(hub: Hub, poll: float = 0.05, limit: float = 120.0) -> tuple[float, Counter]:
    """Kill the service; seconds until the API answers 200 again, and what came meanwhile."""
    seen: Counter = Counter()
    with httpx.Client(timeout=2) as client:
        hub.kill_service()
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            try:
                status = client.get(hub.api).status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            if status == 200:
                return time.monotonic() - t0, seen
            seen[status] += 1
            time.sleep(poll)
    raise RuntimeError(f"the service did not come back within {limit} s:\n{hub.log_tail()}")


def run_mode(mode: str, workdir: Path, kills: int, rng: random.Random) -> dict[str, Any]:
    """Start a hub in ``mode``, kill its service ``kills`` times, return the numbers."""
    hub = Hub(workdir / mode, extra_config=MODES[mode]).start()
    samples, answers = [], Counter()
    try:
        for i in range(kills):
            time.sleep(rng.uniform(0, 30))
            seconds, seen = outage(hub)
            samples.append(seconds)
            answers.update(seen)
            print(f"  {mode} kill {i + 1}/{kills}: back after {seconds:.2f} s", flush=True)
    finally:
        hub.stop()
    return {
        "outage_s": samples,
        "p50": statistics.median(samples),
        "max": max(samples),
        "min": min(samples),
        "answers_meanwhile": {str(k): v for k, v in answers.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Run both modes and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--kills", type=int, default=5, help="kills per mode")
    p.add_argument("--seed", type=int, default=7, help="seed of the random waits")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "kills": args.kills,
    }
    with tempfile.TemporaryDirectory(prefix="gpuhub-bench-outage-") as tmp:
        for mode in MODES:
            print(f"{mode}:", flush=True)
            results[mode] = run_mode(mode, Path(tmp), args.kills, rng)
    before, after = results["hub-poll"], results["supervised"]
    print()
    print(f"{'mode':<12} {'p50 s':>8} {'min s':>8} {'max s':>8}")
    for mode in MODES:
        r = results[mode]
        print(f"{mode:<12} {r['p50']:>8.2f} {r['min']:>8.2f} {r['max']:>8.2f}")
    print(f"supervised ÷ hub-poll: p50 {after['p50'] / before['p50']:.3f}, "
          f"max {after['max'] / before['max']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
