"""The run report: one self-contained HTML file of interactive charts (plotly,
inline, no network) written next to the results store.

Every figure comes from :func:`transactive.analysis.metrics.summary` or the
run's frames and carries its unit: money in the tariff's currency, energy in
kWh, power in kW, prices in currency per kWh, shares in percent. A run longer
than two weeks is drawn by day with drill-down to the intervals of a chosen
day (:mod:`transactive.analysis._series`). The same run gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.core.groupby import SeriesGroupBy

from transactive.analysis._page import csv_table, fmt, page
from transactive.analysis._plotly import COLORS, chart, figure, values
from transactive.analysis._programs import (
    demand_response_section,
    flexibility_section,
    retail_section,
    tariff_table,
    vpp_section,
)
from transactive.analysis._series import Daily, Line, Series
from transactive.analysis.feeder_map import feeder_map
from transactive.analysis.metrics import CENT, counted_gains, lorenz_curve, summary
from transactive.settlement.statements import statement_totals
from transactive.sim.books import GAIN_REASONS
from transactive.sim.result import SimulationResult
from transactive.sim.settling import household_label, statements_path

__all__ = ["KEY_FIGURES", "REPORT_FILE", "household_table", "render_comparison",
           "render_report", "write_comparison", "write_report"]

REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.html"

#: The key figures of the summary, by group: (key, label, format kind).
KEY_FIGURES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("Run", (("households", "Households", "count"), ("intervals", "Intervals", "count"),
             ("days", "Days", "number"), ("mechanism", "Market design", "text"),
             ("strategy", "Bidding strategy", "text"))),
    ("Energy", (
        ("load_kwh", "Consumption", "kwh"),
        ("device_kwh", "of which EVs, heat pumps and appliances", "kwh"),
        ("pv_kwh", "PV generation", "kwh"),
        ("p2p_kwh", "Peer-to-peer: sold by households to households", "kwh"),
        ("p2p_share_of_load", "Peer-to-peer share of consumption", "share"),
        ("market_bought_kwh", "Bought by households in the market", "kwh"),
        ("market_sold_kwh", "Sold by households in the market", "kwh"),
        ("counterparty_kwh_in", "Supplied to the market by the substation or pool", "kwh"),
        ("counterparty_kwh_out", "Taken from the market by the substation or pool", "kwh"),
        ("utility_import_kwh", "Bought from the utility (tariff and through the market)", "kwh"),
        ("utility_export_kwh", "Sold to the utility (tariff and through the market)", "kwh"),
        ("grid_import_kwh", "Physical import at the connection", "kwh"),
        ("grid_export_kwh", "Physical export at the connection", "kwh"),
        ("peak_import_kw", "Peak import (interval mean)", "kw"),
        ("self_sufficiency", "Self-sufficiency (1 - import / consumption)", "share"),
        ("curtailed_kwh", "PV curtailed", "kwh"),
        ("baseline_curtailed_kwh", "PV curtailed, utility only", "kwh"),
        ("unserved_kwh", "Load not served", "kwh"),
        ("baseline_unserved_kwh", "Load not served, utility only", "kwh"))),
    ("Prices", (("buyer_price_per_kwh", "Paid by buyers in the market", "price"),
                ("seller_price_per_kwh", "Received by sellers in the market", "price"))),
    ("Money", (
        ("bills_baseline", "Bills, utility only", "money"),
        ("bills_market", "Bills, with the market", "money"),
        ("savings", "Savings (bills, utility only - with the market)", "money"),
        ("savings_share", "Savings share of baseline spending", "share"),
        ("baseline_spending", "Baseline spending (bought at retail)", "money"),
        ("baseline_earnings", "Baseline earnings (feed-in)", "money"),
        ("operator_surplus", "Market operator surplus", "money"),
        ("pool_lp_pnl", "Pool providers' profit and loss", "money"),
        ("carbon_cost", "Carbon charge (apart from the bills)", "money"))),
    ("Flexibility", (
        ("flexible_kwh", "Device energy the market moved in time (vs. plain rules)", "kwh"),
        ("ev_shortfall_kwh", "Energy EVs lacked at departure", "kwh"),
        ("ev_ready_share", "EV departures with the energy they needed", "share"),
        ("ev_unmet_trip_kwh", "Energy EV trips needed beyond what the cars held", "kwh"),
        ("comfort_violation_kh", "Time outside the comfort band (heat pumps)", "kh"))),
    ("Who gains", (
        ("households_better_off", "Households better off (by a cent or more)", "count"),
        ("households_worse_off", "Households worse off (by a cent or more)", "count"),
        ("gini_gains", "Gini of gains", "ratio"))),
)


_ONLY_WHEN_SET = frozenset({"device_kwh"})  # rows left out where the figure is None


@dataclass(frozen=True)
class _Run:
    """What every section reads: the result, its summary and its time series."""

    result: SimulationResult
    s: dict[str, Any]
    series: Series

    @property
    def cur(self) -> str:
        return str(self.s.get("currency") or "currency")


Section = Callable[[_Run], str]


def _figure_text(s: dict[str, Any], key: str, kind: str) -> str:
    if key == "gini_gains" and s.get(key) is None:
        return "no gains"
    return fmt(s.get(key), kind, str(s.get("currency") or ""))


def _warnings_section(run: _Run) -> str:
    notes = run.s.get("warnings") or []
    if not notes:
        return "<p class='ok'>No warnings for this run.</p>"
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"<div class='warnings'><h2>Warnings</h2><ul>{items}</ul></div>"


def _key_figures_section(run: _Run) -> str:
    rows = []
    for group, figures in KEY_FIGURES:
        shown = [(key, label, kind) for key, label, kind in figures if key in run.s
                 and not (key in _ONLY_WHEN_SET and run.s[key] is None)]
        if group == "Flexibility" and all(run.s[key] is None for key, _, _ in shown):
            continue  # a community without flexible devices
        rows.append(f"<tr class='group'><th colspan='2'>{group}</th></tr>")
        rows += [f"<tr><th>{label}</th><td>{_figure_text(run.s, key, kind)}</td></tr>"
                 for key, label, kind in shown]
    return f"<h2>Key figures</h2><table class='kv'>{''.join(rows)}</table>"


def _money_parts(s: dict[str, Any]) -> list[tuple[str, float]]:
    """Where the savings come from, as the summary states them: each part's
    contribution to the savings (what the operator or the pool's providers
    keep counts against them, what they lose adds to them)."""
    surplus = s["operator_surplus"]
    parts = [("utility's revenue<br>forgone", s["utility_revenue_baseline"]
              - s["utility_revenue_market"]),
             (f"operator's {'surplus' if surplus >= 0 else 'deficit'}", -surplus)]
    pnl = s.get("pool_lp_pnl")
    if pnl is not None:
        parts.append((f"pool providers'<br>{'profit' if pnl >= 0 else 'loss'}", -pnl))
    receipt = s.get("vpp_households_receipt")
    if receipt is not None:
        parts.append(("aggregator's<br>payments", receipt))
    return parts


def _money_section(run: _Run) -> str:
    s, cur = run.s, run.cur
    if not {"utility_revenue_baseline", "utility_revenue_market"} <= s.keys():
        return ""
    parts = _money_parts(s)
    rest = s["savings"] - sum(v for _, v in parts)
    rows = [("Bills, utility only", s["bills_baseline"]),
            ("Bills, with the market", s["bills_market"]),
            ("Savings", s["savings"]), *parts]
    if abs(rest) >= CENT:
        rows.append(("not explained by the parts above", rest))
    table = "".join(f"<tr><th>{label.replace('<br>', ' ')}</th>"
                    f"<td>{fmt(v, 'money', cur)}</td></tr>" for label, v in rows)
    fig = figure([go.Waterfall(
        x=[label for label, _ in parts] + ["Savings"], y=values([v for _, v in parts] + [0], 2),
        measure=["relative"] * len(parts) + ["total"], name="money",
        increasing={"marker": {"color": COLORS["market"]}},
        decreasing={"marker": {"color": COLORS["retail"]}},
        totals={"marker": {"color": COLORS["feed_in"]}})],
        y_title=f"{cur} over the run", hovermode="closest", height=320, showlegend=False,
        xaxis={"tickangle": 0})
    opening = s.get("pool_opening_value")
    pool = ("" if opening is None else
            f"<p>The pool opened with {fmt(opening, 'money', cur)} of reserves.</p>")
    return (f"<h2>Money flows</h2><p>Savings are what the utility no longer earns, less "
            f"what the market operator and a pool's providers keep (what they lose adds to "
            f"the savings); below, each part's contribution to the savings. Carbon "
            f"({fmt(s.get('carbon_cost'), 'money', cur)}) is charged apart from the bills.</p>"
            f"{pool}<div class='grid2'><table class='kv'>{table}</table>"
            f"{chart(fig, 'money-waterfall')}</div>{tariff_table(run)}")


def _price_lines(iv: pd.DataFrame) -> list[Line]:
    lines = [Line("retail_price", "retail (utility)", COLORS["retail"], 4, "hv"),
             Line("feed_in_price", "feed-in (utility)", COLORS["feed_in"], 4, "hv"),
             Line("price", "market price", COLORS["market"], 4)]
    if "buyer_price" in iv:
        lines += [Line("buyer_price", "mean paid by buyers", COLORS["buyer"], 4, dash="dot"),
                  Line("seller_price", "mean received by sellers", COLORS["seller"], 4,
                       dash="dot")]
    return lines


def _prices_section(run: _Run) -> str:
    iv, unit = run.series.frame, f"{run.cur}/kWh"
    daily = [Daily("price", "min", "market price, daily min", COLORS["feed_in"], 4, width=1),
             Daily("price", "max", "market price, daily max", COLORS["retail"], 4, width=1),
             Daily("price", "mean", "market price, daily mean of intervals", COLORS["market"], 4),
             Daily("retail_price", "mean", "retail, daily mean", COLORS["retail"], 4, dash="dot"),
             Daily("feed_in_price", "mean", "feed-in, daily mean", COLORS["feed_in"], 4,
                   dash="dot")]
    note = (" For design 'network' the market price is the substation's; households pay "
            "their bus's price." if run.s.get("mechanism") == "network" else "")
    return (f"<h2>Prices</h2>{run.series.day_picker()}<p>The market's price against the "
            f"utility's retail and feed-in prices, in {unit}; hover to read every series at "
            f"one time, drag to zoom, double-click to reset.{note}</p>"
            + run.series.chart("prices", _price_lines(iv), daily, f"price ({unit})"))


_ENERGY_LINES = (
    ("load_kwh", "consumption", "load"), ("pv_kwh", "PV generation", "pv"),
    ("p2p_kwh", "peer-to-peer (households to households)", "market"),
    ("counterparty_in_kwh", "from the substation or pool", "counterparty"),
    ("counterparty_out_kwh", "to the substation or pool", "buyer"),
    ("import_kwh", "bought from the utility at the tariff", "retail"),
    ("export_kwh", "sold to the utility at the tariff", "feed_in"),
    ("grid_import_kwh", "physical import at the connection", "import"),
    ("grid_export_kwh", "physical export at the connection", "export"),
    ("curtailed_kwh", "PV curtailed", "curtailed"), ("unserved_kwh", "load not served", "unserved"),
    ("device_kwh", "EVs, heat pumps and appliances", "device"),
)


def _energy_section(run: _Run) -> str:
    iv = run.series.frame
    shown = [(c, label, COLORS[color]) for c, label, color in _ENERGY_LINES
             if c in iv and bool((iv[c].abs() > 1e-9).any())]
    step = run.series.step_minutes
    lines = [Line(c, label, color) for c, label, color in shown]
    daily = [Daily(c, "sum", label, color, 2) for c, label, color in shown]
    return ("<h2>Energy</h2><p>Energy per interval (kWh; divide by the interval's "
            f"{step / 60:g} h for the mean power in kW). Only flows that are not zero "
            "somewhere in the run are drawn.</p>"
            + run.series.chart("energy", lines, daily, f"kWh per {step}-minute interval",
                               daily_y_title="kWh per day"))


def _battery_section(run: _Run) -> str:
    hh = run.result.households
    capacity = float(hh["battery_kwh"].sum())
    if capacity <= 0:
        return "<h2>Batteries</h2><p>No household has a battery in this scenario.</p>"
    count = int((hh["battery_kwh"] > 0).sum())
    lines = [Line("soc_pct", f"fleet state of charge ({count} batteries)", COLORS["soc"], 2)]
    daily = [Daily("soc_pct", "min", "daily min", COLORS["feed_in"], 2, width=1),
             Daily("soc_pct", "max", "daily max", COLORS["soc"], 2, width=1)]
    return ("<h2>Batteries</h2>" + run.series.chart(
        "battery", lines, daily, "state of charge (% of fleet capacity)",
        yaxis={"range": [0, 100]}))


def _quantile_boxes(groups: SeriesGroupBy[Any, Any], name: str, color: str) -> go.Box:
    """A box per group from its quantiles (whiskers at min and max)."""
    q = groups.quantile(np.array([0.0, 0.25, 0.5, 0.75, 1.0])).unstack()
    return go.Box(x=[str(i) for i in q.index], lowerfence=values(q[0.0], 4),
                  q1=values(q[0.25], 4), median=values(q[0.5], 4), q3=values(q[0.75], 4),
                  upperfence=values(q[1.0], 4), mean=values(groups.mean(), 4), name=name,
                  marker={"color": color}, boxpoints=False, boxmean=True)


def _grid_section(run: _Run) -> str:
    result, cur = run.result, run.cur
    nodes, grid = result.nodes, result.scenario.grid
    network = grid.network()
    if nodes is None or network is None or nodes.empty:
        return ""
    by_bus = nodes.groupby("bus")
    price, vm = by_bus["price"], by_bus["vm_pu"]
    n = network.n_bus
    mean_price = price.mean().reindex(range(n)).to_numpy()
    vm_min, vm_max = vm.min().reindex(range(n)).to_numpy(), vm.max().reindex(range(n)).to_numpy()
    at_limit = (vm_max >= grid.vm_max_pu - 1e-6) | (vm_min <= grid.vm_min_pu + 1e-6)
    homes = np.bincount(result.households["node"].to_numpy(), minlength=n)
    hover = {"mean price": [fmt(v, "price", cur) for v in mean_price],
             "voltage": [f"{a:.4f}–{b:.4f} pu" for a, b in zip(vm_min, vm_max, strict=True)],
             "households": [str(h) for h in homes]}
    fmap = feeder_map(network, mean_price, colorbar_title=f"mean nodal price ({cur}/kWh)",
                      hover=hover, marked=at_limit, marked_label="voltage limit reached")
    bus_numbers = network.bus_numbers
    labelled = nodes.assign(bus=bus_numbers[nodes["bus"].to_numpy()])
    hours = pd.DatetimeIndex(result.intervals["start"]).hour.to_numpy()
    hourly = nodes.assign(hour=hours[nodes["interval"].to_numpy()]).groupby("hour")["price"]
    unit = f"{cur}/kWh"
    per_bus = figure([_quantile_boxes(labelled.groupby("bus")["price"], "nodal price",
                                      COLORS["market"])],
                     y_title=f"nodal price ({unit})", x_title="bus", hovermode="closest")
    per_hour = figure([_quantile_boxes(hourly, "nodal price, all buses", COLORS["feed_in"])],
                      y_title=f"nodal price ({unit})", x_title="hour of day (local)",
                      hovermode="closest")
    limits = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": v, "y1": v,
               "line": {"dash": "dash", "color": "black", "width": 1}}
              for v in (grid.vm_min_pu, grid.vm_max_pu)]
    volt = run.series.chart(
        "voltage", [Line("vm_max_pu", "highest bus voltage", COLORS["retail"], 4),
                    Line("vm_min_pu", "lowest bus voltage", COLORS["feed_in"], 4)],
        [Daily("vm_max_pu", "max", "highest, daily", COLORS["retail"], 4),
         Daily("vm_min_pu", "min", "lowest, daily", COLORS["feed_in"], 4)],
        "feeder voltage (pu)", shapes=limits)
    bound = int((result.intervals["n_binding"] > 0).sum())
    scale = result.figures.get("kw_per_unit") or grid.kw_per_unit
    return (f"<h2>Grid</h2><p>The community on the {html.escape(network.name or grid.case)} "
            f"feeder ({n} buses), each simulated kW standing for {fmt(scale, 'ratio')} kW on "
            f"the feeder. Network limits bound in {bound:,} of {len(result.intervals):,} "
            f"intervals; ringed buses reached a voltage limit ({grid.vm_min_pu:g}–"
            f"{grid.vm_max_pu:g} pu) at least once. Hover a bus for its figures.</p>"
            + chart(fmap, "feeder-map")
            + "<h3>Nodal prices: distribution</h3><p class='note'>Boxes span the quartiles, "
            "whiskers the lowest and highest price, the dashed line is the mean.</p>"
            f"<div class='grid2'>{chart(per_bus, 'nodal-by-bus')}"
            f"{chart(per_hour, 'nodal-by-hour')}</div><h3>Voltages</h3>" + volt)


def household_table(result: SimulationResult, currency: str) -> pd.DataFrame:
    """One row per household: bus, PV, battery, bills, gain and why worse off
    (money rounded to cents, the units in the column names)."""
    hh = result.households
    network = result.scenario.grid.network()
    node = hh["node"].to_numpy()
    return pd.DataFrame({
        "household": hh["household"].to_numpy(),
        "bus": node if network is None else network.bus_numbers[node],
        "pv_kwp": hh["pv_kw"].round(2).to_numpy(),
        "battery_kwh": hh["battery_kwh"].round(2).to_numpy(),
        "consumption_kwh": hh["load_kwh"].round(1).to_numpy(),
        f"bill_baseline_{currency}": hh["bill_baseline"].round(2).to_numpy(),
        f"bill_market_{currency}": hh["bill_market"].round(2).to_numpy(),
        f"gain_{currency}": hh["gain"].round(2).to_numpy(),
        **({f"flexibility_gain_{currency}": hh["flexibility_gain"].round(2).to_numpy()}
           if result.scenario.flexibility.control == "market" else {}),
        "why_worse_off": hh["worse_off_reason"].fillna("").astype(str).to_numpy(),
    })


def _households_section(run: _Run) -> str:
    hh, cur = run.result.households, run.cur
    gains = hh["gain"].to_numpy(dtype=np.float64)
    counted = counted_gains(gains)
    table = household_table(run.result, cur)
    hist = figure([go.Histogram(x=values(gains, 2), name="households",
                                marker={"color": COLORS["market"]})],
                  y_title="households", x_title=f"gain ({cur}, utility-only bill - market bill)",
                  hovermode="closest", bargap=0.05)
    if run.s.get("gini_gains") is not None and counted.sum() > 0:
        x, y = lorenz_curve(counted)
        lorenz = chart(figure(
            [go.Scatter(x=values(100 * x, 2), y=values(100 * y, 2), name="gains",
                        line={"color": COLORS["market"]}),
             go.Scatter(x=[0, 100], y=[0, 100], name="equal split",
                        line={"color": COLORS["grey"], "dash": "dash"})],
            y_title="share of the total gain (%)", x_title="share of households, by gain (%)",
            hovermode="closest"), "lorenz")
        lorenz = (f"<div><p>Lorenz curve of gains (Gini {fmt(run.s['gini_gains'], 'ratio')}, "
                  f"losses counted as negative gains).</p>{lorenz}</div>")
    else:
        lorenz = ("<div><p><b>No gains</b>: nobody gained or lost a cent or more, so there "
                  "is no Lorenz curve or Gini of gains.</p></div>" if not counted.any() else
                  "<div><p>The gains sum to a loss: no Lorenz curve.</p></div>")
    bills = figure([go.Scatter(
        x=values(hh["bill_baseline"], 2), y=table[f"bill_market_{cur}"].tolist(),
        mode="markers", name="household", text=[f"household {h}" for h in table["household"]],
        marker={"color": values(gains, 2), "colorscale": "RdYlGn", "cmid": 0,
                "colorbar": {"title": {"text": f"gain ({cur})"}}},
        hovertemplate="%{text}<br>utility only %{x:.2f}<br>with market %{y:.2f}<extra></extra>")],
        y_title=f"bill with the market ({cur})", x_title=f"bill, utility only ({cur})",
        hovermode="closest", showlegend=False)
    return (f"<h2>Households</h2><p>{fmt(run.s.get('households_better_off'), 'count')} "
            f"better off, {fmt(run.s.get('households_worse_off'), 'count')} worse off "
            "(by a cent or more).</p>" + _worse_off_table(hh, cur)
            + f"<div class='grid2'><div>{chart(hist, 'gains')}</div>{lorenz}</div>"
            "<p>Each household's bill with the market against the utility alone (below the "
            "diagonal: better off; negative: it earned more than it paid).</p>"
            + chart(bills, "bills") + "<h3>Every household</h3><p>Click a column to sort; "
            "the CSV holds every row.</p>" + csv_table("households-csv", table, "households.csv"))


def _worse_off_table(hh: pd.DataFrame, cur: str) -> str:
    """Who is worse off and why: per reason, the households losing on it and
    the sum of those losses."""
    worse = hh["gain"].to_numpy() <= -CENT
    if not worse.any():
        return ""
    rows = []
    for part in (name for name in GAIN_REASONS if name in hh):  # vpp_gain: with [vpp]
        loss = hh.loc[worse, part].to_numpy()
        hit = loss <= -CENT / 2
        if hit.any():
            rows.append(f"<tr><th>{html.escape(GAIN_REASONS[part])}</th><td>{int(hit.sum())}"
                        f"</td><td>{fmt(float(loss[hit].sum()), 'money', cur)}</td></tr>")
    return ("<h3>Who is worse off, and why</h3><table class='kv'><tr><th>reason</th>"
            f"<th>households</th><th>their loss on it</th></tr>{''.join(rows)}</table>")


def _settlement_section(run: _Run, run_dir: Path | None) -> str:
    st, cur = run.s.get("settlement"), run.cur
    path = None if run_dir is None else statements_path(run_dir)
    if st is None and path is None:
        return ""
    status = ""
    if st is not None:
        problems = "".join(f"<li>{html.escape(p)}</li>" for p in st.get("problems", []))
        status = (f"<p>{st['intervals']:,} intervals settled in {st['transfers']:,} transfers; "
                  f"statements reconciled with the ledger: "
                  f"<b>{'yes' if st['reconciled'] else 'NO'}</b>.</p>"
                  + (f"<ul class='warnings'>{problems}</ul>" if problems else ""))
    if path is None:
        return f"<h2>Settlement</h2>{status}"
    money = ["energy_cents", "grid_fee_cents", "carbon_cents", "total_cents"]
    settled = run.result.settlement
    if settled is not None and settled.posted is not None:  # summed as they were written
        posted = settled.posted
        per = posted.assign(energy_cents=posted[["market_cents", "utility_cents",
                                                 "imbalance_cents"]].sum(axis=1))
    else:  # CSV or Parquet, a year of it too: summed a day (or a million rows) at a time
        per = statement_totals(path, ["metered_wh", *money])
    hh = run.result.households
    bills = hh["bill_market"]
    simulated = pd.Series(bills.to_numpy(), index=household_label(hh["household"].to_numpy()))
    table = pd.DataFrame({
        "participant": per.index, "metered_kwh": (per["metered_wh"] / 1000).round(3),
        **{f"{c.removesuffix('_cents')}_{cur}": per[c] / 100 for c in money},
        f"simulated_bill_{cur}": simulated.reindex(per.index).round(2).to_numpy()})
    diff = (per["energy_cents"] / 100 - simulated.reindex(per.index)).abs()
    worst = float(diff.max()) if diff.notna().any() else float("nan")
    return (f"<h2>Settlement</h2>{status}<p>Each participant's statement over the run, "
            f"summed from <code>{path.name}</code>: the energy bill (market, utility and "
            "imbalance lines), grid fees and carbon apart, in integer cents. Against the "
            f"simulated energy bills the statements differ by at most "
            f"{fmt(worst, 'money', cur)} per household (each line rounded to the cent on its "
            "own running total). <code>transactive ledger verify</code> re-checks the "
            "ledger.</p>" + csv_table("statements-csv", table, "statements_by_participant.csv"))


SECTIONS: tuple[Section, ...] = (
    _warnings_section, _key_figures_section, _money_section, _prices_section, _energy_section,
    flexibility_section, demand_response_section, vpp_section, retail_section, _grid_section,
    _battery_section, _households_section,
)


def _prepared(result: SimulationResult) -> pd.DataFrame:
    """The intervals frame with the derived columns the charts draw."""
    iv = result.intervals
    extra: dict[str, Any] = {}
    if "counterparty_kwh" in iv:
        extra["counterparty_in_kwh"] = iv["counterparty_kwh"].clip(lower=0.0)
        extra["counterparty_out_kwh"] = (-iv["counterparty_kwh"]).clip(lower=0.0)
    if {"buyer_payment", "bought_kwh", "seller_receipt", "sold_kwh"} <= set(iv):
        with np.errstate(divide="ignore", invalid="ignore"):
            extra["buyer_price"] = (iv["buyer_payment"] / iv["bought_kwh"]).where(
                iv["bought_kwh"] > 0)
            extra["seller_price"] = (iv["seller_receipt"] / iv["sold_kwh"]).where(
                iv["sold_kwh"] > 0)
    capacity = float(result.households["battery_kwh"].sum())
    if capacity > 0:
        extra["soc_pct"] = 100 * iv["soc_kwh"] / capacity
    if "indoor_c_mean" in iv and iv["indoor_c_mean"].notna().any():
        hp = result.scenario.heat_pump
        extra["comfort_low"] = np.full(len(iv), hp.setpoint_c - hp.band_k)
        extra["comfort_high"] = np.full(len(iv), hp.setpoint_c + hp.band_k)
    if result.vpp is not None:  # the aggregator's award and dispatch, net (load positive)
        v = result.vpp
        extra["vpp_award_net_kwh"] = (v["award_up_kwh"] - v["award_down_kwh"]).to_numpy()
        extra["vpp_dispatch_net_kwh"] = (v["dispatched_up_kwh"]
                                         - v["dispatched_down_kwh"]).to_numpy()
        extra["vpp_shortfall_kwh"] = v["shortfall_kwh"].to_numpy()
    return iv.assign(**extra)


def render_report(result: SimulationResult, run_dir: str | PathLike[str] | None = None,
                  sections: tuple[Section, ...] = SECTIONS) -> str:
    """The report of ``result`` as one HTML document; the settlement page
    shows the reconciliation line of a settled run and, when ``run_dir``
    holds the run's statements, every participant's statement totals."""
    sc = result.scenario
    tl = sc.time.timeline()
    run = _Run(result, summary(result), Series(_prepared(result)))
    head = (f"<h1>transactive — {html.escape(sc.name)}</h1><p class='sub'>"
            f"{sc.community.households:,} households, {tl.days:g} days from "
            f"{tl.start:%Y-%m-%d %H:%M %z} at {tl.step_minutes}-minute intervals, "
            f"market design <b>{html.escape(sc.market.mechanism)}</b>, seed {sc.seed}; "
            f"money in {html.escape(run.cur)}</p>")
    body = "".join(section(run) for section in sections)
    body += _settlement_section(run, None if run_dir is None else Path(run_dir))
    return page(f"transactive report — {sc.name}", head + body + run.series.payload())


def write_report(result: SimulationResult, run_dir: str | PathLike[str]) -> Path:
    """Write ``run_dir/report.html``."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(render_report(result, run_dir), encoding="utf-8")
    return path


