"""The interval loop: devices -> orders -> clear -> dispatch -> record.

Sign convention (per household, per interval, kWh): ``net_kwh`` is what the
household needs from outside after its own PV and battery,
``load + charge - pv - discharge``. It is covered by P2P trades and the
utility: ``net_kwh = bought - sold + imported - exported``. Any quantity a
buyer does not get in the market it imports at the retail price; any a seller
does not sell it exports at the feed-in price.

Where the market design clears the whole feeder with the utility at the
substation (design ``network``), every buyer is served in the market and an
offer not accepted is PV that was curtailed, not exported; a seller's
outside option is then inside the market, so it offers from its marginal
cost (zero for PV) rather than from the feed-in price. An AMM's pool is a
counterparty too: ``counterparty_kwh`` is what it (or the substation)
supplied, so per interval ``load + charge - pv - discharge = import - export
+ counterparty - curtailed``. ``grid_import_kwh``/``grid_export_kwh`` are the
community's physical exchange at its connection.

The baseline ("utility only") bill is the bill with the same devices and the
same battery dispatch but no P2P market: the whole net position is imported or
exported at the tariff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.agents.strategies import limit_prices, net_orders
from transactive.orders import BUY
from transactive.sim.community import Community, build_community
from transactive.sim.market import MarketSession
from transactive.sim.scenario import Scenario
from transactive.timeline import Timeline

__all__ = ["SimulationResult", "simulate"]

_ORDER_COLUMNS = ("interval", "id", "household", "side", "limit_price", "quantity",
                  "accepted", "price", "payment")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Frames of one run (see :mod:`transactive.sim.recorder` for the columns)."""

    scenario: Scenario
    intervals: pd.DataFrame
    households: pd.DataFrame
    household_days: pd.DataFrame
    household_intervals: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    nodes: pd.DataFrame | None = None
    elapsed_s: float = field(default=0.0, compare=False)


def _record_level(scenario: Scenario, timeline: Timeline) -> str:
    level = scenario.output.record
    if level != "auto":
        return level
    return "orders" if scenario.community.households * timeline.periods <= 2_000_000 else "summary"


