"""Rounding by running totals: a participant's posted cents follow its own exact
running total, never the other participants' amounts; the rounding account takes
what the counterparties are not due; statements carry energy, fees and carbon
as separate lines and reconcile with exact bills."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import Ledger, Settlement

RETAIL, FEED_IN, PENALTY = 0.2875, 0.0613, 0.0371
MONEY = ("market_cents", "utility_cents", "imbalance_cents", "carbon_cents")
OPERATORS = ("market:money", "utility:money", "carbon:money", "rounding:money")


def _half_even(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _clearing(labels: list[str], side: np.ndarray, kwh: np.ndarray,
              payment: np.ndarray) -> Clearing:
    """One order per participant, energy balanced, with the given payments."""
    ob = OrderBatch(id=np.arange(len(labels)), participant=labels, side=side,
                    price=np.full(len(labels), 0.2), quantity=kwh)
    return Clearing.from_allocation("pay_as_bid", ob, kwh, np.full(len(labels), 0.2), 0.2,
                                    payment=payment)


def _intervals(draw: st.DrawFn) -> list[dict[str, np.ndarray]]:
    n = draw(st.integers(3, 6))
    k = draw(st.integers(1, 8))
    amounts = st.floats(-3.0, 3.0, allow_nan=False)
    out = []
    for _ in range(k):
        side = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)))
        side[:2] = [1, -1]
        kwh = np.array(draw(st.lists(st.floats(0.001, 2.0), min_size=n, max_size=n)))
        # balance the market: scale the sellers to what the buyers bought
        kwh[side < 0] *= kwh[side > 0].sum() / kwh[side < 0].sum()
        out.append({
            "side": side, "kwh": kwh,
            "payment": np.array(draw(st.lists(amounts, min_size=n, max_size=n))),
            "metered": np.array(draw(st.lists(amounts, min_size=n, max_size=n))),
            "planned": np.array(draw(st.lists(amounts, min_size=n, max_size=n))),
            "carbon": np.array(draw(st.lists(st.floats(-0.05, 0.05), min_size=n,
                                             max_size=n))),
        })
    return out


def _settle(intervals: list[dict[str, np.ndarray]], order: np.ndarray
            ) -> tuple[Settlement, list[dict[str, int]]]:
    """Settle the intervals with participant ``p{i}`` getting row ``order[i]``;
    return the settlement and the operator balances after every interval."""
    labels = [f"p{i}" for i in range(order.size)]
    s = Settlement(Ledger(":memory:"))
    balances = []
    for k, d in enumerate(intervals):
        r = {name: v[order] for name, v in d.items()}
        s.settle_interval(k, _clearing(labels, r["side"], r["kwh"], r["payment"]), labels,
                          r["metered"], planned_kwh=r["planned"], carbon_cost=r["carbon"],
                          retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN,
                          imbalance_penalty_per_kwh=PENALTY)
        balances.append(s.ledger.balances())
    return s, balances


def _exact_cents(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The exact (unrounded) money lines, computed here from the definitions."""
    market_kwh = d["side"] * d["kwh"]
    utility_kwh = d["planned"] - market_kwh
    imbalance_kwh = d["metered"] - d["planned"]
    return {
        "market_cents": d["payment"] * 100,
        "utility_cents": utility_kwh * np.where(utility_kwh > 0, RETAIL, FEED_IN) * 100,
        "imbalance_cents": imbalance_kwh * np.where(imbalance_kwh > 0, RETAIL + PENALTY,
                                                    FEED_IN - PENALTY) * 100,
        "carbon_cents": d["carbon"] * 100,
    }


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_running_totals_keep_each_household_within_half_a_cent(data: st.DataObject) -> None:
    intervals = data.draw(st.composite(lambda draw: _intervals(draw))())
    n = intervals[0]["side"].size
    s, balances = _settle(intervals, np.arange(n))
    # (a) every participant's posted total of every line is within half a cent of
    # its exact running total after every interval
    running = {line: np.zeros(n) for line in MONEY}
    posted = {line: np.zeros(n, dtype=np.int64) for line in MONEY}
    for d, done in zip(intervals, s.settled, strict=True):
        exact = _exact_cents(d)
        for line in MONEY:
            running[line] += exact[line]
            posted[line] += getattr(done.lines, line)
            assert np.all(np.abs(posted[line] - running[line]) <= 0.5 + 1e-5), line
        # (b) debits = credits in the interval, and every operator got exactly its due:
        # the rounded exact aggregate of its lines, the rounding account the rest
        moved = {}
        for t in done.transfers:
            moved[t.debit] = moved.get(t.debit, 0) - t.amount
            moved[t.credit] = moved.get(t.credit, 0) + t.amount
        assert sum(v for a, v in moved.items() if a.endswith(":money")) == 0
        assert sum(v for a, v in moved.items() if a.endswith(":energy")) == 0
        assert moved.get("market:energy", 0) == 0
        line_of = {"market:money": "market_cents", "carbon:money": "carbon_cents"}
        due = {a: _half_even(sum((Decimal(repr(float(x))) for x in exact[line]), Decimal(0)))
               for a, line in line_of.items()}
        for account, value in due.items():
            got = moved.get(account, 0)
            total = sum((Decimal(repr(float(x))) for x in exact[line_of[account]]), Decimal(0))
            near_tie = abs(abs(total - int(total)) - Decimal("0.5")) < Decimal("1e-5")
            assert got == value or (near_tie and abs(got - value) == 1), account
        paid = int(done.lines.total_cents.sum())
        assert paid == sum(moved.get(a, 0) for a in OPERATORS)
    assert s.reconciliation().is_ok
    # (c) permuting the other participants' amounts never changes p0's posted cents
    order = np.concatenate([[0], data.draw(st.permutations(range(1, n)))])
    t, _ = _settle(intervals, order)
    for a, b in zip(s.settled, t.settled, strict=True):
        for line in (*MONEY, "metered_wh", "market_wh", "utility_wh", "imbalance_wh"):
            assert getattr(a.lines, line)[0] == getattr(b.lines, line)[0], line
    # and the rounding account is all that differs among the operators' totals
    assert balances[-1]["participant:p0:money"] == t.ledger.balance("participant:p0:money")


