"""What the ``gpuhub`` command prints for people: tables and one-line sentences.

Each function takes the API's JSON as it comes and returns text; the commands print it.
Scripts should use ``--json`` (or ``usage --csv``) instead of parsing this text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..terms import ACTIVE, QUEUED, fmt_gpus, shape_text
from . import tables as t

SIMULATED = "simulated"


def nodes_text(node: str | None) -> str | None:
    """A lease's or job's node; a multi-node one's nodes, which the API joins with commas,
    spaced for people: ``gpu1, gpu2``."""
    return ", ".join(node.split(",")) if node else node


def devices_text(devices: Sequence[Mapping[str, Any]]) -> str | None:
    """Granted devices: ``GPU 0,1``, ``GPU 4 MIG 1g.5gb``; on several nodes (each device
    names its ``node``), per node: ``gpu1 GPU 0,1; gpu2 GPU 0,1``."""
    if not devices:
        return None
    nodes = list(dict.fromkeys(d["node"] for d in devices if d.get("node")))
    if len(nodes) > 1:
        return "; ".join(
            f"{n} {devices_text([d for d in devices if d.get('node') == n])}" for n in nodes
        )
    parts = []
    for d in devices:
        if d.get("profile"):
            parts.append(f"GPU {d.get('index')} MIG {d['profile']}")
        else:
            parts.append(str(d.get("index")))
    plain = [p for p in parts if not p.startswith("GPU ")]
    migs = [p for p in parts if p.startswith("GPU ")]
    return ", ".join(([f"GPU {','.join(plain)}"] if plain else []) + migs)


def _sim(flag: Any) -> str:
    return SIMULATED if flag else ""


# -- GPU activity -----------------------------------------------------------------------


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def activity_text(a: Mapping[str, Any] | None) -> str:
    """A lease's (or a held device's) last reported activity for people: ``73% busy``,
    ``0% busy, idle 42 min``, ``4.1 GB used, idle 3 h`` where utilization is not available
    (MIG), ``no report`` when its server has sent none."""
    if a is None:
        return "no report"
    util = a.get("utilization_mean_pct")
    if util is not None:
        parts = [f"{util:.0f}% busy"]
    else:
        parts = [f"{(a.get('memory_used_mb') or 0) / 1000:.1f} GB used"]
    idle = a.get("idle_s")
    if idle is None:
        parts.append("not seen busy")
    elif idle >= 60:
        parts.append(f"idle {_duration(idle)}")
    return ", ".join(parts)


# -- pool -------------------------------------------------------------------------------


def _holder(h: Mapping[str, Any] | None) -> str | None:
    if h is None:
        return None
    if h.get("user") is None:
        return "(another user)"
    group = f"/{h['group']}" if h.get("group") else ""
    return f"{h['user']}{group} lease {h['lease']} ({activity_text(h.get('activity'))})"


def pool_table(data: Mapping[str, Any]) -> str:
    """The pool as a table: one row per GPU, MIG instances indented under their GPU."""
    rows: list[list[Any]] = []
    for node in data.get("nodes", []):
        if not node.get("gpus"):
            rows.append(
                [node["name"], None, "(no GPUs)", None, None, None, _sim(node["simulated"])]
            )
        for g in node.get("gpus", []):
            sim = _sim(g.get("simulated") or node.get("simulated"))
            if g["mode"] == "mig":
                migs = g.get("mig_instances", [])
                outside = g.get("held_outside")  # the whole GPU: every slice with it
                used = sum(1 for m in migs if outside or m.get("holder") or m.get("held_outside"))
                state = f"{g['state']} {used}/{len(migs)}"
                rows.append([node["name"], g["index"], g["model"], "mig", state, outside, sim])
                for i, m in enumerate(migs):
                    rows.append(
                        [
                            "",
                            f"  {g['index']}.{i}",
                            f"  {m['profile']}",
                            "mig slice",
                            "busy"
                            if outside or m.get("holder") or m.get("held_outside")
                            else "free",
                            _holder(m.get("holder")) or m.get("held_outside"),
                            sim,
                        ]
                    )
                continue
            holders = g.get("holders", [])
            mode, state = g["mode"], g["state"]
            if g.get("shares", 1) > 1:
                mode, state = f"shared x{g['shares']}", f"{state} {len(holders)}/{g['shares']}"
            who = [x for x in map(_holder, holders) if x]
            if g.get("held_outside"):  # "Slurm job 42 (outside gpuhub)"
                who.append(g["held_outside"])
            rows.append(
                [node["name"], g["index"], g["model"], mode, state, ", ".join(who) or None, sim]
            )
    table = t.render(["NODE", "GPU", "MODEL", "MODE", "STATE", "HOLDERS", ""], rows)
    summary = (
        f"{t.fmt_units(data.get('units_free'))} of {t.fmt_units(data.get('units_total'))} "
        f"GPU units free, {data.get('queue_length', 0)} request(s) queued"
    )
    if data.get("simulated"):
        summary += "; this pool is simulated (no real GPUs)"
    for node in data.get("nodes", []):
        if node.get("usable") is False:
            why = f" ({node['state']})" if node.get("state") else ""
            summary += f"\nnode {node['name']} takes no new leases{why}; its running leases stay"
    return f"{table}\n\n{summary}"


def _profile_gpus(p: Mapping[str, Any]) -> str | None:
    """What a profile gives: the service's text, and for a CPU-only one that it is free."""
    if p.get("shape") is None:
        return f"{p.get('text') or 'no GPU'} (quota-free)"
    if (p.get("max_nodes") or 1) > 1:
        return f"{p.get('text')} (jobs: up to {p['max_nodes']} nodes)"
    return p.get("text")


