"""Scheduler throughput and decision latency on a simulated 1,000-GPU pool.

Drives :class:`gpuhub.scheduler.core.Scheduler` with a workload shaped like Kueue's
scheduler performance baseline (5 cohorts x 6 queues, small/medium/large workload
classes) on SQLite and PostgreSQL, and reports admissions per second and per-decision
latency measured with ``time.perf_counter`` around every ``request()`` and ``release()``.

Time inside the scheduler is real; time in the workload is simulated: the scheduler's
clock is injected, requests arrive at a steady rate on that clock, and each granted
lease is released when its simulated duration ends (a heap of end times). Nothing
sleeps, so the run measures only the scheduler's own work.

Usage::

    .venv/bin/python benchmarks/bench_scheduler.py [--db sqlite|postgresql|both]
        [--requests N] [--json OUT] [--profile]

See benchmarks/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import heapq
import io
import json
import math
import os
import platform
import pstats
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' support package (tests/support)

from gpuhub.inventory.simulated import parse_spec  # noqa: E402
from gpuhub.scheduler.core import QuotaExceeded, Scheduler  # noqa: E402
from gpuhub.scheduler.db import open_engine  # noqa: E402
from gpuhub.scheduler.quota import QuotaSpec  # noqa: E402
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus  # noqa: E402
from sqlalchemy import text  # noqa: E402

# -- the pool: 1,000 GPUs on 125 nodes of 8 -------------------------------------------------

POOL_SPEC = (
    "gpu-[001-100]: 8xH100-80GB[nvlink]; "
    "mig-[01-15]: 8xA100-80GB[mig=7x1g.10gb]; "
    "shr-[01-10]: 8xL4-24GB[shared=4]"
)

# -- the workload ---------------------------------------------------------------------------

COHORTS = 5
QUEUES_PER_COHORT = 6
USERS_PER_QUEUE = 10
DEFAULT_REQUESTS = 15_000
# Simulated arrivals per minute. Whole-GPU demand is ~120 GPU-minutes per request, so
# 8/min offers ~960 busy H100s against 800: about 1.2x, like Kueue's baseline (each
# queue there offers ~23.7 units against a nominal quota of 20).
DEFAULT_RATE_PER_MIN = 8.0
# Each group's max_units = its nominal share of the pool (1000 / 30 GPU units) x this.
# Kueue's baseline lets a queue borrow beyond its nominal quota within its cohort; gpuhub
# quotas have no borrowing, so headroom above the nominal share stands in for it. With 1.0
# the quotas alone keep demand under the pool's size and nothing ever queues.
DEFAULT_QUOTA_HEADROOM = 2.0
# Simulated start: Monday 2026-11-23 00:00 UTC (inside one weekly quota window).
SIM_START = dt.datetime(2026, 11, 23, tzinfo=dt.UTC).timestamp()

TARGET_ADMISSIONS_PER_S = 500.0  # Slurm's documented sustained rate
TARGET_P99_MS = 10.0


@dataclass(frozen=True)
class WorkloadClass:
    """One kind of request: Kueue's small/medium/large, plus MIG and shared seats."""

    name: str
    kueue_class: str
    weight: float  # share of all requests
    shapes: tuple  # one is drawn uniformly per request
    minutes: float  # mean simulated duration; each request draws 0.5x-1.5x


CLASSES = (
    # Kueue baseline per queue: 350 small (1 unit, 200 ms), 100 medium (5, 500 ms),
    # 50 large (20, 1000 ms) = 70/20/10. Our small class is split across whole GPUs,
    # MIG slices and shared seats; durations keep Kueue's 200:500:1000 ratio.
    WorkloadClass("small-1gpu", "small", 0.50, (WholeGpus(count=1),), 20),
    WorkloadClass("small-mig", "small", 0.10, (MigSlice(kind="mig", profile="1g.10gb"),), 240),
    WorkloadClass("small-shared", "small", 0.10, (SharedGpu(kind="shared"),), 240),
    WorkloadClass(
        "medium-2to4gpu", "medium", 0.20, tuple(WholeGpus(count=n) for n in (2, 3, 4)), 50
    ),
    WorkloadClass("large-8gpu", "large", 0.10, (WholeGpus(count=8),), 100),
)


