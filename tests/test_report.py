"""The HTML report: one offline file, deterministic, every chart with data,
figures with units, long runs by day with drill-down, tables that round-trip."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from transactive.analysis.metrics import summary
from transactive.analysis.report import (
    KEY_FIGURES,
    household_table,
    render_comparison,
    render_report,
    write_report,
)
from transactive.sim import Scenario, read_results, simulate

_VOID = {"meta", "br", "input", "img", "hr", "link", "col", "area", "base", "wbr", "source"}


class _Page(HTMLParser):
    """Collects what the tests look at and checks that every element closes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.charts: list[str] = []
        self.specs: dict[str, dict] = {}
        self.json: dict[str, object] = {}
        self.text: dict[str, str] = {}  # text of elements with an id
        self.scripts = 0
        self._capture: tuple[str, str] | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "div" and a.get("class") == "chart":
            self.charts.append(a["id"])
        if tag == "script":
            self.scripts += 1
            if "data-chart" in a:
                self._capture = ("chart", a["data-chart"])
            elif a.get("type") == "application/json":
                self._capture = ("json", a["id"])
        elif "id" in a and tag == "pre":
            self._capture = ("text", a["id"])
        self._buf = []
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_data(self, data):
        self._buf.append(data)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if self._capture and tag in ("script", "pre"):
            kind, key = self._capture
            text = "".join(self._buf)
            if kind == "chart":
                self.specs[key] = json.loads(text)
            elif kind == "json":
                self.json[key] = json.loads(text)
            else:
                self.text[key] = text
            self._capture = None


def _parse(doc: str) -> _Page:
    p = _Page()
    p.feed(doc)
    p.close()
    assert not p.errors, p.errors[:3]
    assert not p.stack, p.stack[-3:]
    return p


def _scenario(**over):
    base = {"community": {"households": 12}, "time": {"days": 2}, "seed": 3,
            "market": {"mechanism": "network"}}
    return Scenario.from_dict(base).with_overrides(**over)


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "r"
    result = simulate(_scenario(), run_dir=folder)
    return result, folder


def _trace_has_data(trace: dict) -> bool:
    for key in ("y", "x", "values", "median", "measure"):
        v = trace.get(key)
        if isinstance(v, list) and any(x is not None for x in v):
            return True
    return False


def test_one_offline_file_one_bundle_every_chart_with_data(settled):
    result, folder = settled
    doc = render_report(result, folder)
    assert doc.count(get_plotlyjs()) == 1
    page = _parse(doc)
    assert not [u for u in page.urls if re.match(r"(https?:)?//", u)], page.urls
    assert "<script src" not in doc
    assert len(page.ids) == len(set(page.ids))
    assert len(page.charts) >= 10
    assert set(page.charts) == set(page.specs)
    for div, spec in page.specs.items():
        assert spec["data"], div
        assert all(_trace_has_data(t) for t in spec["data"]), div
    # units on every axis: each chart's value axis is titled, money and prices in EUR
    for div, spec in page.specs.items():
        if div == "feeder-map":
            colorbar = spec["data"][1]["marker"]["colorbar"]["title"]["text"]
            assert colorbar == "mean nodal price (EUR/kWh)"
            continue
        title = spec["layout"]["yaxis"]["title"]["text"]
        assert title, div
        if "price" in title or "bill" in title:
            assert "EUR" in title, (div, title)


def test_same_run_same_bytes_and_the_store_re_renders_it(settled):
    result, folder = settled
    first = render_report(result, folder)
    assert render_report(result, folder) == first
    assert render_report(read_results(folder), folder) == first


def test_key_figures_carry_units_and_agree_with_the_frames(settled):
    result, folder = settled
    page = _parse(render_report(result, folder))
    doc = render_report(result, folder)
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", doc))
    units = {"kwh": " kWh", "kw": " kW", "money": " EUR", "price": " EUR/kWh", "share": " %"}
    for _, figures in KEY_FIGURES:
        for _key, label, kind in figures:
            if label not in rows:  # a row shown only where its figure exists (devices)
                continue
            if kind in units and rows[label] != "–":
                assert rows[label].endswith(units[kind]), (label, rows[label])
    hh, iv = result.households, result.intervals
    savings = hh["bill_baseline"].sum() - hh["bill_market"].sum()
    assert rows["Savings (bills, utility only - with the market)"] == f"{savings:,.2f} EUR"
    share = 100 * iv["p2p_kwh"].sum() / iv["load_kwh"].sum()
    assert rows["Peer-to-peer share of consumption"] == f"{share:.1f} %"
    assert rows["Physical import at the connection"] == f"{iv['grid_import_kwh'].sum():,.1f} kWh"
    parts = page.specs["money-waterfall"]["data"][0]["y"]
    assert parts[-1] == 0  # the total bar is plotly's sum of the parts
    assert sum(parts) == pytest.approx(savings, abs=0.02)  # the parts explain the bills
    assert "not explained by the parts above" not in rows