def test_three_households_over_four_intervals_by_hand(tmp_path: Path) -> None:
    """Utility only, retail 0.30, feed-in 0.05, every interval the same:
    a imports 50 Wh (1.5 cents) and pays a carbon charge of 0.4 cents,
    b imports 12.5 Wh (0.375 cents), c exports 100 Wh (-0.5 cents).

    running exact         R (half to even)     posted
    a: 1.5 3.0 4.5 6.0    2 3 4 6              2  1  1 2
    b: .375 .75 1.125 1.5 0 1 1 2              0  1  0 1
    c: -.5 -1 -1.5 -2     0 -1 -2 -2           0 -1 -1 0
    a carbon: .4 .8 1.2 1.6 -> 0 1 1 2         0  1  0 1
    The utility is due R(1.375) = 1 each interval; the households' utility lines
    add up to 2, 1, 0, 3, so the rounding account takes 1, 0, -1, 2 (and 0, 1, 0, 1
    of carbon, whose account is due R(0.4) = 0). Rounding each interval on its
    own (the old rule) would bill a 2 cents every interval: 8 for 6.
    """
    s = Settlement(Ledger(":memory:"))
    for k in range(4):
        s.settle_interval(k, None, ["a", "b", "c"], [0.05, 0.0125, -0.1],
                          retail_price_per_kwh=0.30, feed_in_price_per_kwh=0.05,
                          carbon_cost=[0.004, 0.0, 0.0])
    st_ = s.statements()
    utility = st_.pivot(index="participant", columns="interval", values="utility_cents")
    assert utility.loc["a"].tolist() == [2, 1, 1, 2]
    assert utility.loc["b"].tolist() == [0, 1, 0, 1]
    assert utility.loc["c"].tolist() == [0, -1, -1, 0]
    carbon = st_.pivot(index="participant", columns="interval", values="carbon_cents")
    assert carbon.loc["a"].tolist() == [0, 1, 0, 1]
    rounding = [sum(t.amount if t.credit == "rounding:money" else -t.amount
                    for t in done.transfers if "rounding:money" in (t.debit, t.credit))
                for done in s.settled]
    assert rounding == [1, 1, -1, 3]
    bal = s.ledger.balances()
    assert [bal[f"participant:{p}:money"] for p in "abc"] == [-8, -2, 2]
    assert (bal["utility:money"], bal["carbon:money"], bal["rounding:money"]) == (4, 0, 4)
    rec = s.reconciliation(bills={"a": 0.06, "b": 0.015, "c": -0.02})
    assert rec.is_ok, rec.problems
    assert rec.bills is not None
    assert rec.bills["energy_cents"].tolist() == [6, 2, -2]
    assert rec.bills["rounding_cents"].tolist() == pytest.approx([0.0, 0.5, 0.0])  # b: 1.5 -> 2
    assert rec.bills["unexplained_cents"].abs().max() < 1e-9
    assert rec.residuals.loc["a", "carbon_cents"] == pytest.approx(0.4)
    # statements.csv: energy bill, fees and carbon apart; the total is their sum
    frame = pd.read_csv(s.write_statements(tmp_path / "statements.csv"))
    for col in ("energy_cents", "grid_fee_cents", "carbon_cents", "total_cents",
                "utility_exact_cents", "carbon_exact_cents", "metered_exact_wh"):
        assert col in frame.columns
    assert "market_payment" not in frame.columns
    a = frame[frame["participant"] == "a"]
    assert a["energy_cents"].tolist() == [2, 1, 1, 2]
    assert a["total_cents"].tolist() == [2, 2, 1, 3]
    assert a["utility_exact_cents"].tolist() == [1.5] * 4
    assert a["carbon_exact_cents"].tolist() == [0.4] * 4


