"""The devices the GPU check leases to itself, and the notebook extension reading them.

A :class:`Target` is one device (a whole GPU or a MIG slice) with the environment a server or
job holding it gets (:func:`gpuhub.spawners.container.build_env`). :class:`ExtensionReading`
starts the notebook extension's services for that environment as a user's server does, and
answers what its ``GET gpuhub/api/v1/devices`` route would.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from jupyter_gpuhub.services import GpuhubServices

from gpuhub.inventory import Gpu, MigInstance, Node
from gpuhub.spawners.container import build_env

#: The lease id the check's own environments carry (no lease of the service has id 0).
CHECK_LEASE_ID = 0


class UsageError(Exception):
    """The check was asked for something this machine does not have; the message says what."""


@dataclass(frozen=True)
class Target:
    """One device the check leases to itself: a whole GPU, or a MIG slice of one."""

    gpu: Gpu
    mig: MigInstance | None = None

    @property
    def uuid(self) -> str:
        """The device's UUID, as ``CUDA_VISIBLE_DEVICES`` names it."""
        return self.mig.uuid if self.mig else self.gpu.uuid

    @property
    def kind(self) -> str:
        """``gpu`` or ``mig``."""
        return "mig" if self.mig else "gpu"

    @property
    def memory_mb(self) -> int:
        """The device's memory as the inventory read it."""
        return self.mig.memory_mb if self.mig else self.gpu.memory_mb

    @property
    def label(self) -> str:
        """How the report names it: ``GPU 0 (NVIDIA H100 ...)`` or ``MIG 1g.10gb of GPU 0``."""
        if self.mig:
            return f"MIG {self.mig.profile} slice {self.mig.index} of GPU {self.gpu.index}"
        return f"GPU {self.gpu.index} ({self.gpu.model})"

    def env(self, node: Node) -> dict[str, str]:
        """The environment a server holding only this device gets (no service URL: the
        extension then reads the devices it is given without asking the service)."""
        device: dict[str, Any] = {
            "uuid": self.uuid,
            "model": self.gpu.model,
            "memory_mb": self.memory_mb,
        }
        if self.mig:
            device["profile"] = self.mig.profile
        lease = {"id": CHECK_LEASE_ID, "node": node.name, "devices": [device]}
        return build_env(lease, service_url="")


@dataclass(frozen=True)
class Targets:
    """What the check uses: its main device, and a whole GPU and a MIG slice where there are."""

    primary: Target
    whole: Target | None
    mig: Target | None


def pick_targets(node: Node, device: str | None = None) -> Targets:
    """The devices to check: ``device`` (a UUID, or the index of a GPU) or, by default, the
    first GPU not in MIG mode; the first MIG slice where a GPU has one."""
    whole = next((Target(g) for g in node.gpus if not g.mig_enabled), None)
    mig = next((Target(g, m) for g in node.gpus for m in g.mig_instances), None)
    primary = whole or mig
    if device is not None:
        primary = _find(node, device)
        if primary.kind == "gpu":
            whole = primary
        else:
            mig = primary
    if primary is None:
        raise UsageError(
            "NVML lists GPUs, but none can be used: each is in MIG mode without MIG slices; "
            "create slices (nvidia-smi mig -cgi ... -C) or turn MIG mode off"
        )
    return Targets(primary=primary, whole=whole, mig=mig)


def _find(node: Node, device: str) -> Target:
    """The device named by a UUID or a GPU index."""
    for gpu in node.gpus:
        if device in (gpu.uuid, str(gpu.index)):
            if gpu.mig_enabled:
                if not gpu.mig_instances:
                    break
                return Target(gpu, gpu.mig_instances[0])
            return Target(gpu)
        for mig in gpu.mig_instances:
            if device == mig.uuid:
                return Target(gpu, mig)
    known = ", ".join(
        [f"{g.index} ({g.uuid})" for g in node.gpus]
        + [m.uuid for g in node.gpus for m in g.mig_instances]
    )
    raise UsageError(f"no usable device {device!r} on this machine; devices: {known or 'none'}")


class ExtensionReading:
    """The notebook extension's services for one lease environment, as a server starts them.

    Use as ``async with``: the sampler runs in the background while the block runs and is
    stopped after it.
    """

    def __init__(self, env: dict[str, str], *, interval: float, log: logging.Logger) -> None:
        self.services = GpuhubServices(
            env=env,
            interval=interval,
            report_interval=3600.0,  # no service to report to: never due during the check
            read_timeout=5.0,
            activity_threshold_pct=5.0,
            log=log,
        )

    async def __aenter__(self) -> ExtensionReading:
        self.services.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.services.stop()

    async def wait(
        self, samples: int, *, newer_than: float = 0.0, timeout: float
    ) -> dict[str, Any]:
        """The devices answer once every device holds ``samples`` samples taken after
        ``newer_than`` (or once ``timeout`` seconds passed, or reads keep failing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            sampler = self.services.sampler
            if sampler is not None:
                devices = sampler.reader.devices
                if all(len(sampler.since(d.uuid, newer_than)) >= samples for d in devices):
                    break
                if sampler.error and sampler.reads > samples + 2:
                    break  # NVML keeps failing: the answer carries its sentence
            await asyncio.sleep(0.05)
        return self.devices()

    def devices(self) -> dict[str, Any]:
        """What ``GET gpuhub/api/v1/devices`` answers, with a sample count for the history."""
        services = self.services
        sampler = services.sampler
        devices = []
        if sampler is not None:
            for device in sampler.reader.devices:
                devices.append(
                    {
                        **device.to_json(),
                        "latest": sampler.latest(device.uuid),
                        "samples": len(sampler.since(device.uuid)),
                    }
                )
        return {
            "lease_id": services.lease_id,
            "simulated": sampler.reader.simulated if sampler is not None else services.simulated,
            "devices": devices,
            "error": sampler.error if sampler is not None else services.error,
        }
