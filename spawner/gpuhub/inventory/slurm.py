"""The pool as a Slurm cluster describes it: nodes with their GPU GRES and state, and the
GPUs that Slurm jobs outside gpuhub hold.

Reads ``scontrol show node -o`` and ``scontrol show job -d -o`` (one record a line;
Debian 12's Slurm 22.05 has no ``--json`` for scontrol) through a *runner*, a function
that takes the command line and returns what it printed: :func:`run_command` by default,
which honours ``SLURM_CONF``; tests and other transports pass their own. The parsing is
done by the pure functions below, so it is tested on captured output without a cluster.

What becomes of the Slurm answers:

* each node's ``Gres=gpu[:TYPE]:N`` entries become N GPUs with Slurm's device indices
  (0, 1, ... in the order the entries are listed), the model taken from
  :attr:`SlurmInventory.models` (``h100`` -> ``H100-80GB``; an unknown type is kept as it is);
* a node is *usable* when its base state is IDLE, MIXED or ALLOCATED and no flag says it
  takes no new work (DRAIN, NOT_RESPONDING, FAIL, MAINTENANCE, a reboot, ...): DOWN,
  drained and not-responding nodes stay in the pool, marked unusable, with Slurm's reason;
* GPUs that running Slurm jobs hold (``GRES=gpu:h100:2(IDX:1-2)`` per node in ``-d``) are
  *outside holds* unless the job is gpuhub's own: gpuhub submits its work with
  ``--comment=gpuhub:...`` (:attr:`SlurmInventory.own_comment_prefix`), so any other job,
  whoever submitted it, is "Slurm job N (outside gpuhub)".

A failing ``scontrol`` (missing, timing out, exiting non-zero, printing what cannot be
read) raises :class:`SlurmError`; it is never taken as "no nodes" or "no jobs".
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from traitlets import Bool, Dict, Float, HasTraits, Int, Unicode, default
from traitlets import Callable as CallableTrait

from . import InventorySource, apply_sharing
from .model import Gpu, Node, split_outside

#: A runner: the command line in, what it printed (stdout) out; raises SlurmError.
Runner = Callable[[Sequence[str]], str]

#: Node states (the part before any ``+FLAG``) in which a node takes work.
USABLE_STATES = frozenset({"IDLE", "MIXED", "ALLOCATED"})
#: Node state flags that mean "no new work here", whatever the base state.
UNUSABLE_FLAGS = frozenset(
    {
        "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "NOT_RESPONDING", "MAINTENANCE",
        "MAINT", "REBOOT_REQUESTED", "REBOOT_ISSUED", "INVALID", "INVALID_REG", "POWER_DOWN",
        "POWERING_DOWN",
    }
)  # fmt: skip
#: Job states in which a job holds nothing (waiting, or over).
NOT_HOLDING_STATES = frozenset(
    {
        "PENDING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY",
    }
)  # fmt: skip

# a key of scontrol's one-line records: "JobId", "AllocNode:Sid", "CPUs/Task", "JOB_GRES";
# a new key starts after whitespace with a capital letter, so "Comment=gpuhub lease=1"
# and "JobName=my training run" keep their values whole
_KEY = re.compile(r"(?:^|\s)([A-Z][A-Za-z0-9_:/]*)=")
_GRES = re.compile(
    r"\A(?P<name>[A-Za-z0-9_.\-]+)(?::(?P<type>[^:()\s]+))?:(?P<count>\d+)"
    r"(?:\((?P<extra>[^)]*)\))?\Z"
)
_MEMORY = re.compile(r"(\d+)\s*GB\Z", re.IGNORECASE)
_NO_RECORDS = re.compile(r"\ANo (?:jobs|nodes|partitions) in the system\s*\Z")


class SlurmError(RuntimeError):
    """A Slurm command failed, or printed what cannot be read; the message says which and why."""


# ------------------------------------------------------------------------------------
# Running scontrol
# ------------------------------------------------------------------------------------


def run_command(
    argv: Sequence[str], *, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> str:
    """Run a Slurm command and return its standard output; :class:`SlurmError` when it
    cannot be started, runs past ``timeout`` seconds or exits non-zero (with its stderr).

    ``env`` is the whole environment (default: this process's, so ``SLURM_CONF`` applies).
    """
    cmd = " ".join(argv)
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError as e:
        raise SlurmError(
            f"`{cmd}` cannot run: {argv[0]} is not installed here ({e.strerror}); "
            "install Slurm's client commands (Debian: slurm-client)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"`{cmd}` did not answer within {timeout:g} s; is slurmctld running, and is "
            "SLURM_CONF the cluster's configuration?"
        ) from None
    if done.returncode != 0:
        why = " ".join(done.stderr.split()) or "no message"
        raise SlurmError(f"`{cmd}` failed (exit status {done.returncode}): {why}")
    return done.stdout


def command_runner(slurm_conf: str, timeout: float) -> Runner:
    """A runner of Slurm commands: :func:`run_command` with ``SLURM_CONF`` set to
    ``slurm_conf`` (when given) and ``timeout``."""

    def run(argv: Sequence[str]) -> str:
        env = dict(os.environ)
        if slurm_conf:
            env["SLURM_CONF"] = slurm_conf
        return run_command(argv, timeout=timeout, env=env)

    return run


# ------------------------------------------------------------------------------------
# Parsing scontrol's one-line records
# ------------------------------------------------------------------------------------


def parse_record(line: str) -> list[tuple[str, str]]:
    """The ``Key=value`` pairs of one ``scontrol show ... -o`` line, in order (keys can
    repeat: a job's ``Nodes=``/``GRES=`` per node). Values keep inner spaces."""
    matches = list(_KEY.finditer(line))
    if not matches or line[: matches[0].start()].strip():
        raise SlurmError(f"cannot read this line of scontrol's output: {line.strip()[:200]!r}")
    pairs = []
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        end = nxt.start() if nxt else len(line)
        pairs.append((m.group(1), line[m.end() : end].strip()))
    return pairs


def parse_records(text: str, what: str) -> Iterator[list[tuple[str, str]]]:
    """Every record of scontrol's one-line output; none for "No jobs in the system".
    Empty output is an error: scontrol always says something."""
    if not text.strip():
        raise SlurmError(f"scontrol printed nothing for the {what}")
    if _NO_RECORDS.match(text.strip()):
        return
    for line in text.splitlines():
        if line.strip():
            yield parse_record(line)


def expand_hostlist(text: str) -> list[str]:
    """Slurm's host list to names: ``"gpu[1-3,7],login"`` -> gpu1, gpu2, gpu3, gpu7, login
    (zero padding kept; several bracket groups in one name multiply)."""
    names: list[str] = []
    for item in split_outside(text, ",", "[", "]"):
        item = item.strip()
        if not item:
            continue
        m = re.search(r"\[([^\]]*)\]", item)
        if not m:
            names.append(item)
            continue
        for part in m.group(1).split(","):
            lo, _, hi = part.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise SlurmError(f"cannot read the host list {text!r}")
            width = len(lo) if lo.startswith("0") else 0
            for i in range(int(lo), int(hi or lo) + 1):
                names.extend(
                    expand_hostlist(item[: m.start()] + str(i).zfill(width) + item[m.end() :])
                )
    return names


def parse_indices(text: str) -> tuple[int, ...]:
    """Slurm's device index list: ``"0,2-3"`` -> (0, 2, 3); ``"N/A"`` -> ()."""
    if text.strip() in ("", "N/A"):
        return ()
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise SlurmError(f"cannot read the GRES indices {text!r}")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(out)


@dataclass(frozen=True)
class Gres:
    """One GRES entry: ``gpu:h100:2(IDX:1-2)`` is name gpu, type h100, count 2, indices 1, 2."""

    name: str
    type: str | None
    count: int
    indices: tuple[int, ...] = ()


def parse_gres(text: str) -> tuple[Gres, ...]:
    """A GRES list (``Gres=``, ``GresUsed=``, a job's ``GRES=``): ``"gpu:h100:4(S:0-1),gpu:l4:1"``.
    ``(null)`` and empty are none."""
    if text.strip() in ("", "(null)", "N/A"):
        return ()
    out = []
    for item in split_outside(text, ",", "(", ")"):
        m = _GRES.match(item.strip())
        if not m:
            raise SlurmError(f"cannot read the GRES {item.strip()!r} (in {text!r})")
        extra = m.group("extra") or ""
        indices = parse_indices(extra[4:]) if extra.startswith("IDX:") else ()
        out.append(Gres(m.group("name"), m.group("type"), int(m.group("count")), indices))
    return tuple(out)


def node_usable(state: str) -> bool:
    """Whether a node in Slurm's ``State=`` (``IDLE``, ``MIXED+DRAIN``, ``DOWN+NOT_RESPONDING``,
    ``IDLE*``) takes new work."""
    base, *flags = state.strip().upper().split("+")
    if base.endswith("*") or any(f.endswith("*") for f in flags):  # `*`: not responding
        return False
    return base in USABLE_STATES and not UNUSABLE_FLAGS.intersection(flags)


@dataclass(frozen=True)
class SlurmNode:
    """A node as ``scontrol show node`` describes it."""

    name: str
    state: str  # Slurm's State=, e.g. "MIXED+DRAIN"
    reason: str  # why it is drained or down ("" when Slurm gives none)
    gres: tuple[Gres, ...]
    partitions: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """Whether Slurm gives this node new work (see :func:`node_usable`)."""
        return node_usable(self.state)

    @property
    def gpus(self) -> Iterator[tuple[int, str | None]]:
        """(Slurm device index, GRES type) of each GPU, in Slurm's index order."""
        index = 0
        for g in self.gres:
            if g.name == "gpu":
                for _ in range(g.count):
                    yield index, g.type
                    index += 1


def parse_nodes(text: str) -> list[SlurmNode]:
    """The nodes in ``scontrol show node -o`` (or ``-d -o``) output."""
    nodes = []
    for pairs in parse_records(text, "nodes"):
        rec = dict(reversed(pairs))  # the first of repeated keys
        name = rec.get("NodeName")
        if not name or "State" not in rec:
            raise SlurmError(f"a node record without NodeName= or State=: {pairs[:3]!r}")
        try:
            gres = parse_gres(rec.get("Gres", ""))
        except SlurmError as e:
            raise SlurmError(f"node {name}: {e}") from None
        partitions = rec.get("Partitions", "")
        nodes.append(
            SlurmNode(
                name=name,
                state=rec["State"],
                reason=rec.get("Reason", ""),
                gres=gres,
                partitions=tuple(p for p in partitions.split(",") if p and p != "(null)"),
            )
        )
    return nodes


@dataclass(frozen=True)
class SlurmJob:
    """A job as ``scontrol show job -d`` describes it, with the GPUs it holds per node."""

    job_id: str
    name: str
    user: str
    state: str
    comment: str
    gpus: Mapping[str, tuple[Gres, ...]]  # node -> GPU GRES with their indices there

    @property
    def holds(self) -> bool:
        """Whether the job holds its devices now (running, suspended or completing)."""
        return self.state.upper() not in NOT_HOLDING_STATES and bool(self.gpus)

    def indices_on(self, node: str) -> tuple[int, ...]:
        """Slurm's device indices of the GPUs the job holds on ``node``, in order."""
        return tuple(sorted({i for g in self.gpus.get(node, ()) for i in g.indices}))


def parse_jobs(text: str) -> list[SlurmJob]:
    """The jobs in ``scontrol show job -d -o`` output (``-d``: devices per node)."""
    jobs = []
    for pairs in parse_records(text, "jobs"):
        rec = dict(reversed(pairs))
        job_id = rec.get("JobId")
        if not job_id or "JobState" not in rec:
            raise SlurmError(f"a job record without JobId= or JobState=: {pairs[:3]!r}")
        gpus: dict[str, tuple[Gres, ...]] = {}
        nodes: list[str] = []
        for key, value in pairs:  # "Nodes=gpu[1-2] CPU_IDs=0 Mem=0 GRES=gpu:h100:1(IDX:0)"
            if key == "Nodes":
                nodes = expand_hostlist(value)
            elif key == "GRES" and nodes:
                try:
                    held = tuple(g for g in parse_gres(value) if g.name == "gpu")
                except SlurmError as e:
                    raise SlurmError(f"job {job_id}: {e}") from None
                if held:
                    for node in nodes:
                        gpus[node] = gpus.get(node, ()) + held
                nodes = []
        user = rec.get("UserId", "")
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=rec.get("JobName", ""),
                user=user.split("(", 1)[0],
                state=rec["JobState"],
                comment=rec.get("Comment", ""),
                gpus=gpus,
            )
        )
    return jobs


