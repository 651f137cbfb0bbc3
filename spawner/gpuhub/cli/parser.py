"""The ``gpuhub`` command's arguments: every command, its options and their types.

:func:`build_parser` is also what the docs' command-line reference is generated from
(``docs/_ext/cli_reference.py``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..terms import LEASE_STATUSES as STATUSES
from .cohorts import add_cohort_commands
from .commands import (
    Command,
    add_report_options,
    cmd_inventory,
    cmd_keep,
    cmd_leases,
    cmd_options,
    cmd_pool,
    cmd_queue,
    cmd_quota_list,
    cmd_quota_set,
    cmd_quota_show,
    cmd_quota_unset,
    cmd_release,
    cmd_request,
    cmd_usage,
)
from .job_input import parse_duration
from .jobs import add_job_commands
from .prices import add_price_commands
from .reservations import add_reservation_commands
from .simulate import add_simulate_command

DEFAULT_URL = "http://127.0.0.1:8000/services/gpuhub"


# -- defaults from the environment ------------------------------------------------------


def default_url(env: Mapping[str, str] = os.environ) -> str:
    """$GPUHUB_URL, else $GPUHUB_SERVICE_URL (set inside single-user servers), else
    $JUPYTERHUB_URL + /services/gpuhub, else the local default."""
    if env.get("GPUHUB_URL"):
        return env["GPUHUB_URL"]
    if env.get("GPUHUB_SERVICE_URL"):
        return env["GPUHUB_SERVICE_URL"]
    if env.get("JUPYTERHUB_URL"):
        return env["JUPYTERHUB_URL"].rstrip("/") + "/services/gpuhub"
    return DEFAULT_URL


def default_token(env: Mapping[str, str] = os.environ) -> str | None:
    """$GPUHUB_TOKEN, else $JUPYTERHUB_API_TOKEN (set inside single-user servers)."""
    return env.get("GPUHUB_TOKEN") or env.get("JUPYTERHUB_API_TOKEN") or None


# -- option types ---------------------------------------------------------------------


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


def _optional_name(text: str) -> str | None:
    """A name, or ``none`` for none."""
    return None if text.strip().lower() == "none" else text.strip()


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
        "(default: $GPUHUB_URL, else $GPUHUB_SERVICE_URL, else $JUPYTERHUB_URL/services/gpuhub, "
        "else " + DEFAULT_URL + ")",
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
        description="GPU pool, quotas, usage, leases and batch jobs of a gpuhub JupyterHub.",
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
    p = command(
        "options",
        cmd_options,
        "what I may ask for now: GPU shapes (their models, what is free), profiles, job limits",
    )
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
    p.add_argument(
        "--credits", type=_number, default=s, metavar="C",
        help="credits per period (GPU-hours x the models' rates, see gpuhub rates); none: no limit",
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
    p.add_argument(
        "--spot-max-units", type=_number, default=s, metavar="X",
        help="spot (preemptible) GPU units held at once, apart from --max-units; none: no limit",
    )  # fmt: skip
    p.add_argument(
        "--spot-gpu-hours", type=_number, default=s, metavar="H",
        help="spot GPU-hours per period, apart from --gpu-hours; none: no limit",
    )  # fmt: skip
    p.add_argument(
        "--cohort", type=_optional_name, default=s, metavar="NAME",
        help="groups only: groups naming the same cohort lend each other unused --max-units; "
        "none: leave the cohort",
    )  # fmt: skip
    p.add_argument(
        "--borrow-limit", type=_number, default=s, metavar="X",
        help="groups in a cohort: units it may borrow at once; none: no cap",
    )  # fmt: skip
    p.add_argument(
        "--lend-limit", type=_number, default=s, metavar="X",
        help="groups in a cohort: units of its unused share it lends at once; none: no cap",
    )  # fmt: skip
    p.add_argument(
        "--fair-share", type=_number, default=s, metavar="W",
        help="groups only: weight in fair share (default its --max-units, else 1)",
    )  # fmt: skip
    p.add_argument(
        "--create", action="store_true",
        help="groups only: create the JupyterHub group if the hub lacks it "
        "(without it, a group the hub lacks is refused)",
    )  # fmt: skip
    _json_option(p)

    p = quota_command("unset", cmd_quota_unset, "remove a user's or group's quota (admins)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="NAME")
    who.add_argument("--group", metavar="NAME")

    p = command("usage", cmd_usage, "GPU-hours used per day, week or month, user and group")
    add_report_options(p, start="30 days ago")
    p.add_argument(
        "--by", metavar="FIELDS",
        help="group rows by some of day|week|month,user,group, e.g. week,user "
        "(weeks start Monday 00:00 UTC; default day,user,group)",
    )  # fmt: skip

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
    p.add_argument(
        "--reason", metavar="TEXT", help="why (kept in the ledger: 'released by NAME: TEXT')"
    )
    _json_option(p)

    p = command(
        "keep", cmd_keep, "keep an idle server's GPUs from reclaim for a while (after a warning)"
    )
    p.add_argument("id", type=_positive_int, metavar="ID", help="lease id (see gpuhub leases)")
    p.add_argument(
        "--for", dest="seconds", type=parse_duration, default=3600, metavar="DURATION",
        help="how long: 1h, 4h, 90m (default 1h; at most what the idle rule allows)",
    )  # fmt: skip
    _json_option(p)

    add_job_commands(sub, conn)
    add_cohort_commands(sub, conn, _number)
    add_reservation_commands(sub, conn)
    add_price_commands(sub, conn)
    add_simulate_command(sub, conn, _number)

    p = command(
        "inventory",
        cmd_inventory,
        "this machine's GPUs read through NVML (no server needed)",
        server=False,
    )
    p.add_argument("--node-name", metavar="NAME", help="node name (default: the host name)")
    _json_option(p, "the node as JSON, the format FileInventory reads")
    return parser
