"""The ``gpuhub`` commands: each calls the gpuhub REST API and prints what it answered.

A command gets the parsed arguments and a :class:`~gpuhub.client.GpuhubClient` (None for
``inventory``, which needs no server). Read commands print tables for people
(:mod:`.render`) and, with ``--json``, the API's JSON for scripts. The API's refusals come
as :class:`~gpuhub.client.GpuhubError`; the command's own as :class:`CliError`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from ..client import GpuhubClient, GpuhubError, quote_name
from ..terms import LEASE_STATUSES
from . import render
from . import tables as t

QUOTA_FIELDS = (
    "max_units",
    "gpu_hours",
    "credits",
    "period",
    "term_start",
    "term_end",
    "allowed_shapes",
    "allowed_profiles",
    "priority",
    "per_user_max_units",
    "spot_max_units",
    "spot_gpu_hours",
    "cohort",
    "borrow_limit",
    "lend_limit",
    "fair_share",
)

Command = Callable[[argparse.Namespace, GpuhubClient | None], None]


class CliError(Exception):
    """A failure of the command itself (not of the API), reported as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def emit_json(data: Any) -> None:
    """Print API data as indented JSON."""
    print(json.dumps(data, indent=2))


def name_flag(error: GpuhubError, flags: dict[str, str]) -> None:
    """Say which command-line flag an API error's field came from: ``... (--by)``."""
    flag = flags.get(error.field or "")
    if flag and flag not in error.message:
        error.message += f" ({flag})"
        error.args = (error.message,)


def _target(args: argparse.Namespace) -> tuple[str, str, str]:
    """(API collection, kind, name) of ``--user NAME`` / ``--group NAME``."""
    if getattr(args, "user", None):
        return "users", "user", args.user
    return "groups", "group", args.group


