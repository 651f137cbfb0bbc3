"""Argument parsing and dispatch of the ``gpuhub`` command.

Every command except ``inventory`` calls the gpuhub REST API through
:class:`~gpuhub.cli.client.GpuhubClient`. Read commands print aligned tables for people
and, with ``--json``, the API's JSON for scripts. Any failure is one line on stderr,
``gpuhub: error: <message>``, and exit status 1; usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .. import __version__
from . import tables as t
from .client import CliError, GpuhubClient

DEFAULT_URL = "http://127.0.0.1:8000/services/gpuhub"
QUOTA_FIELDS = (
    "max_units",
    "gpu_hours",
    "period",
    "term_start",
    "term_end",
    "allowed_shapes",
    "allowed_profiles",
    "priority",
    "per_user_max_units",
)
STATUSES = ("queued", "active", "released", "cancelled", "refused")
SIMULATED = "simulated"

Command = Callable[[argparse.Namespace, GpuhubClient | None], None]


# -- defaults from the environment ------------------------------------------------------


def default_url(env: Mapping[str, str] = os.environ) -> str:
    """$GPUHUB_URL, else $JUPYTERHUB_URL + /services/gpuhub, else the local default."""
    if env.get("GPUHUB_URL"):
        return env["GPUHUB_URL"]
    if env.get("JUPYTERHUB_URL"):
        return env["JUPYTERHUB_URL"].rstrip("/") + "/services/gpuhub"
    return DEFAULT_URL


def default_token(env: Mapping[str, str] = os.environ) -> str | None:
    """$GPUHUB_TOKEN, else $JUPYTERHUB_API_TOKEN (set inside single-user servers)."""
    return env.get("GPUHUB_TOKEN") or env.get("JUPYTERHUB_API_TOKEN") or None


# -- small helpers ----------------------------------------------------------------------


def emit_json(data: Any) -> None:
    """Print API data as indented JSON."""
    print(json.dumps(data, indent=2))


def one_line(message: str) -> str:
    """A message squeezed onto one line."""
    return " ".join(str(message).split())


def _seg(name: str) -> str:
    return quote(name, safe="")


def _target(args: argparse.Namespace) -> tuple[str, str, str]:
    """(API collection, kind, name) of ``--user NAME`` / ``--group NAME``."""
    if getattr(args, "user", None):
        return "users", "user", args.user
    return "groups", "group", args.group


def shape_text(shape: Mapping[str, Any]) -> str:
    """A lease shape in a few words: ``2x GPU H100``, ``MIG 1g.5gb``, ``shared GPU``."""
    model = f" {shape['model']}" if shape.get("model") else ""
    if shape.get("kind") == "mig":
        return f"MIG {shape.get('profile')}{model}"
    if shape.get("kind") == "shared":
        return f"shared GPU{model}"
    return f"{shape.get('count', 1)}x GPU{model}"


def devices_text(devices: Sequence[Mapping[str, Any]]) -> str | None:
    """Granted devices: ``GPU 0,1``, ``GPU 4 MIG 1g.5gb``."""
    if not devices:
        return None
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


# -- pool -------------------------------------------------------------------------------


def _holder(h: Mapping[str, Any] | None) -> str | None:
    if h is None:
        return None
    if h.get("user") is None:
        return "(another user)"
    group = f"/{h['group']}" if h.get("group") else ""
    return f"{h['user']}{group} lease {h['lease']}"


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
                used = sum(1 for m in migs if m.get("holder"))
                state = f"{g['state']} {used}/{len(migs)}"
                rows.append([node["name"], g["index"], g["model"], "mig", state, None, sim])
                for i, m in enumerate(migs):
                    rows.append(
                        [
                            "",
                            f"  {g['index']}.{i}",
                            f"  {m['profile']}",
                            "mig slice",
                            "busy" if m.get("holder") else "free",
                            _holder(m.get("holder")),
                            sim,
                        ]
                    )
                continue
            holders = g.get("holders", [])
            mode, state = g["mode"], g["state"]
            if g.get("shares", 1) > 1:
                mode, state = f"shared x{g['shares']}", f"{state} {len(holders)}/{g['shares']}"
            who = ", ".join(x for x in map(_holder, holders) if x) or None
            rows.append([node["name"], g["index"], g["model"], mode, state, who, sim])
    table = t.render(["NODE", "GPU", "MODEL", "MODE", "STATE", "HOLDERS", ""], rows)
    summary = (
        f"{t.fmt_number(data.get('units_free'))} of {t.fmt_number(data.get('units_total'))} "
        f"GPU units free, {data.get('queue_length', 0)} request(s) queued"
    )
    if data.get("simulated"):
        summary += "; this pool is simulated (no real GPUs)"
    return f"{table}\n\n{summary}"


def cmd_pool(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub pool``."""
    assert client is not None
    data = client.get("pool")
    if args.json:
        emit_json(data)
    else:
        print(pool_table(data))


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
        notes.append(f"per user {t.fmt_number(q['per_user_max_units'])} units")
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
                t.fmt_limit(q.get("max_units")),
                t.fmt_number(item.get("units_active")),
                t.fmt_number(item.get("units_queued")),
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
    parts = [f"max {t.fmt_limit(q.get('max_units'))} units"]
    if q.get("gpu_hours") is not None:
        parts.append(f"{t.fmt_number(q['gpu_hours'])} GPU-hours per {q.get('period')}")
    return ", ".join(parts)


