"""The extension's REST routes under ``gpuhub/api/v1/``.

Every handler is a jupyter-server ``APIHandler`` (authenticated like the rest of the
server) and reaches the server's :class:`~.services.GpuhubServices` through
:class:`GpuhubHandlerMixin`. Errors are JSON with a ``message`` sentence.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gpuhub.client import GpuhubError
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .services import GpuhubServices

#: The routes' namespace below the server's base_url.
API_PREFIX = "gpuhub/api/v1"


class GpuhubHandlerMixin:
    """Gives a handler the server's :class:`GpuhubServices` as ``self.gpuhub``."""

    settings: dict[str, Any]

    @property
    def gpuhub(self) -> GpuhubServices:
        """The server's one set of gpuhub services."""
        return self.settings["jupyter_gpuhub"]


class GpuhubAPIHandler(GpuhubHandlerMixin, APIHandler):
    """The base of the routes: JSON answers, JSON errors.

    Polling these routes is not activity of the user: it does not move the server's
    ``last_activity``, so an open GPU panel does not keep an idle server from being culled.
    """

    _track_activity = False

    def write_json(self, body: Any, status: int = 200) -> None:
        """Answer ``body`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(body))


class DevicesHandler(GpuhubAPIHandler):
    """``GET devices``: the lease's devices, their latest samples and history; ``no_gpu``
    is true for a server whose profile has no GPU (CPU only), with ``profile`` naming it."""

    @web.authenticated
    def get(self) -> None:
        since_arg = self.get_query_argument("since", None)
        since = None
        if since_arg is not None:
            try:
                since = float(since_arg)
            except ValueError:
                since = math.nan
            if not math.isfinite(since):
                raise web.HTTPError(400, "since must be a number of seconds since the epoch.")
        services = self.gpuhub
        sampler = services.sampler
        devices = []
        if sampler is not None:
            for device in sampler.reader.devices:
                devices.append(
                    {
                        **device.to_json(),
                        "latest": sampler.latest(device.uuid),
                        "history": sampler.since(device.uuid, since),
                    }
                )
        error = sampler.error if sampler is not None else services.error
        self.write_json(
            {
                "lease_id": services.lease_id,
                "no_gpu": services.no_gpu,
                "profile": services.profile,
                "simulated": sampler.reader.simulated
                if sampler is not None
                else services.simulated,
                "interval_s": services.interval,
                "devices": devices,
                "error": error,
            }
        )


class LeaseHandler(GpuhubAPIHandler):
    """``GET lease``: the server's lease as the gpuhub service answers it."""

    @web.authenticated
    async def get(self) -> None:
        if self.gpuhub.lease_id is None:
            self.write_json({"lease": None, "message": self.gpuhub.no_lease_message})
            return
        try:
            lease = await self.gpuhub.lease()
        except (GpuhubError, RuntimeError) as e:
            self.write_json({"message": f"The gpuhub service did not answer: {e}"}, 502)
            return
        self.write_json({"lease": lease, "message": None})


class KeepHandler(GpuhubAPIHandler):
    """``POST lease/keep`` ``{"seconds": 3600}``: keep this server from GPU-idle reclaim.

    Proxied to the gpuhub service's ``POST /leases/{id}/keep`` with the server's token; a
    refusal comes back with the service's status and sentence.
    """

    _track_activity = True  # a person clicked "Keep": that is activity

    @web.authenticated
    async def post(self) -> None:
        if self.gpuhub.lease_id is None:
            self.write_json({"message": self.gpuhub.no_lease_message}, 409)
            return
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 604800:
            self.write_json(
                {"message": 'The body must be {"seconds": N}, N a whole number of seconds.'}, 400
            )
            return
        try:
            lease = await self.gpuhub.keep(seconds)
        except GpuhubError as e:
            status = e.status if e.status is not None and 400 <= e.status < 500 else 502
            self.write_json({"message": f"The gpuhub service refused: {e}"}, status)
            return
        except RuntimeError as e:
            self.write_json({"message": f"The gpuhub service did not answer: {e}"}, 502)
            return
        self.write_json({"lease": lease, "message": None})


class MeHandler(GpuhubAPIHandler):
    """``GET me``: the gpuhub service's ``/me`` (quota, usage, leases) for this user."""

    @web.authenticated
    async def get(self) -> None:
        try:
            me = await self.gpuhub.me()
        except (GpuhubError, RuntimeError) as e:
            self.write_json({"message": f"The gpuhub service did not answer: {e}"}, 502)
            return
        self.write_json(me)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


#: (metric, sample field, help) of the per-device gauges.
GAUGES = (
    (
        "utilization_pct",
        "utilization_pct",
        "GPU utilization in percent (scope lease: this server's processes; absent: n/a).",
    ),
    (
        "memory_used_mb",
        "memory_used_mb",
        "GPU memory used in MiB (scope lease: by this server's processes).",
    ),
    ("memory_total_mb", "memory_total_mb", "GPU memory in MiB."),
    ("temperature_c", "temperature_c", "GPU temperature in degrees Celsius."),
    ("power_w", "power_w", "GPU power draw in watts."),
    ("power_limit_w", "power_limit_w", "GPU power limit in watts."),
    ("sm_clock_mhz", "sm_clock_mhz", "SM clock in MHz."),
)


def metrics_text(services: GpuhubServices) -> str:
    """The Prometheus text exposition of this server's devices."""
    sampler = services.sampler
    lines = []
    for metric, key, help_text in GAUGES:
        name = f"gpuhub_server_device_{metric}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for device in sampler.reader.devices if sampler is not None else ():
            sample = sampler.latest(device.uuid)
            if sample is None or sample[key] is None:
                continue
            labels = (
                f'uuid="{_label(device.uuid)}",index="{device.index}",name="{_label(device.name)}",'
                f'kind="{device.kind}",simulated="{str(device.simulated).lower()}",'
                f'scope="{device.scope}"'
            )
            lines.append(f"{name}{{{labels}}} {float(sample[key]):g}")
    name = "gpuhub_server_sampler_reads_total"
    lines += [
        f"# HELP {name} Device reads the sampler started.",
        f"# TYPE {name} counter",
        f"{name} {sampler.reads if sampler is not None else 0}",
    ]
    name = "gpuhub_server_sampler_error"
    lines += [
        f"# HELP {name} 1 while the last read failed, else 0.",
        f"# TYPE {name} gauge",
        f"{name} {1 if sampler is not None and sampler.error else 0}",
    ]
    return "\n".join(lines) + "\n"


class MetricsHandler(GpuhubAPIHandler):
    """``GET metrics``: Prometheus text of this server's devices."""

    @web.authenticated
    def get(self) -> None:
        self.finish(
            metrics_text(self.gpuhub), set_content_type="text/plain; version=0.0.4; charset=utf-8"
        )


#: (path below the namespace, handler) of every route.
ROUTES = (
    ("devices", DevicesHandler),
    ("lease", LeaseHandler),
    ("lease/keep", KeepHandler),
    ("me", MeHandler),
    ("metrics", MetricsHandler),
)
