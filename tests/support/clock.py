"""A clock tests move by hand, starting at a fixed Monday morning."""

from __future__ import annotations

import datetime as dt

#: Monday 2026-11-23 09:00 UTC, where every fake clock starts.
CLOCK_START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC).timestamp()


class FakeClock:
    """A clock the test moves by hand; pass it as ``Scheduler(clock=...)``."""

    def __init__(self, now: float = CLOCK_START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds``; returns the new time."""
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock({dt.datetime.fromtimestamp(self.now, dt.UTC).isoformat()})"
