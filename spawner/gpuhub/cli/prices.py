"""``gpuhub rates``, ``gpuhub rates set | unset``, ``gpuhub statement``.

Rates are credits per GPU-hour of each GPU model (a MIG slice or shared seat costs its
share); anyone may list them, setting and unsetting one needs the gpuhub admin scope and
applies to leases granted from then on. A statement is what the ledger charged in a
period (default: this month), per group, user, model, tier and rate: one's own, or
anyone's for admins; ``--csv`` prints it for a department's spreadsheet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from ..client import GpuhubClient, GpuhubError, quote_name
from . import tables as t
from .commands import CliError, add_report_options, emit_json, fetch_report, name_flag

#: API fields of the statement's query and of a rate change, and the flags that set them.
FLAGS = {
    "start": "--start/--month",
    "end": "--end/--month",
    "user": "--user",
    "group": "--group",
    "credits_per_gpu_hour": "RATE",
    "model": "MODEL",
}


def _rate(value: str) -> float:
    """RATE: a number of credits per GPU-hour, 0 or more."""
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of credits") from None
    if not 0 <= rate < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: a rate is 0 or more credits per GPU-hour")
    return rate


def month_span(month: str) -> tuple[str, str]:
    """``2026-11`` -> (``2026-11-01``, ``2026-12-01``)."""
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})", month)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise CliError(f"--month {month!r}: give a month as YYYY-MM, e.g. 2026-11")
    first = dt.date(int(m.group(1)), int(m.group(2)), 1)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return first.isoformat(), after.isoformat()


def rates_table(data: dict[str, Any]) -> str:
    """The rate card for people."""
    rows = [
        [r["model"], t.fmt_number(r["credits_per_gpu_hour"]),
         r["source"] + (f" ({r['updated_by']})" if r.get("updated_by") else "")]
        for r in data.get("rates", [])
    ]  # fmt: skip
    table = t.render(["MODEL", "CREDITS/GPU-HOUR", "SET BY"], rows, right=(1,))
    default = t.fmt_number(data.get("default_credits_per_gpu_hour"))
    return (
        f"{table}\n\nother models: {default} credits per GPU-hour; a MIG slice or shared seat "
        "costs its share of its GPU"
    )


def statement_report(data: dict[str, Any]) -> str:
    """A statement for people: its rows and totals."""
    rows = [
        [r["group"], r["user"], r["model"], r["tier"], t.fmt_number(r["credits_per_gpu_hour"]),
         t.fmt_number(r["gpu_hours"]), t.fmt_number(r["credits"])]
        for r in data.get("rows", [])
    ]  # fmt: skip
    span = f"{data['start'][:10]} to {data['end'][:16].replace('T', ' ')} UTC"
    if not rows:
        return f"nothing charged from {span}"
    table = t.render(
        ["GROUP", "USER", "MODEL", "TIER", "RATE", "GPU-HOURS", "CREDITS"], rows, right=(4, 5, 6)
    )
    return (
        f"{table}\n\ntotal {t.fmt_number(data['total_credits'])} credits for "
        f"{t.fmt_number(data['total_gpu_hours'])} GPU-hours from {span}"
    )


def cmd_rates(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub rates``: credits per GPU-hour of each model."""
    assert client is not None
    data = client.get("rates")
    emit_json(data) if args.json else print(rates_table(data))


def cmd_rate_set(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub rates set MODEL RATE`` (admins)."""
    assert client is not None
    try:
        entry = client.put(f"rates/{quote_name(args.model)}", {"credits_per_gpu_hour": args.rate})
    except GpuhubError as e:
        name_flag(e, FLAGS)
        raise
    if args.json:
        emit_json(entry)
        return
    print(
        f"{entry['model']}: {t.fmt_number(entry['credits_per_gpu_hour'])} credits per GPU-hour "
        "for leases granted from now on"
    )


def cmd_rate_unset(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub rates unset MODEL`` (admins)."""
    assert client is not None
    entry = client.delete(f"rates/{quote_name(args.model)}")
    print(
        f"{entry['model']}: back to {t.fmt_number(entry['credits_per_gpu_hour'])} credits per "
        f"GPU-hour ({entry['source']})"
    )


def cmd_statement(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub statement``: what was charged in a period."""
    assert client is not None
    start, end = args.start, args.end
    if args.month:
        if start or end:
            raise CliError("give --month, or --start and --end, not both")
        start, end = month_span(args.month)
    params = {
        k: v
        for k, v in (("start", start), ("end", end), ("user", args.user), ("group", args.group))
        if v is not None
    }
    data = fetch_report(client, "statements", params, args, FLAGS)
    if data is not None:
        print(statement_report(data))


def add_price_commands(sub: Any, conn: argparse.ArgumentParser) -> None:
    """Add ``rates`` (with ``set`` and ``unset``) and ``statement`` to ``sub``."""

    def parser(name: str, func: Any, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help, parents=[conn])
        p.set_defaults(func=func, needs_server=True)
        return p

    p = parser("rates", cmd_rates, "credits per GPU-hour of each GPU model")
    p.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")
    actions = p.add_subparsers(dest="rates_action", metavar="ACTION")
    s = parser("set", cmd_rate_set, "set a model's rate from now on (admins)", actions)
    s.add_argument("model", metavar="MODEL", help="a GPU model of the pool, e.g. H100-80GB")
    s.add_argument("rate", metavar="RATE", type=_rate, help="credits per GPU-hour, e.g. 2.5")
    s.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")
    u = parser("unset", cmd_rate_unset, "drop an admin's rate: configuration's applies (admins)",
               actions)  # fmt: skip
    u.add_argument("model", metavar="MODEL")

    p = parser("statement", cmd_statement, "credits and GPU-hours charged in a period")
    p.add_argument("--month", metavar="YYYY-MM", help="this calendar month (UTC)")
    add_report_options(p, start="the 1st of this month")
