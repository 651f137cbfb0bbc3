"""The executor base class: how a job is started, watched, stopped and read.

The service's job lifecycle (:mod:`gpuhub.jobs.lifecycle`) calls the hooks of one
executor (chosen by ``c.GpuhubService.job_executor_class``) in a fixed order, each in a
worker thread (they may block)::

    resolve_image(image)                       at submit, before anything is created
    before_start(job) -> start(job) -> state   once the job's GPU lease is granted
    poll(job, state) ...                       every tick while it runs
    placed(job, state) ...                     while it runs, until it names its devices
    [notify(job, state, notice)]               once, when its lease is under a preemption notice
    [stop(job, state, grace) -> poll(...)]     cancelled, timed out, preempted at the notice's
                                               deadline, or its lease ended
    read_log(job, state, ...) ... -> cleanup(job, state)    once, when the attempt has ended

A job may run more than once (an *attempt* each: ``JobSpec.attempt``), when its attempt
ended in a class its retry policy retries (preempted, node failed, failed, out of
memory): the next attempt goes through ``before_start`` and ``start`` again, in the same
folder, with the same ``JobSpec`` but for ``attempt``, ``lease`` and the devices, so
``start`` must tell the new attempt from the one before (whose runner, container or
cluster job has ended and been cleaned up) and never take the old one's state or exit
status for the new one's.

``start`` returns the executor's *state*: a small JSON-able dict saved with the job, from
which ``poll``, ``stop``, ``read_log`` and ``cleanup`` find the job again, also in a
restarted service. The lifecycle never calls ``start`` for a job whose state was saved; a
service that stopped between ``start`` and saving its state calls ``before_start`` and
``start`` again with the same :class:`JobSpec`, so both must be idempotent: a repeated
``start`` finds what the first one launched and returns its state. A job's own folder
under the user's home holds what it leaves behind (see :class:`JobSpec`); the runner
(``python -m gpuhub.jobs.runner FOLDER``) writes ``exit_status.json`` there when it ends.

A cluster executor (Slurm: ``sbatch``, ``squeue``, ``scancel``) implements the same hooks
from :class:`JobSpec` alone: ``docs/how-to/write-a-job-executor.md`` walks through one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from traitlets.config import LoggingConfigurable

#: Folder of a user's home holding one folder per job: ``gpuhub-jobs/<id>-<slug>/``.
JOBS_FOLDER = "gpuhub-jobs"
#: Files of a job's folder.
JOB_FILE = "job.json"  # the runner's instructions (written by before_start)
LOG_FILE = "job.log"  # everything the job printed
EXIT_FILE = "exit_status.json"  # written by the runner when it ends
ARTIFACTS = "artifacts"  # $GPUHUB_OUTPUT_DIR
PREEMPT_FILE = "preempt.json"  # $GPUHUB_PREEMPT_FILE: the preemption notice (notify)


@dataclass(frozen=True)
class JobDevice:
    """One device of a job's lease: a whole GPU, a MIG instance or a seat on a shared GPU.

    ``uuid`` is what ``CUDA_VISIBLE_DEVICES`` names; ``index`` the GPU's index on its node
    (of the parent GPU for a MIG instance). ``simulated`` devices do not exist: pass them
    to no engine (the job sees their uuids, and ``GPUHUB_SIMULATED=1``).
    """

    uuid: str
    index: int | None = None
    model: str | None = None
    memory_mb: int | None = None
    simulated: bool = False
    parent_uuid: str | None = None  # a MIG instance's GPU
    mig_profile: str | None = None  # a MIG instance's profile, e.g. "1g.10gb"
    shared_by: int | None = None  # a time-sliced GPU's number of seats
    node: str | None = None  # its node, in a multi-node job (else the job's ``node``)

    @classmethod
    def from_lease(cls, device: dict[str, Any]) -> JobDevice:
        """A device as the scheduler lists it in a lease (``Lease.devices``)."""
        index = device.get("index")
        return cls(
            uuid=str(device["uuid"]),
            index=int(index) if index is not None else None,
            model=device.get("model"),
            memory_mb=device.get("memory_mb"),
            simulated=bool(device.get("simulated")),
            parent_uuid=device.get("parent_uuid"),
            mig_profile=device.get("profile"),
            shared_by=device.get("shared_by"),
            node=device.get("node"),
        )


@dataclass(frozen=True)
class JobSpec:
    """Everything an executor needs to know about one job (built by the job lifecycle).

    What to run (``kind``, ``path``, ``source``, ``parameters``), where its output goes
    (``folder``), on which GPUs (``shape``, ``node``, ``devices``, ``gpus``), in which
    environment (``image``, ``env``, the limits) and for how long (``max_runtime_s``).
    Every field has the same value in every hook call for one job, also after a restart,
    but ``lease`` (the lease's live view: its status and GPU-hours move on) and ``source``
    (empty in ``read_log`` calls made for readers of a running job's log).
    """

    id: int
    user: str
    name: str
    kind: str  # "notebook" | "script"
    path: str  # the notebook or script, relative to the user's home (POSIX, no "..")
    #: the job's output folder relative to the user's home, e.g. "gpuhub-jobs/12-train":
    #: the snapshot and job.json go in, the executed notebook, job.log, artifacts/ and
    #: exit_status.json come out (see the ``*_path`` properties). Where the home is, is the
    #: executor's business (a local path, a volume, a cluster's shared file system).
    folder: str
    #: the snapshot taken at submit: the notebook's JSON text or the script's source
    source: str
    parameters: dict[str, Any] = field(default_factory=dict)
    #: the lease as the scheduler's API shows it (id, node, devices, profile, ...)
    lease: dict[str, Any] = field(default_factory=dict)
    #: the job's own environment: GPUHUB_JOB_ID, and with a lease CUDA_VISIBLE_DEVICES and
    #: NVIDIA_VISIBLE_DEVICES (the devices' uuids), GPUHUB_LEASE_ID, GPUHUB_SIMULATED=1
    #: for simulated devices. The executor adds HOME and GPUHUB_OUTPUT_DIR (the artifacts
    #: folder, absolute, as the job sees it) and filters it with ``job_environment``.
    env: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # image name (Docker); None: the executor's environment
    image_digest: str | None = None  # the image id resolved at submit ("sha256:...")
    cpu_limit: float | None = None
    mem_limit: int | None = None  # bytes
    shm_size: int | None = None  # bytes
    gpus: int = 0  # whole devices granted on each node (torchrun --nproc-per-node)
    #: the job's maximum runtime in seconds; the lifecycle stops the job (``stop``) when it
    #: has run this long. An engine's own limit (Slurm ``--time``) should be a little longer,
    #: so gpuhub's stop, which records ``timed_out``, comes first. None: not known.
    max_runtime_s: int | None = None
    #: the GPU shape asked for, as the API shows shapes: {"kind": "gpu", "count": 2},
    #: {"kind": "mig", "profile": "1g.10gb"}, {"kind": "shared"} (+ "model" if asked)
    shape: dict[str, Any] = field(default_factory=dict)
    #: the node the lease's devices are on (None: no lease); a multi-node job's nodes
    #: joined with commas, Slurm's node list ("gpu1,gpu2"), each device naming its own
    node: str | None = None
    devices: tuple[JobDevice, ...] = ()  # the lease's devices, in the lease's order
    lease_id: int | None = None
    profile: str | None = None  # the spawner profile the job was submitted with
    group: str | None = None  # the quota group its GPU-hours are charged to, if any
    tier: str = "guaranteed"  # or "spot": its lease may be taken back with a notice
    attempt: int = 1  # 1, then 2, ... when the job runs again after a retried end
    #: how the attempt before ended ("preempted", "node_failed", "failed",
    #: "out_of_memory"); None on the first attempt
    retried_after: str | None = None

    @property
    def nodes(self) -> int:
        """How many nodes the job spans (its shape's ``nodes``; > 1: ``node`` lists them)."""
        return int(self.shape.get("nodes") or 1)

    @property
    def simulated(self) -> bool:
        """Whether the job's devices are simulated (nothing real to hand to an engine)."""
        return any(d.simulated for d in self.devices)

    @property
    def log_path(self) -> str:
        """``job.log`` relative to the home: everything the job printed."""
        return f"{self.folder}/{LOG_FILE}"

    @property
    def exit_status_path(self) -> str:
        """``exit_status.json`` relative to the home: written by the runner when it ends."""
        return f"{self.folder}/{EXIT_FILE}"

    @property
    def preempt_path(self) -> str:
        """``preempt.json`` relative to the home: ``$GPUHUB_PREEMPT_FILE`` of the job,
        written by :meth:`JobExecutor.notify` when its lease is to be taken back."""
        return f"{self.folder}/{PREEMPT_FILE}"

    @property
    def artifacts_path(self) -> str:
        """``artifacts/`` relative to the home: ``$GPUHUB_OUTPUT_DIR`` of the job."""
        return f"{self.folder}/{ARTIFACTS}"

    @property
    def output_path(self) -> str | None:
        """The executed notebook relative to the home (None for scripts)."""
        return None if self.output_name is None else f"{self.folder}/{self.output_name}"

    @property
    def input_name(self) -> str:
        """The snapshot's file name in the job's folder: ``input.ipynb`` or ``input.py``."""
        return "input.ipynb" if self.kind == "notebook" else "input.py"

    @property
    def output_name(self) -> str | None:
        """The executed notebook's file name in the job's folder (None for scripts)."""
        if self.kind != "notebook":
            return None
        stem = self.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return f"{stem}.ipynb" if stem != "input" else "output.ipynb"


class EngineUnavailable(Exception):
    """The engine cannot take the job now (a cluster's controller does not answer). Raised
    by ``before_start`` or ``start``: the job stays ``starting`` and both are called again
    at the next tick (they are idempotent), for up to :data:`ENGINE_WAIT_S` seconds from
    its first start, then it fails with the message."""


#: How long a job waits in ``starting`` for an engine that does not answer.
ENGINE_WAIT_S = 600


@dataclass(frozen=True)
class JobExit:
    """How a job ended, as the executor saw it."""

    exit_code: int | None  # None: unknown (the process or container vanished)
    #: "succeeded" | "failed" | "terminated" (stopped by a signal) | "lost" (vanished) |
    #: "node_failed" (the engine ended it because its node failed; ``error`` says which
    #: node and why, for people)
    outcome: str
    error: str | None = None  # a sentence for people, or None
    ended_at: float | None = None  # POSIX seconds, when known
    #: the engine says the job ran out of memory (Docker's OOMKilled, Slurm's
    #: OUT_OF_MEMORY); ``outcome`` is then "failed". Local processes cannot tell.
    out_of_memory: bool = False


class JobExecutor(LoggingConfigurable):
    """Base of job executors: start, watch, stop and read jobs somewhere.

    Subclasses set :attr:`name` and implement every hook but :meth:`resolve_image` (images
    do not apply) and :meth:`cleanup` (nothing to free). Hooks may block: they run in
    worker threads, one step of a job at a time (``read_log`` for a reader of the log may
    come at any time, from another thread). They must be idempotent where said so: the
    service may call them again after a restart. They know the job only by its
    :class:`JobSpec` and the state ``start`` returned: an executor never reads the
    service's database. An exception from ``before_start`` or ``start`` fails the job
    with its message; one from ``poll`` or ``stop`` is logged and that step is tried again
    at the next tick.
    """

    #: Short name shown in job views ("local", "docker", "slurm").
    name: ClassVar[str] = ""
    #: Whether the engine picks the devices on the node itself (then :meth:`placed`
    #: names them); False: the job gets the lease's devices.
    picks_devices: ClassVar[bool] = False
    #: Whether it runs jobs that span nodes (``JobSpec.nodes`` > 1: a launcher on each
    #: node, ``torchrun`` with a rendezvous). False: such jobs are refused at submit.
    multi_node: ClassVar[bool] = False

    def resolve_image(self, image: str | None) -> str | None:
        """The image's immutable id at submit (``"sha256:..."``), or None where images do
        not apply. Raise ``ValueError`` with a sentence if the image does not exist."""
        return None

    def before_start(self, job: JobSpec) -> None:
        """Create the job's folder (``artifacts/`` inside it) and write the snapshot
        (:attr:`JobSpec.input_name`) and ``job.json`` for the runner. Idempotent."""
        raise NotImplementedError

    def start(self, job: JobSpec) -> dict[str, Any]:
        """Launch the runner for ``job``; return the state that finds it again (a small
        JSON-able dict, saved with the job). Idempotent: if this job was launched already
        (a service stopped before it saved the state), find it and return its state."""
        raise NotImplementedError

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        """None while the job runs (or waits in an engine's own queue); how it ended once it
        has (from ``exit_status.json`` where the runner wrote one; ``lost`` where the job
        vanished without one). Idempotent: asked again after the end, it answers the same."""
        raise NotImplementedError

    def placed(
        self, job: JobSpec, state: dict[str, Any]
    ) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
        """The device indices on :attr:`JobSpec.node` that the engine gave the job, once
        it knows them (a multi-node job's: node -> indices, for each of its nodes); None
        where the job uses the lease's own devices (the default) or the engine has not
        placed it yet. An engine that picks devices itself (Slurm picks indices for
        ``--gres``) answers here, and the lifecycle moves the lease onto them, so the pool
        and the job's views name the devices the job really has."""
        return None

    def notify(self, job: JobSpec, state: dict[str, Any], notice: dict[str, Any]) -> None:
        """The job's lease is to be taken back: tell the running job, so it can save a
        checkpoint before ``stop`` comes at ``notice["deadline"]``. Write ``notice`` as
        JSON (:func:`notice_text`) to :attr:`JobSpec.preempt_path`, which the job sees
        as ``$GPUHUB_PREEMPT_FILE``, then send SIGUSR1 to the runner, which passes it on
        to the job's processes that handle it. Called once per notice (the lifecycle
        remembers it in the job's state); idempotent all the same.

        The notice: ``{"reason": "preempted", "notice_at": ISO, "deadline": ISO,
        "grace_s": float, "attempt": int}``. This default does nothing: a job of an
        executor without it is stopped at the deadline (SIGTERM, grace, kill) unwarned."""

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        """SIGTERM, up to ``grace`` seconds, then kill. Returns once the job has stopped;
        a job that has already ended is fine. Idempotent."""
        raise NotImplementedError

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of ``job.log`` from ``offset`` (b"" past its end or before
        the log exists). Also after the end, until ``cleanup``: the service keeps the
        log's tail then."""
        raise NotImplementedError

    def cleanup(self, job: JobSpec, state: dict[str, Any]) -> None:
        """After the end: free what the job held (a container, ...). The job's folder in
        the home stays. Idempotent."""


def notice_text(notice: dict[str, Any]) -> str:
    """The preemption notice as the job reads it from ``$GPUHUB_PREEMPT_FILE``."""
    return json.dumps(notice, sort_keys=True) + "\n"
