"""``gpuhub simulate``: what a quota or rate change would have done (admins).

Sends the change to ``POST /api/v1/simulate``, which replays the last weeks of the ledger
twice, as things are and with the change, and prints who would have waited longer or
shorter, were refused, and paid what::

    gpuhub simulate --weeks 2 --group cs101 --max-units 4
    gpuhub simulate --rate H100=2.5 --rate L4=0.4

Nothing changes on the hub; ``gpuhub quota set`` and ``gpuhub rates set`` make a change.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..client import GpuhubClient, GpuhubError
from . import tables as t
from .commands import CliError, emit_json, name_flag

#: Quota fields the command proposes, each set by ``--field-name``, with what it is.
QUOTA_FIELDS = {
    "max_units": "GPU units held at once",
    "gpu_hours": "GPU-hours per period",
    "credits": "credits per period",
    "per_user_max_units": "units each member of the group may hold (groups only)",
    "priority": "priority, -1000 to 1000",
    "spot_max_units": "spot GPU units held at once",
    "spot_gpu_hours": "spot GPU-hours per period",
}
#: Seconds to wait for the answer: a replay of many weeks takes a while.
TIMEOUT_S = 900.0


def _rate(text: str) -> tuple[str, float]:
    """``MODEL=RATE``: a model (or part of its name) and credits per GPU-hour."""
    model, sep, rate = text.partition("=")
    try:
        value = float(rate)
    except ValueError:
        value = -1.0
    if not sep or not model.strip() or not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not MODEL=RATE, e.g. H100=2.5 (credits per GPU-hour)"
        )
    return model.strip(), value


def flags(rates: int) -> dict[str, str]:
    """API fields of a simulation and the flags that set them."""
    out = {"weeks": "--weeks", "quotas": "--user/--group", "quotas.0.name": "--user/--group"}
    out.update({f"quotas.0.set.{f}": "--" + f.replace("_", "-") for f in QUOTA_FIELDS})
    out.update(
        {
            f"rates.{i}.{f}": "--rate"
            for i in range(rates)
            for f in ("model", "credits_per_gpu_hour")
        }
    )
    return out


def simulate_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API body of the command's arguments; a :class:`CliError` for a change that
    names no one, or no change at all."""
    fields = {f: getattr(args, f) for f in QUOTA_FIELDS if hasattr(args, f)}
    who = ("user", args.user) if args.user else ("group", args.group) if args.group else None
    if fields and who is None:
        raise CliError("say whose quota: --user NAME or --group NAME")
    if who is not None and not fields:
        raise CliError(
            "give a quota field to change: "
            + ", ".join("--" + f.replace("_", "-") for f in QUOTA_FIELDS)
        )
    if who is None and not args.rate:
        raise CliError(
            "propose a change: a quota (--group NAME --max-units 4) or a rate (--rate H100=2.5)"
        )
    body: dict[str, Any] = {"weeks": args.weeks}
    if who is not None:
        body["quotas"] = [{"kind": who[0], "name": who[1], "set": fields}]
    if args.rate:
        body["rates"] = [{"model": m, "credits_per_gpu_hour": r} for m, r in args.rate]
    return body


def fmt_wait(seconds: float | None) -> str:
    """A wait for people: ``0s``, ``45s``, ``12m``, ``3.5h``, ``2.1d`` (``-`` for none)."""
    if seconds is None:
        return t.NONE
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{t.fmt_number(round(seconds / size, 1))}{unit}"
    return f"{round(seconds)}s"


def _both(row: dict[str, Any], field: str, fmt: Any = t.fmt_number) -> str:
    """``now → proposed`` of a field, or the one value where it did not change."""
    a, b = fmt(row["current"][field]), fmt(row["proposed"][field])
    return a if a == b else f"{a} → {b}"


def _table(rows: list[dict[str, Any]], key: str) -> str:
    return t.render(
        [key.upper(), "REQUESTS", "MEAN WAIT", "P95 WAIT", "REFUSED", "CREDITS"],
        [
            [r[key], r["current"]["requests"], _both(r, "mean_wait_s", fmt_wait),
             _both(r, "p95_wait_s", fmt_wait), _both(r, "refused"), _both(r, "credits")]
            for r in rows
        ],
        right=(1,),
    )  # fmt: skip


def _change_line(c: dict[str, Any]) -> str:
    was = "no quota" if c["current"] is None and c["kind"] != "rate" else t.cell(c["current"])
    return f"{c['kind']} {c['name']}: {c['field']} {was} → {t.cell(c['proposed'])}"


def simulate_report(data: dict[str, Any]) -> str:
    """The what-if for people: what changed, per user and group now → proposed, and who
    would have waited longer or shorter."""
    span = f"{data['start'][:16].replace('T', ' ')} to {data['end'][:16].replace('T', ' ')} UTC"
    lines = [
        f"replayed {data['leases']:,} leases of {span} twice, as things are and with:",
        *(f"  {_change_line(c)}" for c in data["changes"]),
        "",
    ]
    if not data["users"]:
        return "\n".join([*lines, "nobody asked for GPUs in those weeks"])
    lines += [_table(data["users"], "user"), ""]
    if data["groups"]:
        lines += [_table(data["groups"], "group"), ""]
    for title, key in (("waited longer", "waited_longer"), ("waited shorter", "waited_shorter")):
        movers = [
            f"{m['user']} ({'+' if m['mean_wait_change_s'] >= 0 else '-'}"
            f"{fmt_wait(abs(m['mean_wait_change_s']))} mean"
            + (f", {m['refused_change']:+d} refused" if m["refused_change"] else "")
            + ")"
            for m in data[key]
        ]  # fmt: skip
        lines.append(f"{title}: {', '.join(movers) or 'nobody'}")
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub simulate``: replay the ledger with a proposed change (admins)."""
    assert client is not None
    body = simulate_body(args)
    client.timeout = TIMEOUT_S  # before the first request: the connection is made then
    try:
        data = client.post("simulate", body)
    except GpuhubError as e:
        name_flag(e, flags(len(args.rate or ())))
        raise
    emit_json(data) if args.json else print(simulate_report(data))


def add_simulate_command(sub: Any, conn: argparse.ArgumentParser, number: Any) -> None:
    """Add ``simulate`` to the ``gpuhub`` parser's ``sub`` (``number``: the parser's type
    for limits, a number or ``none`` for no limit)."""
    help = "what a quota or rate change would have done to the last weeks' requests (admins)"
    p = sub.add_parser("simulate", help=help, description=help, parents=[conn])
    p.set_defaults(func=cmd_simulate, needs_server=True)
    p.add_argument(
        "--weeks", type=int, default=2, metavar="N", help="replay the last N weeks (1-8; default 2)"
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="NAME", help="propose this user's quota")
    who.add_argument("--group", metavar="NAME", help="propose this group's quota")
    for f, what in QUOTA_FIELDS.items():
        limit = f != "priority"
        p.add_argument(
            "--" + f.replace("_", "-"), dest=f, type=number if limit else int,
            default=argparse.SUPPRESS, metavar="X" if limit else "N",
            help=f"proposed {what}" + ("; none: no limit" if limit else ""),
        )  # fmt: skip
    p.add_argument(
        "--rate", type=_rate, action="append", metavar="MODEL=RATE",
        help="a model's credits per GPU-hour, e.g. H100=2.5 (a part of the name names every "
        "such model); repeatable",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")
