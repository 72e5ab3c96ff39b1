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
  bills (``bill_market``), per month of the run;
- ``p2p_welfare_change_per_month``: that saving plus the change in what the
  suppliers earn (with the market: the utility's margin and the market
  operator's surplus, :func:`p2p_supplier_profit`; alone: the incumbent's).

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

__all__ = ["p2p_supplier_profit", "retail_competition"]

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


def p2p_supplier_profit(intervals: pd.DataFrame, wholesale_per_kwh: npt.NDArray[np.float64],
                        cfg: RetailConfig, n_households: int, month_factor: float) -> float:
    """What the suppliers earned over the run with the P2P market: the bills
    (the utility's revenue at the tariff and the market operator's surplus)
    less the utility's cost of what it supplied and took (``intervals``:
    households' imports and exports and the counterparty's energy, none while
    islanded), priced as a retailer's (:mod:`transactive.programs.retail`):
    wholesale plus the network charge on what it supplied, wholesale for what
    it took, and the cost per customer and month."""
    iv = intervals
    islanded = iv["islanded"].to_numpy() > 0
    counterparty = np.where(islanded, 0.0, iv["counterparty_kwh"].to_numpy(dtype=np.float64))
    supplied = iv["import_kwh"].to_numpy(dtype=np.float64) + np.maximum(counterparty, 0.0)
    taken = iv["export_kwh"].to_numpy(dtype=np.float64) + np.maximum(-counterparty, 0.0)
    w = np.asarray(wholesale_per_kwh, dtype=np.float64)
    cost = float((w + cfg.network_charge_per_kwh) @ supplied - w @ taken)
    revenue = float(iv["utility_revenue"].sum() + iv["operator_surplus"].sum())
    return revenue - cost - cfg.cost_per_customer_month * n_households / month_factor


def retail_competition(cfg: RetailConfig, tariff_config: TariffConfig, incumbent: RetailTariff,
                       wholesale: WholesalePrices, timeline: Timeline,
                       meter_kwh: npt.NDArray[np.float64], market_bills: npt.NDArray[np.float64],
                       intervals: pd.DataFrame, rng: np.random.Generator
                       ) -> tuple[dict[str, float], pd.DataFrame]:
    """The figures and the months of retail competition on ``meter_kwh``
    (intervals x households, net import) against the ``incumbent`` tariff, and
    the run's ``market_bills`` (one per household, over the run) and
    ``intervals`` (the run's intervals table: what its suppliers earned,
    :func:`p2p_supplier_profit`)."""
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
    w = wholesale.price_per_kwh(timeline)  # drawn once: the retailers' and the P2P case's
    comparison = compare_retail(imports, exports, timeline, w, old, entrants,
                                cfg.months, rng, choice, price_cap_per_kwh=cap)
    profit = p2p_supplier_profit(intervals, w, cfg, meter.shape[1], comparison.month_factor)
    table = comparison_table(comparison, p2p_bills=market_bills, p2p_supplier_profit=profit)
    rows = table.to_dict(orient="index")
    competition, p2p = rows["retail competition"], rows["p2p market"]
    figures = {
        "retail_incumbent_share": float(competition["incumbent_share"]),
        "retail_bill_saving_per_month": float(competition["bill_saving_per_month"]),
        "retail_welfare_change_per_month": float(competition["welfare_change_per_month"]),
        "p2p_bill_saving_per_month": float(p2p["bill_saving_per_month"]),
        "p2p_welfare_change_per_month": float(p2p["welfare_change_per_month"]),
    }
    months = comparison.competition.frame()
    months["month"] += 1  # the first month played is month 1
    return figures, months
