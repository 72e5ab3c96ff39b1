"""The run report: one self-contained HTML file (inline SVG plots, no scripts,
no network) written next to the results store."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from transactive.analysis.feeder_map import feeder_figure
from transactive.analysis.metrics import fair_share_gains, gini, lorenz_curve, summary
from transactive.sim.engine import SimulationResult
from transactive.sim.settling import STATEMENTS_FILE, household_label

__all__ = ["REPORT_FILE", "render_comparison", "render_report", "write_comparison", "write_report"]

REPORT_FILE = "report.html"
_MAX_POINTS = 2000
_COLORS = {"p2p": "#1b7837", "retail": "#b2182b", "feed_in": "#2166ac", "pv": "#f4a582",
           "load": "#4d4d4d", "import": "#d6604d", "export": "#4393c3", "soc": "#762a83"}

Section = Callable[[SimulationResult], str]


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": "transactive"}):  # stable element ids
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figure(width: float = 10.0, height: float = 3.2) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _coarse(iv: pd.DataFrame) -> pd.DataFrame:
    """Intervals averaged into at most ``_MAX_POINTS`` rows (for long runs)."""
    step = max(1, -(-len(iv) // _MAX_POINTS))
    if step == 1:
        return iv
    group = np.arange(len(iv)) // step
    numeric = iv.drop(columns=["start"]).groupby(group).mean()
    numeric["start"] = iv["start"].iloc[::step].to_numpy()
    return numeric


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.1f}"
    return html.escape(str(value))


def _summary_section(result: SimulationResult) -> str:
    s = summary(result)
    labels = {
        "households": "Households", "intervals": "Intervals", "mechanism": "Market design",
        "strategy": "Bidding strategy", "load_kwh": "Consumption (kWh)",
        "pv_kwh": "PV generation (kWh)", "p2p_volume_kwh": "P2P traded (kWh)",
        "p2p_share_of_load": "P2P share of consumption",
        "import_kwh": "Bought from the utility at the tariff (kWh)",
        "export_kwh": "Sold to the utility at the tariff (kWh)",
        "grid_import_kwh": "Physical import at the connection (kWh)",
        "curtailed_kwh": "PV curtailed (kWh)",
        "unserved_kwh": "Load not served (kWh)",
        "baseline_unserved_kwh": "Load not served, utility only (kWh)",
        "self_sufficiency": "Community self-sufficiency",
        "volume_weighted_price": "Volume-weighted P2P price (per kWh)",
        "bill_baseline": "Bills, utility only", "bill_p2p": "Bills, with P2P market",
        "savings": "Community savings", "savings_share": "Savings share",
        "operator_surplus": "Market operator surplus",
        "households_better_off": "Households better off",
        "households_worse_off": "Households worse off", "gini_of_gains": "Gini of gains",
    }
    rows = "".join(f"<tr><th>{labels[k]}</th><td>{_fmt(s[k])}</td></tr>" for k in labels)
    return f"<h2>Key figures</h2><table class='kv'>{rows}</table>"


def _prices_section(result: SimulationResult) -> str:
    iv = _coarse(result.intervals)
    fig, ax = _figure()
    ax.step(iv["start"], iv["retail_price"], where="post", color=_COLORS["retail"],
            label="retail (utility)")
    ax.step(iv["start"], iv["feed_in_price"], where="post", color=_COLORS["feed_in"],
            label="feed-in (utility)")
    ax.plot(iv["start"], iv["price"], ".", ms=3, color=_COLORS["p2p"], label="P2P clearing price")
    ax.set_ylabel("price per kWh")
    ax.legend(loc="upper right", fontsize=8)
    return "<h2>Prices</h2><p>The P2P price against the utility's retail and " \
           "feed-in prices, which bound it for truthful bidders.</p>" + _svg(fig)


def _energy_section(result: SimulationResult) -> str:
    iv = _coarse(result.intervals)
    fig, ax = _figure()
    ax.fill_between(iv["start"], iv["volume_kwh"], step="post", color=_COLORS["p2p"], alpha=0.6,
                    label="P2P traded")
    ax.plot(iv["start"], iv["import_kwh"], color=_COLORS["import"], lw=0.8, label="grid import")
    ax.plot(iv["start"], -iv["export_kwh"], color=_COLORS["export"], lw=0.8,
            label="grid export (negative)")
    ax.set_ylabel("kWh per interval")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(loc="upper right", fontsize=8)

    fig2, ax2 = _figure(10.0, 2.8)
    hours = result.intervals["start"].dt.hour
    day = result.intervals.groupby(hours)[["load_kwh", "pv_kwh", "volume_kwh"]].mean()
    ax2.plot(day.index, day["load_kwh"], color=_COLORS["load"], label="consumption")
    ax2.plot(day.index, day["pv_kwh"], color=_COLORS["pv"], label="PV")
    ax2.plot(day.index, day["volume_kwh"], color=_COLORS["p2p"], label="P2P traded")
    ax2.set_xlabel("hour of day")
    ax2.set_ylabel("kWh per interval")
    ax2.legend(fontsize=8)
    return "<h2>Energy</h2><p>Traded volume and what still flows to and from the utility; " \
           "below, the average day.</p>" + _svg(fig) + _svg(fig2)


def _battery_section(result: SimulationResult) -> str:
    hh = result.households
    capacity = float(hh["battery_kwh"].sum())
    if capacity <= 0:
        return "<h2>Batteries</h2><p>No household has a battery in this scenario.</p>"
    iv = _coarse(result.intervals)
    fig, ax = _figure()
    ax.plot(iv["start"], 100 * iv["soc_kwh"] / capacity, color=_COLORS["soc"], lw=1.5,
            label=f"fleet ({int((hh['battery_kwh'] > 0).sum())} batteries)")
    hi = result.household_intervals
    if hi is not None:
        owners = hh.loc[hh["battery_kwh"] > 0, ["household", "battery_kwh"]].head(3)
        for h, cap in owners.itertuples(index=False):
            soc = hi.loc[hi["household"] == h, "soc_kwh"].to_numpy()
            ax.plot(result.intervals["start"], 100 * soc / cap, lw=0.6, alpha=0.7,
                    label=f"household {h}")
    ax.set_ylabel("state of charge (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper right", fontsize=8)
    return "<h2>Batteries</h2>" + _svg(fig)


def _bills_section(result: SimulationResult) -> str:
    hh = result.households.sort_values("bill_baseline").reset_index(drop=True)
    fig, ax = _figure(10.0, 3.6)
    x = np.arange(len(hh))
    ax.bar(x - 0.2, hh["bill_baseline"], width=0.4, color=_COLORS["retail"], label="utility only")
    ax.bar(x + 0.2, hh["bill_p2p"], width=0.4, color=_COLORS["p2p"], label="with P2P market")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("households, by utility-only bill")
    ax.set_ylabel("bill over the run")
    ax.legend(fontsize=8)
    return "<h2>Bills</h2><p>Each household's bill (negative: it earned more than it " \
           "paid).</p>" + _svg(fig)


def _fairness_section(result: SimulationResult) -> str:
    gains = result.households["gain"].to_numpy()
    fair = fair_share_gains(gains)
    fig = Figure(figsize=(10.0, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(gains, bins=min(30, max(5, len(gains) // 3)), color=_COLORS["p2p"])
    ax1.set_xlabel("gain from the P2P market")
    ax1.set_ylabel("households")
    if fair is not None:
        x, y = lorenz_curve(fair)
        ax2.plot(x, y, color=_COLORS["p2p"], label=f"gains (Gini {gini(fair):.2f})")
        ax2.plot([0, 1], [0, 1], color="grey", lw=0.6, ls="--", label="equal split")
        ax2.set_xlabel("share of households")
        ax2.set_ylabel("share of total gain")
        ax2.legend(fontsize=8)
        note = ""
    else:
        ax2.set_axis_off()
        note = "<p>Some households lost, so the Lorenz curve of gains is not defined.</p>"
    return "<h2>Who gained</h2><p>The distribution of gains (utility-only bill minus " \
           "P2P bill) and its Lorenz curve.</p>" + note + _svg(fig)


def _grid_section(result: SimulationResult) -> str:
    nodes = result.nodes
    network = result.scenario.grid.network()
    if nodes is None or network is None:
        return ""
    grid = result.scenario.grid
    by_bus = nodes.groupby("bus")
    mean_price = by_bus["price"].mean().to_numpy()
    vm_min, vm_max = by_bus["vm_pu"].min().to_numpy(), by_bus["vm_pu"].max().to_numpy()
    at_limit = (vm_max >= grid.vm_max_pu - 1e-6) | (vm_min <= grid.vm_min_pu + 1e-6)
    fig = feeder_figure(network, [
        ("mean nodal price per kWh", mean_price, "viridis"),
        ("highest voltage (pu)", vm_max, "coolwarm"),
        ("lowest voltage (pu)", vm_min, "coolwarm"),
    ], marked=at_limit, marked_label="voltage limit bound")

    iv = _coarse(result.intervals)
    fig2, ax = _figure(10.0, 2.8)
    ax.plot(iv["start"], iv["vm_max_pu"], color=_COLORS["retail"], lw=0.8, label="highest")
    ax.plot(iv["start"], iv["vm_min_pu"], color=_COLORS["feed_in"], lw=0.8, label="lowest")
    for limit in (grid.vm_min_pu, grid.vm_max_pu):
        ax.axhline(limit, color="black", lw=0.6, ls="--")
    ax.set_ylabel("feeder voltage (pu)")
    ax2 = ax.twinx()
    ax2.fill_between(iv["start"], iv["curtailed_kwh"], step="post", color=_COLORS["pv"],
                     alpha=0.5, label="PV curtailed")
    ax2.set_ylabel("curtailed kWh per interval")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    bound = int((result.intervals["n_binding"] > 0).sum())
    return (f"<h2>Grid</h2><p>The community on the {html.escape(network.name or grid.case)} "
            f"feeder ({network.n_bus} buses), each simulated kW standing for "
            f"{grid.kw_per_unit:g} kW on the feeder. Network limits bound in {bound} of "
            f"{len(result.intervals)} intervals; buses ringed in red reached a voltage limit "
            f"({grid.vm_min_pu:g}–{grid.vm_max_pu:g} pu) at least once, where the nodal price "
            f"falls (overvoltage from PV) or rises (undervoltage) and PV may be curtailed.</p>"
            + _svg(fig) + _svg(fig2))


def _settlement_section(result: SimulationResult, run_dir: Path) -> str:
    path = run_dir / STATEMENTS_FILE
    if not path.is_file():
        return ""
    st = pd.read_csv(path)
    money = ["market_cents", "utility_cents", "imbalance_cents", "grid_fee_cents",
             "carbon_cents", "total_cents"]
    per = st.groupby("participant")[["metered_wh", "market_wh", "utility_wh", *money]].sum()
    per["metered_kwh"] = per.pop("metered_wh") / 1000
    per["market_kwh"] = per.pop("market_wh") / 1000
    per["utility_kwh"] = per.pop("utility_wh") / 1000
    for col in money:
        per[col.replace("_cents", "")] = per.pop(col) / 100
    labels = household_label(result.households["household"].to_numpy())
    engine = pd.Series(result.households["bill_p2p"].to_numpy(), index=labels)
    per["bill_in_simulation"] = engine.reindex(per.index)
    worst = float((per["total"] - per["bill_in_simulation"]).abs().max(skipna=True))
    per = per.reindex(sorted(per.index, key=lambda p: (not p.startswith("h"),
                                                       int(p[1:]) if p[1:].isdigit() else 0)))
    rows = "".join(
        f"<tr><th>{html.escape(str(p))}</th>" + "".join(f"<td>{_fmt(float(v))}</td>" for v in r)
        + "</tr>" for p, r in zip(per.index, per.to_numpy(), strict=True))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in per.columns)
    st_sum = result.settlement
    status = ("" if st_sum is None else
              f"<p>{st_sum.intervals} intervals settled in {st_sum.transfers:,} transfers; "
              f"statements reconciled with the ledger: "
              f"<b>{'yes' if st_sum.reconciled else 'NO'}</b>.</p>")
    return (f"<h2>Settlement</h2>{status}<p>Each participant's statement over the run "
            f"(energy in kWh, money in currency), summed from <code>{STATEMENTS_FILE}</code>, "
            f"from which anyone can recompute their bill; the ledger holds the same "
            f"transfers in integer cents and Wh (<code>transactive ledger verify</code> "
            f"re-checks it). Statement totals match the simulated bills to within "
            f"{worst:.2f} (cent rounding per interval).</p>"
            f"<table class='kv'><tr><th></th>{head}</tr>{rows}</table>")


SECTIONS: tuple[Section, ...] = (
    _summary_section, _prices_section, _energy_section, _grid_section, _battery_section,
    _bills_section, _fairness_section,
)

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}table.kv{border-collapse:collapse}
table.kv th{text-align:left;font-weight:normal;color:#444;padding:2px 18px 2px 0}
table.kv td{text-align:right;font-variant-numeric:tabular-nums;padding:1px 8px}
svg{max-width:100%;height:auto}"""