def test_household_table_csv_round_trips(settled):
    result, folder = settled
    page = _parse(render_report(result, folder))
    back = pd.read_csv(io.StringIO(page.text["households-csv"]), keep_default_na=False)
    pd.testing.assert_frame_equal(back, household_table(result, "EUR"), check_dtype=False)
    hh = result.households
    network = result.scenario.grid.network()
    assert back["bus"].tolist() == network.bus_numbers[hh["node"]].tolist()
    assert np.allclose(back["gain_EUR"], hh["bill_baseline"] - hh["bill_market"], atol=0.006)
    assert np.allclose(back["bill_market_EUR"], hh["bill_market"], atol=0.005)
    worse = back["gain_EUR"] <= -0.02
    assert (back.loc[worse, "why_worse_off"] != "").all()
    assert (back.loc[back["gain_EUR"] >= 0, "why_worse_off"] == "").all()


def test_nodal_price_distribution_is_each_bus_quartiles(settled):
    result, folder = settled
    page = _parse(render_report(result, folder))
    box = page.specs["nodal-by-bus"]["data"][0]
    network = result.scenario.grid.network()
    nodes = result.nodes
    for i, bus in enumerate(box["x"]):
        pos = int(np.flatnonzero(network.bus_numbers == int(bus))[0])
        prices = np.sort(nodes.loc[nodes["bus"] == pos, "price"].to_numpy())
        assert box["upperfence"][i] == round(prices[-1], 4)
        assert box["lowerfence"][i] == round(prices[0], 4)
        assert box["median"][i] == pytest.approx(np.percentile(prices, 50), abs=6e-5)


def test_physical_flows_drawn_only_where_not_zero(settled):
    result, _ = settled
    iv = result.intervals
    assert iv["grid_import_kwh"].sum() > 0
    assert iv["grid_export_kwh"].sum() > 0

    def energy_traces(r):
        return [t["name"] for t in _parse(render_report(r)).specs["tsenergy"]["data"]]

    names = energy_traces(result)
    assert {"physical import at the connection", "physical export at the connection"} <= set(names)
    quiet = dataclasses.replace(result, intervals=iv.assign(grid_export_kwh=0.0, pv_kwh=0.0))
    names = energy_traces(quiet)
    assert "physical export at the connection" not in names
    assert "PV generation" not in names
    assert "physical import at the connection" in names


def test_nobody_gains_shows_no_gains_and_no_lorenz_curve():
    result = simulate(_scenario(**{"market.mechanism": "mcafee", "time.days": 1}))
    s = summary(result)
    assert s["households_better_off"] == s["households_worse_off"] == 0  # the premise
    doc = render_report(result)
    page = _parse(doc)
    assert "lorenz" not in page.specs
    assert "<b>No gains</b>" in doc
    assert re.search(r"<th>Gini of gains</th><td>no gains</td>", doc)


def _year(result):
    """``result``'s one day repeated for a year, starting a day later each time."""
    day = result.intervals
    n = len(day)
    days = 365
    start = pd.DatetimeIndex(day["start"])
    shifted = np.concatenate([start + pd.Timedelta(days=d) for d in range(days)])
    rng = np.random.default_rng(1)
    iv = pd.concat([day] * days, ignore_index=True)
    iv["interval"] = np.arange(n * days)
    iv["start"] = pd.DatetimeIndex(shifted).tz_convert(start.tz)
    traded = iv["price"].notna()
    iv.loc[traded, "price"] += rng.normal(0, 0.01, int(traded.sum()))  # days differ
    scenario = Scenario.from_dict({**result.scenario.model_dump(mode="json"),
                                   "time": {**result.scenario.time.model_dump(mode="json"),
                                            "days": days}})
    return dataclasses.replace(result, scenario=scenario, intervals=iv, nodes=None,
                               household_intervals=None, orders=None)


