"""The report's sections on the programs and devices of a run: flexibility
(devices, indoor temperatures), demand response (event days against the
baselines), the virtual power plant (award against delivery), retail
competition (shares and prices by month) and each household's bills under
every kind of tariff (a table of the Money section).
Each section is a function of the report's run (:mod:`transactive.analysis.report`)
and returns HTML, empty when the run has no such program.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from transactive.analysis._page import csv_table, fmt
from transactive.analysis._plotly import COLORS, chart, figure, values
from transactive.analysis._series import Daily, Line
from transactive.analysis.metrics import CENT
from transactive.sim.scenario import TARIFF_KINDS

if TYPE_CHECKING:
    from transactive.analysis.report import _Run
    from transactive.sim.flex_config import DemandResponseConfig

__all__ = ["demand_response_section", "flexibility_section", "retail_section", "tariff_table",
           "vpp_section"]


def tariff_table(run: _Run) -> str:
    """The households' baseline meters billed under each kind of tariff."""
    hh, cur, own = run.result.households, run.cur, run.result.scenario.tariff.kind
    kinds = [k for k in TARIFF_KINDS if f"bill_{k}" in hh]
    if len(kinds) < 2:
        return ""
    base = hh[f"bill_{own}"]
    names = {"flat": "flat", "tou": "time of use", "rtp": "real-time (day-ahead + adder)",
             "cpp": "critical peak"}
    rows = "".join(
        f"<tr><th>{names[k]}{' (this run)' if k == own else ''}</th>"
        f"<td>{fmt(float(hh[f'bill_{k}'].sum()), 'money', cur)}</td>"
        f"<td>{fmt(int((hh[f'bill_{k}'] < base - CENT).sum()), 'count')}</td>"
        f"<td>{fmt(int((hh[f'bill_{k}'] > base + CENT).sum()), 'count')}</td></tr>"
        for k in kinds)
    return ("<h3>Bills under each tariff</h3><p>The households' meters as with the utility "
            "alone, billed under each kind of tariff the scenario's <code>[tariff]</code> "
            "prices, nobody changing behaviour (a static comparison): the sum of the bills, "
            "and how many households would pay less or more than under this run's tariff (by "
            "a cent or more).</p><table class='kv'><tr><th>tariff</th><th>bills</th>"
            f"<th>pay less</th><th>pay more</th></tr>{rows}</table>")


def flexibility_section(run: _Run) -> str:
    s = run.s
    if s.get("flexible_kwh") is None:
        return ""
    sc = run.result.scenario
    control = sc.flexibility.control
    how = ("bid: each device states its flexibility, the home's energy manager orders "
           "what the home cannot match, and the market dispatches what it accepts"
           if control == "market" else "run by plain, price-blind rules")
    step = run.series.step_minutes
    lines = [Line("device_kwh", "EVs, heat pumps and appliances", COLORS["device"]),
             Line("load_kwh", "households' own load", COLORS["load"]),
             Line("grid_import_kwh", "import at the connection", COLORS["import"])]
    daily = [Daily("device_kwh", "sum", "devices", COLORS["device"], 2),
             Daily("grid_import_kwh", "max", "peak interval's import", COLORS["import"], 2)]
    facts = (f"<p>The devices {how}. Peak import {fmt(s.get('peak_import_kw'), 'kw')}; the "
             f"households' peak net draw (their meters summed, before feeder losses) "
             f"{fmt(s.get('peak_draw_kw'), 'kw')}, against "
             f"{fmt(s.get('baseline_peak_draw_kw'), 'kw')} with the same devices on plain rules "
             f"and the utility alone (with the load the feeder shed added back: "
             f"{fmt(s.get('peak_demand_kw'), 'kw')} against "
             f"{fmt(s.get('baseline_peak_demand_kw'), 'kw')}); "
             f"device energy moved in time against the same devices on plain rules "
             f"{fmt(s.get('flexible_kwh'), 'kwh')}; EVs short at departure "
             f"{fmt(s.get('ev_shortfall_kwh'), 'kwh')}; time outside the comfort band "
             f"{fmt(s.get('comfort_violation_kh'), 'kh')}. The households' gain on their "
             "devices' schedule against plain rules is its own column in the household "
             "table.</p>")
    body = ("<h2>Flexibility</h2>" + facts + run.series.chart(
        "flexibility", lines, daily, f"kWh per {step}-minute interval",
        daily_y_title="kWh per day"))
    if "indoor_c_mean" in run.series.frame and run.series.frame["indoor_c_mean"].notna().any():
        hp = sc.heat_pump
        band = [Line("comfort_high", "comfort band (nominal set point +- band)",
                     COLORS["grey"], 2, dash="dot"),
                Line("comfort_low", "", COLORS["grey"], 2, dash="dot")]
        temps = [Line("indoor_c_mean", "indoor, mean of the houses with a heat pump",
                      COLORS["market"], 2),
                 Line("indoor_c_min", "indoor, coldest house", COLORS["feed_in"], 2), *band]
        body += (f"<h3>Indoor temperatures</h3><p>Houses with a heat pump against the comfort "
                 f"band ({hp.setpoint_c - hp.band_k:g}-{hp.setpoint_c + hp.band_k:g} degC; "
                 "each occupant's set point lies within 0.5 K of the nominal one).</p>"
                 + run.series.chart("indoor", temps,
                                    [Daily("indoor_c_min", "min", "coldest", COLORS["feed_in"],
                                           2),
                                     Daily("indoor_c_mean", "mean", "mean", COLORS["market"],
                                           2)], "degC"))
    return body + _departures(run)


