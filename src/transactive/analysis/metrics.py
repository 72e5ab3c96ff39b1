"""Figures of a run, each with one meaning: energy, prices, money, fairness.

:func:`summary` is the one source of the key figures: the CLI summary,
``transactive simulate --json``, the report and ``compare`` all print it.
What each figure means (money in the tariff's currency, energy in kWh of the
simulated community):

Energy
    ``load_kwh``: what the households consumed, their own load and their
    devices' (EVs, heat pumps, appliances: ``device_kwh``, None without any).
    ``p2p_kwh``: energy households sold to households. In every interval it
    is the smaller of what households bought and what households sold in the
    market (``market_bought_kwh``, ``market_sold_kwh``); the rest of their
    purchases came from the market's counterparty (the substation of design
    ``network``, a pool of design ``amm``), the rest of their sales went to it
    (``counterparty_kwh_in``/``_out``). ``utility_import_kwh`` and
    ``utility_export_kwh`` are what the community bought from and sold to the
    utility: directly at the tariff, or through the counterparty.
    ``grid_import_kwh``/``grid_export_kwh`` are the physical exchange at the
    community's connection (losses included where the feeder is modelled);
    ``peak_import_kw`` its highest interval mean. ``peak_draw_kw``: the
    highest interval mean of the households' net draw summed (what their
    meters read, before feeder losses); ``baseline_peak_draw_kw``: the same
    with the utility alone and the devices on plain rules, so the two set
    the market's (and the devices' response's) effect on the peak apart from
    losses. ``peak_demand_kw`` and ``baseline_peak_demand_kw``: the same
    with the load the feeder shed added back (what the households' devices
    asked for: on plain rules a feeder's limit sheds load at the peak that a
    market keeps off it).
Prices
    ``buyer_price_per_kwh``: what households paid per kWh bought in the market;
    ``seller_price_per_kwh``: what they received per kWh sold in it (None
    when nothing was traded).
Money
    ``bills_baseline`` and ``bills_market``: the sum of the households' energy
    bills without and with the market (carbon apart: ``carbon_cost``).
    ``bills_flat``, ``bills_tou``, ``bills_rtp``, ``bills_cpp``: the same
    baseline meters billed under each kind of tariff the ``[tariff]`` section
    prices (the scenario's own kind is ``bills_baseline``; None for a kind the
    run could not price, e.g. an 'rtp' CSV that does not cover it). Nobody
    changes behaviour between them: a static comparison of bills.
    ``savings = bills_baseline - bills_market`` (less what the households
    paid a virtual power plant's aggregator, with ``[vpp]``); ``savings_share`` is the
    savings over what households spent in the baseline
    (``baseline_spending``, their purchases from the utility; their feed-in
    earnings are ``baseline_earnings``), so it stays a share: when no money is
    created (prices at or above zero, energy balanced) households cannot save
    more than they spent. Where the money comes from:
    ``savings = (utility_revenue_baseline - utility_revenue_market) -
    operator_surplus - pool_lp_pnl`` exactly: what the utility no longer
    earns, less what the market operator keeps, less what a pool's liquidity
    providers keep (negative when they lose, ``pool_lp_pnl``; None without a
    pool, whose opening value is ``pool_opening_value``), plus what a virtual
    power plant's aggregator paid the households (``vpp_households_receipt``).
Fairness
    A household's gain is its baseline bill less its market bill; a gain
    smaller than a cent either way is no gain (:data:`CENT`).
    ``households_better_off``/``households_worse_off`` count gains of at
    least a cent; ``gini_gains`` is the Gini coefficient of the gains
    normalised for negative values (:func:`gini`), None when nobody gains or
    loses a cent ("no gains").
Flexibility (None where the community has no such device)
    ``ev_shortfall_kwh``: energy the EVs lacked at their departures
    (``ev_departures`` of them, ``ev_ready_share`` left with what they needed);
    ``ev_unmet_trip_kwh``: energy trips needed beyond what the cars held (the
    cars came back empty: charged elsewhere);
    ``comfort_violation_kh``: kelvin-hours houses with heat pumps spent
    outside their comfort band; ``flexible_kwh``: device energy (EVs, heat
    pumps, appliances) the market moved in time against the same devices on
    plain rules (half the interval-by-interval difference of their energy;
    0 when the devices run by rules).
Demand response (None without ``[demand_response]``)
    ``dr_event_days``; ``dr_reduction_kwh``: metered import below the
    baseline during the events (floored at zero per interval);
    ``dr_payment``: what the program paid for it (apart from the bills);
    ``dr_rebound_kwh``: import above the baseline in the hours after;
    ``dr_baseline_bias_pct`` and ``dr_baseline_cv_rmse_pct``: the baseline's
    errors on the days without events.
Virtual power plant (None without ``[vpp]``; see :mod:`transactive.sim.vpp`)
    ``vpp_households``: the households enrolled; ``vpp_award_kwh``: the
    energy awarded a day ahead (net per interval, summed); ``vpp_delivered_kwh``
    and ``vpp_delivered_share``: what the fleet delivered of it;
    ``vpp_shortfall_kwh``; ``vpp_revenue``: what the day-ahead market paid the
    aggregator for what it dispatched (negative: it paid);
    ``vpp_households_receipt``: what the households received from it
    (negative: paid; in ``savings``); ``vpp_aggregator_profit``: its margin
    less its imbalance ``vpp_penalty``.
Retail competition (None without ``[retail]``; see :mod:`transactive.sim.retail`)
    ``retail_incumbent_share``: the incumbent's share of households after the
    months played; ``retail_bill_saving_per_month``: what the households pay
    the incumbent alone less what they pay under competition (a month,
    summed); ``retail_welfare_change_per_month``: consumer surplus plus
    retailer profit against the incumbent alone; ``p2p_bill_saving_per_month``:
    the incumbent's bills less the run's market bills, per month;
    ``p2p_welfare_change_per_month``: that saving plus the change in what the
    suppliers earn (the utility's margin and the market operator's surplus).
Warnings
    ``warnings`` lists what a reader must know to trust the others: load shed,
    PV curtailed, prices at the value of lost load or at the market's cap,
    a pool's providers losing more than the pool's opening value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.clearing import json_value
from transactive.sim.books import CENT
from transactive.sim.result import SimulationResult
from transactive.sim.scenario import TARIFF_KINDS

__all__ = ["CENT", "counted_gains", "gini", "lorenz_curve", "summary"]


def lorenz_curve(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points ``(x, y)`` of the Lorenz curve of ``values``.

    ``x`` is the population share (0..1), ``y`` the share of the total held by
    the poorest ``x``; both start at 0. With negative values the curve dips
    below zero before it rises to 1 (the total must be positive).

    Examples
    --------
    >>> x, y = lorenz_curve([1, 1, 2])
    >>> x.round(3).tolist(), y.round(3).tolist()
    ([0.0, 0.333, 0.667, 1.0], [0.0, 0.25, 0.5, 1.0])
    >>> lorenz_curve([-1, 3])[1].tolist()
    [0.0, -0.5, 1.0]
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    cum = np.concatenate([[0.0], np.cumsum(v)])
    total = cum[-1]
    if v.size and total <= 0:
        raise ValueError("a Lorenz curve needs a positive total")
    y = cum / total if v.size else cum
    return np.linspace(0.0, 1.0, v.size + 1), y


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of ``values``, which may be negative (0 = equal, 1 = one
    holds all).

    For non-negative values this is the usual coefficient, the mean absolute
    difference over twice the mean. With negative values it is normalised as
    Raffinetti, Siletti & Vernizzi (2015, *Statistical Methods &
    Applications* 24, 507-521) do: ``sum_i sum_j |y_i - y_j| / (2 n (T+ +
    T-))`` with ``T+`` the sum of the positive values and ``T-`` the absolute
    sum of the negative ones, so it stays in ``[0, 1]``; it is 0 when all
    values are equal and tends to 1 when one unit holds all the positive and
    another all the negative mass. All zeros give 0.

    Examples
    --------
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 4]), gini([4, 0, 0, 0])
    (0.0, 0.75, 0.75)
    >>> gini([-2, 0, 0, 2])
    0.75
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = v.size
    scale = float(np.abs(v).sum())
    if n == 0 or scale == 0:
        return 0.0
    # sum over pairs of |y_i - y_j| from the sorted values: each y_(i) is
    # larger than i - 1 values and smaller than n - i
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    pair_sum = 2.0 * float(weights @ v)
    return pair_sum / (2.0 * n * scale)


def counted_gains(gains: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``gains`` with those smaller than a :data:`CENT` either way set to 0
    (no gain): the gains the fairness figures count.

    Examples
    --------
    >>> counted_gains([0.004, -0.02, 1e-15, 3.0]).tolist()
    [0.0, -0.02, 0.0, 3.0]
    """
    g = np.asarray(gains, dtype=np.float64)
    return np.where(np.abs(g) >= CENT, g, 0.0)


