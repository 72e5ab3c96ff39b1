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

__all__ = ["DESIGN_HOURS", "IntervalMarket", "MarketSession", "feeder_scale"]

DESIGN_HOURS = 1500.0
"""Hours of use at the design load of a residential feeder: a feeder whose
customers use ``E`` kWh a year is designed for a peak of about ``E / 1500``
kW (the utilisation time, German *Benutzungsdauer*, of household load is
about 1,500 h a year)."""


def feeder_scale(kw_per_unit: float | None, network: Network | None,
                 community_annual_kwh: float) -> float | None:
    """How many kW on the feeder one simulated kW stands for.

    The simulated community stands for all of the feeder's customers,
    whatever its size: by default their yearly consumption, scaled, is the
    one the feeder's design load serves at :data:`DESIGN_HOURS`, so
    ``kw_per_unit = design_load_kw * DESIGN_HOURS / community_annual_kwh``.
    A scenario's ``grid.kw_per_unit`` overrides it; without a feeder it is None.

    Examples
    --------
    >>> from transactive.grid.cases import load_case
    >>> feeder = load_case("ieee33")                  # 3,715 kW design load
    >>> round(feeder_scale(None, feeder, 50 * 3500.0), 1), feeder_scale(12.0, feeder, 1.0)
    (31.8, 12.0)
    """
    if network is None:
        return None
    if kw_per_unit is not None:
        return kw_per_unit
    design_kw = float(network.bus_load_mw.sum()) * 1000.0
    if design_kw <= 0:
        raise InputError("grid.kw_per_unit", "the feeder has no load to scale the community "
                         "to; set grid.kw_per_unit")
    if community_annual_kwh <= 0:
        raise InputError("community.annual_kwh_mean", "the community uses no energy")
    return design_kw * DESIGN_HOURS / community_annual_kwh


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
    baseline_shortfall_kwh: npt.NDArray[np.float64] | None = None
    """Per order, what the utility-only baseline on the same feeder could not
    take or serve: PV curtailed (sell orders), load shed (buy orders); None
    where the design has no feeder (see :meth:`MarketSession.clear`)."""


_LOT_KWH = 0.01
"""Lot size for mechanisms that trade whole units (McAfee): 10 Wh."""


class MarketSession:
    """Clears the scenario's mechanism every interval, carrying its state."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator,
                 household_node: npt.NDArray[np.int64], network: Network | None, *,
                 kw_per_unit: float | None = None) -> None:
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
        self._pool_opening_value = 0.0
        if "pool" in self._takes:
            pool = market.pool
            energy_kwh = pool.energy_kwh_per_household * scenario.community.households
            money = energy_kwh * pool.opening_price_per_kwh
            self._pool = Pool.create(energy_kwh, money, invariant=pool.invariant, fee=pool.fee,
                                     amplification=pool.amplification)
            self._pool_opening_value = 2.0 * money  # energy at the opening price + money
        if "network" in self._takes:
            if network is None:
                raise InputError("grid.case", f"market design {self.name!r} needs a network")
            self._options["network"] = network
        if "kw_per_unit" in self._takes:
            if kw_per_unit is None:
                raise InputError("grid.kw_per_unit", f"market design {self.name!r} needs the "
                                 "feeder scale")
            self._options["kw_per_unit"] = kw_per_unit
        if "unit_kwh" in params and "unit_kwh" not in self._options:
            self._options["unit_kwh"] = _LOT_KWH  # unit mechanisms trade kWh in lots
        # demand is shed at the value of lost load only where the feeder cannot
        # carry it (a second solve): the LP without shedding is smaller and faster
        self._shed_price = (scenario.grid.value_of_lost_load_per_kwh
                            if "shed_price" in self._takes else None)

    def figures(self) -> dict[str, float]:
        """Run-level figures of the session: a pool's opening value."""
        return {"pool_opening_value": self._pool_opening_value} if self._pool else {}

    @property
    def pool(self) -> Pool | None:
        """The AMM's pool as it stands (None for other designs)."""
        return self._pool

    def clear(self, orders: OrderBatch, retail_price: float, feed_in_price: float
              ) -> IntervalMarket:
        """Clear one interval's orders (participant = household index); they
        arrive in a random order, each at its household's bus. A design that
        clears the whole feeder also reports the utility-only baseline's
        shortfall on it (:attr:`IntervalMarket.baseline_shortfall_kwh`)."""
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
        clearing = self._solve(orders, options)
        if self._pool is not None:
            self._pool = clearing.info["pool"]
        acc: npt.NDArray[np.float64] = clearing.accepted
        buy = orders.is_buy
        counterparty = float(acc[buy].sum() - acc[~buy].sum())
        if self._pool is None and not self.utility_inside:
            counterparty = 0.0  # a double auction has none: its sums differ by rounding only
        if not self.utility_inside:
            cost = max(counterparty, 0.0) * retail_price - max(-counterparty, 0.0) * feed_in_price
            return IntervalMarket(clearing, "utility", counterparty, cost, None, None)
        info = clearing.info
        return IntervalMarket(clearing, "curtailed", counterparty, float(info["utility_cost"]),
                              float(info["grid_import_kwh"]), float(info["grid_export_kwh"]),
                              self._baseline_shortfall(orders, clearing, options))

    def _solve(self, orders: OrderBatch, options: dict[str, Any]) -> Clearing:
        try:
            return self._fn(orders, **options)
        except SolverError:
            if self._shed_price is None:
                raise
            return self._fn(orders, **options, shed_price=self._shed_price)

    def _baseline_shortfall(self, orders: OrderBatch, clearing: Clearing,
                            options: dict[str, Any]) -> npt.NDArray[np.float64]:
        """Per order, what the utility-only baseline could not take or serve
        on the same feeder: PV it curtailed (sell orders) and load it shed
        (buy orders), kWh.

        Without a market every household exports its surplus at the feed-in
        price and imports its need at retail; the feeder's limits still
        bind. The baseline is the same feeder LP with every surplus offered
        at zero cost (the owner exports all it can) and every need served,
        so PV is curtailed only where a voltage or branch limit binds. When
        the market's own offers were all at zero (truthful sellers) its LP is
        that one, and its outcome is reused without a second solve.
        """
        sell = ~orders.is_buy
        if not (orders.price[sell] == 0.0).all():
            free = OrderBatch._trusted(
                id=orders.id, participant=orders.participant, side=orders.side,
                price=np.where(sell, 0.0, orders.price), quantity=orders.quantity,
                time=orders.time, node=orders.node)
            clearing = self._solve(free, options)
        return np.maximum(orders.quantity - clearing.accepted, 0.0)

    @property
    def utility_inside(self) -> bool:
        """Whether the utility trades inside the market (at the substation),
        so a seller's outside option is not the feed-in price but its own
        marginal cost."""
        return "network" in self._takes
