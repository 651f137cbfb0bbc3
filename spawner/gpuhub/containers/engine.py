"""The Docker engine of this process: one client, the threads its calls run on, boot turns.

Users' servers (:class:`gpuhub.spawners.docker.GPUDockerSpawner`, in the hub) and batch
jobs (:class:`gpuhub.jobs.docker.DockerExecutor`, in the gpuhub service, which reads the
same configuration file) reach the Docker engine the same way, configured once with
DockerSpawner's settings: ``c.DockerSpawner.tls_config`` (docker-py's ``TLSConfig``
arguments), ``c.DockerSpawner.client_kwargs`` (``base_url``, ...) and the ``DOCKER_HOST``,
``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` variables as ``docker.from_env`` reads
them, in DockerSpawner's order: ``tls_config``, then the environment, then
``client_kwargs``.

:class:`EngineSettings` is that configuration as a value; ``Engine.instance(settings)``
is this process's one :class:`Engine` for it, which owns the docker-py client (a
connection per thread), the thread pool that blocking calls of asyncio code run on (never
a single thread for the whole hub), and the boot turns of its servers.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import docker
from docker.utils import kwargs_from_env
from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from .turns import BootTurns

#: The variables ``docker.from_env`` reads.
ENVIRONMENT = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
#: Configuration sections that set the engine's settings, in the order traitlets applies
#: them to a ``GPUDockerSpawner`` (a later one wins): where admins already configure it.
SECTIONS = ("Spawner", "DockerSpawner", "GPUSpawnerMixin", "GPUDockerSpawner")
DEFAULT_THREADS = 8
#: Seconds a call to the engine may take (docker-py's own default is 60).
DEFAULT_TIMEOUT = 120.0


def docker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``DOCKER_*`` variables of ``environ`` (default: this process's) that ``docker.from_env``
    reads."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in ENVIRONMENT if k in environ}


@dataclass(frozen=True)
class EngineSettings:
    """Where the Docker engine is and how it is reached: a value, compared by its fields.

    ``tls_config``: keyword arguments of ``docker.tls.TLSConfig`` (``client_cert``,
    ``ca_cert``, ``verify``). ``client_kwargs``: of ``docker.APIClient`` (``base_url``,
    ``timeout``, ...), applied last. ``threads``: the pool of blocking calls, and the
    client's connections. ``environment``: the ``DOCKER_*`` variables, taken from this
    process's environment when the settings are made.
    """

    tls_config: Mapping[str, Any] = field(default_factory=dict)
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    threads: int = DEFAULT_THREADS
    timeout: float = DEFAULT_TIMEOUT
    environment: Mapping[str, str] = field(default_factory=docker_environment)

    @classmethod
    def from_config(cls, config: Config, *, timeout: float = DEFAULT_TIMEOUT) -> EngineSettings:
        """The settings a ``GPUDockerSpawner`` configured by ``config`` has: its
        ``tls_config``, ``client_kwargs`` and ``docker_threads`` (see :data:`SECTIONS`)."""
        found: dict[str, Any] = {}
        for section in SECTIONS:
            values = config.get(section) or {}
            for name in ("tls_config", "client_kwargs", "docker_threads"):
                if name not in values:
                    continue
                value = values[name]
                if isinstance(value, LazyConfigValue):  # c.X.client_kwargs.update(...)
                    value = value.get_value(found.get(name, {}))
                found[name] = value
        return cls(
            tls_config=dict(found.get("tls_config") or {}),
            client_kwargs=dict(found.get("client_kwargs") or {}),
            threads=int(found.get("docker_threads") or DEFAULT_THREADS),
            timeout=timeout,
        )

    def client_arguments(self) -> dict[str, Any]:
        """The keyword arguments of this engine's ``docker.APIClient``."""
        kwargs: dict[str, Any] = {
            "version": "auto",
            "max_pool_size": self.threads,
            "timeout": self.timeout,
        }
        if self.tls_config:
            kwargs["tls"] = docker.tls.TLSConfig(**self.tls_config)
        if self.environment:  # kwargs_from_env({}) would read os.environ instead
            kwargs.update(kwargs_from_env(dict(self.environment)))
        kwargs.update(self.client_kwargs)
        return kwargs


