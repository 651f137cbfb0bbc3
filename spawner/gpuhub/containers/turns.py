"""Boot turns: at most so many containers boot at once, the others wait their turn.

Starting JupyterLab is CPU-bound: thirty servers started together on two cores all
become ready late together, while taken in turns most are ready much sooner and the last
no later. The engine (:class:`gpuhub.containers.engine.Engine`) holds one
:class:`BootTurns` per event loop; the Docker spawner takes a turn before it starts a
container and gives it back when the server answers HTTP (or the boot fails).
"""

from __future__ import annotations

import asyncio
from collections import deque


class BootTurns:
    """At most ``limit`` boots at once; the others wait for a turn, first come first served.

    One per engine and event loop (:meth:`gpuhub.containers.engine.Engine.boot_turns`).
    ``limit`` 0 means no limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.booting = 0
        self._waiting: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        """How many boots wait for a turn."""
        return len(self._waiting)

    def free(self) -> bool:
        """Whether a boot asking now would start at once."""
        return not self.limit or (self.booting < self.limit and not self._waiting)

    async def acquire(self) -> None:
        """Wait for a turn to boot; it is held until :meth:`release`."""
        if self.free():
            self.booting += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn came just as the wait was cancelled: pass it on
            else:
                self._waiting.remove(turn)
            raise

    def release(self) -> None:
        """End a boot: its turn goes to the longest-waiting boot, if any."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the turn passes on; ``booting`` stays
                return
        self.booting -= 1
