"""``gpuhub reserve``, ``gpuhub reservations``, ``gpuhub reservation show | delete``.

A reservation keeps devices for a JupyterHub group in a time window, once or weekly (lab
hours): during the window only the group's members get those devices; outside it they
serve everyone. The commands call the service's ``/reservations`` API (making and
deleting one needs the gpuhub admin scope; anyone may list them). Times are printed in
the reservation's own time zone: ``Tue 14:00–16:00 UTC``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any

from ..client import GpuhubClient, GpuhubError
from ..names import check_name
from ..terms import shape_text
from . import tables as t
from .commands import CliError, emit_json, name_flag

#: API fields of a reservation request and the flags that set them.
FLAGS = {
    "shape": "--gpus/--mig/--shared",
    "shape.profile": "--mig",
    "shape.model": "--model",
    "shape.count": "--gpus",
    "count": "--count",
    "start": "--start",
    "end": "--end",
    "repeat": "--weekly",
    "timezone": "--tz",
    "note": "--note",
}


def _zone(name: str | None) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return dt.UTC


def _local(iso: str, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).astimezone(zone)


def fmt_window(start: str, end: str, zone_name: str | None, *, weekly: bool = False) -> str:
    """A window in its time zone: ``Tue 14:00–16:00 UTC`` (weekly: ``every Tue ...``; once:
    ``Tue 2026-12-08 14:00–16:00 UTC``); a window over midnight names both days."""
    zone = _zone(zone_name)
    s, e = _local(start, zone), _local(end, zone)
    day = f"{s:%a}" if weekly else f"{s:%a} {s:%Y-%m-%d}"
    if e.date() == s.date():
        until = f"{e:%H:%M}"
    else:
        until = f"{e:%a} {e:%H:%M}" if weekly else f"{e:%a} {e:%Y-%m-%d} {e:%H:%M}"
    return f"{'every ' if weekly else ''}{day} {s:%H:%M}–{until} {s.tzname() or zone_name}"


def fmt_state(r: Mapping[str, Any]) -> str:
    """``open until 16:00``, ``next Tue 2026-12-15 14:00``, ``ended``."""
    zone = _zone(r.get("timezone"))
    current, nxt = r.get("current"), r.get("next")
    if r.get("state") == "open" and current:
        end = _local(current["end"], zone)
        return f"open until {end:%H:%M} {end.tzname()}"
    if nxt:
        start = _local(nxt["start"], zone)
        return f"next {start:%a %Y-%m-%d %H:%M} {start.tzname()}"
    return str(r.get("state") or "")


def what(r: Mapping[str, Any]) -> str:
    """``8 x MIG 1g.5gb``, ``2 x GPU H100``, ``1 x shared GPU``."""
    shape = dict(r.get("shape") or {})
    text = shape_text(shape)
    if shape.get("kind", "gpu") == "gpu":
        text = text.removeprefix(f"{shape.get('count', 1)}x ")
    return f"{r.get('count')} x {text}"


def reservation_table(items: list[Mapping[str, Any]]) -> str:
    """``gpuhub reservations``: one line per reservation."""
    rows = [
        [
            r.get("id"),
            r.get("group"),
            what(r),
            fmt_window(r["start"], r["end"], r.get("timezone"), weekly=r.get("repeat") == "weekly"),
            fmt_state(r),
            r.get("note") or "",
        ]
        for r in items
    ]
    return t.render(["ID", "GROUP", "DEVICES", "WHEN", "STATE", "NOTE"], rows, right=(0,))


def reservation_report(r: Mapping[str, Any]) -> str:
    """``gpuhub reservation show``: the reservation, its devices and what it says."""
    weekly = r.get("repeat") == "weekly"
    lines = [
        f"reservation {r.get('id')}: {what(r)} for group {r.get('group')}",
        f"  when:    {fmt_window(r['start'], r['end'], r.get('timezone'), weekly=weekly)}"
        + (f" ({r.get('timezone')})" if r.get("timezone") != "UTC" else ""),
        f"  state:   {fmt_state(r)}",
        f"  made by: {r.get('created_by')} at {t.fmt_time(r.get('created_at'))}",
    ]
    if r.get("note"):
        lines.append(f"  note:    {r['note']}")
    devices = r.get("devices") or []
    if devices:
        lines.append("  devices:")
        lines += [f"    {d.get('node', '')} {d.get('name') or d.get('uuid', '')}" for d in devices]
    if r.get("message"):
        lines += ["", str(r["message"])]
    return "\n".join(lines)


def flag_error(error: GpuhubError, flags: Mapping[str, str] = FLAGS) -> None:
    """Say the API's field as the command-line flag that set it: ``start: ...`` becomes
    ``--start: ...``; a sentence that does not start with the field gets ``(--start)``."""
    field = error.field or ""
    flag = flags.get(field)
    if not flag:
        return
    for sep in (": ", " "):
        if error.message.startswith(field + sep):
            error.message = flag + error.message[len(field) :]
            error.args = (error.message,)
            return
    name_flag(error, dict(flags))


def _call(fn: Any, *a: Any, flags: Mapping[str, str] = FLAGS) -> Any:
    try:
        return fn(*a)
    except GpuhubError as e:
        flag_error(e, flags)
        raise


def _check_time(text: str, flag: str) -> str:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"{flag} {text!r} is not a date and time like 2026-12-08T14:00 or "
            "'2026-12-08 14:00' (in --tz's time zone unless it has an offset, e.g. +01:00)"
        ) from None
    if "T" not in text and " " not in text.strip():
        raise CliError(f"{flag} {text!r} has no time of day: give one, e.g. 2026-12-08T14:00")
    return text


def reservation_body(args: argparse.Namespace) -> dict[str, Any]:
    """The ``POST /reservations`` body of ``gpuhub reserve``'s arguments."""
    shape: dict[str, Any]
    if args.gpus is not None:
        if args.count is not None:
            raise CliError(
                "give the number of GPUs once: --gpus N (--count is for --mig and --shared)"
            )
        shape, count = {"kind": "gpu"}, args.gpus
    elif args.mig:
        shape, count = {"kind": "mig", "profile": args.mig}, args.count or 1
    else:
        shape, count = {"kind": "shared"}, args.count or 1
    if args.model:
        shape["model"] = args.model
    try:
        check_name("group", args.group)
    except ValueError as e:
        raise CliError(str(e)) from None
    body: dict[str, Any] = {
        "group": args.group,
        "shape": shape,
        "count": count,
        "start": _check_time(args.start, "--start"),
        "end": _check_time(args.end, "--end"),
        "repeat": "weekly" if args.weekly else "once",
    }
    if args.tz:
        body["timezone"] = args.tz
    if args.note is not None:
        body["note"] = args.note
    return body


