"""Plain, aligned text tables (tabulate) and number formats for people.

Scripts should use ``--json`` (or ``usage --csv``) instead of parsing these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from tabulate import tabulate

from .. import terms

#: What a missing value looks like in a table.
NONE = "-"


def cell(value: Any) -> str:
    """A value as table text: None becomes ``-``; an empty string stays blank."""
    if value is None:
        return NONE
    if isinstance(value, float):
        return fmt_number(value)
    return str(value).replace("\n", " ")


def render(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Iterable[int] = (),
) -> str:
    """Columns padded to their widest cell (tabulate's plain format).

    ``right`` lists the column indexes to align right (numbers). A column whose header
    is empty and whose cells are all empty is left out (an optional marker column).
    """
    body = [[cell(v) for v in row] for row in rows]
    head = list(headers)
    keep = [i for i, h in enumerate(head) if h or any(r[i] for r in body)]
    right = set(right)
    return tabulate(
        [[r[i] for i in keep] for r in body],
        headers=[head[i] for i in keep],
        tablefmt="plain",
        disable_numparse=True,
        colalign=["right" if i in right else "left" for i in keep],
    )


def fmt_number(x: float | int | None) -> str:
    """Numbers for people: ``2``, ``0.5``, ``0.14``, ``12.35``, ``<0.01``."""
    if x is None:
        return NONE
    f = float(x)
    if f == int(f):
        return str(int(f))
    if abs(f) < 0.005:
        return "<0.01" if f > 0 else "0"
    return f"{f:.2f}".rstrip("0").rstrip(".")


def fmt_limit(x: float | int | None) -> str:
    """A quota limit: the number, or ``unlimited`` for None."""
    return "unlimited" if x is None else fmt_number(x)


def fmt_units(x: float | int | None) -> str:
    """GPU units as fractions of a GPU: ``2``, ``1/7``, ``1 3/7`` (``-`` for None)."""
    return NONE if x is None else terms.fmt_units(x)


def fmt_units_limit(x: float | int | None) -> str:
    """A limit in GPU units: ``1/2``, or ``unlimited`` for None."""
    return "unlimited" if x is None else terms.fmt_units(x)


def fmt_time(iso: str | None) -> str:
    """An ISO 8601 time from the API as ``2026-11-25 13:55 UTC`` (``-`` for None)."""
    if not iso:
        return NONE
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def fmt_memory(mb: int | None) -> str:
    """Device memory: ``80 GiB``, ``5 GiB``, ``512 MiB``."""
    if mb is None:
        return NONE
    return f"{fmt_number(mb / 1024)} GiB" if mb >= 1024 else f"{mb} MiB"


#: Seconds per unit of a duration option (``--max-runtime``, ``--for``).
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_text(seconds: float) -> str:
    """Seconds as a duration option takes them: ``2h``, ``90m``, ``45s``."""
    s = round(seconds)
    for unit in ("d", "h", "m"):
        if s and s % DURATION_UNITS[unit] == 0:
            return f"{s // DURATION_UNITS[unit]}{unit}"
    return f"{s}s"