# ------------------------------------------------------------------------------------
# From Slurm's words to gpuhub's
# ------------------------------------------------------------------------------------


def slurm_gpu_uuid(node: str, index: int) -> str:
    """gpuhub's id of GPU ``index`` (Slurm's device index) of ``node``: Slurm does not know
    the GPUs' UUIDs, and the pool needs one id per device."""
    return f"GPU-slurm-{node}-{index}"


def to_node(node: SlurmNode, models: Mapping[str, str], *, simulated: bool = False) -> Node:
    """gpuhub's :class:`Node` for a Slurm node: its GPUs by Slurm index, the model by GRES
    type through ``models`` (unknown types kept as they are, untyped ``gpu`` as ``models.get("")``
    or ``"GPU"``), the memory read from the model's name (``H100-80GB``), usable or not."""
    gpus = []
    for index, gres_type in node.gpus:
        model = models.get(gres_type or "", gres_type or "GPU")
        mem = _MEMORY.search(model)
        gpus.append(
            Gpu(
                uuid=slurm_gpu_uuid(node.name, index),
                index=index,
                model=model,
                memory_mb=int(mem.group(1)) * 1024 if mem else 0,
                simulated=simulated,
            )
        )
    state = node.state + (f": {node.reason}" if node.reason else "")
    return Node(
        name=node.name,
        gpus=tuple(gpus),
        simulated=simulated,
        labels={"slurm.partitions": ",".join(node.partitions)},
        usable=node.usable,
        state=state,
    )


