"""A start from the warm pool against a cold start, local servers, side by side in one run.

Starts two real JupyterHubs of the embedded default (local servers, a simulated pool),
both from ``hub_config/jupyterhub_config.py``: **warm** keeps ``--pool`` warm servers
(``GPUHUB_WARM_POOL``, :mod:`gpuhub.spawners.warm`), **cold** keeps none, as every local
spawner before the pool. Each round a new user presses Start on each hub in turn (the
order alternates, so drift in the machine's load favours neither): the time runs from
``POST /hub/api/users/NAME/server`` until the hub calls the server ready (its 201, or the
``ready`` progress event after a 202). Before each warm spawn the benchmark waits until
the pool is full again (the hub logs each warm server), as it is when people arrive
seconds apart; ``--burst`` users at once show what happens when they do not.

    .venv/bin/python benchmarks/bench_warm.py                 # 12 rounds, pool of 2
    .venv/bin/python benchmarks/bench_warm.py --rounds 20 --burst 4 --json out.json

See docs/benchmarks.md ("A warm start").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import fmt, host, percentile, ready_after  # noqa: E402 - benchmarks/common.py

from tests.support.hub import Hub  # noqa: E402 - the tests' hub driver
from tests.support.warm import waiting  # noqa: E402


async def until_pool_full(hub: Hub, size: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(waiting(hub)) < size:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the pool did not refill to {size} in {timeout} s")
        await asyncio.sleep(0.2)


async def stop_all(client: httpx.AsyncClient, users: list[str]) -> None:
    await asyncio.gather(*(client.delete(f"users/{u}/server") for u in users))


async def bench(args: argparse.Namespace, hubs: dict[str, Hub]) -> dict[str, Any]:
    clients = {
        kind: httpx.AsyncClient(
            base_url=f"{hub.url}/hub/api/",
            headers={"Authorization": f"token {hub.admin_token}"},
            timeout=300,
        )
        for kind, hub in hubs.items()
    }
    times: dict[str, list[float]] = {"warm": [], "cold": []}
    burst: dict[str, list[float]] = {"warm": [], "cold": []}
    run = secrets.token_hex(3)
    try:
        for i in range(args.rounds):
            for kind in ("warm", "cold") if i % 2 == 0 else ("cold", "warm"):
                hub, client = hubs[kind], clients[kind]
                if kind == "warm":
                    await until_pool_full(hub, args.pool)
                await asyncio.sleep(args.settle)
                user = f"w{run}-{kind}-{i}"
                hub.add_user(user)
                times[kind].append(await ready_after(client, user, {"profile": "gpu-1"}))
                await stop_all(client, [user])
        for kind in ("warm", "cold") if args.burst else ():
            hub, client = hubs[kind], clients[kind]
            if kind == "warm":
                await until_pool_full(hub, args.pool)
            await asyncio.sleep(args.settle)
            users = [f"w{run}-{kind}-burst-{j}" for j in range(args.burst)]
            for user in users:
                hub.add_user(user)
            spawns = (ready_after(client, u, {"profile": "gpu-1"}) for u in users)
            burst[kind] = list(await asyncio.gather(*spawns))
            await stop_all(client, users)
    finally:
        for client in clients.values():
            await client.aclose()

    def summary(values: list[float]) -> dict[str, Any]:
        return {
            "n": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "max": max(values, default=None),
            "all": [round(v, 3) for v in values],
        }

    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": host(),
        "pool": args.pool,
        "single": {kind: summary(v) for kind, v in times.items()},
        "burst": {kind: summary(v) for kind, v in burst.items() if v},
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"\nlocal server start to ready, through the hub's API (pool of {results['pool']})")
    print("| start | users at once | n | p50 s | p95 s | max s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for part, at_once in (("single", "1"), ("burst", "burst")):
        for kind, s in results[part].items():
            n = at_once if at_once == "1" else str(s["n"])
            print(
                f"| {kind} | {n} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['max'])} |"
            )
    w, c = results["single"]["warm"]["p50"], results["single"]["cold"]["p50"]
    if w and c:
        print(f"\nwarm p50 / cold p50 = {w / c:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=12, help="spawns per hub, one at a time")
    p.add_argument("--pool", type=int, default=2, help="warm servers the warm hub keeps")
    p.add_argument("--burst", type=int, default=0, help="then this many users at once")
    p.add_argument("--settle", type=float, default=1.0, help="seconds of rest before a spawn")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    hubs = {
        "warm": Hub(work / "warm", env={"GPUHUB_WARM_POOL": str(args.pool)}),
        "cold": Hub(work / "cold", env={"GPUHUB_WARM_POOL": "0"}),
    }
    try:
        for hub in hubs.values():
            hub.start()
        results = asyncio.run(bench(args, hubs))
    finally:
        for hub in hubs.values():
            hub.stop()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