def _share(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _peak(iv: Any, columns: str | tuple[str, ...], dt_h: float) -> float | None:
    """The highest interval mean of ``columns`` summed (kWh per interval -> kW);
    None for a store written before a column existed."""
    names = (columns,) if isinstance(columns, str) else columns
    if any(name not in iv for name in names):
        return None
    total = sum(iv[name].to_numpy(dtype=np.float64) for name in names)
    return float(np.max(total, initial=0.0)) / dt_h


def summary(result: SimulationResult) -> dict[str, Any]:
    """The key figures of a run (see the module docstring for each meaning);
    plain JSON-safe values: numbers, strings, None, lists."""
    sc = result.scenario
    iv, hh = result.intervals, result.households
    col = {name: iv[name].to_numpy(dtype=np.float64) for name in (
        "load_kwh", "pv_kwh", "p2p_kwh", "bought_kwh", "sold_kwh", "buyer_payment",
        "seller_receipt", "import_kwh", "export_kwh", "counterparty_kwh", "grid_import_kwh",
        "grid_export_kwh", "curtailed_kwh", "baseline_curtailed_kwh", "unserved_kwh",
        "baseline_unserved_kwh", "operator_surplus", "utility_revenue", "baseline_cost",
        "market_cost", "carbon_cost", "baseline_spending", "retail_price", "feed_in_price",
        "max_buyer_price", "islanded")}
    dt_h = sc.time.timeline().dt_h
    devices = float(iv["device_kwh"].sum()) if "device_kwh" in iv else 0.0
    load, pv = col["load_kwh"].sum() + devices, col["pv_kwh"].sum()
    bought, sold = col["bought_kwh"].sum(), col["sold_kwh"].sum()
    # what the market's counterparty (substation, pool) supplied or took came from or
    # went to the utility; while islanded there is no utility (the island's own
    # imbalance is not a counterparty), and a double auction has none (0)
    supplied = np.where(col["islanded"] > 0, 0.0, col["counterparty_kwh"])
    cp_in, cp_out = np.maximum(supplied, 0.0).sum(), np.maximum(-supplied, 0.0).sum()
    utility_import = col["import_kwh"].sum() + cp_in
    utility_export = col["export_kwh"].sum() + cp_out
    baseline, market = float(hh["bill_baseline"].sum()), float(hh["bill_market"].sum())
    # what the households paid a virtual power plant's aggregator, beside their bills
    vpp_paid = float(hh["vpp_payment"].sum()) if "vpp_payment" in hh else 0.0
    # the baseline bill splits into purchases at retail and feed-in earnings
    spending = float(col["baseline_spending"].sum())
    earnings = spending - baseline
    surplus = float(col["operator_surplus"].sum())
    pool = "pool_opening_value" in result.figures
    counted = counted_gains(hh["gain"])
    out: dict[str, Any] = {
        "name": sc.name,
        "households": len(hh),
        "intervals": len(iv),
        "days": len(iv) * dt_h / 24.0,
        "mechanism": sc.market.mechanism,
        "strategy": sc.market.strategy,
        "currency": sc.tariff.currency,
        "kw_per_unit": result.figures.get("kw_per_unit"),
        "load_kwh": load,
        "device_kwh": devices if sc.flexible else None,
        "pv_kwh": pv,
        "p2p_kwh": col["p2p_kwh"].sum(),
        "p2p_share_of_load": _share(col["p2p_kwh"].sum(), load),
        "market_bought_kwh": bought,
        "market_sold_kwh": sold,
        "counterparty_kwh_in": cp_in,
        "counterparty_kwh_out": cp_out,
        "utility_import_kwh": utility_import,
        "utility_export_kwh": utility_export,
        "grid_import_kwh": col["grid_import_kwh"].sum(),
        "grid_export_kwh": col["grid_export_kwh"].sum(),
        "peak_import_kw": _peak(iv, "grid_import_kwh", dt_h),
        "peak_draw_kw": _peak(iv, "draw_kwh", dt_h),
        "baseline_peak_draw_kw": _peak(iv, "baseline_draw_kwh", dt_h),
        "peak_demand_kw": _peak(iv, ("draw_kwh", "unserved_kwh"), dt_h),
        "baseline_peak_demand_kw": _peak(iv, ("baseline_draw_kwh", "baseline_unserved_kwh"),
                                         dt_h),
        "self_sufficiency": 1.0 - col["grid_import_kwh"].sum() / load if load > 0 else None,
        "buyer_price_per_kwh": _share(col["buyer_payment"].sum(), bought),
        "seller_price_per_kwh": _share(col["seller_receipt"].sum(), sold),
        "bills_baseline": baseline,
        "bills_market": market,
        **{f"bills_{kind}": (float(hh[f"bill_{kind}"].sum()) if f"bill_{kind}" in hh else None)
           for kind in TARIFF_KINDS},
        "savings": baseline - market - vpp_paid,
        "savings_share": _share(baseline - market - vpp_paid, spending),
        "baseline_spending": spending,
        "baseline_earnings": earnings,
        "utility_revenue_baseline": float(col["baseline_cost"].sum()),
        "utility_revenue_market": float(col["utility_revenue"].sum()),
        "operator_surplus": 0.0 if pool else surplus,
        "pool_lp_pnl": surplus if pool else None,
        "pool_opening_value": result.figures.get("pool_opening_value"),
        "ev_shortfall_kwh": result.figures.get("ev_shortfall_kwh"),
        "ev_unmet_trip_kwh": result.figures.get("ev_unmet_trip_kwh"),
        "ev_departures": result.figures.get("ev_departures"),
        "ev_ready_share": result.figures.get("ev_ready_share"),
        "comfort_violation_kh": result.figures.get("comfort_violation_kh"),
        "flexible_kwh": result.figures.get("flexible_kwh"),
        **{key: result.figures.get(key) for key in (
            "dr_event_days", "dr_reduction_kwh", "dr_payment", "dr_rebound_kwh",
            "dr_baseline_bias_pct", "dr_baseline_cv_rmse_pct", "vpp_households",
            "vpp_award_kwh", "vpp_delivered_kwh", "vpp_delivered_share", "vpp_shortfall_kwh",
            "vpp_revenue", "vpp_households_receipt", "vpp_aggregator_profit", "vpp_penalty",
            "retail_incumbent_share",
            "retail_bill_saving_per_month", "retail_welfare_change_per_month",
            "p2p_bill_saving_per_month", "p2p_welfare_change_per_month")},
        "carbon_cost": float(col["carbon_cost"].sum()),
        "curtailed_kwh": col["curtailed_kwh"].sum(),
        "baseline_curtailed_kwh": col["baseline_curtailed_kwh"].sum(),
        "unserved_kwh": col["unserved_kwh"].sum(),
        "baseline_unserved_kwh": col["baseline_unserved_kwh"].sum(),
        "intervals_islanded": int(col["islanded"].sum()),
        "households_better_off": int((counted > 0).sum()),
        "households_worse_off": int((counted < 0).sum()),
        "gini_gains": gini(counted) if counted.any() else None,
    }
    out["warnings"] = _warnings(out, result, col)
    st = result.settlement
    out["settlement"] = None if st is None else st.figures()
    return {key: json_value(value) for key, value in out.items()}


_NOISE_KWH = 1e-6
"""Energy per interval below which a community figure is solver tolerance (1 mWh)."""


def _warnings(s: dict[str, Any], result: SimulationResult,
              col: dict[str, npt.NDArray[np.float64]]) -> list[str]:
    """What a reader must know before trusting the other figures."""
    cur = s["currency"]
    notes = []
    market_shed = col["unserved_kwh"][col["islanded"] == 0]
    shed = market_shed > _NOISE_KWH  # an LP's tolerance is no shed load
    if market_shed[shed].sum() >= 0.05:
        notes.append(f"load shed: {market_shed[shed].sum():,.1f} kWh in "
                     f"{int(shed.sum())} intervals, where the feeder could not "
                     "carry the load (the baseline shed "
                     f"{col['baseline_unserved_kwh'][col['islanded'] == 0].sum():,.1f} kWh)")
    voll = result.scenario.grid.value_of_lost_load_per_kwh
    at_voll = int((col["max_buyer_price"] >= voll * (1 - 1e-9)).sum())
    if s["mechanism"] == "network" and at_voll:
        notes.append(f"prices reached the value of lost load ({voll:,.2f} {cur}/kWh) in "
                     f"{at_voll} intervals")
    above = col["max_buyer_price"] > col["retail_price"] * (1 + 1e-9)
    above &= col["islanded"] == 0
    if above.any() and not (s["mechanism"] == "network" and at_voll == int(above.sum())):
        notes.append(f"buyers paid more than the retail price in {int(above.sum())} intervals")
    cap = result.scenario.market.options.get("price_cap")
    if isinstance(cap, int | float) and (col["max_buyer_price"] >= cap * (1 - 1e-9)).any():
        notes.append(f"the price reached the market's cap ({cap:g} {cur}/kWh) in "
                     f"{int((col['max_buyer_price'] >= cap * (1 - 1e-9)).sum())} intervals")
    pv = s["pv_kwh"]
    if pv > 0 and s["curtailed_kwh"] >= 0.01 * pv:
        notes.append(f"PV curtailed: {s['curtailed_kwh']:,.1f} kWh "
                     f"({s['curtailed_kwh'] / pv:.1%} of PV; the baseline on the same feeder "
                     f"curtailed {s['baseline_curtailed_kwh']:,.1f} kWh)")
    lp, opening = s["pool_lp_pnl"], s["pool_opening_value"]
    if lp is not None and opening and lp < -opening:
        notes.append(f"the pool's liquidity providers lost {-lp:,.2f} {cur}, more than the "
                     f"pool's opening value ({opening:,.2f} {cur}): the households' savings "
                     "are paid out of the providers' capital")
    if s["households_worse_off"]:
        notes.append(f"{s['households_worse_off']} of {s['households']} households are worse "
                     "off than with the utility alone (the report lists who and why)")
    return notes
