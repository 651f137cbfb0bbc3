"""The local Slurm cluster for the tests that use one (``scripts/slurm``): started when it
is not running and stopped again at the end, or the running one used and left running;
Slurm commands with a bound on their time; waiting for a condition.

``GPUHUB_TEST_NO_SLURM=1`` skips those tests (``skip_without_slurm``); a missing Slurm
installation fails them with what to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.hub import pauses
from tests.support.paths import REPO

NO_SLURM = os.environ.get("GPUHUB_TEST_NO_SLURM") == "1"
HINT = (
    "Run `scripts/setup test` (it installs Debian's slurmctld, slurmd, slurm-client and "
    "munge) or set GPUHUB_TEST_NO_SLURM=1 to leave the Slurm tests out."
)
SCRIPT = REPO / "scripts" / "slurm"
#: Job names and drain reasons of the tests start with this, so leftovers can be found.
PREFIX = "gpuhub-test"

T = TypeVar("T")


def skip_without_slurm() -> None:
    """Skip the calling test or fixture when ``GPUHUB_TEST_NO_SLURM=1``."""
    if NO_SLURM:
        pytest.skip("GPUHUB_TEST_NO_SLURM=1: the Slurm tests are off")


def _installed() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    wanted = {
        "slurmctld": "slurmctld",
        "slurmd": "slurmd",
        "sinfo": "slurm-client",
        "munged": "munge",
    }
    return [pkg for cmd, pkg in wanted.items() if not shutil.which(cmd, path=path)]


def slurm(*argv: str, timeout: float = 20) -> str:
    """Run a Slurm command (``SLURM_CONF`` from the environment); its output, or the test
    fails with what it printed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(argv)}` did not finish within {timeout} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def submitted(prefix: str) -> list[str]:
    """Ids of the Slurm jobs whose name starts with ``prefix`` that Slurm still knows (ended
    ones too, for MinJobAge), in the order they were submitted."""
    out = slurm("squeue", "-h", "-t", "all", "-o", "%i %j")
    found = [i for i, _, n in (x.partition(" ") for x in out.splitlines()) if n.startswith(prefix)]
    return sorted(found, key=int)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20) -> T:
    """Poll ``probe`` until it returns something truthy; fail saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    for pause in pauses():
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s", pytrace=False)
        time.sleep(pause)
    raise AssertionError("unreachable")


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, timeout=90, env=env, check=False
    )


@contextmanager
def local_cluster() -> Iterator[Path]:
    """The local cluster's slurm.conf, with ``SLURM_CONF`` set for this process; stops the
    cluster at the end if it was not running before."""
    skip_without_slurm()
    missing = _installed()
    if missing:
        pytest.fail(
            f"Slurm is not installed here (missing: {', '.join(missing)}). {HINT}", pytrace=False
        )
    env = dict(os.environ)
    was_running = _script("status", env).returncode == 0
    started = _script("start", env)
    if started.returncode != 0:
        pytest.fail(
            f"`scripts/slurm start` failed:\n{started.stderr.strip()}\n{HINT}", pytrace=False
        )
    conf = started.stdout.strip().rpartition("export SLURM_CONF=")[2]
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        clean_up()
        yield Path(conf)
    finally:
        try:
            clean_up()
        finally:
            if not was_running:
                _script("stop", env)
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old


def clean_up() -> None:
    """Cancel the tests' jobs and resume the nodes the tests drained (by ``PREFIX``)."""
    for line in slurm("squeue", "-h", "-o", "%i %j").splitlines():
        job_id, _, name = line.partition(" ")
        if name.startswith(PREFIX):
            slurm("scancel", job_id)
    for line in slurm("sinfo", "-h", "-N", "-o", "%N|%E").splitlines():
        node, _, reason = line.partition("|")
        if reason.startswith(PREFIX):
            slurm("scontrol", "update", f"nodename={node}", "state=resume")


@contextmanager
def controller_away() -> Iterator[None]:
    """slurmctld stopped for the block (``scripts/slurm stop-ctld``: it saves its state,
    the nodes and their jobs go on), then started again with that state (``start``)."""
    env = dict(os.environ)
    stopped = _script("stop-ctld", env)
    if stopped.returncode != 0:
        pytest.fail(f"`scripts/slurm stop-ctld` failed:\n{stopped.stderr.strip()}", pytrace=False)
    try:
        yield
    finally:
        started = _script("start", env)
        if started.returncode != 0:
            pytest.fail(f"`scripts/slurm start` failed:\n{started.stderr.strip()}", pytrace=False)


@contextmanager
def node_down(node: str, why: str) -> Iterator[str]:
    """``node`` set DOWN for the block, with the reason ``gpuhub-test <why>`` (yielded):
    Slurm ends its jobs ``NODE_FAIL``. At the end it is resumed and waited for until it
    takes work again (``clean_up`` resumes it too, should a test stop half-way)."""
    reason = f"{PREFIX} {why}"
    slurm("scontrol", "update", f"nodename={node}", "state=down", f"reason={reason}")
    try:
        yield reason
    finally:
        if "down" in slurm("sinfo", "-h", "-n", node, "-o", "%t"):
            slurm("scontrol", "update", f"nodename={node}", "state=resume")

        def takes_work() -> bool:
            state = slurm("sinfo", "-h", "-n", node, "-o", "%t").strip()
            return state.startswith(("idle", "mix", "alloc")) and state[-1].isalpha()

        wait_for(f"node {node} taking work again", takes_work, 30)