@dataclass(frozen=True)
class OutsideHold:
    """GPUs of one node that a Slurm job not submitted by gpuhub holds."""

    job_id: str
    node: str
    indices: tuple[int, ...]  # Slurm's device indices on the node
    user: str
    name: str
    state: str

    @property
    def holder(self) -> str:
        """How the pool names the holder."""
        return f"Slurm job {self.job_id} (outside gpuhub)"

    @property
    def gpu_uuids(self) -> tuple[str, ...]:
        """The held GPUs' ids in gpuhub's pool (:func:`slurm_gpu_uuid`)."""
        return tuple(slurm_gpu_uuid(self.node, i) for i in self.indices)


def outside_holds(
    jobs: Sequence[SlurmJob], own_comment_prefix: str = "gpuhub:"
) -> dict[str, tuple[OutsideHold, ...]]:
    """Node name -> the holds of jobs that hold GPUs there and whose comment does not start
    with ``own_comment_prefix`` (gpuhub's own jobs), ordered by job id."""
    by_node: dict[str, list[OutsideHold]] = {}
    for job in jobs:
        if not job.holds or (own_comment_prefix and job.comment.startswith(own_comment_prefix)):
            continue
        for node in job.gpus:
            indices = job.indices_on(node)
            if indices:
                by_node.setdefault(node, []).append(
                    OutsideHold(job.job_id, node, indices, job.user, job.name, job.state)
                )
    return {
        node: tuple(sorted(holds, key=lambda h: (len(h.job_id), h.job_id)))
        for node, holds in sorted(by_node.items())
    }