class EngineClient(docker.APIClient):
    """docker-py's client, where the engine's own CA wins over ``REQUESTS_CA_BUNDLE``.

    requests replaces a session's CA file by ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``)
    for every request, so a hub with that variable set (a proxy's CA, a company bundle)
    would check the engine's certificate against the wrong CAs and refuse it. The CA of
    ``tls_config`` or ``DOCKER_CERT_PATH`` is the one that signed the engine's; where none
    is given, requests' usual choice stays (the bundle, or certifi's).
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


class Engine:
    """A Docker engine as this process reaches it: client, thread pool and boot turns.

    Get it with :meth:`instance`, so that every spawner and executor of the process with
    the same settings shares it. Everything is made on first use; :meth:`close` lets it go.
    """

    _engines: ClassVar[list[Engine]] = []
    _engines_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: docker.APIClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._host_cpus: int | None = None
        self._turns: tuple[asyncio.AbstractEventLoop, BootTurns] | None = None

    @classmethod
    def instance(cls, settings: EngineSettings | None = None) -> Engine:
        """This process's engine for ``settings`` (default: DockerSpawner's defaults and
        this process's ``DOCKER_*`` environment)."""
        settings = settings if settings is not None else EngineSettings()
        with cls._engines_lock:
            for engine in cls._engines:
                if engine.settings == settings:
                    return engine
            engine = cls(settings)
            cls._engines.append(engine)
            return engine

    @classmethod
    def close_all(cls) -> None:
        """Close every engine of this process; :meth:`instance` makes new ones."""
        with cls._engines_lock:
            engines, cls._engines = cls._engines, []
        for engine in engines:
            engine.close()

    # -- what it owns ------------------------------------------------------------------------

    @property
    def client(self) -> docker.APIClient:
        """The docker-py client (made on first use, which asks the engine its API version)."""
        with self._lock:
            if self._client is None:
                self._client = EngineClient(**self.settings.client_arguments())
            return self._client

    @property
    def thread_pool(self) -> ThreadPoolExecutor:
        """The threads that blocking calls of asyncio code run on (``threads`` of them)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.settings.threads, thread_name_prefix="gpuhub-docker"
                )
            return self._pool

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future:
        """Run the blocking ``fn`` on the engine's threads; await its result."""
        return asyncio.wrap_future(self.thread_pool.submit(fn, *args, **kwargs))

    def call(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future:
        """Call the client's ``method`` on the engine's threads; await its result."""
        return self.run(self._call, method, args, kwargs)

    def _call(self, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        return getattr(self.client, method)(*args, **kwargs)

    def host_cpus(self) -> int | None:
        """The engine's CPU count (Docker refuses a CPU limit above it); asked once. Blocks."""
        if self._host_cpus is None:
            self._host_cpus = int(self.client.info().get("NCPU") or 0) or None
        return self._host_cpus

    async def boot_turns(self, limit: int | None = None) -> BootTurns:
        """The boot turns of this engine on the running event loop, made by the first
        caller: ``limit`` boots at once, None for the engine's CPU count, 0 for no limit."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            if limit is None:
                limit = await self.run(self.host_cpus) or 0
            if self._turns is None or self._turns[0] is not loop:  # not made while we asked
                self._turns = (loop, BootTurns(limit))
        return self._turns[1]

    def close(self) -> None:
        """Close the client and let the threads go; they are made again if used."""
        with self._lock:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
            self._host_cpus, self._turns = None, None
        if pool is not None:
            pool.shutdown(wait=False)
        if client is not None:
            client.close()
