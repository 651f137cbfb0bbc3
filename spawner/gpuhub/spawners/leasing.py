"""The lease half of a GPU spawner: ask the gpuhub service for GPUs, wait, give them back.

:class:`LeaseHolder` is mixed into :class:`~gpuhub.spawners.mixin.GPUSpawnerMixin`,
which supplies the configuration it reads (``gpuhub``, ``lease_poll_interval``,
``release_wait``) and the ``lease_id``/``lease`` traits it sets. A lease is asked for
as the user, followed while it waits in the queue, and released exactly once: the
spawner's ``stop()``, a dead server, a cleared state and a failed or cancelled spawn all
come through :meth:`LeaseHolder.release_lease`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..client import AsyncGpuhubClient, GpuhubError
from ..terms import ACTIVE, QUEUED, REFUSED, describe
from .container import device_uuids
from .errors import GPUSpawnError
from .progress import ProgressLog, granted_message, queue_message

if TYPE_CHECKING:
    from logging import Logger

    from ..profiles import Selection

# asyncio keeps only weak references to tasks; releases must outlive their spawner object
_BACKGROUND: set[asyncio.Future] = set()


def background(coro: Coroutine[Any, Any, Any]) -> asyncio.Future:
    """Run ``coro`` as a task that is kept alive until it is done."""
    task = asyncio.get_running_loop().create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


class LeaseHolder:
    """Acquire, follow and release the lease of one server (mixed into a GPU spawner)."""

    # supplied by the spawner this is mixed into
    log: Logger
    _log_name: str
    gpuhub: AsyncGpuhubClient
    lease_poll_interval: float
    release_wait: float
    lease_id: int | None
    lease: dict[str, Any] | None
    lease_label: str
    user: Any

    _progress: ProgressLog | None = None
    _release_task: asyncio.Future | None = None

    async def acquire_lease(self, selection: Selection) -> dict[str, Any]:
        """Ask for GPUs as the user; wait in the queue (reporting the position) until granted.

        Raises :class:`GPUSpawnError` with the service's sentence when the request is
        refused (quota, impossible shape) or ends while it waits.
        """
        client = self.gpuhub
        progress = self._progress or ProgressLog()
        body = selection.lease_body(user=self.user.name, label=self.lease_label)
        progress.add(
            f"Requesting {describe(selection.shape)} ({selection.profile.display_name})", 10
        )
        lease = await self._post_lease(client, body)
        self.lease_id, self.lease = int(lease["id"]), lease
        lease_id = self.lease_id
        self.log.info(
            "lease %s %s for %s: profile=%s shape=%s position=%s",
            lease_id, lease["status"], self._log_name, selection.profile.name,
            selection.shape.label, lease.get("position"),
        )  # fmt: skip
        last = None
        while lease["status"] == QUEUED:
            message = queue_message(lease)
            if message != last:
                progress.add(message, 20)
                last = message
            await asyncio.sleep(self.lease_poll_interval)
            try:
                lease = await client.lease(lease_id)
            except GpuhubError as e:
                if not e.unreachable:
                    raise self._refusal(e) from e
                self.log.warning("checking queued lease %s failed, retrying: %s", lease_id, e)
                continue
            if self.lease_id == lease_id:
                self.lease = lease
        if lease["status"] != ACTIVE:
            if self.lease_id == lease_id:
                self.lease_id, self.lease = None, None
            reason = lease.get("end_reason") or "no reason given"
            what = lease["status"]
            raise GPUSpawnError(403 if what == REFUSED else 409,
                                f"Your GPU request was {what} while it waited: {reason}")  # fmt: skip
        progress.add(granted_message(lease), 50)
        self.log.info(
            "lease %s granted to %s: node=%s devices=%s", lease_id, self._log_name,
            lease.get("node"), ",".join(device_uuids(lease)),
        )  # fmt: skip
        return lease

    async def _post_lease(self, client: AsyncGpuhubClient, body: dict) -> dict:
        # the client retries this POST through a restart of the service with one
        # Idempotency-Key, so a request that was applied but never answered is answered
        # with the same lease, never a second one.
        # shielded: a spawn cancelled while the request is on the wire still learns the
        # lease id and gives the lease back
        task = asyncio.ensure_future(client.request_lease(body))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_late_lease)
            raise
        except GpuhubError as e:
            raise self._refusal(e) from e

    def _release_late_lease(self, task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is None:
            lease_id = task.result()["id"]
            self.log.info(
                "spawn of %s was cancelled; giving lease %s back", self._log_name, lease_id
            )
            background(self._release(lease_id))

    def _refusal(self, e: GpuhubError) -> GPUSpawnError:
        if e.unreachable:
            self.log.error("gpuhub service unavailable for %s: %s", self._log_name, e)
            return GPUSpawnError(503, f"GPUs cannot be requested right now: {e.message}")
        return GPUSpawnError(e.status if e.status in (400, 403, 409, 422) else 400, e.message)

    def _forget_lease(self) -> asyncio.Future | None:
        """Drop the lease from the state and start releasing it (exactly once per lease)."""
        lease_id = self.lease_id
        if lease_id is None:
            return self._release_task
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop: nothing could ever be awaited here
            self.log.error(
                "cannot release lease %s of %s outside the event loop", lease_id, self._log_name
            )
            return None
        self.lease_id, self.lease = None, None
        self._release_task = background(self._release(lease_id))
        return self._release_task

    async def release_lease(self) -> None:
        """Release the server's lease (cancel it if still queued); idempotent."""
        fut = self._forget_lease()
        if fut is None or fut.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.release_wait)
        except TimeoutError:
            self.log.warning("release of the lease of %s goes on in the background", self._log_name)

    async def _release(self, lease_id: int) -> None:
        delay = 1.0
        for _ in range(30):  # about 10 minutes of retries while the service is away
            try:
                lease = await self.gpuhub.release(lease_id)
            except GpuhubError as e:
                if not e.unreachable:
                    self.log.error(
                        "releasing lease %s of %s refused: %s", lease_id, self._log_name, e
                    )
                    return
                self.log.warning(
                    "releasing lease %s of %s failed, retrying: %s", lease_id, self._log_name, e
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.log.info(
                "lease %s of %s ended: %s", lease_id, self._log_name,
                (lease or {}).get("status", "unknown to the service"),
            )  # fmt: skip
            return
        self.log.error(
            "gave up releasing lease %s of %s; the service's reconciliation will end it",
            lease_id, self._log_name,
        )  # fmt: skip
