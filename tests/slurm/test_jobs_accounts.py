"""Jobs run as their owner's Unix account on the real local cluster (``scripts/slurm``):
with ``submit_as_user``, the Slurm executor (here, as the service, root) gives the account
the job's folder and submits with ``sbatch --uid --gid``; the job runs as the account, with
its group and not root's, and everything in its folder is the account's. A hub user mapped
to an account that does not exist fails at ``before_start``, naming it, and nothing is
submitted.

Accounts are made with ``scripts/slurm add-user`` and named ``gpuhubt-<run>-<n>`` (valid
Unix names, at most 32 characters); each test's are removed at its end (``userdel``). The
runner's Python is a virtual environment of Debian's ``python3`` that sees gpuhub and its
dependencies from this repository: the repository's own interpreter lives under ``/root``,
where no other account may look (a site installs the nodes' Python where all can).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sysconfig
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpuhub.jobs.executor import JobSpec
from gpuhub.jobs.slurm import SlurmExecutor

from tests.support.paths import REPO
from tests.support.slurm import PREFIX, SCRIPT, slurm, wait_for

pytestmark = pytest.mark.timeout(60)

#: The tests' Unix accounts start with this.
ACCOUNT_PREFIX = "gpuhubt-"
#: Says who runs it, then waits for the test's "go" file in its folder.
WHO_AM_I = """
import os, pathlib, subprocess, time
def out(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
print("account", out("id", "-un"), flush=True)
print("groups", out("id", "-Gn"), flush=True)
print("home", os.environ["HOME"], flush=True)
(pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"]) / "result.txt").write_text("done\\n")
go = pathlib.Path(os.environ["GPUHUB_OUTPUT_DIR"]).parent / "go"
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def homes() -> Iterator[Path]:
    """A folder for the accounts' homes that every account may pass through."""
    if os.geteuid() != 0:
        pytest.skip("jobs as their owner's account need a root service (sbatch --uid)")
    base = Path(tempfile.mkdtemp(prefix=ACCOUNT_PREFIX, dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def node_python(homes: Path) -> str:
    """The nodes' Python: a virtual environment of Debian's python3, readable by every
    account, seeing gpuhub (this repository) and its dependencies (this .venv)."""
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.fail("no /usr/bin/python3 for the accounts' jobs: apt-get install python3-venv")
    env_dir = homes / "node-python"
    subprocess.run([system, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    [site] = env_dir.glob("lib/python3*/site-packages")
    paths = [str(REPO / "spawner"), sysconfig.get_paths()["purelib"]]
    (site / "gpuhub-repo.pth").write_text("\n".join(paths) + "\n")
    return str(env_dir / "bin" / "python")


@pytest.fixture
def account(homes: Path) -> Iterator[Callable[[], str]]:
    """Make Unix accounts (``scripts/slurm add-user``, home in ``homes``); removed at the end."""
    run = uuid.uuid4().hex[:8]
    made: list[str] = []

    def make() -> str:
        name = f"{ACCOUNT_PREFIX}{run}-{len(made) + 1}"
        made.append(name)
        done = subprocess.run(
            [str(SCRIPT), "add-user", name, str(homes / name)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return name

    yield make
    for name in made:
        subprocess.run([str(SCRIPT), "remove-user", name], capture_output=True, timeout=30)
        assert subprocess.run(["id", "-u", name], capture_output=True).returncode != 0, name


def executor_for(cluster: Path, homes: Path, python: str, accounts: dict[str, str]):
    return SlurmExecutor(
        home_dir_template=str(homes / "{username}"),
        submit_as_user=True,
        unix_user=lambda user: accounts[user],
        python=python,
        job_name_prefix=f"{PREFIX}-{uuid.uuid4().hex[:8]}-",
        slurm_conf=str(cluster),
        command_timeout=10,
    )


def job_of(user: str, source: str, job_id: int) -> JobSpec:
    """A script job of hub user ``user`` on node gpu3, without GPUs."""
    return JobSpec(
        id=job_id, user=user, name="who", kind="script", path="who.py",
        folder=f"gpuhub-jobs/{job_id}-who", source=source, lease_id=job_id, gpus=0,
        shape={"kind": "gpu", "count": 0}, node="gpu3", max_runtime_s=120,
        env={"GPUHUB_JOB_ID": str(job_id), "GPUHUB_LEASE_ID": str(job_id)},
    )  # fmt: skip


def test_a_job_runs_as_its_owners_account(cluster, homes, node_python, account):
    name = account()
    owner = pwd.getpwnam(name)
    executor = executor_for(cluster, homes, node_python, {"carol": name})
    job = job_of("carol", WHO_AM_I, 1)
    executor.before_start(job)
    state = executor.start(job)
    folder = executor.folder(job)

    def log() -> str:
        return executor.read_log(job, state, 0, 1 << 20).decode()

    wait_for("the job running", lambda: "home" in log(), 40)
    seen = slurm("squeue", "-h", "-j", state["slurm_job"], "-o", "%u %g").split()
    assert seen == [name, name], seen  # Slurm's record: the account and its group
    (folder / "go").touch()
    ended = wait_for("the job's end", lambda: executor.poll(job, state), 30)
    assert ended.outcome == "succeeded", (ended, log())
    assert f"account {name}\n" in log()
    assert f"groups {name}\n" in log()  # its own group only: never root's
    assert f"home {homes / name}\n" in log()
    owned = [folder.parent, folder, *folder.rglob("*")]
    assert {p.name for p in owned} >= {
        "gpuhub-jobs", "job.json", "input.py", "slurm.sh", ".slurm-job", "slurm.out",
        "job.log", "exit_status.json", "artifacts", "result.txt",
    }  # fmt: skip
    others = {str(p): p.lstat().st_uid for p in owned if p.lstat().st_uid != owner.pw_uid}
    assert others == {str(folder / "go"): 0}, others  # the test's own file, as root


def test_an_account_that_does_not_exist_fails_the_job_and_submits_nothing(
    cluster, homes, node_python
):
    missing = f"{ACCOUNT_PREFIX}{uuid.uuid4().hex[:8]}-none"
    executor = executor_for(cluster, homes, node_python, {"dave": missing})
    job = job_of("dave", WHO_AM_I, 2)
    with pytest.raises(ValueError, match=f"Unix account '{missing}' of user dave does not exist"):
        executor.before_start(job)
    assert not (homes / missing).exists()  # nothing made
    name = executor.job_name(job)
    assert slurm("squeue", "-h", "-t", "all", f"--name={name}", "-o", "%i").split() == []
