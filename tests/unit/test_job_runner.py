"""The job runner (``python -m gpuhub.jobs.runner FOLDER``) as real processes.

Each test lays out a job's folder as an executor's ``before_start`` does (snapshot +
``job.json``), runs the runner in a subprocess of this environment (which has papermill
and the python3 kernel), and reads what it left: ``exit_status.json``, ``job.log``, the
executed notebook, ``artifacts/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from gpuhub.jobs.executor import JobSpec
from gpuhub.jobs.runner import exit_from_status, job_document, job_environment

from tests.support.hub import wait_for

pytestmark = pytest.mark.timeout(120)


def notebook(*cells: str, parameters: str | None = None, kernel: str = "python3") -> str:
    """A notebook's JSON: an optional cell tagged ``parameters``, then ``cells``."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    return nbformat.writes(nb)


def lay_out(folder: Path, kind: str, source: str, cwd: Path, **job) -> Path:
    """A job folder as before_start writes it."""
    folder.mkdir(parents=True)
    name = "input.ipynb" if kind == "notebook" else "input.py"
    (folder / name).write_text(source)
    document = {
        "id": 7,
        "kind": kind,
        "input": name,
        "output": "train.ipynb" if kind == "notebook" else None,
        "parameters": {},
        "gpus": 0,
        "cwd": str(cwd),
        **job,
    }
    (folder / "job.json").write_text(json.dumps(document))
    return folder


def runner(folder: Path, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUHUB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "gpuhub.jobs.runner", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        **kwargs,
    )


def run(folder: Path) -> tuple[int, str, dict]:
    """Run the runner to its end: (exit code, its stdout, exit_status.json)."""
    proc = runner(folder)
    out, _ = proc.communicate(timeout=90)
    return proc.returncode, out.decode(), json.loads((folder / "exit_status.json").read_text())


def outputs(nb: nbformat.NotebookNode) -> str:
    """Every text the notebook's cells put out."""
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text") or out.get("data", {}).get("text/plain", ""))
    return "".join(texts)