def _departures(run: _Run) -> str:
    """The cars' state of charge at departure against what they needed."""
    dep = run.result.ev_departures
    if dep is None or dep.empty:
        return ""
    need = dep["required_kwh"].to_numpy(dtype=np.float64)
    held = dep["soc_kwh"].to_numpy(dtype=np.float64)
    share = np.divide(held, need, out=np.ones_like(held), where=need > 0) * 100.0
    ready = int((held >= need - 1e-6).sum())
    fig = figure([go.Histogram(x=values(np.minimum(share, 150.0), 2),
                               xbins={"start": 0, "end": 150, "size": 5},
                               marker={"color": COLORS["device"]}, name="departures")],
                 y_title="departures", x_title="energy held at departure, % of what the "
                 "car needed (150 and above in the last bar)", hovermode="closest",
                 showlegend=False)
    return (f"<h3>EVs at departure</h3><p>{fmt(ready, 'count')} of {fmt(len(dep), 'count')} "
            f"departures left with the energy they needed; together they lacked "
            f"{fmt(float(np.maximum(need - held, 0.0).sum()), 'kwh')} (results table "
            f"<code>ev_departures</code>).</p>" + chart(fig, "ev-departures"))


def _pct(value: float | None) -> str:
    """A percentage to one decimal ("n/a" if unknown)."""
    return "n/a" if value is None else f"{value:,.1f} %"


