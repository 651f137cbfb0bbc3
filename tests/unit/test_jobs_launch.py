"""The runner's launch of a job on several nodes (:mod:`gpuhub.jobs.launch`): ``srun``
with one ``torchrun`` agent per node, the rendezvous from Slurm's environment, and a
notebook run as a script. The real launch on the local cluster is in
tests/slurm/test_multinode.py; here, what it is made of and its refusals."""

from __future__ import annotations

import json
import socket
import sys

import pytest
from gpuhub.jobs.launch import LaunchError, multi_node_command, notebook_script
from gpuhub.jobs.runner import main as runner_main

from tests.support.jobs import notebook


def job_of(kind: str = "script", **kw) -> dict:
    base = {"id": 7, "kind": kind, "input": "train.py", "nodes": 2, "gpus": 2}
    return {**base, **kw}


@pytest.fixture
def slurm_env(monkeypatch):
    for name in ("SLURMD_NODENAME", "SLURM_JOB_NUM_NODES", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_script_runs_under_srun_and_torchrun_with_slurms_rendezvous(slurm_env, tmp_path):
    slurm_env.setenv("SLURM_JOB_NUM_NODES", "2")
    slurm_env.setenv("SLURM_JOB_ID", "4242")
    (tmp_path / "train.py").write_text("print(1)\n")
    argv = multi_node_command(job_of(), tmp_path)
    assert argv[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert argv[4:7] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nnodes=2" in argv and "--nproc-per-node=2" in argv
    assert "--rdzv-backend=c10d" in argv and "--rdzv-id=4242" in argv
    endpoint = next(a for a in argv if a.startswith("--rdzv-endpoint="))
    host, port = endpoint.split("=", 1)[1].rsplit(":", 1)
    assert host == socket.gethostname() and 0 < int(port) < 65536  # no SLURMD_NODENAME
    assert argv[-1] == str(tmp_path / "train.py")


def test_a_job_with_no_gpus_per_node_still_runs_one_process_on_each(slurm_env, tmp_path):
    slurm_env.setenv("SLURM_JOB_NUM_NODES", "3")
    assert "--nproc-per-node=1" in multi_node_command(job_of(nodes=3, gpus=0), tmp_path)


@pytest.mark.parametrize(
    ("allocated", "message"),
    [
        (None, "spans 2 nodes, and runs outside a Slurm allocation"),
        ("1", "spans 2 nodes, and Slurm allocated 1"),
    ],
)
def test_it_refuses_to_start_without_its_nodes(slurm_env, tmp_path, allocated, message):
    if allocated is not None:
        slurm_env.setenv("SLURM_JOB_NUM_NODES", allocated)
    with pytest.raises(LaunchError, match=message):
        multi_node_command(job_of(), tmp_path)


def test_the_runner_fails_such_a_job_with_that_sentence(slurm_env, tmp_path):
    (tmp_path / "train.py").write_text("print('never runs')\n")
    (tmp_path / "job.json").write_text(json.dumps({**job_of(), "cwd": str(tmp_path)}))
    assert runner_main([str(tmp_path)]) == 2
    status = json.loads((tmp_path / "exit_status.json").read_text())
    assert status["outcome"] == "failed"
    assert status["error"] == "the job spans 2 nodes, and runs outside a Slurm allocation"
    assert "never runs" not in (tmp_path / "job.log").read_text()


def test_a_notebook_runs_as_its_code_cells_with_the_parameters_after_their_cell(tmp_path):
    nb = notebook("print('lr', lr, 'epochs', epochs)", parameters="lr = 0.1\nepochs = 1")
    nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# Title"})
    nb["cells"].append(
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["%matplotlib inline\n", "!nvidia-smi\n", "x = 1\n"]}
    )  # fmt: skip
    (tmp_path / "train.ipynb").write_text(json.dumps(nb))
    job = job_of("notebook", input="train.ipynb", parameters={"epochs": 3, "name": "a'b"})
    script = notebook_script(job, tmp_path)
    assert script == tmp_path / "train.py"
    text = script.read_text()
    assert "# Title" not in text.splitlines()  # markdown is left out
    assert text.index("lr = 0.1") < text.index("epochs = 3") < text.index("print('lr'")
    assert 'name = "a\'b"' in text
    assert "# %matplotlib inline" in text and "# !nvidia-smi" in text and "\nx = 1" in text
    compile(text, str(script), "exec")  # plain Python
