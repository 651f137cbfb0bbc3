"""The ``jupyter_gpuhub`` extension app: configuration, services and routes."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from traitlets import Float, TraitError, validate

from .handlers import API_PREFIX, ROUTES
from .jobs import JOB_ROUTES
from .services import from_environment, notebook_counts

#: NVML refreshes utilization no faster than this; a shorter interval is refused.
MIN_INTERVAL_S = 0.1
#: Seconds the server's shutdown waits for the sampler to stop.
STOP_TIMEOUT_S = 10.0


class GpuhubExtension(ExtensionApp):
    """Shows a user's server its own GPUs: one sampler per server, REST routes, activity reports.

    The lease and the service come from the environment the gpuhub spawners set
    (``GPUHUB_LEASE_ID``, ``CUDA_VISIBLE_DEVICES``, ``GPUHUB_SERVICE_URL``,
    ``GPUHUB_SIMULATED``, ``GPUHUB_PROFILE``, and ``GPUHUB_NO_GPU`` on a server of a
    CPU-only profile); the only credential used is the server's own
    ``JUPYTERHUB_API_TOKEN``.
    """

    name = "jupyter_gpuhub"
    load_other_extensions = True

    interval = Float(
        1.0,
        config=True,
        help=f"""Seconds between two samples of the lease's devices (at least
        {MIN_INTERVAL_S}, as often as NVML refreshes utilization). One sampler serves every
        client of the server.""",
    )

    report_interval = Float(
        30.0,
        config=True,
        help="""Seconds between two activity reports of the lease to the gpuhub service
        (mean and max utilization over the window, memory used, last activity).""",
    )

    read_timeout = Float(
        5.0,
        config=True,
        help="""Seconds a device read may take before the answers say the driver does not
        answer (they keep showing the last samples meanwhile).""",
    )

    activity_threshold_pct = Float(
        5.0,
        config=True,
        help="""Utilization (percent) at or above which a device counts as active for the
        report's ``last_active_at``. A MIG slice without utilization is active while a
        process runs on it.""",
    )

    @validate("interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        value = proposal["value"]
        if not value >= MIN_INTERVAL_S:
            raise TraitError(f"interval must be at least {MIN_INTERVAL_S} s, not {value}")
        return value

    @validate("report_interval")
    def _valid_report_interval(self, proposal: dict[str, Any]) -> float:
        value = proposal["value"]
        if not 1 <= value <= 3600:
            raise TraitError(f"report_interval must be between 1 and 3600 s, not {value}")
        return value

    @validate("read_timeout")
    def _valid_read_timeout(self, proposal: dict[str, Any]) -> float:
        value = proposal["value"]
        if not value > 0:
            raise TraitError(f"read_timeout must be positive, not {value}")
        return value

    def initialize_settings(self) -> None:
        """Create the server's services and start its sampler on the server's loop."""
        services = from_environment(
            interval=self.interval,
            report_interval=self.report_interval,
            read_timeout=self.read_timeout,
            activity_threshold_pct=self.activity_threshold_pct,
            log=self.log,
        )
        self.settings["jupyter_gpuhub"] = services
        web_settings = self.serverapp.web_app.settings
        services.notebook = lambda: notebook_counts(
            getattr(self.serverapp, "kernel_manager", None), web_settings.get("terminal_manager")
        )
        # the server's loop, made before extensions load for background tasks like this one
        io_loop = getattr(self.serverapp, "io_loop", None) or IOLoop.current()
        io_loop.add_callback(services.start)
        if services.lease_id is None:
            self.log.info("jupyter_gpuhub: %s", services.no_lease_message)

    def initialize_handlers(self) -> None:
        """The routes under ``gpuhub/api/v1/`` (jupyter-server prefixes its base_url)."""
        for path, handler in (*ROUTES, *JOB_ROUTES):
            self.handlers.append((url_path_join("/", API_PREFIX, path), handler))

    async def stop_extension(self) -> None:
        """Stop the sampler when the server stops; a stop that hangs (a device or the
        service not answering) never holds the server's shutdown for more than 10 s."""
        services = self.settings.get("jupyter_gpuhub")
        if services is not None:
            try:
                await asyncio.wait_for(services.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.log.warning(
                    "jupyter_gpuhub: the GPU sampler did not stop within %s s", STOP_TIMEOUT_S
                )