def render_report(result: SimulationResult, run_dir: str | PathLike[str] | None = None,
                  sections: tuple[Section, ...] = SECTIONS) -> str:
    """The report of ``result`` as one HTML document (with the settlement
    page when ``run_dir`` holds the run's statements)."""
    sc = result.scenario
    tl = sc.time.timeline()
    head = (f"<h1>transactive — {html.escape(sc.name)}</h1><p class='sub'>"
            f"{sc.community.households} households, {tl.days:g} days from "
            f"{tl.start:%Y-%m-%d %H:%M %z} at {tl.step_minutes}-minute intervals, "
            f"market design <b>{html.escape(sc.market.mechanism)}</b>, seed {sc.seed}</p>")
    body = "".join(section(result) for section in sections)
    if run_dir is not None:
        body += _settlement_section(result, Path(run_dir))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>transactive report — {html.escape(sc.name)}</title>"
            f"<style>{_CSS}</style></head><body>{head}{body}</body></html>")


def write_report(result: SimulationResult, run_dir: str | PathLike[str]) -> Path:
    """Write ``run_dir/report.html``."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(render_report(result, run_dir), encoding="utf-8")
    return path


_COMPARE_ROWS = (
    ("p2p_volume_kwh", "P2P traded (kWh)"), ("volume_weighted_price", "Volume-weighted price"),
    ("welfare", "Welfare at reported values"), ("self_sufficiency", "Self-sufficiency"),
    ("bill_p2p", "Bills with the market"), ("savings", "Community savings"),
    ("savings_share", "Savings share"), ("operator_surplus", "Operator surplus"),
    ("households_better_off", "Households better off"),
    ("households_worse_off", "Households worse off"), ("gini_of_gains", "Gini of gains"),
)


def render_comparison(runs: dict[str, SimulationResult]) -> str:
    """One HTML document comparing runs of the same community side by side."""
    first = next(iter(runs.values()))
    stats = {name: summary(r) for name, r in runs.items()}
    header = "".join(f"<th>{html.escape(n)}</th>" for n in runs)
    body = "".join(
        f"<tr><th>{label}</th>" + "".join(f"<td>{_fmt(stats[n][key])}</td>" for n in runs)
        + "</tr>" for key, label in _COMPARE_ROWS)
    table = f"<table class='kv'><tr><th></th>{header}</tr>{body}</table>"

    fig, ax = _figure()
    iv = _coarse(first.intervals)
    ax.step(iv["start"], iv["retail_price"], where="post", color=_COLORS["retail"], lw=0.8,
            label="retail")
    ax.step(iv["start"], iv["feed_in_price"], where="post", color=_COLORS["feed_in"], lw=0.8,
            label="feed-in")
    for name, r in runs.items():
        c = _coarse(r.intervals)
        ax.plot(c["start"], c["price"], ".", ms=2.5, label=name)
    ax.set_ylabel("price per kWh")
    ax.legend(loc="upper right", fontsize=8, ncol=2)

    fig2 = Figure(figsize=(10.0, 3.4), layout="constrained")
    ax1, ax2 = fig2.subplots(1, 2)
    names = list(runs)
    ax1.bar(names, [stats[n]["savings"] for n in names], color=_COLORS["p2p"])
    ax1.set_ylabel("community savings")
    ax1.tick_params(axis="x", labelrotation=30)
    for name, r in runs.items():
        fair = fair_share_gains(r.households["gain"])
        if fair is not None:
            x, y = lorenz_curve(fair)
            ax2.plot(x, y, label=f"{name} (Gini {gini(fair):.2f})")
    ax2.plot([0, 1], [0, 1], color="grey", lw=0.6, ls="--")
    ax2.set_xlabel("share of households")
    ax2.set_ylabel("share of total gain")
    ax2.legend(fontsize=8)
    sc = first.scenario
    head = (f"<h1>transactive — market designs compared</h1><p class='sub'>"
            f"{sc.community.households} households, {sc.time.days:g} days, seed {sc.seed}, "
            f"bidding strategy {html.escape(sc.market.strategy)}</p>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>transactive comparison</title><style>{_CSS}</style></head><body>{head}"
            f"<h2>Key figures</h2>{table}<h2>Prices</h2>{_svg(fig)}"
            f"<h2>Savings and who gained</h2>{_svg(fig2)}</body></html>")


def write_comparison(runs: dict[str, SimulationResult], out_dir: str | PathLike[str]) -> Path:
    """Write ``out_dir/comparison.html``."""
    path = Path(out_dir) / "comparison.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_comparison(runs), encoding="utf-8")
    return path
