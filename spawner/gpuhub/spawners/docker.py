"""GPU spawner for user containers on a Docker engine (a DockerSpawner subclass).

Each server is a fresh container built by :func:`gpuhub.spawners.container.build_container_spec`
(from the parts of :mod:`gpuhub.containers.spec`) from the chosen profile and the granted
lease: the profile's image and limits, the leased devices as Docker ``device_requests``
(none for simulated devices), a non-root user, never privileged, no Docker socket, and the
per-user named volume ``gpuhub-home-<user>`` as the home directory, which outlives
containers.

Networking: ``bridge`` (the default; the port is published on ``host_ip``), a
user-defined network (``network_name``; the hub reaches the container's own address),
or ``host`` (tests, or GPU nodes that want it): the server binds ``host_ip`` on a free
port chosen here, and that address is what the hub is told.

DockerSpawner's own settings are read in the profile model
(:mod:`gpuhub.spawners.docker_settings`): ``image`` is the image of profiles that name
none, ``cpu_limit``/``mem_limit`` the limits of profiles that set none and a bound on all,
``allowed_images`` the allow-list of profiles' images, and ``user_options.image`` (a name of
``allowed_images`` or an image) picks the profile that runs it. Without gpuhub profiles,
they are derived from these settings (one per allowed image and ``default_gpu_shapes``).
What cannot apply is reported when the spawner is made: warned about by name, or, where it
makes every spawn impossible, raised then. Admins' ``volumes``, ``mounts``, ``links``,
``extra_host_config`` and ``extra_create_kwargs`` are added, but may not make a container
privileged, root, or hand it devices or a socket.

The Docker engine is this process's :class:`gpuhub.containers.engine.Engine` for the
spawner's settings (DockerSpawner's ``tls_config`` and ``client_kwargs``, the ``DOCKER_*``
environment, ``docker_threads``), the same engine batch jobs reach
(:class:`gpuhub.jobs.docker.DockerExecutor`). Docker API calls run on its thread pool
(``docker_threads``), not on DockerSpawner's single thread, so a spawn storm does not
queue every ``create``/``start``/``inspect`` behind one another.

Boots are taken a few at a time (``concurrent_boots``, by default the engine's CPU
count; :class:`gpuhub.containers.turns.BootTurns`): a container is created at once, but
started only when fewer than that many are booting, and counts as booting until its
server answers HTTP. Starting JupyterLab is CPU-bound; thirty started together on two
cores all become ready late together, while taken in turns most are ready much sooner
and the last no later.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import urlparse

import docker
from dockerspawner import DockerSpawner
from jupyterhub.utils import fetch, make_ssl_context
from traitlets import Bool, Dict, Integer, List, TraitError, Unicode, default, validate

from ..client import GpuhubError
from ..containers.engine import DEFAULT_THREADS, Engine, EngineSettings
from ..containers.spec import (
    DEFAULT_CONTAINER_USER,
    DEFAULT_HOME,
    LABEL_LEASE,
    is_root,
    orphan_containers,
)
from ..containers.turns import BootTurns
from ..ports import free_port
from ..profiles import Profile, ProfileConfigError, Selection, load_profiles, shape_of
from ..terms import LIVE_STATUSES
from .container import build_container_spec
from .docker_settings import (
    DockerSettings,
    Finding,
    any_image_profiles,
    apply_settings,
    default_profiles,
    findings,
    settings_at_start,
    settings_of,
)
from .errors import GPUSpawnError
from .mixin import GPUSpawnerMixin

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# settings whose callables are evaluated per user: checked at each spawn, not at start-up
_PER_USER = ("mem_limit", "cpu_limit")


class GPUDockerSpawner(GPUSpawnerMixin, DockerSpawner):
    """DockerSpawner with GPU profiles and leases. Select it with ``spawner_class = "gpu-docker"``."""

    _engine: Engine | None = None  # this process's engine for the spawner's settings
    _turn: BootTurns | None = None  # held while this spawner's container boots

    docker_threads = Integer(
        DEFAULT_THREADS,
        min=1,
        config=True,
        help="""Threads for Docker API calls, shared by all GPU spawners of this hub
        (DockerSpawner uses one). More threads let more spawns and polls proceed at once,
        e.g. ``16`` for spawn storms of a large class.""",
    )
    concurrent_boots = Integer(
        None,
        allow_none=True,
        min=0,
        config=True,
        help="""How many containers of this hub may boot at once, from ``start`` until their
        server answers HTTP; the others are created and wait for a turn (their spawn
        progress says so). Starting JupyterLab is CPU-bound: started together, many
        servers on few cores all become ready late; in turns most are ready sooner.
        ``None`` (the default): the Docker engine's CPU count. ``0``: no limit.""",
    )
    container_user = Unicode(
        DEFAULT_CONTAINER_USER,
        config=True,
        help="""uid[:gid] (or name) user containers run as; never root. The Jupyter docker
        stacks' ``jovyan`` is ``1000:100``.""",
    )

    @validate("container_user")
    def _not_root(self, proposal):
        if is_root(proposal.value):
            raise TraitError("GPUDockerSpawner.container_user must not be root, e.g. '1000:100'")
        return proposal.value

    home_dir = Unicode(
        DEFAULT_HOME,
        config=True,
        help="""Where the per-user volume ``gpuhub-home-<user>`` is mounted: the image's
        home directory, e.g. ``/home/jovyan``.""",
    )
    stop_orphan_containers = Bool(
        False,
        config=True,
        help="""At hub start-up, stop running containers labelled with a gpuhub lease that
        the service no longer has (they would use GPUs nobody is charged for). Off: they
        are only reported in the log.""",
    )

    default_gpu_shapes = List(
        Dict(),
        default_value=[{"kind": "gpu", "count": 1}],
        minlen=1,
        config=True,
        help="""The GPU shapes of the profiles derived from DockerSpawner's settings when
        ``c.GPUSpawnerMixin.profiles`` is empty: one profile per allowed image (or the one
        ``c.DockerSpawner.image``) and shape. Shapes as in a profile, e.g.
        ``[{"kind": "gpu", "count": 1}, {"kind": "mig", "profile": "1g.5gb"}]``.
        Default: one whole GPU.""",
    )

    @validate("default_gpu_shapes")
    def _check_shapes(self, proposal):
        for i, item in enumerate(proposal.value):
            try:
                shape_of(item)
            except ValueError as e:  # pydantic's ValidationError is a ValueError
                raise TraitError(
                    f"GPUDockerSpawner.default_gpu_shapes #{i + 1} {item!r} is not a GPU shape "
                    "such as {'kind': 'gpu', 'count': 1}: " + str(e).splitlines()[-1].strip()
                ) from e
        return proposal.value

    _image_setting: str = ""  # c.DockerSpawner.image; self.image becomes the profile's
    _reported: ClassVar[set[str]] = set()  # start-up reports already logged by this process

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._image_setting = self.image
        self.check_settings()

    def _report(self, log, message: str, *args: Any) -> None:
        text = message % args if args else message
        if text not in GPUDockerSpawner._reported:
            GPUDockerSpawner._reported.add(text)
            log("%s", text)

    def check_settings(self) -> None:
        """Report what this configuration does to GPU servers, when the spawner is made.

        JupyterHub makes the spawners of running servers when it starts, and the others
        at a user's first request. Settings that cannot apply are warned about once per
        process; those that make every spawn impossible (a refused setting, profiles
        outside ``cpu_limit``/``mem_limit``/``allowed_images``) are logged and raised as
        :class:`TraitError` here, not on a user's first spawn. Per-user callables
        (``profiles``, ``allowed_images``, limits) are checked at each spawn instead.
        """
        per_user = self._per_user_profiles()
        notes = settings_at_start(
            self.setting_findings(),
            None if per_user else lambda: load_profiles(self.profiles),
            self.derived_profiles,
            self.docker_settings(),
        )
        for level, message in notes:
            if level == "error":
                self._report(self.log.error, "%s GPU servers cannot start until then.", message)
            else:
                self._report(getattr(self.log, level), message)
        refusals = [message for level, message in notes if level == "error"]
        if refusals:
            raise TraitError(f"GPUDockerSpawner cannot start GPU servers: {refusals[0]}")

    def _per_user_profiles(self) -> bool:
        """Whether the profiles depend on the user: a callable among their settings."""
        if callable(self.profiles) or callable(self.allowed_images):
            return True
        sections = [c.__name__ for c in type(self).mro()]
        return any(
            callable(self.config[section].get(name))
            for section in sections
            if section in self.config
            for name in _PER_USER
        )

    @property
    def will_resume(self) -> bool:
        """False: every start is a new container (see ``remove``), with a new API token."""
        return False

    @default("remove")
    def _default_remove(self) -> bool:
        # each start gets a new container: its environment names the new lease's devices
        return True

    @default("prefix")
    def _default_prefix(self) -> str:
        return "gpuhub"

    # -- the Docker engine ---------------------------------------------------------------

    def engine_settings(self) -> EngineSettings:
        """How this spawner reaches the Docker engine: DockerSpawner's ``tls_config`` and
        ``client_kwargs``, the ``DOCKER_*`` environment and ``docker_threads`` (what
        :meth:`EngineSettings.from_config` reads for the job executor)."""
        return EngineSettings(
            tls_config=dict(self.tls_config),
            client_kwargs=dict(self.client_kwargs),
            threads=self.docker_threads,
        )

    @property
    def engine(self) -> Engine:
        """This process's Docker engine for :meth:`engine_settings` (one per hub)."""
        if self._engine is None:
            self._engine = Engine.instance(self.engine_settings())
        return self._engine

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The engine's thread pool of Docker calls (``docker_threads`` threads)."""
        return self.engine.thread_pool

    @property
    def client(self) -> docker.APIClient:
        """The engine's Docker API client, with a connection per thread."""
        return self.engine.client

    def docker(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future:
        """Call the Docker client's ``method`` on the engine's threads (as DockerSpawner's)."""
        return self.engine.call(method, *args, **kwargs)

    @property
    def host_network(self) -> bool:
        """Whether containers share the host's network (``network_name = "host"``)."""
        return self.network_name == "host"

    _warned_loopback: ClassVar[bool] = False

    def service_url_for_server(self) -> str:
        """As the mixin's, with a warning when a bridged container could not reach it."""
        url = super().service_url_for_server()
        host = urlparse(url).hostname or ""
        if not self.host_network and host in LOOPBACK and not GPUDockerSpawner._warned_loopback:
            GPUDockerSpawner._warned_loopback = True
            self.log.warning(
                "GPUHUB_SERVICE_URL is %s, which containers on network %r cannot reach; set "
                "c.GPUSpawnerMixin.notebook_service_url (or JupyterHub.public_url)",
                url, self.network_name,
            )  # fmt: skip
        return url

    # -- start ------------------------------------------------------------------------

    async def prepare_server(self, selection: Selection, lease: dict[str, Any] | None) -> None:
        """Take the profile's image; on the host network, bind ``host_ip`` on a free port.

        With ``remove = False``, the container kept from the server's last run is removed
        here: its environment and devices are an old lease's, and Docker cannot change them.
        """
        self.image = selection.image
        if self.host_network:
            self.ip = self.host_ip
            self.port = free_port(self.host_ip)
        if not self.remove and await self.get_object() is not None:
            self.log.info(
                "removing container %s kept from the last run of %s (remove = False): "
                "lease %s needs a new container",
                self.object_name, self._log_name, (lease or {}).get("id", "none (no GPU)"),
            )  # fmt: skip
            await self.remove_object()
            self.object_id = ""

    # -- DockerSpawner's settings in the profile model ---------------------------------

    def docker_settings(self) -> DockerSettings:
        """This spawner's DockerSpawner settings, callables evaluated for its user."""
        return settings_of(self, self._image_setting, self._get_allowed_images())

    def setting_findings(self) -> list[Finding]:
        """The DockerSpawner settings of this spawner that cannot apply as DockerSpawner's."""
        return findings(self.docker_settings())

    def derived_profiles(self) -> list[Profile]:
        """Without gpuhub profiles: one per allowed image (or ``image``) and default shape."""
        return default_profiles(
            self._image_setting, self._get_allowed_images(), self.default_gpu_shapes
        )

    def image_option(self, image: Any) -> Any:
        """``user_options.image`` as an image: an ``allowed_images`` name is resolved."""
        allowed = self._get_allowed_images()
        if isinstance(image, str) and isinstance(allowed, Mapping) and image in allowed:
            return allowed[image]
        return image

    async def selection_from(self, user_options: Any) -> Selection:
        """As the mixin's, with an ``allowed_images`` name in ``image`` resolved first."""
        if isinstance(user_options, Mapping) and "image" in user_options:
            user_options = {**user_options, "image": self.image_option(user_options["image"])}
        return await super().selection_from(user_options)

    async def profiles_for(self, user_options: Any) -> list[Profile]:
        """The profiles; with ``allowed_images = "*"`` and derived profiles, one for any
        image the user names, as DockerSpawner runs any image then."""
        profiles = await self.get_profiles()
        image = user_options.get("image") if isinstance(user_options, Mapping) else None
        if (
            not isinstance(image, str)
            or self.profiles
            or self._get_allowed_images() != "*"
            or any(p.image == image for p in profiles)
        ):
            return profiles
        try:
            extra = any_image_profiles(
                image, [shape_of(s) for s in self.default_gpu_shapes], profiles,
                self.docker_settings(),
            )  # fmt: skip
        except ValueError as e:
            raise GPUSpawnError(400, f"Invalid server options: {e}") from None
        return profiles + extra

    async def get_profiles(self) -> list[Profile]:
        """The mixin's profiles with DockerSpawner's ``image``, limits and ``allowed_images``.

        A setting that cannot apply refuses every spawn (HTTP 500 with the sentence), as a
        misconfigured profile does; :meth:`check_settings` raises it when the spawner is
        made, unless it depends on the user.
        """
        profiles = await super().get_profiles()
        refusals = [f for f in self.setting_findings() if f.refuse]
        try:
            if refusals:
                raise ProfileConfigError(refusals[0].message)
            return apply_settings(profiles, self.docker_settings())
        except ProfileConfigError as e:
            self.log.error("GPU profiles misconfigured: %s", e)
            raise GPUSpawnError(500, f"the GPU profiles are misconfigured: {e}") from e

    async def check_allowed(self, image: str) -> str:
        """The image to run for ``image``, as DockerSpawner's: HTTP 400 if not allowed.

        An ``allowed_images`` name is resolved to its image. While a server starts or
        runs, only its profile's image is allowed (``user_options.image`` was checked
        against it); otherwise the image of any profile open to the user (with
        ``allowed_images = "*"`` and derived profiles: any image).
        """
        image = self.image_option(image)
        if self._selection is not None:
            if image != self._selection.image:
                raise GPUSpawnError(
                    400,
                    f"Invalid server options: image {image!r} is not offered for profile "
                    f"{self._selection.profile.name}, which runs {self._selection.image}",
                )
            return image
        groups = self.user_groups()
        profiles = await self.profiles_for({"image": image})
        offered = sorted({p.image for p in profiles if p.allows(groups) and p.image})
        if image not in offered:
            raise GPUSpawnError(
                400,
                f"Invalid server options: image {image!r} is not offered; the images are "
                f"{', '.join(offered) or 'none'}",
            )
        return image

    async def host_cpus(self) -> int | None:
        """The engine's CPU count (Docker refuses a CPU limit above it); asked once."""
        return await self.engine.run(self.engine.host_cpus)

    async def boot_turns(self) -> BootTurns:
        """The engine's :class:`BootTurns` (``concurrent_boots``, or the engine's CPU count)."""
        return await self.engine.boot_turns(self.concurrent_boots)

    async def start_object(self) -> None:
        """Start the created container when it is this server's turn to boot."""
        turns = await self.boot_turns()
        if not turns.free():
            ahead = turns.waiting + turns.booting - turns.limit + 1
            message = (
                f"Waiting for a turn to boot: {ahead} server{'s' if ahead != 1 else ''} "
                f"ahead ({turns.limit} boot at a time)"
            )
            self.log.info("%s: %s", self._log_name, message)
            if self._progress is not None:
                self._progress.add(message, 60)
        await turns.acquire()
        self._turn = turns
        try:
            await super().start_object()
        except BaseException:
            self._end_turn()
            raise

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()

    async def start(self):
        """Start as the mixin does; the boot's turn ends when the server answers HTTP."""
        try:
            ip, port = await super().start()
            if self._turn is not None:
                await self.wait_for_server(ip, port)
            return ip, port
        except BaseException:
            self._selection = None  # no server runs it
            raise
        finally:
            self._end_turn()

    async def wait_for_server(self, ip: str, port: int) -> bool:
        """Ask the server's ``api`` (as the hub will) until it answers, stops, or times out.

        True when it answered. The hub's own check follows; this only decides when the
        next boot may start, so it never fails a spawn.
        """
        settings = getattr(self.user, "settings", None) or {}
        ssl = None
        if settings.get("internal_ssl"):
            ssl = make_ssl_context(
                settings.get("internal_ssl_key"),
                settings.get("internal_ssl_cert"),
                cafile=settings.get("internal_ssl_ca"),
            )
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(ip, ip)
        host = f"[{host}]" if ":" in host else host
        base_url = self.server.base_url if self.server is not None else "/"
        url = f"{'https' if ssl else 'http'}://{host}:{port}{base_url}api"
        kwargs: dict[str, Any] = {"raise_for_status": False, "allow_redirects": False}
        if ssl is not None:
            kwargs["ssl"] = ssl
        start = time.monotonic()
        deadline = start + self.http_timeout
        next_check = start + 2.0
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                r = await asyncio.wait_for(fetch(url, **kwargs), deadline - time.monotonic())
                answered = r.status < 500
            except Exception:  # noqa: BLE001 - not answering yet (refused, reset, TLS, timeout)
                answered = False
            if answered:
                self.log.debug("%s answered after %.2f s", self._log_name, time.monotonic() - start)
                return True
            if time.monotonic() >= next_check:  # a container that died never answers
                obj = await self.get_object()
                if not obj or not obj["State"]["Running"]:
                    return False
                next_check = time.monotonic() + 2.0
            await asyncio.sleep(delay)
            delay = min(delay * 1.25, 0.25)
        return False

    def container_spec(
        self,
        command: list[str] | None,
        *,
        host_cpus: int | None = None,
        extra_host_config: dict[str, Any] | None = None,
        extra_create_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``create_container`` arguments of this server (see :func:`build_container_spec`).

        ``extra_*``: DockerSpawner's settings already evaluated (they may be async
        callables); by default they are evaluated here. ``{username}``-style templates in
        them are rendered as DockerSpawner renders them.
        """
        if self._selection is None or (self._selection.needs_lease and not self.lease):
            raise RuntimeError(f"{self._log_name}: no profile and lease to build a container from")
        if extra_host_config is None:
            extra_host_config = self._eval_if_callable(self.extra_host_config)
        if extra_create_kwargs is None:
            extra_create_kwargs = self._eval_if_callable(self.extra_create_kwargs)
        return build_container_spec(
            self._selection.profile,
            self.lease,
            user=self.user.name,
            server_name=self.name,
            name=self.container_name,
            env=self.get_env(),
            command=command,
            home_dir=self.home_dir,
            container_user=self.container_user,
            network=self.network_name,
            port=self.port,
            publish_ip=None if (self.use_internal_ip or self.host_network) else self.host_ip,
            host_cpus=host_cpus,
            extra_binds=self.volume_binds,
            extra_mounts=self.mount_binds,
            links=self.links,
            extra_host_config=self._render_templates(extra_host_config or {}),
            extra_create_kwargs=self._render_templates(extra_create_kwargs or {}),
        )

    async def create_object(self) -> dict[str, Any]:
        """Create the container from :meth:`container_spec`."""
        extras = {}
        for name in ("extra_host_config", "extra_create_kwargs"):
            value = self._eval_if_callable(getattr(self, name))
            extras[name] = (await value if inspect.isawaitable(value) else value) or {}
        spec = self.container_spec(
            await self.get_command(), host_cpus=await self.host_cpus(), **extras
        )
        host_config = self.client.create_host_config(**spec.pop("host_config"))
        self.log.info(
            "creating container %s for %s: image=%s lease=%s devices=%s",
            spec["name"], self._log_name, spec["image"], self.lease_id,
            spec["environment"].get("CUDA_VISIBLE_DEVICES", ""),
        )  # fmt: skip
        return await self.docker("create_container", host_config=host_config, **spec)

    async def stop(self, now: bool = False) -> None:
        """Stop as the mixin does; the server no longer runs its profile's image."""
        try:
            await super().stop(now=now)
        finally:
            self._selection = None

    async def get_ip_and_port(self) -> tuple[str, int]:
        """On the host network: ``host_ip`` and the port chosen at start; else DockerSpawner's."""
        if self.host_network:
            return self.host_ip, self.port
        return await super().get_ip_and_port()

    # -- start-up reconciliation -------------------------------------------------------

    async def reconcile(self) -> None:
        """Report (and with ``stop_orphan_containers``, stop) containers whose lease is gone.

        Containers are listed before leases: a container is created only after its lease
        was granted, so one that a spawn creates meanwhile is never taken for an orphan.
        """
        containers = await self.docker("containers", filters={"label": LABEL_LEASE})
        try:  # the client retries while the service starts (gpuhub_retry_time)
            leases = await self.gpuhub.leases(status=LIVE_STATUSES)
        except GpuhubError as e:
            self.log.error("reconciliation skipped: the gpuhub service did not answer: %s", e)
            return
        orphans = orphan_containers(containers, (x["id"] for x in leases))
        for c in orphans:
            name = ",".join(n.lstrip("/") for n in c.get("Names") or ()) or c["Id"][:12]
            labels = c.get("Labels") or {}
            self.log.warning(
                "container %s (user=%s lease=%s) holds no live gpuhub lease%s",
                name, labels.get("gpuhub.user"), labels.get(LABEL_LEASE),
                "; stopping it" if self.stop_orphan_containers else "",
            )  # fmt: skip
            if self.stop_orphan_containers:
                try:
                    await self.docker("stop", c["Id"])
                except docker.errors.APIError as e:  # gone meanwhile, or the engine refused
                    self.log.warning("could not stop container %s: %s", name, e)
        self.log.info(
            "reconciliation: %d running gpuhub container(s), %d without a lease",
            len(containers), len(orphans),
        )  # fmt: skip
