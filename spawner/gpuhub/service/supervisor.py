"""Restart the gpuhub service at once when it exits, instead of at JupyterHub's next poll.

JupyterHub restarts a managed service that died only when its 30-second poll notices,
and every request meanwhile gets 503 from the proxy. The hub therefore runs::

    python -m gpuhub.service.supervisor -- python -m gpuhub.service --config FILE

This small parent process starts the service, and when the service exits on its own
(a crash, the kernel's OOM killer) starts it again after a short, growing delay: 0.25 s
at first, doubling while it keeps dying within ``stable_after`` (10) seconds of starting
(a crash loop, say a bad configuration), at most ``max_delay``; a service that ran longer
is started again after 0.25 s. SIGTERM and SIGINT (JupyterHub stopping the service) are passed on
and the supervisor exits with the service's status. The service dies with the supervisor
(Linux ``PR_SET_PDEATHSIG``), so a killed supervisor never leaves it holding the port;
JupyterHub's own poll then restarts both.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("gpuhub.supervisor")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: JupyterHub's poll still restarts the pair


class Supervisor:
    """Runs ``command`` and starts it again whenever it exits by itself."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        first_delay: float = 0.25,
        max_delay: float = 30.0,
        stable_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not command:
            raise ValueError("no command to supervise")
        self.command = list(command)
        self.first_delay, self.max_delay, self.stable_after = first_delay, max_delay, stable_after
        self.clock, self.sleep = clock, sleep
        self.proc: subprocess.Popen | None = None
        self.stopping: int | None = None  # the signal that asked us to stop
        self.restarts = 0

    def _signal(self, signum: int, _frame) -> None:
        self.stopping = signum
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def run(self) -> int:
        """Supervise until stopped by a signal; the service's last exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._signal)
        delay = self.first_delay
        while True:
            started = self.clock()
            self.proc = subprocess.Popen(self.command, preexec_fn=_die_with_parent)
            log.info("started the gpuhub service (pid %s)", self.proc.pid)
            status = self._wait()
            if self.stopping is not None:
                return status if status >= 0 else 128 - status
            ran = self.clock() - started
            delay = self.first_delay if ran >= self.stable_after else delay
            log.error(
                "the gpuhub service (pid %s) exited with status %s after %.1f s; "
                "starting it again in %.2f s",
                self.proc.pid, status, ran, delay,
            )  # fmt: skip
            self._pause(delay)
            if self.stopping is not None:
                return status if status >= 0 else 128 - status
            self.restarts += 1
            delay = min(delay * 2, self.max_delay)

    def _wait(self) -> int:
        assert self.proc is not None
        while True:
            try:
                return self.proc.wait()
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue

    def _pause(self, seconds: float) -> None:
        end = self.clock() + seconds
        while self.stopping is None and (left := end - self.clock()) > 0:
            self.sleep(min(left, 0.1))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gpuhub.service.supervisor [options] -- COMMAND...``."""
    parser = argparse.ArgumentParser(
        prog="python -m gpuhub.service.supervisor",
        description="Run the gpuhub service and start it again at once when it exits.",
    )
    parser.add_argument("--max-delay", type=float, default=30.0, help="longest pause (s)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the service command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the service command after --")
    logging.basicConfig(
        level=logging.INFO,
        format="[%(levelname).1s %(asctime)s.%(msecs).03d %(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    return Supervisor(command, max_delay=args.max_delay).run()


if __name__ == "__main__":
    sys.exit(main())
