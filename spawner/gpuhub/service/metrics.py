"""Prometheus metrics of the pool, from the scheduler's read API, served at ``GET /metrics``.

A scrape takes the pool's numbers on the event loop (the scheduler's thread) with
:meth:`SchedulerCollector.refresh`, and the ledger's GPU-hour total in a worker thread, so
that neither a slow database read blocks grants nor another thread walks the scheduler's
state. :meth:`~SchedulerCollector.collect` then only reads that snapshot.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..scheduler.activity import Activity
from ..scheduler.core import Scheduler
from ..terms import ACTIVE
from .base import BaseHandler


@dataclass(frozen=True)
class PoolNumbers:
    """What one scrape reports, taken at one moment."""

    devices: dict[tuple[str, str, str, str], int]  # (model, mode, state, simulated) -> GPUs
    queue_length: int
    leases_active: int
    units_total: float
    units_in_use: float
    gpu_hours: float
    activities: tuple[Activity, ...] = ()
    now: float = 0.0


class SchedulerCollector(Collector):
    """Devices by model and state, queue length, units in use, GPU-hours booked."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.view = scheduler.view  # the read API: metrics only read
        self.numbers: PoolNumbers | None = None

    async def refresh(self) -> None:
        """Take the numbers for the next :meth:`collect`; call on the scheduler's loop."""
        s = self.view
        view = s.pool_view()
        devices: Counter = Counter()
        for node in view.nodes:
            for g in node.gpus:
                devices[(g.gpu.model, g.gpu.mode, g.state, str(g.gpu.simulated).lower())] += 1
        queue_length = s.queue_length()
        active = len(s.live_leases(ACTIVE))
        now = s.clock()
        hours = await asyncio.to_thread(s.ledger.total_gpu_hours, now)
        self.numbers = PoolNumbers(
            devices=dict(devices),
            queue_length=queue_length,
            leases_active=active,
            units_total=float(view.units_total),
            units_in_use=float(view.units_leased),  # not devices held outside or drained
            gpu_hours=hours,
            activities=tuple(s.activities()),
            now=now,
        )

    def collect(self) -> Iterator:
        """Yield the metric families of the last :meth:`refresh` (none before the first)."""
        n = self.numbers
        if n is None:
            return
        devices = GaugeMetricFamily(
            "gpuhub_devices",
            "GPUs by model, grant mode and state (free, partial, busy)",
            labels=["model", "mode", "state", "simulated"],
        )
        for labels, count in sorted(n.devices.items()):
            devices.add_metric(list(labels), count)
        yield devices
        yield GaugeMetricFamily(
            "gpuhub_queue_length", "Requests waiting for GPUs", value=n.queue_length
        )
        yield GaugeMetricFamily("gpuhub_leases_active", "Active leases", value=n.leases_active)
        yield GaugeMetricFamily("gpuhub_units_total", "GPU units in the pool", value=n.units_total)
        yield GaugeMetricFamily(
            "gpuhub_units_in_use", "GPU units held by active leases", value=n.units_in_use
        )
        hours = CounterMetricFamily(
            "gpuhub_gpu_hours", "GPU-hours booked to the ledger (ended and running leases)"
        )
        hours.add_metric([], n.gpu_hours)
        yield hours
        yield from activity_metrics(n.activities, n.now)


#: Labels of the per-device activity metrics. All stay bounded by the pool: ``gpu`` is the
#: physical GPU, ``device`` the GPU or its MIG instance, ``slot`` the seat of a shared GPU
#: (0 otherwise), so each series is one holder's device; no lease ids or user names.
DEVICE_LABELS = ["node", "gpu", "device", "slot"]


def activity_metrics(activities: tuple[Activity, ...], now: float) -> Iterator:
    """Per held device: what the holder's server last reported, and how long it has idled.

    A device whose utilization is not available (a MIG slice without GPM metrics) has no
    utilization sample rather than a 0.
    """
    util = GaugeMetricFamily(
        "gpuhub_device_utilization_pct",
        "Mean GPU utilization (percent) over the last reported window, per held device",
        labels=DEVICE_LABELS,
    )
    memory = GaugeMetricFamily(
        "gpuhub_device_memory_used_mb",
        "GPU memory in use (MB) at the last report, per held device",
        labels=DEVICE_LABELS,
    )
    idle = GaugeMetricFamily(
        "gpuhub_lease_idle_seconds",
        "Seconds since the lease holding the device was last busy (absent: never seen busy)",
        labels=DEVICE_LABELS,
    )
    age = GaugeMetricFamily(
        "gpuhub_activity_report_age_seconds",
        "Seconds since the holder's server last reported the device's activity",
        labels=DEVICE_LABELS,
    )
    for a in activities:
        idle_s = a.idle_s(now)
        for d in a.devices:
            labels = [a.node, d.parent_uuid or d.uuid, d.uuid, str(d.slot)]
            if d.utilization_mean_pct is not None:
                util.add_metric(labels, d.utilization_mean_pct)
            memory.add_metric(labels, d.memory_used_mb)
            if idle_s is not None:
                idle.add_metric(labels, idle_s)
            age.add_metric(labels, max(0.0, now - a.reported_at))
    yield util
    yield memory
    yield idle
    yield age


class MetricsHandler(BaseHandler):
    """``GET /metrics`` in Prometheus text format (admin token unless configured open)."""

    @property
    def requires_auth(self) -> bool:  # type: ignore[override]
        return self.settings["authenticate_metrics"]

    async def get(self) -> None:
        if self.settings["authenticate_metrics"]:
            self.require_admin("reading metrics")
        await self.settings["metrics"].refresh()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.settings["registry"]))
