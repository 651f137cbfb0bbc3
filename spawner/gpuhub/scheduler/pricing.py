"""Prices of GPU time: credits per GPU-hour by device model, and the price of a lease.

A rate is credits per GPU-hour of one whole GPU of a model. Configuration names rates
(``c.GpuhubService.rates``, a default for the rest); an admin may set a model's rate
through the API, which wins over configuration until unset. A MIG slice or a shared seat
costs its share of its GPU (the lease's units), so slices need no rates of their own.

The rate in force when a lease is granted is written on the lease (and on each of its
devices), with its capacity tier and that tier's discount: the charge of a lease is
units x hours x rate x discount, and a later rate change never rewrites the past.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from .db import RateRow
from .errors import NotFound, SchedulerError
from .lease import Lease, iso
from .shapes import model_matches

RATES = RateRow.__table__
#: The tier of capacity a lease runs on; spot capacity comes with its own discount.
#: The largest rate or default accepted, in credits per GPU-hour.
MAX_RATE = 100_000.0


def check_rate(value: Any, what: str = "credits_per_gpu_hour") -> float:
    """``value`` as a rate, or a :class:`SchedulerError` (400) naming what is wrong."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchedulerError(f"{what} must be a number", field="credits_per_gpu_hour")
    if not 0 <= value <= MAX_RATE:
        raise SchedulerError(
            f"{what} must be between 0 and {MAX_RATE:g}; got {value:g}",
            field="credits_per_gpu_hour",
        )
    return float(value)


class RateCard:
    """Credits per GPU-hour of each model: admins' rates over configured ones over the
    default. Reads are from memory; ``set`` and ``unset`` write the ``rates`` table first."""

    def __init__(
        self,
        engine: Engine,
        configured: Mapping[str, float] | None = None,
        default: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.configured = {
            m: check_rate(r, f"the rate of {m}") for m, r in (configured or {}).items()
        }
        self.default = check_rate(default, "the default rate")
        self.clock = clock
        self.admin: dict[str, dict[str, Any]] = {}
        with engine.connect() as conn:
            for r in conn.execute(select(RATES)):
                self.admin[r.model] = {"rate": r.credits_per_gpu_hour, "by": r.updated_by,
                                       "at": r.updated_at}  # fmt: skip

    def _configured(self, model: str) -> tuple[str, float] | None:
        """The configured rate that names ``model``: exactly, else the longest key that
        matches it as a request's model filter does ("H100" matches "H100-80GB")."""
        if model in self.configured:
            return model, self.configured[model]
        keys = [k for k in self.configured if model_matches(model, k)]
        if not keys:
            return None
        key = max(keys, key=len)
        return key, self.configured[key]

    def rate(self, model: str) -> float:
        """Credits per GPU-hour of a whole GPU of ``model``."""
        if model in self.admin:
            return self.admin[model]["rate"]
        hit = self._configured(model)
        return self.default if hit is None else hit[1]

    def entry(self, model: str) -> dict[str, Any]:
        """``model``'s rate with where it comes from, as the API lists it."""
        if model in self.admin:
            a = self.admin[model]
            return {"model": model, "credits_per_gpu_hour": a["rate"], "source": "admin",
                    "updated_by": a["by"], "updated_at": iso(a["at"])}  # fmt: skip
        hit = self._configured(model)
        if hit is not None:
            return {"model": model, "credits_per_gpu_hour": hit[1], "source": "configuration",
                    "updated_by": None, "updated_at": None}  # fmt: skip
        return {"model": model, "credits_per_gpu_hour": self.default, "source": "default",
                "updated_by": None, "updated_at": None}  # fmt: skip

    def listing(self, models: Iterable[str]) -> list[dict[str, Any]]:
        """The rate of each of ``models`` (the pool's), and of any model an admin priced."""
        return [self.entry(m) for m in sorted(set(models) | set(self.admin))]

    def per_hour(self, models: Iterable[str], units: float) -> tuple[float, float] | None:
        """The lowest and highest credits per hour ``units`` GPU units of one of
        ``models`` would cost (the guaranteed tier); None without models."""
        rates = [self.rate(m) for m in models]
        if not rates:
            return None
        return min(rates) * units, max(rates) * units

    def highest(self, shape: Any, nodes: Iterable[Any]) -> float:
        """The most credits per GPU-hour a request of ``shape`` may cost: the highest rate
        of the models in ``nodes`` (the inventory) that its model filter matches."""
        models = {g.model for n in nodes for g in n.gpus if model_matches(g.model, shape.model)}
        return max((self.rate(m) for m in models), default=self.default)

    # -- pricing a grant ---------------------------------------------------------------

    def price(self, lease: Lease, discount: float = 1.0) -> None:
        """Write the rates in force on a lease being granted (memory only): each device's
        model's rate, and the lease's, their mean (a lease's devices are equal shares of
        its units); and its tier's ``discount`` (1 for guaranteed)."""
        for d in lease.devices:
            d["rate"] = self.rate(d.get("model", ""))
        rates = [d["rate"] for d in lease.devices]
        lease.rate = sum(rates) / len(rates) if rates else self.default
        lease.discount = discount

    # -- admins' rates -------------------------------------------------------------------

    def _check_model(self, model: str, known: Iterable[str]) -> None:
        known = sorted(set(known))
        if model not in known:
            have = ", ".join(known) or "none"
            raise SchedulerError(
                f"the pool has no GPU model {model!r} (its models: {have})", field="model"
            )

    def set(self, model: str, value: Any, *, by: str, known: Iterable[str]) -> dict[str, Any]:
        """Set ``model``'s rate (one of the pool's ``known`` models) from now on."""
        self._check_model(model, known)
        rate = check_rate(value)
        now = self.clock()
        row = {"credits_per_gpu_hour": rate, "updated_at": now, "updated_by": by}
        with self.engine.begin() as conn:
            if model in self.admin:
                conn.execute(update(RATES).where(RATES.c.model == model).values(**row))
            else:
                conn.execute(insert(RATES).values(model=model, **row))
        self.admin[model] = {"rate": rate, "by": by, "at": now}
        return self.entry(model)

    def unset(self, model: str, *, by: str) -> dict[str, Any]:
        """Drop an admin's rate for ``model``: configuration's (or the default) applies."""
        if model not in self.admin:
            raise NotFound(f"no admin has set a rate for {model!r}", field="model")
        with self.engine.begin() as conn:
            conn.execute(delete(RATES).where(RATES.c.model == model))
        del self.admin[model]
        return self.entry(model)