def options_report(data: Mapping[str, Any]) -> str:
    """``gpuhub options``: the shapes I may ask for (the models behind each and what is free
    now), the profiles open to me, and the limits of jobs, as the service serves them."""
    rows = []
    for s in data.get("shapes", []):
        verdict = {"grant": "now", "queue": "queued"}.get(s.get("outcome"), "no")
        rows.append(
            [s["text"], s.get("models_text") or None, s.get("credits_text"), verdict,
             s.get("message")]
        )  # fmt: skip
    headers = ["SHAPE", "MODELS", "PRICE", "GRANTED", "NOW"]
    parts = [t.render(headers, rows) if rows else "no GPU shapes"]
    profiles = data.get("profiles") or []
    if profiles:
        parts.append(
            t.render(
                ["PROFILE", "NAME", "GPUS", "PRICE"],
                [
                    [p["name"], p.get("display_name"), _profile_gpus(p), p.get("credits_text")]
                    for p in profiles
                ],
            )
        )
    jobs = data.get("jobs") or {}
    runtime = jobs.get("max_runtime_s") or {}
    if runtime.get("default") is not None:
        line = (
            f"jobs: --max-runtime from {t.duration_text(runtime['min'])} to "
            f"{t.duration_text(runtime['max'])}, {t.duration_text(runtime['default'])} when not given"
        )
        if not jobs.get("schedules", True):
            line += "; no --schedule here"
        parts.append(line)
    parts.append(f"{data.get('queue_length', 0)} request(s) queued")
    return "\n\n".join(parts)


# -- quotas -----------------------------------------------------------------------------


def _quota_notes(item: Mapping[str, Any]) -> str | None:
    q = item.get("quota") or {}
    notes = []
    if item.get("quota") is None:
        notes.append("no quota")
    if q.get("allowed_shapes") is not None:
        notes.append("shapes " + (",".join(q["allowed_shapes"]) or "(none)"))
    if q.get("allowed_profiles") is not None:
        notes.append("profiles " + (",".join(q["allowed_profiles"]) or "(none)"))
    if q.get("per_user_max_units") is not None:
        notes.append(f"per member {fmt_gpus(q['per_user_max_units'])}")
    if q.get("credits") is not None:
        used = item.get("credits_used")
        notes.append(
            f"{t.fmt_number(used) if used is not None else '?'} of "
            f"{t.fmt_number(q['credits'])} credits used per {q.get('period')}"
        )
    if item.get("spot_units_active") or q.get("spot_max_units") is not None:
        notes.append(
            f"spot {t.fmt_units(item.get('spot_units_active') or 0)} of "
            f"{t.fmt_units_limit(q.get('spot_max_units'))} units"
        )
    if q.get("cohort") is not None:
        notes.append(
            f"cohort {q['cohort']}: borrows {t.fmt_units(item.get('borrowed_units') or 0)} "
            f"(cap {t.fmt_units_limit(q.get('borrow_limit'))}), lends "
            f"{t.fmt_units(item.get('lent_units') or 0)} "
            f"(cap {t.fmt_units_limit(q.get('lend_limit'))})"
        )
    if q.get("spot_gpu_hours") is not None:
        used = item.get("spot_gpu_hours_used")
        notes.append(
            f"{t.fmt_number(used) if used is not None else '?'} of "
            f"{t.fmt_number(q['spot_gpu_hours'])} spot GPU-hours used per {q.get('period')}"
        )
    if item.get("default"):
        notes.append("default user quota")
    return "; ".join(notes) or None