def cmd_reserve(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub reserve``: keep devices for a group in a window (admins)."""
    assert client is not None
    flags = {**FLAGS, "count": "--gpus"} if args.gpus is not None else FLAGS
    data = _call(client.reserve, reservation_body(args), flags=flags)
    if args.json:
        emit_json(data)
        return
    print(f"reservation {data['id']} made")
    print(reservation_report(data))


def cmd_reservations(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub reservations``: every reservation (or one group's)."""
    assert client is not None
    try:
        items = client.reservations(group=args.group)
    except GpuhubError as e:
        flag_error(e, {"group": "--group"})
        raise
    if args.json:
        emit_json({"reservations": items})
    elif not items:
        print("no reservations" + (f" for group {args.group}" if args.group else ""))
    else:
        print(reservation_table(items))


def cmd_reservation_show(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub reservation show ID``."""
    assert client is not None
    data = _call(client.reservation, args.id)
    if args.json:
        emit_json(data)
    else:
        print(reservation_report(data))


def cmd_reservation_delete(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub reservation delete ID`` (admins): its devices serve everyone again."""
    assert client is not None
    data = _call(client.delete_reservation, args.id)
    if args.json:
        emit_json(data)
    else:
        print(
            f"deleted reservation {data['id']}: {what(data)} for group {data.get('group')}, "
            f"{fmt_window(data['start'], data['end'], data.get('timezone'), weekly=data.get('repeat') == 'weekly')}"
        )


def _reservation_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a reservation id (a whole number)")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1024")
    return int(text)


def add_reservation_commands(sub: Any, conn: argparse.ArgumentParser) -> None:
    """Add ``reserve``, ``reservations`` and ``reservation show | delete`` to ``sub``."""

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")

    help = "reserve devices for a group in a time window, once or weekly (admins)"
    p = sub.add_parser(
        "reserve",
        help=help,
        description=help + ". During the window only the group's members get the devices; "
        "outside it they serve everyone.",
        parents=[conn],
    )
    p.set_defaults(func=cmd_reserve, needs_server=True)
    p.add_argument("group", metavar="GROUP", help="the JupyterHub group (it must exist)")
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument("--gpus", type=_count, metavar="N", help="N whole GPUs")
    shape.add_argument("--mig", metavar="PROFILE", help="MIG slices of this profile, e.g. 1g.10gb")
    shape.add_argument("--shared", action="store_true", help="time-sliced GPUs, all their seats")
    p.add_argument(
        "--count", type=_count, metavar="N", help="how many MIG slices or shared GPUs (default 1)"
    )
    p.add_argument("--model", help="GPU model, e.g. H100 or 'A100*'")
    p.add_argument(
        "--start", required=True, metavar="WHEN",
        help="start of the (first) window, e.g. 2026-12-08T14:00 (in --tz's time zone "
        "unless it has an offset)",
    )  # fmt: skip
    p.add_argument("--end", required=True, metavar="WHEN", help="end of the (first) window")
    p.add_argument(
        "--weekly", action="store_true", help="repeat every week at the same wall-clock time"
    )
    p.add_argument(
        "--tz", metavar="ZONE",
        help="IANA time zone, e.g. Europe/Berlin (default: the service's reservation_timezone)",
    )  # fmt: skip
    p.add_argument("--note", metavar="TEXT", help="what it is for (at most 500 characters)")
    json_option(p)

    help = "reservations of devices for groups (lab hours)"
    p = sub.add_parser("reservations", help=help, description=help, parents=[conn])
    p.set_defaults(func=cmd_reservations, needs_server=True)
    p.add_argument("--group", metavar="NAME", help="only this group's")
    json_option(p)

    one = sub.add_parser(
        "reservation",
        help="show or delete a reservation",
        description="Show or delete a reservation.",
    )
    rsub = one.add_subparsers(dest="reservation_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("show", cmd_reservation_show, "a reservation, its devices and its windows"),
        (
            "delete",
            cmd_reservation_delete,
            "delete a reservation (admins): its devices serve everyone",
        ),
    ):
        p = rsub.add_parser(name, help=text, description=text, parents=[conn])
        p.set_defaults(func=func, needs_server=True)
        p.add_argument(
            "id",
            type=_reservation_id,
            metavar="ID",
            help="reservation id (see gpuhub reservations)",
        )
        json_option(p)
