"""Reservation windows in time: one window, or one a week at the same wall-clock time.

A weekly window keeps its wall-clock start and end in its time zone (``zoneinfo``), so
"Tuesdays 14:00-16:00 Europe/Berlin" is 13:00-15:00 UTC in winter and 12:00-14:00 UTC in
summer. Times are POSIX seconds; a window is ``(start, end)`` with ``start <= t < end``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEK = 7 * 86400.0
#: How often a reservation's window comes back.
REPEATS = ("once", "weekly")
#: Weekly windows of two zones are compared over this span: it holds every combination
#: of their daylight-saving offsets (the rules repeat each year).
COMPARE_SPAN = 380 * 86400.0

Window = tuple[float, float]


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError when there is none by that name."""
    if not isinstance(name, str) or not name or len(name) > 64 or name != name.strip():
        raise ValueError(
            f"{name!r} is not a known IANA time zone name, e.g. 'UTC' or 'Europe/Berlin'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise ValueError(
            f"{name!r} is not a known IANA time zone name, e.g. 'UTC' or 'Europe/Berlin'"
        ) from e


def _shift(ts: float, tz: ZoneInfo, weeks: int) -> float:
    """``ts`` moved by ``weeks`` weeks of wall-clock time in ``tz``."""
    local = dt.datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
    return (local + dt.timedelta(weeks=weeks)).replace(tzinfo=tz).timestamp()


@dataclass(frozen=True)
class Windows:
    """The windows of a reservation: the first is ``start``-``end``; weekly ones follow."""

    start: float
    end: float
    repeat: str
    tz: ZoneInfo

    def occurrence(self, k: int) -> Window:
        """The ``k``-th window (0 is the first)."""
        if k == 0:
            return self.start, self.end
        return _shift(self.start, self.tz, k), _shift(self.end, self.tz, k)

    def _near(self, t: float) -> range:
        if self.repeat == "once":
            return range(1)
        lo = max(0, math.floor((t - self.start) / WEEK) - 1)
        return range(lo, lo + 4)

    def at(self, t: float) -> Window | None:
        """The window open at ``t``, or None."""
        for k in self._near(t):
            s, e = self.occurrence(k)
            if s <= t < e:
                return s, e
        return None

    def after(self, t: float) -> Window | None:
        """The first window that opens after ``t``, or None (a single window gone by)."""
        for k in self._near(t):
            s, e = self.occurrence(k)
            if s > t:
                return s, e
        return None

    def between(self, a: float, b: float) -> Iterator[Window]:
        """The windows open at some time from ``a`` to before ``b``, in order."""
        if self.repeat == "once":
            if self.end > a and self.start < b:
                yield self.start, self.end
            return
        k = self._near(a).start
        while True:
            s, e = self.occurrence(k)
            if s >= b:
                return
            if e > a:
                yield s, e
            k += 1

    @property
    def last_end(self) -> float:
        """When the last window closes (infinity for weekly ones)."""
        return self.end if self.repeat == "once" else math.inf


def overlap(a: Windows, b: Windows) -> Window | None:
    """The first window of ``a`` that overlaps a window of ``b``, or None if none ever does."""
    if a.repeat == "once" or b.repeat == "once":
        lo, hi = max(a.start, b.start), min(a.last_end, b.last_end)
        if lo >= hi:
            return None
    else:
        lo = max(a.start, b.start) - WEEK
        hi = lo + COMPARE_SPAN
    for s, e in a.between(lo, hi):
        if next(b.between(s, e), None) is not None:
            return s, e
    return None


def tz_label(tz: ZoneInfo, ts: float) -> str:
    """'UTC', or the zone's abbreviation at ``ts`` ('CET', 'CEST')."""
    if tz.key == "UTC":
        return "UTC"
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Z") or tz.key


def wall(ts: float, tz: ZoneInfo, now: float) -> str:
    """'16:00 UTC' on the day of ``now`` (in ``tz``), else 'Tue 24 Nov 16:00 UTC'."""
    t, today = dt.datetime.fromtimestamp(ts, tz), dt.datetime.fromtimestamp(now, tz)
    clock = f"{t:%H:%M} {tz_label(tz, ts)}"
    return clock if t.date() == today.date() else f"{t:%a} {t.day} {t:%b} {clock}"


def local_iso(ts: float, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset at ``ts``."""
    return dt.datetime.fromtimestamp(ts, tz).isoformat()


def describe(w: Windows) -> str:
    """'on Tuesdays 14:00–16:00 UTC' or 'on Tue 8 Dec 2026 14:00–16:00 UTC'."""
    s, e = dt.datetime.fromtimestamp(w.start, w.tz), dt.datetime.fromtimestamp(w.end, w.tz)
    label = tz_label(w.tz, w.start) if w.repeat == "once" else w.tz.key
    if w.repeat == "weekly":
        if s.date() == e.date():
            return f"on {s:%A}s {s:%H:%M}–{e:%H:%M} {label}"
        return f"from {s:%A}s {s:%H:%M} to {e:%A}s {e:%H:%M} {label}"
    day = f"{s:%a} {s.day} {s:%b} {s.year}"
    if s.date() == e.date():
        return f"on {day} {s:%H:%M}–{e:%H:%M} {label}"
    return f"from {day} {s:%H:%M} to {e:%a} {e.day} {e:%b} {e:%H:%M} {label}"
