"""One background sampler per server, shared by every client.

The sampler reads the lease's devices every ``interval`` seconds in a worker thread
(never on the event loop) and keeps the last ``history_s`` seconds of samples per device in
a ring buffer. Requests only read what it holds, so a slow or hung NVML call never blocks
one: while a read is outstanding no other is started, and the answer carries an
``error`` next to the last good samples. Every ``report_interval`` seconds it sends a
summary of the window to the gpuhub service (``POST /leases/{id}/activity``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from gpuhub.client import GpuhubError

from .readers import Reader, Reading

#: A report: ``(lease id, body)`` -> awaitable; raises on failure.
Send = Callable[[int, dict[str, Any]], Awaitable[Any]]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _in_thread(call: Callable[[], Any]) -> Future[Any]:
    """Run ``call`` in a daemon thread of its own: a driver call that never returns can
    hold neither the event loop nor the server's exit (executor threads are joined at
    exit). The sampler runs at most one at a time."""
    future: Future[Any] = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call())
        except BaseException as e:  # noqa: BLE001 - handed to the waiting coroutine
            future.set_exception(e)

    threading.Thread(target=work, name="gpuhub-sampler", daemon=True).start()
    return future


class Sampler:
    """Samples ``reader``'s devices on the running event loop until :meth:`stop`."""

    def __init__(
        self,
        reader: Reader,
        *,
        interval: float,
        history_s: float = 600.0,
        read_timeout: float = 5.0,
        lease_id: int | None = None,
        send: Send | None = None,
        report_interval: float = 30.0,
        activity_threshold_pct: float = 5.0,
        log: logging.Logger | None = None,
        notebook: Callable[[], dict[str, int | None]] | None = None,
    ) -> None:
        self.reader = reader
        self.interval = interval
        self.history_s = history_s
        self.read_timeout = read_timeout
        self.lease_id = lease_id
        self.send = send
        self.report_interval = report_interval
        self.activity_threshold_pct = activity_threshold_pct
        self.log = log or logging.getLogger(__name__)
        self.notebook = notebook  # busy kernels and open terminals, for the report
        size = math.ceil(history_s / interval) + 1
        self.history: dict[str, deque[dict[str, Any]]] = {
            d.uuid: deque(maxlen=size) for d in reader.devices
        }
        self.error: str | None = None
        self.reads = 0  # reads started, for the metrics
        self.last_active_at: float | None = None
        self.last_report: dict[str, Any] | None = None
        self._pending: Future[Reading] | None = None
        self._pending_since = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the sampling task runs."""
        return any(not t.done() for t in self._tasks)

    def start(self) -> None:
        """Start sampling (and reporting, when ``send`` is given) on the running loop."""
        if self.running:
            return
        self._tasks = [asyncio.ensure_future(self._sample_forever())]
        if self.send is not None and self.lease_id is not None:
            self._tasks.append(asyncio.ensure_future(self._report_forever()))

    async def stop(self) -> None:
        """Stop the tasks and release the reader; a hung read is left to its thread."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass  # what cancel() asked for
        self._tasks = []
        if self._pending is None or self._pending.done():
            self._pending = _in_thread(self.reader.close)

    # -- sampling ------------------------------------------------------------------------

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.sample_once()
            except Exception:  # a bug in one read must not end the sampling
                self.log.exception("gpuhub sampler: read failed")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def sample_once(self) -> None:
        """Read every device once (in the worker thread) and keep what came back."""
        if self._pending is not None and not self._pending.done():
            waited = time.monotonic() - self._pending_since
            self.error = (
                f"The GPU driver has not answered for {waited:.0f} s; these are the last samples."
            )
            return
        self.reads += 1
        self._pending = _in_thread(self.reader.read)
        self._pending_since = time.monotonic()
        try:
            reading = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(self._pending)), self.read_timeout
            )
        except TimeoutError:
            self.error = (
                f"The GPU driver did not answer within {self.read_timeout:g} s; "
                "these are the last samples."
            )
            return
        self.keep(reading)

    def keep(self, reading: Reading) -> None:
        """Add a reading's samples to the ring buffers; note its errors."""
        self.error = "; ".join(reading.errors) or None
        for uuid, sample in reading.samples.items():
            ring = self.history.get(uuid)
            if ring is None:
                continue
            ring.append(sample)
            while ring and ring[0]["t"] < sample["t"] - self.history_s:
                ring.popleft()
            if self._active(sample):
                self.last_active_at = max(self.last_active_at or 0.0, sample["t"])

    def _active(self, sample: dict[str, Any]) -> bool:
        """Busy above the threshold; a slice without utilization: any process on it."""
        util = sample["utilization_pct"]
        if util is None:
            return bool(sample["processes"])
        return util >= self.activity_threshold_pct

    # -- what the handlers read ----------------------------------------------------------

    def latest(self, uuid: str) -> dict[str, Any] | None:
        """The device's newest sample, or None before the first."""
        ring = self.history.get(uuid)
        return ring[-1] if ring else None

    def since(self, uuid: str, since: float | None = None) -> list[dict[str, Any]]:
        """The device's samples, oldest first (only those newer than ``since``)."""
        ring = self.history.get(uuid, ())
        return [s for s in ring if since is None or s["t"] > since]

    # -- activity reports ----------------------------------------------------------------

    def summary(self, window_s: float, now: float | None = None) -> dict[str, Any] | None:
        """The activity report of the last ``window_s`` seconds (None without samples)."""
        now = time.time() if now is None else now
        devices, means, maxes, first = [], [], [], now
        for device in self.reader.devices:
            window = [s for s in self.since(device.uuid) if s["t"] > now - window_s]
            if not window:
                continue
            first = min(first, window[0]["t"])
            utils = [s["utilization_pct"] for s in window if s["utilization_pct"] is not None]
            mean, peak = _mean(utils), (max(utils) if utils else None)
            if mean is not None:
                means.append(mean)
                maxes.append(peak)
            devices.append(
                {
                    "uuid": device.uuid,
                    "utilization_mean_pct": round(mean, 2) if mean is not None else None,
                    "utilization_max_pct": peak,
                    "memory_used_mb": round(window[-1]["memory_used_mb"], 1),
                }
            )
        if not devices:
            return None
        mean = _mean(means)
        last = self.last_active_at
        return {
            "window_s": round(min(3600.0, max(1.0, now - first, self.interval)), 1),
            "utilization_mean_pct": round(mean, 2) if mean is not None else None,
            "utilization_max_pct": max(maxes) if maxes else None,
            "memory_used_mb": round(sum(d["memory_used_mb"] for d in devices), 1),
            "last_active_at": (
                dt.datetime.fromtimestamp(last, dt.UTC).isoformat() if last is not None else None
            ),
            "devices": devices[:64],
            **self._notebook_counts(),
        }

    def _notebook_counts(self) -> dict[str, int | None]:
        """``busy_kernels`` and ``terminals`` of the server: idle reclaim counts them as
        activity. Nothing (unknown) when they cannot be counted."""
        if self.notebook is None:
            return {}
        try:
            return self.notebook()
        except Exception as e:  # noqa: BLE001 - a report without them beats no report
            self.log.warning("gpuhub: cannot count kernels and terminals: %s", e)
            return {}

    async def report_once(self) -> bool:
        """Send the window's summary; failures are logged (True when it was sent)."""
        assert self.send is not None and self.lease_id is not None
        body = self.summary(self.report_interval)
        if body is None:
            return False
        try:
            await self.send(self.lease_id, body)
        except (GpuhubError, RuntimeError, OSError) as e:  # log it, try again next interval
            self.log.warning("gpuhub: activity report for lease %s failed: %s", self.lease_id, e)
            return False
        self.last_report = body
        return True

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            await self.report_once()
