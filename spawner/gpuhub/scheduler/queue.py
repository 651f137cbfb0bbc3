"""The wait queue: the queued requests in the order the scheduler serves them.

The scheduler owns one :class:`WaitQueue` and decides what each request it yields gets
(grant, refuse, set aside); the queue only keeps the order. Requests of one shape fit
exactly when each other fits, so the queue keeps one heap per shape bucket, and the
scheduler can block a whole bucket at once.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping

from ..terms import QUEUED
from .lease import Lease

#: What a heap holds for one request: its queue order and its lease id.
Entry = tuple[tuple, int]


class WaitQueue:
    """The queued leases: shape bucket -> heap of ``(lease.order, lease.id)``.

    Entries are dropped lazily: a lease that ended or was granted stays in its heap until
    it reaches the head, where :meth:`head` skips it. Entries the scheduler sets aside
    while it serves the queue go back with :meth:`put_back`.
    """

    def __init__(self) -> None:
        self._heaps: dict[tuple, list[Entry]] = defaultdict(list)

    def add(self, lease: Lease) -> None:
        """Queue a lease (memory only)."""
        heapq.heappush(self._heaps[lease.shape.bucket], (lease.order, lease.id))

    def any_waiting(self) -> bool:
        """Whether any request may wait (entries of ended leases count until skipped)."""
        return any(self._heaps.values())

    def head(self, live: Mapping[int, Lease], blocked: Container) -> tuple[tuple, Lease] | None:
        """The first queued lease of all buckets not in ``blocked``, with its bucket; None
        when there is none. Drops the heads of every bucket whose lease is no longer live
        and queued."""
        best = None
        for bucket, heap in self._heaps.items():
            while heap and (heap[0][1] not in live or live[heap[0][1]].status != QUEUED):
                heapq.heappop(heap)
            if heap and bucket not in blocked and (best is None or heap[0] < best[1][0]):
                best = (bucket, heap)
        if best is None:
            return None
        bucket, heap = best
        return bucket, live[heap[0][1]]

    def pop(self, bucket: tuple) -> Entry:
        """Take the head of ``bucket`` off the queue (the lease :meth:`head` gave)."""
        return heapq.heappop(self._heaps[bucket])

    def put_back(self, aside: Iterable[tuple[tuple, Entry]]) -> None:
        """Queue again the ``(bucket, entry)`` pairs taken off with :meth:`pop` and set aside."""
        for bucket, entry in aside:
            heapq.heappush(self._heaps[bucket], entry)

    def rebuild(self, queued: Iterable[Lease]) -> None:
        """Start again from ``queued`` (after their order changed: fair-share factors)."""
        self._heaps.clear()
        for lease in queued:
            self.add(lease)

    def ahead_of(self, lease: Lease, live: Mapping[int, Lease]) -> bool:
        """Whether a queued lease of ``live`` comes before ``lease`` in queue order."""
        return any(q.status == QUEUED and q.order < lease.order for q in live.values())
