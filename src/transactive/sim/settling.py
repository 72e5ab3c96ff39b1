"""Settle a simulation day by day into the run folder's ledger.

Each simulated day (:class:`~transactive.sim.books.DayOutcome`, arrays of
intervals x households) goes through
:class:`~transactive.settlement.Settlement` as one block of exact amounts
(:func:`~transactive.settlement.amounts.block_amounts`): a hash-chained
journal (``journal.jsonl``) and a double-entry ledger (``settlement.sqlite``),
one durable commit per simulated day. After the run, the statements are
reconciled with the ledger.
The granularity (``settlement.granularity``) is ``"interval"`` (one group of
transfers per interval, each interval's clearing journaled) or ``"day"`` (each
household's transfers netted per day, the statements still one row per
household and interval; see :mod:`transactive.settlement.settle`); ``"auto"``
picks ``"day"`` for runs above :data:`DAY_GRANULARITY_ABOVE` household-intervals.
A day settled by day is computed from the day's arrays alone, with no object
per interval or household (:meth:`~transactive.settlement.Settlement.settle_block`).
Statements are written day by day as each day commits, to ``statements.csv``
(``"interval"``) or, compact for long runs, ``statements.parquet`` (``"day"``:
one row group a day, :mod:`transactive.settlement.statements`; read either
with :func:`~transactive.settlement.statements.read_statements`), and the
reconciliation is kept as running sums, so a run holds at most a day of
intervals in memory, however long it is.

What each household's meter reads is what it took from the grid: ``bought -
sold + imported - exported`` (curtailed PV is not metered). A design whose
counterparty is a pool or the substation (``amm``, ``network``) settles that
counterparty as one more participant, ``counterparty``: it sells in the
market what it supplied (``stats["counterparty_kwh"]``) for what it paid the
utility, ``paid - received - operator_surplus`` summed over the households,
and buys it from the utility at the tariff, so the market account keeps
exactly the operator's surplus (with ``"interval"`` granularity that payment
is the journaled clearing's, the households' payments summed over their
orders). A household's market energy is ``bought - sold`` (one order per
household and interval; none under 1e-9 kWh) and its market payment ``paid -
received``. An islanded interval
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

from contextlib import ExitStack, suppress
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
from transactive.settlement.amounts import BlockAmounts, block_amounts
from transactive.settlement.operator import operator_key
from transactive.settlement.settle import Granularity
from transactive.settlement.statements import (
    STATEMENTS_FILE,
    STATEMENTS_GZ_FILE,
    STATEMENTS_PARQUET_FILE,
    read_statements,
    statements_path,
)
from transactive.sim.books import DayOutcome

__all__ = ["COUNTERPARTY", "DAY_GRANULARITY_ABOVE", "STATEMENTS_FILE", "STATEMENTS_GZ_FILE",
           "STATEMENTS_PARQUET_FILE", "CarbonContext", "RunSettlement", "SettlementDay",
           "SettlementSummary", "day_amounts", "household_label", "read_statements",
           "settlement_day", "settlement_granularity", "statements_path"]

COUNTERPARTY = "counterparty"
#: A market position smaller than this (kWh) is no trade.
_TRADE_KWH = 1e-9
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
    posted: pd.DataFrame | None = None
    """One row per participant, in order of first appearance: its statement
    lines summed over the run as written (cents and Wh, see
    :meth:`~transactive.settlement.reconcile.Tally.posted_frame`); None when
    read back from a results store."""

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


@dataclass(frozen=True, eq=False)
class SettlementDay:
    """What settlement needs of a simulated day, as plain arrays (intervals x
    participants: the households, then the counterparty): each one's metered
    and market energy (kWh), market payment and carbon charge (currency), who
    is settled in each interval (``present``), and the day's tariff."""

    start: int
    metered_kwh: FloatArray
    market_kwh: FloatArray
    payment: FloatArray
    carbon_cost: FloatArray
    present: npt.NDArray[np.bool_]
    retail_price: FloatArray
    feed_in_price: FloatArray
    grid_fee_per_kwh: float


