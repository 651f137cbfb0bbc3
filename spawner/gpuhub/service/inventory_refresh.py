"""The pool follows its inventory: every ``GpuhubService.inventory_refresh_interval``
seconds the service reads its inventory source again and hands the picture to the
scheduler.

Reading runs commands (``scontrol`` for Slurm), so it runs in a worker thread; the
scheduler takes the picture on the event loop, its one thread
(:meth:`Scheduler.refresh_inventory <gpuhub.scheduler.core.Scheduler.refresh_inventory>`),
and logs what changed there, once per change. A read that fails (Slurm's controller does
not answer, any exception) is logged as one warning and changes nothing: the pool keeps
the last picture it had, never "no nodes".
"""

from __future__ import annotations

import logging
import time

from tornado.ioloop import IOLoop, PeriodicCallback

from ..inventory import InventorySource, Node
from ..scheduler.core import Scheduler
from ..scheduler.inventory_change import InventoryChange

log = logging.getLogger("gpuhub.service")


class InventoryRefresher:
    """Reads ``source`` (nodes, then the devices held outside gpuhub) every ``interval``
    seconds in a worker thread and applies it with ``scheduler.refresh_inventory``."""

    def __init__(self, source: InventorySource, scheduler: Scheduler, interval: float) -> None:
        self.source = source
        self.scheduler = scheduler
        self.interval = interval
        #: When the last read succeeded (``time.time()``), for the warning of a failing one.
        self.last_read: float = time.time()
        self._failing = False
        self._callback: PeriodicCallback | None = None

    def start(self) -> None:
        """Refresh every :attr:`interval` seconds on the running loop (never when it is 0)."""
        if self.interval > 0:
            self._callback = PeriodicCallback(self.refresh, self.interval * 1000)
            self._callback.start()

    def stop(self) -> None:
        """Refresh no more."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def read(self) -> tuple[list[Node], dict[str, str]]:
        """The source's nodes and the devices held outside gpuhub (blocking: run it in a
        worker thread)."""
        return self.source.nodes(), self.source.held_outside()

    async def refresh(self) -> InventoryChange | None:
        """Read the source in a worker thread, then apply what it says on the loop.
        Returns what changed; None when nothing did, or when the read failed."""
        try:
            nodes, held_outside = await IOLoop.current().run_in_executor(None, self.read)
        except Exception as e:  # noqa: BLE001 - whatever the source raises: keep the last picture
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.last_read))
            log.warning(
                "reading the inventory (%s) failed, so the pool stays as read at %s: %s",
                type(self.source).__name__, since, e,
            )  # fmt: skip
            self._failing = True
            return None
        self.last_read = time.time()
        if self._failing:
            log.info("the inventory (%s) answers again", type(self.source).__name__)
            self._failing = False
        try:
            return self.scheduler.refresh_inventory(nodes, held_outside)
        except Exception:  # the scheduler reloaded from its database; try again next time
            log.exception("applying the inventory to the pool failed")
            return None
