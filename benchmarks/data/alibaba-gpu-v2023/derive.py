"""Derive this folder's sample from the Alibaba GPU cluster trace (cluster-trace-gpu-v2023).

Reads two CSV files of the trace from a folder you downloaded yourself and writes the
sample next to this script. It never downloads anything::

    python derive.py PATH/TO/clusterdata/cluster-trace-gpu-v2023/csv

Inputs (in the trace's ``csv`` folder): ``openb_node_list_gpu_node.csv`` (1,213 GPU
nodes) and ``openb_pod_list_default.csv`` (8,152 pods). Outputs:

``nodes.csv``
    Every GPU node, row for row as in the trace (the file is 42 KB).
``pods.csv``
    The GPU pods (``num_gpu`` > 0) whose lifetime overlaps the window of trace days
    ``WINDOW_DAYS`` (from ``creation_time`` to ``deletion_time``, seconds since the
    trace's start), row for row, in the trace's order.
``pod_shapes.csv``
    How many GPU pods of the whole trace ask for each (``num_gpu``, ``gpu_milli``,
    ``qos``): the distribution that the FGD-style fill experiment draws pods from.

Run it again on the same inputs and the outputs are byte for byte the same.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

NODES_IN = "openb_node_list_gpu_node.csv"
PODS_IN = "openb_pod_list_default.csv"
#: Trace days [first, last): ten busy days near the end of the trace.
WINDOW_DAYS = (137, 147)
DAY = 86_400
HERE = Path(__file__).resolve().parent


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file's header and rows."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or ()), list(reader)


def write(path: Path, header: list[str], rows: list[dict[str, object]]) -> None:
    """Rows as CSV with ``header``, LF line ends."""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def in_window(pod: dict[str, str], start: int, end: int) -> bool:
    """Whether a GPU pod's lifetime overlaps ``[start, end)``."""
    return (
        int(pod["num_gpu"]) > 0
        and int(pod["creation_time"]) < end
        and int(pod["deletion_time"]) > start
    )


def main(argv: list[str]) -> int:
    """Write the sample from the trace's csv folder ``argv[1]``."""
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src = Path(argv[1])
    node_header, nodes = read(src / NODES_IN)
    pod_header, pods = read(src / PODS_IN)
    write(HERE / "nodes.csv", node_header, nodes)
    start, end = (d * DAY for d in WINDOW_DAYS)
    window = [p for p in pods if in_window(p, start, end)]
    write(HERE / "pods.csv", pod_header, window)
    shapes = Counter(
        (int(p["num_gpu"]), int(p["gpu_milli"]), p["qos"]) for p in pods if int(p["num_gpu"]) > 0
    )
    write(
        HERE / "pod_shapes.csv",
        ["num_gpu", "gpu_milli", "qos", "pods"],
        [
            {"num_gpu": n, "gpu_milli": m, "qos": q, "pods": c}
            for (n, m, q), c in sorted(shapes.items())
        ],
    )
    print(
        f"{len(nodes)} nodes, {len(window)} of {len(pods)} pods in days {WINDOW_DAYS}, "
        f"{len(shapes)} pod shapes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