def demand_response_section(run: _Run) -> str:
    events = run.result.dr_events
    if events is None or events.empty:
        return ""
    s, cur = run.s, run.cur
    cfg = run.result.scenario.demand_response
    start = pd.DatetimeIndex(run.result.intervals["start"])[events["interval"].to_numpy()]
    window = events["in_event"].to_numpy(dtype=bool)
    per = events.assign(date=start.strftime("%Y-%m-%d"),
                        payment=events["counted_reduction_kwh"] * events["price_per_kwh"]
                        ).groupby("event").agg(
        date=("date", "first"),
        baseline_kwh=("baseline_kwh", lambda x: x[window[x.index]].sum()),
        metered_kwh=("metered_kwh", lambda x: x[window[x.index]].sum()),
        counted_reduction_kwh=("counted_reduction_kwh", "sum"),
        payment=("payment", "sum"))
    label = [f"event {k + 1}, {d}" for k, d in zip(per.index, per["date"], strict=True)]
    x = [f"{e + 1}: {t:%a %H:%M}" for e, t in zip(events["event"], start, strict=True)]
    traces = [go.Scatter(x=x, y=values(events["baseline_kwh"], 3), name="baseline",
                         line={"color": COLORS["grey"], "dash": "dot"}),
              go.Scatter(x=x, y=values(events["metered_kwh"], 3), name="metered",
                         line={"color": COLORS["import"]}),
              go.Bar(x=x, y=values(np.where(window, events["baseline_kwh"].max() * 1.05,
                                            np.nan), 3),
                     name=f"event hours ({cfg.event_start_hour:g}-{cfg.event_end_hour:g} h)",
                     marker={"color": "rgba(200, 60, 60, 0.12)"}, hoverinfo="skip")]
    fig = figure(traces, y_title=f"kWh per {run.series.step_minutes}-minute interval",
                 x_title="", xaxis={"type": "category", "nticks": 12}, bargap=0)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{fmt(r.baseline_kwh, 'kwh')}</td>"
        f"<td>{fmt(r.metered_kwh, 'kwh')}</td><td>{fmt(r.counted_reduction_kwh, 'kwh')}</td>"
        f"<td>{fmt(r.payment, 'money', cur)}</td></tr>"
        for name, r in zip(label, per.itertuples(), strict=True))
    return ("<h2>Demand response</h2>"
            f"<p>{fmt(s.get('dr_event_days'), 'count')} event days, "
            f"{cfg.event_start_hour:g}-{cfg.event_end_hour:g} h, baseline "
            f"<code>{cfg.method}</code>, {_negawatt_price(cfg, cur)}: "
            f"the community's metered load against the sum of its households' "
            f"baselines on each event day. Each household is paid for its load below its own "
            f"baseline in the event hours, floored at zero interval by interval "
            f"({fmt(s.get('dr_reduction_kwh'), 'kwh')}, "
            f"{fmt(s.get('dr_payment'), 'money', cur)}), so the counted reduction can exceed "
            f"the community's (baseline less metered); rebound in the "
            f"{cfg.rebound_hours:g} h after: {fmt(s.get('dr_rebound_kwh'), 'kwh')}. On the "
            f"days without events the baseline misses the meter by a bias of "
            f"{_pct(s.get('dr_baseline_bias_pct'))} and a CV(RMSE) of "
            f"{_pct(s.get('dr_baseline_cv_rmse_pct'))} (each household against its own "
            f"baseline, pooled).</p>"
            + chart(fig, "dr-events")
            + "<table class='kv'><tr><th>event</th><th>baseline (event hours)</th>"
              "<th>metered (event hours)</th><th>counted reduction</th><th>paid</th></tr>"
              f"{rows}</table>")


def vpp_section(run: _Run) -> str:
    s, cur = run.s, run.cur
    if s.get("vpp_households") is None:
        return ""
    cfg, v = run.result.scenario.vpp, run.result.vpp
    assert v is not None
    step = run.series.step_minutes
    lines = [Line("vpp_award_net_kwh", "award (committed ahead)", COLORS["grey"], dash="dot"),
             Line("vpp_dispatch_net_kwh", "delivered (dispatched)", COLORS["device"]),
             Line("vpp_shortfall_kwh", "off the award", COLORS["retail"])]
    daily = [Daily("vpp_award_net_kwh", "sum", "award", COLORS["grey"], 2, dash="dot"),
             Daily("vpp_dispatch_net_kwh", "sum", "delivered", COLORS["device"], 2),
             Daily("vpp_shortfall_kwh", "sum", "off the award", COLORS["retail"], 2)]
    money = [("paid for the energy upstream (wholesale; network charges "
              f"{fmt(float(v['network_charges'].sum()), 'money', cur)} of it)",
              -float(v["revenue"].sum())),
             ("the households paid it (their share by the rule "
              f"<code>{cfg.sharing}</code>)", -float(s["vpp_households_receipt"])),
             ("its margin", float(v["margin"].sum())),
             ("its imbalance penalty", float(s["vpp_penalty"])),
             ("its profit (margin less penalty)", float(s["vpp_aggregator_profit"]))]
    rows = "".join(f"<tr><th>{label}</th><td>{fmt(value, 'money', cur)}</td></tr>"
                   for label, value in money)
    return ("<h2>Virtual power plant</h2>"
            f"<p>An aggregator enrolled {fmt(s['vpp_households'], 'count')} households "
            "that own a battery, an EV, a heat pump or an appliance, committed its fleet's "
            f"flexibility {cfg.gate_closure_h:g} h ahead at the wholesale price (plus "
            f"{fmt(cfg.network_charge_per_kwh, 'price', cur)} of network charges on what it "
            "supplies) and dispatched the devices to its award; its energy is metered behind "
            "the members' meters, beside their market and utility lines. Of the "
            f"{fmt(s['vpp_award_kwh'], 'kwh')} awarded the fleet delivered "
            f"{fmt(s['vpp_delivered_kwh'], 'kwh')} ({_pct(_times100(s['vpp_delivered_share']))}"
            f"; the feeder's operator curtailed {fmt(float(v['curtailed_kwh'].sum()), 'kwh')} "
            f"where the feeder could not carry it); each kWh off the award cost it "
            f"{fmt(cfg.imbalance_price_per_kwh, 'price', cur)}. Net energy, load positive "
            "(up: the devices took energy; down: they gave it).</p>"
            + run.series.chart("vpp", lines, daily, f"kWh per {step}-minute interval",
                               daily_y_title="kWh per day")
            + f"<table class='kv'>{rows}</table>")