def test_notebook_runs_with_parameters_injected(tmp_path: Path) -> None:
    work = tmp_path / "home" / "work"
    work.mkdir(parents=True)
    source = notebook(
        "import os\nprint('epochs', epochs, 'lr', lr, 'name', name)",
        "print('cwd', os.getcwd())\nprint('out', os.environ['GPUHUB_OUTPUT_DIR'])",
        "open(os.path.join(os.environ['GPUHUB_OUTPUT_DIR'], 'model.txt'), 'w').write('w')\n"
        "epochs * 10",
        parameters="epochs = 1\nlr = 0.1\nname = 'default'",
        kernel="no-such-kernel",  # falls back to python3
    )
    folder = lay_out(
        tmp_path / "home" / "gpuhub-jobs" / "7-train",
        "notebook",
        source,
        work,
        parameters={"epochs": 3, "name": "tuned"},
    )
    code, out, status = run(folder)
    assert code == 0, out
    assert status["outcome"] == "succeeded" and status["exit_code"] == 0
    assert status["error"] is None and status["ended_at"] == pytest.approx(time.time(), abs=60)
    # the kernel is reached over Unix sockets in a private folder, not TCP, and they go
    assert "Kernel is running over TCP" not in out
    assert sorted(p.name for p in work.iterdir()) == []

    nb = nbformat.read(folder / "train.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "epochs = 3" in injected[0].source
    text = outputs(nb)
    assert "epochs 3 lr 0.1 name tuned" in text  # injected, and the default kept
    assert f"cwd {work}" in text
    assert f"out {folder / 'artifacts'}" in text
    assert "30" in text  # an execute_result
    assert (folder / "artifacts" / "model.txt").read_text() == "w"
    log = (folder / "job.log").read_text()
    assert "epochs 3 lr 0.1 name tuned" in log and "kernel python3" in log
    assert "epochs 3 lr 0.1 name tuned" in out  # tee'd to stdout too
    assert not list(folder.glob(".*tmp"))  # the exit status was renamed into place


def test_failing_notebook_keeps_executed_notebook_and_error(tmp_path: Path) -> None:
    source = notebook("print('before the failure')", "raise ValueError('bad learning rate')")
    folder = lay_out(tmp_path / "job", "notebook", source, tmp_path)
    code, out, status = run(folder)
    assert code == 1
    assert status["outcome"] == "failed" and status["exit_code"] == 1
    assert "ValueError" in status["error"] and "bad learning rate" in status["error"]
    assert status["error"].startswith("cell [2] raised")
    nb = nbformat.read(folder / "train.ipynb", as_version=4)
    assert "before the failure" in outputs(nb)
    assert any(o.get("ename") == "ValueError" for c in nb.cells for o in c.get("outputs", []))
    log = (folder / "job.log").read_text()
    assert "bad learning rate" in log and "failed (exit code 1)" in log
    assert not (folder / ".runner-error").exists()


def test_script_runs_in_cwd_with_env_and_exit_code(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "helper.py").write_text("VALUE = 42\n")
    script = (
        "import os, sys, helper\n"
        "print('cwd', os.getcwd(), 'value', helper.VALUE, 'job', os.environ['GPUHUB_JOB_ID'])\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(int(os.environ.get('CODE', '0')))\n"
    )
    folder = lay_out(tmp_path / "job", "script", script, work)
    code, out, status = run(folder)
    assert code == 0 and status["outcome"] == "succeeded", out
    log = (folder / "job.log").read_text()
    assert f"cwd {work} value 42 job 7" in log and "to stderr" in log
    assert not (folder / "train.ipynb").exists()

    os.environ["CODE"] = "3"
    try:
        code, out, status = run(folder)
    finally:
        del os.environ["CODE"]
    assert code == 3
    assert status == {**status, "exit_code": 3, "outcome": "failed"}
    assert status["error"] == "the script exited with code 3"


def test_sigterm_reaches_the_script_and_its_children(tmp_path: Path) -> None:
    script = (
        "import os, signal, subprocess, sys, time\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "open('pids', 'w').write(f'{os.getpid()} {kid.pid}')\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    folder = lay_out(tmp_path / "job", "script", script, tmp_path)
    proc = runner(folder)
    wait_for(lambda: "ready" in _read(folder / "job.log"), timeout=30)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    status = json.loads((folder / "exit_status.json").read_text())
    assert status["outcome"] == "terminated" and status["exit_code"] == 143
    assert proc.returncode == 143
    assert status["error"] == "the job was stopped (SIGTERM)"
    for pid in pids:  # the script and what it started, all in its process group
        wait_for(lambda pid=pid: not _exists(pid), timeout=10)


def test_sigterm_stops_a_notebook_and_keeps_its_outputs(tmp_path: Path) -> None:
    source = notebook("print('first cell done')", "import time\nprint('ready')\ntime.sleep(120)")
    folder = lay_out(tmp_path / "job", "notebook", source, tmp_path)
    proc = runner(folder)
    wait_for(lambda: "ready" in _read(folder / "job.log"), timeout=60)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    status = json.loads((folder / "exit_status.json").read_text())
    assert status["outcome"] == "terminated"
    assert "first cell done" in outputs(nbformat.read(folder / "train.ipynb", as_version=4))


def test_broken_job_folder_still_gets_an_exit_status(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    code, out, status = run(folder)
    assert code == 2 and status["outcome"] == "failed"
    assert "job.json is missing" in status["error"]
    (folder / "job.json").write_text(json.dumps({"kind": "script", "input": "input.py"}))
    code, out, status = run(folder)
    assert status["outcome"] == "failed" and "'input.py' is not a file" in status["error"]


def test_job_document_and_environment() -> None:
    job = JobSpec(
        id=12, user="alice", name="train", kind="notebook", path="work/deep/train.ipynb",
        folder="gpuhub-jobs/12-train", source="{}", parameters={"lr": 0.1}, gpus=2,
    )  # fmt: skip
    assert job_document(job, "/home/jovyan") == {
        "id": 12,
        "kind": "notebook",
        "input": "input.ipynb",
        "output": "train.ipynb",
        "parameters": {"lr": 0.1},
        "gpus": 2,
        "nodes": 1,
        "cwd": "/home/jovyan/work/deep",
        "attempt": 1,
        "after": None,
    }
    top = JobSpec(
        id=1, user="a", name="s", kind="script", path="s.py", folder="gpuhub-jobs/1-s",
        source="",
    )  # fmt: skip
    assert job_document(top, "/h")["cwd"] == "/h" and job_document(top, "/h")["output"] is None
    env = {
        "GPUHUB_JOB_ID": "12",
        "CUDA_VISIBLE_DEVICES": "GPU-1",
        "JUPYTERHUB_API_TOKEN": "secret",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:1",
        "GPUHUB_TOKEN": "secret",
    }
    assert job_environment(env) == {"GPUHUB_JOB_ID": "12", "CUDA_VISIBLE_DEVICES": "GPU-1"}


def test_exit_from_status() -> None:
    assert exit_from_status(None).outcome == "lost"
    assert exit_from_status("{not json").outcome == "lost"
    done = exit_from_status('{"exit_code": 0, "outcome": "succeeded", "error": null, '
                            '"ended_at": 5}')  # fmt: skip
    assert (done.exit_code, done.outcome, done.error, done.ended_at) == (0, "succeeded", None, 5.0)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
