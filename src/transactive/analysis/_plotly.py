"""Plotly charts in a self-contained HTML page.

A chart is an empty ``<div class="chart">`` followed by its figure as JSON in a
``<script type="application/json" data-chart="DIV_ID">``; the page's script
(:mod:`transactive.analysis._page`) draws every one of them with plotly.js,
which the page carries once, inline, from the installed ``plotly`` package (no
network). The JSON is written with sorted keys and values rounded to a stated
number of digits, and div ids are given by the caller, so the same run gives
the same bytes.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

__all__ = ["COLORS", "chart", "dumps", "figure", "json_script", "plotly_js", "values"]

COLORS = {"market": "#1b7837", "retail": "#b2182b", "feed_in": "#2166ac", "pv": "#e08214",
          "load": "#4d4d4d", "import": "#d6604d", "export": "#4393c3", "soc": "#762a83",
          "counterparty": "#8c6bb1", "curtailed": "#fdb863", "unserved": "#67001f",
          "buyer": "#5aae61", "seller": "#9970ab", "device": "#35978f", "grey": "#999999"}


def values(data: npt.ArrayLike, digits: int) -> list[float | None]:
    """``data`` rounded to ``digits`` decimals as a JSON-ready list (NaN -> None).

    Examples
    --------
    >>> values([0.123456, float("nan"), 2], 3)
    [0.123, None, 2.0]
    """
    arr = np.round(np.asarray(data, dtype=np.float64), digits) + 0.0  # no -0.0
    out: list[float | None] = arr.tolist()
    if np.isnan(arr).any():
        out = [None if m else v for v, m in zip(out, np.isnan(arr).tolist(), strict=True)]
    return out


def dumps(obj: Any) -> str:
    """Strict JSON with sorted keys, safe inside a ``<script>`` element.

    Examples
    --------
    >>> dumps({"b": 1, "a": "</script>"})
    '{"a":"<\\\\/script>","b":1}'
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/")


def figure(traces: list[Any], *, y_title: str, x_title: str = "", height: int = 340,
           hovermode: str | bool = "x unified", **layout: Any) -> go.Figure:
    """A figure with the house layout: titled axes, legend on top, hover
    reading every trace at the pointer's x."""
    fig = go.Figure(data=traces)
    fig.update_layout(
        height=height, hovermode=hovermode, margin={"l": 70, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        font={"family": "system-ui, sans-serif", "size": 12},
        xaxis={"title": {"text": x_title}}, yaxis={"title": {"text": y_title}})
    fig.update_layout(layout)  # merged into the defaults, axis by axis
    return fig


def chart(fig: go.Figure, div_id: str, **attrs: str) -> str:
    """The HTML of ``fig``: an empty div (extra ``data-*`` attributes from
    ``attrs``, underscores as dashes) and the figure's JSON."""
    spec = fig.to_plotly_json()
    spec["layout"].pop("template", None)
    extra = "".join(f' data-{k.replace("_", "-")}="{html.escape(v)}"'
                    for k, v in sorted(attrs.items()))
    height = int(spec["layout"].get("height", 340))
    return (f'<div class="chart" id="{div_id}" style="height:{height}px"{extra}></div>'
            f'<script type="application/json" data-chart="{div_id}">'
            f'{dumps({"data": spec["data"], "layout": spec["layout"]})}</script>')


def json_script(div_id: str, obj: Any) -> str:
    """``obj`` embedded as JSON for the page's script to read."""
    return f'<script type="application/json" id="{div_id}">{dumps(obj)}</script>'


def plotly_js() -> str:
    """plotly.js from the installed ``plotly`` package, inline."""
    return f"<script>{get_plotlyjs()}</script>"
