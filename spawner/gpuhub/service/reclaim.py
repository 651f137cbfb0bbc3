"""GPU-idle reclaim: warn about notebook servers whose GPUs sit idle, then stop them.

Each active lease held for a single-user server (label ``server:USER/NAME``) is judged
from the activity its server reports (:mod:`gpuhub.scheduler.activity`): the GPUs count
as busy when a report's maximum utilization reaches the rule's ``threshold_pct`` (where a
device reports no utilization, e.g. a MIG slice without GPM metrics, the server's own
``last_active_at`` decides), and an executing kernel or an open terminal counts as busy
too. A lease that never reported is left alone: its idleness is unknown.

The decision per lease is a replaceable function (:func:`default_idle_policy`, like
jupyterhub-idle-culler's arbiter): keep, warn, or reclaim. A warned lease shows
``idle_warning`` on its lease view; its user may keep it for a while
(``POST /api/v1/leases/{id}/keep``). Past the warning's ``reclaim_at`` its server is
stopped through the hub API and the lease released through the scheduler with the reason
in the ledger. Leases of jobs are never reclaimed for idleness.

Warnings and keeps live in memory: a restart of the service forgets them, and a lease
idle past its window is then warned again (with the full lead time) before it is reclaimed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from traitlets import Any as AnyTrait
from traitlets import Dict, Float, Instance, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable
from traitlets.utils.importstring import import_item

from ..scheduler.activity import Activity, LeaseNotActive
from ..scheduler.core import Scheduler
from ..scheduler.errors import SchedulerError
from ..scheduler.lease import Lease, iso
from ..terms import ACTIVE, server_of

log = logging.getLogger("gpuhub.reclaim")

Decision = Literal["keep", "warn", "reclaim"]
DECISIONS = ("keep", "warn", "reclaim")
#: The shortest keep a user may ask for, in seconds.
MIN_KEEP_S = 60
RULE_KEYS = {"idle_s", "warn_s", "threshold_pct", "max_keep_s"}


class NotReclaimable(SchedulerError):
    """The lease is not one idle reclaim watches (a job's lease): there is nothing to keep."""

    code = "not_reclaimable"


@dataclass(frozen=True)
class IdleRule:
    """When a lease counts as idle and what happens then.

    ``idle_s``: seconds idle before the server is stopped (0: never); ``warn_s``: the
    warning comes this many seconds before; ``threshold_pct``: utilization at or above
    which the GPUs count as busy; ``max_keep_s``: the longest a user may keep it at once.
    """

    idle_s: float = 7200.0
    warn_s: float = 1800.0
    threshold_pct: float = 5.0
    max_keep_s: float = 14400.0

    @property
    def warn_after_s(self) -> float:
        """Seconds idle before the warning."""
        return max(0.0, self.idle_s - self.warn_s)

    @classmethod
    def from_dict(cls, value: dict[str, Any], where: str) -> IdleRule:
        """A rule from a configuration dict; ValueError naming ``where`` when it is wrong."""
        return cls(**check_rule(value, where))


def check_rule(value: Any, where: str) -> dict[str, float]:
    """``value`` checked as (part of) a rule: known keys, non-negative numbers."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a dict like {{'idle_s': 3600}}, not {value!r}")
    unknown = set(value) - RULE_KEYS
    if unknown:
        raise ValueError(
            f"{where} has unknown key {sorted(unknown)[0]!r}; use {', '.join(sorted(RULE_KEYS))}"
        )
    out = {}
    for key, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e9:
            raise ValueError(f"{where}[{key!r}] must be a number of at least 0, not {v!r}")
        out[key] = float(v)
    if out.get("threshold_pct", 0) > 100:
        raise ValueError(f"{where}['threshold_pct'] must be at most 100")
    return out


@dataclass(frozen=True)
class Idleness:
    """What a policy decides on: the lease, its latest activity, how long it has been idle
    (None: unknown, it never reported) and its rule, at ``now``."""

    lease: Lease
    activity: Activity | None
    idle_s: float | None
    rule: IdleRule
    now: float


def default_idle_policy(idle: Idleness) -> Decision:
    """Warn past the rule's warning point, reclaim past its window, else keep."""
    if idle.idle_s is None or idle.rule.idle_s <= 0:
        return "keep"
    if idle.idle_s >= idle.rule.idle_s:
        return "reclaim"
    if idle.idle_s >= idle.rule.warn_after_s:
        return "warn"
    return "keep"


def fmt_duration(seconds: float) -> str:
    """Durations for people: '40 s', '45 min', '2 h', '1 h 30 min'."""
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(round(seconds / 60))
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"


@dataclass
class IdleWarning:
    """A lease warned about: idle since ``since``, reclaimed at ``reclaim_at``."""

    since: float
    reclaim_at: float
    can_keep_for: list[int]

    def to_dict(self) -> dict[str, Any]:
        """As the lease view shows it."""
        return {
            "since": iso(self.since),
            "reclaim_at": iso(self.reclaim_at),
            "can_keep_for": list(self.can_keep_for),
        }


def _callable(value: Any) -> Callable[[Idleness], str]:
    """A policy, or the one its import string names; TraitError when it is neither."""
    if isinstance(value, str):
        try:
            value = import_item(value)
        except (ImportError, AttributeError, ValueError) as e:
            raise TraitError(f"Reclaimer.policy {value!r} cannot be imported: {e}") from e
    if not callable(value):
        raise TraitError(f"Reclaimer.policy must be callable, not {value!r}")
    return value


class Reclaimer(LoggingConfigurable):
    """Warns about, then reclaims, notebook servers whose GPUs stay idle (see the module)."""

    interval = Float(
        15.0,
        config=True,
        help="""Seconds between two looks at the leases' activity (reports come every 30 s).
        0 turns GPU-idle reclaim off.""",
    )
    default_rule = Dict(
        config=True,
        help="""The rule of leases no group or profile rule covers, e.g. ``{"idle_s": 7200,
        "warn_s": 1800, "threshold_pct": 5, "max_keep_s": 14400}``: stop the server after
        2 h below 5 % utilization, warn 30 min before, let the user keep it up to 4 h at
        once. Keys left out take these values; ``"idle_s": 0`` never reclaims.""",
    )
    group_rules = Dict(
        config=True,
        help="""Rules (or parts of rules) per group the lease is charged to, over
        ``default_rule``, e.g. ``{"cs101": {"idle_s": 1800, "warn_s": 600}}``.""",
    )
    profile_rules = Dict(
        config=True,
        help="""Rules (or parts of rules) per profile name, over the group's and the
        default rule, e.g. ``{"mig-1g.5gb": {"idle_s": 3600}}``.""",
    )
    policy = AnyTrait(
        "gpuhub.service.reclaim.default_idle_policy",
        config=True,
        help="""The decision per lease: a callable (or its import string, e.g.
        ``"mypackage.policy"``) taking an ``Idleness`` (lease, activity, idle_s, rule,
        now) and returning ``"keep"``, ``"warn"`` or ``"reclaim"``. A lease is reclaimed
        only after it was warned and its warning's time came.""",
    )
    keep_choices = List(
        [3600, 14400],
        config=True,
        help="Seconds a user is offered to keep a warned server (those within the rule's max).",
    )
    hub_api_url = Unicode(config=True, help="JupyterHub's API URL. Default: $JUPYTERHUB_API_URL.")
    hub_api_token = Unicode(
        config=True, help="Token to stop servers with. Default: $JUPYTERHUB_API_TOKEN."
    )

    scheduler = Instance(Scheduler)
    clock = AnyTrait(help="A callable returning the time; default: the scheduler's clock.")

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    @default("hub_api_token")
    def _default_hub_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("clock")
    def _default_clock(self) -> Callable[[], float]:
        return self.scheduler.view.clock

    @validate("default_rule")
    def _check_default_rule(self, proposal: Any) -> dict:
        return self._checked(proposal.value, "Reclaimer.default_rule")

    @validate("group_rules", "profile_rules")
    def _check_rules(self, proposal: Any) -> dict:
        name = f"Reclaimer.{proposal.trait.name}"
        if not isinstance(proposal.value, dict):
            raise TraitError(f"{name} must be a dict of rules by name")
        return {k: self._checked(v, f"{name}[{k!r}]") for k, v in proposal.value.items()}

    @staticmethod
    def _checked(value: Any, where: str) -> dict:
        try:
            check_rule(value, where)
        except ValueError as e:
            raise TraitError(str(e)) from e
        return value

    def check_profile_rules(self, profiles: Iterable[Any]) -> list[str]:
        """Sentences, one per ``profile_rules`` entry that can never apply: a name no
        profile has, or a profile without a GPU (its servers hold no lease to reclaim;
        JupyterHub's idle culler stops them). Logged as warnings; an empty list when
        the profiles are not known here (a per-user profile list)."""
        known = {p.name: p for p in profiles}
        if not known:
            return []
        problems = []
        for name in self.profile_rules:
            if name not in known:
                problems.append(
                    f"Reclaimer.profile_rules[{name!r}] names no profile (profiles: "
                    f"{', '.join(sorted(known))}); it never applies"
                )
            elif not known[name].has_gpu:
                problems.append(
                    f"Reclaimer.profile_rules[{name!r}] never applies: profile {name} has "
                    "no GPU, so its servers hold no lease to reclaim (JupyterHub's idle "
                    "culler stops idle servers)"
                )
        for problem in problems:
            self.log.warning(problem)
        return problems

    @validate("policy")
    def _check_policy(self, proposal: Any) -> Callable[[Idleness], str]:
        return _callable(proposal.value)

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._active_at: dict[int, float] = {}  # lease -> last time seen busy (or granted)
        self._seen: dict[int, float] = {}  # lease -> reported_at of the last report judged
        self._kept: dict[int, float] = {}  # lease -> kept until
        self._warnings: dict[int, IdleWarning] = {}
        self._reasons: dict[int, str] = {}  # leases being reclaimed -> the ledger's reason
        self.reclaimed = 0  # leases released by reclaim since start, for logs and tests

    # -- rules --------------------------------------------------------------------------

    def rule_for(self, lease: Lease) -> IdleRule:
        """The lease's rule: the default, then its group's, then its profile's keys."""
        merged = dict(self.default_rule)
        if lease.group:
            merged.update(self.group_rules.get(lease.group) or {})
        if lease.profile:
            merged.update(self.profile_rules.get(lease.profile) or {})
        return IdleRule.from_dict(merged, f"the rule of lease {lease.id}")

    def watches(self, lease: Lease) -> bool:
        """Whether idle reclaim judges ``lease``: active and held for a notebook server."""
        return lease.status == ACTIVE and server_of(lease.label) is not None

    # -- what the lease view shows, and keeping ----------------------------------------

    def warning(self, lease_id: int) -> dict[str, Any] | None:
        """The lease's current idle warning as the API shows it, or None."""
        w = self._warnings.get(lease_id)
        return None if w is None else w.to_dict()

    def keep(self, lease: Lease, seconds: float) -> float:
        """Keep a watched lease from reclaim for ``seconds`` (within its rule); the time it
        is kept until. Refusals change nothing."""
        if lease.status != ACTIVE:
            raise LeaseNotActive(
                f"lease {lease.id} is {lease.status}, not active: there is nothing to keep"
            )
        if not self.watches(lease):
            raise NotReclaimable(
                f"lease {lease.id} is not held by a notebook server (label {lease.label!r}): "
                "idle reclaim never stops it, so there is nothing to keep"
            )
        rule = self.rule_for(lease)
        if not MIN_KEEP_S <= seconds <= rule.max_keep_s:
            raise SchedulerError(
                f"seconds must be between {MIN_KEEP_S} and {rule.max_keep_s:g} ("
                f"{fmt_duration(MIN_KEEP_S)} to {fmt_duration(rule.max_keep_s)}, the longest "
                f"the idle rule of lease {lease.id} allows at once), not {seconds:g}",
                field="seconds",
            )
        until = max(self._kept.get(lease.id, 0.0), self.clock() + seconds)
        self._kept[lease.id] = until
        self._warnings.pop(lease.id, None)
        log.info("lease %s kept from idle reclaim until %s by its user", lease.id, iso(until))
        return until

    # -- the tick -----------------------------------------------------------------------

    def _active_since(self, lease: Lease, rule: IdleRule, now: float) -> float | None:
        """The last time the lease counted as busy (or kept), or None when it never reported."""
        activity = self.scheduler.view.activity(lease.id)
        if activity is None and lease.id not in self._active_at:
            return None
        t = self._active_at.get(lease.id)
        if t is None:  # first sight (or after a restart): the server's word is all there is
            t = max(lease.granted_at or now, activity.last_active_at or 0.0)
        if activity is not None and activity.reported_at > self._seen.get(lease.id, 0.0):
            self._seen[lease.id] = activity.reported_at
            peak = activity.utilization_max_pct
            busy = activity.notebook_busy or (peak is not None and peak >= rule.threshold_pct)
            if peak is None and activity.last_active_at is not None:
                t = max(t, activity.last_active_at)  # no utilization: the server judged
            if busy:
                t = max(t, activity.reported_at)
        self._active_at[lease.id] = t
        kept = self._kept.get(lease.id)
        # after a keep the warning comes back when the kept time ends
        return t if kept is None else max(t, kept - rule.warn_after_s)

    def judge(self, lease: Lease, now: float) -> tuple[Decision, IdleRule, float | None]:
        """The policy's decision on a watched lease at ``now``, its rule and idle seconds."""
        rule = self.rule_for(lease)
        since = self._active_since(lease, rule, now)
        idle = None if since is None else max(0.0, now - since)
        idle_ness = Idleness(lease, self.scheduler.view.activity(lease.id), idle, rule, now)
        try:
            decision = _callable(self.policy)(idle_ness)
        except Exception:  # a broken policy must not stop the others' judgement
            log.exception("idle policy failed on lease %s; keeping it", lease.id)
            decision = "keep"
        if decision not in DECISIONS:
            log.error("idle policy said %r for lease %s; keeping it", decision, lease.id)
            decision = "keep"
        if now < self._kept.get(lease.id, 0.0):
            decision = "keep"
        return decision, rule, idle

    async def tick(self) -> list[int]:
        """Look at every watched lease once: warn, drop warnings, reclaim. The ids reclaimed."""
        now = self.clock()
        watched, reclaimed = set(), []
        for lease in self.scheduler.view.live_leases(ACTIVE):
            if not self.watches(lease):
                continue
            watched.add(lease.id)
            decision, rule, idle = self.judge(lease, now)
            if decision == "keep" or idle is None:
                self._warnings.pop(lease.id, None)
                continue
            warning = self._warnings.get(lease.id)
            # idle counts from the end of a keep; people are told since when it really was
            really_idle = now - self._active_at.get(lease.id, now - idle)
            if warning is None:
                reclaim_at = max(now - idle + rule.idle_s, now + rule.warn_s)
                choices = [int(s) for s in self.keep_choices if s <= rule.max_keep_s]
                warning = IdleWarning(now - really_idle, reclaim_at, choices)
                self._warnings[lease.id] = warning
                log.info(
                    "lease %s of %s: GPUs idle for %s; its server will be stopped at %s",
                    lease.id, lease.user, fmt_duration(really_idle), iso(reclaim_at),
                )  # fmt: skip
            if decision == "reclaim" and now >= warning.reclaim_at:
                if await self.reclaim(lease, really_idle):
                    reclaimed.append(lease.id)
        for table in (self._active_at, self._seen, self._kept, self._warnings, self._reasons):
            for lid in [k for k in table if k not in watched]:
                del table[lid]
        return reclaimed

    def end_reason(self, lease_id: int) -> str | None:
        """The ledger's reason for a lease being reclaimed now (its spawner's release, while
        its server stops, uses it), or None."""
        return self._reasons.get(lease_id)

    async def reclaim(self, lease: Lease, idle_s: float) -> bool:
        """Stop the lease's server through the hub API, then release the lease through the
        scheduler with the reason (a no-op when the spawner's stop already released it with
        that reason). True when the reclaim ended the lease; False when it had already ended
        or the hub did not stop the server (tried again next tick, the lease kept meanwhile).

        Stopping first means a failure half-way never leaves a server running on GPUs that
        went back to the pool; without a hub (no API URL) the lease is only released.
        """
        owner = server_of(lease.label)
        if self.scheduler.view.live_lease(lease.id) is None or owner is None:
            return False
        reason = f"reclaimed: GPUs idle for {fmt_duration(idle_s)}"
        self._reasons[lease.id] = reason
        where = f"{owner[0]}/{owner[1]}" if owner[1] else f"{owner[0]}'s default server"
        if self.hub_api_url:
            try:
                await self.stop_server(*owner)
            except Exception as e:  # noqa: BLE001 - the hub may be away; try next tick
                log.warning("cannot stop server %s of lease %s: %s", where, lease.id, e)
                return False
        if self.scheduler.view.live_lease(lease.id) is None:  # its spawner released it meanwhile
            ended = self.scheduler.view.get(lease.id).end_reason == reason
        else:
            ended = self.scheduler.release(lease.id, reason=reason).end_reason == reason
        self._warnings.pop(lease.id, None)
        if ended:
            self.reclaimed += 1
            log.warning(
                "lease %s reclaimed: user=%s server=%s node=%s devices=%s reason=%s", lease.id,
                owner[0], where, lease.node, ",".join(d["uuid"] for d in lease.devices) or "-",
                reason,
            )  # fmt: skip
        return ended

    async def stop_server(self, user: str, server: str) -> None:
        """``DELETE`` the user's server through the hub API; a server already gone is fine."""
        if not self.hub_api_url:
            raise RuntimeError("no hub API URL (JUPYTERHUB_API_URL) to stop servers with")
        from .hub_api import HubApi  # here, not above: the service's errors import this module

        await HubApi(self.hub_api_url, self.hub_api_token).stop_server(user, server)
