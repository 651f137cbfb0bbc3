"""A job in a podman container on the real local cluster (``scripts/slurm``): the Slurm
executor wraps the runner in the site's ``container_command``, the batch script on the
node starts ``podman run``, and the job runs inside the container to its end.

The container is Debian's (``gpuhub/debian-base:bookworm``, which ``scripts/images base``
makes for the Docker tests, copied into podman's storage with ``docker save | podman
load``); gpuhub's runner is this repository's virtual environment and its Python,
bind-mounted read-only at the same paths, the job's folder read-write. Skipped, saying
why, where podman is not installed, that image is missing, or podman cannot start a
container here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from gpuhub.jobs.executor import JobSpec
from gpuhub.jobs.slurm import SlurmExecutor

from tests.support.docker import DEBIAN_BASE
from tests.support.paths import REPO
from tests.support.slurm import PREFIX, wait_for

pytestmark = pytest.mark.timeout(60)

#: The Debian image in podman's own storage (a full name: podman never asks a registry).
IMAGE = f"localhost/{DEBIAN_BASE}"
#: Limits given explicitly: podman's defaults (open files 1048576) are above this host's
#: hard limits, and a process without CAP_SYS_RESOURCE (this machine is itself a
#: container) cannot raise them, so runc would refuse to start the container.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
IN_CONTAINER = """
import os, pathlib
marker = pathlib.Path("/run/.containerenv")
print("container", marker.exists(), flush=True)
init = pathlib.Path("/proc/1/cmdline").read_bytes().split(b"\\0")
print("pid 1", " ".join(a.decode() for a in init[1:4]), flush=True)
print("job", os.environ["GPUHUB_JOB_ID"], os.environ["GPUHUB_OUTPUT_DIR"], flush=True)
(pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"]) / "result.txt").write_text("from podman\\n")
"""


def _podman(*argv: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *argv], capture_output=True, timeout=timeout, check=False, **kw
    )


@pytest.fixture(scope="module")
def image() -> str:
    """The Debian image in podman's storage, once podman has run a container of it here."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman; scripts/setup test does)")
    if _podman("image", "exists", IMAGE).returncode != 0:
        if shutil.which("docker") is None:
            pytest.skip(f"podman has no {IMAGE} and there is no Docker to copy it from")
        save = subprocess.Popen(["docker", "save", DEBIAN_BASE], stdout=subprocess.PIPE)
        loaded = _podman("load", stdin=save.stdout)
        save.stdout.close()
        if save.wait(timeout=60) != 0 or loaded.returncode != 0:
            pytest.skip(
                f"cannot copy {DEBIAN_BASE} from Docker into podman (make it with "
                f"`scripts/images base`): {loaded.stderr.decode().strip()[-300:]}"
            )
    ran = _podman("run", "--rm", "--network=host", *ULIMITS, IMAGE, "true", timeout=60)
    if ran.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {ran.stderr.decode().strip()[-400:]}")
    return IMAGE


def runner_mounts() -> list[str]:
    """Bind mounts (read-only, same paths) of this .venv, its Python and gpuhub's sources."""
    paths = sorted({sys.prefix, sys.base_prefix, str(REPO / "spawner")})
    return [arg for p in paths for arg in ("-v", f"{p}:{p}:ro")]


def test_a_job_runs_in_a_podman_container(image, cluster, tmp_path):
    assert not Path("/run/.containerenv").exists()  # the marker means: inside podman
    executor = SlurmExecutor(
        home_dir_template=str(tmp_path / "{username}"),
        job_name_prefix=f"{PREFIX}-{uuid.uuid4().hex[:8]}-",
        slurm_conf=str(cluster),
        command_timeout=10,
        python=str(Path(sys.prefix) / "bin" / "python"),
        container_command=[
            "podman", "run", "--rm", "--network=host", "--env-host", *ULIMITS,
            "-v", "{folder}:{folder}", *runner_mounts(), "{image}",
        ],
    )  # fmt: skip
    job = JobSpec(
        id=1, user="erin", name="boxed", kind="script", path="boxed.py",
        folder="gpuhub-jobs/1-boxed", source=IN_CONTAINER, lease_id=1, gpus=0,
        shape={"kind": "gpu", "count": 0}, node="gpu2", max_runtime_s=120, image=image,
        env={"GPUHUB_JOB_ID": "1", "GPUHUB_LEASE_ID": "1"},
    )  # fmt: skip
    executor.before_start(job)
    state = executor.start(job)
    assert "podman run --rm" in (executor.folder(job) / "slurm.sh").read_text()
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 40)
    log = executor.read_log(job, state, 0, 1 << 20).decode()
    assert ended.outcome == "succeeded", (ended, log)
    assert "container True\n" in log
    assert "pid 1 -m gpuhub.jobs.runner " in log  # its own process namespace: the runner is 1
    folder = executor.folder(job)
    assert f"job 1 {folder / 'artifacts'}\n" in log
    assert (folder / "artifacts" / "result.txt").read_text() == "from podman\n"
