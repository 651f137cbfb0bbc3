"""The Alibaba GPU trace's sample (benchmarks/data/alibaba-gpu-v2023) as gpuhub sees it:
pods as requests of gpuhub shapes, nodes as a simulated inventory with some of them
partitioned into MIG slices and shared seats, and a stratified cut of the cluster.

How pods become requests (gpuhub grants whole GPUs, MIG slices or shared seats, not
arbitrary fractions): ``num_gpu`` >= 2 or ``gpu_milli`` 1000 -> that many whole GPUs;
``gpu_milli`` <= 250 -> a seat on a GPU shared by 4 (1/4); <= 3/7 of a GPU -> a MIG 3g
slice; <= 4/7 -> a MIG 4g slice; more -> a whole GPU. Used by ``bench_trace.py``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from gpuhub.inventory import Node
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus

DATA = Path(__file__).resolve().parent / "data" / "alibaba-gpu-v2023"
DAY = 86_400
WINDOW = (137 * DAY, 147 * DAY)  # the sample's days (derive.py's WINDOW_DAYS)
MIG_LAYOUT = "1x4g.20gb+1x3g.20gb"  # one 4g and one 3g instance on each MIG GPU
SEATS = 4  # seats of a shared GPU


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="") as f:
        return list(csv.DictReader(f))


def shape_of(num_gpu: int, milli: int) -> tuple[WholeGpus | MigSlice | SharedGpu, str]:
    """The gpuhub shape a pod asks for, and its kind: whole, 4g, 3g or seat."""
    if num_gpu > 1 or milli >= 1000:
        return WholeGpus(count=num_gpu), "whole"
    share = Fraction(milli, 1000)
    if share <= Fraction(1, SEATS):
        return SharedGpu(kind="shared"), "seat"
    if share <= Fraction(3, 7):
        return MigSlice(kind="mig", profile="3g.20gb"), "3g"
    if share <= Fraction(4, 7):
        return MigSlice(kind="mig", profile="4g.20gb"), "4g"
    return WholeGpus(count=1), "whole"


def asked(num_gpu: int, milli: int) -> float:
    """GPUs a pod asks for, as the trace says (FGD's measure of allocated work)."""
    return num_gpu * milli / 1000


@dataclass(frozen=True)
class Pod:
    """A GPU pod of the trace as a request: its shape, what it asked for, its class."""

    name: str
    shape: WholeGpus | MigSlice | SharedGpu
    kind: str
    gpus: float  # asked for, in GPUs
    qos: str
    start: float
    end: float


def window_pods() -> list[Pod]:
    """The sample's pods, their lifetimes cut to the window's start."""
    out = []
    for r in read_csv("pods.csv"):
        n, m = int(r["num_gpu"]), int(r["gpu_milli"])
        shape, kind = shape_of(n, m)
        start = max(int(r["creation_time"]), WINDOW[0])
        out.append(
            Pod(r["name"], shape, kind, asked(n, m), r["qos"], start, int(r["deletion_time"]))
        )
    return out


def gpus_needed(weights: dict[str, float]) -> dict[str, float]:
    """GPUs each kind of request needs for ``weights`` (GPU-seconds or pod counts of each
    kind): a MIG GPU holds one 4g and one 3g slice, a shared GPU ``SEATS`` seats."""
    return {
        "mig": max(weights.get("4g", 0.0), weights.get("3g", 0.0)),
        "shared": weights.get("seat", 0.0) / SEATS,
        "whole": weights.get("whole", 0.0),
    }


def evenly(candidates: list[dict[str, str]], gpus: float) -> list[dict[str, str]]:
    """At least ``gpus`` GPUs' worth of ``candidates`` (whole nodes: rounded up), evenly
    spaced through the list."""
    if gpus <= 0 or not candidates:
        return []
    per_node = sum(int(r["gpu"]) for r in candidates) / len(candidates)
    k = min(len(candidates), math.ceil(gpus / per_node))
    return [candidates[int((i + 0.5) * len(candidates) / k)] for i in range(k)]


def partition(rows: list[dict[str, str]], weights: dict[str, float]) -> list[Node]:
    """The nodes of ``rows``, some of them in MIG mode (8-GPU nodes) and some time-sliced
    (T4 nodes), as many as the mix of requests ``weights`` needs; the rest grant whole
    GPUs."""
    need = gpus_needed(weights)
    total = sum(int(r["gpu"]) for r in rows)
    gpus = {k: v / sum(need.values()) * total for k, v in need.items()}
    mig = evenly([r for r in rows if r["gpu"] == "8"], gpus["mig"])
    plan = {r["sn"]: f"[mig={MIG_LAYOUT}]" for r in mig}
    t4 = [r for r in rows if r["model"] == "T4" and r["sn"] not in plan]
    plan.update({r["sn"]: f"[shared={SEATS}]" for r in evenly(t4, gpus["shared"])})
    return parse_spec(
        "; ".join(f"{r['sn']}: {r['gpu']}x{r['model']}{plan.get(r['sn'], '')}" for r in rows)
    )


def stratified(rows: list[dict[str, str]], gpus: int) -> list[dict[str, str]]:
    """About ``gpus`` GPUs of nodes, each (model, GPUs per node) stratum by its share of
    the trace's GPUs (largest remainders), evenly spaced within it."""
    strata: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        strata[(r["model"], r["gpu"])].append(r)
    total = sum(int(r["gpu"]) for r in rows)
    exact = {k: len(v) * int(k[1]) / total * gpus / int(k[1]) for k, v in strata.items()}
    count = {k: int(x) for k, x in exact.items()}
    left = gpus - sum(count[k] * int(k[1]) for k in count)
    for k in sorted(exact, key=lambda k: exact[k] - count[k], reverse=True):
        if int(k[1]) <= left:
            count[k] += 1
            left -= int(k[1])
    out = []
    for k, nodes in strata.items():
        n = count[k]
        out += [nodes[int((i + 0.5) * len(nodes) / n)] for i in range(n)]
    return sorted(out, key=lambda r: r["sn"])
