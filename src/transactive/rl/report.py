"""The report of :func:`~transactive.rl.learn.learn`: one self-contained HTML
page (the analysis' page frame and charts, plotly.js inline) and a JSON summary.

The page shows the key figures (each bidder's mean profit per evaluation day
with its 95 % interval, the learned bidder's paired differences), the
learning curve (each training episode's profit, its moving average, and the
evaluated profits of the bidders that do not learn for reference), the
evaluation by bidder, and the first evaluation day interval by interval.
"""

from __future__ import annotations

import html
import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from transactive.analysis._page import fmt, page
from transactive.analysis._plotly import COLORS, chart, figure, values
from transactive.rl.learn import POLICIES, LearnResult

__all__ = ["render_learn_report", "write_learn_report"]

_COLOR = {"learned": COLORS["market"], "truthful": COLORS["feed_in"], "zic": COLORS["grey"]}


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    k = np.arange(1, x.size + 1)
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)


def _figures(s: dict[str, Any]) -> str:
    cur = s["currency"]
    rows = [("rivals", f"{s['households']} households, {s['rivals']} bids"),
            ("market", f"{s['mechanism']}, {s['steps_per_day']} intervals a day"),
            ("storage", f"{fmt(s['storage']['capacity_kwh'], 'kwh')}, "
                        f"{fmt(s['storage']['power_kw'], 'kw')}, one-way efficiency "
                        f"{s['storage']['efficiency']:g}"),
            ("training", f"{s['episodes']} days (episodes), seed {s['seed']}; mean profit "
                         f"{fmt(s['training']['first_mean_return'], 'money', cur)} in the first "
                         f"{s['training']['episodes_averaged']}, "
                         f"{fmt(s['training']['last_mean_return'], 'money', cur)} in the last"),
            ("evaluation", f"{s['evaluation_days']} seeded days, the same for every bidder")]
    for name, ci in s["profit_per_day"].items():
        rows.append((f"profit per day: {name}", _with_ci(ci, cur)))
    for name, ci in s["learned_minus"].items():
        rows.append((f"learned minus {name} (paired)", _with_ci(ci, cur)))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<h2>Key figures</h2><table class='kv'>{body}</table>"


def _with_ci(ci: dict[str, Any], cur: str) -> str:
    if ci["ci_low"] is None:
        return fmt(ci["mean"], "money", cur)
    return (f"{fmt(ci['mean'], 'money', cur)} (95 % interval {fmt(ci['ci_low'], 'money', cur)}"
            f" to {fmt(ci['ci_high'], 'money', cur)})")


def _learning_curve(result: LearnResult, s: dict[str, Any]) -> str:
    returns = result.training.episode_return
    episode = np.arange(1, returns.size + 1)
    window = max(1, returns.size // 20)
    traces: list[Any] = [
        go.Scatter(x=episode.tolist(), y=values(returns, 4), mode="markers", name="episode",
                   marker={"color": COLORS["grey"], "size": 4}),
        go.Scatter(x=episode.tolist(), y=values(_moving_average(returns, window), 4),
                   mode="lines", name=f"moving average ({window})",
                   line={"color": _COLOR["learned"], "width": 2})]
    for name in POLICIES[1:]:
        mean = s["profit_per_day"][name]["mean"]
        traces.append(go.Scatter(x=[1, int(returns.size)], y=values([mean, mean], 4),
                                 mode="lines", name=f"{name} (evaluated)",
                                 line={"color": _COLOR[name], "dash": "dash"}))
    fig = figure(traces, y_title=f"profit per day ({s['currency']})", x_title="training episode",
                 hovermode="closest")
    return "<h2>Learning curve</h2>" + chart(fig, "learning-curve")


def _evaluation(s: dict[str, Any]) -> str:
    names = list(s["profit_per_day"])
    ci = [s["profit_per_day"][n] for n in names]
    mean = [c["mean"] for c in ci]
    plus = [np.nan if c["ci_high"] is None else c["ci_high"] - c["mean"] for c in ci]
    bar = go.Bar(x=names, y=values(mean, 4), marker={"color": [_COLOR[n] for n in names]},
                 error_y={"type": "data", "array": values(plus, 4), "visible": True},
                 name="mean profit per day")
    fig = figure([bar], y_title=f"profit per day ({s['currency']})", x_title="bidder",
                 hovermode="closest", showlegend=False)
    return "<h2>Evaluation (95 % intervals)</h2>" + chart(fig, "evaluation")


def _day(result: LearnResult, s: dict[str, Any]) -> str:
    steps = list(range(result.steps_per_day))
    price = go.Figure()
    traded = []
    for name in POLICIES:
        day = result.day[name]
        price.add_trace(go.Scatter(x=steps, y=values(np.array(day["price_per_kwh"], float), 4),
                                   mode="lines", name=name, line={"color": _COLOR[name]}))
        traded.append(go.Bar(x=steps, y=values(np.array(day["traded_kwh"], float), 3),
                             name=name, marker={"color": _COLOR[name]}))
    price_fig = figure(list(price.data), y_title=f"clearing price ({s['currency']}/kWh)",
                       x_title="interval of the day")
    traded_fig = figure(traded, y_title="bought (+) / sold (-), kWh",
                        x_title="interval of the day", barmode="group")
    return ("<h2>The first evaluation day</h2><p class='note'>The market's clearing price "
            "with each bidder in the storage owner's seat, and what it traded.</p>"
            f"<div class='grid2'>{chart(price_fig, 'day-price')}"
            f"{chart(traded_fig, 'day-traded')}</div>")


def render_learn_report(result: LearnResult) -> str:
    """The report page of ``result`` (the same result gives the same bytes,
    but for the training time)."""
    s = result.summary()
    title = f"Learning to bid: {s['scenario']}"
    body = (f"<h1>{html.escape(title)}</h1><p class='sub'>A tabular Q-learning storage "
            f"owner against bidders that do not learn, in the community's "
            f"{html.escape(s['mechanism'])} market; trained in "
            f"{s['elapsed_s']:.1f} s.</p>"
            + _figures(s) + _learning_curve(result, s) + _evaluation(s) + _day(result, s))
    return page(title, body)


def write_learn_report(result: LearnResult, out_dir: str | PathLike[str]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` into ``out_dir`` (made if
    missing); their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.html"
    report.write_text(render_learn_report(result), encoding="utf-8")
    summary = folder / "summary.json"
    summary.write_text(json.dumps(result.summary(), indent=2, allow_nan=False) + "\n",
                       encoding="utf-8")
    return report, summary
