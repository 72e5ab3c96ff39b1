"""Settle a simulation interval by interval into the run folder's ledger.

Every interval's clearing and metered energy go through
:class:`~transactive.settlement.Settlement`: a hash-chained journal
(``journal.jsonl``) and a double-entry ledger (``settlement.sqlite``), one
durable commit per simulated day. After the run, the statements are
reconciled with the ledger.
The granularity (``settlement.granularity``) is ``"interval"`` (one group of
transfers per interval, each interval's clearing journaled) or ``"day"`` (each
household's transfers netted per day, the statements still one row per
household and interval; see :mod:`transactive.settlement.settle`); ``"auto"``
picks ``"day"`` for runs above :data:`DAY_GRANULARITY_ABOVE` household-intervals.
Statements are written day by day as each day commits, to ``statements.csv``
(``"interval"``) or, compact for long runs, ``statements.csv.gz`` (``"day"``:
the same CSV through one gzip stream, :mod:`transactive.settlement.statements`),
and the reconciliation is kept as running sums, so a run holds at most a day
of intervals in memory, however long it is.

What each household's meter reads is what it took from the grid: ``bought -
sold + imported - exported`` (curtailed PV is not metered). A design whose
counterparty is a pool or the substation (``amm``, ``network``) settles that
counterparty as one more participant, ``counterparty``: it sells in the
market what it supplied and buys it from the utility at the tariff, so the
market account keeps exactly the operator's surplus. An islanded interval
settles as a market in which every household trades its net position at the
island price. Carbon (``[carbon]``) is charged or credited in every statement:
the local emissions of what a household sold, the upstream marginal emissions
of its injection's effect on the feeder's losses (marginal loss factor x
marginal emission rate), and the emissions of what it imported, directly or
through the counterparty (shared among the interval's buyers pro rata); it
is the household's ``carbon_cost``, a line of its own beside the energy bill.
Each line of a household is rounded by its running total
(:mod:`transactive.settlement.rules`), so its statement stays within half a
cent of its exact bill, line by line, however long the run, and no rounding
moves money between households. The reconciliation holds each household's
statement against its simulated bill (``SettlementSummary.bills``).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.grid.network import Network
from transactive.orders import BUY, SELL, OrderBatch
from transactive.programs.carbon import CarbonPrices, carbon_costs
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Journal,
    Ledger,
    Settlement,
    SettlementConfig,
)
from transactive.settlement.rules import ExactAmounts, IntervalPrices, exact_amounts
from transactive.settlement.settle import Granularity
from transactive.sim.books import DayOutcome

__all__ = ["COUNTERPARTY", "DAY_GRANULARITY_ABOVE", "STATEMENTS_FILE", "STATEMENTS_GZ_FILE",
           "CarbonContext", "RunSettlement", "SettlementSummary", "household_label",
           "settlement_granularity", "statements_path"]

STATEMENTS_FILE = "statements.csv"
#: The statements of a run settled by day: the same CSV through one gzip stream.
STATEMENTS_GZ_FILE = "statements.csv.gz"
COUNTERPARTY = "counterparty"
#: ``granularity = "auto"`` nets per day above this many household-intervals.
DAY_GRANULARITY_ABOVE = 200_000
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SettlementSummary:
    """The outcome of a run's settlement."""

    intervals: int
    transfers: int
    reconciled: bool
    problems: tuple[str, ...]
    reconciliation: pd.DataFrame
    """One row per account: statements against the ledger (cents, Wh)."""
    bills: pd.DataFrame | None = None
    """One row per household (cents): its statements' energy bill against the
    simulated bill (see :class:`~transactive.settlement.settle.Reconciliation`)."""

    def figures(self) -> dict[str, int | bool | list[str]]:
        """The summary's figures (JSON-ready): intervals, transfers, reconciled, problems."""
        return {"intervals": self.intervals, "transfers": self.transfers,
                "reconciled": self.reconciled, "problems": list(self.problems)}


def settlement_granularity(granularity: str, household_intervals: int) -> Granularity:
    """``"interval"`` or ``"day"``: ``granularity`` itself, or for ``"auto"``
    ``"day"`` above :data:`DAY_GRANULARITY_ABOVE` household-intervals.

    Examples
    --------
    >>> settlement_granularity("auto", 50 * 672), settlement_granularity("auto", 1000 * 35040)
    ('interval', 'day')
    """
    if granularity == "auto":
        return "day" if household_intervals > DAY_GRANULARITY_ABOVE else "interval"
    if granularity not in ("interval", "day"):
        raise InputError("granularity", f"must be 'interval', 'day' or 'auto', "
                         f"got {granularity!r}")
    return "day" if granularity == "day" else "interval"


