"""The market of a simulation: one mechanism cleared interval after interval.

A :class:`MarketSession` gives every registered mechanism what the engine
knows and the scenario does not: the interval's tariff prices, its length, a
random stream, the feeder, and state carried from one interval to the next
(an AMM's pool). It also tells the engine who stands behind the quantity a
participant did not trade in the market:

- ``"utility"``: the household imports or exports it at the tariff (double
  auctions, the order book, an AMM);
- ``"curtailed"``: the mechanism cleared the whole feeder with the utility at
  the substation, so every buyer was served and an unsold offer is PV that
  was curtailed (the network market).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from transactive.clearing import Clearing
from transactive.errors import InputError, SolverError
from transactive.grid.network import Network
from transactive.markets import registry
from transactive.markets.amm import Pool, arbitrage_to_band
from transactive.orders import OrderBatch
from transactive.sim.scenario import ENGINE_OPTIONS, Scenario

__all__ = ["IntervalMarket", "MarketSession"]

@dataclass(frozen=True, eq=False)
class IntervalMarket:
    """One interval's clearing and what the engine needs to book it."""

    clearing: Clearing
    unmatched: Literal["utility", "curtailed"]
    counterparty_kwh: float
    """Energy the mechanism's own counterparty supplied (+) or took (-): an
    AMM's pool, or the substation of a network market; 0 for an auction."""
    utility_cost: float
    """What the market's counterparty paid the utility for ``counterparty_kwh``:
    the substation's energy in a network market, or an AMM pool's net energy
    settled at the tariff (its reserve is a book of credits, not storage, so
    the energy it hands out in an interval beyond what it took in comes from
    the utility at the retail price, and any excess goes back at the feed-in
    price). The operator (or the pool's providers) keeps
    ``payments - utility_cost``."""
    grid_import_kwh: float | None
    grid_export_kwh: float | None
    """The feeder's exchange at the substation as the network model saw it
    (losses included); None where the design has no network model."""


_LOT_KWH = 0.01
"""Lot size for mechanisms that trade whole units (McAfee): 10 Wh."""


class MarketSession:
    """Clears the scenario's mechanism every interval, carrying its state."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator,
                 household_node: npt.NDArray[np.int64], network: Network | None) -> None:
        market = scenario.market
        self.name = market.mechanism
        self._fn = registry.get(self.name)
        self._rng = rng
        self._node = household_node
        params = inspect.signature(self._fn).parameters
        self._takes = {name for name in ENGINE_OPTIONS if name in params}
        self._options: dict[str, Any] = dict(market.options)
        self._dt_h = scenario.time.timeline().dt_h
        self._pool: Pool | None = None
        if "pool" in self._takes:
            pool = market.pool
            self._pool = Pool.create(
                pool.energy_kwh_per_household * scenario.community.households,
                pool.energy_kwh_per_household * scenario.community.households
                * pool.opening_price_per_kwh,
                invariant=pool.invariant, fee=pool.fee, amplification=pool.amplification,
            )
        if "network" in self._takes:
            if network is None:
                raise InputError("grid.case", f"market design {self.name!r} needs a network")
            self._options["network"] = network
        if "kw_per_unit" in self._takes:
            self._options["kw_per_unit"] = scenario.grid.kw_per_unit
        if "unit_kwh" in params and "unit_kwh" not in self._options:
            self._options["unit_kwh"] = _LOT_KWH  # unit mechanisms trade kWh in lots
        # demand is shed at the value of lost load only where the feeder cannot
        # carry it (a second solve): the LP without shedding is smaller and faster
        self._shed_price = (scenario.grid.value_of_lost_load_per_kwh
                            if "shed_price" in self._takes else None)

    @property
    def pool(self) -> Pool | None:
        """The AMM's pool as it stands (None for other designs)."""
        return self._pool

    def clear(self, orders: OrderBatch, retail_price: float, feed_in_price: float
              ) -> IntervalMarket:
        """Clear one interval's orders (participant = household index); they
        arrive in a random order, each at its household's bus."""
        n = len(orders)
        arrival = self._rng.permutation(n).astype(np.float64)
        cols = {name: getattr(orders, name) for name in
                ("id", "participant", "side", "price", "quantity", "window_start", "window_end")}
        orders = OrderBatch._trusted(**cols, time=arrival, node=self._node[orders.participant])
        options = dict(self._options)
        if "rng" in self._takes:
            options["rng"] = self._rng
        if "dt_h" in self._takes:
            options["dt_h"] = self._dt_h
        if "import_price" in self._takes:
            options["import_price"] = retail_price
            options["export_price"] = feed_in_price
        if self._pool is not None:
            self._pool, _ = arbitrage_to_band(self._pool, feed_in_price, retail_price)
            options["pool"] = self._pool
        try:
            clearing = self._fn(orders, **options)
        except SolverError:
            if self._shed_price is None:
                raise
            clearing = self._fn(orders, **options, shed_price=self._shed_price)
        if self._pool is not None:
            self._pool = clearing.info["pool"]
        acc: npt.NDArray[np.float64] = clearing.accepted
        buy = orders.is_buy
        counterparty = float(acc[buy].sum() - acc[~buy].sum())
        if not self.utility_inside:
            cost = max(counterparty, 0.0) * retail_price - max(-counterparty, 0.0) * feed_in_price
            return IntervalMarket(clearing, "utility", counterparty, cost, None, None)
        info = clearing.info
        return IntervalMarket(clearing, "curtailed", counterparty, float(info["utility_cost"]),
                              float(info["grid_import_kwh"]), float(info["grid_export_kwh"]))

    @property
    def utility_inside(self) -> bool:
        """Whether the utility trades inside the market (at the substation),
        so a seller's outside option is not the feed-in price but its own
        marginal cost."""
        return "network" in self._takes