def _times100(share: float | None) -> float | None:
    return None if share is None else 100.0 * share


def _negawatt_price(cfg: DemandResponseConfig, cur: str) -> str:
    """What the program pays for a kWh of reduction, in words."""
    offer = fmt(cfg.price_per_kwh, "price", cur)
    if cfg.compensation == "fixed":
        return f"{offer} of reduction"
    return (f"the reduction offered into the wholesale market as supply at {offer} and paid "
            "the day-ahead price in the event intervals where it reached the offer")


def retail_section(run: _Run) -> str:
    months = run.result.retail
    if months is None or months.empty:
        return ""
    s, cur = run.s, run.cur
    cfg = run.result.scenario.retail
    palette = [COLORS["market"], COLORS["feed_in"], COLORS["import"], COLORS["device"],
               COLORS["load"], COLORS["soc"], COLORS["grey"]]
    names = list(dict.fromkeys(months["retailer"].tolist()))
    by = {name: months[months["retailer"] == name] for name in names}

    def lines(column: str, scale: float, digits: int) -> list[go.Scatter]:
        return [go.Scatter(x=part["month"].tolist(), y=values(part[column] * scale, digits),
                           name=name, mode="lines+markers",
                           line={"color": palette[k % len(palette)]})
                for k, (name, part) in enumerate(by.items())]

    saving = s.get("retail_bill_saving_per_month")
    effect = ("leaves their bills as they were" if saving is None or abs(saving) < CENT else
              f"saves them {fmt(saving, 'money', cur)} a month" if saving > 0 else
              f"costs them {fmt(-saving, 'money', cur)} a month more")
    facts = (f"<p>The households' metered profile of this run, offered for "
             f"{cfg.months} months to the incumbent (the scenario's tariff, fixed) and "
             f"{len(names) - 1} entrant(s); each month every household keeps or switches its "
             f"retailer by a logit choice on the bills (sensitivity "
             f"{cfg.sensitivity_per_currency:g} per {cur}, switching cost "
             f"{fmt(cfg.switching_cost, 'money', cur)}), and the entrants move their prices "
             f"(no retailer's mean price above the cap). After the last month the incumbent "
             f"keeps {fmt(s.get('retail_incumbent_share'), 'share')} of the households, and "
             f"competition {effect} against the incumbent alone (welfare, counting switching "
             f"costs and retailer profit: "
             f"{fmt(s.get('retail_welfare_change_per_month'), 'money', cur)} a month). This "
             f"run's market saves them "
             f"{fmt(s.get('p2p_bill_saving_per_month'), 'money', cur)} a month against the "
             f"incumbent alone (welfare, counting what the utility and the market operator "
             f"earn instead: {fmt(s.get('p2p_welfare_change_per_month'), 'money', cur)} a "
             f"month). Money is per month, summed over the households.</p>")
    shares = figure(lines("share", 100.0, 1), y_title="share of households (%)",
                    x_title="month", yaxis={"range": [0, 100]})
    prices = figure(lines("price_per_kwh", 1.0, 4), y_title=f"mean price ({cur}/kWh)",
                    x_title="month")
    return ("<h2>Retail competition</h2>" + facts + "<h3>Retailers' shares</h3>"
            + chart(shares, "retail-shares") + "<h3>Retailers' prices</h3>"
            + chart(prices, "retail-prices")
            + csv_table("retail-csv", months.round(6), "retail_months.csv"))
