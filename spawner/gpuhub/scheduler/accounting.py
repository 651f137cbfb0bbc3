"""What each user, group and group member holds and has used, checked against quotas.

A *principal* is whom a lease is charged to: ``("user", name)``, ``("group", name)`` or
``("member", group, user)``. :class:`Accounting` keeps, in memory, the GPU units each
principal holds (queued + active) and has active, and the GPU-hours its ended leases
used per budget window (read once from the ledger, then kept up to date), so that a
quota check costs no query on the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..terms import ACTIVE, describe, fmt_gpus, fmt_hours, fmt_units
from .lease import Lease, iso
from .quota import QuotaSpec, period_phrase, period_window
from .shapes import MigSlice, SharedGpu, WholeGpus
from .store import LEASES, Store


class Accounting:
    """Units held and GPU-hours used per principal, and the quota checks built on them.

    ``live`` and ``quotas`` are the scheduler's own dicts (live leases by id, quotas by
    (kind, name)): accounting reads them, the scheduler writes them. ``highest_rate``
    gives the most credits per GPU-hour a shape may be charged (credits budgets).
    """

    def __init__(
        self,
        store: Store,
        live: dict[int, Lease],
        quotas: dict[tuple[str, str], QuotaSpec],
        default_user_quota: QuotaSpec | None,
        highest_rate: Callable[[WholeGpus | MigSlice | SharedGpu], float] = lambda _s: 1.0,
        spot_discount: float = 1.0,
    ) -> None:
        self.store = store
        self.live = live
        self.quotas = quotas
        self.default_user_quota = default_user_quota
        self.highest_rate = highest_rate  # the most credits per GPU-hour a shape may cost
        self.spot_discount = spot_discount  # the share of the rate a spot GPU-hour costs
        self.held: dict[tuple, Fraction] = defaultdict(Fraction)  # queued + active units
        self.active: dict[tuple, Fraction] = defaultdict(Fraction)
        self.by_principal: dict[tuple, set[int]] = defaultdict(set)
        # principal -> budget window start -> GPU-hours (and credits) of its ended leases
        # since then
        self.closed_hours: dict[tuple, dict[float, float]] = defaultdict(dict)
        self.closed_credits: dict[tuple, dict[float, float]] = defaultdict(dict)
        # cohorts: units of active leases each group borrows from others, and lends
        self.borrowed: dict[str, Fraction] = defaultdict(Fraction)
        self.lent: dict[str, Fraction] = defaultdict(Fraction)
        #: How many active leases may be preempted (spot, or borrowed in a cohort).
        self.preemptible = 0

    # -- bookkeeping -----------------------------------------------------------------

    def add(self, lease: Lease) -> None:
        """Count a live lease (new, or loaded after a restart)."""
        for p in lease.principals():
            self.held[p] += lease.units
            self.by_principal[p].add(lease.id)
            if lease.status == ACTIVE:
                self.active[p] += lease.units
        if lease.status == ACTIVE:
            self._count_loan(lease, 1)

    def _count_loan(self, lease: Lease, sign: int) -> None:
        """Count an active lease's loan and whether it may be preempted (``sign``: 1 or -1)."""
        if lease.tier == "spot" or lease.borrowed_from is not None:
            self.preemptible += sign
        if lease.borrowed_from is not None and lease.group is not None:
            self.borrowed[lease.group] += sign * lease.units
            self.lent[lease.borrowed_from] += sign * lease.units

    def granted(self, lease: Lease, queued_units: Fraction) -> None:
        """Count a queued lease as active; the estimate charged while queued
        (``queued_units``) may exceed the slice actually granted."""
        for p in lease.principals():
            self.held[p] += lease.units - queued_units
            self.active[p] += lease.units
        self._count_loan(lease, 1)

    def remove(self, lease: Lease, was: str) -> None:
        """Stop counting a lease that ended; ``was`` is its status before it ended."""
        if was == ACTIVE:
            self._count_loan(lease, -1)
        for p in lease.principals():
            self.held[p] -= lease.units
            self.by_principal[p].discard(lease.id)
            if was == ACTIVE:
                self.active[p] -= lease.units
                for ws in self.closed_hours.get(p, {}):
                    self.closed_hours[p][ws] += lease.overlap_hours(ws, lease.ended_at or 0)
                for ws in self.closed_credits.get(p, {}):
                    self.closed_credits[p][ws] += lease.overlap_credits(ws, lease.ended_at or 0)

    # -- quotas ----------------------------------------------------------------------

    def quota_for_user(self, user: str) -> QuotaSpec | None:
        """The user's own quota, or the configured default; None means unlimited."""
        return self.quotas.get(("user", user), self.default_user_quota)

    def priority(self, user: str, group: str | None) -> int:
        """The priority a request gets: the highest of its user's and group's quotas."""
        specs = [self.quota_for_user(user), self.quotas.get(("group", group)) if group else None]
        return max((s.priority for s in specs if s is not None), default=0)

    def quota_problem(
        self,
        user: str,
        group: str | None,
        shape: WholeGpus | MigSlice | SharedGpu,
        profile: str | None,
        units: Fraction,
        hours: float | None,
        now: float,
        *,
        queued_too: bool,
        conn: Connection | None = None,
        tier: str = "guaranteed",
        label: str = "",
    ) -> str | None:
        """None if quotas allow the request, else a sentence naming the quota that forbids it.

        ``queued_too`` counts queued requests as held (admission) rather than only active
        ones (dispatch). ``conn`` is the open transaction when called while writing
        (dispatch), so that leases it just ended are read as ended. A ``spot`` request is
        held to the spot allowance (``spot_max_units``, ``spot_gpu_hours``). Past its
        group's ``max_units``, a request (not a server's: ``label``) may borrow from a
        group of the same cohort (:meth:`lender`).
        """
        spot = tier == "spot"
        checks: list[tuple[tuple, str, QuotaSpec]] = []
        spec = self.quota_for_user(user)
        if spec is not None:
            checks.append((("user", user), f"user {user}", spec))
        gspec = self.quotas.get(("group", group)) if group else None
        if gspec is not None:
            checks.append((("group", group), f"group {group}", gspec))
        counts = self.held if queued_too else self.active
        for key, who, spec in checks:
            tkey = ("spot", *key) if spot else key  # what this tier holds and used
            if not spec.allows_shape(shape.label):
                return f"{who} may not use {describe(shape)} (allowed: {', '.join(spec.allowed_shapes or [])})"
            if not spec.allows_profile(profile):
                return (
                    f"{who} may not use profile {profile or '(none)'} "
                    f"(allowed: {', '.join(spec.allowed_profiles or [])})"
                )
            limit = spec.spot_max_units_exact if spot else spec.max_units_exact
            own = counts[tkey] - (self.borrowed[key[1]] if key[0] == "group" and not spot else 0)
            if limit is not None and own + units > limit:
                if spot or key[0] != "group" or spec.cohort is None:
                    return self._units_message(who, tkey, limit, units)
                if self.lender(key[1], units, label, queued_too=queued_too) is None:
                    return self._units_message(who, tkey, limit, units) + (
                        f" (nothing to borrow in cohort {spec.cohort} now"
                        f"{'; servers do not borrow' if label.startswith('server:') else ''})"
                    )
            if key[0] == "group" and spec.per_user_exact is not None and not spot:
                mkey = ("member", group, user)
                if counts[mkey] + units > spec.per_user_exact:
                    return (
                        f"{user} uses {fmt_units(self.active[mkey])} of the "
                        f"{fmt_units(spec.per_user_exact)} GPU units each member of group {group} "
                        f"may hold; this request needs {fmt_units(units)}"
                    )
            budget = spec.spot_gpu_hours if spot else spec.gpu_hours
            if budget is not None:
                start, end = period_window(spec, now)
                if not start <= now < end:
                    return (
                        f"{who}'s GPU-hour term runs {spec.term_start} to {spec.term_end}; "
                        "no GPU-hours can be used outside it"
                    )
                left = budget - self.hours_used(tkey, start, now, conn)
                need = float(units) * hours if hours else 0.0
                if left <= 1e-9 or left + 1e-9 < need:
                    msg = (
                        f"{who[len('user ') :] if key[0] == 'user' else who} has "
                        f"{fmt_hours(max(left, 0.0))} of {fmt_hours(budget)} "
                        f"{'spot ' if spot else ''}GPU-hours left {period_phrase(spec, now)}"
                    )
                    return msg + (f"; this request needs {fmt_hours(need)}" if need else "")
            if spec.credits is not None:
                rate = self.highest_rate(shape) * (self.spot_discount if spot else 1.0)
                problem = self._credits_problem(key, who, spec, units, hours, rate, now, conn)
                if problem:
                    return problem
        return None

    def _credits_problem(
        self,
        key: tuple,
        who: str,
        spec: QuotaSpec,
        units: Fraction,
        hours: float | None,
        rate: float,
        now: float,
        conn: Connection | None,
    ) -> str | None:
        """Why a credits budget refuses a request (``rate``: the highest credits per
        GPU-hour it may be charged), or None."""
        assert spec.credits is not None
        start, end = period_window(spec, now)
        name = who[len("user ") :] if key[0] == "user" else who
        if not start <= now < end:
            return (
                f"{name}'s credit term runs {spec.term_start} to {spec.term_end}; "
                "no credits can be used outside it"
            )
        left = spec.credits - self.credits_used(key, start, now, conn)
        need = float(units) * hours * rate if hours else 0.0
        if left <= 1e-9 or left + 1e-9 < need:
            msg = (
                f"{name} has {fmt_hours(max(left, 0.0))} of {fmt_hours(spec.credits)} credits "
                f"left {period_phrase(spec, now)}"
            )
            return msg + (f"; this request needs up to {fmt_hours(need)}" if need else "")
        return None

    # -- cohorts: groups lend each other their unused share ------------------------------

    def own_units(self, group: str, *, queued_too: bool) -> Fraction:
        """Units ``group`` holds of its own share (not borrowed)."""
        counts = self.held if queued_too else self.active
        return counts[("group", group)] - self.borrowed[group]

    def needs_loan(self, group: str | None, units: Fraction, *, queued_too: bool) -> bool:
        """Whether ``units`` more go beyond ``group``'s own ``max_units``."""
        spec = self.quotas.get(("group", group)) if group else None
        limit = spec.max_units_exact if spec is not None else None
        return limit is not None and self.own_units(group, queued_too=queued_too) + units > limit

    def lender(self, group: str, units: Fraction, label: str, *, queued_too: bool) -> str | None:
        """The group of ``group``'s cohort that lends ``units`` now: the one with the most
        unused share (its ``max_units`` less what it holds and lends, within its
        ``lend_limit``), within ``group``'s ``borrow_limit``; None when none can, or the
        lease is a notebook server's (``label``: servers are never preempted to give back)."""
        spec = self.quotas.get(("group", group))
        if spec is None or spec.cohort is None or label.startswith("server:"):
            return None
        cap = spec.exact("borrow_limit")
        if cap is not None and self.borrowed[group] + units > cap:
            return None
        offers = []
        for (kind, name), other in self.quotas.items():
            if kind != "group" or name == group or other.cohort != spec.cohort:
                continue
            assert other.max_units_exact is not None  # a cohort's quotas have max_units
            lent = self.lent[name]
            unused = other.max_units_exact - self.own_units(name, queued_too=queued_too) - lent
            limit = other.exact("lend_limit")
            if limit is not None:
                unused = min(unused, limit - lent)
            if unused >= units:
                offers.append((-unused, name))
        return min(offers)[1] if offers else None

    def loan_for(self, lease: Lease, *, queued_too: bool) -> str | None:
        """The lender of a lease being granted when it goes beyond its group's own share."""
        if lease.tier == "spot" or not self.needs_loan(
            lease.group, lease.units, queued_too=queued_too
        ):
            return None
        assert lease.group is not None
        return self.lender(lease.group, lease.units, lease.label, queued_too=queued_too)

    def _units_message(self, who: str, key: tuple, limit: Fraction, units: Fraction) -> str:
        active, held = self.active[key], self.held[key]
        spot = key[0] == "spot"
        kind = key[1] if spot else key[0]
        queued = f" (and {fmt_units(held - active)} more queued)" if held > active else ""
        if units > limit:  # no lease ending can make room: say so, not "wait"
            smaller = f", or request at most {fmt_gpus(limit)}" if limit else ""
            cure = (
                "which is more than the whole quota, so waiting will not help: ask an admin "
                f"for a larger quota{smaller}"
            )
        else:
            cure = "Ask an admin, or wait for a lease to end"
        return (
            f"{who} uses {fmt_units(active)} of {'their' if kind == 'user' else 'its'} "
            f"{fmt_units(limit)} {'spot ' if spot else ''}GPU units{queued}; "
            f"this request needs {fmt_units(units)}{', ' if units > limit else '. '}{cure}"
        )

    # -- GPU-hours ---------------------------------------------------------------------

    def hours_used(
        self, key: tuple, start: float, now: float, conn: Connection | None = None
    ) -> float:
        """GPU-hours charged to a principal since ``start``: ended leases + live ones so far."""
        self._read_closed(key, start, conn)
        live = (self.live[i] for i in self.by_principal.get(key, ()))
        return self.closed_hours[key][start] + sum(
            x.overlap_hours(start, now) for x in live if x.status == ACTIVE
        )

    def credits_used(
        self, key: tuple, start: float, now: float, conn: Connection | None = None
    ) -> float:
        """Credits charged to a principal since ``start`` in both tiers: ended leases +
        live ones so far."""
        total = 0.0
        for k in (key, ("spot", *key)):
            self._read_closed(k, start, conn)
            live = (self.live[i] for i in self.by_principal.get(k, ()))
            total += self.closed_credits[k][start] + sum(
                x.overlap_credits(start, now) for x in live if x.status == ACTIVE
            )
        return total

    def _read_closed(self, key: tuple, start: float, conn: Connection | None) -> None:
        """Fill both caches of ``key``'s ended leases since ``start`` (GPU-hours, credits)
        with one query, unless they hold that window already."""
        if start in self.closed_hours[key] and start in self.closed_credits[key]:
            return
        t = LEASES.c
        tier, (kind, name) = ("spot", key[1:]) if key[0] == "spot" else ("guaranteed", key)
        col = t.user if kind == "user" else t.group_name
        # live leases have no ended_at; cancelled and refused ones no granted_at
        q = select(t.granted_at, t.ended_at, t.units_num, t.units_den, t.rate, t.discount).where(
            col == name, t.tier == tier, t.granted_at.is_not(None), t.ended_at > start
        )
        hours = credits = 0.0
        for granted, ended, num, den, rate, discount in self.store.rows(q, conn):
            h = num / den * (ended - max(granted, start)) / 3600
            hours += h
            credits += h * (rate or 0.0) * discount
        self.closed_hours[key][start], self.closed_credits[key][start] = hours, credits

    def quota_status(
        self, kind: str, name: str, spec: QuotaSpec | None, now: float
    ) -> dict[str, Any]:
        """A quota with what is in use and left at ``now`` (for ``me`` and the quota API)."""
        key = (kind, name)
        out: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "quota": spec.model_dump(mode="json") if spec else None,
            "units_active": float(self.active[key]),
            "units_queued": float(self.held[key] - self.active[key]),
            "spot_units_active": float(self.active[("spot", *key)]),
        }
        if kind == "group" and spec is not None and spec.cohort is not None:
            out.update(borrowed_units=float(self.borrowed[name]), lent_units=float(self.lent[name]))
        budgets = (
            ("gpu_hours", lambda *a: self.hours_used(key, *a)),
            ("credits", lambda *a: self.credits_used(key, *a)),
            ("spot_gpu_hours", lambda *a: self.hours_used(("spot", *key), *a)),
        )
        for field, used_since in budgets:
            budget = getattr(spec, field) if spec is not None else None
            if budget is None:
                continue
            assert spec is not None
            start, end = period_window(spec, now)
            used = used_since(start, now) if start <= now else 0.0
            out.update(
                {
                    f"{field}_used": round(used, 6),
                    f"{field}_left": round(max(budget - used, 0.0), 6),
                },
                period_start=iso(start),
                period_end=iso(end),
                period=period_phrase(spec, now),
            )
        return out
