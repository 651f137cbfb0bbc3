"""What the scheduler's readers may see of it: :class:`SchedulerState`, read only.

The read API (:class:`~gpuhub.scheduler.reads.SchedulerView`) and the why-waiting
explainer (:class:`~gpuhub.scheduler.waiting.WaitingExplainer`) are built with the
scheduler typed as this protocol: public attributes only, each a read-only property, so
neither can reach the scheduler's private state nor write through it. They look the
attributes up at each use, because :meth:`Scheduler.load <gpuhub.scheduler.core.Scheduler.load>`
builds a new pool, live map, quota map and accounting after a restart or a failed write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..inventory import Node
    from .accounting import Accounting
    from .activity import ActivityBoard
    from .fairshare import FairShare
    from .lease import Lease
    from .ledger import Ledger
    from .pool import Pool
    from .quota import QuotaSpec
    from .reservations import ReservationBook
    from .spot import Preemption, SpotPolicy
    from .store import Store


class SchedulerState(Protocol):
    """The scheduler's state as its readers see it (:class:`~gpuhub.scheduler.core.Scheduler`
    is one). Readers call only the reading methods of what they get here."""

    @property
    def clock(self) -> Callable[[], float]:
        """The scheduler's clock."""
        ...

    @property
    def inventory(self) -> list[Node]:
        """The nodes and GPUs the pool is made of."""
        ...

    @property
    def queue_policy(self) -> str:
        """``best-effort`` or ``strict``."""
        ...

    @property
    def default_user_quota(self) -> QuotaSpec | None:
        """The quota of users without one of their own (None: unlimited)."""
        ...

    @property
    def pool(self) -> Pool:
        """Which slots are held, by which lease."""
        ...

    @property
    def live(self) -> Mapping[int, Lease]:
        """Queued and active leases by id."""
        ...

    @property
    def quotas(self) -> Mapping[tuple[str, str], QuotaSpec]:
        """Quotas set, by (kind, name)."""
        ...

    @property
    def next_id(self) -> int:
        """The id the next lease will get."""
        ...

    @property
    def accounting(self) -> Accounting:
        """What each user and group holds and has used; the quota checks."""
        ...

    @property
    def book(self) -> ReservationBook:
        """The reservations and the placement rule they make."""
        ...

    @property
    def activity_board(self) -> ActivityBoard:
        """The latest GPU activity of each active lease."""
        ...

    @property
    def store(self) -> Store:
        """The scheduler's SQL (reads of ended leases)."""
        ...

    @property
    def ledger(self) -> Ledger:
        """The usage reports."""
        ...

    @property
    def spot(self) -> SpotPolicy:
        """Whether spot capacity is offered, its discount and how it is taken back."""
        ...

    @property
    def fair(self) -> FairShare:
        """Decayed usage and fair-share factors (its reads only)."""
        ...

    @property
    def preemption(self) -> Preemption:
        """Which spot leases go for guaranteed requests (its reads only)."""
        ...
