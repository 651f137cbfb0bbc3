"""Notebook servers as Slurm batch jobs, on the node and GPUs gpuhub leased.

:class:`GPUSlurmSpawner` (entry point ``gpu-slurm``) is
:class:`~gpuhub.spawners.slurm_server.SlurmSpawner` (the server as a batch job: its
environment, its port, polling, state) with gpuhub's profiles and leases
(:class:`~gpuhub.spawners.mixin.GPUSpawnerMixin`): once the lease is granted, the job is
pinned where gpuhub placed it (``--nodelist``, ``--gres=gpu[:TYPE]:N``, ``--comment=gpuhub:lease=ID``),
and the profile's ``cpu_limit``/``mem_limit`` become ``--cpus-per-task``/``--mem``.

Devices: Slurm sets ``CUDA_VISIBLE_DEVICES`` from the GRES it allocated (indices, as the
node's cgroups let them through), and that one wins: gpuhub's device variables are left
out of a GPU job's environment. The lease stays the record (``GPUHUB_LEASE_ID``: the GPU
panel reads the lease's devices from the service); once the job runs, the indices Slurm
chose are read back (``scontrol show job -d``) and, where they differ from the lease's,
the lease is moved onto them (``PUT /leases/{id}/devices``).
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool

from ..client import GpuhubError
from ..inventory.slurm import SlurmError, SlurmInventory
from ..profiles import Selection
from ..terms import LIVE_STATUSES
from .errors import GPUSpawnError
from .form import ServerKind
from .mixin import GPUSpawnerMixin
from .slurm_batch import JobStatus, differing_indices, gres_for, limits_of
from .slurm_server import SlurmSpawner

__all__ = ["SLURM_JOB", "GPUSlurmSpawner", "SlurmSpawner"]

#: What the spawn form says a Slurm server is: no image; Slurm allocates CPUs and memory.
SLURM_JOB = ServerKind(
    images=False,
    limits=True,
    note=(
        "Servers here are Slurm jobs on the cluster's GPU nodes: yours runs in the "
        "cluster's Python environment (no container image), with the CPUs and memory of "
        "its profile allocated by Slurm, and sees only the GPUs of its lease."
    ),
)


class GPUSlurmSpawner(GPUSpawnerMixin, SlurmSpawner):
    """GPU profiles and leases for servers as Slurm jobs, pinned where gpuhub placed the
    lease. Select it with ``c.JupyterHub.spawner_class = "gpu-slurm"``; the service's
    pool should come from the same cluster (``c.GpuhubService.inventory_class = "slurm"``).
    """

    server_kind = SLURM_JOB

    cancel_orphan_jobs = Bool(
        False,
        config=True,
        help="""At hub start, cancel server jobs (of :attr:`job_name_prefix`) whose lease
        is no longer live; default: only log them.""",
    )

    _placement: dict[str, Any] | None = None

    def gres_models(self) -> dict[str, str]:
        """GRES type -> model (``SlurmInventory.models`` of this configuration)."""
        return dict(SlurmInventory(config=self.config).models)

    async def prepare_server(self, selection: Selection, lease: dict[str, Any] | None) -> None:
        """Pin the job to the lease's node and GPUs, with the profile's CPUs and memory."""
        cpus, mem_mb = limits_of(selection.profile.cpu_limit, selection.profile.mem_limit)
        placement: dict[str, Any] = {"cpus": cpus, "mem_mb": mem_mb}
        if lease:
            try:
                gres = gres_for(lease.get("devices") or (), self.gres_models())
            except ValueError as e:
                raise GPUSpawnError(400, str(e)) from e
            placement.update(node=lease.get("node"), gres=gres,
                             comment=f"{self.comment_prefix}lease={lease['id']}")  # fmt: skip
        else:
            placement["comment"] = f"{self.comment_prefix}lease=none"
        self._placement = placement

    def slurm_placement(self) -> dict[str, Any]:
        """Where :meth:`prepare_server` pinned the job."""
        return dict(self._placement or super().slurm_placement())

    def spawn_progress(self, message: str, percent: int) -> None:
        """Show ``message`` on the spawn page, and log it."""
        super().spawn_progress(message, percent)
        if self._progress is not None:
            self._progress.add(message, percent)

    async def check_devices(self, status: JobStatus) -> None:
        """Where the GPU indices Slurm gave the job differ from the lease's, move the lease
        onto Slurm's (``PUT /leases/{id}/devices``), so the pool and the GPU panel name the
        devices the server has; a refusal leaves the lease as it was, with a warning."""
        devices = (self.lease or {}).get("devices") or ()
        differ = differing_indices(devices, status.gpu_indices)
        if differ and self.lease_id is not None:
            try:
                self.lease = await self.gpuhub.place_lease(self.lease_id, status.gpu_indices)
            except GpuhubError as e:
                self.log.warning(
                    "%s: lease %s has GPU indices %s on %s, Slurm gave job %s indices %s; the "
                    "lease keeps its own: %s", self._log_name, self.lease_id, differ[0],
                    status.node, status.job_id, differ[1], e,
                )  # fmt: skip
            else:
                self.log.info(
                    "%s: lease %s moved from GPU indices %s to Slurm's %s on %s (job %s)",
                    self._log_name, self.lease_id, differ[0], differ[1], status.node,
                    status.job_id,
                )  # fmt: skip
        elif status.gpu_indices:
            self.log.info("%s: Slurm job %s holds GPU indices %s on %s (lease %s)",
                          self._log_name, status.job_id, list(status.gpu_indices),
                          status.node, self.lease_id)  # fmt: skip

    async def stop(self, now: bool = False) -> None:
        """Cancel the job, then release the lease (the mixin's, in a ``finally``)."""
        try:
            await super().stop(now=now)
        finally:
            self._placement = None

    async def reconcile(self) -> None:
        """Report (with :attr:`cancel_orphan_jobs`, cancel) server jobs whose lease is gone.

        Jobs are listed before leases: a job is submitted only after its lease was
        granted, so one that a spawn submits meanwhile is never taken for an orphan.
        """
        out = await self.slurm("squeue", "-h", "-o", "%i|%j|%k")
        jobs = [line.split("|", 2) for line in out.splitlines() if line.count("|") >= 2]
        ours = [j for j in jobs if j[1].startswith(self.job_name_prefix)]
        try:
            live = {x["id"] for x in await self.gpuhub.leases(status=LIVE_STATUSES)}
        except GpuhubError as e:
            self.log.error("reconciliation skipped: the gpuhub service did not answer: %s", e)
            return
        orphans = [j for j in ours if _lease_of(j[2], self.comment_prefix) not in (None, *live)]
        for job, name, comment in orphans:
            self.log.warning("Slurm job %s (%s, %s) holds no live gpuhub lease%s", job, name,
                             comment, "; cancelling it" if self.cancel_orphan_jobs else "")  # fmt: skip
            if self.cancel_orphan_jobs:
                try:
                    await self.scancel(job)
                except SlurmError as e:
                    self.log.warning("could not cancel Slurm job %s: %s", job, e)
        self.log.info("reconciliation: %d server job(s) in Slurm, %d without a lease",
                      len(ours), len(orphans))  # fmt: skip


def _lease_of(comment: str, prefix: str) -> int | None:
    """The lease id in a job comment ``gpuhub:lease=7`` (None: none, or not gpuhub's)."""
    value = comment.removeprefix(prefix + "lease=") if comment.startswith(prefix) else ""
    return int(value) if value.isdigit() else None