def test_reconciliation_names_a_bill_the_statements_do_not_match() -> None:
    s = Settlement(Ledger(":memory:"))
    s.settle_interval(0, None, ["a", "b"], [0.05, 0.0125], retail_price_per_kwh=0.30,
                      feed_in_price_per_kwh=0.05)
    rec = s.reconciliation(bills={"a": 0.015, "b": 0.0037, "z": 1.0})
    assert rec.bills is not None
    assert rec.bills.loc["b", "unexplained_cents"] == pytest.approx(0.005)
    assert any("household b" in p for p in rec.problems)
    assert any("household z has no statement" in p for p in rec.problems)
    assert not any("household a" in p for p in rec.problems)


def test_intervals_come_in_order_and_resettling_posts_the_same() -> None:
    s = Settlement(Ledger(":memory:"))
    first = s.settle_interval(3, None, ["a"], [0.05], retail_price_per_kwh=0.30,
                              feed_in_price_per_kwh=0.05)
    again = s.settle_interval(3, None, ["a"], [0.05], retail_price_per_kwh=0.30,
                              feed_in_price_per_kwh=0.05)
    assert again.transfers == first.transfers
    with pytest.raises(InputError) as err:
        s.settle_interval(2, None, ["a"], [0.05], retail_price_per_kwh=0.30,
                          feed_in_price_per_kwh=0.05)
    assert err.value.field == "interval"
    # a failed batch leaves the running totals as they were
    def failing_batch() -> None:
        with s.batch():
            s.settle_interval(4, None, ["a"], [0.05], retail_price_per_kwh=0.30,
                              feed_in_price_per_kwh=0.05)
            raise RuntimeError("engine failed")

    with pytest.raises(RuntimeError):
        failing_batch()
    fourth = s.settle_interval(4, None, ["a"], [0.05], retail_price_per_kwh=0.30,
                               feed_in_price_per_kwh=0.05)
    assert fourth.lines.utility_cents.tolist() == [1]              # 3.0 -> 3, after 2


def test_an_amount_too_large_to_settle_names_its_field() -> None:
    s = Settlement(Ledger(":memory:"))
    with pytest.raises(InputError) as err:
        s.settle_interval(0, None, ["a"], [1e13], retail_price_per_kwh=0.30,
                          feed_in_price_per_kwh=0.05)
    assert err.value.field == "metered_kwh"
