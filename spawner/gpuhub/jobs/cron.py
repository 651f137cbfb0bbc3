"""Five-field cron schedules (UTC): ``minute hour day-of-month month day-of-week``.

Each field is ``*``, a number, a range ``a-b``, any of them with a step ``/n``, or a
comma-separated list of those. Months may be named ``jan``-``dec`` and weekdays
``sun``-``sat`` (0 and 7 are both Sunday). As in Vixie cron, when both day-of-month and
day-of-week are restricted (neither starts with ``*``), a day matches if *either* does;
otherwise both must.

>>> s = CronSchedule.parse("30 2 * * mon-fri")
>>> s.next_after(dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)).isoformat()
'2026-11-30T02:30:00+00:00'
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.UTC

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

#: (name, low, high, names starting at ``low``) per field, in order.
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
#: Searches give up after this many years (a schedule such as "0 0 29 2 mon" is rare).
SEARCH_YEARS = 30
_ITEM = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")


class CronError(ValueError):
    """A schedule that is not a valid five-field cron expression; the message says why."""


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text) + (1 if name == "month" else 0)
    if not text.isdigit() or len(text) > 2:
        raise CronError(f"{name} field: {text!r} is not a number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name} field: {value} is not from {low} to {high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        m = _ITEM.fullmatch(item)
        if not m:
            raise CronError(f"{name} field: {item!r} is not '*', a number, a range or a step")
        body, step_text = m.groups()
        step = 1
        if step_text is not None:
            step = int(step_text)
            if not 1 <= step <= high:
                raise CronError(f"{name} field: the step in {item!r} must be from 1 to {high}")
        if body == "*":
            a, b = low, high
        elif "-" in body:
            a, b = (_value(p, name, low, high, names) for p in body.split("-"))
            if a > b:
                raise CronError(f"{name} field: the range {body!r} goes backwards")
        else:
            a = _value(body, name, low, high, names)
            b = high if step_text is not None else a  # "5/15": from 5 on, every 15
        values.update(range(a, b + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field (weekdays 0-6, Sunday 0)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool  # the day-of-month field does not start with "*"
    weekdays_restricted: bool  # the day-of-week field does not start with "*"

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse five fields separated by spaces; raise :class:`CronError` with a sentence."""
        if not isinstance(text, str) or len(text) > 200:
            raise CronError("a schedule is a string of at most 200 characters")
        parts = text.lower().split()
        if len(parts) != 5:
            raise CronError(
                f"a schedule has 5 fields (minute hour day-of-month month day-of-week), "
                f"e.g. '0 2 * * *'; this one has {len(parts)}"
            )
        sets = [_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        schedule = cls(
            text=" ".join(parts), minutes=sets[0], hours=sets[1], days=sets[2], months=sets[3],
            weekdays=weekdays, days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )  # fmt: skip
        if not schedule.weekdays_restricted and not any(
            d <= calendar.monthrange(2024, m)[1] for m in schedule.months for d in schedule.days
        ):
            raise CronError(f"schedule {text!r} names no day that exists in its months")
        return schedule

    def day_matches(self, day: dt.date) -> bool:
        """Whether ``day`` is a day the schedule runs on (month and the dom/dow rule)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, when: dt.datetime) -> bool:
        """Whether the schedule fires in the minute of ``when`` (UTC)."""
        when = _utc(when)
        return when.minute in self.minutes and when.hour in self.hours and self.day_matches(when)

    def next_after(self, when: dt.datetime) -> dt.datetime | None:
        """The first minute strictly after ``when`` at which the schedule fires (UTC), or
        None if there is none within :data:`SEARCH_YEARS` years."""
        t = _utc(when).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = t.year + SEARCH_YEARS
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        while t.year <= limit:
            if not self.day_matches(t.date()):
                t = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), UTC)
                continue
            for h in hours:
                if h < t.hour:
                    continue
                for m in minutes:
                    if h > t.hour or m >= t.minute:
                        return t.replace(hour=h, minute=m)
            t = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), UTC)
        return None

    def next_time(self, after: float) -> float | None:
        """:meth:`next_after` on POSIX seconds."""
        nxt = self.next_after(dt.datetime.fromtimestamp(after, UTC))
        return None if nxt is None else nxt.timestamp()


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse(text: str) -> CronSchedule:
    """Shorthand for :meth:`CronSchedule.parse`."""
    return CronSchedule.parse(text)