def cmd_pool(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub pool``."""
    assert client is not None
    data = client.get("pool")
    if args.json:
        emit_json(data)
    else:
        print(render.pool_table(data))


def cmd_options(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub options``: what I may ask for now (``/me/options``)."""
    assert client is not None
    data = client.get("me/options")
    if args.json:
        emit_json(data)
    else:
        print(render.options_report(data))


def cmd_quota_show(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota show``: mine (``/me``), or one user's or group's."""
    assert client is not None
    if args.user or args.group:
        coll, _, name = _target(args)
        data = client.get(f"quotas/{coll}/{quote_name(name)}")
        if args.json:
            emit_json(data)
        else:
            print(render.quota_table([data]))
        return
    me = client.get("me")
    if args.json:
        emit_json(me)
        return
    groups = ", ".join(me.get("groups") or []) or "none"
    admin = "; gpuhub admin" if me.get("admin") else ""
    print(f"{me['name']} (groups: {groups}{admin})\n")
    print(render.quota_table(me.get("quotas", [])))


def cmd_quota_list(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota list``: every quota (admins)."""
    assert client is not None
    data = client.get("quotas")
    if args.json:
        emit_json(data)
        return
    if data.get("quotas"):
        print(render.quota_table(data["quotas"]))
    else:
        print("no user or group quotas are set")
    print("\n" + render.default_quota_line(data.get("default_user_quota")))


def cmd_quota_set(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota set``: change the given fields of a quota, keeping the others."""
    assert client is not None
    coll, kind, name = _target(args)
    if kind == "user" and getattr(args, "create", False):
        raise CliError("--create is for --group only: users are not created by quota set")
    changes = {f: getattr(args, f) for f in QUOTA_FIELDS if hasattr(args, f)}
    if not changes:
        raise CliError(
            "nothing to set: give at least one of "
            + ", ".join("--" + f.replace("_", "-") for f in QUOTA_FIELDS)
        )
    path = f"quotas/{coll}/{quote_name(name)}"
    try:
        # a user without a quota of their own starts from the default user quota
        current = dict(client.get(path).get("quota") or {})
    except GpuhubError as e:
        if e.status not in (403, 404):
            raise
        current = {}  # none yet; or not allowed to read it, and the PUT will say why
    if kind == "user":  # a default user quota copied in has no group-only fields
        for f in ("per_user_max_units", "cohort", "borrow_limit", "lend_limit", "fair_share"):
            current.pop(f, None)
    spec = {**current, **changes}
    if spec.get("cohort") is None:  # leaving a cohort drops its limits
        for f in ("borrow_limit", "lend_limit"):
            if f not in changes:
                spec.pop(f, None)
    if "period" in changes and changes["period"] != "term":
        for f in ("term_start", "term_end"):
            if f not in changes:
                spec.pop(f, None)
    create = kind == "group" and getattr(args, "create", False)
    try:
        data = client.request("PUT", path, json=spec, params={"create": "true"} if create else None)
    except GpuhubError as e:
        if kind == "group" and e.status == 404 and e.field == "name":
            raise CliError(
                f"JupyterHub has no group {name}: check the name, or add --create to create it"
            ) from None
        name_flag(e, {f: "--" + f.replace("_", "-") for f in QUOTA_FIELDS})
        raise
    if args.json:
        emit_json(data)
        return
    print(render.quota_set_lines(kind, name, data))


def cmd_quota_unset(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub quota unset``: remove a user's or group's quota."""
    assert client is not None
    coll, kind, name = _target(args)
    client.delete(f"quotas/{coll}/{quote_name(name)}")
    print(render.quota_removed_sentence(kind, name))


USAGE_BY = ("day", "week", "month", "user", "group")
#: API query fields of ``/usage`` and the flags that set them.
USAGE_FLAGS = {f: f"--{f}" for f in ("start", "end", "user", "group", "by")}


def _check_usage_by(by: str | None) -> None:
    """Refuse a bad ``--by`` here, naming the flag (the API would name its field)."""
    if by is None:
        return
    fields = by.split(",")
    times = [f for f in fields if f in ("day", "week", "month")]
    if any(f not in USAGE_BY for f in fields) or len(set(fields)) != len(fields) or len(times) > 1:
        raise CliError(
            f"--by {by!r}: give some of {', '.join(USAGE_BY)}, comma-separated, at most one of "
            "day, week, month (weeks start Monday 00:00 UTC), e.g. --by week,user"
        )


def add_report_options(p: argparse.ArgumentParser, start: str) -> None:
    """The options of a ledger report: who and when (``start``: the default start, in
    words), and --csv or --json."""
    p.add_argument("--user", metavar="NAME", help="only this user (yours unless admin)")
    p.add_argument("--group", metavar="NAME", help="only leases charged to this group")
    p.add_argument("--start", metavar="DATE", help=f"from this date or time (default: {start})")
    p.add_argument("--end", metavar="DATE", help="until this date or time (default: now)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print the API's CSV")
    fmt.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")


def fetch_report(
    client: GpuhubClient,
    path: str,
    params: dict[str, Any],
    args: argparse.Namespace,
    flags: dict[str, str],
) -> Any:
    """A ledger report's JSON; None when it was printed already (--csv, --json). A refusal
    names the command's flag for the API's field."""
    try:
        if args.csv:
            sys.stdout.write(client.get_text(path, {**params, "format": "csv"}))
            return None
        data = client.get(path, params)
    except GpuhubError as e:
        name_flag(e, flags)
        raise
    if args.json:
        emit_json(data)
        return None
    return data


def cmd_usage(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub usage``: GPU-hours per day, week or month, user and group."""
    assert client is not None
    _check_usage_by(args.by)
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
    data = fetch_report(client, "usage", params, args, USAGE_FLAGS)
    if data is not None:
        print(render.usage_report(data))


def cmd_leases(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub leases``: live leases (mine, or everyone's for admins), or with --status."""
    assert client is not None
    params: list[tuple[str, Any]] = []
    if args.user:
        params.append(("user", args.user))
    statuses = LEASE_STATUSES if args.all_statuses else (args.status or ())
    params += [("status", s) for s in statuses]
    params.append(("limit", args.limit))
    data = client.get("leases", params)
    if args.json:
        emit_json(data)
    elif not data.get("leases"):
        print("no leases")
    else:
        print(render.leases_table(data["leases"]))
        idle = render.idle_lines(data["leases"])
        if idle:
            print("\n" + "\n".join(idle))


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
    print(render.queue_table(data["queue"]))


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
    lease = client.request_lease(body)  # one idempotency key, however often it is tried
    if args.json:
        emit_json(lease)
    else:
        print(render.lease_sentence(lease))


def cmd_release(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub release ID [--reason TEXT]``: release an active lease or cancel a queued one."""
    assert client is not None
    params = {"reason": args.reason} if args.reason else None
    lease = client.request("DELETE", f"leases/{args.id}", params=params)
    if args.json:
        emit_json(lease)
    else:
        print(render.lease_sentence(lease))


def cmd_keep(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub keep ID [--for 1h]``: keep an idle server's lease from reclaim for a while."""
    assert client is not None
    try:
        lease = client.post(f"leases/{args.id}/keep", {"seconds": args.seconds})
    except GpuhubError as e:
        name_flag(e, {"seconds": "--for"})
        raise
    if args.json:
        emit_json(lease)
    else:
        print(
            f"lease {lease['id']} kept for {t.duration_text(args.seconds)}: it is not "
            "reclaimed for idleness before then"
        )


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
        print(render.inventory_table(node))
