"""What a notebook server's Slurm job is made of: plain functions of (lease, settings).

The Slurm spawner (:mod:`gpuhub.spawners.slurm`) only calls these; unit tests check them
without a cluster:

* :func:`job_name`, :func:`file_stem`: the names of a server's job and of its files;
* :func:`gres_for`: ``gpu[:TYPE]:N`` for a lease's whole GPUs;
* :func:`sbatch_argv`: the ``sbatch`` command line of a :class:`BatchRequest`;
* :func:`env_file_text`, :func:`batch_script`: the server's environment (a file of mode
  0600 that the batch script reads and deletes) and the batch script (no secret in it);
* :func:`job_status`, :func:`status_message`: Slurm's view of the job, and sentences
  for spawn progress and for the log.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..inventory.slurm import parse_jobs, parse_records
from ..inventory.slurm_submit import ENDED_STATES, ENDED_WHY, SLURM_SETS, gpu_gres

#: Characters kept as they are in job and file names; others become ``_`` (plus a hash).
_PLAIN = re.compile(r"[^A-Za-z0-9._@+-]")

#: Slurm's pending reasons that people meet most, in words (others are shown as Slurm says).
PENDING_WHY = {
    "Resources": "waiting for the node's resources to be free",
    "Priority": "other jobs come first",
    "ReqNodeNotAvail": "the node is not available (down, drained or reserved)",
    "PartitionTimeLimit": "the time limit is over the partition's",
    "BeginTime": "its start time has not come",
    "QOSMaxJobsPerUserLimit": "you run as many jobs as your QOS allows",
    "AssocGrpGRES": "your account's GPU limit is reached",
    "None": "being scheduled",
}
#: Why Slurm ended a server's job, for the log.
SERVER_ENDED_WHY = {
    **ENDED_WHY,
    "COMPLETED": "ended (the server exited)",
    "FAILED": "failed",
}


def plain_name(text: str) -> str:
    """``text`` usable in a Slurm job name and a file name: unchanged when it has only
    plain characters, else those replaced and a short hash of the original added, so two
    names never meet (``"a b"`` -> ``"a_b-5b3e2f"``, never the plain ``"a_b"``)."""
    plain = _PLAIN.sub("_", text)
    if plain == text:
        return text
    return f"{plain}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def job_name(prefix: str, user: str, server: str = "") -> str:
    """The Slurm job name of ``user``'s server ``server``: ``jupyter-alice``,
    ``jupyter-alice.gpu`` (a named server)."""
    return prefix + plain_name(user) + (f".{plain_name(server)}" if server else "")


def file_stem(server: str = "") -> str:
    """The start of the names of a server's files: ``jupyter`` or ``jupyter.NAME``."""
    return "jupyter" + (f".{plain_name(server)}" if server else "")


def gres_for(devices: Sequence[Mapping[str, Any]], models: Mapping[str, str]) -> str | None:
    """``gpu[:TYPE]:N`` for a lease's devices (None: no device), the type that of their
    model (:func:`~gpuhub.inventory.slurm_submit.gpu_gres`). MIG slices and shared seats
    are refused: Slurm's GRES here are whole GPUs."""
    for d in devices:
        if d.get("profile") or int(d.get("shared_by") or 1) > 1:
            raise ValueError(
                "on Slurm a server gets whole GPUs only; this lease holds a MIG slice or a "
                "shared seat: choose a profile with whole GPUs"
            )
    return gpu_gres(len(devices), devices[0].get("model") if devices else None, models)


@dataclass(frozen=True)
class BatchRequest:
    """Everything ``sbatch`` is told about one server's job."""

    name: str  # --job-name
    comment: str  # --comment (``gpuhub:lease=N``: the inventory counts it as gpuhub's own)
    script: str  # the batch script's path
    output: str  # --output
    chdir: str  # --chdir
    node: str | None = None  # --nodelist: where gpuhub placed the lease
    gres: str | None = None  # --gres
    cpus: int | None = None  # --cpus-per-task
    mem_mb: int | None = None  # --mem (MiB)
    minutes: int | None = None  # --time
    partition: str = ""
    account: str = ""
    owner: tuple[str, ...] = ()  # --uid and --gid: submit as this account and its group
    extra: tuple[str, ...] = field(default_factory=tuple)  # the admin's sbatch_args


def minutes_of(seconds: float | None) -> int | None:
    """Slurm's ``--time`` in whole minutes (rounded up) for a limit in seconds; None: none."""
    if seconds is None:
        return None
    return max(1, math.ceil(seconds / 60))


def limits_of(cpu_limit: float | None, mem_limit: int | None) -> tuple[int | None, int | None]:
    """A profile's ``cpu_limit`` (cores) and ``mem_limit`` (bytes) as Slurm's
    ``--cpus-per-task`` and ``--mem`` in MiB, rounded up; None where the profile sets none."""
    cpus = math.ceil(cpu_limit) if cpu_limit else None
    mem = math.ceil(mem_limit / (1 << 20)) if mem_limit else None
    return cpus, mem