def cmd_quota_show(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota show``: mine (``/me``), or one user's or group's."""
    assert client is not None
    if args.user or args.group:
        coll, _, name = _target(args)
        data = client.get(f"quotas/{coll}/{_seg(name)}")
        if args.json:
            emit_json(data)
        else:
            print(quota_table([data]))
        return
    me = client.get("me")
    if args.json:
        emit_json(me)
        return
    groups = ", ".join(me.get("groups") or []) or "none"
    admin = "; gpuhub admin" if me.get("admin") else ""
    print(f"{me['name']} (groups: {groups}{admin})\n")
    print(quota_table(me.get("quotas", [])))


def cmd_quota_list(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota list``: every quota (admins)."""
    assert client is not None
    data = client.get("quotas")
    if args.json:
        emit_json(data)
        return
    if data.get("quotas"):
        print(quota_table(data["quotas"]))
    else:
        print("no user or group quotas are set")
    print(
        f"\ndefault user quota (users without their own): {_spec_text(data.get('default_user_quota'))}"
    )


def cmd_quota_set(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota set``: change the given fields of a quota, keeping the others."""
    assert client is not None
    coll, kind, name = _target(args)
    changes = {f: getattr(args, f) for f in QUOTA_FIELDS if hasattr(args, f)}
    if not changes:
        raise CliError(
            "nothing to set: give at least one of "
            + ", ".join("--" + f.replace("_", "-") for f in QUOTA_FIELDS)
        )
    path = f"quotas/{coll}/{_seg(name)}"
    try:
        # a user without a quota of their own starts from the default user quota
        current = dict(client.get(path).get("quota") or {})
    except CliError as e:
        if e.status not in (403, 404):
            raise
        current = {}  # none yet; or not allowed to read it, and the PUT will say why
    if kind == "user":
        current.pop("per_user_max_units", None)
    spec = {**current, **changes}
    if "period" in changes and changes["period"] != "term":
        for f in ("term_start", "term_end"):
            if f not in changes:
                spec.pop(f, None)
    try:
        data = client.put(path, spec)
    except CliError as e:
        if e.field in QUOTA_FIELDS and "--" not in e.message:
            e.message += f" (--{e.field.replace('_', '-')})"
        raise
    if args.json:
        emit_json(data)
        return
    print(f"quota of {kind} {name} set:\n")
    print(quota_table([data]))


def cmd_quota_unset(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota unset``: remove a user's or group's quota."""
    assert client is not None
    coll, kind, name = _target(args)
    client.delete(f"quotas/{coll}/{_seg(name)}")
    after = (
        "; the default user quota applies to them again"
        if kind == "user"
        else "; its members are limited by their own quotas only"
    )
    print(f"removed the quota of {kind} {name}{after}")


# -- usage ------------------------------------------------------------------------------


def cmd_usage(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub usage``: GPU-hours per day, user and group."""
    assert client is not None
    params = {
        k: v
        for k, v in (
            ("start", args.start),
            ("end", args.end),
            ("user", args.user),
            ("group", args.group),
            ("by", args.by),
        )
        if v is not None
    }
    if args.csv:
        sys.stdout.write(client.get_text("usage", {**params, "format": "csv"}))
        return
    data = client.get("usage", params)
    if args.json:
        emit_json(data)
        return
    by = data.get("by", [])
    span = f"{t.fmt_time(data.get('start'))} to {t.fmt_time(data.get('end'))}"
    rows = data.get("rows", [])
    if not rows:
        print(f"no GPU use from {span}")
        return
    table = t.render(
        [*(f.upper() for f in by), "GPU-HOURS", "LEASES"],
        [[r.get(f) for f in by] + [t.fmt_number(r["gpu_hours"]), r["leases"]] for r in rows],
        right=(len(by), len(by) + 1),
    )
    print(table)
    print(f"\ntotal {t.fmt_number(data.get('total_gpu_hours'))} GPU-hours from {span}")


# -- leases, queue, request, release ----------------------------------------------------


def leases_table(leases: Sequence[Mapping[str, Any]]) -> str:
    """Leases: who, what shape, where, since when; simulated devices marked."""
    rows = []
    for x in leases:
        status = x["status"]
        if status == "queued" and x.get("position"):
            status = f"queued #{x['position']}"
        rows.append(
            [
                x["id"],
                x["user"],
                x.get("group"),
                status,
                shape_text(x.get("shape", {})),
                t.fmt_number(x.get("units")),
                x.get("node"),
                devices_text(x.get("devices", [])),
                t.fmt_number(x.get("gpu_hours")),
                t.fmt_time(x.get("granted_at") or x.get("requested_at")),
                _sim(x.get("simulated")),
            ]
        )
    headers = ["ID", "USER", "GROUP", "STATUS", "SHAPE", "UNITS", "NODE", "DEVICES", "GPU-HOURS"]
    return t.render([*headers, "SINCE", ""], rows, right=(0, 5, 8))


def cmd_leases(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub leases``: live leases (mine, or everyone's for admins), or with --status."""
    assert client is not None
    params: list[tuple[str, Any]] = []
    if args.user:
        params.append(("user", args.user))
    statuses = STATUSES if args.all_statuses else (args.status or ())
    params += [("status", s) for s in statuses]
    params.append(("limit", args.limit))
    data = client.get("leases", params)
    if args.json:
        emit_json(data)
    elif not data.get("leases"):
        print("no leases")
    else:
        print(leases_table(data["leases"]))


def cmd_queue(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub queue``: waiting requests in the order they will be granted."""
    assert client is not None
    data = client.get("queue")
    if args.json:
        emit_json(data)
        return
    if not data.get("queue"):
        print("the queue is empty")
        return
    rows = [
        [
            x.get("position"),
            x.get("id"),
            x.get("user") or "(another user)",
            x.get("group"),
            shape_text(x.get("shape", {})),
            t.fmt_number(x.get("units")),
            x.get("priority"),
            t.fmt_time(x.get("requested_at")),
        ]
        for x in data["queue"]
    ]
    headers = ["POS", "ID", "USER", "GROUP", "SHAPE", "UNITS", "PRIORITY", "REQUESTED"]
    print(t.render(headers, rows, right=(0, 1, 5, 6)))


def lease_sentence(lease: Mapping[str, Any]) -> str:
    """One line about a lease just requested or released."""
    what = shape_text(lease.get("shape", {}))
    lid, status = lease["id"], lease["status"]
    if status == "active":
        where = f" on {lease.get('node')}"
        devs = devices_text(lease.get("devices", []))
        sim = f" ({SIMULATED})" if lease.get("simulated") else ""
        return f"lease {lid} granted: {what}{where}, {devs}{sim}"
    if status == "queued":
        return (
            f"lease {lid} queued at position {lease.get('position')}: {what}; it is granted "
            f"when devices free up (cancel with: gpuhub release {lid})"
        )
    reason = f" ({lease['end_reason']})" if lease.get("end_reason") else ""
    return f"lease {lid} {status}: {what}{reason}"


def cmd_request(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub request``: ask for GPUs; granted now or queued."""
    assert client is not None
    shape: dict[str, Any]
    if args.mig:
        shape = {"kind": "mig", "profile": args.mig}
    elif args.shared:
        shape = {"kind": "shared"}
    else:
        shape = {"kind": "gpu", "count": args.gpus}
    if args.model:
        shape["model"] = args.model
    body: dict[str, Any] = {"shape": shape, "label": args.label}
    for key in ("group", "hours", "profile", "user"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    lease = client.post("leases", body)
    if args.json:
        emit_json(lease)
    else:
        print(lease_sentence(lease))


def cmd_release(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub release ID``: release an active lease or cancel a queued one."""
    assert client is not None
    lease = client.delete(f"leases/{args.id}")
    if args.json:
        emit_json(lease)
    else:
        print(lease_sentence(lease))


# -- inventory (local, no server) -------------------------------------------------------


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


def cmd_inventory(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub inventory``: this machine's GPUs through NVML, as FileInventory reads them."""
    from ..inventory import NvmlInventory

    log = logging.getLogger("gpuhub.cli.inventory")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gpuhub: warning: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.WARNING)
    kw: dict[str, Any] = {"log": log}
    if args.node_name:
        kw["node_name"] = args.node_name
    try:
        node = NvmlInventory(**kw).nodes()[0].to_dict()
    except Exception as e:  # NVML errors of any kind become one line
        raise CliError(f"cannot read this machine's GPUs through NVML: {e}") from e
    if args.json:
        emit_json(node)
    else:
        print(inventory_table(node))


# -- argument parsing -------------------------------------------------------------------


def _number(text: str) -> float | None:
    """A non-empty number, or ``none``/``unlimited`` for no limit."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number (or 'none' for no limit)"
        ) from None


def _names(text: str) -> list[str] | None:
    """A comma-separated list (``none`` or ``any``: no restriction)."""
    if text.strip().lower() in ("none", "any", "all"):
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _date(text: str) -> str:
    """A date such as 2026-09-01."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-09-01") from None


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return n


def _connection_options(*, top: bool) -> argparse.ArgumentParser:
    """--url and --token; accepted before and after the command name."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    kw: dict[str, Any] = {"default": None} if top else {"default": argparse.SUPPRESS}
    g.add_argument(
        "--url",
        metavar="URL",
        help="the gpuhub service, e.g. https://hub.example.edu/services/gpuhub "
        "(default: $GPUHUB_URL, else $JUPYTERHUB_URL/services/gpuhub, else " + DEFAULT_URL + ")",
        **kw,
    )
    g.add_argument(
        "--token",
        metavar="TOKEN",
        help="JupyterHub API token (default: $GPUHUB_TOKEN, else $JUPYTERHUB_API_TOKEN); "
        "get one on the hub's /hub/token page",
        **kw,
    )
    return p


def _json_option(p: argparse.ArgumentParser, what: str = "the API's JSON") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} (for scripts)")


def build_parser() -> argparse.ArgumentParser:
    """The ``gpuhub`` argument parser with every command."""
    conn = _connection_options(top=False)
    parser = argparse.ArgumentParser(
        prog="gpuhub",
        description="GPU pool, quotas, usage and leases of a gpuhub JupyterHub.",
        parents=[_connection_options(top=True)],
        epilog="Every read command takes --json. Errors: one line on stderr, exit status 1.",
    )
    parser.add_argument("--version", action="version", version=f"gpuhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Command, help: str, *, server: bool = True, **kw: Any):
        p = sub.add_parser(
            name, help=help, description=help, parents=[conn] if server else [], **kw
        )
        p.set_defaults(func=func, needs_server=server)
        return p

    p = command("pool", cmd_pool, "nodes and GPUs, their state and holders")
    _json_option(p)

    # quota show | set | unset | list
    quota = sub.add_parser(
        "quota", help="show or change quotas", description="Show or change quotas."
    )
    qsub = quota.add_subparsers(dest="quota_command", metavar="ACTION", required=True)

    def quota_command(name: str, func: Command, help: str):
        p = qsub.add_parser(name, help=help, description=help, parents=[conn])
        p.set_defaults(func=func, needs_server=True)
        return p

    p = quota_command("show", cmd_quota_show, "my quotas and what is left (or a user's or group's)")
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--user", metavar="NAME", help="a user's quota (yours, or anyone's for admins)"
    )
    who.add_argument("--group", metavar="NAME", help="a group's quota")
    _json_option(p)

    p = quota_command("list", cmd_quota_list, "every quota and the default (admins)")
    _json_option(p)

    p = quota_command(
        "set",
        cmd_quota_set,
        "set a user's or group's quota (admins); fields not given keep their values",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="NAME")
    who.add_argument("--group", metavar="NAME")
    s = argparse.SUPPRESS
    p.add_argument(
        "--max-units", type=_number, default=s, metavar="X",
        help="GPU units held at once (whole GPU 1, MIG slice its share, shared GPU 1/k); none: no limit",
    )  # fmt: skip
    p.add_argument(
        "--gpu-hours", type=_number, default=s, metavar="H",
        help="GPU-hours per period; none: no limit",
    )  # fmt: skip
    p.add_argument("--period", choices=("day", "week", "month", "term"), default=s)
    p.add_argument("--term-start", type=_date, default=s, metavar="DATE")
    p.add_argument("--term-end", type=_date, default=s, metavar="DATE")
    p.add_argument(
        "--allowed-shapes", type=_names, default=s, metavar="A,B",
        help="globs over gpu, mig:<profile>, shared; 'any' allows all",
    )  # fmt: skip
    p.add_argument(
        "--allowed-profiles", type=_names, default=s, metavar="A,B",
        help="globs over spawner profile names; 'any' allows all",
    )  # fmt: skip
    p.add_argument("--priority", type=int, default=s, metavar="N", help="-1000 to 1000")
    p.add_argument(
        "--per-user-max-units", type=_number, default=s, metavar="X",
        help="groups only: units each member may hold; none: no limit",
    )  # fmt: skip
    _json_option(p)

    p = quota_command("unset", cmd_quota_unset, "remove a user's or group's quota (admins)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="NAME")
    who.add_argument("--group", metavar="NAME")

    p = command("usage", cmd_usage, "GPU-hours used per day, user and group")
    p.add_argument("--user", metavar="NAME", help="only this user (yours unless admin)")
    p.add_argument("--group", metavar="NAME", help="only leases charged to this group")
    p.add_argument("--start", metavar="DATE", help="from this date or time (default: 30 days ago)")
    p.add_argument("--end", metavar="DATE", help="until this date or time (default: now)")
    p.add_argument("--by", metavar="FIELDS", help="group rows by some of day,user,group")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print the API's CSV")
    _json_option(fmt)

    p = command("leases", cmd_leases, "leases: active and queued unless told otherwise")
    p.add_argument(
        "--user", metavar="NAME", help="this user's (admins; default: mine, or all for admins)"
    )
    st = p.add_mutually_exclusive_group()
    st.add_argument("--all-statuses", action="store_true", help="ended ones too")
    st.add_argument(
        "--status", nargs="+", action="extend", choices=STATUSES, metavar="STATUS",
        help="only these: " + ", ".join(STATUSES),
    )  # fmt: skip
    p.add_argument("--limit", type=_positive_int, default=100, help="at most this many (100)")
    _json_option(p)

    p = command("queue", cmd_queue, "requests waiting for GPUs, in order")
    _json_option(p)

    p = command("request", cmd_request, "ask for GPUs (granted now, or queued)")
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument("--gpus", type=_positive_int, metavar="N", help="N whole GPUs on one node")
    shape.add_argument("--mig", metavar="PROFILE", help="one MIG slice, e.g. 1g.10gb")
    shape.add_argument("--shared", action="store_true", help="a seat on a time-sliced GPU")
    p.add_argument("--model", help="GPU model, e.g. H100 or 'A100*'")
    p.add_argument("--group", metavar="NAME", help="the group to charge")
    p.add_argument("--hours", type=float, metavar="H", help="expected duration in hours")
    p.add_argument("--profile", help="spawner profile name (for quotas that restrict profiles)")
    p.add_argument("--label", default="cli", help="what holds the lease (default: cli)")
    p.add_argument("--user", metavar="NAME", help="request for this user (admins)")
    _json_option(p)

    p = command("release", cmd_release, "release an active lease or cancel a queued one")
    p.add_argument("id", type=_positive_int, metavar="ID", help="lease id (see gpuhub leases)")
    _json_option(p)

    p = command(
        "inventory",
        cmd_inventory,
        "this machine's GPUs read through NVML (no server needed)",
        server=False,
    )
    p.add_argument("--node-name", metavar="NAME", help="node name (default: the host name)")
    _json_option(p, "the node as JSON, the format FileInventory reads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gpuhub``; returns the exit status (0, 1 on errors; argparse exits 2)."""
    args = build_parser().parse_args(argv)
    try:
        client = None
        if args.needs_server:
            client = GpuhubClient(args.url or default_url(), args.token or default_token())
        args.func(args, client)
    except CliError as e:
        print(f"gpuhub: error: {one_line(e.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gpuhub: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gpuhub leases | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
