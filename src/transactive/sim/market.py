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

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from transactive.agents.strategies import net_orders
from transactive.clearing import Clearing
from transactive.errors import InputError, SolverError
from transactive.grid.network import Network
from transactive.markets import registry
from transactive.markets.amm import Pool, arbitrage_to_band
from transactive.markets.network import MeritOrderBlock, clear_network_merit
from transactive.orders import BUY, OrderBatch
from transactive.sim.scenario import ENGINE_OPTIONS, Scenario

FloatArray = npt.NDArray[np.float64]

__all__ = ["DESIGN_HOURS", "MIN_ORDER_KWH", "DayMarket", "IntervalMarket", "MarketSession",
           "feeder_scale"]

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


MIN_ORDER_KWH = 1e-6
"""A household whose net position is smaller places no order."""

_INTERVAL_FIGURES = ("price", "volume_kwh", "welfare", "operator_surplus", "counterparty_kwh",
                     "utility_cost", "grid_import_kwh", "grid_export_kwh", "max_buyer_price",
                     "n_buy", "n_sell", "n_binding")


@dataclass(eq=False)
class DayMarket:
    """The market's outcome in consecutive intervals: per household
    (intervals x households) what it bought, sold, paid and received, and
    what the utility-only baseline could not serve or take on the same feeder
    (zero without one); per interval the figures of :data:`_INTERVAL_FIGURES`
    (``operator_surplus`` after the counterparty's ``utility_cost``;
    ``grid_*`` NaN where the design has no network model)."""

    unmatched: Literal["utility", "curtailed"]
    bought: FloatArray
    sold: FloatArray
    paid: FloatArray
    received: FloatArray
    baseline_unserved: FloatArray
    baseline_curtailed: FloatArray
    figures: dict[str, FloatArray]
    node_price: FloatArray | None
    vm_pu: FloatArray | None
    clearings: list[Clearing | None] | None

    @classmethod
    def empty(cls, n_t: int, n: int, unmatched: Literal["utility", "curtailed"],
              n_bus: int | None, keep_clearings: bool) -> DayMarket:
        """A day with nothing cleared yet (figures NaN, arrays zero)."""
        def grid() -> FloatArray | None:
            return None if n_bus is None else np.full((n_t, n_bus), np.nan)

        z = [np.zeros((n_t, n)) for _ in range(6)]
        return cls(unmatched=unmatched, bought=z[0], sold=z[1], paid=z[2], received=z[3],
                   baseline_unserved=z[4], baseline_curtailed=z[5],
                   figures={name: np.full(n_t, np.nan) for name in _INTERVAL_FIGURES},
                   node_price=grid(), vm_pu=grid(),
                   clearings=[None] * n_t if keep_clearings else None)

    def accounts(self, *, imported: FloatArray, exported: FloatArray, unserved: FloatArray,
                 curtailed: FloatArray, baseline_net: FloatArray, baseline_unserved: FloatArray,
                 baseline_curtailed: FloatArray, retail: FloatArray, feed_in: FloatArray,
                 exchange: FloatArray, flexible: bool = False
                 ) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
        """Each household's bills and gain parts, and the figures per interval,
        from what it imported and exported at the tariff, had shed or curtailed,
        and its utility-only baseline (``baseline_net``: the net position it
        would have had, less what the baseline's feeder shed or curtailed); the
        retail and feed-in prices per interval; ``exchange``: the community's
        net import where the design has no network model. With ``flexible``
        the baseline ran other device schedules, and ``flexibility_gain`` is
        what the market's schedule saved at the tariff (else it is zero)."""
        r, f = retail[:, None], feed_in[:, None]
        need, spare = np.maximum(baseline_net, 0.0), np.maximum(-baseline_net, 0.0)
        served, sent = need - baseline_unserved, spare - baseline_curtailed  # in the baseline
        baseline = served * r - sent * f
        limits = (unserved - baseline_unserved) * r - (curtailed - baseline_curtailed) * f
        rows = {
            "bought_kwh": self.bought, "sold_kwh": self.sold, "paid": self.paid,
            "received": self.received, "import_kwh": imported, "export_kwh": exported,
            "bill_market": self.paid - self.received + imported * r - exported * f,
            "bill_baseline": baseline, "unserved_kwh": unserved, "curtailed_kwh": curtailed,
            "baseline_unserved_kwh": baseline_unserved,
            "baseline_curtailed_kwh": baseline_curtailed,
            "baseline_meter_kwh": served - sent,
            "purchase_gain": self.bought * r - self.paid,
            "sale_gain": self.received - self.sold * f, "limits_gain": limits,
            "flexibility_gain": baseline - (self.bought + imported) * r
            + (self.sold + exported) * f - limits if flexible else np.zeros_like(baseline),
        }
        fig = self.figures
        if self.unmatched == "curtailed":
            grid_import, grid_export = fig["grid_import_kwh"], fig["grid_export_kwh"]
        else:  # a copper plate
            grid_import, grid_export = np.maximum(exchange, 0.0), np.maximum(-exchange, 0.0)
        import_total, export_total = imported.sum(axis=1), exported.sum(axis=1)
        stats = {
            "price": fig["price"], "volume_kwh": fig["volume_kwh"], "welfare": fig["welfare"],
            "n_buy": fig["n_buy"], "n_sell": fig["n_sell"],
            "import_kwh": import_total, "export_kwh": export_total,
            "baseline_spending": served.sum(axis=1) * retail,
            "buyer_payment": self.paid.sum(axis=1), "seller_receipt": self.received.sum(axis=1),
            "max_buyer_price": fig["max_buyer_price"],
            "operator_surplus": fig["operator_surplus"],
            "counterparty_kwh": fig["counterparty_kwh"],
            "grid_import_kwh": grid_import, "grid_export_kwh": grid_export,
            "utility_revenue": import_total * retail - export_total * feed_in
            + fig["utility_cost"],
            "n_binding": fig["n_binding"],
            # the households' summed net draw before feeder losses, and the baseline's
            "draw_kwh": (self.bought - self.sold + imported - exported).sum(axis=1),
            "baseline_draw_kwh": rows["baseline_meter_kwh"].sum(axis=1),
        }
        return rows, stats

    def put(self, k: int, cleared: IntervalMarket) -> None:
        """Row ``k`` from one interval's clearing (participant = household index)."""
        c = cleared.clearing
        o, n = c.orders, self.bought.shape[1]
        buy, acc = o.side == BUY, c.accepted
        # per household, buyers' sums then sellers' (each in the orders' order)
        part = o.participant + n * ~buy
        self.bought[k], self.sold[k] = np.bincount(part, acc, 2 * n).reshape(2, n)
        self.paid[k], received = np.bincount(part, c.payment, 2 * n).reshape(2, n)
        self.received[k] = -received
        short = cleared.baseline_shortfall_kwh
        if short is not None:  # a design that clears the feeder reports the baseline's
            self.baseline_unserved[k], self.baseline_curtailed[k] = np.bincount(
                part, short, 2 * n).reshape(2, n)
        traded_buy = buy & (acc > 0)
        n_buy = int(np.count_nonzero(buy))
        row = {"price": c.clearing_price, "volume_kwh": c.volume, "welfare": c.welfare,
               "operator_surplus": c.operator_surplus - cleared.utility_cost,
               "counterparty_kwh": cleared.counterparty_kwh,
               "utility_cost": cleared.utility_cost,
               "grid_import_kwh": np.nan if cleared.grid_import_kwh is None
               else cleared.grid_import_kwh,
               "grid_export_kwh": np.nan if cleared.grid_export_kwh is None
               else cleared.grid_export_kwh,
               "max_buyer_price": float(c.price[traded_buy].max()) if traded_buy.any() else 0.0,
               "n_buy": n_buy, "n_sell": len(o) - n_buy,
               "n_binding": len(c.info.get("binding", ()))}
        for name, value in row.items():
            self.figures[name][k] = value
        vm = c.info.get("vm_pu")
        if vm is not None and self.node_price is not None and self.vm_pu is not None:
            self.node_price[k], self.vm_pu[k] = c.node_price, vm
        if self.clearings is not None:
            self.clearings[k] = c

    def put_merit(self, rows: npt.NDArray[np.bool_], quantity: FloatArray, limits: FloatArray,
                  node: npt.NDArray[np.int64], merit: MeritOrderBlock,
                  intervals: npt.NDArray[np.int64]) -> None:
        """The ``rows`` a network market cleared by merit order (one price
        everywhere, no limit binding, the baseline short of nothing)."""
        whole = bool(rows.all())  # the whole day: views in, the new arrays kept as they are
        at = slice(None) if whole else rows
        q, acc, price = quantity[at], merit.accepted[at], merit.price[at]
        buy, sell = q > 0, q < 0
        bought, sold = np.where(buy, acc, 0.0), np.where(sell, acc, 0.0)
        paid, received = price[:, None] * bought, price[:, None] * sold
        if whole:
            self.bought, self.sold, self.paid, self.received = bought, sold, paid, received
        else:
            self.bought[rows], self.sold[rows] = bought, sold
            self.paid[rows], self.received[rows] = paid, received
        volume, supplied = bought.sum(axis=1), sold.sum(axis=1)
        utility_cost = merit.utility_cost[rows]
        figures = {
            "price": price, "volume_kwh": volume,
            "welfare": (np.where(buy, acc, -acc) * limits[at]).sum(axis=1, where=buy | sell),
            "operator_surplus": price * (volume - supplied) - utility_cost,
            "counterparty_kwh": volume - supplied, "utility_cost": utility_cost,
            "grid_import_kwh": merit.grid_import_kwh[rows],
            "grid_export_kwh": merit.grid_export_kwh[rows],
            "max_buyer_price": np.where((bought > 0).any(axis=1), price, 0.0),
            "n_buy": buy.sum(axis=1), "n_sell": sell.sum(axis=1), "n_binding": 0.0}
        for name, values in figures.items():
            self.figures[name][rows] = values
        if self.node_price is not None and self.vm_pu is not None:
            self.node_price[rows] = price[:, None]
            self.vm_pu[rows] = merit.vm_pu[rows]
        if self.clearings is not None:
            households = np.arange(quantity.shape[1], dtype=np.int64)
            for k in np.flatnonzero(rows):
                o = net_orders(int(intervals[k]), quantity[k], households, limits[k],
                               min_kwh=MIN_ORDER_KWH)
                orders = OrderBatch._trusted(id=o.id, participant=o.participant, side=o.side,
                                             price=o.price, quantity=o.quantity,
                                             node=node[o.participant])
                self.clearings[k] = _merit_clearing(orders, merit.accepted[k, o.participant],
                                                    merit, int(k))


