"""The Alibaba GPU trace (cluster-trace-gpu-v2023, the FGD paper's) through the real scheduler:
gpuhub's placement against plain first-fit and best-fit (and Kubernetes' spread), with and
without the spot tier, in one run.

Two experiments, both driving :class:`gpuhub.scheduler.core.Scheduler` (SQLite in a
temporary folder) on an injected clock with :class:`gpuhub.scheduler.replay.Replay`:

* **timeline** — the sample's pods (trace days 137-147, benchmarks/data/alibaba-gpu-v2023)
  in time: pod creation is a request, its deletion a release. Their demand is tiny next to
  the trace's 6,212 GPUs (the pod list is a sample of the cluster's work), so they run on a
  cluster cut to it: a stratified sample of the trace's nodes (``--timeline-gpus``).
  Reported over time: GPU allocation ratio, GPUs left unallocated while requests wait,
  requests waiting; and waits, preemptions.
* **fill** — FGD's workload inflation: pods drawn (seeded, with replacement) from the shapes
  of every GPU pod of the trace arrive one by one and never leave, until what they ask for
  reaches the GPU capacity of the whole trace cluster (1,213 nodes). Reported at each step
  of arrived work: allocation ratio and unallocated GPUs.

Pods become requests of gpuhub's shapes, and some nodes are partitioned for the fractional
ones (MIG slices, shared seats) as ``trace_workload.py`` says; the policies set against
gpuhub's placement are in ``trace_policies.py``. ``qos`` BE pods are the spot tier in the
spot run.

Usage::

    .venv/bin/python benchmarks/bench_trace.py [--experiments timeline,fill]
        [--timeline-gpus N] [--fill-until PCT] [--seed S] [--json OUT] [--markdown OUT]

See benchmarks/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common, trace_workload, trace_policies

from common import fmt, host, percentile  # noqa: E402
from gpuhub.inventory import Node  # noqa: E402
from gpuhub.scheduler.core import Scheduler  # noqa: E402
from gpuhub.scheduler.db import open_engine  # noqa: E402
from gpuhub.scheduler.replay import Demand, Outcome, Replay, ReplayClock  # noqa: E402
from gpuhub.scheduler.shapes import WholeGpus  # noqa: E402
from gpuhub.scheduler.spot import GUARANTEED, SPOT, SpotPolicy  # noqa: E402
from trace_policies import POLICIES, scheduler_class  # noqa: E402
from trace_workload import (  # noqa: E402
    WINDOW,
    Pod,
    asked,
    partition,
    read_csv,
    shape_of,
    stratified,
    window_pods,
)

SPOT_POLICY = SpotPolicy(enabled=True, discount=0.3, grace_s=120, min_runtime_s=300)
#: Where the fill's arrivals start, a second apart (the time itself plays no part).
EPOCH = 1_700_000_000.0

# -- one run --------------------------------------------------------------------------------


def replay_with(
    policy: str, nodes: list[Node], demands: list[Demand], until: float | None, observer: Any
) -> tuple[list[Outcome], Replay, float]:
    """Replay ``demands`` on ``nodes`` under ``policy`` (a fresh scheduler and database);
    the outcomes, the replay and its wall time in seconds."""
    pool, spot = POLICIES[policy]
    with tempfile.TemporaryDirectory(prefix="gpuhub-trace-") as tmp:
        engine = open_engine(f"sqlite:///{tmp}/scheduler.sqlite")
        try:
            clock = ReplayClock(min(d.at for d in demands))
            sched = scheduler_class(pool)(
                engine, nodes, clock=clock, spot=SPOT_POLICY if spot else None
            )
            replay = Replay(sched, clock, requeue_preempted=True, observe=observer)
            observer.bind(sched, replay)
            t0 = time.perf_counter()
            outcomes = replay.run(demands, until)
            return outcomes, replay, time.perf_counter() - t0
        finally:
            engine.dispose()


def asked_now(replay: Replay) -> float:
    """GPUs the pods holding devices now asked for (the trace's own measure)."""
    return sum(h.outcome.demand.ref.gpus for h in replay.holding.values())


# -- the timeline ---------------------------------------------------------------------------


class Timeline:
    """The pool after each event, integrated over time, and sampled every hour; while
    requests wait, also which kinds wait and where the unallocated GPU units are."""

    def __init__(self, start: float, total: Fraction) -> None:
        self.start, self.total = start, float(total)
        self.t = start
        self.state = (0.0, 0.0, 0)  # held units, asked GPUs, requests waiting
        self.detail: Counter = Counter()  # while waiting: free units by mode, waiting by kind
        self.area: Counter = Counter()  # state x seconds, and the seconds anything waits
        self.hourly: list[tuple[float, float, float, int]] = []
        self.peak_waiting = 0

    def bind(self, sched: Scheduler, replay: Replay) -> None:
        self.sched, self.replay = sched, replay

    def __call__(self, now: float) -> None:
        self.advance(now)
        held = float(self.sched.pool.capacity()["leased"])
        queued = [h.outcome for h in self.replay.waiting.values()] + list(self.replay.parked)
        self.state = (held, asked_now(self.replay), len(queued))
        self.detail = Counter()
        if queued:
            self.detail.update({f"free {m}": u for m, u in free_by_mode(self.sched).items()})
            self.detail.update(f"waiting {o.demand.ref.kind}" for o in queued)
        self.peak_waiting = max(self.peak_waiting, len(queued))

    def advance(self, now: float) -> None:
        """Count the state since the last event up to ``now``."""
        held, asked_gpus, waiting = self.state
        while self.start + 3600 * len(self.hourly) < now:
            self.hourly.append((held / self.total, asked_gpus / self.total, self.total - held,
                                waiting))  # fmt: skip
        dt = now - self.t
        self.area["time"] += dt
        self.area["held"] += held * dt
        self.area["asked"] += asked_gpus * dt
        self.area["waiting"] += waiting * dt
        if waiting:
            self.area["time_waiting"] += dt
            self.area["free_waiting"] += (self.total - held) * dt
            for k, v in self.detail.items():
                self.area[k] += v * dt
        self.t = now

    def while_waiting(self) -> dict[str, float]:
        """Time means, over the time requests wait, of the free units by mode and of the
        requests waiting by kind."""
        t = self.area["time_waiting"]
        keys = sorted(k for k in self.area if k.startswith(("free ", "waiting ")))
        return {k: self.area[k] / t for k in keys} if t else {}


def wait_stats(outcomes: list[Outcome], until: float) -> dict[str, Any]:
    waits = [w for w in (o.wait(until) for o in outcomes) if w is not None]
    return {
        "pods": len(outcomes),
        "granted": sum(o.granted for o in outcomes),
        "waited": sum(1 for w in waits if w > 0),
        "mean_wait_s": sum(waits) / len(waits) if waits else None,
        "p95_wait_s": percentile(waits, 95),
    }


def run_timeline(gpus: int, policies: list[str]) -> dict[str, Any]:
    """The sample's pods in time on a stratified cluster of about ``gpus`` GPUs."""
    pods = window_pods()
    weights: dict[str, float] = Counter()
    for p in pods:
        weights[p.kind] += (min(p.end, WINDOW[1]) - p.start) * (
            p.shape.count if isinstance(p.shape, WholeGpus) else 1
        )
    rows = stratified(read_csv("nodes.csv"), gpus)
    nodes = partition(rows, weights)
    total = Fraction(sum(len(n.gpus) for n in nodes))
    out: dict[str, Any] = {"cluster": cluster_info(nodes), "pods": len(pods), "runs": {}}
    for policy in policies:
        spot = POLICIES[policy][1]
        demands = [
            Demand(at=p.start, user="openb", shape=p.shape, hold=p.end - p.start,
                   tier=SPOT if spot and p.qos == "BE" else GUARANTEED, ref=p)
            for p in pods
        ]  # fmt: skip
        track = Timeline(WINDOW[0], total)
        outcomes, replay, wall = replay_with(policy, nodes, demands, WINDOW[1], track)
        track.advance(WINDOW[1])
        a, span = track.area, track.area["time"]
        by_class = defaultdict(list)
        for o in outcomes:
            by_class["BE" if o.demand.ref.qos == "BE" else "LS"].append(o)
        out["runs"][policy] = {
            "allocation_ratio": a["held"] / span / float(total),
            "asked_ratio": a["asked"] / span / float(total),
            "unallocated_while_waiting": (
                a["free_waiting"] / a["time_waiting"] if a["time_waiting"] else None
            ),
            "share_of_time_waiting": a["time_waiting"] / span,
            "while_waiting": track.while_waiting(),
            "mean_waiting": a["waiting"] / span,
            "peak_waiting": track.peak_waiting,
            "waits": wait_stats(outcomes, WINDOW[1]),
            "waits_by_class": {k: wait_stats(v, WINDOW[1]) for k, v in sorted(by_class.items())},
            "preemptions": replay.preemptions,
            "wall_s": wall,
            "hourly": track.hourly,
        }
        print(f"# timeline {policy}: {wall:.1f} s", file=sys.stderr, flush=True)
    return out


def cluster_info(nodes: list[Node]) -> dict[str, Any]:
    modes = Counter(g.mode for n in nodes for g in n.gpus)
    return {"nodes": len(nodes), "gpus": sum(modes.values()), "gpus_by_mode": dict(modes),
            "models": dict(Counter(g.model for n in nodes for g in n.gpus))}  # fmt: skip


# -- the fill -------------------------------------------------------------------------------


class Fill:
    """The pool at each mark of arrived work (``marks``: fractions of the GPU capacity)."""

    def __init__(self, arrived: list[float], total: Fraction, marks: list[float]) -> None:
        self.arrived, self.total, self.marks = arrived, float(total), list(marks)
        self.points: list[dict[str, float]] = []

    def bind(self, sched: Scheduler, replay: Replay) -> None:
        self.sched, self.replay = sched, replay

    def __call__(self, now: float) -> None:
        i = round(now - EPOCH)
        if not self.marks or i >= len(self.arrived) or self.arrived[i] < self.marks[0] * self.total:
            return
        self.marks.pop(0)
        held = float(self.sched.pool.capacity()["leased"])
        asked_gpus = asked_now(self.replay)
        self.points.append({
            "arrived": self.arrived[i] / self.total,
            "allocation_ratio": held / self.total,
            "asked_ratio": asked_gpus / self.total,
            "unallocated": self.total - held,
            "unallocated_asked": self.total - asked_gpus,
            "unallocated_by_mode": free_by_mode(self.sched),
            "waiting": len(self.replay.waiting),
            "waiting_by_kind": dict(Counter(
                h.outcome.demand.ref.kind for h in self.replay.waiting.values()
            )),
        })  # fmt: skip


def free_by_mode(sched: Scheduler) -> dict[str, float]:
    """GPU units held by nobody, by how their GPUs are granted (exclusive, mig, shared)."""
    out: Counter = Counter()
    for nv in sched.pool_view().nodes:
        for gv in nv.gpus:
            g = gv.gpu
            if g.mode == "mig":
                idle = sum(m.slices for m in g.mig_instances if m.uuid not in gv.mig_holders)
                out["mig"] += idle / g.total_slices
            else:
                out[g.mode] += (g.shares - len(gv.holders)) / g.shares
    return dict(out)


def run_fill(until: float, seed: int, gpus: int, policies: list[str]) -> dict[str, Any]:
    """Pods drawn from the trace's shapes arrive and stay until ``until`` x capacity arrived,
    on a stratified cluster of about ``gpus`` GPUs (0: every node of the trace)."""
    rows = read_csv("nodes.csv")
    if gpus:
        rows = stratified(rows, gpus)
    shapes = [
        (int(r["num_gpu"]), int(r["gpu_milli"]), r["qos"]) for r in read_csv("pod_shapes.csv")
    ]
    counts = [int(r["pods"]) for r in read_csv("pod_shapes.csv")]
    weights: dict[str, float] = Counter()
    for (n, m, _), c in zip(shapes, counts, strict=True):
        shape, kind = shape_of(n, m)
        weights[kind] += c * (shape.count if isinstance(shape, WholeGpus) else 1)
    nodes = partition(rows, weights)
    total = Fraction(sum(len(n.gpus) for n in nodes))
    rng = random.Random(seed)
    pods: list[Pod] = []
    arrived: list[float] = []
    while not arrived or arrived[-1] < until * float(total):
        n, m, qos = rng.choices(shapes, counts)[0]
        shape, kind = shape_of(n, m)
        at = EPOCH + len(pods)
        pods.append(Pod(f"draw-{len(pods)}", shape, kind, asked(n, m), qos, at, math.inf))
        arrived.append((arrived[-1] if arrived else 0.0) + pods[-1].gpus)
    demands = [Demand(at=p.start, user="openb", shape=p.shape, ref=p) for p in pods]
    marks = [k / 20 for k in range(1, int(until * 20) + 1)]
    out: dict[str, Any] = {"cluster": cluster_info(nodes), "pods": len(pods), "runs": {}}
    for policy in policies:
        if POLICIES[policy][1]:
            continue  # nothing leaves: a preempted pod would wait for ever
        track = Fill(arrived, total, marks)
        _, _, wall = replay_with(policy, nodes, demands, None, track)
        out["runs"][policy] = {"points": track.points, "wall_s": wall}
        print(f"# fill {policy}: {wall:.1f} s", file=sys.stderr, flush=True)
    return out


# -- reporting ------------------------------------------------------------------------------


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def timeline_report(t: dict[str, Any]) -> str:
    runs = t["runs"]
    names = list(runs)

    def row(label: str, f: Callable[[dict], str]) -> list[str]:
        return [label, *(f(runs[n]) for n in names)]

    def waits(cls: str | None) -> Callable[[dict], str]:
        def f(r: dict) -> str:
            w = r["waits"] if cls is None else r["waits_by_class"].get(cls)
            return "-" if not w else f"{_dur(w['mean_wait_s'])} / {_dur(w['p95_wait_s'])}"

        return f

    c = t["cluster"]
    head = (
        f"Timeline: {t['pods']:,} pods of trace days 137-147 on {c['nodes']} nodes, "
        f"{c['gpus']} GPUs ({', '.join(f'{v} {k}' for k, v in c['gpus_by_mode'].items())})\n\n"
    )
    rows = [
        row("GPU allocation ratio (GPU units held ÷ GPUs, time mean)",
            lambda r: f"{r['allocation_ratio']:.1%}"),
        row("GPUs the pods asked for ÷ GPUs (the trace's measure)",
            lambda r: f"{r['asked_ratio']:.1%}"),
        row("share of the time some request waits", lambda r: f"{r['share_of_time_waiting']:.1%}"),
        row("unallocated GPUs while requests wait (mean)",
            lambda r: fmt(r["unallocated_while_waiting"], 1)),
        row("… of them whole · MIG · shared", lambda r: " · ".join(
            fmt(r["while_waiting"].get(f"free {m}", 0.0), 1) for m in ("exclusive", "mig", "shared")
        )),
        row("requests waiting then: whole · 4g · 3g · seat (mean)", lambda r: " · ".join(
            fmt(r["while_waiting"].get(f"waiting {k}", 0.0), 1) for k in ("whole", "4g", "3g", "seat")
        )),
        row("requests waiting (time mean / peak)",
            lambda r: f"{r['mean_waiting']:.1f} / {r['peak_waiting']}"),
        row("wait, all pods (mean / p95)", waits(None)),
        row("wait, LS pods (mean / p95)", waits("LS")),
        row("wait, BE pods (mean / p95)", waits("BE")),
        row("pods granted in the window", lambda r: f"{r['waits']['granted']:,}"),
        row("preemptions", lambda r: str(r["preemptions"])),
        row("replay wall time", lambda r: f"{r['wall_s']:.1f} s"),
    ]  # fmt: skip
    days = len(next(iter(runs.values()))["hourly"]) // 24
    daily = [
        [f"day {137 + d}", *(
            f"{sum(h[0] for h in runs[n]['hourly'][24 * d : 24 * d + 24]) / 24:.0%}"
            for n in names
        )]
        for d in range(days)
    ]  # fmt: skip
    return (
        head + _table(["", *names], rows)
        + "\n\nGPU allocation ratio per day (hourly samples):\n\n"
        + _table(["", *names], daily)
    )  # fmt: skip


def fill_report(f: dict[str, Any]) -> str:
    runs = f["runs"]
    names = list(runs)
    c = f["cluster"]
    head = (
        f"Fill: {f['pods']:,} pods drawn from the trace's shapes on {c['nodes']:,} nodes, "
        f"{c['gpus']:,} GPUs ({', '.join(f'{v:,} {k}' for k, v in c['gpus_by_mode'].items())})\n\n"
    )
    rows = []
    for p in runs[names[0]]["points"]:
        a = p["arrived"]
        if round(a * 20) % 2 and a < 0.95:
            continue
        at = {n: next(x for x in runs[n]["points"] if x["arrived"] == a) for n in names}
        rows.append([f"{a:.0%}", *(
            f"{at[n]['allocation_ratio']:.1%} · {at[n]['unallocated']:,.0f} · "
            f"{at[n]['unallocated_asked']:,.0f}" for n in names
        )])  # fmt: skip
    last = {n: runs[n]["points"][-1] for n in names}
    base = last.get("gpuhub")
    fewer = []
    if base is not None:
        for n in names:
            if n != "gpuhub" and last[n]["unallocated"]:
                fewer.append(
                    f"{n}: {1 - base['unallocated'] / last[n]['unallocated']:+.1%} held, "
                    f"{1 - base['unallocated_asked'] / last[n]['unallocated_asked']:+.1%} asked"
                )
    return (
        head + "arrived work (asked ÷ GPUs) → allocation ratio · unallocated GPUs (held) · "
        "unallocated GPUs (asked)\n\n" + _table(["arrived", *names], rows)
        + "\n\nfewer unallocated GPUs with gpuhub's placement at the last mark: "
        + ("; ".join(fewer) or "-")
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiments", default="timeline,fill", help="timeline, fill or both")
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated")
    ap.add_argument(
        "--timeline-gpus",
        type=int,
        default=64,
        metavar="N",
        help="GPUs of the timeline's cluster (a stratified sample of the nodes)",
    )
    ap.add_argument(
        "--fill-until",
        type=float,
        default=1.0,
        metavar="F",
        help="the fill stops when the work arrived is F x the GPUs",
    )
    ap.add_argument(
        "--fill-gpus",
        type=int,
        default=0,
        metavar="N",
        help="GPUs of a stratified sample of the nodes for the fill (default 0: all 6,212)",
    )
    ap.add_argument("--seed", type=int, default=1, help="the fill's draws")
    ap.add_argument("--json", metavar="OUT", help="write every number (and the series) here")
    ap.add_argument("--markdown", metavar="OUT", help="write the report's tables here")
    args = ap.parse_args(argv)  # fmt: skip
    policies = [p.strip() for p in args.policies.split(",")]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        ap.error(f"unknown policy {unknown[0]!r}; known: {', '.join(POLICIES)}")
    experiments = {e.strip() for e in args.experiments.split(",")}
    t0 = time.perf_counter()
    result: dict[str, Any] = {"machine": host(), "seed": args.seed}
    parts = []
    if "timeline" in experiments:
        result["timeline"] = run_timeline(args.timeline_gpus, policies)
        parts.append(timeline_report(result["timeline"]))
    if "fill" in experiments:
        result["fill"] = run_fill(args.fill_until, args.seed, args.fill_gpus, policies)
        parts.append(fill_report(result["fill"]))
    result["wall_s"] = time.perf_counter() - t0
    report = "\n\n".join(parts) + f"\n\nwhole run: {result['wall_s']:.0f} s\n"
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