# ------------------------------------------------------------------------------------
# The inventory source
# ------------------------------------------------------------------------------------


class SlurmCommands(HasTraits):
    """How gpuhub runs Slurm's commands: the cluster's ``slurm.conf``, a time limit, and
    the replaceable runner (``sudo -u``, a submit host). The inventory, the executor and
    the spawner (through :class:`~gpuhub.inventory.slurm_submit.SlurmSubmission`) all have
    these settings, each under its own name in the configuration."""

    slurm_conf = Unicode(
        config=True,
        help="""The cluster's slurm.conf (``SLURM_CONF``); default: the environment's
        ``SLURM_CONF``, else Slurm's own default.""",
    )
    command_timeout = Float(
        30.0, config=True, help="Seconds a Slurm command may take before it counts as failed."
    )
    runner = CallableTrait(
        help="""The function that runs a Slurm command: argv in, its output out, raising
        :class:`SlurmError` on failure. Default: :func:`run_command` with
        :attr:`slurm_conf` and :attr:`command_timeout`."""
    )

    @default("slurm_conf")
    def _default_slurm_conf(self) -> str:
        return os.environ.get("SLURM_CONF", "")

    @default("runner")
    def _default_runner(self) -> Runner:
        return command_runner(self.slurm_conf, self.command_timeout)


