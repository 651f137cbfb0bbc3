"""Cron schedules of job definitions, computed by cronsim (a maintained cron library).

A schedule is five fields, ``minute hour day-of-month month day-of-week``, as in Vixie/Debian
cron: ``*``, numbers, ranges ``a-b``, steps ``/n``, lists ``a,b``; months ``jan``-``dec`` and
weekdays ``sun``-``sat`` by name (0 and 7 are both Sunday); ``L`` (last day of the month),
``5L`` (last Friday) and ``fri#2`` (second Friday). When both day-of-month and day-of-week
are restricted (neither starts with ``*``), a day matches if *either* does. One of the macros
``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly`` may stand for the five fields.

Times are UTC unless the schedule starts with a zone, ``CRON_TZ=Europe/Berlin 0 2 * * *``
(cronie's and Kubernetes' spelling; ``TZ=`` is accepted too): the fields are then wall-clock
times there. Across daylight-saving changes a schedule at fixed hours and minutes runs as
Debian cron runs it: a time the clock skips runs at the first minute after the gap, a time
that happens twice runs once.

>>> s = CronSchedule.parse("30 2 * * mon-fri")
>>> s.next_after(dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)).isoformat()
'2026-11-30T02:30:00+00:00'
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

UTC = dt.UTC

#: Vixie cron's macros and the five fields each stands for.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: The prefixes that name a schedule's time zone; the first is the one schedules are saved with.
ZONE_PREFIXES = ("CRON_TZ=", "TZ=")

#: (name, what it takes) per field, in order; only for the sentences of refusals.
_FIELDS = (
    ("minute", "a number from 0 to 59"),
    ("hour", "a number from 0 to 23"),
    ("day of month", "a number from 1 to 31 (or L, the last day)"),
    ("month", "a number from 1 to 12 or a name jan-dec"),
    ("day of week", "a number from 0 to 7 (0 and 7 are Sunday) or a name sun-sat"),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# IANA names ("Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"), matched whole
# before ZoneInfo sees them: it would also open any relative path below the zone folder
_ZONE = re.compile(r"\A[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}\Z")
# any instant will do to construct a CronSim for checking an expression
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """A schedule that is not a valid cron expression; the message says why."""


@dataclass(frozen=True)
class CronSchedule:
    """A checked schedule: its normalised text, its five fields and its time zone."""

    text: str  # as saved and shown: "0 2 * * mon-fri", "@daily", "CRON_TZ=Europe/Berlin 0 2 * * *"
    fields: str  # the five fields (a macro expanded), lower case
    zone: dt.tzinfo = UTC

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Check ``text``; raise :class:`CronError` with a sentence naming the problem."""
        if not isinstance(text, str) or len(text) > 200:
            raise CronError("a schedule is a string of at most 200 characters")
        parts = text.split()
        zone, prefix = UTC, ""
        if parts and parts[0].upper().startswith(ZONE_PREFIXES):
            name = parts.pop(0).split("=", 1)[1]
            zone, prefix = _zone(name), f"{ZONE_PREFIXES[0]}{name} "
        parts = [p.lower() for p in parts]
        if len(parts) == 1 and parts[0].startswith("@"):
            if parts[0] not in MACROS:
                raise CronError(
                    f"{parts[0]!r} is not a cron macro; use one of {', '.join(MACROS)} "
                    "or five fields, e.g. '0 2 * * *'"
                )
            fields = MACROS[parts[0]]
        elif len(parts) != 5:
            raise CronError(
                f"a schedule has 5 fields (minute hour day-of-month month day-of-week), "
                f"e.g. '0 2 * * *', or a macro such as @daily; this one has {len(parts)}"
            )
        else:
            fields = " ".join(parts)
        try:
            CronSim(fields, _EPOCH)
        except CronSimError as e:
            raise CronError(_problem(fields.split(), text)) from e
        return cls(text=prefix + " ".join(parts), fields=fields, zone=zone)

    def next_after(self, when: dt.datetime) -> dt.datetime | None:
        """The first minute strictly after ``when`` (naive: UTC) at which the schedule
        fires, in the schedule's zone; None if there is none within 50 years."""
        after = _aware(when).timestamp()
        start = dt.datetime.fromtimestamp(after, self.zone)
        # cronsim steps through wall-clock times: from inside a repeated hour (the second
        # 02:xx of an autumn night) it can name one of that hour's first pass, which lies
        # before `after`; the next one after it is the answer
        for fire in CronSim(self.fields, start):
            if fire.timestamp() > after:
                return fire
        return None

    def next_time(self, after: float) -> float | None:
        """:meth:`next_after` on POSIX seconds."""
        nxt = self.next_after(dt.datetime.fromtimestamp(after, UTC))
        return None if nxt is None else nxt.timestamp()

    def matches(self, when: dt.datetime) -> bool:
        """Whether the schedule fires in the minute of ``when`` (naive: UTC)."""
        minute = math.floor(_aware(when).timestamp() / 60) * 60
        return self.next_time(minute - 1) == minute


