"""simulate settles through the ledger: statements, reconciliation, verification."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transactive.cli import main
from transactive.settlement import JOURNAL_FILE, verify_run
from transactive.sim import Scenario, simulate
from transactive.sim.settling import (
    COUNTERPARTY,
    STATEMENTS_FILE,
    STATEMENTS_PARQUET_FILE,
    household_label,
    read_statements,
    statements_path,
)


def _scenario(mechanism: str) -> Scenario:
    return Scenario.from_dict({
        "community": {"households": 12}, "time": {"days": 1}, "seed": 3,
        "market": {"mechanism": mechanism},
        "fault": {"start": "2026-06-01T19:00:00+02:00", "hours": 2.0},
    })


@pytest.mark.parametrize("mechanism", ["uniform", "network", "amm"])
def test_every_interval_settles_and_statements_match_the_bills(tmp_path, mechanism):
    r = simulate(_scenario(mechanism), run_dir=tmp_path)
    assert r.settlement is not None
    assert r.settlement.reconciled, r.settlement.problems
    assert r.settlement.intervals == 96
    assert verify_run(tmp_path).is_ok
    st = pd.read_csv(tmp_path / STATEMENTS_FILE)
    # the simulated bill is the statement's total without its carbon line
    totals = (st["total_cents"] - st["carbon_cents"]).groupby(st["participant"]).sum() / 100
    labels = household_label(r.households["household"].to_numpy())
    bills = pd.Series(r.households["bill_market"].to_numpy(), index=labels)
    # each line is rounded by its running total: half a cent per line kind at most,
    # however many intervals (market, utility, imbalance, grid fee)
    assert (totals.reindex(labels) - bills).abs().max() <= 0.005 * 4
    carbon = st["carbon_cents"].groupby(st["participant"]).sum().reindex(labels) / 100
    assert (carbon - r.households["carbon_cost"].to_numpy()).abs().max() <= 0.005
    # the market's own counterparty (pool, substation) passes the utility's energy
    # through at cost: its statement nets to zero
    if COUNTERPARTY in totals.index:
        assert abs(totals[COUNTERPARTY]) <= 0.01 * 96
        assert (st.loc[st["participant"] == COUNTERPARTY, "carbon_cents"] == 0).all()
    # energy: metered = market + utility for everyone, every interval
    np.testing.assert_array_equal(st["metered_wh"],
                                  st["market_wh"] + st["utility_wh"] + st["imbalance_wh"])


def test_carbon_is_charged_and_credited_in_the_statements(tmp_path):
    assert simulate(_scenario("network"), run_dir=tmp_path / "default").settlement.reconciled
    default = pd.read_csv(tmp_path / "default" / STATEMENTS_FILE)
    carbon = default.groupby("participant")["carbon_cents"].sum()
    assert carbon.sum() > 0  # upstream supply emits ...
    assert carbon.get(COUNTERPARTY, 0) == 0  # ... and the buyers who got it pay for it
    assert (carbon.drop(COUNTERPARTY, errors="ignore") > 0).sum() >= 3
    # a (steep) carbon price makes the loss effects visible in cents: an
    # injection that cuts the feeder's losses is credited
    steep = Scenario.from_dict({**_scenario("network").model_dump(mode="json"),
                                "carbon": {"price_per_kg": 50.0}})
    r = simulate(steep, run_dir=tmp_path / "steep")
    st = pd.read_csv(tmp_path / "steep" / STATEMENTS_FILE)
    assert (st["carbon_cents"] < 0).any()
    assert r.settlement is not None
    assert r.settlement.reconciled
    free = Scenario.from_dict({**_scenario("network").model_dump(mode="json"),
                               "carbon": {"price_per_kg": 0.0}})
    simulate(free, run_dir=tmp_path / "free")
    assert (pd.read_csv(tmp_path / "free" / STATEMENTS_FILE)["carbon_cents"] == 0).all()


def test_ledger_verify_cli_passes_then_names_a_flipped_byte(tmp_path, capsys):
    simulate(_scenario("uniform"), run_dir=tmp_path)
    assert main(["ledger", "verify", str(tmp_path)]) == 0
    assert "OK" in capsys.readouterr().out
    journal = tmp_path / JOURNAL_FILE
    data = bytearray(journal.read_bytes())
    data[len(data) // 2] ^= 0x01
    journal.write_bytes(bytes(data))
    assert main(["ledger", "verify", str(tmp_path)]) == 1
    assert "journal" in capsys.readouterr().out


def test_ledger_verify_refuses_a_folder_without_a_ledger(tmp_path):
    assert main(["ledger", "verify", str(tmp_path)]) == 2


def test_settlement_off_writes_no_ledger(tmp_path):
    s = Scenario.from_dict({**_scenario("uniform").model_dump(mode="json"),
                            "settlement": {"mode": "off"}})
    r = simulate(s, run_dir=tmp_path)
    assert r.settlement is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]


def test_a_run_settled_by_day_streams_the_same_statements_in_parquet(tmp_path):
    """Day granularity: the statements of interval granularity, row for row, in
    statements.parquet; fewer transfers; the same reconciliation."""
    base = {"community": {"households": 8}, "time": {"days": 2}, "seed": 4,
            "market": {"mechanism": "amm"}}
    runs = {}
    for granularity in ("interval", "day"):
        scenario = Scenario.from_dict({**base, "settlement": {"granularity": granularity}})
        runs[granularity] = r = simulate(scenario, run_dir=tmp_path / granularity)
        assert r.settlement is not None
        assert r.settlement.reconciled, r.settlement.problems
        assert verify_run(tmp_path / granularity).is_ok
    assert not (tmp_path / "day" / STATEMENTS_FILE).exists()
    assert statements_path(tmp_path / "day") == tmp_path / "day" / STATEMENTS_PARQUET_FILE
    by_interval = pd.read_csv(tmp_path / "interval" / STATEMENTS_FILE,
                              float_precision="round_trip")
    by_day = read_statements(tmp_path / "day")
    assert COUNTERPARTY in set(by_day["participant"])
    pd.testing.assert_frame_equal(by_interval, by_day)
    pd.testing.assert_frame_equal(read_statements(tmp_path / "interval"), by_interval)
    day, interval = runs["day"].settlement, runs["interval"].settlement
    assert day.transfers < interval.transfers
    # the day's clearing accounts (each household's day passes through them) end at zero
    through = day.reconciliation["account"].isin(["clearing:money", "clearing:energy"])
    assert through.sum() == 2
    assert (day.reconciliation.loc[through, ["statements", "ledger"]] == 0).all().all()
    pd.testing.assert_frame_equal(
        day.reconciliation.loc[~through, ["account", "statements"]].reset_index(drop=True),
        interval.reconciliation[["account", "statements"]])
    # a day-settled folder is a run folder: --overwrite replaces it whole
    simulate(Scenario.from_dict(base), run_dir=tmp_path / "day", overwrite=True)
    assert not (tmp_path / "day" / STATEMENTS_PARQUET_FILE).exists()


@pytest.mark.parametrize("granularity", ["interval", "day"])
def test_the_run_keeps_each_participants_statement_totals_as_written(tmp_path, granularity):
    """The settlement's running sums of each participant's lines (the report's
    statement table) are the statements file summed, row for row and in order."""
    from transactive.settlement.statements import statement_totals

    scenario = Scenario.from_dict({"community": {"households": 6}, "time": {"days": 2},
                                   "settlement": {"granularity": granularity}})
    run = simulate(scenario, run_dir=tmp_path / "run")
    assert run.settlement is not None
    assert run.settlement.posted is not None
    columns = ["metered_wh", "grid_fee_cents", "carbon_cents", "total_cents"]
    from_file = statement_totals(tmp_path / "run", [*columns, "energy_cents"])
    pd.testing.assert_frame_equal(run.settlement.posted[columns], from_file[columns])
    energy = run.settlement.posted[["market_cents", "utility_cents", "imbalance_cents"]]
    assert energy.sum(axis=1).tolist() == from_file["energy_cents"].tolist()