class SlurmInventory(SlurmCommands, InventorySource):
    """The nodes and GPUs of a Slurm cluster, from ``scontrol show node``.

    GPUs are the nodes' ``gpu`` GRES; drained, down and not-responding nodes are kept but
    marked unusable. :meth:`outside_holds` tells which GPUs Slurm jobs outside gpuhub hold.
    """

    models = Dict(
        default_value={"h100": "H100-80GB", "a100": "A100-80GB", "l4": "L4-24GB"},
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""GRES type -> GPU model as profiles name it, e.g. ``{"h100": "H100-80GB",
        "a100_40g": "A100-40GB"}``; the key ``""`` names untyped ``gpu:N`` GRES. An unknown
        type is kept as the model name. The memory is read from the model's end (``80GB``).""",
    )
    partition = Unicode(
        "",
        config=True,
        help="Only the nodes of this Slurm partition (e.g. ``gpu``); empty: every node.",
    )
    own_comment_prefix = Unicode(
        "gpuhub:",
        config=True,
        help="""The start of the ``--comment`` that gpuhub gives the Slurm jobs it submits;
        GPUs that any other job holds are shown as held outside gpuhub.""",
    )
    shared = Dict(
        key_trait=Unicode(),
        value_trait=Int(min=2),
        config=True,
        help='Time-sliced GPUs: glob on model -> holders per GPU, e.g. ``{"L4*": 4}``.',
    )
    simulated = Bool(
        False,
        config=True,
        help="""Mark every GPU simulated: for a test cluster whose GPUs are fake devices
        (``scripts/slurm``), so that the UI and the API say so.""",
    )
    scontrol = Unicode("scontrol", config=True, help="The scontrol command (a name or a path).")

    def slurm_nodes(self) -> list[SlurmNode]:
        """The cluster's nodes (of :attr:`partition`) as Slurm describes them."""
        nodes = parse_nodes(self.runner([self.scontrol, "show", "node", "-o"]))
        if self.partition:
            nodes = [n for n in nodes if self.partition in n.partitions]
        return nodes

    def nodes(self) -> list[Node]:
        """Every node with its GPUs, unusable ones marked (see :func:`to_node`)."""
        out = []
        for sn in self.slurm_nodes():
            node = apply_sharing(to_node(sn, self.models, simulated=self.simulated), self.shared)
            if not node.usable:  # the scheduler logs when a node stops or starts taking work
                self.log.debug("Slurm node %s takes no work: %s", node.name, node.state)
            out.append(node)
        return out

    def jobs(self) -> list[SlurmJob]:
        """Every job Slurm knows, with the GPUs each holds per node."""
        return parse_jobs(self.runner([self.scontrol, "show", "job", "-d", "-o"]))

    def outside_holds(self) -> dict[str, tuple[OutsideHold, ...]]:
        """Node name -> GPUs held there by Slurm jobs that gpuhub did not submit."""
        return outside_holds(self.jobs(), self.own_comment_prefix)

    def held_outside(self) -> dict[str, str]:
        """GPU id -> "Slurm job N (outside gpuhub)" for each GPU that a Slurm job gpuhub
        did not submit holds (jobs that share one GPU are named together, by job id)."""
        holders: dict[str, list[str]] = {}
        for holds in self.outside_holds().values():
            for hold in holds:
                for uuid in hold.gpu_uuids:
                    holders.setdefault(uuid, []).append(hold.holder)
        return {uuid: ", ".join(names) for uuid, names in sorted(holders.items())}
