"""The frame of a report page: style, plotly.js, the page's own small script
(draws the charts, redraws a chosen day's intervals, sorts, pages and
downloads tables), tables embedded as CSV, and number formats with units.

A table is a ``<div data-table="ID">`` and its CSV in a hidden
``<pre id="ID">``; the script renders it sortable (click a column), in pages
of 50 rows, with a link that downloads the CSV exactly as embedded.
A drill-down is a JSON payload of per-interval columns (``days``, ``start``
(first interval of each day, and the end), ``first_minute``, ``step_minutes``,
``columns``): choosing a day in its ``<select>`` or
clicking a daily point redraws every chart marked ``data-intraday`` from it.
"""

from __future__ import annotations

import html
import io
import math

import pandas as pd

from transactive.analysis._plotly import plotly_js

__all__ = ["csv_table", "fmt", "page"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}h1{margin-bottom:0}.sub{color:#555;margin-top:.2em}
table.kv,div.table table{border-collapse:collapse;font-size:14px}
table.kv th{text-align:left;font-weight:normal;color:#444;padding:2px 18px 2px 0}
table.kv td{text-align:right;font-variant-numeric:tabular-nums;padding:1px 8px}
table.kv tr.group th{font-weight:bold;color:#222;padding-top:.6em}
.warnings{border:2px solid #b2182b;background:#fdf0ef;padding:.5em 1em;margin:1em 0}
.warnings h2{color:#b2182b;margin:.2em 0}.ok{color:#1b7837}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em;
align-items:start}
div.table{max-height:640px;overflow:auto}div.table th{cursor:pointer;position:sticky;top:0;
background:#eee;padding:3px 8px;text-align:left}div.table td{padding:2px 8px;
border-bottom:1px solid #eee}div.table td.n{text-align:right;font-variant-numeric:tabular-nums}
.pager{margin:.4em 0}.pager button{margin-right:.4em}.note{color:#555;font-size:90%}"""

_SCRIPT = r"""(function () {
"use strict";
const config = {responsive: true, displaylogo: false};
for (const s of document.querySelectorAll('script[data-chart]')) {
  const spec = JSON.parse(s.textContent);
  Plotly.newPlot(document.getElementById(s.dataset.chart), spec.data, spec.layout, config);
}
const pad = (v) => String(v).padStart(2, "0");
for (const sel of document.querySelectorAll("select[data-days]")) {
  const P = JSON.parse(document.getElementById(sel.dataset.days).textContent);
  const show = function (d) {
    sel.value = String(d);
    const a = P.start[d], b = P.start[d + 1], x = [];
    for (let k = 0; k < b - a; k++) {
      const m = P.first_minute[d] + k * P.step_minutes;
      x.push(P.days[d] + " " + pad(Math.floor(m / 60)) + ":" + pad(m % 60));
    }
    for (const div of document.querySelectorAll("[data-intraday]")) {
      const xs = [], ys = [];
      for (const tr of div.data) { xs.push(x); ys.push(P.columns[tr.meta].slice(a, b)); }
      Plotly.restyle(div, {x: xs, y: ys});
      Plotly.relayout(div, {"xaxis.autorange": true, "yaxis.autorange": true});
    }
    for (const span of document.querySelectorAll(".day-label")) span.textContent = P.days[d];
  };
  sel.addEventListener("change", () => show(Number(sel.value)));
  for (const div of document.querySelectorAll("[data-daily]")) {
    div.on("plotly_click", (ev) => show(ev.points[0].pointIndex));
  }
}
function parseCsv(text) {
  const rows = []; let row = [], f = "", q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') { if (text[i + 1] === '"') { f += '"'; i++; } else q = false; }
      else f += c;
    } else if (c === '"') q = true;
    else if (c === ",") { row.push(f); f = ""; }
    else if (c === "\n") { row.push(f); rows.push(row); row = []; f = ""; }
    else if (c !== "\r") f += c;
  }
  if (f !== "" || row.length) { row.push(f); rows.push(row); }
  return rows;
}
for (const box of document.querySelectorAll("div[data-table]")) {
  const text = document.getElementById(box.dataset.table).textContent;
  const all = parseCsv(text), head = all[0], body = all.slice(1), size = 50;
  const numeric = head.map((_, j) => body.every((r) => r[j] === "" || !isNaN(Number(r[j]))));
  let page = 0, key = -1, dir = 1;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
  link.download = box.dataset.file; link.textContent = "download CSV (" + body.length + " rows)";
  const pager = document.createElement("div"); pager.className = "pager";
  const table = document.createElement("table");
  box.before(pager); box.append(table);
  const draw = function () {
    const pages = Math.max(1, Math.ceil(body.length / size));
    page = Math.min(Math.max(page, 0), pages - 1);
    const rows = body.slice(page * size, (page + 1) * size);
    table.innerHTML = "";
    const tr = table.createTHead().insertRow();
    head.forEach((h, j) => {
      const th = document.createElement("th");
      th.textContent = h + (j === key ? (dir > 0 ? " \u25b2" : " \u25bc") : "");
      th.title = "sort by " + h;
      th.onclick = () => {
        dir = key === j ? -dir : 1; key = j;
        body.sort((r, s) => dir * (numeric[j] ? Number(r[j]) - Number(s[j])
                                              : r[j].localeCompare(s[j])));
        page = 0; draw();
      };
      tr.append(th);
    });
    const tb = table.createTBody();
    for (const r of rows) {
      const row = tb.insertRow();
      r.forEach((v, j) => { const td = row.insertCell(); td.textContent = v;
                            if (numeric[j]) td.className = "n"; });
    }
    pager.innerHTML = "";
    const prev = document.createElement("button"), next = document.createElement("button");
    prev.textContent = "\u2039 previous"; next.textContent = "next \u203a";
    prev.onclick = () => { page--; draw(); }; next.onclick = () => { page++; draw(); };
    prev.disabled = page === 0; next.disabled = page >= pages - 1;
    const info = document.createElement("span");
    info.textContent = " rows " + (body.length ? page * size + 1 : 0) + "\u2013" +
      Math.min((page + 1) * size, body.length) + " of " + body.length + " \u00b7 ";
    pager.append(prev, next, info, link);
  };
  draw();
}
})();"""


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body``, with plotly.js and the page's script."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>{plotly_js()}</head>"
            f"<body>{body}<script>{_SCRIPT}</script></body></html>")


def csv_table(table_id: str, frame: pd.DataFrame, filename: str) -> str:
    """``frame`` as an interactive table (sortable, paged, downloadable as
    ``filename``); the CSV is embedded as written by pandas, so it reads back
    with :func:`pandas.read_csv`."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return (f'<pre hidden id="{table_id}">{html.escape(buf.getvalue())}</pre>'
            f'<div class="table" data-table="{table_id}" '
            f'data-file="{html.escape(filename)}"></div>')


def fmt(value: object, kind: str, currency: str = "") -> str:
    """A figure as text with its unit; ``None`` or a non-finite number as a dash.

    ``kind`` is one of ``count, kwh, kw, kh, money, price, share, ratio, number, text``.

    Examples
    --------
    >>> fmt(1234.567, "kwh"), fmt(0.2345678, "price", "EUR"), fmt(-3.5, "money", "EUR")
    ('1,234.6 kWh', '0.2346 EUR/kWh', '-3.50 EUR')
    >>> fmt(0.287, "share"), fmt(None, "share"), fmt(1035, "count"), fmt(-1e-15, "money")
    ('28.7 %', '–', '1,035', '0.00')
    >>> fmt(365.0, "number"), fmt(2.5, "number")
    ('365', '2.5')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "text" or not isinstance(value, int | float):
        return html.escape(str(value))
    spec = _FORMATS.get(kind)
    if spec is None:
        raise ValueError(f"kind: unknown format {kind!r}")
    digits, template = spec
    scale = 100.0 if kind == "share" else 1.0
    v = round(scale * float(value), digits) + 0.0  # + 0.0: no "-0.00"
    return template.format(v=v, cur=currency).rstrip()


_FORMATS = {"count": (0, "{v:,.0f}"), "kwh": (1, "{v:,.1f} kWh"), "kw": (1, "{v:,.1f} kW"),
            "kh": (1, "{v:,.1f} K·h"),
            "money": (2, "{v:,.2f} {cur}"), "price": (4, "{v:,.4f} {cur}/kWh"),
            "share": (1, "{v:,.1f} %"), "ratio": (3, "{v:.3f}"), "number": (2, "{v:,g}")}