def _column_name(key: str, kind: str, currency: str) -> str:
    """A summary key with its unit, for a CSV header.

    Examples
    --------
    >>> [_column_name(k, kind, "EUR") for k, kind in [("counterparty_kwh_in", "kwh"),
    ...  ("buyer_price_per_kwh", "price"), ("savings", "money"), ("self_sufficiency", "share")]]
    ['counterparty_kwh_in', 'buyer_price_EUR_per_kwh', 'savings_EUR', 'self_sufficiency_pct']
    """
    if kind == "price":
        return key.replace("_per_kwh", f"_{currency}_per_kwh")
    unit = {"kwh": "_kwh", "kw": "_kw", "money": f"_{currency}", "share": "_pct"}.get(kind, "")
    return key if unit in key else key + unit


def comparison_table(stats: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per design, one column per key figure (units in the names,
    shares in percent, money in cents' precision)."""
    cur = str(next(iter(stats.values())).get("currency") or "currency")
    digits = {"kwh": 1, "kw": 1, "money": 2, "price": 4, "share": 1, "ratio": 3}
    columns: dict[str, list[Any]] = {"design": list(stats)}
    for _, figures in KEY_FIGURES[1:]:
        for key, _, kind in figures:
            col = []
            for s in stats.values():
                v = s.get(key)
                if isinstance(v, int | float) and kind in digits:
                    v = round((100 if kind == "share" else 1) * v, digits[kind])
                col.append(v)
            columns[_column_name(key, kind, cur)] = col
    return pd.DataFrame(columns)


def _bars(stats: dict[str, dict[str, Any]], keys: list[tuple[str, str, str]], y_title: str,
          div_id: str, scale: float = 1.0) -> str:
    """Grouped bars: one group per design, one bar per ``(key, label, color)``."""
    names = list(stats)
    traces = [go.Bar(x=names, y=values([np.nan if stats[n].get(k) is None
                                        else scale * stats[n][k] for n in names], 4),
                     name=label, marker={"color": color}) for k, label, color in keys]
    return chart(figure(traces, y_title=y_title, x_title="market design", hovermode="closest",
                        barmode="group"), div_id)


def render_comparison(runs: dict[str, SimulationResult]) -> str:
    """One HTML document comparing runs of the same community side by side."""
    if not runs:
        raise ValueError("runs: no run to compare")
    stats = {name: summary(r) for name, r in runs.items()}
    first = next(iter(runs.values()))
    cur = str(stats[next(iter(stats))].get("currency") or "currency")
    frame = first.intervals[["start", "retail_price", "feed_in_price"]].assign(
        **{f"price_{i}": r.intervals["price"].to_numpy() for i, r in enumerate(runs.values())})
    series = Series(frame, prefix="cmp")
    palette = ["#1b7837", "#762a83", "#e08214", "#2166ac", "#b2182b", "#35978f", "#8c510a"]
    lines = [Line("retail_price", "retail", COLORS["retail"], 4, "hv", dash="dash"),
             Line("feed_in_price", "feed-in", COLORS["feed_in"], 4, "hv", dash="dash")]
    daily = [Daily("retail_price", "mean", "retail, daily mean", COLORS["retail"], 4,
                   dash="dash"),
             Daily("feed_in_price", "mean", "feed-in, daily mean", COLORS["feed_in"], 4,
                   dash="dash")]
    for i, name in enumerate(runs):
        color = palette[i % len(palette)]
        lines.append(Line(f"price_{i}", name, color, 4))
        daily.append(Daily(f"price_{i}", "mean", f"{name}, daily mean of intervals", color, 4))
    warnings = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(w)}</li>"
                       for n, s in stats.items() for w in s.get("warnings") or [])
    lorenz = []
    for i, (name, r) in enumerate(runs.items()):
        gains = r.households["gain"].to_numpy(dtype=np.float64)
        counted = counted_gains(gains)
        if stats[name].get("gini_gains") is not None and counted.sum() > 0:
            x, y = lorenz_curve(counted)
            lorenz.append(go.Scatter(x=values(100 * x, 2), y=values(100 * y, 2),
                                     name=f"{name} (Gini {stats[name]['gini_gains']:.2f})",
                                     line={"color": palette[i % len(palette)]}))
    no_gains = [n for n, s in stats.items() if s.get("gini_gains") is None]
    lorenz_html = (chart(figure(
        [*lorenz, go.Scatter(x=[0, 100], y=[0, 100], name="equal split",
                             line={"color": COLORS["grey"], "dash": "dash"})],
        y_title="share of the total gain (%)", x_title="share of households, by gain (%)",
        hovermode="closest"), "cmp-lorenz") if lorenz else "")
    if no_gains:
        lorenz_html += f"<p>No gains: {html.escape(', '.join(no_gains))}.</p>"
    sc = first.scenario
    head = (f"<h1>transactive — market designs compared</h1><p class='sub'>"
            f"{sc.community.households:,} households, {sc.time.days:g} days, seed {sc.seed}, "
            f"bidding strategy {html.escape(sc.market.strategy)}; money in "
            f"{html.escape(cur)}</p>")
    charts = "".join(f"<div>{c}</div>" for c in (
        _bars(stats, [("savings", "savings", COLORS["market"])], f"savings ({cur})",
              "cmp-savings"),
        _bars(stats, [("savings_share", "savings share of baseline spending", COLORS["market"])],
              "savings share (%)", "cmp-share", scale=100.0),
        _bars(stats, [("households_better_off", "better off", COLORS["market"]),
                      ("households_worse_off", "worse off", COLORS["retail"])],
              "households", "cmp-households"),
        _bars(stats, [("buyer_price_per_kwh", "paid by buyers", COLORS["buyer"]),
                      ("seller_price_per_kwh", "received by sellers", COLORS["seller"])],
              f"price ({cur}/kWh)", "cmp-prices-paid"),
        _bars(stats, [("p2p_kwh", "peer-to-peer", COLORS["market"]),
                      ("utility_import_kwh", "bought from the utility", COLORS["retail"]),
                      ("utility_export_kwh", "sold to the utility", COLORS["feed_in"]),
                      ("curtailed_kwh", "PV curtailed", COLORS["curtailed"])],
              "kWh over the run", "cmp-energy"),
        _bars(stats, [("operator_surplus", "market operator's surplus", COLORS["counterparty"]),
                      ("pool_lp_pnl", "pool providers' profit", COLORS["soc"]),
                      ("carbon_cost", "carbon charge", COLORS["grey"])],
              f"{cur} over the run", "cmp-money")))
    body = (head + (f"<div class='warnings'><h2>Warnings</h2><ul>{warnings}</ul></div>"
                    if warnings else "")
            + "<h2>Key figures</h2><p>One row per design; click a column to sort.</p>"
            + csv_table("comparison-csv", comparison_table(stats), "comparison.csv")
            + f"<h2>Side by side</h2><div class='grid2'>{charts}</div>"
            + f"<h2>Who gains</h2>{lorenz_html}<h2>Prices</h2>{series.day_picker()}"
            + series.chart("prices", lines, daily, f"price ({cur}/kWh)") + series.payload())
    return page("transactive comparison", body)


def write_comparison(runs: dict[str, SimulationResult], out_dir: str | PathLike[str]) -> Path:
    """Write ``out_dir/comparison.html``."""
    path = Path(out_dir) / COMPARISON_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_comparison(runs), encoding="utf-8")
    return path