def parse(text: str) -> CronSchedule:
    """Shorthand for :meth:`CronSchedule.parse`."""
    return CronSchedule.parse(text)


def _aware(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name``, or a :class:`CronError` saying it is unknown."""
    refusal = CronError(
        f"time zone {name!r} is unknown; use an IANA name such as Europe/Berlin, "
        "America/New_York or UTC"
    )
    if len(name) > 64 or not _ZONE.fullmatch(name):
        raise refusal
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a folder, e.g. "Europe"
        raise refusal from e


# -- the sentences of refusals ------------------------------------------------------------
# cronsim says only which field is bad ("Bad minute"). Which item of the field, and why, is
# found by asking cronsim about the parts one at a time; the rules stay cronsim's.


def _accepts(index: int, field: str) -> bool:
    """Whether cronsim accepts ``field`` as field ``index`` with ``*`` everywhere else."""
    probe = ["*"] * 5
    probe[index] = field
    try:
        CronSim(" ".join(probe), _EPOCH)
    except CronSimError:
        return False
    return True


def _problem(fields: list[str], text: str) -> str:
    """A sentence naming what is wrong with five fields cronsim refused."""
    for index, field in enumerate(fields):
        if not _accepts(index, field):
            return _field_problem(index, field)
    # every field is fine on its own: the combination names no day (e.g. "0 0 30 feb *")
    return f"schedule {text!r} names no day that exists in its months"


def _field_problem(index: int, field: str) -> str:
    name, takes = _FIELDS[index]
    hint = f"{takes}, '*', a range a-b, a step such as */15, or a list of those"
    for item in field.split(","):
        if item == "":
            return f"{name} field: {field!r} has an empty item in its list"
        if _accepts(index, item):
            continue
        base, slash, step = item.partition("/")
        if slash and not (step.isascii() and step.isdigit() and int(step) >= 1):
            return f"{name} field: the step in {item!r} must be a whole number of at least 1"
        low, dash, high = base.partition("-")
        if dash and _accepts(index, low) and _accepts(index, high):
            a, b = _number(index, low), _number(index, high)
            if a is not None and b is not None and a > b:
                return f"{name} field: the range {base!r} goes backwards; put the smaller end first"
        if dash:
            bad = high if _accepts(index, low) else low
            return f"{name} field: {bad!r} in {item!r} is not {takes}"
        return f"{name} field: {item!r} is not {takes}"
    return f"{name} field: {field!r} is not {hint}"


def _number(index: int, text: str) -> int | None:
    """A field value written as a number or a name (month, weekday); None otherwise."""
    if text.isascii() and text.isdigit():
        return int(text)
    names = {3: _MONTHS, 4: _WEEKDAYS}.get(index, ())
    if text in names:
        return names.index(text) + (1 if index == 3 else 0)
    return None
