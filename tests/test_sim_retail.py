"""Retail competition in a run ([retail]): the households' baseline meter
offered to retailers, beside the incumbent alone and the run's market."""

from __future__ import annotations

import numpy as np
import pytest

from transactive.analysis.metrics import summary
from transactive.analysis.report import render_report
from transactive.errors import InputError
from transactive.programs.retail import DAYS_PER_MONTH
from transactive.sim import Scenario, simulate
from transactive.sim.recorder import read_results

RETAIL = {"enabled": True, "months": 12,
          "entrants": [{"name": "greenco", "energy_price_per_kwh": 0.24},
                       {"name": "nightowl", "kind": "tou", "energy_price_per_kwh": 0.21,
                        "peak_price_per_kwh": 0.45, "adapt": "margin"}]}


def _scenario(**retail):
    return Scenario.from_dict({"community": {"households": 16}, "time": {"days": 7},
                               "retail": {**RETAIL, **retail}})


@pytest.fixture(scope="module")
def run():
    return simulate(_scenario())


def test_the_months_hold_every_retailer_and_every_household(run):
    months = run.retail
    assert months["month"].tolist() == np.repeat(np.arange(1, 13), 3).tolist()
    assert months["retailer"].tolist()[:3] == ["incumbent", "greenco", "nightowl"]
    np.testing.assert_allclose(months.groupby("month")["share"].sum(), 1.0)
    # every share is a whole number of the 16 households
    np.testing.assert_allclose(months["share"] * 16, np.round(months["share"] * 16))
    last = months[months["month"] == 12].set_index("retailer")
    assert run.figures["retail_incumbent_share"] == last.loc["incumbent", "share"]


def test_the_incumbent_alone_bills_the_baseline(run):
    """The incumbent alone supplies the baseline meter at the scenario's tariff:
    its bills are the run's baseline bills, so the market's saving against it
    is the households' gain, per month."""
    month = DAYS_PER_MONTH / run.scenario.time.days
    gain = (run.households["bill_baseline"] - run.households["bill_market"]).sum()
    assert run.figures["p2p_bill_saving_per_month"] == pytest.approx(gain * month, rel=1e-6)


def test_no_retailer_prices_above_the_incumbent(run):
    """The default cap is the incumbent's own mean price."""
    months = run.retail.set_index(["month", "retailer"])["price_per_kwh"].unstack()
    assert (months.drop(columns="incumbent").to_numpy()
            <= months["incumbent"].to_numpy()[:, None] + 1e-12).all()


def test_the_same_seed_plays_the_same_months(run):
    again = simulate(_scenario())
    assert again.retail.equals(run.retail)
    assert {k: v for k, v in again.figures.items() if "retail" in k} == \
        {k: v for k, v in run.figures.items() if "retail" in k}


def test_the_store_and_the_report_keep_the_months(tmp_path):
    result = simulate(_scenario(months=3), run_dir=tmp_path / "run")
    back = read_results(tmp_path / "run")
    assert back.retail is not None
    assert back.retail.equals(result.retail)
    page = render_report(back)
    assert "<h2>Retail competition</h2>" in page
    assert 'id="retail-shares"' in page


@pytest.mark.parametrize(("retail", "output", "field", "words"), [
    ({"entrants": [{"name": "x", "kind": "tou", "energy_price_per_kwh": 0.2}]}, {},
     "retail.entrants.0", "peak_price_per_kwh is required"),
    ({"entrants": [{"name": "x", "energy_price_per_kwh": 0.2},
                   {"name": "x", "energy_price_per_kwh": 0.21}]}, {},
     "retail", "distinct names"),
    ({"entrants": [{"name": "x", "energy_price_per_kwh": -0.2}]}, {},
     "retail.entrants.0.energy_price_per_kwh", "greater than 0"),
    ({"months": 0}, {}, "retail.months", "greater than or equal to 1"),
])
def test_bad_retail_sections_are_refused_with_the_field(retail, output, field, words):
    with pytest.raises(InputError) as err:
        Scenario.from_dict({"retail": {"enabled": True, **retail}, "output": output})
    assert err.value.field == field
    assert words in err.value.problem


@pytest.mark.parametrize("kind", ["flat", "tou", "rtp", "cpp"])
def test_bills_under_every_tariff_and_the_runs_own_is_the_baseline(kind):
    """Each household's baseline meter billed under every kind of tariff: its
    own kind's bill is the baseline bill, and the flat bill is the flat price
    times its imports less the feed-in price times its exports."""
    sc = Scenario.from_dict({"community": {"households": 12}, "time": {"days": 3},
                             "tariff": {"kind": kind}})
    result = simulate(sc)
    hh = result.households
    np.testing.assert_allclose(hh[f"bill_{kind}"], hh["bill_baseline"], atol=1e-9)
    meter = result.household_intervals["baseline_meter_kwh"].to_numpy(np.float64)
    meter = meter.reshape(-1, 12)
    t = sc.tariff
    flat = (t.energy_price_per_kwh * np.maximum(meter, 0).sum(axis=0)
            - t.feed_in_price_per_kwh * np.maximum(-meter, 0).sum(axis=0))
    np.testing.assert_allclose(hh["bill_flat"], flat, rtol=1e-5, atol=1e-6)
    s = summary(result)
    assert s[f"bills_{kind}"] == pytest.approx(s["bills_baseline"])
    assert all(s[f"bills_{k}"] is not None for k in ("flat", "tou", "rtp", "cpp"))


def test_without_pv_the_market_changes_nothing_for_households_or_suppliers():
    """No PV, no batteries: nobody sells, every household buys from the
    substation at the tariff, so the market's bills, the suppliers' earnings
    and welfare are the incumbent's alone (changes of zero)."""
    sc = Scenario.from_dict({"community": {"households": 10, "pv_share": 0.0,
                                           "battery_share": 0.0},
                             "time": {"days": 7}, "retail": RETAIL})
    result = simulate(sc)
    assert result.figures["p2p_bill_saving_per_month"] == pytest.approx(0.0, abs=1e-6)
    assert result.figures["p2p_welfare_change_per_month"] == pytest.approx(0.0, abs=1e-6)


def test_the_suppliers_earn_the_bills_less_the_cost_of_supply(run):
    """p2p_supplier_profit: the bills less wholesale (plus the network charge)
    on what the utility supplied and wholesale on what it took, by hand."""
    from transactive.sim.retail import p2p_supplier_profit

    iv, cfg = run.intervals, run.scenario.retail
    w = np.linspace(0.05, 0.12, len(iv))
    supplied = iv["import_kwh"] + iv["counterparty_kwh"].clip(lower=0)
    taken = iv["export_kwh"] + (-iv["counterparty_kwh"]).clip(lower=0)
    by_hand = (run.households["bill_market"].sum()
               - ((w + cfg.network_charge_per_kwh) * supplied).sum() + (w * taken).sum())
    assert p2p_supplier_profit(iv, w, cfg, 16, 1.0) == pytest.approx(by_hand, rel=1e-9)
