"""Admission: whether a request may be made at all, and what it is charged as.

A request is refused, before it is queued or granted, when its user is not a member of
the group it names (or is in several groups with quotas and names none), when the pool
has nothing of its shape, or when a quota does not allow it. :func:`admit` makes these
checks for :meth:`Scheduler.request <gpuhub.scheduler.core.Scheduler.request>` and for
:meth:`SchedulerView.preview <gpuhub.scheduler.reads.SchedulerView.preview>`, so that a
spawn form's preview and the request itself always agree. It reads only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

from .accounting import Accounting
from .errors import Forbidden, QuotaExceeded, SchedulerError, Unsatisfiable
from .pool import Pool
from .quota import QuotaSpec
from .shapes import MigSlice, SharedGpu, WholeGpus
from .spot import GUARANTEED, SPOT, TIERS, SpotPolicy


def admit(
    *,
    pool: Pool,
    accounting: Accounting,
    quotas: Mapping[tuple[str, str], QuotaSpec],
    user: str,
    user_groups: Iterable[str],
    shape: WholeGpus | MigSlice | SharedGpu,
    group: str | None,
    profile: str | None,
    hours: float | None,
    now: float,
    tier: str = GUARANTEED,
    spot: SpotPolicy | None = None,
    label: str = "",
) -> tuple[str | None, Fraction]:
    """Check a request in ``tier`` against membership, the pool and quotas at ``now``
    (``spot``: whether and how spot capacity is offered).

    Returns (the group it is charged to, its units); raises :class:`Forbidden`,
    :class:`SchedulerError`, :class:`Unsatisfiable` or :class:`QuotaExceeded` if it is
    refused.
    """
    if tier not in TIERS:
        raise SchedulerError(f"tier must be 'guaranteed' or 'spot', not {tier!r}", field="tier")
    if tier == SPOT and not (spot and spot.enabled):
        raise SchedulerError(
            "spot capacity is not offered here (an admin turns it on)", field="tier"
        )
    user_groups = set(user_groups)
    if group is not None and group not in user_groups:
        raise Forbidden(f"{user} is not a member of group {group}", field="group")
    if group is None:
        with_quota = sorted(g for g in user_groups if ("group", g) in quotas)
        if len(with_quota) > 1:
            raise SchedulerError(
                f"{user} is in groups {', '.join(with_quota)} which have GPU quotas; "
                "say which group this request is for",
                field="group",
            )
        group = with_quota[0] if with_quota else None
    why = pool.feasible(shape)
    if why:
        raise Unsatisfiable(why, field="shape")
    units = pool.max_units(shape)
    problem = accounting.quota_problem(
        user, group, shape, profile, units, hours, now, queued_too=True, tier=tier, label=label
    )
    if problem:
        raise QuotaExceeded(problem)
    return group, units


def count_noun(shape: WholeGpus | MigSlice | SharedGpu) -> str:
    """What a shape's devices are called when counted: 'H100 GPUs', 'MIG 1g.5gb slices'."""
    if isinstance(shape, WholeGpus):
        return f"{shape.model + ' ' if shape.model else ''}GPUs"
    if isinstance(shape, MigSlice):
        return f"MIG {shape.profile} slices"
    return f"shared {shape.model + ' ' if shape.model else ''}GPU seats"