def _merit_clearing(orders: OrderBatch, accepted: FloatArray, merit: MeritOrderBlock,
                    k: int) -> Clearing:
    """Row ``k``'s clearing by merit order (``orders``: the row's orders, with
    their buses; ``accepted``: each one's), as :func:`clear_network` reports it."""
    price = float(merit.price[k])
    n_bus = merit.vm_pu.shape[1]
    info = {"model": "lindistflow", "grid_import_kwh": float(merit.grid_import_kwh[k]),
            "grid_export_kwh": float(merit.grid_export_kwh[k]),
            "losses_kwh": float(merit.losses_kwh[k]), "vm_pu": merit.vm_pu[k],
            "node_price_q": np.zeros(n_bus), "max_loading": float(merit.max_loading[k]),
            "binding": (), "utility_cost": float(merit.utility_cost[k]), "rent": 0.0,
            "background_payment": 0.0, "soc_gap": float("nan"), "exact": True,
            "solve_time_s": 0.0, "merit_order": True}
    return Clearing.from_allocation("network", orders, accepted, price, price,
                                    node_price=np.full(n_bus, price), info=info)


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
        self._network = network if "network" in self._takes else None
        self._merit = self.name == "network"  # where no limit binds: by merit order
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
        if "import_max_mw" in self._takes and network is not None:
            limit_kw = scenario.grid.import_limit_kw
            self._options["import_max_mw"] = (float(network.bus_load_mw.sum()) if limit_kw is None
                                              else limit_kw / 1000.0)
        if "inelastic_demand" in params and scenario.flexibility.control != "rules":
            # devices bid: demand is elastic at its limits (what must run bids
            # the value of lost load, see sim/flexday.py)
            self._options.setdefault("inelastic_demand", False)
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

    def clear(self, orders: OrderBatch, retail_price: float, feed_in_price: float, *,
              household: npt.NDArray[np.int64] | None = None, baseline: bool = True,
              fixed_kwh: FloatArray | None = None) -> IntervalMarket:
        """Clear one interval's orders (participant = household index, unless
        ``household`` gives each order's household); they arrive in a random
        order, each at its household's bus. A design that clears the whole
        feeder also reports the utility-only baseline's shortfall on it
        (:attr:`IntervalMarket.baseline_shortfall_kwh`), unless ``baseline`` is
        False (a caller that books its own baseline: a second solve saved);
        on it, ``fixed_kwh`` (per bus) is energy exchanged outside the market
        that the feeder carries (see :func:`~transactive.markets.network.clear_network`)."""
        n = len(orders)
        arrival = self._rng.permutation(n).astype(np.float64)
        cols = {name: getattr(orders, name) for name in
                ("id", "participant", "side", "price", "quantity", "window_start", "window_end")}
        at = self._node[orders.participant if household is None else household]
        orders = OrderBatch._trusted(**cols, time=arrival, node=at)
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
        if fixed_kwh is not None:
            options["fixed_kwh"] = fixed_kwh
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
                              self._baseline_shortfall(orders, clearing, options)
                              if baseline else None)

    def clear_day(self, intervals: npt.NDArray[np.int64], net_kwh: FloatArray,
                  limits: FloatArray, retail_price: FloatArray, feed_in_price: FloatArray, *,
                  keep_clearings: bool) -> DayMarket:
        """Clear several intervals: row ``k`` of ``net_kwh`` and ``limits``
        (intervals x households) is interval ``intervals[k]``, each household
        ordering its net position at its limit price (none below
        :data:`MIN_ORDER_KWH`). A network market clears the
        rows where no limit binds by merit order, all at once
        (:func:`~transactive.markets.network.clear_network_merit`), and the
        others one by one with :meth:`clear`, as every other design does.
        With ``keep_clearings`` every interval's :class:`Clearing` is kept."""
        n_t, n = net_kwh.shape
        day = DayMarket.empty(n_t, n, "curtailed" if self.utility_inside else "utility",
                              None if self._network is None else self._network.n_bus,
                              keep_clearings)
        quantity = np.where(np.abs(net_kwh) >= MIN_ORDER_KWH, net_kwh, 0.0)
        done = np.zeros(n_t, dtype=bool)
        if self._merit:
            merit = clear_network_merit(quantity, limits, self._node, retail_price,
                                        feed_in_price, dt_h=self._dt_h, **self._options)
            if merit is not None:
                done = merit.exact
                day.put_merit(done, quantity, limits, self._node, merit, intervals)
        households = np.arange(n, dtype=np.int64)
        for k in np.flatnonzero(~done):
            orders = net_orders(int(intervals[k]), net_kwh[k], households, limits[k],
                                min_kwh=MIN_ORDER_KWH)
            day.put(int(k), self.clear(orders, float(retail_price[k]), float(feed_in_price[k])))
        return day

    def clear_orders(self, orders: OrderBatch, retail_price: float, feed_in_price: float,
                     *, fixed_kwh: FloatArray | None = None) -> IntervalMarket:
        """:meth:`clear` for one interval's orders (several per household
        allowed: each order trades as its own agent, a device), by merit
        order where that is the network market's exact optimum
        (:func:`~transactive.markets.network.clear_network_merit`). No
        baseline is reported: the orders are devices', and the caller books the
        baseline of its own devices on rules. ``fixed_kwh`` (per household)
        is energy its devices exchange outside the market, which a design
        that clears the feeder carries on it."""
        at_bus = None
        if fixed_kwh is not None and self.utility_inside and self._network is not None:
            at_bus = np.bincount(self._node, fixed_kwh,
                                 self._network.n_bus).astype(np.float64)
        if self._merit and len(orders):
            node = self._node[orders.participant]
            signed = np.where(orders.side == BUY, orders.quantity, -orders.quantity)
            merit = clear_network_merit(signed[None], orders.price[None], node, [retail_price],
                                        [feed_in_price], dt_h=self._dt_h,
                                        fixed_kwh=None if at_bus is None else at_bus[None],
                                        **self._options)
            if merit is not None and bool(merit.exact[0]):
                placed = OrderBatch._trusted(
                    id=orders.id, participant=orders.participant, side=orders.side,
                    price=orders.price, quantity=orders.quantity, node=node)
                acc = merit.accepted[0]
                buy = orders.is_buy
                return IntervalMarket(
                    _merit_clearing(placed, acc, merit, 0), "curtailed",
                    float(acc[buy].sum() - acc[~buy].sum()), float(merit.utility_cost[0]),
                    float(merit.grid_import_kwh[0]), float(merit.grid_export_kwh[0]))
        # every order its own agent (a device; some designs take a participant
        # on one side only), then the households back for the books
        household = orders.participant
        agents = OrderBatch._trusted(
            id=orders.id, participant=np.arange(len(orders), dtype=np.int64), side=orders.side,
            price=orders.price, quantity=orders.quantity)
        cleared = self.clear(agents, retail_price, feed_in_price, household=household,
                             baseline=False, fixed_kwh=at_bus)
        c, o = cleared.clearing, cleared.clearing.orders
        back = OrderBatch._trusted(id=o.id, participant=household[o.participant], side=o.side,
                                   price=o.price, quantity=o.quantity, time=o.time, node=o.node)
        restored = Clearing.from_allocation(c.mechanism, back, c.accepted, c.price,
                                            c.clearing_price, payment=c.payment,
                                            node_price=c.node_price, info=dict(c.info))
        return dataclasses.replace(cleared, clearing=restored)

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
