"""The extension's services, created once per server in ``initialize_settings``.

:class:`GpuhubServices` knows the server's lease (``GPUHUB_LEASE_ID``), its devices
(``CUDA_VISIBLE_DEVICES`` UUIDs, or the lease's devices as the gpuhub service lists
them), the service (``GPUHUB_SERVICE_URL``) and the server's own token
(``JUPYTERHUB_API_TOKEN``); it owns the one :class:`~.sampler.Sampler` of the server.
A server of a CPU-only profile (``GPUHUB_NO_GPU=1``) has no GPU by design, which is
not the same as a lease that is missing: it says so (:meth:`GpuhubServices.no_lease_message`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from gpuhub.client import NO_RETRY, AsyncGpuhubClient, GpuhubError

from .readers import Device, NvmlReader, ProcessTree, Reader, SimulatedReader, kind_of
from .sampler import Sampler

NO_LEASE = "This server holds no GPU lease."


def no_gpu_message(profile: str | None) -> str:
    """What a server of a CPU-only profile says instead of its GPUs."""
    of = f"its profile ({profile})" if profile else "its profile"
    return f"This server has no GPU: {of} is CPU only."


def visible_uuids(env: Mapping[str, str]) -> list[str]:
    """The ``GPU-...``/``MIG-...`` UUIDs in ``CUDA_VISIBLE_DEVICES`` (in its order)."""
    names = [n.strip() for n in env.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    return [n for n in names if n.startswith(("GPU-", "MIG-"))]


def is_shared(lease: Mapping[str, Any], device: Mapping[str, Any]) -> bool:
    """Whether the lease holds ``device`` as a seat of a shared (time-sliced) GPU: the
    service marks such a device ``shared_by`` its number of seats, or the lease's shape
    ``kind`` is ``"shared"``."""
    shape = lease.get("shape") or {}
    return int(device.get("shared_by") or 1) > 1 or shape.get("kind") == "shared"


def lease_devices(lease: Mapping[str, Any]) -> list[Device]:
    """The devices of a lease as the service answers it, in lease order."""
    devices = []
    for index, d in enumerate(lease.get("devices") or ()):
        uuid = str(d["uuid"])
        profile = d.get("profile")
        model = str(d.get("model") or uuid)
        devices.append(
            Device(
                uuid=uuid,
                index=index,
                name=f"{profile} slice of {model}" if profile else model,
                kind="mig" if profile else kind_of(uuid),
                profile=profile,
                simulated=bool(d.get("simulated")),
                shared=is_shared(lease, d),
            )
        )
    return devices


class GpuhubServices:
    """The lease, the service client and the sampler of one server."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        interval: float,
        report_interval: float,
        read_timeout: float,
        activity_threshold_pct: float,
        log: logging.Logger,
    ) -> None:
        lease_id = env.get("GPUHUB_LEASE_ID", "").strip()
        self.lease_id: int | None = int(lease_id) if lease_id.isdigit() else None
        self.simulated = env.get("GPUHUB_SIMULATED") == "1"
        #: the server's spawn profile, and whether it is CPU only (no GPU by design)
        self.profile = env.get("GPUHUB_PROFILE") or None
        self.no_gpu = env.get("GPUHUB_NO_GPU") == "1" and self.lease_id is None
        self.service_url = env.get("GPUHUB_SERVICE_URL") or None
        self._token = env.get("JUPYTERHUB_API_TOKEN") or None
        self.uuids = visible_uuids(env)
        self.interval = interval
        self.report_interval = report_interval
        self.read_timeout = read_timeout
        self.activity_threshold_pct = activity_threshold_pct
        self.log = log
        self.sampler: Sampler | None = None
        #: busy kernels and open terminals of the server (set by the extension app)
        self.notebook: Callable[[], dict[str, int | None]] | None = None
        self.error: str | None = None  # why there is no sampler yet
        self._lease: tuple[float, dict[str, Any]] | None = None
        self._starting: asyncio.Task[None] | None = None

    @property
    def no_lease_message(self) -> str:
        """Why this server has no lease: CPU only by its profile, or no lease at all."""
        return no_gpu_message(self.profile) if self.no_gpu else NO_LEASE

    def client(self) -> AsyncGpuhubClient:
        """A client of the gpuhub service with the server's own token."""
        if not self.service_url:
            raise RuntimeError("GPUHUB_SERVICE_URL is not set; the gpuhub service is unknown.")
        return AsyncGpuhubClient(self.service_url, self._token, retry=NO_RETRY, timeout=10.0)

    async def lease(self, max_age: float = 5.0) -> dict[str, Any]:
        """The lease as the service answers ``GET /leases/{id}`` (cached ``max_age`` s)."""
        assert self.lease_id is not None
        if self._lease is not None and time.monotonic() - self._lease[0] < max_age:
            return self._lease[1]
        lease = await self.client().request("GET", f"leases/{self.lease_id}")
        self._lease = (time.monotonic(), lease)
        return lease

    async def me(self) -> Any:
        """The service's ``GET /me`` for this server's user."""
        return await self.client().request("GET", "me")

    async def send_activity(self, lease_id: int, body: dict[str, Any]) -> Any:
        """``POST /leases/{id}/activity`` with the server's own token."""
        return await self.client().request("POST", f"leases/{lease_id}/activity", json=body)

    async def keep(self, seconds: int) -> Any:
        """``POST /leases/{id}/keep``: keep this server's lease from GPU-idle reclaim."""
        assert self.lease_id is not None
        lease = await self.client().request(
            "POST", f"leases/{self.lease_id}/keep", json={"seconds": seconds}
        )
        self._lease = (time.monotonic(), lease)
        return lease

    # -- the sampler ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampler in the background (nothing without a lease)."""
        if self.lease_id is None or self._starting is not None:
            return
        self._starting = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        delay = 1.0
        while True:
            try:
                reader = await self._reader()
                break
            except (GpuhubError, RuntimeError, KeyError, TypeError, ValueError) as e:
                # the service may not answer yet (or the lease is not readable): try again
                self.error = f"The lease's devices are not known yet: {e}"
                self.log.warning("gpuhub: %s", self.error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.error = None
        self.sampler = Sampler(
            reader,
            interval=self.interval,
            read_timeout=self.read_timeout,
            lease_id=self.lease_id,
            send=self.send_activity if self.service_url else None,
            report_interval=self.report_interval,
            activity_threshold_pct=self.activity_threshold_pct,
            log=self.log,
            notebook=self.notebook,
        )
        self.sampler.start()

    async def _reader(self) -> Reader:
        """NVML on the visible UUIDs, or synthetic values for the lease's simulated devices.

        With a service to ask, the lease says which visible devices are seats of a shared
        GPU (sampled per lease: this server's processes only); without one they count as
        the lease's own.
        """
        if self.uuids and not self.simulated:
            devices = [Device(u, i, u, kind_of(u)) for i, u in enumerate(self.uuids)]
            if self.service_url:
                lease = await self.lease(max_age=0)
                shared = {str(d["uuid"]) for d in lease.get("devices") or () if is_shared(lease, d)}
                for device in devices:
                    device.shared = device.uuid in shared
            return NvmlReader(devices)
        lease = await self.lease(max_age=0)
        devices = lease_devices(lease)
        if self.simulated or any(d.simulated for d in devices):
            totals = {str(d["uuid"]): float(d.get("memory_mb") or 0) for d in lease["devices"]}
            return SimulatedReader(devices, totals, ProcessTree())
        return NvmlReader(devices)

    async def stop(self) -> None:
        """Stop the sampler (and a start still waiting for the service)."""
        if self._starting is not None:
            self._starting.cancel()
            try:
                await self._starting
            except asyncio.CancelledError:
                pass  # what cancel() asked for
            self._starting = None
        if self.sampler is not None:
            await self.sampler.stop()


def notebook_counts(kernel_manager: Any, terminal_manager: Any) -> dict[str, int | None]:
    """Kernels executing code and terminals open on the server (None: not counted here,
    e.g. no terminal manager). Idle reclaim counts either as activity."""
    busy = None
    if kernel_manager is not None:
        busy = sum(
            1
            for kid in kernel_manager.list_kernel_ids()
            if getattr(kernel_manager.get_kernel(kid), "execution_state", None) == "busy"
        )
    terminals = None if terminal_manager is None else len(terminal_manager.terminals)
    return {"busy_kernels": busy, "terminals": terminals}


def from_environment(**kw: Any) -> GpuhubServices:
    """:class:`GpuhubServices` for this process's environment."""
    return GpuhubServices(env=os.environ, **kw)
