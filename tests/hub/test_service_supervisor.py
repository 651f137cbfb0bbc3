"""The supervisor that starts the gpuhub service again at once when it dies.

Unit tests run the supervisor as its own process around small Python commands; the last
test kills the real service under a real hub and sees the supervisor, not JupyterHub's
30-second poll, bring it back.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gpuhub.service.supervisor import Supervisor

from tests.support import http
from tests.support.hub import Hub, descendants, wait_for

pytestmark = pytest.mark.timeout(120)

SUPERVISOR = [sys.executable, "-m", "gpuhub.service.supervisor"]

# a "service" that counts its starts in a file, dies with status 3 twice, then runs until
# a signal arrives
FLAKY = """
import pathlib, sys, time
p = pathlib.Path(sys.argv[1])
n = int(p.read_text() or 0) + 1 if p.exists() else 1
p.write_text(str(n))
if n <= 2:
    sys.exit(3)
time.sleep(120)
"""


def children(pid: int) -> list[int]:
    """Pids of the processes ``pid`` started."""
    return [p for p, _ in descendants(pid)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_a_service_that_dies_is_started_again_and_signals_are_passed_on(tmp_path):
    counter = tmp_path / "starts"
    proc = subprocess.Popen(
        [*SUPERVISOR, "--", sys.executable, "-c", FLAKY, str(counter)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: counter.exists() and counter.read_text() == "3", 20, 0.05)
        child = wait_for(lambda: children(proc.pid))[0]
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(20)
    finally:
        proc.kill()
    log = proc.stderr.read()
    assert log.count("exited with status 3") == 2, log
    assert "starting it again in 0.25 s" in log and "starting it again in 0.50 s" in log, log
    # the supervisor exits as its service did: killed by SIGTERM
    assert status == 128 + signal.SIGTERM
    assert not alive(child)
    assert counter.read_text() == "3"  # not started again after the stop


def test_a_killed_supervisor_takes_its_service_with_it(tmp_path):
    counter = tmp_path / "starts"
    counter.write_text("5")  # past the failures: the service just runs
    proc = subprocess.Popen(
        [*SUPERVISOR, "--", sys.executable, "-c", FLAKY, str(counter)], stderr=subprocess.DEVNULL
    )
    try:
        child = wait_for(lambda: children(proc.pid))[0]
        wait_for(lambda: counter.read_text() == "6")
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not alive(child))  # PR_SET_PDEATHSIG: it does not hold the port
    finally:
        proc.kill()


def test_the_delay_grows_while_the_service_keeps_dying_and_resets_after_a_stable_run(caplog):
    now = [0.0]
    runs = iter([1.0, 1.0, 1.0, 100.0, 1.0])  # how long each start lives

    class Clocked(Supervisor):
        def _wait(self) -> int:
            self.proc.wait()
            now[0] += next(runs, 0.0)
            if self.restarts >= 4:
                self.stopping = signal.SIGTERM
            return 1

    sup = Clocked(
        [sys.executable, "-c", "pass"],
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        stable_after=60,
    )
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with caplog.at_level(logging.INFO, "gpuhub.supervisor"):
            assert sup.run() == 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    delays = [r.args[-1] for r in caplog.records if "starting it again" in r.getMessage()]
    # 0.25, 0.5, 1 while it dies within a second; a 100 s run starts over at 0.25
    assert delays == [0.25, 0.5, 1.0, 0.25]


def test_supervisor_needs_a_command():
    r = subprocess.run([*SUPERVISOR, "--"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "give the service command after --" in r.stderr


@pytest.mark.hub
def test_the_hub_service_comes_back_without_waiting_for_jupyterhubs_poll(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        supervisor, service = hub.service_pids()
        assert supervisor and service
        hub.kill_service()
        # the supervisor starts a new service process; JupyterHub is not involved
        new = wait_for(lambda: (p := hub.service_pids()[1]) not in (None, service) and p, 60)
        wait_for(lambda: http.get(hub.api, timeout=2).status_code == 200, 60, 0.1)
        assert hub.service_pids() == (supervisor, new)
        log = hub.log_tail(200)
        assert f"the gpuhub service (pid {service}) exited with status -9" in log
        assert "Service gpuhub exited" not in log
    finally:
        hub.stop()