def sbatch_argv(req: BatchRequest) -> list[str]:
    """The ``sbatch`` command line: the admin's options first, gpuhub's own after them (a
    later option wins), the script last. ``--export=ALL``, run in a clean environment
    (:func:`~gpuhub.inventory.slurm_submit.clean_submit`): nothing of the hub's own
    environment reaches the job; the batch script reads the server's from its file."""
    argv = ["sbatch", "--parsable", "--export=ALL", "--no-requeue", *req.extra, *req.owner]
    for option, value in (
        ("--partition", req.partition),
        ("--account", req.account),
        ("--nodelist", req.node),
        ("--gres", req.gres),
        ("--cpus-per-task", req.cpus),
        ("--mem", f"{req.mem_mb}M" if req.mem_mb else None),
        ("--time", req.minutes),
    ):
        if value:
            argv.append(f"{option}={value}")
    argv += [
        f"--job-name={req.name}",
        f"--comment={req.comment}",
        f"--output={req.output}",
        f"--chdir={req.chdir}",
        req.script,
    ]
    return argv


def job_environment(env: Mapping[str, str], *, slurm_sets_devices: bool) -> dict[str, str]:
    """The server's environment as the job gets it: without the device variables when the
    job asks Slurm for GPUs (Slurm sets ``CUDA_VISIBLE_DEVICES`` from what it allocated,
    which is what the node's cgroups let through); kept otherwise (a CPU-only server's
    empty ``CUDA_VISIBLE_DEVICES`` keeps it off the node's GPUs)."""
    out = dict(env)
    if slurm_sets_devices:
        for name in SLURM_SETS:
            out.pop(name, None)
    return out


def env_file_text(env: Mapping[str, str]) -> str:
    """The environment file the batch script sources: ``export NAME='value'`` lines."""
    for name in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


def batch_script(*, title: str, env_file: str, command: Sequence[str]) -> str:
    """The batch script: read the server's environment from ``env_file`` and delete it (the
    token then lives only in the server's processes), then become ``command``, so that
    ``scancel``'s SIGTERM reaches the server itself."""
    env_file = shlex.quote(env_file)
    return "\n".join(
        [
            "#!/bin/bash",
            f"# {title}, written by gpuhub",
            "set -e",
            f". {env_file}",
            f"rm -f {env_file}",
            f"exec {shlex.join(command)}",
            "",
        ]
    )


@dataclass(frozen=True)
class JobStatus:
    """A server's Slurm job as ``scontrol show job -d`` describes it."""

    job_id: str
    state: str  # JobState: PENDING, RUNNING, COMPLETED, CANCELLED, ...
    reason: str  # Reason: Resources, Priority, None, NonZeroExitCode, ...
    node: str | None  # BatchHost (None while pending)
    exit_code: int | None  # ExitCode's status (None: not known)
    gpu_indices: tuple[int, ...] = ()  # Slurm's device indices of its GPUs on the node

    @property
    def ended(self) -> bool:
        """Whether nothing of the job runs any more."""
        return self.state in ENDED_STATES

    @property
    def pending(self) -> bool:
        """Whether the job waits for Slurm to start it."""
        return self.state in ("PENDING", "CONFIGURING", "REQUEUED", "RESV_DEL_HOLD")


def job_status(text: str, job_id: str) -> JobStatus | None:
    """The status of job ``job_id`` in ``scontrol show job -d -o ID`` output (None when the
    output has no such job). Raises :class:`SlurmError` on output it cannot read."""
    held = {job.job_id: job for job in parse_jobs(text)}
    for pairs in parse_records(text, "job"):
        rec = dict(reversed(pairs))
        if rec.get("JobId") != job_id:
            continue
        node = rec.get("BatchHost") or None
        code = rec.get("ExitCode", "").split(":", 1)[0]
        return JobStatus(
            job_id=job_id,
            state=rec["JobState"],
            reason=rec.get("Reason", ""),
            node=None if node in (None, "(null)") else node,
            exit_code=int(code) if code.isdigit() else None,
            gpu_indices=held[job_id].indices_on(node or ""),
        )
    return None


def status_message(status: JobStatus) -> str:
    """A sentence for spawn progress: 'Slurm job 12 is pending: other jobs come first
    (Priority)', 'Slurm job 12 runs on gpu1; waiting for the server to report its port'."""
    what = f"Slurm job {status.job_id}"
    if status.pending:
        why = PENDING_WHY.get(status.reason)
        reason = f"{why} ({status.reason})" if why else status.reason or "no reason given"
        return f"{what} is pending: {reason}"
    if status.ended:
        return f"{what} {ended_why(status)}"
    if status.state == "RUNNING":
        return f"{what} runs on {status.node}; waiting for the server to report its port"
    return f"{what} is {status.state.lower()}"


def ended_why(status: JobStatus | None) -> str:
    """Why a server's job ended, for the log ('was cancelled outside gpuhub (scancel)');
    None: Slurm no longer knows it."""
    if status is None:
        return "is no longer known to Slurm (it ended before MinJobAge)"
    why = SERVER_ENDED_WHY.get(status.state, f"ended ({status.state})")
    if status.exit_code:
        why += f" (exit status {status.exit_code})"
    return why


def differing_indices(
    lease_devices: Iterable[Mapping[str, Any]], slurm_indices: Sequence[int]
) -> tuple[list[int], list[int]] | None:
    """(the lease's device indices, Slurm's) when they differ, else None (also when Slurm
    gave none: a job without GPUs, or one whose GRES Slurm does not list by index)."""
    leased = sorted(int(d["index"]) for d in lease_devices if d.get("index") is not None)
    if not slurm_indices or leased == sorted(slurm_indices):
        return None
    return leased, sorted(slurm_indices)
