"""``gpuhub cohort create | add | remove | show``: a class set up from a roster in one step.

A cohort is a JupyterHub group with a quota. The commands call the gpuhub service's
``/cohorts`` API (admins), which changes the hub's groups and users with the service's
own token and sets the group's quota; this side reads the roster and says what happened.

A roster is a CSV file: one user name per line, or a table with a ``username`` column
(other columns are ignored). Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

from ..client import GpuhubClient, GpuhubError, quote_name
from ..names import check_name
from . import render
from . import tables as t
from .commands import CliError, emit_json, name_flag

#: API fields of a cohort request and the flags that set them.
FLAGS = {
    "members": "--members",
    "users": "USER / --members",
    "create_users": "--no-create-users",
    "max_units": "--max-units",
    "per_user_max_units": "--per-member",
    "gpu_hours": "--gpu-hours",
    "period": "--period",
}
#: ``--flag`` → quota field it sets.
QUOTA_OPTIONS = {
    "max_units": "max_units",
    "per_member": "per_user_max_units",
    "gpu_hours": "gpu_hours",
    "period": "period",
}


def read_roster(path: str) -> list[str]:
    """User names from a roster CSV (see the module's docstring), checked; in file order,
    each once. A problem is a :class:`CliError` naming the file, the line and ``--members``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"--members {path}: cannot read the roster ({e})") from e
    rows = [
        (n, [c.strip() for c in row])
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1)
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    column = 0
    if rows and any(c.lower() == "username" for c in rows[0][1]):
        column = [c.lower() for c in rows[0][1]].index("username")
        rows = rows[1:]
    elif rows and len(rows[0][1]) > 1:
        raise CliError(
            f"--members {path}: line {rows[0][0]} has several columns but none is called "
            "'username'; give one name per line, or a header with a username column"
        )
    names: list[str] = []
    for n, row in rows:
        name = row[column] if column < len(row) else ""
        try:
            names.append(check_name("user", name))
        except ValueError as e:
            raise CliError(f"--members {path}, line {n}: {e}") from None
    if not names:
        raise CliError(f"--members {path}: the roster names no users")
    return list(dict.fromkeys(names))


def _users(args: argparse.Namespace) -> list[str]:
    users = list(getattr(args, "users", None) or [])
    for u in users:
        try:
            check_name("user", u)
        except ValueError as e:
            raise CliError(str(e)) from None
    if getattr(args, "members", None):
        users += read_roster(args.members)
    return list(dict.fromkeys(users))


def _call(fn: Any, *a: Any) -> Any:
    try:
        return fn(*a)
    except GpuhubError as e:
        if e.code == "no_such_user":  # "JupyterHub has no users a, b; <the API's cure>"
            e.message = e.message.rsplit("; fix the roster", 1)[0] + (
                "; fix the roster, or leave out --no-create-users to have them created"
            )
            e.args = (e.message,)
            raise
        name_flag(e, FLAGS)
        if e.field and e.field.startswith("quota."):
            name_flag(e, {e.field: FLAGS.get(e.field.removeprefix("quota."), "")})
        raise


def _quota(args: argparse.Namespace, client: GpuhubClient, name: str) -> dict[str, Any] | None:
    """The group quota to set: the current one with the given flags changed; None if none."""
    changes = {
        field: getattr(args, opt) for opt, field in QUOTA_OPTIONS.items() if hasattr(args, opt)
    }
    if not changes:
        return None
    try:
        current = dict(client.get(f"quotas/groups/{quote_name(name)}").get("quota") or {})
    except GpuhubError as e:
        if e.status != 404:
            raise
        current = {}
    if "period" in changes:
        current.pop("term_start", None)
        current.pop("term_end", None)
    return {**current, **changes}


def _change_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    if data.get("users_created"):
        created = data["users_created"]
        lines.append(
            f"created {len(created)} user(s) JupyterHub did not have: {', '.join(created)}"
        )
    added = data.get("members_added") or []
    lines.append(
        f"added {len(added)} member(s) to group {data['name']}; "
        f"{len(data.get('members') or [])} in all"
    )
    return lines


