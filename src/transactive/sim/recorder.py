"""The results store: one embedded SQLite file per run, one table per record type.

``results.sqlite`` in a run folder holds:

==================== =========================================================
table                rows and columns
==================== =========================================================
run                  ``key, value``: ``scenario`` (JSON), ``version``,
                     ``figures`` (JSON: ``kw_per_unit``, a pool's
                     ``pool_opening_value``), ``settlement`` (JSON: intervals,
                     transfers, reconciled, problems; only for a settled run)
intervals            one per interval: ``interval, start`` (ISO 8601),
                     ``retail_price, feed_in_price`` (per kWh), ``price`` (the
                     market's price, at the substation for design 'network';
                     NULL without trade), ``volume_kwh`` (the mechanism's
                     volume), ``welfare, n_buy, n_sell, load_kwh, pv_kwh,
                     charge_kwh, discharge_kwh, soc_kwh`` (fleet total at the
                     end), ``bought_kwh, sold_kwh`` (households' purchases and
                     sales in the market), ``p2p_kwh`` (household to
                     household: the smaller of the two), ``buyer_payment,
                     seller_receipt, max_buyer_price``, ``import_kwh,
                     export_kwh`` (households' trade with the utility at the
                     tariff), ``operator_surplus`` (payments less what the
                     market paid the utility), ``counterparty_kwh`` (energy a
                     pool or the substation supplied inside the market),
                     ``curtailed_kwh, baseline_curtailed_kwh, unserved_kwh,
                     baseline_unserved_kwh``, ``grid_import_kwh,
                     grid_export_kwh`` (physical exchange at the community's
                     connection), ``utility_revenue, baseline_cost,
                     baseline_spending`` (the baseline's purchases at retail),
                     ``market_cost`` (sum of bills), ``carbon_cost``,
                     ``n_binding`` (binding network limits), ``islanded``,
                     ``draw_kwh, baseline_draw_kwh`` (the households' net draw
                     summed, before feeder losses: with the market, and with
                     the utility alone, devices on rules); with a network
                     market also ``vm_min_pu, vm_max_pu``
households           one per household: ``household, node, annual_kwh, pv_kw,
                     battery_kwh, battery_kw`` and run totals ``bill_market,
                     bill_baseline, carbon_cost, bought_kwh, sold_kwh,
                     import_kwh, export_kwh, load_kwh, pv_kwh, unserved_kwh,
                     curtailed_kwh, baseline_unserved_kwh,
                     baseline_curtailed_kwh``, the parts of its gain
                     ``purchase_gain, sale_gain, limits_gain, island_gain,
                     flexibility_gain``, ``gain`` (baseline - market) and
                     ``worse_off_reason``; with ``[vpp]`` also ``vpp_kwh``
                     (the aggregator's energy behind its meter),
                     ``vpp_payment`` (paid to it) and the part ``vpp_gain``
                     (the gain is then baseline - market - vpp_payment)
household_days       one per (day, household): the same totals per day
household_intervals  one per (interval, household): ``net_kwh, bought_kwh,
                     sold_kwh, soc_kwh``, ``meter_kwh`` (what its meter read:
                     bought - sold + import - export, after any load shed or
                     PV curtailed, plus any ``vpp_kwh``), ``baseline_meter_kwh`` (what it would
                     read with the utility alone) (record level
                     'households'/'orders')
orders               one per order: ``interval, id, household, side`` (+1 buy,
                     -1 sell), ``limit_price, quantity, accepted, price,
                     payment`` (record level 'orders')
nodes                one per (interval, bus) with a network market: ``bus``
                     (position), ``price`` (nodal price per kWh), ``vm_pu``
retail               with ``[retail]``: one per (month, retailer), ``month``
                     (from 1), ``retailer``, ``price_per_kwh, share,
                     expected_share, revenue, cost, profit`` (per month)
dr_events            with ``[demand_response]``: one per interval of an event
                     day, ``interval, event, in_event, baseline_kwh,
                     metered_kwh, counted_reduction_kwh`` (households summed)
vpp                  with ``[vpp]``: one per interval, ``interval,
                     price_per_kwh`` (day-ahead), the award made a day ahead
                     (``award_up_kwh, award_down_kwh``), what the aggregator
                     dispatched (``dispatched_up_kwh, dispatched_down_kwh``)
                     and the operator curtailed of it (``curtailed_kwh``),
                     ``revenue`` (the market's payment for it), ``margin``,
                     ``households_receipt``, and delivery against the award
                     (``delivered_kwh, shortfall_kwh, over_kwh, penalty``)
ev_departures        with EVs: one per departure, ``interval`` (the first the
                     car is away), ``household, soc_kwh`` (what it held),
                     ``required_kwh`` (what it needed)
reconciliation       a settled run's accounts: statements against the ledger
statement_bills      a settled run's households: statement energy bill against
                     the simulated bill, in cents
==================== =========================================================

Identities that hold in every interval: ``load + charge - pv - discharge =
import - export + counterparty - curtailed`` (energy; with ``[vpp]``, plus
the aggregator's ``vpp_kwh`` on the right) and ``market_cost =
operator_surplus + utility_revenue`` (money).

Money is in the tariff's currency, energy in kWh.
"""

from __future__ import annotations

import json
import sqlite3
from os import PathLike
from pathlib import Path

import pandas as pd

