"""How gpuhub submits work to Slurm: what its job executor and its notebook spawner share.

:class:`gpuhub.jobs.slurm.SlurmExecutor` (jobs) and :class:`gpuhub.spawners.slurm.GPUSlurmSpawner`
(notebook servers) both hand work to ``sbatch``, pinned where gpuhub placed the lease; neither
imports the other (``gpuhub.jobs`` and ``gpuhub.spawners`` share only neutral modules), so
what they have in common is here:

* :class:`SlurmSubmission`: the ``sbatch`` settings (partition, account, more options, the
  ``--comment`` that marks gpuhub's own jobs, the user's Unix account and whether to submit
  as it), on top of :class:`~gpuhub.inventory.slurm.SlurmCommands`;
* :func:`gpu_gres`: ``--gres=gpu[:TYPE]:N`` for whole GPUs of a model;
* Slurm's words back: :data:`ENDED_STATES` and :data:`ENDED_WHY` (a job that has ended, and
  why), :func:`submitted_job` (``sbatch --parsable``'s answer), :func:`is_unknown_job` and
  :func:`already_ended` (a failing ``scontrol``/``scancel`` about a job Slurm has done with),
  :func:`node_failure` (which node failed under a ``NODE_FAIL`` job, and Slurm's reason),
  :func:`file_tail` (the end of a job's output file);
* :data:`SLURM_SETS`: the device variables Slurm sets from the GRES it allocates.

Reading the cluster itself (nodes, jobs, their GRES) is :mod:`gpuhub.inventory.slurm`.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, List, Unicode, default
from traitlets import Callable as CallableTrait

from .slurm import Runner, SlurmCommands, SlurmError, parse_nodes

#: Slurm job states after which nothing of the job runs any more.
ENDED_STATES = frozenset(
    {
        "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
        "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED",
    }
)  # fmt: skip
#: Why Slurm ended a job, for people: "Slurm job 12 reached its Slurm time limit". The
#: executor and the spawner add what their jobs mean by COMPLETED and FAILED.
ENDED_WHY = {
    "CANCELLED": "was cancelled outside gpuhub (scancel)",
    "TIMEOUT": "reached its Slurm time limit",
    "NODE_FAIL": "ended because its node failed",
    "PREEMPTED": "was preempted by Slurm",
    "BOOT_FAIL": "could not start: its node failed to boot",
    "DEADLINE": "reached its Slurm deadline",
    "OUT_OF_MEMORY": "ran out of memory",
}
#: The job state of a job that Slurm ended because its node failed (or was set down).
NODE_FAIL = "NODE_FAIL"
#: Who set a node's reason, and when, as scontrol appends it: `` [root@2026-12-01T10:00:00]``.
_REASON_STAMP = re.compile(r"\s*\[[^\]\s]*@[^\]\s]*\]\Z")
#: Variables that Slurm sets from the GRES it allocates: gpuhub's own are left out of a
#: job that asks Slurm for GPUs.
SLURM_SETS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def same_name(user: str) -> str:
    """The default user mapping: the hub user's Unix account has the same name."""
    return user


class SlurmSubmission(SlurmCommands):
    """The settings with which gpuhub submits work to Slurm (``sbatch``): its jobs and its
    notebook servers each have them, under their own name in the configuration
    (``c.SlurmExecutor.partition``, ``c.GPUSlurmSpawner.partition``)."""

    partition = Unicode(
        "", config=True, help="The Slurm partition (``--partition``); empty: Slurm's default."
    )
    account = Unicode(
        "", config=True, help="The Slurm account (``--account``); empty: the submitter's."
    )
    sbatch_args = List(
        Unicode(),
        config=True,
        help="""More ``sbatch`` options for everything submitted, e.g. ``["--qos=interactive",
        "--mem-per-gpu=40G"]``. gpuhub's own (node, GRES, CPUs and memory, time, name) come
        after them, so they win.""",
    )
    comment_prefix = Unicode(
        "gpuhub:",
        config=True,
        help="""The start of the jobs' ``--comment`` (``gpuhub:lease=<id>``); the same as
        ``SlurmInventory.own_comment_prefix``, so the pool does not count them as outside.""",
    )
    unix_user = CallableTrait(
        help="""The hub user's Unix account on the cluster: a function ``name -> account``.
        Default: the same name.""",
    ).tag(config=True)
    submit_as_user = Bool(
        False,
        config=True,
        help="""Submit as the user's Unix account (``sbatch --uid=<account> --gid=<its
        group>``), which then
        owns a server's files too; what submits (the service for jobs, the hub for servers)
        must run as root, or as Slurm's SlurmUser. Default: as its own account. Sites that
        do not run it as root submit through ``sudo -u`` or a submit host instead
        (:attr:`runner`): see docs/how-to/slurm.md.""",
    )

    @default("unix_user")
    def _default_unix_user(self) -> Any:
        return same_name