def quota_table(items: Sequence[Mapping[str, Any]]) -> str:
    """Quotas with their use: units held and queued, GPU-hours used and left."""
    rows = []
    for item in items:
        q = item.get("quota") or {}
        hours = q.get("gpu_hours")
        period = item.get("period") or (q.get("period") if q else None)
        rows.append(
            [
                item["kind"],
                item["name"],
                t.fmt_units_limit(q.get("max_units")),
                t.fmt_units(item.get("units_active")),
                t.fmt_units(item.get("units_queued")),
                t.fmt_limit(hours),
                t.fmt_number(item["gpu_hours_used"]) if "gpu_hours_used" in item else None,
                t.fmt_number(item["gpu_hours_left"]) if "gpu_hours_left" in item else None,
                period if hours is not None else None,
                q.get("priority", 0) if q else None,
                _quota_notes(item),
            ]
        )
    headers = ["KIND", "NAME", "MAX UNITS", "IN USE", "QUEUED", "GPU-HOURS", "USED", "LEFT"]
    return t.render([*headers, "PERIOD", "PRIORITY", "NOTES"], rows, right=(2, 3, 4, 5, 6, 7, 9))


def _spec_text(q: Mapping[str, Any] | None) -> str:
    if not q:
        return "unlimited"
    parts = [f"max {t.fmt_units_limit(q.get('max_units'))} GPU units"]
    if q.get("gpu_hours") is not None:
        parts.append(f"{t.fmt_number(q['gpu_hours'])} GPU-hours per {q.get('period')}")
    if q.get("credits") is not None:
        parts.append(f"{t.fmt_number(q['credits'])} credits per {q.get('period')}")
    return ", ".join(parts)


def default_quota_line(spec: Mapping[str, Any] | None) -> str:
    """The line under ``gpuhub quota list`` about the default user quota."""
    return f"default user quota (users without their own): {_spec_text(spec)}"


def quota_set_lines(kind: str, name: str, item: Mapping[str, Any]) -> str:
    """What ``gpuhub quota set`` says: the new quota with its use."""
    return f"quota of {kind} {name} set:\n\n{quota_table([item])}"


def quota_removed_sentence(kind: str, name: str) -> str:
    """What ``gpuhub quota unset`` says."""
    after = (
        "; the default user quota applies to them again"
        if kind == "user"
        else "; its members are limited by their own quotas only"
    )
    return f"removed the quota of {kind} {name}{after}"


# -- usage ------------------------------------------------------------------------------


def usage_report(data: Mapping[str, Any]) -> str:
    """GPU-hours per row of the API's usage report, and the total."""
    by = data.get("by", [])
    span = f"{t.fmt_time(data.get('start'))} to {t.fmt_time(data.get('end'))}"
    rows = data.get("rows", [])
    if not rows:
        return f"no GPU use from {span}"
    table = t.render(
        [*(f.upper() for f in by), "GPU-HOURS", "CREDITS", "LEASES"],
        [
            [r.get(f) for f in by]
            + [t.fmt_number(r["gpu_hours"]), t.fmt_number(r.get("credits")), r["leases"]]
            for r in rows
        ],
        right=(len(by), len(by) + 1, len(by) + 2),
    )
    return f"{table}\n\ntotal {t.fmt_number(data.get('total_gpu_hours'))} GPU-hours from {span}"


# -- leases and the queue ---------------------------------------------------------------


def leases_table(leases: Sequence[Mapping[str, Any]]) -> str:
    """Leases: who, what shape, where, since when; simulated devices marked."""
    rows = []
    for x in leases:
        status = x["status"]
        if status == QUEUED and x.get("position"):
            status = f"queued #{x['position']}"
        rows.append(
            [
                x["id"],
                x["user"],
                x.get("group"),
                status,
                shape_text(x.get("shape", {})),
                t.fmt_units(x.get("units")),
                x.get("node"),
                devices_text(x.get("devices", [])),
                t.fmt_number(x.get("gpu_hours")),
                t.fmt_time(x.get("granted_at") or x.get("requested_at")),
                activity_text(x.get("activity")) if x["status"] == ACTIVE else None,
                _sim(x.get("simulated")),
            ]
        )
    headers = ["ID", "USER", "GROUP", "STATUS", "SHAPE", "UNITS", "NODE", "DEVICES", "GPU-HOURS"]
    return t.render([*headers, "SINCE", "ACTIVITY", ""], rows, right=(0, 5, 8))


def idle_lines(leases: Sequence[Mapping[str, Any]]) -> list[str]:
    """Warnings for leases about to be reclaimed as idle, each with the command that keeps
    it: 'lease 17 has been idle since 13:40 UTC: ... gpuhub keep 17 --for 1h'."""
    lines = []
    for x in leases:
        warn = x.get("idle_warning")
        if not warn:
            continue
        kinds = [t.duration_text(s) for s in warn.get("can_keep_for") or []]
        keep = (
            f"; keep it with: gpuhub keep {x['id']} --for {kinds[0]}"
            + (f" (or {', '.join(kinds[1:])})" if kinds[1:] else "")
            if kinds
            else ""
        )
        lines.append(
            f"lease {x['id']} ({x.get('user')}) has been idle since {t.fmt_time(warn.get('since'))}: "
            f"its server is stopped and its GPUs released at {t.fmt_time(warn.get('reclaim_at'))}"
            f"{keep}"
        )
    return lines