def statements_path(run_dir: str | Path) -> Path | None:
    """The statements file of a run folder (``statements.csv`` or
    ``statements.csv.gz``), or None if the run was not settled."""
    for name in (STATEMENTS_FILE, STATEMENTS_GZ_FILE):
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None


def household_label(index: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Participant labels of households in the ledger: ``h0``, ``h1``, ..."""
    return np.char.add("h", index.astype(str))


@dataclass(frozen=True, eq=False)
class CarbonContext:
    """What carbon pricing needs: the feeder (None: a copper plate, no loss
    effects), each household's bus, the interval length and feeder scale."""

    prices: CarbonPrices
    network: Network | None
    node: npt.NDArray[np.int64]
    dt_h: float
    kw_per_unit: float

    def charge(self, day: DayOutcome) -> None:
        """Set the day's carbon charge per household (``day.carbon_cost``, and
        its sum per interval in ``day.stats``): local emissions of what it
        sold, upstream emissions of its effect on losses, emissions of what it
        imported (programs.carbon), the loss factors of all the intervals
        from one stacked power flow. Energy the counterparty (pool or
        substation) drew upstream reached the buyers, so its emissions go to
        them pro rata to what they bought."""
        p = self.prices
        sold, imported, bought = day.sold_kwh, day.import_kwh, day.bought_kwh
        if p.price_per_kg == 0:
            cost = np.zeros_like(sold)
        elif self.network is None:
            cost = p.price_per_kg * (p.local_kg_per_kwh * sold + p.grid_kg_per_kwh * imported)
        else:
            cost = carbon_costs(self.network, self.node, sold - bought - imported + day.export_kwh,
                                sold, imported, dt_h=self.dt_h,
                                kw_per_unit=self.kw_per_unit, prices=p)
        supplied = day.stats["counterparty_kwh"]
        total = bought.sum(axis=1)
        upstream = (supplied > 1e-9) & (total > 0) & (p.price_per_kg > 0)
        share = np.divide(bought, total[:, None], out=np.zeros_like(bought),
                          where=upstream[:, None])
        day.carbon_cost = cost + p.price_per_kg * p.grid_kg_per_kwh * supplied[:, None] * share
        day.stats["carbon_cost"] = day.carbon_cost.sum(axis=1)


class RunSettlement:
    """Settles one run into ``run_dir`` (an empty folder: a fresh ledger,
    see :func:`~transactive.sim.rundir.prepare_run_dir`), at ``granularity``
    ``"interval"`` or ``"day"`` (see :func:`settlement_granularity`).

    Each interval's exact amounts are computed as it comes, with households
    by position (``h0``, ``h1``, ... and the counterparty aligned once per
    run); at the end of each day the day is rounded in one step and settled,
    durably, and its statement rows are appended to the statements file
    (``statements.csv``, or ``statements.csv.gz`` at ``"day"`` granularity),
    so no more than a day of intervals is held in memory.
    """

    def __init__(self, run_dir: str | Path, n_households: int, periods_per_day: int, *,
                 granularity: Granularity = "interval") -> None:
        self.run_dir = Path(run_dir)
        self.config = SettlementConfig(granularity=granularity, periods_per_day=periods_per_day)
        name = STATEMENTS_GZ_FILE if granularity == "day" else STATEMENTS_FILE
        self._stack = ExitStack()
        ledger = self._stack.enter_context(Ledger(self.run_dir / LEDGER_FILE))
        journal = self._stack.enter_context(Journal(self.run_dir / JOURNAL_FILE))
        self.settlement = Settlement(ledger, journal, config=self.config,
                                     statements=self.run_dir / name)
        self._stack.callback(self.settlement.close)
        self.labels = household_label(np.arange(n_households, dtype=np.int64))
        self._participants = np.append(self.labels, COUNTERPARTY)
        self._rows = np.arange(n_households, dtype=np.intp)
        self._rows_with_counterparty = np.arange(n_households + 1, dtype=np.intp)
        self.periods_per_day = periods_per_day
        self._day: list[ExactAmounts] = []
        self._clearings: list[Clearing | None] = []
        self._count = 0

    def day(self, out: DayOutcome, *, retail_price: FloatArray, feed_in_price: FloatArray,
            grid_fee_per_kwh: float = 0.0) -> None:
        """Settle the intervals of ``out`` (durable at the end of their day)."""
        for k in range(len(out)):
            self._interval(out, k, float(retail_price[k]), float(feed_in_price[k]),
                           grid_fee_per_kwh)

    def _interval(self, out: DayOutcome, k: int, retail_price: float, feed_in_price: float,
                  grid_fee_per_kwh: float) -> None:
        t = out.start + k
        clearing, at = self._settlement_clearing(out, k)
        metered = out.bought_kwh[k] - out.sold_kwh[k] + out.import_kwh[k] - out.export_kwh[k]
        assert out.carbon_cost is not None  # charged before settling
        carbon = out.carbon_cost[k]
        rows = self._rows
        if at is not None and (at == self.labels.size).any():  # the counterparty traded
            rows = self._rows_with_counterparty
            metered = np.append(metered, 0.0)
            carbon = np.append(carbon, 0.0)  # its emissions went to the buyers
        self._day.append(exact_amounts(
            t, clearing, at, rows, metered,
            IntervalPrices(retail_price, feed_in_price, grid_fee_per_kwh),
            carbon_cost=carbon, grid_fee=self.config.grid_fee,
            minor_per_unit=self.config.minor_per_unit))
        self._clearings.append(clearing)
        self._count += 1
        if (t + 1) % self.periods_per_day == 0:
            self._commit()

    def _commit(self) -> None:
        """Round and settle the intervals held (one durable commit)."""
        if self._day:
            self.settlement.settle_amounts(self._participants, self._day, self._clearings)
            self._day, self._clearings = [], []

    def _settlement_clearing(self, out: DayOutcome, k: int
                             ) -> tuple[Clearing | None, npt.NDArray[np.intp] | None]:
        """Row ``k``'s market with household labels (and the counterparty), and
        each order's participant by position (the counterparty after the households)."""
        c = None if out.clearings is None else out.clearings[k]
        price = float(out.stats["price"][k])
        if out.islanded[k] or c is None:
            # islanded (everyone trades its net at the island price), or a
            # clearing not kept: one order per household with its market position
            net = out.bought_kwh[k] - out.sold_kwh[k]
            rows = np.flatnonzero(np.abs(net) > 1e-9)
            if rows.size == 0 and out.islanded[k]:
                return None, None
            pay = out.paid[k] - out.received[k]
            cols = {"id": rows.astype(np.int64), "participant": self.labels[rows],
                    "side": np.where(net[rows] > 0, BUY, SELL).astype(np.int8),
                    "price": np.full(rows.size, price), "quantity": np.abs(net[rows])}
            accepted, unit, payment = np.abs(net[rows]), np.full(rows.size, price), pay[rows]
            mechanism = "island" if out.islanded[k] else "market"
            at = rows.astype(np.intp)
        else:
            o = c.orders
            at = o.participant.astype(np.intp)
            cols = {"id": o.id, "participant": self.labels[o.participant], "side": o.side,
                    "price": o.price, "quantity": o.quantity}
            accepted, unit, payment, mechanism = c.accepted, c.price, c.payment, c.mechanism
            price = c.clearing_price
        counterparty_kwh = float(out.stats["counterparty_kwh"][k])
        if abs(counterparty_kwh) > 1e-9 and not out.islanded[k]:
            utility_cost = float(payment.sum()) - float(out.stats["operator_surplus"][k])
            qty = abs(counterparty_kwh)
            cols = {"id": np.append(cols["id"], -1),
                    "participant": np.append(cols["participant"], COUNTERPARTY),
                    "side": np.append(cols["side"], SELL if counterparty_kwh > 0 else BUY),
                    "price": np.append(cols["price"], utility_cost / counterparty_kwh),
                    "quantity": np.append(cols["quantity"], qty)}
            accepted = np.append(accepted, qty)
            unit = np.append(unit, utility_cost / counterparty_kwh)
            payment = np.append(payment, -utility_cost)
            at = np.append(at, self.labels.size)
        orders = OrderBatch._trusted(**cols)
        return Clearing.from_allocation(mechanism, orders, accepted, unit, price,
                                        payment=payment), at

    def abandon(self) -> None:
        """Close the files without settling what is held (the run failed)."""
        self._stack.close()

    def close(self, bills: FloatArray) -> SettlementSummary:
        """Commit the last intervals, reconcile (the statements against the
        ledger, and against each household's simulated ``bills`` over the run),
        and close the files."""
        self._commit()
        rec = self.settlement.reconciliation(bills=pd.Series(bills, index=self.labels))
        self._stack.close()
        return SettlementSummary(self._count, self.settlement.tally.transfers, rec.is_ok,
                                 rec.problems, rec.table, rec.bills)