def settlement_day(out: DayOutcome, *, retail_price: FloatArray, feed_in_price: FloatArray,
                   grid_fee_per_kwh: float = 0.0, utility_cost: FloatArray | None = None
                   ) -> SettlementDay:
    """The :class:`SettlementDay` of ``out`` (its carbon charged, see
    :meth:`CarbonContext.charge`): each household's meter and market position,
    and the counterparty selling what it supplied for what it paid the utility
    (``utility_cost`` per interval; default ``paid - received -
    operator_surplus`` summed over the households)."""
    if out.carbon_cost is None:
        raise InputError("carbon_cost", "charge the day's carbon before settling it")
    n_t, n = out.net_kwh.shape
    counterparty_kwh = np.asarray(out.stats["counterparty_kwh"], dtype=np.float64)
    with_counterparty = (np.abs(counterparty_kwh) > _TRADE_KWH) & ~out.islanded
    position = out.bought_kwh - out.sold_kwh
    traded = np.abs(position) > _TRADE_KWH
    if utility_cost is None:
        utility_cost = (out.paid.sum(axis=1) - out.received.sum(axis=1)
                        - out.stats["operator_surplus"])
    metered, market, payment, carbon = (np.zeros((n_t, n + 1)) for _ in range(4))
    metered[:, :n] = out.bought_kwh - out.sold_kwh + out.import_kwh - out.export_kwh
    market[:, :n] = np.where(traded, position, 0.0)
    payment[:, :n] = np.where(traded, out.paid - out.received, 0.0)
    carbon[:, :n] = out.carbon_cost  # the counterparty's emissions went to the buyers
    # the counterparty sells what it supplied (buys if negative) for what it paid
    market[:, n] = np.where(with_counterparty, -counterparty_kwh, 0.0)
    payment[:, n] = np.where(with_counterparty, -utility_cost, 0.0)
    present = np.ones((n_t, n + 1), dtype=bool)
    present[:, n] = with_counterparty
    return SettlementDay(out.start, metered, market, payment, carbon, present,
                         np.asarray(retail_price, dtype=np.float64),
                         np.asarray(feed_in_price, dtype=np.float64), float(grid_fee_per_kwh))


def day_amounts(day: SettlementDay, config: SettlementConfig) -> BlockAmounts:
    """The exact amounts of a day (:func:`~transactive.settlement.amounts.block_amounts`),
    as ``config`` settles them."""
    return block_amounts(day.start, day.metered_kwh, day.market_kwh, day.payment,
                         retail_price_per_kwh=day.retail_price,
                         feed_in_price_per_kwh=day.feed_in_price,
                         grid_fee_per_kwh=day.grid_fee_per_kwh, carbon_cost=day.carbon_cost,
                         present=day.present, grid_fee=config.grid_fee,
                         minor_per_unit=config.minor_per_unit)


