"""The Slurm executor: each job is a Slurm batch job, pinned to the node and GPUs gpuhub chose.

gpuhub admits the job (quota, queue, reservations) and picks the node; :class:`SlurmExecutor`
hands it to Slurm with ``sbatch``, and Slurm starts, isolates and accounts it there. What
goes to ``sbatch`` (see :meth:`SlurmExecutor.sbatch_command`):

* ``--nodelist=NODE`` and ``--gres=gpu[:TYPE]:N``: the lease's node and its number of whole
  GPUs, the GRES type being the model's (the inverse of ``SlurmInventory.models``). Slurm
  chooses the device indices and sets ``CUDA_VISIBLE_DEVICES`` itself, so gpuhub's own
  device variables are left out of the job's environment;
* ``--time``: the job's maximum runtime plus :attr:`~SlurmExecutor.time_margin_s`, in whole
  minutes, so gpuhub's own stop (recorded ``timed_out``) comes first;
* ``--signal=B:USR1@90``: should Slurm's limit come first after all (the service was down),
  the batch script gets SIGUSR1 90 s before it and stops the runner with SIGTERM — the same
  signal gpuhub's own stop sends, so a job checkpoints on SIGTERM whoever stops it. The
  same SIGUSR1 is gpuhub's preemption notice (``notify``: ``scancel --batch
  --signal=USR1`` once ``preempt.json`` is written): with that file there, the batch
  script passes SIGUSR1 on to the runner instead;
* ``--job-name=gpuhub-<id>`` (``gpuhub-<id>.<attempt>`` from a job's second attempt on:
  how a repeated ``start`` finds the job again) and
  ``--comment=gpuhub:lease=<lease>`` (how ``SlurmInventory`` tells gpuhub's jobs from others);
* ``--output=slurm.out``, ``--chdir`` the job's folder, and ``--export=ALL`` from a clean
  environment (``env -i`` with ``PATH`` and ``SLURM_CONF``): the batch script (``slurm.sh``
  in the folder) sets the job's environment itself, never the service's, and no node starts
  a login shell for it (``--export=NONE`` would, for about a second per job);
* ``--no-requeue``: Slurm never runs a job again behind gpuhub's back (its node failed, it
  was preempted). A job whose node failed ends its attempt ``node_failed``, with the node
  and Slurm's reason for it; whether it runs again is gpuhub's decision (the job's retry
  policy); one Slurm ended ``OUT_OF_MEMORY`` says so (``JobExit.out_of_memory``).

The job's folder is on a file system the service and the nodes share (the users' homes):
the service writes it, the runner on the node fills it, the service reads ``job.log`` and
``exit_status.json`` back. The state is ``{"slurm_job": "<id>"}``.

Whose account a job runs as: the service's, or with ``submit_as_user`` its owner's Unix
account (``unix_user`` maps hub users to accounts): a service running as root submits with
``sbatch --uid=<account> --gid=<its primary group>`` (``--uid`` alone would keep root's
group), after giving the account the job's folder and what the service wrote in it; an
account this host does not know fails the job at ``before_start``, before anything is made.

Every Slurm command goes through a *runner* (``gpuhub.inventory.slurm.run_command`` by
default), which raises :class:`~gpuhub.inventory.slurm.SlurmError` when the command fails
or does not answer: ``poll`` then raises too, and the tick asks again — a controller that
does not answer is never taken for a job that has ended.
"""

from __future__ import annotations

import math
import os
import pwd
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from traitlets import Dict, Int, List, Unicode, default

from ..inventory.slurm import SlurmError, SlurmInventory, parse_jobs, parse_records
from ..inventory.slurm_submit import (
    ENDED_STATES,
    ENDED_WHY,
    NODE_FAIL,
    SLURM_SETS,
    SlurmSubmission,
    already_ended,
    clean_submit,
    controller_unreachable,
    file_tail,
    give_to,
    gpu_gres,
    host_account,
    is_unknown_job,
    node_failure,
    owner_options,
    submitted_job,
    unavailable_nodes,
)
from ..names import home_from_template
from .executor import (
    ARTIFACTS,
    EXIT_FILE,
    JOB_FILE,
    PREEMPT_FILE,
    EngineUnavailable,
    JobExecutor,
    JobExit,
    JobSpec,
    notice_text,
)
from .local import prepare_folder, read_exit_status, read_log_file
from .runner import job_environment, write_exit_status

