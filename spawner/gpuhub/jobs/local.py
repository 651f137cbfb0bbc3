"""The local executor: each job is a process of the service's own Python environment.

The embedded default (no isolation, like the local spawner): the runner
(``python -m gpuhub.jobs.runner FOLDER``) starts in a session of its own, so it outlives
the service, with a clean environment (``PATH``, ``HOME``, ``LANG`` and the job's own
variables: never JupyterHub's or a token). Its state, ``{"pid", "start_ticks",
"folder"}``, finds it again after a restart; the start time from ``/proc/PID/stat`` tells
a reused pid from the runner, and the attempt noted next to it (``.runner.json``) the
runner of an earlier attempt from this one's. A preemption notice is written to the job's
folder and SIGUSR1 sent to the runner, which passes it on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from traitlets import Unicode

from ..names import home_from_template
from .executor import (
    ARTIFACTS,
    EXIT_FILE,
    JOB_FILE,
    LOG_FILE,
    JobExecutor,
    JobExit,
    JobSpec,
    notice_text,
)
from .runner import exit_from_status, job_document, job_environment, write_exit_status

#: The runner's pid and start ticks in the job's folder: a second start finds it running.
PID_FILE = ".runner.json"
#: How often stop() looks whether the job has ended.
STOP_STEP_S = 0.05


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, session id, start ticks)`` of process ``pid`` from ``/proc``; None if
    there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[3]), int(fields[19])


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot); None if there is none."""
    stat = proc_stat(pid)
    return stat[2] if stat else None