def cmd_cohort_create(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub cohort create``: the group, its members and its quota in one request."""
    assert client is not None
    body: dict[str, Any] = {
        "members": _users(args),
        "create_users": not args.no_create_users,
        "quota": _quota(args, client, args.name),
    }
    data = _call(client.put, f"cohorts/{quote_name(args.name)}", body)
    if args.json:
        emit_json(data)
        return
    group = "created group" if data.get("group_created") else "updated group"
    lines = [f"{group} {data['name']}", *_change_lines(data)]
    if data.get("quota"):
        lines += ["", render.quota_table([data["quota"]])]
    print("\n".join(lines))


def cmd_cohort_add(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub cohort add``: add users to a cohort (created when the hub lacks them)."""
    assert client is not None
    users = _users(args)
    if not users:
        raise CliError("name the users to add: gpuhub cohort add NAME USER... or --members CSV")
    body = {"users": users, "create_users": not args.no_create_users}
    data = _call(client.post, f"cohorts/{quote_name(args.name)}/members", body)
    if args.json:
        emit_json(data)
    else:
        print("\n".join(_change_lines(data)))


def cmd_cohort_remove(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub cohort remove``: take users out of a cohort's group (they stay in the hub)."""
    assert client is not None
    data: dict[str, Any] = {}
    for user in _users(args):
        data = _call(client.delete, f"cohorts/{quote_name(args.name)}/members/{quote_name(user)}")
        if not args.json:
            print(f"removed {user} from group {args.name}")
    if args.json:
        emit_json(data)
    else:
        print(f"{len(data.get('members') or [])} member(s) left in group {args.name}")


def cmd_cohort_show(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub cohort show``: members, the quota with its use, GPU-hours this period."""
    assert client is not None
    data = _call(client.get, f"cohorts/{quote_name(args.name)}")
    if args.json:
        emit_json(data)
        return
    print(cohort_report(data))


def cohort_report(data: dict[str, Any]) -> str:
    """What ``gpuhub cohort show`` prints."""
    members = data.get("members") or []
    usage = data.get("usage") or {}
    hours = {r["user"]: r for r in usage.get("rows") or []}
    lines = [f"cohort {data['name']}: {len(members)} member(s)", ""]
    if data.get("quota"):
        lines += [render.quota_table([data["quota"]]), ""]
    else:
        lines += [f"group {data['name']} has no quota", ""]
    users = list(dict.fromkeys([*members, *hours]))  # former members who used GPUs too
    rows = [
        [
            u,
            "" if u in members else "(no longer a member)",
            t.fmt_number(hours[u]["gpu_hours"]) if u in hours else "0",
            hours[u]["leases"] if u in hours else 0,
        ]
        for u in users
    ]
    lines.append(f"GPU-hours charged to {data['name']} {usage.get('period', '')}:")
    lines.append(t.render(["USER", "", "GPU-HOURS", "LEASES"], rows, right=(2, 3)))
    lines.append(f"\ntotal {t.fmt_number(usage.get('total_gpu_hours', 0))} GPU-hours")
    return "\n".join(lines)


def add_cohort_commands(sub: Any, conn: argparse.ArgumentParser, number: Any) -> None:
    """Add ``cohort create | add | remove | show`` to the ``gpuhub`` parser's ``sub``.

    ``number`` is the parser's type for limits (a number, or ``none`` for no limit).
    """
    cohort = sub.add_parser(
        "cohort",
        help="set up a class: a JupyterHub group, its members and its quota (admins)",
        description="Set up a class in one step: a JupyterHub group, its members (from a "
        "roster) and its quota (admins). Users the hub lacks are created unless "
        "--no-create-users.",
    )
    csub = cohort.add_subparsers(dest="cohort_command", metavar="ACTION", required=True)

    def action(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=help, description=help, parents=[conn])
        p.set_defaults(func=func, needs_server=True)
        p.add_argument("name", metavar="NAME", help="the cohort's JupyterHub group")
        return p

    def roster(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--members", metavar="CSV",
            help="roster: one user name per line, or a CSV with a username column",
        )  # fmt: skip

    def no_create(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-create-users", action="store_true",
            help="refuse (naming them) users JupyterHub does not have, instead of creating them",
        )  # fmt: skip

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")

    s = argparse.SUPPRESS
    p = action(
        "create",
        cmd_cohort_create,
        "create or update a cohort: the group, its members and its quota in one step",
    )
    roster(p)
    p.add_argument(
        "--max-units", type=number, default=s, metavar="X",
        help="GPU units the whole group holds at once (a whole GPU is 1, a 1g slice of a "
        "7-slice GPU 1/7); none: no limit",
    )  # fmt: skip
    p.add_argument(
        "--per-member", type=number, default=s, metavar="X",
        help="GPU units each member may hold at once (the group quota's per_user_max_units)",
    )  # fmt: skip
    p.add_argument(
        "--gpu-hours", type=number, default=s, metavar="H",
        help="GPU-hours the whole group may use per period; none: no limit",
    )  # fmt: skip
    p.add_argument("--period", choices=("day", "week", "month"), default=s)
    no_create(p)
    json_option(p)

    p = action("add", cmd_cohort_add, "add users to a cohort (by name, or from a roster)")
    p.add_argument("users", nargs="*", metavar="USER")
    roster(p)
    no_create(p)
    json_option(p)

    p = action("remove", cmd_cohort_remove, "take users out of a cohort's group")
    p.add_argument("users", nargs="+", metavar="USER")
    json_option(p)

    p = action("show", cmd_cohort_show, "a cohort's members, quota and GPU-hours this period")
    json_option(p)
