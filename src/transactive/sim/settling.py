"""Settle a simulation interval by interval into the run folder's ledger.

Every interval's clearing and metered energy go through
:class:`~transactive.settlement.Settlement`: a hash-chained journal
(``journal.jsonl``) and a double-entry ledger (``settlement.sqlite``), one
durable commit per simulated day. After the run, every household's statement
goes to ``statements.csv`` and the statements are reconciled with the ledger.
The granularity (``settlement.granularity``) is ``"interval"`` (one group of
transfers per interval, each interval's clearing journaled) or ``"day"`` (each
household's transfers netted per day, the statements still one row per
household and interval; see :mod:`transactive.settlement.settle`); ``"auto"``
picks ``"day"`` for runs above :data:`DAY_GRANULARITY_ABOVE` household-intervals.

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
from transactive.programs.carbon import CarbonPrices, carbon_lines
from transactive.settlement import (
    JOURNAL_FILE,
    LEDGER_FILE,
    Journal,
    Ledger,
    Settlement,
    SettlementConfig,
)
from transactive.settlement.settle import Granularity
from transactive.sim.books import IntervalOutcome

__all__ = ["COUNTERPARTY", "DAY_GRANULARITY_ABOVE", "STATEMENTS_FILE", "CarbonContext",
           "RunSettlement", "SettlementSummary", "household_label", "settlement_granularity"]

STATEMENTS_FILE = "statements.csv"
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

    def cost(self, out: IntervalOutcome) -> FloatArray:
        """Carbon charge per household: local emissions of what it sold,
        upstream emissions of its effect on losses, emissions of what it
        imported (programs.carbon). Energy the counterparty (pool or
        substation) drew upstream reached the buyers, so its emissions go to
        them pro rata to what they bought."""
        p = self.prices
        if p.price_per_kg == 0:
            return np.zeros(out.net_kwh.size)
        if self.network is None:
            kg = p.local_kg_per_kwh * out.sold_kwh + p.grid_kg_per_kwh * out.import_kwh
            cost = p.price_per_kg * kg
        else:
            metered = out.bought_kwh - out.sold_kwh + out.import_kwh - out.export_kwh
            cost = carbon_lines(self.network, self.node, -metered, out.sold_kwh,
                                out.import_kwh, dt_h=self.dt_h, kw_per_unit=self.kw_per_unit,
                                prices=p).cost
        supplied = float(out.stats.get("counterparty_kwh", 0.0))
        bought = out.bought_kwh.sum()
        if supplied > 1e-9 and bought > 0:  # upstream energy the buyers received
            cost = cost + (p.price_per_kg * p.grid_kg_per_kwh * supplied
                           * out.bought_kwh / bought)
        return cost


class RunSettlement:
    """Settles one run into ``run_dir`` (an empty folder: a fresh ledger,
    see :func:`~transactive.sim.rundir.prepare_run_dir`), at ``granularity``
    ``"interval"`` or ``"day"`` (see :func:`settlement_granularity`)."""

    def __init__(self, run_dir: str | Path, n_households: int, periods_per_day: int, *,
                 granularity: Granularity = "interval") -> None:
        self.run_dir = Path(run_dir)
        config = SettlementConfig(granularity=granularity, periods_per_day=periods_per_day)
        self._stack = ExitStack()
        ledger = self._stack.enter_context(Ledger(self.run_dir / LEDGER_FILE))
        journal = self._stack.enter_context(Journal(self.run_dir / JOURNAL_FILE))
        self.settlement = Settlement(ledger, journal, config=config)
        self.labels = household_label(np.arange(n_households, dtype=np.int64))
        self.periods_per_day = periods_per_day
        self._bills = np.zeros(n_households)
        self._batch: ExitStack | None = None
        self._count = 0

    def interval(self, t: int, out: IntervalOutcome, *, retail_price: float,
                 feed_in_price: float, grid_fee_per_kwh: float = 0.0) -> None:
        """Settle interval ``t`` (durable at the end of its day)."""
        if self._batch is None:
            self._batch = ExitStack()
            self._batch.enter_context(self.settlement.batch())
        clearing = self._settlement_clearing(t, out)
        metered = out.bought_kwh - out.sold_kwh + out.import_kwh - out.export_kwh
        participants: npt.NDArray[np.str_] = self.labels
        if clearing is not None and COUNTERPARTY in clearing.orders.participant:
            participants = np.append(self.labels, COUNTERPARTY)
            metered = np.append(metered, 0.0)
        self._bills += out.bill_market
        carbon = out.carbon_cost
        if participants.size > self.labels.size:
            carbon = np.append(carbon, 0.0)  # the counterparty's emissions went to the buyers
        self.settlement.settle_interval(
            t, clearing, participants, metered, retail_price_per_kwh=retail_price,
            feed_in_price_per_kwh=feed_in_price, grid_fee_per_kwh=grid_fee_per_kwh,
            carbon_cost=carbon)
        self._count += 1
        if (t + 1) % self.periods_per_day == 0:
            self._commit()

    def _commit(self) -> None:
        if self._batch is not None:
            batch, self._batch = self._batch, None
            batch.close()

    def _settlement_clearing(self, t: int, out: IntervalOutcome) -> Clearing | None:
        """The interval's market with household labels (and the counterparty)."""
        c = out.clearing
        if c is None:  # islanded: every household trades its net at the island price
            net = out.net_kwh
            rows = np.flatnonzero(np.abs(net) > 1e-9)
            if rows.size == 0:
                return None
            orders = OrderBatch._trusted(
                id=rows.astype(np.int64), participant=self.labels[rows],
                side=np.where(net[rows] > 0, BUY, SELL).astype(np.int8),
                price=np.full(rows.size, out.stats["price"]), quantity=np.abs(net[rows]))
            return Clearing.from_allocation("island", orders, np.abs(net[rows]),
                                            orders.price, out.stats["price"])
        o = c.orders
        cols = {"id": o.id, "participant": self.labels[o.participant], "side": o.side,
                "price": o.price, "quantity": o.quantity}
        accepted, price, payment = c.accepted, c.price, c.payment
        counterparty_kwh = float(out.stats.get("counterparty_kwh", 0.0))
        if abs(counterparty_kwh) > 1e-9:
            utility_cost = float(c.payment.sum()) - float(out.stats["operator_surplus"])
            qty = abs(counterparty_kwh)
            cols = {"id": np.append(o.id, -1), "participant": np.append(cols["participant"],
                                                                         COUNTERPARTY),
                    "side": np.append(o.side, SELL if counterparty_kwh > 0 else BUY),
                    "price": np.append(o.price, utility_cost / counterparty_kwh),
                    "quantity": np.append(o.quantity, qty)}
            accepted = np.append(accepted, qty)
            price = np.append(price, utility_cost / counterparty_kwh)
            payment = np.append(payment, -utility_cost)
        orders = OrderBatch._trusted(**cols)
        return Clearing.from_allocation(c.mechanism, orders, accepted, price,
                                        c.clearing_price, payment=payment)

    def close(self) -> SettlementSummary:
        """Commit, write the statements, reconcile, and close the files."""
        self._commit()
        self.settlement.write_statements(self.run_dir / STATEMENTS_FILE)
        rec = self.settlement.reconciliation(bills=pd.Series(self._bills, index=self.labels))
        self._stack.close()
        transfers = sum(len(done.transfers) for done in self.settlement.settled)
        return SettlementSummary(self._count, transfers, rec.is_ok, rec.problems,
                                 rec.table, rec.bills)
