"""The trial's evaluation, written into the data folder when the exchange stops:
``trial_report.json`` (every figure) and ``trial_report.html`` (the same, to read)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from transactive.server.exchange import Exchange
from transactive.server.views import evaluation

__all__ = ["write_trial_report"]


def write_trial_report(ex: Exchange, now_ms: int) -> Path:
    """Write the evaluation; returns the HTML file's path."""
    data = evaluation(ex, now_ms)
    folder = ex.data_dir
    (folder / "trial_report.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    page = folder / "trial_report.html"
    page.write_text(_html(data), encoding="utf-8")
    return page


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(data: dict[str, Any]) -> str:
    s = data["summary"]
    figures = [{"figure": k, "value": v} for k, v in s.items()]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>transactive trial evaluation</title><style>
body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:2px 8px}}
td{{text-align:right}}</style></head><body>
<h1>Trial evaluation</h1>
<p>Journal records: {data['journal_records']}; state hash <code>{data['state_hash']}</code>.
The exchange's own accounts hold {data['exchange_money_cents']} cents and
{data['exchange_energy_wh']} Wh (what a mechanism kept or rounding left).</p>
<h2>Figures</h2>{_table(figures)}
<h2>Members</h2>{_table(data['members'])}
<h2>Halts of the circuit breaker</h2>{_table(data['halts'])}
<h2>Differentially private releases</h2>{_table(data['releases'])}
</body></html>"""