def clean_submit(argv: list[str], slurm_conf: str = "") -> list[str]:
    """``argv`` (an ``sbatch --export=ALL`` command line) run by ``env -i`` with only
    ``PATH`` (the submitter's, to find ``sbatch``) and ``SLURM_CONF``: the job starts with
    nothing of the submitting process (the service's or the hub's tokens) and without a
    login shell on the node, which ``--export=NONE`` starts for every job (about a second
    each here); the batch script sets the job's own variables."""
    env = [f"PATH={os.environ.get('PATH', os.defpath)}"]
    if slurm_conf:
        env.append(f"SLURM_CONF={slurm_conf}")
    return ["env", "-i", *env, *argv]


def gpu_gres(count: int, model: str | None, models: Mapping[str, str]) -> str | None:
    """``gpu[:TYPE]:N`` for ``count`` whole GPUs of ``model`` (None: no GPU). The type is
    the model's GRES type through ``models`` (GRES type -> model, as ``SlurmInventory.models``);
    an unknown model is used as the type, and none (or the untyped ``""``) asks for any GPU.
    Callers refuse MIG slices and shared seats first: Slurm's GRES here are whole GPUs."""
    if not count:
        return None
    types = {m: t for t, m in models.items()}
    gres_type = types.get(model, model) if model else None
    return f"gpu:{gres_type}:{count}" if gres_type else f"gpu:{count}"


def submitted_job(answer: str) -> str:
    """The job id in ``sbatch --parsable``'s answer (``12`` or ``12;cluster``); a
    :class:`SlurmError` when it has none."""
    out = answer.strip()
    job = out.split(";", 1)[0].strip()
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {out[:200]!r}, not a job id")
    return job


def is_unknown_job(error: SlurmError) -> bool:
    """Whether a failed Slurm command said the job is not known (purged after MinJobAge)."""
    return "Invalid job id" in str(error)


def controller_unreachable(error: SlurmError) -> bool:
    """Whether a failed Slurm command could not reach slurmctld (it is restarting, or
    away): worth trying again, unlike a refusal."""
    text = str(error)
    return "Unable to contact slurm controller" in text or "did not answer within" in text


def already_ended(error: SlurmError) -> bool:
    """Whether a failed ``scancel`` said the job has ended already (unknown, or completing):
    cancelling it is then done."""
    return is_unknown_job(error) or "already completing" in str(error)


def file_tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of the file at ``path`` on one line ("" when it cannot
    be read): why a batch script failed, from Slurm's output file."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - limit))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return " ".join(text.split())[-limit:]


def node_failure(runner: Runner, node: str | None) -> str:
    """Why a job that Slurm ended ``NODE_FAIL`` ended, for people: ``node gpu2 failed: <the
    node's reason in Slurm>`` (``scontrol show node``, without who set it and when). The
    node's reason may be gone already (the node came back) or unreadable: then the sentence
    says so, and a failing ``scontrol`` is not raised (the job has ended either way)."""
    if not node:
        return "its node failed (Slurm does not say which)"
    try:
        found = parse_nodes(runner(["scontrol", "show", "node", "-o", node]))
    except SlurmError:
        found = []
    reason = next((_REASON_STAMP.sub("", n.reason) for n in found if n.name == node), "")
    if not reason:
        return f"node {node} failed; Slurm gives no reason now"
    return f"node {node} failed: {reason}"


def reason_since(reason: str) -> float | None:
    """When Slurm set a node's reason (the ``[user@2026-12-07T03:00:00]`` it ends with, in
    slurmctld's local time), as POSIX seconds; None where it has no such stamp."""
    found = re.search(r"\[[^\]\s@]*@([0-9T:\-]+)\]\Z", reason)
    if found is None:
        return None
    try:
        return dt.datetime.fromisoformat(found.group(1)).timestamp()
    except ValueError:
        return None


def unavailable_nodes(runner: Runner, nodes: str) -> list[tuple[str, str, float | None]]:
    """The nodes of ``nodes`` (a comma list) that take no new work now: (name, Slurm's
    state and reason in words, since when or None)."""
    found = parse_nodes(runner(["scontrol", "show", "node", "-o", nodes]))
    out = []
    for n in found:
        if n.name in nodes.split(",") and not n.usable:
            reason = _REASON_STAMP.sub("", n.reason)
            out.append(
                (n.name, n.state + (f": {reason}" if reason else ""), reason_since(n.reason))
            )
    return out


def host_account(account: str, user: str, settings: str = "SlurmExecutor") -> pwd.struct_passwd:
    """The Unix account ``account`` of hub user ``user`` (its uid, primary group, home);
    a ``ValueError`` with a sentence naming the settings of ``settings`` (a class name)
    when this host does not know it."""
    try:
        return pwd.getpwnam(account)
    except KeyError:
        raise ValueError(
            f"the Unix account {account!r} of user {user} does not exist on this host, and "
            f"work runs as its owner's account (c.{settings}.submit_as_user): create it, "
            f"or map {user} to an existing account (c.{settings}.unix_user)"
        ) from None


def owner_options(owner: pwd.struct_passwd) -> list[str]:
    """``sbatch`` options that submit as ``owner``: its account and its primary group
    (``--uid`` alone keeps the submitter's group, root's)."""
    return [f"--uid={owner.pw_name}", f"--gid={owner.pw_gid}"]


def give_to(owner: pwd.struct_passwd, paths: Iterable[Path]) -> None:
    """Make ``owner`` (and its primary group) own ``paths`` (links themselves, never
    what they point to)."""
    for path in paths:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
