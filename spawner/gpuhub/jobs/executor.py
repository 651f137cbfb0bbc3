"""The executor base class: how a job is started, watched, stopped and read.

The service's job manager calls the hooks of one executor (chosen by a ``Type`` trait) in
a fixed order, each in a worker thread (they may block)::

    before_start(job) -> start(job) -> poll(job, state)... -> [stop(job, state, grace)]
        -> read_log(...) -> cleanup(job, state)

``start`` returns the executor's *state*: a small JSON-able dict saved with the job, from
which ``poll``, ``stop``, ``read_log`` and ``cleanup`` find the job again, also in a
restarted service (re-adoption: a job is never started twice). A job's own folder under
the user's home holds what it leaves behind (see :class:`JobSpec`); the runner
(``python -m gpuhub.jobs.runner FOLDER``) writes ``exit_status.json`` there when it ends.

A cluster executor (Slurm: ``sbatch``, ``squeue``, ``scancel``) implements the same hooks.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class JobSpec:
    """Everything an executor needs to know about one job (built by the job manager)."""

    id: int
    user: str
    name: str
    kind: str  # "notebook" | "script"
    path: str  # the notebook or script, relative to the user's home (POSIX, no "..")
    #: the job's folder relative to the home, e.g. "gpuhub-jobs/12-train"
    folder: str
    #: the snapshot taken at submit: the notebook's JSON text or the script's source
    source: str
    parameters: dict[str, Any] = field(default_factory=dict)
    #: the lease as the scheduler shows it (node, devices with uuid/kind/simulated, ...)
    lease: dict[str, Any] = field(default_factory=dict)
    #: environment of the job: CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES, GPUHUB_LEASE_ID,
    #: GPUHUB_JOB_ID, GPUHUB_OUTPUT_DIR (absolute, as the job sees it), ...
    env: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # image name (Docker); None: the executor's environment
    image_digest: str | None = None  # the image id resolved at submit ("sha256:...")
    cpu_limit: float | None = None
    mem_limit: int | None = None  # bytes
    shm_size: int | None = None  # bytes
    gpus: int = 0  # whole devices granted (torchrun --nproc-per-node for scripts)

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


@dataclass(frozen=True)
class JobExit:
    """How a job ended, as the executor saw it."""

    exit_code: int | None  # None: unknown (the process or container vanished)
    #: "succeeded" | "failed" | "terminated" (stopped by a signal) | "lost" (vanished)
    outcome: str
    error: str | None = None  # a sentence for people, or None
    ended_at: float | None = None  # POSIX seconds, when known


class JobExecutor(LoggingConfigurable):
    """Base of job executors: start, watch, stop and read jobs somewhere.

    Subclasses set :attr:`name` and implement every hook. Hooks may block (they run in a
    worker thread) and must be idempotent where said so: the service may call them again
    after a restart.
    """

    #: Short name shown in job views ("local", "docker", "slurm").
    name: ClassVar[str] = ""

    def resolve_image(self, image: str | None) -> str | None:
        """The image's immutable id at submit (``"sha256:..."``), or None where images do
        not apply. Raise ``ValueError`` with a sentence if the image does not exist."""
        return None

    def before_start(self, job: JobSpec) -> None:
        """Create the job's folder (``artifacts/`` inside it) and write the snapshot
        (:attr:`JobSpec.input_name`) and ``job.json`` for the runner. Idempotent."""
        raise NotImplementedError

    def start(self, job: JobSpec) -> dict[str, Any]:
        """Launch the runner for ``job``; return the state that finds it again."""
        raise NotImplementedError

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        """None while the job runs; how it ended once it has (reads ``exit_status.json``
        where the runner wrote one). Idempotent."""
        raise NotImplementedError

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        """SIGTERM, up to ``grace`` seconds, then kill. Returns once the job has stopped;
        a job that has already ended is fine. Idempotent."""
        raise NotImplementedError

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of ``job.log`` from ``offset`` (b"" past its end)."""
        raise NotImplementedError

    def cleanup(self, job: JobSpec, state: dict[str, Any]) -> None:
        """After the end: free what the job held (a container, ...). The job's folder in
        the home stays. Idempotent."""
