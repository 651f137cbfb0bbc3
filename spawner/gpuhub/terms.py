"""The words every part of gpuhub uses for leases: statuses, units, shapes and labels.

Neutral ground: this module imports nothing else of gpuhub, so the scheduler, the
service, the spawners, the CLI and the notebook extension say the same thing the same
way. Shapes are taken as the API shows them (``{"kind": "gpu", "count": 2}``) or as the
scheduler's models (anything with ``kind``, ``count``, ``profile``, ``model``).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

# -- lease statuses ------------------------------------------------------------------

QUEUED = "queued"
ACTIVE = "active"
RELEASED = "released"
CANCELLED = "cancelled"
REFUSED = "refused"

#: Statuses of leases that still wait or hold devices.
LIVE_STATUSES: tuple[str, ...] = (QUEUED, ACTIVE)
#: Statuses of leases that have ended (the ledger).
ENDED_STATUSES: tuple[str, ...] = (RELEASED, CANCELLED, REFUSED)
#: Every status, in the order a lease goes through them.
LEASE_STATUSES: tuple[str, ...] = LIVE_STATUSES + ENDED_STATUSES

# -- numbers for people ----------------------------------------------------------------


#: Fractions of a GPU are shown as such when their denominator is at most this (MIG has
#: 7 or 8 slices, shared GPUs a few seats; sums of those stay small).
_MAX_DENOMINATOR = 64


def fmt_units(u: Fraction | float) -> str:
    """GPU units for people: '2', '0.5', '0.15', and fractions of a GPU where a decimal
    would be rounded: '1/7' (a MIG 1g slice), '3/7', '1/3', '1 3/7'.

    Floats from the API are read back as the small fraction they stand for (0.142857...
    is 1/7); a value with at most two decimals (as an admin types a limit) stays decimal.
    """
    x = float(u)
    if round(x, 2) == x:
        return str(int(x)) if x == int(x) else f"{x:.2f}".rstrip("0")
    f = u if isinstance(u, Fraction) else Fraction(x).limit_denominator(_MAX_DENOMINATOR)
    if f.denominator > _MAX_DENOMINATOR or abs(float(f) - x) > 1e-6:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    whole, rest = divmod(f.numerator, f.denominator)
    if rest == 0:
        return str(whole)
    part = f"{rest}/{f.denominator}"
    return f"{whole} {part}" if whole else part


def fmt_gpus(u: Fraction | float) -> str:
    """GPU units with their noun: '1/7 GPU', '1 GPU', '2 GPUs', '1 1/2 GPUs'."""
    return f"{fmt_units(u)} GPU{'s' if float(u) > 1 or float(u) == 0 else ''}"


def fmt_hours(h: float) -> str:
    """GPU-hours for people: '0.4', '20'."""
    return str(int(h)) if h == int(h) else f"{h:.2f}".rstrip("0").rstrip(".")


def fmt_bytes(n: int) -> str:
    """Sizes for people, in binary units: '64 GB', '1.5 GB', '512 MB'."""
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            v = n / size
            return f"{v:g} {unit}B" if v == int(v) else f"{v:.1f} {unit}B"
    return f"{n} B"


# -- shapes ----------------------------------------------------------------------------


def _get(shape: Any, key: str, default: Any = None) -> Any:
    if isinstance(shape, Mapping):
        return shape.get(key, default)
    return getattr(shape, key, default)


#: What a profile without a GPU shape gives (a CPU-only server), in messages and tables.
NO_GPU = "no GPU"


def describe(shape: Any) -> str:
    """A short phrase for messages: '2 whole H100 GPUs', 'a MIG 1g.10gb slice'; 'no GPU'
    for None (a CPU-only profile)."""
    if shape is None:
        return NO_GPU
    model = _get(shape, "model")
    of = f" {model}" if model else ""
    kind = _get(shape, "kind", "gpu")
    if kind == "mig":
        return f"a MIG {_get(shape, 'profile')} slice{' of ' + model if model else ''}"
    if kind == "shared":
        return f"a shared{of} GPU"
    count = _get(shape, "count", 1)
    nodes = _get(shape, "nodes") or 1
    gpus = f"{count} whole{of} GPU{'s' if count != 1 else ''}"
    return gpus if nodes == 1 else f"{nodes} nodes with {gpus} each"


def shape_text(shape: Any) -> str:
    """A shape in a few words for tables: ``2x GPU H100``, ``MIG 1g.5gb``, ``shared GPU``;
    ``no GPU`` for None (a CPU-only profile)."""
    if shape is None:
        return NO_GPU
    model = _get(shape, "model")
    of = f" {model}" if model else ""
    kind = _get(shape, "kind", "gpu")
    if kind == "mig":
        return f"MIG {_get(shape, 'profile')}{of}"
    if kind == "shared":
        return f"shared GPU{of}"
    nodes = _get(shape, "nodes") or 1
    per_node = f"{_get(shape, 'count', 1)}x GPU{of}"
    return per_node if nodes == 1 else f"{nodes} nodes × {per_node}"


# -- what holds a lease ------------------------------------------------------------------

SERVER_LABEL_PREFIX = "server:"


def server_label(user: str, server_name: str = "") -> str:
    """The label of a lease held for a single-user server: ``server:USER/NAME``."""
    return f"{SERVER_LABEL_PREFIX}{user}/{server_name}"


def server_of(label: str) -> tuple[str, str] | None:
    """``"server:alice/gpu"`` → ``("alice", "gpu")``; None for labels of anything else.

    The server name follows the last ``/`` (a server name cannot contain one; a user
    name might). A label without ``/`` is the user's default server.
    """
    if not label.startswith(SERVER_LABEL_PREFIX):
        return None
    rest = label[len(SERVER_LABEL_PREFIX) :]
    user, _, name = rest.rpartition("/") if "/" in rest else (rest, "", "")
    return (user, name) if user else None


# -- job statuses ----------------------------------------------------------------------

JOB_QUEUED = "queued"  # its GPU request waits in the scheduler's queue
JOB_STARTING = "starting"  # GPUs granted; the executor is starting it
JOB_RUNNING = "running"
JOB_SUCCEEDED = "succeeded"
JOB_FAILED = "failed"
JOB_CANCELLED = "cancelled"
JOB_TIMED_OUT = "timed_out"  # stopped at its maximum runtime
JOB_NODE_FAILED = "node_failed"  # the cluster ended it because its node failed
JOB_PREEMPTED = "preempted"  # its lease was taken back (spot), and no retry was left

#: Statuses of jobs that have not ended.
JOB_LIVE_STATUSES: tuple[str, ...] = (JOB_QUEUED, JOB_STARTING, JOB_RUNNING)
#: Statuses of jobs that have ended.
JOB_ENDED_STATUSES: tuple[str, ...] = (
    JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_TIMED_OUT, JOB_NODE_FAILED, JOB_PREEMPTED,
)  # fmt: skip
#: Every job status, in the order a job goes through them.
JOB_STATUSES: tuple[str, ...] = JOB_LIVE_STATUSES + JOB_ENDED_STATUSES

#: The capacity tiers a job may run on: ``guaranteed`` (kept until the job ends) or
#: ``spot`` (idle capacity at a discount, taken back with a notice when guaranteed work
#: needs it).
JOB_TIERS: tuple[str, ...] = ("guaranteed", "spot")
#: The ways a job's attempt may end that its retry policy may retry, each with its most
#: retries: its lease was taken back, its node failed, it exited with an error, it ran
#: out of memory.
JOB_RETRY_CLASSES: tuple[str, ...] = ("preempted", "node_failed", "failed", "out_of_memory")


def job_label(user: str, job_id: int) -> str:
    """The label of a job's lease: ``job:USER/ID`` (servers' leases are ``server:USER/NAME``)."""
    return f"job:{user}/{job_id}"
