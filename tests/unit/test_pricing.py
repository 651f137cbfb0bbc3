"""Prices: credits per GPU-hour by model, what each grant is charged, statements and
credits budgets, on SQLite and PostgreSQL with an injected clock.

The pool has two H100s, two L4s and an A100 split into MIG slices, priced as the issue's
example: H100-80GB 2.0, A100 1.5, L4 0.5 credits per GPU-hour.
"""

from __future__ import annotations

import pytest
from gpuhub.scheduler.errors import NotFound, QuotaExceeded, SchedulerError
from gpuhub.scheduler.pricing import RateCard, check_rate
from gpuhub.scheduler.quota import QuotaSpec

from tests.support.scheduler import HOUR, ask, assert_consistent, gpu, lease_rows, mig

POOL = "h: 2xH100-80GB; l: 2xL4; a: 1xA100-40GB[mig=4x1g.10gb]"
RATES = {"H100-80GB": 2.0, "A100": 1.5, "L4": 0.5}
MODELS = ("A100-40GB", "H100-80GB", "L4")


@pytest.fixture
def s(make, engine, clock):
    return make(POOL, rates=RateCard(engine, RATES, default=1.0, clock=clock))


def test_each_grant_is_charged_its_models_rate_and_a_slice_its_share(s, clock):
    h = ask(s, "alice", gpu(2, "H100"))
    l4 = ask(s, "bob", gpu(1, "L4"))
    sl = ask(s, "carol", mig("1g.10gb"))
    assert (h.rate, l4.rate, sl.rate) == (2.0, 0.5, 1.5)  # "A100" prices the A100-40GB
    assert {d["rate"] for d in h.devices} == {2.0} and h.tier == "guaranteed"
    clock.advance(2 * HOUR)
    assert h.credits(clock()) == pytest.approx(2 * 2 * 2.0)  # 2 GPUs x 2 h x 2.0
    assert l4.credits(clock()) == pytest.approx(2 * 0.5)
    assert sl.credits(clock()) == pytest.approx(float(sl.units) * 2 * 1.5)  # a seventh
    shown = h.to_dict(clock())
    assert (shown["rate"], shown["tier"], shown["discount"], shown["credits"]) == (
        2.0, "guaranteed", 1.0, 8.0,
    )  # fmt: skip
    row = lease_rows(s.engine)[h.id]
    assert (row["rate"], row["tier"], row["discount"]) == (2.0, "guaranteed", 1.0)
    assert_consistent(s)


def test_a_rate_change_applies_from_then_on_and_never_rewrites_the_past(s, engine, clock):
    before = ask(s, "alice", gpu(1, "H100"))
    clock.advance(HOUR)
    entry = s.rates.set("H100-80GB", 3.0, by="admin", known=MODELS)
    assert entry["source"] == "admin" and entry["updated_by"] == "admin"
    after = ask(s, "bob", gpu(1, "H100"))
    clock.advance(HOUR)
    assert (before.rate, after.rate) == (2.0, 3.0)
    s.release(before.id)
    s.release(after.id)
    rows = s.ledger.statement(0, clock() + 1, now=clock())
    by_user = {r["user"]: r for r in rows}
    assert by_user["alice"]["credits"] == pytest.approx(4.0)  # 2 h at 2.0
    assert by_user["bob"]["credits"] == pytest.approx(3.0)  # 1 h at 3.0
    # a new scheduler on the same database: the admin's rate, and the leases' own
    again = RateCard(engine, RATES, clock=clock)
    assert again.rate("H100-80GB") == 3.0
    assert again.unset("H100-80GB", by="admin")["source"] == "configuration"
    assert RateCard(engine, RATES).rate("H100-80GB") == 2.0
    assert s.ledger.total_credits(clock()) == pytest.approx(7.0)


