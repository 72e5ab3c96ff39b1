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
supplied. ``grid_import_kwh``/``grid_export_kwh`` are the community's
physical exchange at its connection.

During a scheduled upstream fault (``[fault]``) the community is islanded:
its batteries form the grid, critical load is served first, and everyone
trades at the island's scarcity price (:mod:`transactive.sim.island`). The
utility-only baseline has a blackout then: no supply, no bill.

In every interval ``load - unserved + charge - pv - discharge = import -
export + counterparty - curtailed`` (energy) and ``market_cost =
operator_surplus + utility_revenue`` (money). Peer-to-peer energy
(``p2p_kwh``) is what households sold to households: the smaller of what
households bought and sold in the market; the rest of their purchases came
from the counterparty (substation or pool), the rest of their sales went to it.

The baseline ("utility only") bill is the bill with the same devices and the
same battery dispatch but no market: the whole net position is imported or
exported at the tariff, on the same feeder (with design ``network``, PV is
curtailed and load shed where the feeder's limits bind, as they are in the
market: ``IntervalMarket.baseline_shortfall_kwh``). A household's gain
(baseline bill - market bill) is split into ``purchase_gain``,
``sale_gain``, ``limits_gain`` and ``island_gain`` (:mod:`transactive.sim.books`).
Carbon (``[carbon]``) is charged per household apart from the energy bill
(``carbon_cost``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from transactive.agents.strategies import limit_prices, net_orders
from transactive.clearing import Clearing
from transactive.errors import TransactiveError
from transactive.orders import BUY
from transactive.sim.books import Books, IntervalOutcome
from transactive.sim.community import build_community
from transactive.sim.island import IslandOutcome, island_window
from transactive.sim.market import MarketSession, feeder_scale
from transactive.sim.recorder import write_results
from transactive.sim.result import SimulationResult
from transactive.sim.rundir import discard_run, prepare_run_dir
from transactive.sim.scenario import FaultConfig, Scenario
from transactive.sim.settling import CarbonContext, RunSettlement, settlement_granularity
from transactive.timeline import Timeline

__all__ = ["SimulationResult", "simulate"]

FloatArray = npt.NDArray[np.float64]


_SMALL_RUN = 2_000_000  # household-intervals


def _small_run(scenario: Scenario, timeline: Timeline) -> bool:
    return scenario.community.households * timeline.periods <= _SMALL_RUN


def _record_level(scenario: Scenario, timeline: Timeline) -> str:
    level = scenario.output.record
    if level != "auto":
        return level
    return "orders" if _small_run(scenario, timeline) else "summary"


def _settles(scenario: Scenario, timeline: Timeline) -> bool:
    mode = scenario.settlement.mode
    return mode == "on" or (mode == "auto" and _small_run(scenario, timeline))


class _Run:
    """The state of one run between intervals."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.timeline = timeline = scenario.time.timeline()
        community_rng, self.strategy_rng, market_rng = _generators(scenario)
        self.network = scenario.grid.network()  # built once: the market, the community
        n_nodes = 1 if self.network is None else self.network.n_bus  # and carbon share it
        self.community = build_community(scenario.community, timeline, community_rng,
                                         n_nodes=n_nodes)
        tariff = scenario.tariff.tariff()
        self.retail = tariff.retail_price_per_kwh(timeline)
        self.feed_in = tariff.feed_in_price_per_kwh_series(timeline)
        self.kw_per_unit = feeder_scale(scenario.grid.kw_per_unit, self.network,
                                        float(self.community.annual_kwh.sum()))
        self.market = MarketSession(scenario, market_rng, self.community.node, self.network,
                                    kw_per_unit=self.kw_per_unit)
        self.carbon = CarbonContext(scenario.carbon.prices(), self.network, self.community.node,
                                    timeline.dt_h, self.kw_per_unit or 1.0)
        self.households = np.arange(self.community.size, dtype=np.int64)
        self.soc = self.community.batteries.initial_soc_kwh()
        self.fault = scenario.fault.window(timeline)
        self.island: IslandOutcome | None = None

    def interval(self, t: int) -> IntervalOutcome:
        if t in self.fault:
            return self._islanded(t)
        return self._market(t)

    def _market(self, t: int) -> IntervalOutcome:
        c, dt_h = self.community, self.timeline.dt_h
        retail, feed_in = self.retail[t], self.feed_in[t]
        load_kw = c.load_kw[t].astype(np.float64)
        pv_kw = c.pv_kw[t].astype(np.float64)
        step = c.batteries.self_consumption(self.soc, load_kw - pv_kw, dt_h)
        self.soc = step.soc_kwh
        net_kwh = (load_kw - pv_kw + step.charge_kw - step.discharge_kw) * dt_h

        floor = 0.0 if self.market.utility_inside else feed_in
        limits = limit_prices(self.scenario.market.strategy, net_kwh > 0, retail, floor,
                              self.strategy_rng, price_floor=floor, price_cap=retail)
        orders = net_orders(t, net_kwh, self.households, limits)
        cleared = self.market.clear(orders, retail, feed_in)
        clearing = cleared.clearing

        n = c.size
        part, buy, acc = orders.participant, orders.side == BUY, clearing.accepted
        bought = _per_household(part[buy], acc[buy], n)
        sold = _per_household(part[~buy], acc[~buy], n)
        paid = _per_household(part[buy], clearing.payment[buy], n)
        received = -_per_household(part[~buy], clearing.payment[~buy], n)
        need, spare = np.maximum(net_kwh, 0.0), np.maximum(-net_kwh, 0.0)
        imported = np.maximum(need - bought, 0.0)
        exported = np.maximum(spare - sold, 0.0)
        curtailed = unserved = base_curtailed = base_unserved = np.zeros(n)
        if cleared.unmatched == "curtailed":  # the market cleared the whole feeder:
            curtailed, exported = exported, np.zeros(n)  # an unsold offer is curtailed PV,
            unserved, imported = imported, np.zeros(n)  # an unserved bid was shed load
            # the utility-only baseline faces the same feeder: its PV is curtailed
            # (and its load shed) where the feeder's limits bind
            short = cleared.baseline_shortfall_kwh
            assert short is not None  # a design that clears the feeder reports it
            base_curtailed = _per_household(part[~buy], short[~buy], n)
            base_unserved = _per_household(part[buy], short[buy], n)
        bill = paid - received + imported * retail - exported * feed_in
        baseline = (need - base_unserved) * retail - (spare - base_curtailed) * feed_in
        gains = {"purchase_gain": bought * retail - paid, "sale_gain": received - sold * feed_in,
                 "limits_gain": (unserved - base_unserved) * retail
                 - (curtailed - base_curtailed) * feed_in, "island_gain": np.zeros(n)}
        if cleared.grid_import_kwh is None or cleared.grid_export_kwh is None:
            exchange = float(net_kwh.sum()) + float(curtailed.sum())  # a copper plate
            grid_import, grid_export = max(exchange, 0.0), max(-exchange, 0.0)
        else:
            grid_import, grid_export = cleared.grid_import_kwh, cleared.grid_export_kwh
        n_buy = int(np.count_nonzero(buy))
        traded_buy = buy & (acc > 0)
        stats = {
            "price": clearing.clearing_price, "volume_kwh": clearing.volume,
            "welfare": clearing.welfare, "n_buy": n_buy, "n_sell": len(orders) - n_buy,
            "charge_kwh": float(step.charge_kw.sum()) * dt_h,
            "discharge_kwh": float(step.discharge_kw.sum()) * dt_h,
            "import_kwh": float(imported.sum()), "export_kwh": float(exported.sum()),
            "baseline_spending": float((need - base_unserved).sum()) * retail,
            "buyer_payment": float(clearing.payment[buy].sum()),
            "seller_receipt": -float(clearing.payment[~buy].sum()),
            "max_buyer_price": float(clearing.price[traded_buy].max()) if traded_buy.any()
            else 0.0,
            "operator_surplus": clearing.operator_surplus - cleared.utility_cost,
            "counterparty_kwh": cleared.counterparty_kwh,
            "grid_import_kwh": grid_import, "grid_export_kwh": grid_export,
            "utility_revenue": float(imported.sum()) * retail - float(exported.sum()) * feed_in
            + cleared.utility_cost,
            "n_binding": len(clearing.info.get("binding", ())),
        }
        vm = clearing.info.get("vm_pu")
        return self._outcome(
            t, stats, net_kwh=net_kwh, bought=bought, sold=sold, imported=imported,
            exported=exported, bill=bill, baseline=baseline, load_kw=load_kw, pv_kw=pv_kw,
            unserved=unserved, curtailed=curtailed, baseline_unserved=base_unserved,
            baseline_curtailed=base_curtailed, gains=gains, clearing=clearing,
            node_price=None if vm is None else clearing.node_price, vm_pu=vm,
        )

    def _islanded(self, t: int) -> IntervalOutcome:
        c, dt_h, fault = self.community, self.timeline.dt_h, self.scenario.fault
        window = self.fault
        if t == window.start or self.island is None:
            self.island = island_window(
                load_kw=c.load_kw[window.start:window.stop].astype(np.float64),
                pv_kw=c.pv_kw[window.start:window.stop].astype(np.float64),
                soc_kwh=self.soc, fleet=c.batteries, dt_h=dt_h,
                critical_share=fault.critical_share,
                critical_value_per_kwh=fault.critical_value_per_kwh,
                flexible_value_per_kwh=fault.flexible_value_per_kwh,
                reserve_frac=fault.black_start_reserve,
            )
        isl, k = self.island, t - window.start
        load_kw = c.load_kw[t].astype(np.float64)
        pv_kw = c.pv_kw[t].astype(np.float64)
        served, pv_used = isl.served_kw[k], isl.pv_used_kw[k]
        charge, discharge = isl.charge_kw[k], isl.discharge_kw[k]
        self.soc = isl.soc_kwh[k].copy()
        net_kwh = (served + charge - pv_used - discharge) * dt_h
        price = float(isl.price_per_kwh[k])
        bought, sold = np.maximum(net_kwh, 0.0), np.maximum(-net_kwh, 0.0)
        bill = price * net_kwh  # everyone trades at the island price; it sums to ~0
        n = c.size
        zero = np.zeros(n)
        load_kwh = load_kw * dt_h
        stats = {
            "price": price, "volume_kwh": float(bought.sum()),
            "welfare": _island_welfare(float(load_kwh.sum()), isl, k, fault),
            "n_buy": int(np.count_nonzero(bought > 0)), "n_sell": int(np.count_nonzero(sold > 0)),
            "charge_kwh": float(charge.sum()) * dt_h,
            "discharge_kwh": float(discharge.sum()) * dt_h,
            "import_kwh": 0.0, "export_kwh": 0.0, "operator_surplus": float(bill.sum()),
            "baseline_spending": 0.0,
            "buyer_payment": price * float(bought.sum()),
            "seller_receipt": price * float(sold.sum()),
            "max_buyer_price": price if bought.any() else 0.0,
            "counterparty_kwh": float(bought.sum() - sold.sum()),
            "grid_import_kwh": 0.0, "grid_export_kwh": 0.0, "utility_revenue": 0.0,
            "islanded": 1,
        }
        # the utility-only baseline has a blackout: no supply, no bill
        return self._outcome(
            t, stats, net_kwh=net_kwh, bought=bought, sold=sold, imported=zero,
            exported=zero, bill=bill, baseline=zero, load_kw=load_kw, pv_kw=pv_kw,
            unserved=load_kwh - served * dt_h, curtailed=(pv_kw - pv_used) * dt_h,
            baseline_unserved=load_kwh, baseline_curtailed=pv_kw * dt_h,
            gains={"purchase_gain": zero, "sale_gain": zero, "limits_gain": zero,
                   "island_gain": -bill},
            clearing=None, node_price=None, vm_pu=None,
        )

    def _outcome(self, t: int, stats: dict[str, float], *, net_kwh: FloatArray,
                 bought: FloatArray, sold: FloatArray, imported: FloatArray,
                 exported: FloatArray, bill: FloatArray, baseline: FloatArray,
                 load_kw: FloatArray, pv_kw: FloatArray, unserved: FloatArray,
                 curtailed: FloatArray, baseline_unserved: FloatArray,
                 baseline_curtailed: FloatArray, gains: dict[str, FloatArray],
                 clearing: Clearing | None,
                 node_price: FloatArray | None, vm_pu: FloatArray | None) -> IntervalOutcome:
        dt_h = self.timeline.dt_h
        out = IntervalOutcome(
            net_kwh=net_kwh, bought_kwh=bought, sold_kwh=sold, import_kwh=imported,
            export_kwh=exported, bill_market=bill, bill_baseline=baseline,
            load_kwh=load_kw * dt_h, pv_kwh=pv_kw * dt_h, unserved_kwh=unserved,
            curtailed_kwh=curtailed, baseline_unserved_kwh=baseline_unserved,
            baseline_curtailed_kwh=baseline_curtailed, soc_kwh=self.soc, stats=stats, **gains,
            clearing=clearing, node_price=node_price, vm_pu=vm_pu,
        )
        bought_total, sold_total = float(bought.sum()), float(sold.sum())
        stats.update({
            "load_kwh": float(load_kw.sum()) * dt_h, "pv_kwh": float(pv_kw.sum()) * dt_h,
            "soc_kwh": float(self.soc.sum()), "unserved_kwh": float(unserved.sum()),
            "curtailed_kwh": float(curtailed.sum()),
            "baseline_unserved_kwh": float(baseline_unserved.sum()),
            "baseline_curtailed_kwh": float(baseline_curtailed.sum()),
            "bought_kwh": bought_total, "sold_kwh": sold_total,
            "p2p_kwh": min(bought_total, sold_total),
            "baseline_cost": float(baseline.sum()), "market_cost": float(bill.sum()),
        })
        return out


def _per_household(household: npt.NDArray[np.int64], values: FloatArray, n: int) -> FloatArray:
    """Sum of ``values`` per household index (0..n-1)."""
    return np.bincount(household, values, minlength=n).astype(np.float64, copy=False)


def _island_welfare(load_kwh: float, isl: IslandOutcome, k: int, fault: FaultConfig) -> float:
    """Value of the load an island served in its ``k``-th interval."""
    critical = fault.critical_share * load_kwh - float(isl.shed_critical_kwh[k])
    flexible = (1 - fault.critical_share) * load_kwh - float(isl.shed_flexible_kwh[k])
    return fault.critical_value_per_kwh * critical + fault.flexible_value_per_kwh * flexible


def simulate(
    scenario: Scenario,
    *,
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run ``scenario`` and return its results.

    With ``run_dir``, the run is written to that folder: every interval
    settled into its ledger and journal (see :mod:`transactive.sim.settling`;
    ``[settlement] mode``) and the results store at the end
    (:mod:`transactive.sim.recorder`), so that ``transactive report`` and
    ``transactive ledger verify`` accept it. A folder holds one run, whole:
    an existing non-empty ``run_dir`` is refused, or with ``overwrite``
    replaced if it holds an earlier run (:func:`~transactive.sim.rundir.prepare_run_dir`).
    Without ``run_dir`` nothing is written to disk. ``progress(done, total)``
    is called once per simulated day.

    Examples
    --------
    >>> from transactive.sim.scenario import Scenario
    >>> s = Scenario.from_dict({"community": {"households": 6}, "time": {"days": 1}})
    >>> r = simulate(s)
    >>> len(r.intervals), len(r.households)
    (96, 6)
    """
    started = time.perf_counter()
    made = run_dir is not None and not Path(run_dir).exists()
    folder = None if run_dir is None else prepare_run_dir(run_dir, overwrite=overwrite)
    try:
        return _simulate(scenario, folder, progress, started)
    except TransactiveError:  # bad input or an infeasible run: leave nothing behind
        if folder is not None:
            discard_run(folder, made=made)
        raise


def _simulate(scenario: Scenario, folder: Path | None,
              progress: Callable[[int, int], None] | None, started: float) -> SimulationResult:
    run = _Run(scenario)
    timeline = run.timeline
    books = Books(timeline, run.community.size, _record_level(scenario, timeline))
    ppd, periods = timeline.periods_per_day, timeline.periods
    settle = None
    if folder is not None and _settles(scenario, timeline):
        granularity = settlement_granularity(scenario.settlement.granularity,
                                             run.community.size * periods)
        settle = RunSettlement(folder, run.community.size, ppd, granularity=granularity)
    fee = scenario.settlement.grid_fee_per_kwh
    try:
        for first in range(0, periods, ppd):  # a day at a time: carbon in one stacked call
            day = [run.interval(t) for t in range(first, min(first + ppd, periods))]
            run.carbon.charge(day)
            for t, outcome in enumerate(day, start=first):
                books.add(t, outcome)
                if settle is not None:
                    settle.interval(t, outcome, retail_price=run.retail[t],
                                    feed_in_price=run.feed_in[t], grid_fee_per_kwh=fee)
            if progress is not None:
                progress(first + len(day), periods)
    except TransactiveError:
        if settle is not None:
            settle.abandon()
        raise
    frames = books.frames(run.community.households_frame(), run.retail, run.feed_in)
    figures = {"kw_per_unit": run.kw_per_unit, **run.market.figures()}
    bills = frames["households"]["bill_market"].to_numpy()  # type: ignore[index]
    result = SimulationResult(scenario=scenario, **frames,  # type: ignore[arg-type]
                              settlement=None if settle is None else settle.close(bills),
                              figures=figures, elapsed_s=time.perf_counter() - started)
    if folder is not None:
        write_results(result, folder)
    return result


def _generators(scenario: Scenario) -> tuple[np.random.Generator, ...]:
    """The run's independent random streams (community, strategies, market)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(scenario.seed).spawn(3))