def simulate(
    scenario: Scenario,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run ``scenario`` and return its results (nothing is written to disk).

    ``progress(done, total)`` is called once per simulated day.

    Examples
    --------
    >>> from transactive.sim.scenario import Scenario
    >>> s = Scenario.from_dict({"community": {"households": 6}, "time": {"days": 1}})
    >>> r = simulate(s)
    >>> len(r.intervals), len(r.households)
    (96, 6)
    """
    started = time.perf_counter()
    timeline = scenario.time.timeline()
    community_rng, strategy_rng, market_rng = _generators(scenario)
    community = _community(scenario, timeline, community_rng)
    tariff = scenario.tariff.tariff()
    retail = tariff.retail_price_per_kwh(timeline)
    feed_in = tariff.feed_in_price_per_kwh_series(timeline)
    level = _record_level(scenario, timeline)
    market = MarketSession(scenario, market_rng, community.node)

    n, periods, dt_h = community.size, timeline.periods, timeline.dt_h
    ppd = timeline.periods_per_day
    n_days = -(-periods // ppd)
    households = np.arange(n, dtype=np.int64)
    fleet = community.batteries
    soc = fleet.initial_soc_kwh()

    iv = {name: np.zeros(periods) for name in (
        "price", "volume_kwh", "welfare", "n_buy", "n_sell", "load_kwh", "pv_kwh",
        "charge_kwh", "discharge_kwh", "soc_kwh", "import_kwh", "export_kwh",
        "operator_surplus", "counterparty_kwh", "curtailed_kwh", "grid_import_kwh",
        "grid_export_kwh", "utility_revenue", "baseline_cost", "p2p_cost", "n_binding")}
    day_keys = ("bill_p2p", "bill_baseline", "bought_kwh", "sold_kwh", "import_kwh",
                "export_kwh", "load_kwh", "pv_kwh")
    days = {name: np.zeros((n_days, n)) for name in day_keys}
    keep_households = level in ("orders", "households")
    hh = {name: np.zeros((periods, n), dtype=np.float32)
          for name in ("net_kwh", "bought_kwh", "sold_kwh", "soc_kwh")} if keep_households else {}
    order_parts: list[tuple[npt.NDArray, ...]] = []
    node_price: npt.NDArray[np.float64] | None = None
    node_vm: npt.NDArray[np.float64] | None = None

    for t in range(periods):
        load_kw = community.load_kw[t].astype(np.float64)
        pv_kw = community.pv_kw[t].astype(np.float64)
        step = fleet.self_consumption(soc, load_kw - pv_kw, dt_h)
        soc = step.soc_kwh
        net_kwh = (load_kw - pv_kw + step.charge_kw - step.discharge_kw) * dt_h

        is_buy = net_kwh > 0
        floor = 0.0 if market.utility_inside else feed_in[t]
        limits = limit_prices(
            scenario.market.strategy, is_buy, retail[t], floor, strategy_rng,
            price_floor=floor, price_cap=retail[t],
        )
        orders = net_orders(t, net_kwh, households, limits)
        cleared = market.clear(orders, retail[t], feed_in[t])
        clearing = cleared.clearing

        part = orders.participant
        buy = orders.side == BUY
        acc = clearing.accepted
        bought = np.bincount(part[buy], acc[buy], minlength=n)
        sold = np.bincount(part[~buy], acc[~buy], minlength=n)
        paid = np.bincount(part, clearing.payment, minlength=n)
        need = np.maximum(net_kwh, 0.0)
        spare = np.maximum(-net_kwh, 0.0)
        imported = np.maximum(need - bought, 0.0)
        exported = np.maximum(spare - sold, 0.0)
        if cleared.unmatched == "curtailed":
            iv["curtailed_kwh"][t] = exported.sum()
            exported[:] = 0.0
        bill = paid + imported * retail[t] - exported * feed_in[t]
        baseline = need * retail[t] - spare * feed_in[t]

        iv["price"][t] = clearing.clearing_price
        iv["volume_kwh"][t] = clearing.volume
        iv["welfare"][t] = clearing.welfare
        iv["n_buy"][t] = np.count_nonzero(buy)
        iv["n_sell"][t] = buy.size - iv["n_buy"][t]
        iv["load_kwh"][t] = load_kw.sum() * dt_h
        iv["pv_kwh"][t] = pv_kw.sum() * dt_h
        iv["charge_kwh"][t] = step.charge_kw.sum() * dt_h
        iv["discharge_kwh"][t] = step.discharge_kw.sum() * dt_h
        iv["soc_kwh"][t] = soc.sum()
        iv["import_kwh"][t] = imported.sum()
        iv["export_kwh"][t] = exported.sum()
        iv["operator_surplus"][t] = clearing.operator_surplus - cleared.utility_cost
        iv["counterparty_kwh"][t] = cleared.counterparty_kwh
        iv["utility_revenue"][t] = (iv["import_kwh"][t] * retail[t]
                                    - iv["export_kwh"][t] * feed_in[t] + cleared.utility_cost)
        if cleared.grid_import_kwh is None or cleared.grid_export_kwh is None:
            exchange = net_kwh.sum() + iv["curtailed_kwh"][t]  # copper plate
            iv["grid_import_kwh"][t], iv["grid_export_kwh"][t] = max(exchange, 0), max(-exchange, 0)
        else:
            iv["grid_import_kwh"][t] = cleared.grid_import_kwh
            iv["grid_export_kwh"][t] = cleared.grid_export_kwh
        iv["baseline_cost"][t] = baseline.sum()
        iv["p2p_cost"][t] = bill.sum()

        if clearing.node_price is not None and "vm_pu" in clearing.info:
            if node_price is None or node_vm is None:
                node_price = np.zeros((periods, clearing.node_price.size))
                node_vm = np.zeros_like(node_price)
            node_price[t] = clearing.node_price
            node_vm[t] = clearing.info["vm_pu"]
            iv["n_binding"][t] = len(clearing.info["binding"])

        d = t // ppd
        for name, values in (("bill_p2p", bill), ("bill_baseline", baseline),
                             ("bought_kwh", bought), ("sold_kwh", sold),
                             ("import_kwh", imported), ("export_kwh", exported),
                             ("load_kwh", load_kw * dt_h), ("pv_kwh", pv_kw * dt_h)):
            days[name][d] += values
        if keep_households:
            hh["net_kwh"][t] = net_kwh
            hh["bought_kwh"][t] = bought
            hh["sold_kwh"][t] = sold
            hh["soc_kwh"][t] = soc
        if level == "orders":
            order_parts.append((np.full(len(orders), t), orders.id, part, orders.side,
                                orders.price, orders.quantity, acc, clearing.price,
                                clearing.payment))
        if progress is not None and ((t + 1) % ppd == 0 or t + 1 == periods):
            progress(t + 1, periods)

    index = timeline.index
    intervals = pd.DataFrame({"interval": np.arange(periods), "start": index,
                              "retail_price": retail, "feed_in_price": feed_in})
    for name, values in iv.items():
        intervals[name] = values
    for name in ("n_buy", "n_sell", "n_binding"):
        intervals[name] = intervals[name].astype(np.int64)
    node_frame = None
    if node_price is not None and node_vm is not None:
        intervals["vm_min_pu"] = node_vm.min(axis=1)
        intervals["vm_max_pu"] = node_vm.max(axis=1)
        if keep_households:
            n_bus = node_price.shape[1]
            node_frame = pd.DataFrame({
                "interval": np.repeat(np.arange(periods), n_bus),
                "bus": np.tile(np.arange(n_bus), periods),
                "price": node_price.ravel(),
                "vm_pu": node_vm.ravel(),
            })

    day_frame = pd.DataFrame({
        "day": np.repeat(np.arange(n_days), n),
        "household": np.tile(households, n_days),
        **{name: days[name].ravel() for name in day_keys},
    })
    totals = community.households_frame()
    for name in day_keys:
        totals[name] = days[name].sum(axis=0)
    totals["gain"] = totals["bill_baseline"] - totals["bill_p2p"]

    hh_frame = None
    if keep_households:
        hh_frame = pd.DataFrame({
            "interval": np.repeat(np.arange(periods), n),
            "household": np.tile(households, periods),
            **{name: values.ravel() for name, values in hh.items()},
        })
    order_frame = None
    if level == "orders":
        cols = [np.concatenate(parts) for parts in zip(*order_parts, strict=True)] \
            if order_parts else [np.empty(0)] * len(_ORDER_COLUMNS)
        order_frame = pd.DataFrame(dict(zip(_ORDER_COLUMNS, cols, strict=True)))
    return SimulationResult(
        scenario=scenario,
        intervals=intervals,
        households=totals,
        household_days=day_frame,
        household_intervals=hh_frame,
        orders=order_frame,
        nodes=node_frame,
        elapsed_s=time.perf_counter() - started,
    )


def _generators(scenario: Scenario) -> tuple[np.random.Generator, ...]:
    """The run's independent random streams (community, strategies, market)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(scenario.seed).spawn(3))


def _community(scenario: Scenario, timeline: Timeline, rng: np.random.Generator) -> Community:
    network = scenario.grid.network()
    n_nodes = 1 if network is None else len(network.bus)
    return build_community(scenario.community, timeline, rng, n_nodes=n_nodes)


def community_of(scenario: Scenario) -> Community:
    """The community a scenario builds (the same draws as :func:`simulate`)."""
    return _community(scenario, scenario.time.timeline(), _generators(scenario)[0])