from transactive._version import __version__
from transactive.errors import InputError
from transactive.sim.result import SimulationResult
from transactive.sim.scenario import Scenario
from transactive.sim.settling import SettlementSummary

__all__ = ["RESULTS_FILE", "ResultsStore", "read_results", "write_results"]

RESULTS_FILE = "results.sqlite"
_TABLES = ("intervals", "households", "household_days", "household_intervals", "orders",
           "nodes", "retail", "dr_events", "vpp", "ev_departures")


def write_results(result: SimulationResult, run_dir: str | PathLike[str]) -> Path:
    """Write ``result`` to ``run_dir/results.sqlite`` (replacing an old one)."""
    store = ResultsStore(run_dir)
    try:
        store.write_tables(result)
        return store.finish(result)
    except BaseException:
        store.discard()
        raise


class ResultsStore:
    """``run_dir/results.sqlite`` written in two steps: the result tables
    (:meth:`write_tables`), then the run's metadata and settlement
    (:meth:`finish`, which puts the file in place, replacing an old one). A
    simulation writes its tables while its settlement settles the last days
    beside it. Until :meth:`finish` the store is a temporary file
    (:meth:`discard` removes it)."""

    def __init__(self, run_dir: str | PathLike[str]) -> None:
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / RESULTS_FILE
        self._tmp = self.path.with_suffix(".sqlite.tmp")
        self._tmp.unlink(missing_ok=True)
        self._con: sqlite3.Connection | None = sqlite3.connect(self._tmp)

    def write_tables(self, result: SimulationResult) -> None:
        """The result's tables (intervals, households, ...; those it has)."""
        con = self._open()
        with con:
            for name in _TABLES:
                frame = getattr(result, name)
                if frame is None:
                    continue
                if name == "intervals":
                    frame = frame.assign(start=frame["start"].map(pd.Timestamp.isoformat))
                _write_table(con, name, frame)

    def finish(self, result: SimulationResult) -> Path:
        """The run's metadata (scenario, version, figures) and settlement, and
        the file in place; the store's path."""
        con = self._open()
        with con:
            meta = {"scenario": result.scenario.model_dump_json(), "version": __version__,
                    "figures": json.dumps(dict(result.figures), sort_keys=True)}
            st = result.settlement
            if st is not None:
                meta["settlement"] = json.dumps(st.figures())
                st.reconciliation.to_sql("reconciliation", con, index=False)
                if st.bills is not None:
                    st.bills.to_sql("statement_bills", con, index=True,
                                    index_label="participant")
            pd.DataFrame({"key": list(meta), "value": list(meta.values())}).to_sql(
                "run", con, index=False)
        con.close()
        self._con = None
        self._tmp.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Close and remove the unfinished store."""
        if self._con is not None:
            self._con.close()
            self._con = None
        self._tmp.unlink(missing_ok=True)

    def _open(self) -> sqlite3.Connection:
        if self._con is None:
            raise RuntimeError("the results store is finished or discarded")
        return self._con


def _write_table(con: sqlite3.Connection, name: str, frame: pd.DataFrame) -> None:
    """``frame`` as table ``name``: the columns pandas would declare, the rows
    inserted from plain Python columns (pandas' own insert builds a tuple per
    row through its type checks, several times slower for a year's rows).
    NaN is stored as NULL, as pandas stores it."""
    frame.head(0).to_sql(name, con, index=False)
    if not len(frame):
        return
    columns = [frame[c].to_numpy().tolist() for c in frame.columns]
    marks = ", ".join("?" * len(columns))
    con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', zip(*columns, strict=True))


def read_results(run_dir: str | PathLike[str]) -> SimulationResult:
    """Read a run folder's results store back as frames."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise InputError("run_dir", f"no {RESULTS_FILE} in {run_dir}: not a run folder")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        try:
            meta = dict(con.execute("SELECT key, value FROM run").fetchall())
            scenario = Scenario.from_dict(json.loads(meta["scenario"]))
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            frames = {
                name: pd.read_sql_query(f"SELECT * FROM {name}", con) if name in names else None
                for name in _TABLES
            }
            figures = json.loads(meta.get("figures", "{}"))
            settlement = None
            if "settlement" in meta:
                st = json.loads(meta["settlement"])
                table = pd.read_sql_query("SELECT * FROM reconciliation", con)
                bills = (pd.read_sql_query("SELECT * FROM statement_bills", con,
                                           index_col="participant")
                         if "statement_bills" in names else None)
                settlement = SettlementSummary(st["intervals"], st["transfers"],
                                               st["reconciled"], tuple(st["problems"]), table,
                                               bills)
        except (sqlite3.DatabaseError, KeyError, json.JSONDecodeError) as exc:
            raise InputError("run_dir", f"{path} is not a readable results store: {exc}") from None
    intervals = frames["intervals"]
    assert intervals is not None
    tz = scenario.time.timeline().start.tz
    intervals["start"] = pd.to_datetime(intervals["start"], utc=True).dt.tz_convert(tz)
    return SimulationResult(
        scenario=scenario,
        intervals=intervals,
        households=frames["households"],  # type: ignore[arg-type]
        household_days=frames["household_days"],  # type: ignore[arg-type]
        household_intervals=frames["household_intervals"],
        orders=frames["orders"],
        nodes=frames["nodes"],
        retail=frames["retail"],
        dr_events=frames["dr_events"],
        vpp=frames["vpp"],
        ev_departures=frames["ev_departures"],
        settlement=settlement,
        figures=figures,
    )
