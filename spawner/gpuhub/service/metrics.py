"""Prometheus metrics of the pool, read from the scheduler at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..scheduler.core import Scheduler


class SchedulerCollector(Collector):
    """Devices by model and state, queue length, units in use, GPU-hours booked."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator:
        """Yield the metric families (called by the registry on each scrape)."""
        s = self.scheduler
        devices = GaugeMetricFamily(
            "gpuhub_devices",
            "GPUs by model, grant mode and state (free, partial, busy)",
            labels=["model", "mode", "state", "simulated"],
        )
        counts: Counter = Counter()
        for ns in s.pool.nodes.values():
            for gs in ns.gpus.values():
                g = gs.gpu
                counts[(g.model, g.mode, gs.state, str(g.simulated).lower())] += 1
        for labels, n in sorted(counts.items()):
            devices.add_metric(list(labels), n)
        yield devices

        queue = s.queue()
        yield GaugeMetricFamily(
            "gpuhub_queue_length", "Requests waiting for GPUs", value=len(queue)
        )
        active = [x for x in s.live.values() if x.status == "active"]
        yield GaugeMetricFamily("gpuhub_leases_active", "Active leases", value=len(active))
        cap = s.pool.capacity()
        yield GaugeMetricFamily(
            "gpuhub_units_total", "GPU units in the pool", value=float(cap["total"])
        )
        yield GaugeMetricFamily(
            "gpuhub_units_in_use",
            "GPU units held by active leases",
            value=float(cap["total"] - cap["free"]),
        )
        hours = CounterMetricFamily(
            "gpuhub_gpu_hours", "GPU-hours booked to the ledger (ended and running leases)"
        )
        hours.add_metric([], s.total_gpu_hours())
        yield hours