class RunSettlement:
    """Settles one run into ``run_dir`` (an empty folder: a fresh ledger,
    see :func:`~transactive.sim.rundir.prepare_run_dir`), at ``granularity``
    ``"interval"`` or ``"day"`` (see :func:`settlement_granularity`).

    Each day's exact amounts are computed from the day's arrays at once, with
    households by position (``h0``, ``h1``, ... and the counterparty aligned
    once per run), rounded in one step and settled, durably, and its
    statement rows appended to the statements file (``statements.csv``, or
    ``statements.parquet`` at ``"day"`` granularity), so no more than a day of
    intervals is held in memory. Each day's journal records end with a
    checkpoint signed by the operator key in ``key_path`` (default: the local
    one, :func:`~transactive.settlement.operator.operator_key`), so the
    journal of a settled run is attested through its last record.
    """

    def __init__(self, run_dir: str | Path, n_households: int, periods_per_day: int, *,
                 granularity: Granularity = "interval",
                 key_path: str | Path | None = None) -> None:
        key = operator_key(key_path)
        self.run_dir = Path(run_dir)
        self.config = SettlementConfig(granularity=granularity, periods_per_day=periods_per_day)
        name = STATEMENTS_PARQUET_FILE if granularity == "day" else STATEMENTS_FILE
        self._stack = ExitStack()
        ledger = self._stack.enter_context(Ledger(self.run_dir / LEDGER_FILE))
        journal = self._stack.enter_context(Journal(self.run_dir / JOURNAL_FILE))
        self.settlement = Settlement(ledger, journal, config=self.config,
                                     statements=self.run_dir / name,
                                     concurrent=granularity == "day", operator=key)
        self._stack.callback(self.settlement.close)
        self.labels = household_label(np.arange(n_households, dtype=np.int64))
        self._participants = np.append(self.labels, COUNTERPARTY)
        self.periods_per_day = periods_per_day
        self._count = 0

    def day(self, out: DayOutcome, *, retail_price: FloatArray, feed_in_price: FloatArray,
            grid_fee_per_kwh: float = 0.0) -> None:
        """Settle the intervals of ``out`` (a day, or the rest of one), durably:
        ``retail_price`` and ``feed_in_price`` per interval, the grid fee per kWh
        bought in the market. The carbon charges must be set
        (:meth:`CarbonContext.charge`)."""
        clearings, utility_cost = None, None
        if self.config.granularity == "interval":  # small runs: journal each clearing
            clearings, utility_cost = self._journal_clearings(out)
        self.settle(settlement_day(out, retail_price=retail_price, feed_in_price=feed_in_price,
                                   grid_fee_per_kwh=grid_fee_per_kwh, utility_cost=utility_cost),
                    clearings)

    def settle(self, day: SettlementDay, clearings: list[Clearing | None] | None = None) -> None:
        """Settle a day's amounts (:func:`settlement_day`), durably; with
        ``"interval"`` granularity ``clearings`` are its journaled markets."""
        self.settle_block(day_amounts(day, self.config), clearings)

    def settle_block(self, block: BlockAmounts,
                     clearings: list[Clearing | None] | None = None) -> None:
        """:meth:`settle` of a day's exact amounts (:func:`day_amounts`)."""
        self.settlement.settle_block(self._participants, block, clearings)
        self._count += len(block)

    def _journal_clearings(self, out: DayOutcome
                           ) -> tuple[list[Clearing | None], FloatArray]:
        """Each interval's market as journaled (:meth:`_settlement_clearing`), and
        what the counterparty paid the utility in it (NaN where it did not trade)."""
        clearings, cost = [], np.full(len(out), np.nan)
        for k in range(len(out)):
            clearing, cost[k] = self._settlement_clearing(out, k)
            clearings.append(clearing)
        return clearings, cost

    def _settlement_clearing(self, out: DayOutcome, k: int) -> tuple[Clearing | None, float]:
        """Row ``k``'s market with household labels (and the counterparty as its
        last order), and what the counterparty paid the utility (NaN if it did
        not trade)."""
        c = None if out.clearings is None else out.clearings[k]
        price = float(out.stats["price"][k])
        if out.islanded[k] or c is None:
            # islanded (everyone trades its net at the island price), or a
            # clearing not kept: one order per household with its market position
            net = out.bought_kwh[k] - out.sold_kwh[k]
            rows = np.flatnonzero(np.abs(net) > _TRADE_KWH)
            if rows.size == 0 and out.islanded[k]:
                return None, float("nan")
            pay = out.paid[k] - out.received[k]
            cols = {"id": rows.astype(np.int64), "participant": self.labels[rows],
                    "side": np.where(net[rows] > 0, BUY, SELL).astype(np.int8),
                    "price": np.full(rows.size, price), "quantity": np.abs(net[rows])}
            accepted, unit, payment = np.abs(net[rows]), np.full(rows.size, price), pay[rows]
            mechanism = "island" if out.islanded[k] else "market"
        else:
            o = c.orders
            cols = {"id": o.id, "participant": self.labels[o.participant], "side": o.side,
                    "price": o.price, "quantity": o.quantity}
            accepted, unit, payment, mechanism = c.accepted, c.price, c.payment, c.mechanism
            price = c.clearing_price
        counterparty_kwh = float(out.stats["counterparty_kwh"][k])
        utility_cost = float("nan")
        if abs(counterparty_kwh) > _TRADE_KWH and not out.islanded[k]:
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
        orders = OrderBatch._trusted(**cols)
        return Clearing.from_allocation(mechanism, orders, accepted, unit, price,
                                        payment=payment), utility_cost

    def abandon(self) -> None:
        """Close the files without settling what is held (the run failed); a
        day still being committed ends first, and its error is not raised
        over the run's."""
        with suppress(Exception):
            self.settlement.wait()
        self._stack.close()

    def close(self, bills: FloatArray) -> SettlementSummary:
        """Reconcile (the statements against the ledger, and against each
        household's simulated ``bills`` over the run) and close the files."""
        rec = self.settlement.reconciliation(bills=pd.Series(bills, index=self.labels))
        tally = self.settlement.tally
        self._stack.close()
        return SettlementSummary(self._count, tally.transfers, rec.is_ok, rec.problems,
                                 rec.table, rec.bills, tally.posted_frame(sort=False))
