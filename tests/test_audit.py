"""The mechanism audit: the measured table must show the theory, its LP
optimum must match a brute-force optimum, and bad requests are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from transactive.errors import InputError
from transactive.markets.amm import Pool
from transactive.markets.audit import _market, audit, plot_audit
from transactive.markets.truthful import welfare_optimum

MECHANISMS = ["vickrey", "vcg", "mcafee", "muda", "uniform", "pay_as_bid"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return audit(MECHANISMS, rng=np.random.default_rng(2024), n_markets=30)


def test_truthful_mechanisms_show_no_gain_from_misreporting(table):
    for name in ("vickrey", "vcg", "mcafee", "muda"):
        assert table.loc[name, "ic_gain_max"] < 1e-9, name
        assert table.loc[name, "ic_profitable_share"] == 0.0, name
        assert table.loc[name, "ir_violations"] == 0, name


def test_vcg_and_vickrey_are_efficient_and_vcg_runs_a_deficit(table):
    assert table.loc["vcg", "efficiency_min"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc["vickrey", "efficiency_min"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc["vcg", "operator_surplus_mean"] < 0
    assert table.loc["vcg", "deficit_share"] > 0.9
    assert table.loc["vickrey", "operator_surplus_mean"] == pytest.approx(0.0, abs=1e-9)


def test_mcafee_is_budget_balanced_with_an_efficiency_loss(table):
    assert table.loc["mcafee", "deficit_share"] == 0.0
    assert table.loc["mcafee", "operator_surplus_mean"] > 0
    assert table.loc["mcafee", "efficiency"] < 1.0
    assert table.loc["mcafee", "efficiency_min"] >= 0.0
    assert table.loc["muda", "operator_surplus_mean"] == pytest.approx(0.0, abs=1e-9)


def test_uniform_and_pay_as_bid_reward_shading(table):
    for name in ("uniform", "pay_as_bid"):
        assert table.loc[name, "ic_gain_mean"] > 1e-4, name
        assert table.loc[name, "buyer_best_factor"] < 1.0, name
        assert table.loc[name, "seller_best_factor"] > 1.0, name
        assert table.loc[name, "efficiency"] == pytest.approx(1.0, abs=1e-9), name
    # pay-as-bid pays nothing for truthful bids: shading is worth more there
    assert table.loc["pay_as_bid", "ic_gain_mean"] > table.loc["uniform", "ic_gain_mean"]


def test_audit_is_reproducible_and_has_every_column(table):
    small = [audit(["mcafee", "muda"], rng=np.random.default_rng(3), n_markets=4)
             for _ in range(2)]
    pd.testing.assert_frame_equal(*small)
    assert list(table.index) == MECHANISMS
    assert set(table.columns) >= {
        "efficiency", "efficiency_min", "ir_violations", "ir_violation_rate",
        "operator_surplus_mean", "deficit_share", "ic_gain_mean", "ic_gain_max",
        "ic_profitable_share", "buyer_best_factor", "seller_best_factor", "n_markets",
    }


@pytest.mark.parametrize("form", ["double", "lot"])
def test_lp_optimum_matches_brute_force(form):
    # unit traders: the optimum pairs the highest values with the lowest costs
    rng = np.random.default_rng(7)
    for _ in range(20):
        ob = _market(form, 6, 5, rng)
        values = np.sort(ob.price[ob.is_buy])[::-1]
        costs = np.repeat(ob.price[~ob.is_buy], ob.quantity[~ob.is_buy].astype(int))
        costs = np.sort(costs)
        k = min(values.size, costs.size)
        brute = np.clip(values[:k] - costs[:k], 0.0, None).sum()
        assert welfare_optimum(ob)[1] == pytest.approx(brute, abs=1e-9)


def test_audit_refuses_bad_requests():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="unknown mechanism"):
        audit(["vickery"], rng=rng, n_markets=2)
    with pytest.raises(InputError, match="pool") as info:
        audit(["amm"], rng=rng, n_markets=2)
    assert info.value.field == "mechanisms"
    with pytest.raises(InputError, match="pool"):  # the AMM trades with a pool
        audit(["amm"], rng=rng, n_markets=2,
              options={"amm": {"pool": Pool.create(100.0, 50.0)}})
    with pytest.raises(InputError) as info:
        audit(["vcg"], rng=rng, n_markets=0)
    assert info.value.field == "n_markets"
    with pytest.raises(InputError) as info:
        audit(["vcg"], rng=rng, n_markets=2, factors=[-1.0, 1.0])
    assert info.value.field == "factors"
    with pytest.raises(InputError):
        audit("vcg", rng=rng, n_markets=2)


def test_plot_audit(table):
    fig = plot_audit(table)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx(table["efficiency"].tolist())
    with pytest.raises(InputError, match="not an audit table"):
        plot_audit(pd.DataFrame({"x": [1]}))


def test_a_mechanisms_figures_do_not_depend_on_the_others_audited_with_it():
    alone = audit(["uniform"], rng=np.random.default_rng(3), n_markets=6)
    among = audit(["vickrey", "muda", "uniform"], rng=np.random.default_rng(3), n_markets=6)
    pd.testing.assert_series_equal(alone.loc["uniform"], among.loc["uniform"])