def test_a_year_is_drawn_by_day_with_a_drill_down_payload():
    one_day = simulate(Scenario.from_dict({"community": {"households": 5}, "time": {"days": 1},
                                           "market": {"mechanism": "uniform"}, "seed": 5}))
    year = _year(one_day)
    doc = render_report(year)
    assert len(doc) < 8_000_000  # plotly.js (4.8 MB) + a year's payload
    page = _parse(doc)
    payload = page.json["ts-payload"]
    iv = year.intervals
    assert len(payload["days"]) == 365
    assert payload["start"][-1] == len(iv)
    assert payload["step_minutes"] == 15
    daily = page.specs["tsprices-daily"]["data"]
    low, high = daily[0], daily[1]
    assert [t["name"] for t in daily[:2]] == ["market price, daily min", "market price, daily max"]
    assert len(high["x"]) == 365
    prices = payload["columns"]["price"]
    for d in (0, 100, 364):  # each day from the payload, by hand
        day = [p for p in prices[payload["start"][d]:payload["start"][d + 1]] if p is not None]
        assert high["y"][d] == pytest.approx(max(day), abs=1e-4)
        assert low["y"][d] == pytest.approx(min(day), abs=1e-4)
        assert high["x"][d] == f"{iv['start'].iloc[payload['start'][d]]:%Y-%m-%d}"
    intraday = page.specs["tsprices"]
    assert all(len(t["x"]) == 96 for t in intraday["data"])
    assert all(t["meta"] in payload["columns"] for t in intraday["data"])
    assert 'data-intraday="1"' in doc
    assert "<select data-days='ts-payload'>" in doc


def test_short_runs_show_intervals_without_payload(settled):
    result, _ = settled
    page = _parse(render_report(result))
    assert "ts-payload" not in page.json
    assert len(page.specs["tsprices"]["data"][0]["x"]) == len(result.intervals)


def test_comparison_one_row_per_design_side_by_side():
    runs = {m: simulate(_scenario(**{"market.mechanism": m, "time.days": 1}))
            for m in ("uniform", "mcafee")}
    doc = render_comparison(runs)
    assert doc == render_comparison(runs)
    assert doc.count(get_plotlyjs()) == 1
    page = _parse(doc)
    table = pd.read_csv(io.StringIO(page.text["comparison-csv"]))
    assert table["design"].tolist() == ["uniform", "mcafee"]
    assert {"p2p_kwh", "counterparty_kwh_in", "buyer_price_EUR_per_kwh", "savings_share_pct",
            "gini_gains"} <= set(table.columns)
    for name, r in runs.items():
        row = table.set_index("design").loc[name]
        hh = r.households
        assert row["savings_EUR"] == pytest.approx(
            hh["bill_baseline"].sum() - hh["bill_market"].sum(), abs=0.006)
        assert row["households_worse_off"] == int((hh["gain"] <= -0.01).sum())
    for div, spec in page.specs.items():
        assert all(_trace_has_data(t) for t in spec["data"]), div
    assert "No gains: mcafee" in doc


def test_write_report_writes_the_file(settled, tmp_path):
    result, _ = settled
    path = write_report(result, tmp_path)
    assert path.name == "report.html"
    assert path.read_text(encoding="utf-8").startswith(
        "<!DOCTYPE html>")


def test_settlement_page_has_the_reconciliation_line_and_the_statement_totals(settled):
    result, folder = settled
    doc = render_report(result, folder)
    assert "statements reconciled with the ledger: <b>yes</b>" in doc
    page = _parse(doc)
    table = pd.read_csv(io.StringIO(page.text["statements-csv"])).set_index("participant")
    rows = pd.read_csv(folder / "statements.csv")
    for label in ("h0", "h5"):
        mine = rows[rows["participant"] == label]
        assert table.loc[label, "total_EUR"] == pytest.approx(mine["total_cents"].sum() / 100)
        assert table.loc[label, "carbon_EUR"] == pytest.approx(mine["carbon_cents"].sum() / 100)
    bills = result.households.set_index("household")["bill_market"]
    assert table.loc["h5", "energy_EUR"] == pytest.approx(bills[5], abs=0.015)
    bare = _parse(render_report(result))  # no run folder: the line, no statements
    assert "statements-csv" not in bare.text
    assert "statements reconciled with the ledger: <b>yes</b>" in render_report(result)


def test_a_pools_providers_appear_in_the_money_flows():
    result = simulate(_scenario(**{"market.mechanism": "amm", "time.days": 1}))
    s = summary(result)
    spec = _parse(render_report(result)).specs["money-waterfall"]["data"][0]
    assert len(spec["x"]) == 4  # utility, operator, pool providers, savings
    pool = spec["x"][2]
    assert pool.endswith("loss" if s["pool_lp_pnl"] < 0 else "profit")
    assert spec["y"][2] == round(-s["pool_lp_pnl"], 2)
    hh = result.households
    assert sum(spec["y"]) == pytest.approx(hh["bill_baseline"].sum() - hh["bill_market"].sum(),
                                           abs=0.02)