def test_a_statement_splits_by_group_user_model_and_rate_and_adds_up_to_the_ledger(s, clock):
    start = clock()
    a = ask(s, "alice", gpu(1, "H100"), groups=["cs101"], group="cs101")
    b = ask(s, "bob", gpu(2, "L4"))
    clock.advance(3 * HOUR)
    s.release(a.id)
    clock.advance(HOUR)
    rows = s.ledger.statement(start, clock(), now=clock())
    assert [(r["group"], r["user"], r["model"], r["gpu_hours"], r["credits"]) for r in rows] == [
        (None, "bob", "L4", 8.0, 4.0),
        ("cs101", "alice", "H100-80GB", 3.0, 6.0),
    ]
    assert all(r["tier"] == "guaranteed" and r["leases"] == 1 for r in rows)
    total = sum(r["credits"] for r in rows)
    assert total == pytest.approx(s.ledger.total_credits(clock()), abs=1e-9) == 10.0
    # a period that cuts through a lease takes its share only
    half = s.ledger.statement(start + 2 * HOUR, clock(), now=clock(), user="alice")
    assert [(r["gpu_hours"], r["credits"]) for r in half] == [(1.0, 2.0)]
    usage = s.ledger.usage(start, clock(), now=clock(), by=("user",))
    assert {r["user"]: r["credits"] for r in usage} == {"alice": 6.0, "bob": 4.0}
    assert b.status == "active"


def test_a_credits_budget_refuses_what_it_cannot_pay_and_counts_ended_leases(s, clock):
    s.set_quota("group", "cs101", QuotaSpec(credits=5, period="week"), by="admin")
    g = {"groups": ["cs101"], "group": "cs101"}
    with pytest.raises(QuotaExceeded) as e:  # 2 H100 for 2 h: up to 8 credits
        ask(s, "alice", gpu(2, "H100"), hours=2, **g)
    assert "5 credits left this week" in e.value.message and "needs up to 8" in e.value.message
    lease = ask(s, "alice", gpu(1, "H100"), hours=2, **g)  # up to 4: fits
    clock.advance(2 * HOUR)
    s.release(lease.id)  # 4 charged
    status = s.quota_status("group", "cs101", s.view.quota("group", "cs101"))
    assert (status["credits_used"], status["credits_left"]) == (4.0, 1.0)
    with pytest.raises(QuotaExceeded, match="1 of 5 credits left"):
        ask(s, "bob", gpu(1, "H100"), hours=1, **g)
    assert ask(s, "bob", gpu(1, "L4"), hours=1, **g).rate == 0.5  # 0.5 credits: fits


def test_bad_rates_are_refused_with_a_sentence_and_change_nothing(s, engine):
    for value, words in ((-1, "between 0 and"), (float("nan"), "a number"), ("2", "a number"),
                         (True, "a number"), (1e9, "between 0 and")):  # fmt: skip
        with pytest.raises(SchedulerError, match=words):
            s.rates.set("L4", value, by="admin", known=MODELS)
    with pytest.raises(SchedulerError, match="no GPU model 'B200'.*A100-40GB, H100-80GB, L4"):
        s.rates.set("B200", 3.0, by="admin", known=MODELS)
    with pytest.raises(NotFound):
        s.rates.unset("L4", by="admin")
    assert s.rates.admin == {} and RateCard(engine).admin == {}
    with pytest.raises(SchedulerError, match="the rate of L4"):
        RateCard(engine, {"L4": -0.5})
    assert check_rate(0) == 0.0


def test_the_rate_card_lists_each_model_with_where_its_rate_comes_from(s):
    s.rates.set("L4", 0.25, by="root", known=MODELS)
    listing = {
        e["model"]: (e["credits_per_gpu_hour"], e["source"]) for e in s.rates.listing(MODELS)
    }
    assert listing == {
        "A100-40GB": (1.5, "configuration"),
        "H100-80GB": (2.0, "configuration"),
        "L4": (0.25, "admin"),
    }
    assert s.rates.per_hour(["H100-80GB", "L4"], 2) == (0.5, 4.0)
    assert s.rates.per_hour([], 1) is None
    assert RateCard(s.engine, {}).entry("H100-80GB")["source"] == "default"
