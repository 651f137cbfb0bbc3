"""How the runner starts a job that spans nodes: ``srun`` puts one ``torchrun`` agent on
each node of the Slurm allocation, and the agents meet at a rendezvous on the batch host.

Everything comes from Slurm's environment in the batch step: the node count
(``SLURM_JOB_NUM_NODES``, checked against the job's), the rendezvous id
(``SLURM_JOB_ID``), and the address of the node the batch step runs on (Slurm's
``NodeAddr`` for ``SLURMD_NODENAME``, else this host's name), with a port free there.
``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` for each process, so ``torch.distributed.init_process_group()`` needs
no arguments.

A notebook runs as a script here (its code cells in order, the ``parameters`` cell's
values after it, IPython magics and shell lines left out): papermill drives one kernel
and cannot be one of many ranks. Standard library only, as the runner.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Lines a plain Python interpreter cannot run: IPython magics and shell escapes.
_IPYTHON_ONLY = ("%", "!")


def rendezvous_host() -> str:
    """The batch node's address as Slurm knows it (``NodeAddr``), else this host's name."""
    node = os.environ.get("SLURMD_NODENAME")
    if node:
        try:
            out = subprocess.run(
                ["scontrol", "show", "node", "-o", node],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            out = ""
        for field in out.split():
            if field.startswith("NodeAddr=") and len(field) > len("NodeAddr="):
                return field.split("=", 1)[1]
    return socket.gethostname()


def free_port() -> int:
    """A TCP port free on this host now (the rendezvous store binds it next)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def notebook_script(job: dict[str, Any], folder: Path) -> Path:
    """The notebook ``input`` of ``folder`` as a Python script next to it; its path."""
    nb = json.loads((folder / job["input"]).read_text())
    params = job.get("parameters") or {}
    parts = [f"# {job['input']} as a script, for a multi-node run (gpuhub)"]
    injected = False
    for cell in nb.get("cells") or []:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source") or ""
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = [
            f"# {line}" if line.lstrip().startswith(_IPYTHON_ONLY) else line
            for line in text.splitlines()
        ]
        parts.append("\n".join(lines))
        if not injected and "parameters" in ((cell.get("metadata") or {}).get("tags") or ()):
            parts.append(_assignments(params))
            injected = True
    if params and not injected:
        parts.insert(1, _assignments(params))
    script = folder / (Path(job["input"]).stem + ".py")
    script.write_text("\n\n".join(parts) + "\n")
    return script


def _assignments(params: dict[str, Any]) -> str:
    return "\n".join(["# Parameters", *(f"{k} = {v!r}" for k, v in params.items())])


def multi_node_command(job: dict[str, Any], folder: Path) -> list[str]:
    """The batch step's command for a job on ``job["nodes"]`` nodes: ``srun`` starting a
    ``torchrun`` agent on each, with one process per GPU of a node (at least one)."""
    nodes = int(job["nodes"])
    allocated = os.environ.get("SLURM_JOB_NUM_NODES")
    if allocated is None:
        raise LaunchError(f"the job spans {nodes} nodes, and runs outside a Slurm allocation")
    if int(allocated) != nodes:
        raise LaunchError(f"the job spans {nodes} nodes, and Slurm allocated {allocated}")
    if job["kind"] == "notebook":
        script = notebook_script(job, folder)
    else:
        script = folder / job["input"]
    host = rendezvous_host()
    per_node = max(1, int(job.get("gpus") or 0))
    return [
        "srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={nodes}", f"--nproc-per-node={per_node}",
        "--rdzv-backend=c10d", f"--rdzv-endpoint={host}:{free_port()}",
        f"--rdzv-id={os.environ.get('SLURM_JOB_ID') or job.get('id')}",
        str(script),
    ]  # fmt: skip


class LaunchError(Exception):
    """A multi-node job cannot start here; the message says why."""
