"""Retail competition in a run (``[retail]``): the households' metered
profile offered to retailers, set beside the incumbent and the run's market.

After the run, each household's imports and exports with the utility alone
(its baseline meter, ``baseline_meter_kwh`` of every interval, split by
sign: the status quo the retailers compete for) stand for its monthly profile
(:mod:`transactive.programs.retail`). The incumbent is the scenario's own
``[tariff]`` (fixed prices, every household's supplier before month 0); the
entrants are ``[retail] entrants``; every retailer buys at the day-ahead
price of the run (``[tariff]``'s, the one an 'rtp' tariff is made of) plus
``network_charge_per_kwh``, and no retailer's mean price goes above the cap
(by default the incumbent's own mean price, so competition only offers
cheaper deals). The logit draws come from the run's seed (a stream of their
own). Figures (currency per month, summed over the households):

- ``retail_incumbent_share``: the incumbent's share of households in the last month;
- ``retail_bill_saving_per_month``: the incumbent's bills less the bills under
  competition (last month);
- ``retail_welfare_change_per_month``: consumer surplus (the logit log-sum,
  which counts switching costs) plus retailer profit, against the incumbent alone;
- ``p2p_bill_saving_per_month``: the incumbent's bills less the run's market
  bills (``bill_market``), per month of the run.

The months (a row per month, from 1, and retailer: mean price per kWh, share
of households, expected share, revenue, cost and profit per month) are the
results table ``retail``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.programs.retail import BestResponse, LogitChoice, MarginRule, Retailer
from transactive.programs.retail_compare import compare_retail, comparison_table
from transactive.programs.tariffs import RetailTariff, Tariff
from transactive.programs.wholesale import WholesalePrices
from transactive.sim.flex_config import EntrantConfig, RetailConfig
from transactive.sim.scenario import TariffConfig
from transactive.timeline import Timeline

__all__ = ["retail_competition"]

_ADAPT = {"best_response": BestResponse, "margin": MarginRule}


def _entrant(e: EntrantConfig, tariff: TariffConfig, cfg: RetailConfig) -> Retailer:
    feed_in = tariff.feed_in_price_per_kwh if e.feed_in_price_per_kwh is None else \
        e.feed_in_price_per_kwh
    offer = Tariff(e.kind, e.energy_price_per_kwh, feed_in, peak_price_per_kwh=e.peak_price_per_kwh,
                   peak_start_hour=tariff.peak_start_hour, peak_end_hour=tariff.peak_end_hour)
    adapt = _ADAPT[e.adapt]() if e.adapt in _ADAPT else None
    return Retailer(e.name, offer, fee_per_month=e.fee_per_month,
                    network_charge_per_kwh=cfg.network_charge_per_kwh,
                    cost_per_customer_month=cfg.cost_per_customer_month, adapt=adapt)


def retail_competition(cfg: RetailConfig, tariff_config: TariffConfig, incumbent: RetailTariff,
                       wholesale: WholesalePrices, timeline: Timeline,
                       meter_kwh: npt.NDArray[np.float64], market_bills: npt.NDArray[np.float64],
                       rng: np.random.Generator) -> tuple[dict[str, float], pd.DataFrame]:
    """The figures and the months of retail competition on ``meter_kwh``
    (intervals x households, net import) against the ``incumbent`` tariff, and
    the run's ``market_bills`` (one per household, over the run)."""
    meter = np.asarray(meter_kwh, dtype=np.float64)  # the results store keeps float32
    imports, exports = np.maximum(meter, 0.0), np.maximum(-meter, 0.0)
    old = Retailer("incumbent", incumbent, network_charge_per_kwh=cfg.network_charge_per_kwh,
                   cost_per_customer_month=cfg.cost_per_customer_month)
    cap = cfg.price_cap_per_kwh
    if cap is None:
        total = imports.sum(axis=1)
        price = incumbent.retail_price_per_kwh(timeline)
        cap = float(price @ total / total.sum()) if total.sum() > 0 else float(price.mean())
    entrants = [_entrant(e, tariff_config, cfg) for e in cfg.entrants]
    choice = LogitChoice(cfg.sensitivity_per_currency, cfg.switching_cost)
    comparison = compare_retail(imports, exports, timeline, wholesale, old, entrants,
                                cfg.months, rng, choice, price_cap_per_kwh=cap)
    table = comparison_table(comparison, p2p_bills=market_bills)
    rows = table.to_dict(orient="index")
    competition, p2p = rows["retail competition"], rows["p2p market"]
    figures = {
        "retail_incumbent_share": float(competition["incumbent_share"]),
        "retail_bill_saving_per_month": float(competition["bill_saving_per_month"]),
        "retail_welfare_change_per_month": float(competition["welfare_change_per_month"]),
        "p2p_bill_saving_per_month": float(p2p["bill_saving_per_month"]),
    }
    months = comparison.competition.frame()
    months["month"] += 1  # the first month played is month 1
    return figures, months
