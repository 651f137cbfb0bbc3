"""Run one job inside its environment: ``python -m gpuhub.jobs.runner FOLDER``.

``FOLDER`` is the job's folder (absolute, as the job sees it), written by the executor's
``before_start``: ``job.json`` says what to run::

    {"id": 12, "kind": "notebook", "input": "input.ipynb", "output": "train.ipynb",
     "parameters": {"epochs": 3}, "gpus": 1, "cwd": "/home/jovyan/work"}

A notebook is executed with papermill (parameters injected after the cell tagged
``parameters``; the kernel named by the notebook, or ``python3`` where this environment
has no such kernel) into ``output``, which is saved after every cell, so a failed or
stopped job keeps the outputs it made. A script runs with ``python input.py``, or
``torchrun --nproc-per-node N input.py`` for an N-GPU job; a job on several nodes
(``"nodes"``) runs ``srun`` + ``torchrun`` on each (:mod:`gpuhub.jobs.launch`). Either runs in a child process
group of its own, in ``cwd``; everything it prints goes to ``job.log`` and to this
process's stdout as it comes. SIGTERM (and SIGINT) are forwarded to that group.

SIGUSR1 is gpuhub's preemption notice (the executor wrote ``$GPUHUB_PREEMPT_FILE``
first): it is passed on to each process under the child that handles SIGUSR1 (the script,
the notebook's kernel, torchrun's workers), never to one that does not (SIGUSR1 would end
it at once); a job on several nodes gets the file only. A later attempt of the job
(``"attempt"`` in ``job.json``, 2, 3, ...) appends to the same ``job.log`` after a line
``--- attempt 2 (after preempted) ---``, and starts without the exit status and the
notice of the attempt before.

Whatever the end, ``exit_status.json`` is written last, atomically::

    {"exit_code": 0, "outcome": "succeeded"|"failed"|"terminated", "error": str|null,
     "ended_at": 1767225600.0}

Light on dependencies: the standard library and gpuhub's executor constants; papermill is
imported only in the notebook's child.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .executor import ARTIFACTS, EXIT_FILE, JOB_FILE, LOG_FILE, PREEMPT_FILE, JobExit, JobSpec
from .launch import LaunchError, multi_node_command

#: Where the notebook's child leaves the sentence saying why papermill failed.
ERROR_FILE = ".runner-error"
#: Exit code of a child that failed before running anything (bad job.json, no papermill).
SETUP_FAILED = 2
#: Seconds to wait for the rest of the output once the child has ended.
DRAIN_S = 5.0


def job_document(job: JobSpec, home: str) -> dict[str, Any]:
    """The runner's ``job.json`` for ``job`` whose owner's home is ``home`` (absolute, as
    the job sees it): it runs in its notebook's folder."""
    cwd = posixpath.join(home, posixpath.dirname(job.path)) if "/" in job.path else home
    return {
        "id": job.id,
        "kind": job.kind,
        "input": job.input_name,
        "output": job.output_name,
        "parameters": dict(job.parameters),
        "gpus": job.gpus,
        "nodes": job.nodes,
        "cwd": cwd,
        "attempt": job.attempt,
        "after": job.retried_after,
    }