def session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` (the runner and whatever it started there)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == sid and stat[0] != "Z":
                pids.append(int(entry))
    return pids


class LocalProcessExecutor(JobExecutor):
    """Runs each job as a local process of the service's Python environment (the embedded
    default: no isolation between users, like the local spawner)."""

    name = "local"

    home_dir_template = Unicode(
        "~{username}",
        config=True,
        help="""The home directory of a user, where the job's folder goes
        (``gpuhub-jobs/<id>-<name>``) and where the notebook's own folder is. ``{username}``
        is replaced by the user's name; ``~`` is expanded. Set it like the local spawner's,
        e.g. ``c.LocalProcessExecutor.home_dir_template = "/srv/homes/{username}"``.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._children: dict[int, subprocess.Popen] = {}  # our own runners, to reap them

    # -- where things are -----------------------------------------------------------------

    def home(self, user: str) -> Path:
        """The user's home directory (absolute)."""
        return home_from_template(self.home_dir_template, user, user, type(self).__name__)

    def folder(self, job: JobSpec) -> Path:
        """The job's folder (absolute)."""
        return self.home(job.user) / job.folder

    def environment(self, job: JobSpec) -> dict[str, str]:
        """The runner's environment: a clean one, plus the job's own variables."""
        bin_dir = os.path.dirname(sys.executable)
        path = os.environ.get("PATH", os.defpath).split(os.pathsep)
        env = {
            "PATH": os.pathsep.join([bin_dir, *(p for p in path if p != bin_dir)]),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **job_environment(job.env),
        }
        home = self.home(job.user)
        env.update(  # where this executor puts things, whatever the job's env says
            HOME=str(home),
            GPUHUB_JOB_ID=str(job.id),
            GPUHUB_OUTPUT_DIR=str(self.folder(job) / ARTIFACTS),
            GPUHUB_PREEMPT_FILE=str(home / job.preempt_path),
        )
        return env

    # -- hooks -------------------------------------------------------------------------------

    def before_start(self, job: JobSpec) -> None:
        """Create the job's folder and ``artifacts/``; write the snapshot and ``job.json``."""
        prepare_folder(job, self.folder(job), self.home(job.user))

    def start(self, job: JobSpec) -> dict[str, Any]:
        """Start the runner in a session of its own. A job is started once: a start repeated
        after a restart finds the runner already started (running or ended) again."""
        folder = self.folder(job)
        started = self._started_runner(folder, job.attempt)
        if started:
            return started
        (folder / EXIT_FILE).unlink(missing_ok=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "gpuhub.jobs.runner", str(folder)],
            cwd=folder,
            env=self.environment(job),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the runner writes job.log itself
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the service; its own process group
            close_fds=True,
        )
        self._children[child.pid] = child
        ticks = start_ticks(child.pid)
        state = {"pid": child.pid, "start_ticks": ticks, "folder": str(folder)}
        known = {"pid": child.pid, "start_ticks": ticks, "attempt": job.attempt}
        _write(folder / PID_FILE, json.dumps(known))
        self.log.info("job %s of %s: runner pid %s in %s", job.id, job.user, child.pid, folder)
        return state

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        """None while the runner lives; then its ``exit_status.json`` (``lost`` without)."""
        if self._alive(state):
            return None
        return read_exit_status(Path(state["folder"]))

    def notify(self, job: JobSpec, state: dict[str, Any], notice: dict[str, Any]) -> None:
        """Write the notice to the job's ``preempt.json``, then SIGUSR1 to the runner."""
        _write(self.home(job.user) / job.preempt_path, notice_text(notice))
        if self._alive(state):
            _kill(int(state["pid"]), signal.SIGUSR1)

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        """SIGTERM to the runner (it stops the job), then after ``grace`` seconds SIGKILL to
        every process of its session."""
        pid = int(state["pid"])
        if not self._alive(state):
            return
        self.log.info("job %s of %s: stopping pid %s (grace %s s)", job.id, job.user, pid, grace)
        _signal_group(pid, signal.SIGTERM)
        if self._wait_ended(state, grace):
            return
        self.log.warning("job %s of %s: killing pid %s after %s s", job.id, job.user, pid, grace)
        for member in session_members(pid):
            _kill(member, signal.SIGKILL)
        self._wait_ended(state, 10.0)
        folder = Path(state["folder"])
        if not (folder / EXIT_FILE).exists():
            write_exit_status(
                folder,
                128 + signal.SIGKILL,
                "terminated",
                f"the job did not stop within {grace:g} s of SIGTERM and was killed",
            )

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        """Bytes of the job's ``job.log`` (b"" before it exists or past its end)."""
        folder = Path(state["folder"]) if state.get("folder") else self.folder(job)
        return read_log_file(folder, offset, limit)

    def cleanup(self, job: JobSpec, state: dict[str, Any]) -> None:
        """Nothing is held once the runner has ended; forget it."""
        child = self._children.pop(int(state.get("pid") or 0), None)
        if child is not None:
            child.poll()

    # -- helpers ---------------------------------------------------------------------------

    def _alive(self, state: dict[str, Any]) -> bool:
        """Whether the state's runner still runs (reaped here once it has ended)."""
        pid = int(state["pid"])
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return True
            del self._children[pid]
            return False
        stat = proc_stat(pid)
        if stat is None or stat[2] != state.get("start_ticks"):
            return False  # gone, or the pid now belongs to another process
        if stat[0] == "Z":  # ended; reap it if it is ours (a previous executor's child)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return False
        return True

    def _wait_ended(self, state: dict[str, Any], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(state):
            if time.monotonic() >= deadline:
                return False
            time.sleep(STOP_STEP_S)
        return True

    def _started_runner(self, folder: Path, attempt: int) -> dict[str, Any] | None:
        """The state of the runner started for ``folder`` and this ``attempt`` before, if
        one was (a file without an attempt is the first's)."""
        try:
            known = json.loads((folder / PID_FILE).read_text())
            if known.get("attempt", 1) != attempt:
                return None
            return {
                "pid": int(known["pid"]),
                "start_ticks": known["start_ticks"],
                "folder": str(folder),
            }
        except (OSError, ValueError, KeyError, TypeError):
            return None


def prepare_folder(job: JobSpec, folder: Path, home: Path) -> None:
    """Create ``folder`` (the job's, in ``home``) with ``artifacts/``; write the snapshot and
    ``job.json`` for the runner. Idempotent: executors whose jobs see the same paths as the
    service (a local home, a cluster's shared file system) share it."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(exist_ok=True)
    (folder / ARTIFACTS).mkdir(exist_ok=True)
    _write(folder / job.input_name, job.source)
    document = job_document(job, str(home))
    _write(folder / JOB_FILE, json.dumps(document, indent=1) + "\n")


def read_log_file(folder: Path, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``job.log`` in ``folder`` from ``offset`` (b"" before it
    exists or past its end)."""
    try:
        with open(folder / LOG_FILE, "rb") as f:
            f.seek(offset)
            return f.read(limit)
    except FileNotFoundError:
        return b""


def read_exit_status(folder: Path) -> JobExit:
    """How the job in ``folder`` ended, from its ``exit_status.json`` (``lost`` if none)."""
    try:
        text = (folder / EXIT_FILE).read_text()
    except OSError:
        text = None
    return exit_from_status(text)


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        _kill(pid, sig)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