@dataclass(frozen=True)
class Arrival:
    at: float  # simulated POSIX seconds
    user: str
    group: str
    cls: str
    shape: Any
    duration: float  # simulated seconds, counted from the grant


def queue_names() -> list[str]:
    return [f"cohort{c}-q{q}" for c in range(COHORTS) for q in range(QUEUES_PER_COHORT)]


def make_workload(n: int, rate_per_min: float, seed: int) -> list[Arrival]:
    """``n`` requests at a steady rate, round-robin over the queues, classes drawn by weight."""
    rng = random.Random(seed)
    queues = queue_names()
    weights = [c.weight for c in CLASSES]
    gap = 60.0 / rate_per_min
    out = []
    for i in range(n):
        cls = rng.choices(CLASSES, weights)[0]
        group = queues[i % len(queues)]
        out.append(
            Arrival(
                at=SIM_START + i * gap,
                user=f"{group}-u{rng.randrange(USERS_PER_QUEUE)}",
                group=group,
                cls=cls.name,
                shape=rng.choice(cls.shapes),
                duration=cls.minutes * 60 * rng.uniform(0.5, 1.5),
            )
        )
    return out


# -- measurement ----------------------------------------------------------------------------


class SimClock:
    """The scheduler's injected clock: simulated POSIX seconds set by the event loop."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def summarize(latencies: list[float]) -> dict[str, float]:
    """Latencies (seconds) to milliseconds: count, mean, p50, p90, p99, max, total."""
    s = sorted(latencies)
    ms = 1000.0
    return {
        "count": len(s),
        "mean_ms": (sum(s) / len(s) * ms) if s else float("nan"),
        "p50_ms": pct(s, 50) * ms,
        "p90_ms": pct(s, 90) * ms,
        "p99_ms": pct(s, 99) * ms,
        "max_ms": (s[-1] * ms) if s else float("nan"),
        "total_s": sum(s),
    }


@dataclass
class Counts:
    granted_immediately: int = 0
    queued: int = 0
    granted_from_queue: int = 0
    refused_by_quota: int = 0
    refused_from_queue: int = 0
    released: int = 0
    peak_queue: int = 0
    queue_at_last_arrival: int = 0
    final_queue: int = 0
    by_class: dict = field(default_factory=dict)


def run_workload(
    sched: Scheduler, clock: SimClock, workload: list[Arrival], profiler: cProfile.Profile | None
) -> dict[str, Any]:
    """Replay ``workload`` against ``sched``; time every request() and release() call."""
    counts = Counts(by_class={c.name: dict.fromkeys(("requests", "refused"), 0) for c in CLASSES})
    req_lat: list[float] = []
    rel_lat: list[float] = []
    ends: list[tuple[float, int, int]] = []  # (simulated end, seq, lease id)
    waiting: dict[int, tuple[Any, float]] = {}  # queued lease id -> (Lease, duration)
    seq = 0
    i, n = 0, len(workload)
    perf = time.perf_counter
    # CPU time of this process; wall - CPU = time waiting (I/O, the server, other load)
    cpu = time.process_time
    cpu_lat: list[float] = []  # per call, requests and releases
    enable = profiler.enable if profiler else (lambda: None)
    disable = profiler.disable if profiler else (lambda: None)
    wall0 = perf()
    while i < n or ends:
        next_arrival = workload[i].at if i < n else math.inf
        if ends and ends[0][0] <= next_arrival:
            # a lease's time is up: release it (this may grant queued requests)
            end, _, lease_id = heapq.heappop(ends)
            clock.now = end
            enable()
            c0 = cpu()
            t0 = perf()
            sched.release(lease_id)
            t1 = perf()
            cpu_lat.append(cpu() - c0)
            disable()
            rel_lat.append(t1 - t0)
            counts.released += 1
            if waiting:
                for qid, (lease, duration) in list(waiting.items()):
                    if lease.status == "queued":
                        continue
                    del waiting[qid]
                    if lease.status == "active":
                        counts.granted_from_queue += 1
                        seq += 1
                        heapq.heappush(ends, (end + duration, seq, qid))
                    else:
                        counts.refused_from_queue += 1
            continue
        a = workload[i]
        i += 1
        clock.now = a.at
        counts.by_class[a.cls]["requests"] += 1
        enable()
        c0 = cpu()
        t0 = perf()
        try:
            lease = sched.request(
                user=a.user,
                user_groups=(a.group,),
                group=a.group,
                shape=a.shape,
                hours=a.duration / 3600,
            )
        except QuotaExceeded:
            lease = None
        t1 = perf()
        cpu_lat.append(cpu() - c0)
        disable()
        req_lat.append(t1 - t0)
        if lease is None:
            counts.refused_by_quota += 1
            counts.by_class[a.cls]["refused"] += 1
        elif lease.status == "active":
            counts.granted_immediately += 1
            seq += 1
            heapq.heappush(ends, (a.at + a.duration, seq, lease.id))
        else:
            counts.queued += 1
            waiting[lease.id] = (lease, a.duration)
            counts.peak_queue = max(counts.peak_queue, len(waiting))
        if i == n:
            counts.queue_at_last_arrival = len(waiting)
    loop_wall = perf() - wall0
    counts.final_queue = len(sched.queue())
    capacity = sched.pool.capacity()
    assert capacity["free"] == capacity["total"], f"pool not empty after drain: {capacity}"
    assert counts.final_queue == len(waiting)

    grants = counts.granted_immediately + counts.granted_from_queue
    sched_s = sum(req_lat) + sum(rel_lat)
    return {
        "counts": counts.__dict__,
        "grants": grants,
        "scheduler_wall_s": sched_s,
        "scheduler_cpu_s": sum(cpu_lat),
        "loop_wall_s": loop_wall,
        "simulated_hours": (clock.now - SIM_START) / 3600,
        "admissions_per_s": grants / sched_s if sched_s else float("nan"),
        "admissions_per_cpu_s": grants / sum(cpu_lat) if sum(cpu_lat) else float("nan"),
        "decisions_per_s": (len(req_lat) + len(rel_lat)) / sched_s if sched_s else float("nan"),
        "request": summarize(req_lat),
        "release": summarize(rel_lat),
        "overall": summarize(req_lat + rel_lat),
        "overall_cpu": summarize(cpu_lat),
    }


def bench_one(
    db: str, url: str, workload: list[Arrival], headroom: float, profile: bool
) -> dict[str, Any]:
    nodes = parse_spec(POOL_SPEC)
    clock = SimClock(SIM_START)
    t0 = time.perf_counter()
    engine = open_engine(url)
    t1 = time.perf_counter()
    sched = Scheduler(engine, nodes, clock=clock)
    t2 = time.perf_counter()
    nominal = float(sched.pool.capacity()["total"]) / len(queue_names())
    share = round(nominal * headroom, 2)
    for g in queue_names():
        sched.set_quota("group", g, QuotaSpec(max_units=share), by="bench")
    t3 = time.perf_counter()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            server = "SQLite " + sqlite3.sqlite_version
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
            sync = conn.execute(text("PRAGMA synchronous")).scalar()
            settings = f"journal_mode={mode}, synchronous={sync} (1=NORMAL)"
        else:
            server = conn.execute(text("SELECT version()")).scalar().split(" on ")[0]
            settings = ", ".join(
                f"{k}={conn.execute(text(f'SHOW {k}')).scalar()}"
                for k in ("fsync", "synchronous_commit", "wal_sync_method")
            )
    profiler = cProfile.Profile() if profile else None
    gc.collect()
    load_before = os.getloadavg()
    result = run_workload(sched, clock, workload, profiler)
    load_after = os.getloadavg()
    engine.dispose()
    result.update(
        db=db,
        server=server,
        settings=settings,
        loadavg_1m={"before": load_before[0], "after": load_after[0]},
        group_nominal_units=round(nominal, 2),
        group_max_units=share,
        setup_s={
            "open_engine_and_migrate": t1 - t0,
            "scheduler_init": t2 - t1,
            "set_quota_x30": t3 - t2,
        },
    )
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(25)
        result["profile_cumulative"] = out.getvalue()
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats("tottime").print_stats(25)
        result["profile_tottime"] = out.getvalue()
    return result


# -- reporting ------------------------------------------------------------------------------


def machine_info(pinned: str) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlalchemy

    try:
        import psycopg

        psycopg_version = psycopg.__version__
    except ImportError:
        psycopg_version = None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg_version,
        "pinned": pinned,
    }


def fmt(v: float, digits: int = 2) -> str:
    return f"{v:,.{digits}f}"


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    dbs = list(results)
    head = "| | " + " | ".join(results[d]["server"] for d in dbs) + " |"
    sep = "|---|" + "---:|" * len(dbs)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, f) -> None:
        rows.append((label, [f(results[d]) for d in dbs]))

    def lat(kind: str):
        return lambda r: " / ".join(fmt(r[kind][k]) for k in ("p50_ms", "p99_ms", "max_ms"))

    row("requests", lambda r: f"{r['request']['count']:,}")
    row("granted immediately", lambda r: f"{r['counts']['granted_immediately']:,}")
    row("queued", lambda r: f"{r['counts']['queued']:,}")
    row("granted from queue", lambda r: f"{r['counts']['granted_from_queue']:,}")
    row("refused by quota", lambda r: f"{r['counts']['refused_by_quota']:,}")
    row("peak queue length", lambda r: f"{r['counts']['peak_queue']:,}")
    row("queue length at last arrival", lambda r: f"{r['counts']['queue_at_last_arrival']:,}")
    row("final queue length (after drain)", lambda r: f"{r['counts']['final_queue']:,}")
    row("releases", lambda r: f"{r['release']['count']:,}")
    row(
        "time inside the scheduler: wall / CPU (s)",
        lambda r: f"{fmt(r['scheduler_wall_s'])} / {fmt(r['scheduler_cpu_s'])}",
    )
    row("**admissions/s** (target >= 500)", lambda r: f"**{fmt(r['admissions_per_s'], 0)}**")
    row(
        "admissions per CPU-second of this process (waits not counted)",
        lambda r: fmt(r["admissions_per_cpu_s"], 0),
    )
    row("decisions/s (request + release calls)", lambda r: fmt(r["decisions_per_s"], 0))
    row("request() p50 / p99 / max (ms)", lat("request"))
    row("release() p50 / p99 / max (ms)", lat("release"))
    row("**all decisions p50 / p99 / max (ms)** (target p99 < 10)", lat("overall"))
    row("all decisions, CPU time only: p50 / p99 / max (ms)", lat("overall_cpu"))
    row(
        ">= 500 admissions/s",
        lambda r: "met" if r["admissions_per_s"] >= TARGET_ADMISSIONS_PER_S else "**not met**",
    )
    row(
        "p99 decision < 10 ms (all calls)",
        lambda r: "met" if r["overall"]["p99_ms"] < TARGET_P99_MS else "**not met**",
    )
    lines = [head, sep] + [f"| {label} | " + " | ".join(v) + " |" for label, v in rows]
    return "\n".join(lines)


def pin_to_one_core(cpu: int) -> str:
    if cpu < 0:
        return "not pinned (--cpu -1)"
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (os.sched_setaffinity unavailable)"
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:
        return f"not pinned ({e})"
    return f"pinned to CPU {sorted(os.sched_getaffinity(0))}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, metavar="N")
    ap.add_argument(
        "--rate", type=float, default=DEFAULT_RATE_PER_MIN, help="simulated arrivals per minute"
    )
    ap.add_argument(
        "--quota-headroom",
        type=float,
        default=DEFAULT_QUOTA_HEADROOM,
        help="each group's max_units = nominal share (pool / 30) x this",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--cpu", type=int, default=0, help="CPU to pin the benchmark to (-1: do not pin)"
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON here")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the scheduler calls; print the top entries by cumulative and own time",
    )
    args = ap.parse_args(argv)

    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    workload = make_workload(args.requests, args.rate, args.seed)

    pg = None
    if "postgresql" in dbs:
        from tests.support import pg as pgmod

        if not pgmod.available():
            print(
                "PostgreSQL is not installed (apt-get install postgresql); skipping it",
                file=sys.stderr,
            )
            dbs.remove("postgresql")
        else:
            # started before pinning, so the server is not confined to the benchmark's core
            pg = pgmod.TemporaryPostgres().start()
    pinned = pin_to_one_core(args.cpu)
    info = machine_info(pinned)
    print(
        f"# {info['cpu_model']}, {info['nproc']} CPUs ({pinned}), Python {info['python']}, "
        f"SQLite {info['sqlite']}",
        file=sys.stderr,
    )

    results: dict[str, dict[str, Any]] = {}
    t_all = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gpuhub-bench-") as tmp:
            for db in dbs:
                url = (
                    f"sqlite:///{tmp}/scheduler.db"
                    if db == "sqlite"
                    else pg.create_database("bench")
                )
                print(f"# {db}: {args.requests:,} requests ...", file=sys.stderr, flush=True)
                r = bench_one(db, url, workload, args.quota_headroom, args.profile)
                results[db] = r
                print(
                    f"#   {r['server']}: {r['admissions_per_s']:,.0f} admissions/s, "
                    f"p99 {r['overall']['p99_ms']:.2f} ms, loop {r['loop_wall_s']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if pg is not None:
            pg.stop()
    total_s = time.perf_counter() - t_all

    print()
    print(
        f"Scheduler benchmark: {args.requests:,} requests, pool of "
        f"{sum(len(n.gpus) for n in parse_spec(POOL_SPEC))} GPUs / "
        f"{len(parse_spec(POOL_SPEC))} nodes, {len(queue_names())} group quotas "
        f"({COHORTS} cohorts x {QUEUES_PER_COHORT} queues); {pinned}"
    )
    print()
    print(markdown_table(results))
    print()
    for db, r in results.items():
        setup = ", ".join(f"{k} {v:.2f} s" for k, v in r["setup_s"].items())
        load = r["loadavg_1m"]
        print(
            f"{db}: {r['settings']}; group max_units {r['group_max_units']} "
            f"(nominal {r['group_nominal_units']}); simulated {r['simulated_hours']:.1f} h; "
            f"setup: {setup}; 1-min load average {load['before']:.2f} -> {load['after']:.2f}"
        )
        if "profile_cumulative" in r:
            print(f"\n--- cProfile, {db}, sorted by cumulative time ---")
            print(r["profile_cumulative"])
            print(f"--- cProfile, {db}, sorted by own time ---")
            print(r["profile_tottime"])
    print(f"total run time {total_s:.1f} s")

    if args.json:
        out = {
            "benchmark": "gpuhub scheduler",
            "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": info,
            "config": {
                "pool": POOL_SPEC,
                "requests": args.requests,
                "rate_per_min": args.rate,
                "seed": args.seed,
                "quota_headroom": args.quota_headroom,
                "cohorts": COHORTS,
                "queues_per_cohort": QUEUES_PER_COHORT,
                "users_per_queue": USERS_PER_QUEUE,
                "classes": [
                    {
                        "name": c.name,
                        "kueue_class": c.kueue_class,
                        "weight": c.weight,
                        "shapes": [s.model_dump(exclude_none=True) for s in c.shapes],
                        "mean_minutes": c.minutes,
                    }
                    for c in CLASSES
                ],
            },
            "targets": {"admissions_per_s": TARGET_ADMISSIONS_PER_S, "p99_ms": TARGET_P99_MS},
            "results": results,
            "total_run_s": total_s,
        }
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