#: The queue table's words for why a request waits (the API's ``waiting.reason``).
WAIT_REASONS = {
    "pool_busy": "pool busy",
    "quota_limit": "quota",
    "queue_order": "queue order",
    "reserved": "reserved",
}


def queue_table(queue: Sequence[Mapping[str, Any]]) -> str:
    """Waiting requests in the order they will be granted; then, for those the caller may
    see (their own; all for admins), why each waits, until when, and what is free now."""
    rows = []
    for x in queue:
        why = x.get("waiting") or {}
        rows.append(
            [
                x.get("position"),
                x.get("id"),
                x.get("user") or "(another user)",
                x.get("group"),
                shape_text(x.get("shape", {})),
                t.fmt_units(x.get("units")),
                x.get("priority"),
                t.fmt_time(x.get("requested_at")),
                WAIT_REASONS.get(why.get("reason"), why.get("reason")),
                t.fmt_time((why.get("estimate") or {}).get("at")) if why else None,
            ]
        )
    headers = ["POS", "ID", "USER", "GROUP", "SHAPE", "UNITS", "PRIORITY", "REQUESTED"]
    table = t.render([*headers, "WAITING", "EXPECTED"], rows, right=(0, 1, 5, 6))
    why_lines = [line for x in queue for line in waiting_lines(x)]
    return table + ("\n\nwhy:\n" + "\n".join(why_lines) if why_lines else "")


def waiting_lines(lease: Mapping[str, Any]) -> list[str]:
    """Why a queued lease waits, as the API explains it: '#2 lease 7: all 4 H100 GPUs are
    held; expected by 14:20 UTC (from ...)' and what is free now; none if not explained."""
    why = lease.get("waiting")
    if not why:
        return []
    estimate = (why.get("estimate") or {}).get("message") or "no estimate"
    where = f"  #{lease.get('position')} lease {lease.get('id')}"
    lines = [f"{where}: {why.get('message')}; {estimate}"]
    free = [a.get("message", "") for a in why.get("alternatives") or []]
    if free:
        lines.append(f"      instead: {', '.join(free)}")
    return lines


def lease_sentence(lease: Mapping[str, Any]) -> str:
    """One line about a lease just requested or released."""
    what = shape_text(lease.get("shape", {}))
    lid, status = lease["id"], lease["status"]
    if status == ACTIVE:
        devs = devices_text(lease.get("devices", []))
        sim = f" ({SIMULATED})" if lease.get("simulated") else ""
        if "," in (lease.get("node") or ""):  # several nodes: the devices name theirs
            return f"lease {lid} granted: {what} on {devs}{sim}"
        return f"lease {lid} granted: {what} on {lease.get('node')}, {devs}{sim}"
    if status == QUEUED:
        return (
            f"lease {lid} queued at position {lease.get('position')}: {what}; it is granted "
            f"when devices free up (cancel with: gpuhub release {lid})"
        )
    reason = f" ({lease['end_reason']})" if lease.get("end_reason") else ""
    return f"lease {lid} {status}: {what}{reason}"


# -- inventory --------------------------------------------------------------------------


def inventory_table(node: Mapping[str, Any]) -> str:
    """This node's GPUs as NVML reports them, MIG devices indented."""
    gpus = node.get("gpus", [])
    sim = _sim(node.get("simulated"))
    if not gpus:
        return f"node {node['name']}: no GPUs found (no NVIDIA driver or NVML library here)" + (
            f" ({sim})" if sim else ""
        )
    rows: list[list[Any]] = []
    for g in gpus:
        gsim = _sim(g.get("simulated") or node.get("simulated"))
        mode = "mig" if g.get("mig_enabled") else "exclusive"
        if not g.get("mig_enabled") and g.get("shares", 1) > 1:
            mode = f"shared x{g['shares']}"
        peers = len(g.get("nvlink_peers", []))
        rows.append(
            [
                g["index"],
                g["model"],
                t.fmt_memory(g.get("memory_mb")),
                mode,
                f"{peers} peer(s)" if peers else None,
                g["uuid"],
                gsim,
            ]
        )
        for m in g.get("mig_instances", []):
            rows.append(
                [
                    f"  {g['index']}.{m['index']}",
                    f"  {m['profile']}",
                    t.fmt_memory(m.get("memory_mb")),
                    f"mig slice ({m['slices']}/{g.get('total_slices', 7)})",
                    None,
                    m["uuid"],
                    gsim,
                ]
            )
    table = t.render(["GPU", "MODEL", "MEMORY", "MODE", "NVLINK", "UUID", ""], rows)
    return f"node {node['name']}: {len(gpus)} GPU(s)\n\n{table}"