#: The batch script, Slurm's own output, and the submitted job's id, in the job's folder.
SCRIPT_FILE = "slurm.sh"
OUTPUT_FILE = "slurm.out"
ID_FILE = ".slurm-job"
#: Written by stop(): gpuhub itself ended the Slurm job (a cancel from elsewhere has none).
STOPPED_FILE = ".slurm-stopped"
#: Why Slurm ended a job, for people (the job's reason when it left no exit status).
JOB_ENDED_WHY = {**ENDED_WHY, "FAILED": "failed before its runner could start"}
#: How often stop() looks whether the Slurm job has ended.
STOP_STEP_S = 0.5
#: The state of a Slurm job that ran out of memory.
OUT_OF_MEMORY = "OUT_OF_MEMORY"


class SlurmExecutor(SlurmSubmission, JobExecutor):
    """Runs each job as a Slurm batch job on the node and with the GPUs gpuhub granted
    (``c.GpuhubService.job_executor_class = "gpuhub.jobs.slurm.SlurmExecutor"``)."""

    name = "slurm"
    picks_devices = True  # Slurm picks the indices for --gres=gpu:N on the node
    multi_node = True  # --nodes=N, then srun + torchrun on each (gpuhub.jobs.launch)

    home_dir_template = Unicode(
        "~{username}",
        config=True,
        help="""A user's home on the file system the service and the nodes share, as both
        see it; the job's folder (``gpuhub-jobs/<id>-<name>``) goes there. ``{username}``
        is the Unix account (:attr:`unix_user`), e.g. ``"/shared/home/{username}"``.""",
    )
    python = Unicode(
        config=True,
        help="""The nodes' Python with gpuhub installed (``python -m gpuhub.jobs.runner``
        runs in it), e.g. ``/opt/gpuhub/bin/python``. Default: the service's own
        (``sys.executable``), right where the nodes mount the same environment. Inside
        :attr:`container_command`, the image's Python, e.g. ``python3``.""",
    )
    container_command = List(
        Unicode(),
        config=True,
        help="""A command that wraps the runner in a container on the node, with ``{image}``
        (the job's image) and ``{folder}`` (its folder) replaced; empty: the node's own
        environment. Apptainer: ``["apptainer", "exec", "--nv", "--bind", "{folder}",
        "{image}"]``; enroot/pyxis: ``["srun", "--container-image={image}",
        "--container-mounts={folder}"]``; podman (``--env-host``: the job's environment):
        ``["podman", "run", "--rm", "--network=host", "--env-host", "--device",
        "nvidia.com/gpu=all", "-v", "{folder}:{folder}", "-w", "{folder}", "{image}"]``.""",
    )
    time_margin_s = Int(
        300,
        min=0,
        config=True,
        help="""Seconds added to a job's maximum runtime for Slurm's ``--time``, so gpuhub's
        stop (``timed_out``, with the grace of a SIGTERM) comes first. Keep it above
        :attr:`signal_lead_s`: the warning would otherwise stop the job before gpuhub does.""",
    )
    stranded_after_s = Int(
        300,
        min=0,
        config=True,
        help="""Seconds a job may stay pending in Slurm on a node that takes no new work
        (down, drained, not responding: Slurm's reason says since when) before gpuhub
        cancels it and ends it ``node_failed``, giving its GPUs back. A node that comes
        back sooner starts the job as usual; 0: at once.""",
    )
    signal_lead_s = Int(
        90,
        min=0,
        config=True,
        help="""Seconds before Slurm's time limit at which the batch script gets SIGUSR1
        (``--signal=B:USR1@90``) and stops the job with SIGTERM, for it to checkpoint;
        0: no warning.""",
    )
    job_name_prefix = Unicode(
        "gpuhub-",
        config=True,
        help="""The start of the Slurm job names (``gpuhub-<id>``): a repeated ``start``
        finds its job by this name. Give each gpuhub sharing one cluster its own.""",
    )
    models = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""GRES type -> GPU model, as ``SlurmInventory.models`` (its setting is the
        default): the job's model is turned back into its GRES type.""",
    )

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    @default("models")
    def _default_models(self) -> dict[str, str]:
        return dict(SlurmInventory(config=self.config).models)

    # -- where things are -----------------------------------------------------------------

    def account_of(self, job: JobSpec) -> str:
        """The Unix account the job belongs to on the cluster."""
        return str(self.unix_user(job.user))

    def home(self, job: JobSpec) -> Path:
        """The job owner's home (absolute), as the service and the nodes see it."""
        return home_from_template(
            self.home_dir_template, job.user, self.account_of(job), type(self).__name__
        )

    def folder(self, job: JobSpec) -> Path:
        """The job's folder (absolute)."""
        return self.home(job) / job.folder

    def owner(self, job: JobSpec) -> pwd.struct_passwd:
        """The job owner's Unix account on this host (:attr:`unix_user`), which jobs run
        as with :attr:`submit_as_user`; a ``ValueError`` naming it when there is none."""
        return host_account(self.account_of(job), job.user)

    def job_name(self, job: JobSpec) -> str:
        """The Slurm job's name: how a repeated start finds it (``gpuhub-12``; a later
        attempt's ``gpuhub-12.2``)."""
        attempt = f".{job.attempt}" if job.attempt > 1 else ""
        return f"{self.job_name_prefix}{job.id}{attempt}"

    # -- what is submitted --------------------------------------------------------------------

    def gres(self, job: JobSpec) -> str | None:
        """``gpu[:TYPE]:N`` for the job's whole GPUs (None for a job without GPUs). MIG and
        shared shapes are refused: Slurm's GRES here are whole GPUs."""
        kind = job.shape.get("kind", "gpu")
        if kind != "gpu":
            raise ValueError(
                f"job {job.id} asks for a {kind} GPU; on Slurm gpuhub runs jobs on whole GPUs "
                "only: choose a profile with whole GPUs"
            )
        model = job.devices[0].model if job.devices else job.shape.get("model")
        return gpu_gres(job.gpus or len(job.devices), model, self.models)

    def time_minutes(self, job: JobSpec) -> int | None:
        """Slurm's ``--time`` in minutes: the maximum runtime plus the margin, rounded up."""
        if job.max_runtime_s is None:
            return None
        return max(1, math.ceil((job.max_runtime_s + self.time_margin_s) / 60))

    def sbatch_command(self, job: JobSpec) -> list[str]:
        """The ``sbatch`` command line for ``job`` (its batch script last)."""
        folder = self.folder(job)
        argv = ["sbatch", "--parsable", "--export=ALL", *self.sbatch_args, "--no-requeue"]
        if self.partition:
            argv.append(f"--partition={self.partition}")
        if self.account:
            argv.append(f"--account={self.account}")
        if self.submit_as_user:  # its primary group too: --uid alone keeps root's group
            owner = self.owner(job)
            argv += owner_options(owner)
        if job.node:
            argv.append(f"--nodelist={job.node}")
        if job.nodes > 1:  # the batch step on the first; srun starts one agent per node
            argv += [f"--nodes={job.nodes}", "--ntasks-per-node=1"]
        gres = self.gres(job)
        if gres:
            argv.append(f"--gres={gres}")
        minutes = self.time_minutes(job)
        if minutes is not None:
            argv.append(f"--time={minutes}")
        if self.signal_lead_s:
            argv.append(f"--signal=B:USR1@{self.signal_lead_s}")
        argv += [
            f"--job-name={self.job_name(job)}",
            f"--comment={self.comment_prefix}lease={job.lease_id or 0}",
            f"--output={folder / OUTPUT_FILE}",
            f"--chdir={folder}",
            str(folder / SCRIPT_FILE),
        ]
        return argv

    def environment(self, job: JobSpec) -> dict[str, str]:
        """The job's environment in the batch script: its own variables (without the device
        variables, which Slurm sets), ``HOME``, ``GPUHUB_OUTPUT_DIR``, a plain ``PATH``."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update(job_environment(job.env))
        for name in SLURM_SETS:
            env.pop(name, None)
        env.update(
            HOME=str(self.home(job)),
            GPUHUB_JOB_ID=str(job.id),
            GPUHUB_OUTPUT_DIR=str(self.folder(job) / ARTIFACTS),
            GPUHUB_PREEMPT_FILE=str(self.folder(job) / PREEMPT_FILE),
        )
        return env

    def command(self, job: JobSpec) -> list[str]:
        """The runner's command line, wrapped in :attr:`container_command` if there is one."""
        folder = str(self.folder(job))
        runner = [self.python, "-m", "gpuhub.jobs.runner", folder]
        if not self.container_command:
            return runner
        if job.nodes > 1:  # the runner's srun would run inside the container
            raise ValueError(
                f"job {job.id} spans {job.nodes} nodes, and this site runs jobs in a container "
                "(c.SlurmExecutor.container_command): multi-node jobs run in the nodes' own "
                "Python (c.SlurmExecutor.python) only"
            )
        if any("{image}" in part for part in self.container_command) and not job.image:
            raise ValueError(
                f"job {job.id} names no image, and this site runs jobs in containers; "
                "choose a profile with an image"
            )
        wrap = [p.format(image=job.image or "", folder=folder) for p in self.container_command]
        return [*wrap, *runner]

    def batch_script(self, job: JobSpec) -> str:
        """The batch script: the environment, then the runner as a child, so that SIGUSR1
        (Slurm's time limit is near) and SIGTERM (``scancel --batch``) reach it as SIGTERM;
        SIGUSR1 with ``$GPUHUB_PREEMPT_FILE`` written (gpuhub's preemption notice) as
        SIGUSR1."""
        notice = '[ -e "$GPUHUB_PREEMPT_FILE" ] && sig=USR1 || sig=TERM'
        lines = [
            "#!/bin/bash",
            f"# gpuhub job {job.id} of {job.user} (lease {job.lease_id}), written by gpuhub",
            *(f"export {k}={shlex.quote(v)}" for k, v in sorted(self.environment(job).items())),
            shlex.join(self.command(job)) + " &",
            "runner=$!",
            f"trap '{notice}; kill -$sig $runner 2>/dev/null' USR1",
            "trap 'kill -TERM $runner 2>/dev/null' TERM",
            "while :; do",
            '  wait "$runner"; status=$?',
            '  kill -0 "$runner" 2>/dev/null || break  # a trapped signal ends wait early',
            "done",
            'exit "$status"',
        ]
        return "\n".join(lines) + "\n"

    # -- hooks -----------------------------------------------------------------------------

    def before_start(self, job: JobSpec) -> None:
        """Create the job's folder on the shared file system; write the snapshot and
        ``job.json``. Submitting as the owner's account (:attr:`submit_as_user`): refuse
        an account this host does not know before anything is made, and give the account
        the folder and what gpuhub wrote there (and the folders gpuhub made above it), so
        the runner, running as it, writes its log, artifacts and exit status there."""
        owner = self.owner(job) if self.submit_as_user else None
        folder, home = self.folder(job), self.home(job)
        above = [home / p for p in reversed(folder.relative_to(home).parents)]  # home first
        made = [d for d in above if not d.exists()]
        prepare_folder(job, folder, home)
        if owner:
            written = [folder / ARTIFACTS, folder / job.input_name, folder / JOB_FILE]
            give_to(owner, [*made, folder, *written])

    def start(self, job: JobSpec) -> dict[str, Any]:
        """Submit the batch script, unless a Slurm job for this job exists already (its id
        in the folder, or a job of its name that Slurm knows): then that one's state."""
        folder = self.folder(job)
        try:
            return self._submit(job, folder)
        except SlurmError as e:
            if controller_unreachable(e):
                raise EngineUnavailable(f"Slurm's controller does not answer: {e}") from e
            raise

    def _submit(self, job: JobSpec, folder: Path) -> dict[str, Any]:
        found = self._submitted(job)
        if found:
            self.log.info("job %s of %s: Slurm job %s submitted before", job.id, job.user, found)
            return {"slurm_job": found}
        for left in (EXIT_FILE, STOPPED_FILE):  # by an earlier attempt
            (folder / left).unlink(missing_ok=True)
        _write(folder / SCRIPT_FILE, self.batch_script(job), mode=0o700)
        slurm_job = submitted_job(
            self.runner(clean_submit(self.sbatch_command(job), self.slurm_conf))
        )
        _write(folder / ID_FILE, f"{slurm_job} {job.attempt}\n")
        if self.submit_as_user:
            give_to(self.owner(job), [folder / SCRIPT_FILE, folder / ID_FILE])
        self.log.info(
            "job %s of %s: Slurm job %s on %s (%s, lease %s)",
            job.id, job.user, slurm_job, job.node, self.gres(job), job.lease_id,
        )  # fmt: skip
        return {"slurm_job": slurm_job}

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        """None while Slurm has the job waiting or running; then the runner's exit status,
        or why Slurm ended it when the runner left none; ``node_failed`` with the node and
        Slurm's reason when its node failed. Raises when Slurm cannot answer."""
        slurm_state = self.slurm_state(state["slurm_job"])
        if slurm_state == "PENDING":
            return self._stranded(job, state["slurm_job"])
        if slurm_state is not None and slurm_state not in ENDED_STATES:
            return None
        ended = read_exit_status(self.folder(job))
        if self._stopped_by_gpuhub(job):
            return ended
        if slurm_state == NODE_FAIL:  # never requeued (--no-requeue): gpuhub decides
            why = node_failure(self.runner, job.node)
            why += f" (Slurm job {state['slurm_job']} ended with it)"
            return JobExit(ended.exit_code, "node_failed", why, ended.ended_at or time.time())
        oom = slurm_state == OUT_OF_MEMORY
        if ended.outcome != "lost":
            # Slurm's reason first (not FAILED's, which the runner's own error explains)
            if slurm_state in ENDED_WHY and ended.outcome != "succeeded":
                why = f"Slurm job {state['slurm_job']} {ENDED_WHY[slurm_state]}"
                return JobExit(
                    ended.exit_code, "failed" if oom else ended.outcome,
                    f"{why}: {ended.error}", ended.ended_at, out_of_memory=oom,
                )  # fmt: skip
            return ended
        why = JOB_ENDED_WHY.get(slurm_state or "", "ended")
        error = f"Slurm job {state['slurm_job']} {why} without the job's exit status"
        tail = self._output_tail(job)
        error += f"; Slurm's output ends: {tail}" if tail else ""
        return JobExit(None, "failed" if oom else "lost", error, time.time(), out_of_memory=oom)

    def placed(
        self, job: JobSpec, state: dict[str, Any]
    ) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
        """The GPU indices Slurm gave the job on its node (``scontrol show job -d``), once
        it runs there (a multi-node job's: node -> indices); None before (or once Slurm
        has forgotten the job)."""
        slurm_job = state["slurm_job"]
        try:
            text = self.runner(["scontrol", "show", "job", "-d", "-o", slurm_job])
        except SlurmError as e:
            if not is_unknown_job(e):
                raise
            return None
        for found in parse_jobs(text):
            if found.job_id == slurm_job and found.holds:
                if job.nodes == 1:
                    return found.indices_on(job.node or "") or None
                on = {node: found.indices_on(node) for node in (job.node or "").split(",")}
                return on if all(on.values()) else None
        return None

    def notify(self, job: JobSpec, state: dict[str, Any], notice: dict[str, Any]) -> None:
        """Write the notice to the job's ``preempt.json`` on the shared file system, then
        SIGUSR1 to the batch script (``scancel --batch``), which passes it on to the runner
        now that the file is there. A job not running yet gets the file only."""
        path = self.folder(job) / PREEMPT_FILE
        _write(path, notice_text(notice), mode=0o644)
        if self.submit_as_user:
            give_to(self.owner(job), [path])
        if self.slurm_state(state["slurm_job"]) == "RUNNING":
            self._scancel("--batch", "--signal=USR1", state["slurm_job"])

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        """SIGTERM to the batch script (it stops the runner, which stops the job), up to
        ``grace`` seconds, then ``scancel``. Fine on a job that has ended."""
        slurm_job = state["slurm_job"]
        folder = self.folder(job)
        _write(folder / STOPPED_FILE, slurm_job + "\n")
        slurm_state = self.slurm_state(slurm_job)
        if slurm_state is None or slurm_state in ENDED_STATES:
            return
        self.log.info(
            "job %s of %s: stopping Slurm job %s (%s, grace %s s)",
            job.id, job.user, slurm_job, slurm_state, grace,
        )  # fmt: skip
        if slurm_state == "RUNNING":  # a pending job has no batch script to signal yet
            try:
                self._scancel("--batch", "--signal=TERM", slurm_job)
            except SlurmError as e:  # its batch step is not up yet: cancel it outright
                self.log.warning("job %s of %s: %s", job.id, job.user, e)
            else:
                if self._wait_ended(slurm_job, grace):
                    return
                self.log.warning(
                    "job %s of %s: scancel %s after %s s", job.id, job.user, slurm_job, grace
                )
        self._scancel(slurm_job)
        self._wait_ended(slurm_job, 60.0)
        if not (folder / EXIT_FILE).exists():
            write_exit_status(
                folder, None, "terminated",
                f"the job did not stop within {grace:g} s of SIGTERM and was cancelled (scancel)",
            )  # fmt: skip

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        """Bytes of the job's ``job.log`` on the shared file system."""
        return read_log_file(self.folder(job), offset, limit)

    # -- Slurm ---------------------------------------------------------------------------------

    def slurm_state(self, slurm_job: str) -> str | None:
        """The Slurm job's state (``RUNNING``, ``COMPLETED``, ...); None once Slurm has
        forgotten it. Raises :class:`SlurmError` when Slurm does not answer."""
        try:
            out = self.runner(["squeue", "-h", "-j", slurm_job, "-o", "%T"]).split()
        except SlurmError as e:
            if not is_unknown_job(e):
                raise
            return None  # purged: MinJobAge after its end
        if out:
            return out[0]
        # squeue lists no ended job; scontrol still knows it for MinJobAge
        try:
            text = self.runner(["scontrol", "show", "job", slurm_job, "-o"])
        except SlurmError as e:
            if not is_unknown_job(e):
                raise
            return None
        for pairs in parse_records(text, "job"):
            state = dict(pairs).get("JobState")
            if state:
                return state
        return None

    def _stranded(self, job: JobSpec, slurm_job: str) -> JobExit | None:
        """A job pending on a node that has taken no new work for :attr:`stranded_after_s`
        (gpuhub chose the node; Slurm will not run it elsewhere): cancelled, and its end
        ``node_failed`` with the node's state. None while it may still start."""
        if not job.node:
            return None
        now = time.time()
        down = unavailable_nodes(self.runner, job.node)
        since = [t for _, _, t in down]
        if not down or any(t is None or now - t < self.stranded_after_s for t in since):
            return None  # a node without a stamped reason: Slurm's own word is awaited
        self._scancel(slurm_job)
        words = "; ".join(f"node {name} takes no new work ({what})" for name, what, _ in down)
        why = f"{words}: Slurm job {slurm_job} never started there, and was cancelled"
        return JobExit(None, "node_failed", why, now)

    def _ended(self, slurm_job: str) -> bool:
        state = self.slurm_state(slurm_job)
        return state is None or state in ENDED_STATES

    def _wait_ended(self, slurm_job: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._ended(slurm_job):
            if time.monotonic() >= deadline:
                return False
            time.sleep(STOP_STEP_S)
        return True

    def _scancel(self, *args: str) -> None:
        try:
            self.runner(["scancel", *args])
        except SlurmError as e:
            if not already_ended(e):
                raise

    def _submitted(self, job: JobSpec) -> str | None:
        """The Slurm job submitted for ``job`` before, if there is one."""
        try:  # "<Slurm job> <attempt>" ("<Slurm job>": the first attempt's)
            known, _, attempt = (self.folder(job) / ID_FILE).read_text().strip().partition(" ")
        except OSError:
            known, attempt = "", ""
        if known.isdigit() and (attempt or "1") == str(job.attempt):
            return known
        out = self.runner(["squeue", "-h", "-t", "all", f"--name={self.job_name(job)}", "-o", "%i"])
        ids = sorted(out.split(), key=int)
        return ids[0] if ids else None

    def _stopped_by_gpuhub(self, job: JobSpec) -> bool:
        return (self.folder(job) / STOPPED_FILE).exists()

    def _output_tail(self, job: JobSpec, limit: int = 300) -> str:
        """The last line(s) of Slurm's output file: why a batch script failed to start."""
        return file_tail(self.folder(job) / OUTPUT_FILE, limit)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, with ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)
