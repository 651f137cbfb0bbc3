"""The gpuhub service: a JupyterHub-managed tornado application around the scheduler.

JupyterHub starts it (see ``hub_config/jupyterhub_config.py``) with the usual service
environment (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, API token, OAuth
client). It reads the same configuration file as the hub, for its ``GpuhubService``,
inventory and scheduler settings, and the profiles the hub's spawners offer
(:mod:`gpuhub.service.spawn_profiles`). The REST routes are the ``default_handlers`` of
the route modules in :data:`API_MODULES`, one per resource.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import url_path_join
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Instance,
    TraitError,
    Type,
    Unicode,
    default,
    validate,
)
from traitlets.config import Application

from .. import __version__
from ..inventory import InventorySource, NvmlInventory
from ..jobs.executor import JobExecutor
from ..jobs.manager import JobManager
from ..scheduler.core import Scheduler
from ..scheduler.db import open_engine
from ..scheduler.pricing import MAX_RATE, RateCard
from ..scheduler.quota import QuotaSpec
from ..scheduler.spot import SpotPolicy
from . import (
    cohorts,
    jobs,
    keep,
    leases,
    me,
    options,
    pool,
    quotas,
    rates,
    reservations,
    simulate,
    usage,
)
from .base import BaseHandler, NotFoundHandler
from .body import validation_message
from .console import console_routes
from .hub_api import HubApi
from .inventory_refresh import InventoryRefresher
from .metrics import MetricsHandler, SchedulerCollector
from .reclaim import Reclaimer
from .reconcile import reconcile_servers
from .reservations import ReservationTimer, check_time_zone
from .spawn_profiles import hub_profiles

#: Entry point group naming inventory backends ("nvml", "simulated", "files", ...).
INVENTORY_ENTRY_POINTS = "gpuhub.inventories"

#: The route modules of ``api/v1``, each ending in its ``default_handlers`` (paths relative
#: to ``api/v1``). Tornado takes the first route that matches, in this order.
API_MODULES = (
    pool, me, options, leases, keep, quotas, usage, rates, cohorts, reservations, jobs, simulate,
)  # fmt: skip


class GpuhubService(Application):
    """The one writer of leases, quotas, the queue and the ledger, served as REST."""

    name = "gpuhub-service"
    version = __version__
    description = "gpuhub scheduler service (started by JupyterHub)"

    config_file = Unicode(
        "",
        config=True,
        help="Configuration file to load (normally the hub's jupyterhub_config.py).",
    )
    aliases = {"config": "GpuhubService.config_file", "db-url": "GpuhubService.db_url"}

    db_url = Unicode(
        "sqlite:///gpuhub.sqlite",
        config=True,
        help="""Scheduler database (SQLAlchemy URL). SQLite (WAL) by default; for example
        ``postgresql://gpuhub:secret@db/gpuhub`` for PostgreSQL. Migrated at start-up.""",
    )
    inventory_class = EntryPointType(
        NvmlInventory,
        klass=InventorySource,
        entry_point_group=INVENTORY_ENTRY_POINTS,
        config=True,
        # one paragraph without indentation: EntryPointType appends the installed names
        help='Where the GPUs come from: ``"nvml"`` (this machine), ``"simulated"`` '
        '(``SimulatedInventory.spec``) or ``"files"`` (``FileInventory.paths``), another '
        "name registered in the ``gpuhub.inventories`` entry point group, or a class (or "
        'its import string, e.g. ``"mypackage.MyInventory"``).',
    )

    inventory_refresh_interval = Float(
        30,
        config=True,
        help="""Seconds between two reads of the inventory, e.g. ``30``; 0 reads it only at
        start. The pool follows each read: nodes that take no new work (Slurm: drained,
        down) get no new leases, GPUs that work outside gpuhub holds (a Slurm job gpuhub did
        not submit) are never granted, and nodes and GPUs that came or went are taken in. A
        read that fails is logged and the pool keeps its last picture.""",
    )

    @validate("inventory_refresh_interval")
    def _check_inventory_refresh_interval(self, proposal):
        if not 0 <= proposal.value < float("inf"):
            raise TraitError(
                "GpuhubService.inventory_refresh_interval must be seconds >= 0 (0: never), "
                f"not {proposal.value!r}"
            )
        return proposal.value

    default_user_quota = Dict(
        None,
        allow_none=True,
        config=True,
        help="""Quota of users who have none of their own, as in ``PUT /api/v1/quotas/users/NAME``,
        e.g. ``{"max_units": 2, "gpu_hours": 40, "period": "week"}``. Empty or None: unlimited.""",
    )

    @validate("default_user_quota")
    def _check_default_quota(self, proposal):
        if proposal.value:
            try:
                QuotaSpec.model_validate(proposal.value)
            except ValidationError as e:
                _, problem = validation_message(e)
                raise TraitError(f"GpuhubService.default_user_quota: {problem}") from e
        return proposal.value

    rates = Dict(
        value_trait=Float(),
        config=True,
        help="""Credits per GPU-hour of each GPU model, e.g. ``{"H100-80GB": 2.0,
        "A100-80GB": 1.5, "L4": 0.5}``. A key names a model as the inventory does, or a part
        of it ("H100" prices every H100 model; the longest matching key wins). A MIG slice or
        a shared seat costs its share of its GPU. Admins may change a model's rate at run
        time (``PUT /api/v1/rates/MODEL``, ``gpuhub rates set``), which wins over this until
        unset. Each lease keeps the rate it was granted at.""",
    )
    default_rate = Float(
        1.0,
        config=True,
        help="Credits per GPU-hour of models ``rates`` does not name.",
    )

    @validate("rates")
    def _check_rates(self, proposal):
        for model, rate in proposal.value.items():
            if not model or len(model) > 128:
                raise TraitError("GpuhubService.rates: model names are 1-128 characters")
            if not 0 <= rate <= MAX_RATE:
                raise TraitError(
                    f"GpuhubService.rates: the rate of {model} must be 0 to {MAX_RATE:g} "
                    f"credits per GPU-hour, not {rate!r}"
                )
        return proposal.value

    @validate("default_rate")
    def _check_default_rate(self, proposal):
        if not 0 <= proposal.value <= MAX_RATE:
            raise TraitError(
                f"GpuhubService.default_rate must be 0 to {MAX_RATE:g} credits per GPU-hour, "
                f"not {proposal.value!r}"
            )
        return proposal.value

    spot = Dict(
        config=True,
        help="""Spot (preemptible) capacity: ``{"enabled": True}`` offers it, with these keys
        optional: ``discount`` (the share of the rate a spot GPU-hour costs, default 0.3),
        ``grace_s`` (seconds from a preemption notice to the deadline, to checkpoint;
        default 120), ``min_runtime_s`` (a spot lease is never preempted younger; default
        300), ``kill_after_s`` (past the deadline the scheduler releases a lease still held;
        default 60). Jobs ask for it with ``tier: spot``; guaranteed requests that wait take
        the devices back (docs/how-to/spot.md). Empty: not offered.""",
    )

    @validate("spot")
    def _check_spot(self, proposal):
        known = [f.name for f in dataclasses.fields(SpotPolicy)]
        unknown = sorted(set(proposal.value) - set(known))
        if unknown:
            raise TraitError(
                f"GpuhubService.spot: unknown key {unknown[0]!r} (known: {', '.join(known)})"
            )
        try:
            SpotPolicy(**proposal.value)
        except (TypeError, ValueError) as e:
            raise TraitError(f"GpuhubService.spot: {e}") from e
        return proposal.value

    fair_share_half_life_days = Float(
        None,
        allow_none=True,
        config=True,
        help="""Fair share over time: the queue is served by priority, then by the groups'
        (and within a group, the users') GPU-hours decayed with this half-life relative to
        their shares (a group quota's ``fair_share``, else its ``max_units``), then by age.
        Slurm's default half-life is 7 days. None: first come, first served.""",
    )

    @validate("fair_share_half_life_days")
    def _check_half_life(self, proposal):
        v = proposal.value
        if v is not None and not 1 / 1440 <= v <= 366:
            raise TraitError(
                f"GpuhubService.fair_share_half_life_days must be 1 minute to 366 days, not {v!r}"
            )
        return v

    queue_policy = Enum(
        ["best-effort", "strict"],
        default_value="best-effort",
        config=True,
        help="""``best-effort``: a request that fits may pass larger ones that wait (backfill).
        ``strict``: nobody passes an older request of higher or equal priority.""",
    )
    authenticate_metrics = Bool(
        True, config=True, help="Require a gpuhub admin token for /metrics (as JupyterHub does)."
    )
    service_url = Unicode(
        config=True,
        help="URL to listen on. Default: $JUPYTERHUB_SERVICE_URL, else http://127.0.0.1:10101/",
    )
    service_prefix = Unicode(
        config=True, help="URL prefix. Default: $JUPYTERHUB_SERVICE_PREFIX, else /"
    )
    tornado_settings = Dict(config=True, help="Extra tornado application settings.")
    reconcile_interval = Float(
        60,
        config=True,
        help="""Seconds between checks that each lease held for a single-user server (label
        ``server:USER/NAME``) still has that server in JupyterHub; leases of servers that
        are gone are released. 0 turns the check off.""",
    )
    reconcile_grace = Float(
        120,
        config=True,
        help="Leases younger than this many seconds are left alone by the check (a spawn "
        "may still be registering with the hub).",
    )
    reservation_timezone = Unicode(
        "UTC",
        config=True,
        help="""Time zone (an IANA name such as ``Europe/Berlin``) of reservations made
        without one: their start and end without an offset are wall times there, and weekly
        windows repeat at the same wall-clock time in it (across daylight-saving changes).""",
    )

    @validate("reservation_timezone")
    def _check_reservation_timezone(self, proposal):
        try:
            return check_time_zone(proposal.value)
        except ValueError as e:
            raise TraitError(f"GpuhubService.reservation_timezone: {e}") from e

    reservation_guard = Float(
        7200,
        config=True,
        help="""Seconds a request that states no ``hours`` is expected to run, when deciding
        whether it may take a reserved device before that device's next window opens: a
        lease of someone outside the group is not placed on reserved devices if it would
        still run when the window opens.""",
    )

    @validate("reservation_guard")
    def _check_reservation_guard(self, proposal):
        if not 0 <= proposal.value < float("inf"):
            raise TraitError(
                f"GpuhubService.reservation_guard must be seconds >= 0, not {proposal.value!r}"
            )
        return proposal.value

    cookie_secret_file = Unicode(
        "",
        config=True,
        help="""File holding the secret of the service's login cookies, created (mode 0600)
        when missing, so browser sessions outlive a restart. Empty: a new secret per start.""",
    )

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    def _cookie_secret(self) -> bytes:
        if not self.cookie_secret_file:
            return os.urandom(32)
        path = self.cookie_secret_file
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex())
        return bytes.fromhex(Path(path).read_text().strip())

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101/")

    @default("service_prefix")
    def _default_service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")

    job_executor_class = Type(
        "gpuhub.jobs.local.LocalProcessExecutor",
        klass=JobExecutor,
        config=True,
        help="""How batch jobs run: ``gpuhub.jobs.local.LocalProcessExecutor`` (a process of
        the service's own Python environment; the embedded default) or
        ``gpuhub.jobs.docker.DockerExecutor`` (a container of the user's image with their
        home volume; the default in Docker mode), ``gpuhub.jobs.slurm.SlurmExecutor`` (a
        Slurm batch job on the node gpuhub chose), or another ``JobExecutor`` subclass.""",
    )

    scheduler = Instance(Scheduler, allow_none=True)
    inventory = Instance(InventorySource, allow_none=True)
    inventory_refresher = Instance(InventoryRefresher, allow_none=True)
    jobs = Instance(JobManager, allow_none=True)
    reclaimer = Instance(Reclaimer, allow_none=True)
    reservation_timer = Instance(ReservationTimer, allow_none=True)

    def initialize(self, argv: list[str] | None = None) -> None:
        """Parse the command line, load the config file, open the database, build the pool."""
        self.parse_command_line(argv)
        if self.config_file:
            path = os.path.abspath(self.config_file)
            self.load_config_file(os.path.basename(path), path=os.path.dirname(path))
            self.parse_command_line(argv)  # the command line wins over the file
        self.inventory = inventory = self.inventory_class(parent=self)
        nodes, held_outside = inventory.nodes(), inventory.held_outside()
        self.simulated = any(n.simulated for n in nodes)
        engine = open_engine(self.db_url)
        default_quota = (
            QuotaSpec.model_validate(self.default_user_quota) if self.default_user_quota else None
        )
        half_life = self.fair_share_half_life_days
        self.scheduler = Scheduler(
            engine, nodes, default_user_quota=default_quota, queue_policy=self.queue_policy,
            reservation_guard=self.reservation_guard, held_outside=held_outside,
            rates=RateCard(engine, self.rates, self.default_rate), spot=SpotPolicy(**self.spot),
            fair_share_half_life=None if half_life is None else half_life * 86400,
        )  # fmt: skip
        self.inventory_refresher = InventoryRefresher(
            inventory, self.scheduler, self.inventory_refresh_interval
        )
        self.jobs = JobManager(
            parent=self,
            scheduler=self.scheduler,
            executor=self.job_executor_class(parent=self),
            profiles=hub_profiles(self.config, self.log),  # the hub's spawners' profiles
        )
        self.reclaimer = Reclaimer(parent=self, scheduler=self.scheduler)
        self.reclaimer.check_profile_rules(self.jobs.profiles)
        self.reservation_timer = ReservationTimer(self.scheduler)
        gpus = sum(len(n.gpus) for n in nodes)
        self.log.info(
            "gpuhub service %s: %d node(s), %d GPU(s)%s, database %s, %d live lease(s)",
            __version__, len(nodes), gpus, " (simulated)" if self.simulated else "",
            engine.url.render_as_string(hide_password=True), len(self.scheduler.live_leases()),
        )  # fmt: skip
        for node in nodes:
            if not node.usable:
                self.log.warning("node %s takes no new leases (%s)", node.name, node.state)
        if held_outside:
            self.log.info("%d GPU(s) held outside gpuhub, not granted", len(held_outside))

    def make_app(self) -> web.Application:
        """The tornado application with every route under the service prefix."""
        prefix = self.service_prefix
        api = url_path_join(prefix, "api/v1")
        registry = CollectorRegistry()
        metrics = SchedulerCollector(self.scheduler)
        registry.register(metrics)
        hub_auth = HubOAuth.instance(parent=self)
        hub_api = HubApi(
            os.environ.get("JUPYTERHUB_API_URL", ""), os.environ.get("JUPYTERHUB_API_TOKEN", "")
        )
        routes = [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            *((api + path, handler) for m in API_MODULES for path, handler in m.default_handlers),
            (url_path_join(prefix, "metrics"), MetricsHandler),  # outside api/v1, as the hub's
            *console_routes(prefix),  # the web console: P, P console/..., P static/...
            (r".*", NotFoundHandler),  # the catch-all: last
        ]
        settings = {
            "scheduler": self.scheduler,
            "jobs": self.jobs,
            "reclaimer": self.reclaimer,
            "reservation_timezone": self.reservation_timezone,
            "reservations_changed": self.reservation_timer.changed,
            "simulated": self.simulated,
            "registry": registry,
            "metrics": metrics,  # refreshed on the loop before each scrape
            "authenticate_metrics": self.authenticate_metrics,
            "hub_groups": hub_api.user_groups,
            "hub_api": hub_api,
            "cookie_secret": self._cookie_secret(),
            "hub_auth": hub_auth,
            **self.tornado_settings,
        }
        for _, handler, *_ in routes:
            if isinstance(handler, type) and issubclass(
                handler, BaseHandler | HubOAuthCallbackHandler
            ):
                handler.hub_auth = hub_auth
        return web.Application(routes, **settings)

    async def _reconcile(self) -> None:
        api_url = os.environ.get("JUPYTERHUB_API_URL")
        if api_url:
            await reconcile_servers(
                self.scheduler, api_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                self.reconcile_grace,
            )  # fmt: skip

    async def serve(self) -> None:
        """Listen until SIGTERM/SIGINT."""
        url = urlparse(self.service_url)
        server = HTTPServer(self.make_app(), xheaders=True)
        server.listen(url.port or 80, url.hostname or "127.0.0.1")
        if self.reconcile_interval > 0:
            PeriodicCallback(self._reconcile, self.reconcile_interval * 1000).start()
        self.jobs.start()  # takes up live jobs again, then ticks
        if self.reclaimer.interval > 0:  # GPU-idle reclaim (gpuhub.service.reclaim)
            PeriodicCallback(self.reclaimer.tick, self.reclaimer.interval * 1000).start()
        self.reservation_timer.start()  # re-dispatch when reservation windows open or close
        self.inventory_refresher.start()  # the pool follows the inventory (Slurm)
        self.log.info(
            "gpuhub service listening on %s (prefix %s)", self.service_url, self.service_prefix
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.inventory_refresher.stop()
        await self.jobs.stop()  # running jobs go on; the next start takes them up again
        server.stop()
        self.scheduler.engine.dispose()
        self.log.info("gpuhub service stopped")

    def start(self) -> None:
        """Run the service."""
        asyncio.run(self.serve())


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m gpuhub.service``."""
    app = GpuhubService.instance()
    app.initialize(argv)
    app.start()
