"""Daily netting ('day' granularity): one transfer per account pair, line and day,
reconciling exactly with the per-interval statements; journal replay and
verify_run cover it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import OrderBatch
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Journal,
    Ledger,
    Settlement,
    SettlementConfig,
    SettlementError,
    replay_journal,
    verify_journal,
    verify_run,
)
from transactive.settlement.journal import JournalRecord, read_journal
from transactive.settlement.operator import operator_key
from transactive.sim import Scenario
from transactive.sim.settling import settlement_granularity

RETAIL, FEED_IN = 0.2875, 0.0613


def _day(**kw: object) -> SettlementConfig:
    return SettlementConfig(granularity="day", **kw)  # type: ignore[arg-type]


def test_three_intervals_netted_by_hand() -> None:
    """a and b each import 0.05 kWh at 0.30 in each of three intervals (one day):
    exact 1.5 cents an interval. Each one's running total 1.5, 3.0, 4.5 rounds
    half to even to 2, 3, 4: statement lines 2, 1, 1, one day transfer of 4 cents.
    The utility is due R(1.5 + 1.5) = 3 per interval, 9 in all; the participants
    paid 8, so the rounding account pays the utility 1 cent."""
    s = Settlement(Ledger(":memory:"), config=_day(periods_per_day=3))
    with s.batch():
        for k in range(3):
            s.settle_interval(k, None, ["a", "b"], [0.05, 0.05], retail_price_per_kwh=0.30,
                              feed_in_price_per_kwh=0.05)
    st_ = s.statements()
    assert st_.loc[st_["participant"] == "a", "utility_cents"].tolist() == [2, 1, 1]
    assert st_.loc[st_["participant"] == "a", "utility_wh"].tolist() == [50, 50, 50]
    moved = {(t.id, t.debit, t.credit, t.amount) for t in s.ledger.transfers()}
    assert moved == {  # each one's day through the clearing accounts, then the utility's
        ("0-2/net_money/a", "participant:a:money", "clearing:money", 4),
        ("0-2/net_money/b", "participant:b:money", "clearing:money", 4),
        ("0-2/net_energy/a", "clearing:energy", "participant:a:energy", 150),
        ("0-2/net_energy/b", "clearing:energy", "participant:b:energy", 150),
        ("0-2/utility_money", "clearing:money", "utility:money", 8),
        ("0-2/rounding/utility_money", "rounding:money", "utility:money", 1),
        ("0-2/utility_energy", "utility:energy", "clearing:energy", 300),
    }
    assert s.ledger.balance("utility:money") == 9
    assert s.settled[-1].transfers
    assert not s.settled[0].transfers
    assert s.reconciliation().is_ok


def _clearing(labels: list[str], side: np.ndarray, kwh: np.ndarray,
              payment: np.ndarray) -> Clearing:
    ob = OrderBatch(id=np.arange(len(labels)), participant=labels, side=side,
                    price=np.full(len(labels), 0.2), quantity=kwh)
    return Clearing.from_allocation("pay_as_bid", ob, kwh, np.full(len(labels), 0.2), 0.2,
                                    payment=payment)


@st.composite
def _run(draw: st.DrawFn) -> tuple[int, list[dict[str, np.ndarray]]]:
    n = draw(st.integers(2, 5))
    periods = draw(st.integers(1, 12))
    ppd = draw(st.integers(1, 5))
    amounts = st.floats(-2.0, 2.0, allow_nan=False)
    rows = []
    for _ in range(periods):
        side = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)))
        side[:2] = [1, -1]
        kwh = np.array(draw(st.lists(st.floats(0.001, 2.0), min_size=n, max_size=n)))
        kwh[side < 0] *= kwh[side > 0].sum() / kwh[side < 0].sum()
        vec = st.lists(amounts, min_size=n, max_size=n)
        rows.append({"side": side, "kwh": kwh, "payment": np.array(draw(vec)),
                     "metered": np.array(draw(vec)), "planned": np.array(draw(vec)),
                     "fee": np.array(draw(st.lists(st.floats(0, 0.05), min_size=n,
                                                   max_size=n)))})
    return ppd, rows


def _settle(config: SettlementConfig, rows: list[dict[str, np.ndarray]]) -> Settlement:
    labels = [f"p{i}" for i in range(rows[0]["side"].size)]
    s = Settlement(Ledger(":memory:"), config=config)
    ppd = config.periods_per_day
    for first in range(0, len(rows), ppd):
        with s.batch():
            for k in range(first, min(first + ppd, len(rows))):
                r = rows[k]
                s.settle_interval(k, _clearing(labels, r["side"], r["kwh"], r["payment"]),
                                  labels, r["metered"], planned_kwh=r["planned"],
                                  retail_price_per_kwh=RETAIL, feed_in_price_per_kwh=FEED_IN,
                                  grid_fee_per_kwh=r["fee"], imbalance_penalty_per_kwh=0.01)
    return s


@given(_run())
@settings(max_examples=40, deadline=None)
def test_daily_netting_reconciles_exactly_with_the_interval_statements(
        run: tuple[int, list[dict[str, np.ndarray]]]) -> None:
    ppd, rows = run
    by_interval = _settle(SettlementConfig(periods_per_day=ppd), rows)
    by_day = _settle(_day(periods_per_day=ppd), rows)
    # the statements are the same rows, line for line
    pd.testing.assert_frame_equal(by_interval.statements(), by_day.statements())
    # every account ends where the per-interval transfers put it
    # (a day is netted through the clearing accounts, which end every day at zero)
    day_balances = by_day.ledger.balances()
    assert [day_balances.pop(a, 0) for a in ("clearing:money", "clearing:energy")] == [0, 0]
    assert by_interval.ledger.balances() == day_balances
    # and where the statements, summed by hand, put it
    st_ = by_day.statements()
    balances = by_day.ledger.balances()
    for p, part in st_.groupby("participant"):
        assert balances.get(f"participant:{p}:money", 0) == -int(part["total_cents"].sum())
        assert balances.get(f"participant:{p}:energy", 0) == int(part["metered_wh"].sum())
    # one transfer per participant, line and day at most; whole days only
    frame = by_day.ledger.transfers_frame()
    day = frame["interval"] // ppd
    line = frame["id"].str.split("/", n=1).str[1]  # the line (rounding/line) and participant
    assert not frame.assign(day=day, line=line).duplicated(["day", "line"]).any()
    assert not frame.assign(day=day).query("code != 'rounding'").duplicated(
        ["day", "code", "debit", "credit"]).any()
    assert set(frame["id"].str.split("/").str[0]) <= {
        f"{d * ppd}-{min(d * ppd + ppd, len(rows)) - 1}" if min(d * ppd + ppd, len(rows)) - 1
        > d * ppd else str(d * ppd) for d in range((len(rows) + ppd - 1) // ppd)}
    assert by_day.reconciliation().is_ok
    assert by_day.ledger.check().is_ok


def _day_run(folder: Path) -> None:
    rng = np.random.default_rng(7)
    labels = [f"h{i}" for i in range(6)]
    with Journal(folder / JOURNAL_FILE) as j, Ledger(folder / LEDGER_FILE) as led:
        s = Settlement(led, j, config=_day(periods_per_day=4, run_id="r1"),
                       operator=operator_key())
        for first in range(0, 10, 4):
            with s.batch():
                for k in range(first, min(first + 4, 10)):
                    side = np.array([1, -1, 1, -1, 1, -1])
                    kwh = rng.uniform(0.1, 1.0, 6)
                    kwh[side < 0] *= kwh[side > 0].sum() / kwh[side < 0].sum()
                    s.settle_interval(k, _clearing(labels, side, kwh, side * kwh * 0.2),
                                      labels, rng.normal(0, 1, 6),
                                      retail_price_per_kwh=RETAIL,
                                      feed_in_price_per_kwh=FEED_IN)
        assert s.reconciliation().is_ok


def test_journal_replay_reproduces_the_day_ledger_and_verify_run_passes(tmp_path: Path
                                                                         ) -> None:
    _day_run(tmp_path)
    with Ledger(tmp_path / LEDGER_FILE, create=False) as led:
        want = led.state_hash()
        n = led.n_transfers
    replayed = replay_journal(tmp_path / JOURNAL_FILE)
    assert replayed.state_hash() == want
    assert n == replayed.n_transfers > 0
    kinds = [r.kind for r in _records(tmp_path / JOURNAL_FILE)]
    assert "clearing" not in kinds
    assert kinds.count("transfers") == 3
    assert kinds.count("checkpoint") == 4  # the operators' accounts, then each day
    assert kinds[-1] == "checkpoint"
    report = verify_run(tmp_path)
    assert report.is_ok, str(report)


def _records(path: Path) -> list[JournalRecord]:
    return list(read_journal(path))


def test_verify_run_names_a_flipped_byte_of_a_day_run(tmp_path: Path) -> None:
    _day_run(tmp_path)
    path = tmp_path / JOURNAL_FILE
    data = bytearray(path.read_bytes())
    lines = data.split(b"\n")
    # flip one byte of an amount inside the first day's transfers
    n = next(i for i, line in enumerate(lines) if b'"kind":"transfers"' in line)
    at = sum(len(line) + 1 for line in lines[:n]) + lines[n].index(b'"participant:h0:money"')
    data[at + 14] ^= 1
    path.write_bytes(bytes(data))
    assert verify_journal(path).first_bad == n + 1
    report = verify_run(tmp_path)
    assert not report.is_ok
    journal = next(c for c in report.checks if c.name == "journal")
    assert not journal.ok
    assert f"record {n + 1}" in journal.detail


def test_day_granularity_needs_whole_days_in_one_batch() -> None:
    s = Settlement(Ledger(":memory:"), config=_day(periods_per_day=4))
    kw = {"retail_price_per_kwh": 0.3, "feed_in_price_per_kwh": 0.05}
    with pytest.raises(SettlementError, match=r"inside Settlement\.batch"):
        s.settle_interval(0, None, ["a"], [1.0], **kw)  # type: ignore[arg-type]
    with s.batch():
        s.settle_interval(0, None, ["a"], [1.0], **kw)  # type: ignore[arg-type]
    n = s.ledger.n_transfers
    with pytest.raises(SettlementError, match="day 0"), s.batch():
        s.settle_interval(1, None, ["a"], [1.0], **kw)  # type: ignore[arg-type]
    assert s.ledger.n_transfers == n
    assert len(s.settled) == 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"granularity": "week"}, "granularity"),
    ({"granularity": "day", "periods_per_day": 0}, "periods_per_day"),
    ({"periods_per_day": True}, "periods_per_day"),
])
def test_bad_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        SettlementConfig(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_auto_granularity_by_size_and_the_scenario_field() -> None:
    assert settlement_granularity("auto", 50 * 672) == "interval"
    assert settlement_granularity("auto", 1000 * 35040) == "day"
    assert settlement_granularity("interval", 10**9) == "interval"
    with pytest.raises(InputError, match="granularity"):
        settlement_granularity("hourly", 1)
    s = Scenario.from_dict({"settlement": {"granularity": "day"}})
    assert s.settlement.granularity == "day"
    assert Scenario.from_dict({}).settlement.granularity == "auto"
    with pytest.raises(InputError):
        Scenario.from_dict({"settlement": {"granularity": "week"}})