def job_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` without what a job must never see: JupyterHub's variables and tokens."""
    return {
        k: v for k, v in env.items() if not k.startswith("JUPYTERHUB_") and "TOKEN" not in k.upper()
    }


class JobSetupError(Exception):
    """The job cannot start: its ``job.json`` or input is missing or malformed."""


def write_exit_status(
    folder: Path, exit_code: int | None, outcome: str, error: str | None
) -> dict[str, Any]:
    """Write ``exit_status.json`` atomically (a temporary file renamed over it)."""
    status = {"exit_code": exit_code, "outcome": outcome, "error": error, "ended_at": time.time()}
    tmp = folder / f".{EXIT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(status) + "\n")
    os.replace(tmp, folder / EXIT_FILE)
    return status


def exit_from_status(text: str | None) -> JobExit:
    """A :class:`JobExit` from the text of ``exit_status.json``; outcome ``lost`` when
    there is none (or it is unreadable): the runner was killed or its machine restarted."""
    try:
        status = json.loads(text) if text is not None else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        return JobExit(
            exit_code=None,
            outcome="lost",
            error="the job's runner ended without writing exit_status.json "
            "(it was killed, or its machine restarted)",
            ended_at=time.time(),
        )
    code = status.get("exit_code")
    ended = status.get("ended_at")
    return JobExit(
        exit_code=code if isinstance(code, int) else None,
        outcome=str(status.get("outcome") or "lost"),
        error=str(status["error"]) if status.get("error") else None,
        ended_at=float(ended) if isinstance(ended, int | float) else None,
    )


def read_job(folder: Path) -> dict[str, Any]:
    """The job's ``job.json``, checked enough to run it (:class:`JobSetupError` if not)."""
    try:
        job = json.loads((folder / JOB_FILE).read_text())
    except FileNotFoundError:
        raise JobSetupError(f"{folder / JOB_FILE} is missing") from None
    except (OSError, ValueError) as e:
        raise JobSetupError(f"{folder / JOB_FILE} cannot be read: {e}") from None
    if not isinstance(job, dict) or job.get("kind") not in ("notebook", "script"):
        raise JobSetupError(f"{folder / JOB_FILE} has no kind 'notebook' or 'script'")
    name = job.get("input")
    if not isinstance(name, str) or "/" in name or not (folder / name).is_file():
        raise JobSetupError(f"the job's input {name!r} is not a file of {folder}")
    if job["kind"] == "notebook" and not (
        isinstance(job.get("output"), str) and "/" not in job["output"]
    ):
        raise JobSetupError(f"{folder / JOB_FILE} names no output notebook")
    if not isinstance(job.get("parameters", {}), dict):
        raise JobSetupError(f"the parameters in {folder / JOB_FILE} are not an object")
    return job


def job_cwd(job: dict[str, Any], folder: Path) -> Path:
    """Where the job runs: its notebook's folder, or the job's folder if that is gone."""
    cwd = job.get("cwd")
    if isinstance(cwd, str) and os.path.isabs(cwd) and os.path.isdir(cwd):
        return Path(cwd)
    return folder


def child_command(job: dict[str, Any], folder: Path) -> list[str]:
    """The command of the job's child process (:class:`LaunchError` where a multi-node job
    cannot start here)."""
    if int(job.get("nodes") or 1) > 1:
        return multi_node_command(job, folder)
    if job["kind"] == "notebook":
        return [sys.executable, "-m", "gpuhub.jobs.runner", "--papermill", str(folder)]
    script = str(folder / job["input"])
    gpus = int(job.get("gpus") or 0)
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={gpus}", script]
    return [sys.executable, script]


def child_env(job: dict[str, Any], folder: Path, cwd: Path) -> dict[str, str]:
    """This process's environment plus what every job sees (set by the executor already;
    filled in here when it was not) and unbuffered Python output."""
    env = dict(os.environ)
    env.setdefault("GPUHUB_JOB_ID", str(job.get("id", "")))
    env.setdefault("GPUHUB_OUTPUT_DIR", str(folder / ARTIFACTS))
    env.setdefault("GPUHUB_PREEMPT_FILE", str(folder / PREEMPT_FILE))
    env.setdefault("GPUHUB_ATTEMPT", str(job.get("attempt") or 1))
    env["PYTHONUNBUFFERED"] = "1"
    if job["kind"] == "script":  # the script imports its neighbours, as when run from there
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH")) if p)
    return env


def kernel_for(notebook: dict[str, Any]) -> str:
    """The notebook's kernel if this environment has it, else ``python3``."""
    wanted = ((notebook.get("metadata") or {}).get("kernelspec") or {}).get("name")
    if not wanted:
        return "python3"
    from jupyter_client.kernelspec import KernelSpecManager

    return wanted if wanted in KernelSpecManager().find_kernel_specs() else "python3"


def run_papermill(folder: Path) -> int:
    """The notebook's child: papermill ``input`` -> ``output``. A failure leaves a sentence
    in :data:`ERROR_FILE` and exits 1."""
    job = read_job(folder)
    cwd = job_cwd(job, folder)
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
        from traitlets.config import Config
    except ImportError:
        (folder / ERROR_FILE).write_text(
            "papermill is not installed in the job's environment; install gpuhub[notebook]"
        )
        return SETUP_FAILED
    source = folder / job["input"]
    nb = json.loads(source.read_text())
    kernel = kernel_for(nb)
    meta = nb.get("metadata") or {}
    language = (meta.get("kernelspec") or {}).get("language") or (
        meta.get("language_info") or {}
    ).get("name")
    if kernel == "python3" or not language:
        language = "python"  # parameters are written for the kernel that runs them
    print(f"gpuhub: papermill {job['input']} -> {job['output']} (kernel {kernel})", flush=True)
    # The kernel talks to papermill over Unix sockets in a private folder: TCP would be
    # open to anyone on the node (and ipykernel starts every log saying so).
    sockets = tempfile.mkdtemp(prefix="gpuhub-kernel-")
    transport = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets}/kernel"}})
    try:
        papermill.execute_notebook(
            str(source),
            str(folder / job["output"]),
            parameters=job.get("parameters") or {},
            kernel_name=kernel,
            language=language,
            cwd=str(cwd),
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            config=transport,
        )
    except PapermillExecutionError as e:
        sentence = f"cell [{e.exec_count}] raised {e.ename}: {_clip(e.evalue)}"
        print(f"gpuhub: {sentence}", file=sys.stderr, flush=True)
        (folder / ERROR_FILE).write_text(sentence)
        return 1
    except Exception as e:  # noqa: BLE001 - kernel death, bad notebook...: one sentence
        sentence = f"papermill failed: {type(e).__name__}: {_clip(str(e))}"
        print(f"gpuhub: {sentence}", file=sys.stderr, flush=True)
        (folder / ERROR_FILE).write_text(sentence)
        return 1
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return 0


def _clip(text: str, limit: int = 500) -> str:
    """The first line of ``text``, at most ``limit`` characters."""
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold ')'
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop(0))
        todo += children.get(tree[-1], [])
    return tree


def handles(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (``SigCgt``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def stale_notice(folder: Path, attempt: int) -> bool:
    """Whether ``preempt.json`` in ``folder`` is an earlier attempt's notice."""
    try:
        notice = json.loads((folder / PREEMPT_FILE).read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return not isinstance(notice, dict) or notice.get("attempt", 1) != attempt


class Runner:
    """Runs the job's child, tees its output, forwards signals, writes the exit status."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.child: subprocess.Popen | None = None
        self.terminated: int | None = None  # the signal that stopped the job
        self.noticed = False  # SIGUSR1 came: the job's lease is to be taken back
        self.notices = True  # whether SIGUSR1 is passed on (not on several nodes)
        self.lock = threading.Lock()
        self.log = open(folder / LOG_FILE, "ab", buffering=0)  # closed by run()

    def say(self, text: str) -> None:
        """A line of the runner's own, in the log and on stdout."""
        self.tee(f"gpuhub: {text}\n".encode())

    def tee(self, data: bytes) -> None:
        """Write ``data`` to ``job.log`` and stdout."""
        with self.lock:
            if self.log.closed:  # the job has ended; a straggler's output is dropped
                return
            self.log.write(data)
            try:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            except (OSError, ValueError):
                pass  # nobody reads stdout any more (a closed pipe): the log still has it

    def forward(self, signum: int, _frame: Any = None) -> None:
        """Signal handler: stop the child's whole process group."""
        self.terminated = signum
        if self.child is not None and self.child.returncode is None:
            try:
                os.killpg(self.child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def notice(self, _signum: int = signal.SIGUSR1, _frame: Any = None) -> None:
        """Signal handler (SIGUSR1, the preemption notice): pass it on to the processes of
        the job that handle it."""
        self.noticed = True
        if self.child is None or self.child.returncode is not None or not self.notices:
            return
        for pid in process_tree(self.child.pid):
            if handles(pid, signal.SIGUSR1):
                try:
                    os.kill(pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass

    def run(self) -> dict[str, Any]:
        """Run the job to its end; the exit status written."""
        signal.signal(signal.SIGTERM, self.forward)
        signal.signal(signal.SIGINT, self.forward)
        signal.signal(signal.SIGUSR1, self.notice)
        try:
            return self._run()
        finally:
            with self.lock:
                self.log.close()

    def _run(self) -> dict[str, Any]:
        (self.folder / ERROR_FILE).unlink(missing_ok=True)
        (self.folder / EXIT_FILE).unlink(missing_ok=True)  # an earlier attempt's
        try:
            job = read_job(self.folder)
        except JobSetupError as e:
            self.say(str(e))
            return write_exit_status(self.folder, SETUP_FAILED, "failed", str(e))
        attempt = int(job.get("attempt") or 1)
        if stale_notice(self.folder, attempt):
            (self.folder / PREEMPT_FILE).unlink(missing_ok=True)
        if attempt > 1:
            self.tee(
                f"--- attempt {attempt} (after {job.get('after') or 'a retry'}) ---\n".encode()
            )
        self.notices = int(job.get("nodes") or 1) == 1
        cwd = job_cwd(job, self.folder)
        (self.folder / ARTIFACTS).mkdir(exist_ok=True)
        try:
            command = child_command(job, self.folder)
        except LaunchError as e:
            self.say(str(e))
            return write_exit_status(self.folder, SETUP_FAILED, "failed", str(e))
        what = "notebook" if job["kind"] == "notebook" else "script"
        self.say(f"job {job.get('id')}: {what} {job['input']} in {cwd}")
        if job.get("parameters"):
            self.say(f"parameters: {json.dumps(job['parameters'], sort_keys=True)}")
        try:
            self.child = subprocess.Popen(
                command,
                cwd=cwd,
                env=child_env(job, self.folder, cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=0,  # SIGTERM reaches everything it starts
            )
        except OSError as e:
            error = f"the job could not start: {e}"
            self.say(error)
            return write_exit_status(self.folder, SETUP_FAILED, "failed", error)
        if self.terminated:  # a signal came while it started
            self.forward(self.terminated)
        elif self.noticed:  # the notice came while it started: the file tells it
            self.notice()
        reader = threading.Thread(target=self.pump, daemon=True)
        reader.start()
        code = self.child.wait()
        # what the child started (a kernel) may hold its output open a moment longer
        reader.join(timeout=DRAIN_S)
        return self.finish(job, code)

    def pump(self) -> None:
        """Copy the child's output to the log and stdout as it comes."""
        assert self.child is not None and self.child.stdout is not None
        fd = self.child.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self.tee(chunk)

    def finish(self, job: dict[str, Any], code: int) -> dict[str, Any]:
        """The exit status for the child's return ``code`` (negative: killed by a signal)."""
        error_file = self.folder / ERROR_FILE
        detail = error_file.read_text().strip() if error_file.exists() else None
        error_file.unlink(missing_ok=True)
        exit_code = 128 - code if code < 0 else code
        if self.terminated:
            outcome = "terminated"
            error = f"the job was stopped ({signal.Signals(self.terminated).name})"
        elif code == 0:
            outcome, error = "succeeded", None
            notice = os.environ.get("GPUHUB_PREEMPT_FILE")
            if notice and os.path.exists(notice):  # gpuhub books the attempt as preempted
                self.say("stopped after the preemption notice, with exit code 0")
        elif detail:
            outcome, error = "failed", detail
        elif code < 0:
            outcome = "failed"
            error = f"the job was killed by {signal.Signals(-code).name}"
        else:
            outcome = "failed"
            error = f"the {'notebook' if job['kind'] == 'notebook' else 'script'} exited with code {code}"
        self.say(f"{outcome} (exit code {exit_code})" + (f": {error}" if error else ""))
        return write_exit_status(self.folder, exit_code, outcome, error)


def main(argv: list[str] | None = None) -> int:
    """``runner FOLDER`` (or ``runner --papermill FOLDER``, the notebook's child)."""
    args = list(sys.argv[1:] if argv is None else argv)
    papermill_child = bool(args) and args[0] == "--papermill"
    if papermill_child:
        args = args[1:]
    if len(args) != 1:
        print("usage: python -m gpuhub.jobs.runner FOLDER", file=sys.stderr)
        return SETUP_FAILED
    folder = Path(args[0])
    if not folder.is_dir():
        print(f"gpuhub: the job's folder {folder} does not exist", file=sys.stderr)
        return SETUP_FAILED
    if papermill_child:
        return run_papermill(folder.absolute())
    status = Runner(folder.absolute()).run()
    return int(status["exit_code"] or 0) if status["outcome"] != "succeeded" else 0


if __name__ == "__main__":
    sys.exit(main())
