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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from transactive.agents.strategies import limit_prices
from transactive.agents.weather import outdoor_temperature_c
from transactive.errors import InputError, TransactiveError
from transactive.sim.books import Books, DayOutcome
from transactive.sim.community import build_community
from transactive.sim.demand_response import plan_events, settle_events
from transactive.sim.flexday import flexible_day
from transactive.sim.flexible import Devices
from transactive.sim.island import IslandOutcome, island_window
from transactive.sim.market import MarketSession, feeder_scale
from transactive.sim.recorder import ResultsStore
from transactive.sim.result import SimulationResult
from transactive.sim.retail import retail_competition
from transactive.sim.rundir import discard_run, prepare_run_dir
from transactive.sim.scenario import TARIFF_KINDS, FaultConfig, Scenario
from transactive.sim.settle_process import SettlementProcess
from transactive.sim.settling import CarbonContext, RunSettlement, settlement_granularity
from transactive.sim.vpp import RunVpp
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


def _needs_meters(scenario: Scenario) -> bool:
    """Whether a program of the run works on every household's metered intervals."""
    return scenario.demand_response.enabled or scenario.retail.enabled


def _settles(scenario: Scenario) -> bool:
    return scenario.settlement.mode != "off"


class _Run:
    """The state of one run between intervals."""

    def __init__(self, scenario: Scenario, timeline: Timeline) -> None:
        self.scenario = scenario
        self.timeline = timeline  # the scenario's
        community_rng, self.strategy_rng, market_rng, device_rng, tariff_seed = _generators(
            scenario)
        self.network = scenario.grid.network()  # built once: the market, the community
        n_nodes = 1 if self.network is None else self.network.n_bus  # and carbon share it
        self.community = build_community(scenario.community, timeline, community_rng,
                                         n_nodes=n_nodes)
        self.devices = Devices.build(scenario, timeline, self.community.batteries,
                                     device_rng) if scenario.flexible else None
        c = scenario.community
        self.tariff_seed = tariff_seed
        self.tariff = tariff = scenario.tariff.tariff(
            tariff_seed, latitude_deg=c.latitude_deg,
            longitude_deg=c.longitude_deg,
            outdoor_c=None if self.devices is None else self.devices.outdoor_c)
        self.retail = tariff.retail_price_per_kwh(timeline)
        self.feed_in = tariff.feed_in_price_per_kwh_series(timeline)
        self.tariff_prices = self._tariff_prices()
        dr = scenario.demand_response
        self.wholesale = (scenario.tariff.wholesale(tariff_seed).price_per_kwh(timeline)
                          if scenario.vpp.enabled or (dr.enabled
                                                      and dr.compensation == "wholesale")
                          else None)  # the day-ahead prices a program trades at
        self.events = (plan_events(dr, timeline, self.retail, self.wholesale) if dr.enabled
                       else None)
        self.outdoor_c = (None if self.events is None and self.devices is None else
                          self.devices.outdoor_c if self.devices is not None else
                          outdoor_temperature_c(timeline, device_rng.spawn(5)[0],
                                                latitude_deg=c.latitude_deg,
                                                longitude_deg=c.longitude_deg))
        # what the devices plan by: the tariff, and an event's negawatt price on top
        self.forecast_prices = (self.retail if self.events is None else
                                self.retail + self.events.price_per_kwh)
        devices_kwh = (0.0 if self.devices is None else
                       self.devices.annual_kwh(scenario.community.latitude_deg))
        self.kw_per_unit = feeder_scale(scenario.grid.kw_per_unit, self.network,
                                        float(self.community.annual_kwh.sum()) + devices_kwh)
        self.market = MarketSession(scenario, market_rng, self.community.node, self.network,
                                    kw_per_unit=self.kw_per_unit)
        self.vpp = self._vpp()
        self.carbon = CarbonContext(scenario.carbon.prices(), self.network, self.community.node,
                                    timeline.dt_h, self.kw_per_unit or 1.0)
        self.households = np.arange(self.community.size, dtype=np.int64)
        self.soc = self.community.batteries.initial_soc_kwh()
        bidding = self.devices is not None and scenario.flexibility.control != "rules"
        self.twin = self.devices.twin() if bidding and self.devices else None  # the baseline
        self.mpc = (self.devices.controller(self.community.load_kw, self.community.pv_kw,
                                            self.forecast_prices, self.feed_in)
                    if bidding and self.devices and scenario.flexibility.control == "mpc"
                    else None)
        self.fault = scenario.fault.window(timeline)
        if self.devices is not None and self.fault:
            raise InputError("fault.start", "an islanded community with flexible devices "
                             "([flexibility], [ev], [heat_pump], [shiftable]) is not "
                             "simulated yet: run the fault without them")
        self.island: IslandOutcome | None = None
        self.keep_clearings = False  # set by the run: it records orders or journals them
        self.flexible_kwh = 0.0  # device energy the market moved in time (vs. the rules)

    def _vpp(self) -> RunVpp | None:
        """The run's virtual power plant (``[vpp]``), its members enrolled."""
        cfg = self.scenario.vpp
        if not cfg.enabled:
            return None
        assert self.devices is not None  # control = "market" (the scenario's check)
        rng = np.random.default_rng(np.random.SeedSequence(self.scenario.seed).spawn(7)[6])
        assert self.wholesale is not None  # drawn for it
        return RunVpp.enrol(cfg, self.devices, self.wholesale, self.timeline.periods_per_day,
                            rng)

    def day(self, first: int, stop: int) -> DayOutcome:
        """Simulate intervals ``first .. stop - 1`` (one day, or its end): the
        devices interval by interval (their state carries over), then the
        market of every interval not islanded at once, then the books."""
        if self.twin is not None:  # the devices bid: interval by interval
            return _day_outcome(first, flexible_day(self, first, stop),
                                np.zeros(stop - first, dtype=bool))
        c, dt_h, n = self.community, self.timeline.dt_h, self.community.size
        load_kw = c.load_kw[first:stop].astype(np.float64)
        pv_kw = c.pv_kw[first:stop].astype(np.float64)
        n_t = stop - first
        charge, discharge, soc = (np.zeros((n_t, n)) for _ in range(3))
        islanded = np.array([t in self.fault for t in range(first, stop)], dtype=bool)
        island: dict[str, FloatArray] = {name: np.zeros((n_t, n)) for name in
                                         ("served_kw", "pv_used_kw", "unserved_kwh")}
        island_stats: dict[int, dict[str, float]] = {}
        net_kwh, device_kwh = np.zeros((n_t, n)), np.zeros(n_t)
        indoor = np.full((2, n_t), np.nan)  # heat pump houses' mean and lowest, degC
        k = 0
        while k < n_t:  # runs of market intervals, and islanded intervals
            if islanded[k]:
                island_stats[k] = self._islanded(first + k, k, island, charge, discharge)
                soc[k] = self.soc
                net_kwh[k] = (island["served_kw"][k] - island["pv_used_kw"][k]
                              + charge[k] - discharge[k]) * dt_h
                k += 1
                continue
            end = k + int(np.argmax(islanded[k:])) if islanded[k:].any() else n_t
            if self.devices is None:  # batteries alone: a run of intervals in one call
                step = c.batteries.self_consumption(self.soc, load_kw[k:end] - pv_kw[k:end],
                                                    dt_h)
                charge[k:end], discharge[k:end], soc[k:end] = (
                    step.charge_kw, step.discharge_kw, step.soc_kwh)
                self.soc = soc[end - 1].copy()
                net_kwh[k:end] = (load_kw[k:end] - pv_kw[k:end] + charge[k:end]
                                  - discharge[k:end]) * dt_h
            else:  # every device by its rule, interval by interval
                for j in range(k, end):
                    net_kwh[j], charge[j], discharge[j] = self.devices.by_rules(
                        first + j, load_kw[j], pv_kw[j])
                    soc[j] = self.devices.soc_kwh
                    assert self.devices.last_flex_kwh is not None  # set by by_rules
                    device_kwh[j] = float(self.devices.last_flex_kwh.sum())
                    indoor[:, j] = self.devices.indoor_c()
            k = end
        out = self._market(first, net_kwh, ~islanded)
        out["stats"]["device_kwh"] = device_kwh
        out["stats"]["indoor_c_mean"], out["stats"]["indoor_c_min"] = indoor
        out.update(load_kwh=load_kw * dt_h, pv_kwh=pv_kw * dt_h, soc_kwh=soc,
                   charge_kwh=charge.sum(axis=1) * dt_h,
                   discharge_kwh=discharge.sum(axis=1) * dt_h)
        for k, stats in island_stats.items():
            self._island_row(out, k, stats, load_kw[k] * dt_h, pv_kw[k] * dt_h,
                             island["unserved_kwh"][k], (pv_kw[k] - island["pv_used_kw"][k]) * dt_h)
        return _day_outcome(first, out, islanded)

    def _tariff_prices(self) -> dict[str, tuple[FloatArray, FloatArray]]:
        """Retail and feed-in prices of every kind of tariff the ``[tariff]``
        section prices (its own kind's are the run's), to bill each household's
        baseline meter under each, side by side; a kind that cannot be made for
        this run (an 'rtp' whose CSV does not cover it) is left out."""
        config, timeline = self.scenario.tariff, self.timeline
        c = self.scenario.community
        prices: dict[str, tuple[FloatArray, FloatArray]] = {}
        for kind in TARIFF_KINDS:
            if kind == config.kind:
                prices[kind] = (self.retail, self.feed_in)
                continue
            try:
                other = config.model_copy(update={"kind": kind}).tariff(
                    self.tariff_seed, latitude_deg=c.latitude_deg, longitude_deg=c.longitude_deg,
                    outdoor_c=None if self.devices is None else self.devices.outdoor_c)
                prices[kind] = (other.retail_price_per_kwh(timeline),
                                other.feed_in_price_per_kwh_series(timeline))
            except InputError:
                continue
        return prices

    def _market(self, first: int, net_kwh: FloatArray, rows: npt.NDArray[np.bool_]
                ) -> dict[str, Any]:
        """The market intervals (``rows``) of a day, cleared and booked; the
        others left at zero for :meth:`_island_row`."""
        n_t, n = net_kwh.shape
        t = np.arange(first, first + n_t)[rows]
        retail, feed_in = self.retail[t], self.feed_in[t]
        net = net_kwh[rows]
        floor = np.zeros_like(feed_in) if self.market.utility_inside else feed_in
        limits = limit_prices(self.scenario.market.strategy, (net > 0).ravel(),
                              np.repeat(retail, n), np.repeat(floor, n), self.strategy_rng,
                              price_floor=np.repeat(floor, n),
                              price_cap=np.repeat(retail, n)).reshape(net.shape)
        m = self.market.clear_day(t, net, limits, retail, feed_in,
                                  keep_clearings=self.keep_clearings) if t.size else None
        out: dict[str, Any] = {name: np.zeros((n_t, n)) for name in _HOUSEHOLD_ARRAYS}
        out["stats"] = {name: np.zeros(n_t) for name in _MARKET_STATS}
        out["net_kwh"] = net_kwh
        out["clearings"] = [None] * n_t if self.keep_clearings else None
        n_bus = None if self.network is None else self.network.n_bus
        out["node_price"] = out["vm_pu"] = None
        if m is None:
            return out
        need, spare = np.maximum(net, 0.0), np.maximum(-net, 0.0)
        imported = np.maximum(need - m.bought, 0.0)
        exported = np.maximum(spare - m.sold, 0.0)
        curtailed = unserved = np.zeros_like(net)
        if m.unmatched == "curtailed":  # the market cleared the whole feeder:
            curtailed, exported = exported, np.zeros_like(net)  # an unsold offer is curtailed,
            unserved, imported = imported, np.zeros_like(net)  # an unserved bid was shed load
        rows_, stats = m.accounts(
            imported=imported, exported=exported, unserved=unserved, curtailed=curtailed,
            baseline_net=net, baseline_unserved=m.baseline_unserved,
            baseline_curtailed=m.baseline_curtailed, retail=retail, feed_in=feed_in,
            exchange=net.sum(axis=1) + curtailed.sum(axis=1))
        for name, values in rows_.items():
            out[name][rows] = values
        for name, values in stats.items():
            out["stats"][name][rows] = values
        if m.clearings is not None and out["clearings"] is not None:
            for k, clearing in zip(np.flatnonzero(rows), m.clearings, strict=True):
                out["clearings"][k] = clearing
        if n_bus is not None and m.node_price is not None and m.vm_pu is not None:
            out["node_price"], out["vm_pu"] = (np.full((n_t, n_bus), np.nan) for _ in range(2))
            out["node_price"][rows], out["vm_pu"][rows] = m.node_price, m.vm_pu
        return out

    def _islanded(self, t: int, k: int, island: dict[str, FloatArray], charge: FloatArray,
                  discharge: FloatArray) -> dict[str, float]:
        """Interval ``t`` (row ``k``) islanded: the island's dispatch (solved
        for the whole fault window when it starts), its price and welfare."""
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
        isl, j = self.island, t - window.start
        island["served_kw"][k], island["pv_used_kw"][k] = isl.served_kw[j], isl.pv_used_kw[j]
        island["unserved_kwh"][k] = c.load_kw[t].astype(np.float64) * dt_h - isl.served_kw[j] * dt_h
        charge[k], discharge[k] = isl.charge_kw[j], isl.discharge_kw[j]
        self.soc = isl.soc_kwh[j].copy()
        load_kwh = float(c.load_kw[t].astype(np.float64).sum()) * dt_h
        return {"price": float(isl.price_per_kwh[j]),
                "welfare": _island_welfare(load_kwh, isl, j, fault)}

    @staticmethod
    def _island_row(out: dict[str, Any], k: int, stats: dict[str, float], load_kwh: FloatArray,
                    pv_kwh: FloatArray, unserved: FloatArray, curtailed: FloatArray) -> None:
        """Book islanded row ``k``: everyone trades its net position at the
        island's price (the bills sum to ~0); the utility-only baseline has a
        blackout: no supply, no bill."""
        net, price = out["net_kwh"][k], stats["price"]
        bought, sold = np.maximum(net, 0.0), np.maximum(-net, 0.0)
        bill = price * net
        rows = {"bought_kwh": bought, "sold_kwh": sold, "paid": price * bought,
                "received": price * sold, "bill_market": bill, "unserved_kwh": unserved,
                "curtailed_kwh": curtailed, "baseline_unserved_kwh": load_kwh,
                "baseline_curtailed_kwh": pv_kwh, "island_gain": -bill}
        for name, values in rows.items():
            out[name][k] = values
        volume = float(bought.sum())
        figures = {
            "price": price, "volume_kwh": volume, "welfare": stats["welfare"],
            "n_buy": int(np.count_nonzero(bought > 0)), "n_sell": int(np.count_nonzero(sold > 0)),
            "operator_surplus": float(bill.sum()), "buyer_payment": price * volume,
            "seller_receipt": price * float(sold.sum()),
            "max_buyer_price": price if bought.any() else 0.0,
            "counterparty_kwh": volume - float(sold.sum()), "islanded": 1,
        }
        for name, value in figures.items():
            out["stats"][name][k] = value


_HOUSEHOLD_ARRAYS = ("bought_kwh", "sold_kwh", "paid", "received", "import_kwh", "export_kwh",
                     "bill_market", "bill_baseline", "unserved_kwh", "curtailed_kwh",
                     "baseline_unserved_kwh", "baseline_curtailed_kwh", "baseline_meter_kwh",
                     "purchase_gain",
                     "sale_gain", "limits_gain", "island_gain", "flexibility_gain")
_MARKET_STATS = ("price", "volume_kwh", "welfare", "n_buy", "n_sell", "import_kwh",
                 "export_kwh", "baseline_spending", "buyer_payment", "seller_receipt",
                 "max_buyer_price", "operator_surplus", "counterparty_kwh", "grid_import_kwh",
                 "grid_export_kwh", "utility_revenue", "n_binding", "islanded", "draw_kwh",
                 "baseline_draw_kwh")


def _day_outcome(first: int, out: dict[str, Any], islanded: npt.NDArray[np.bool_]
                 ) -> DayOutcome:
    """The day's outcome with its community figures per interval."""
    stats = out["stats"]
    charge, discharge = out.pop("charge_kwh"), out.pop("discharge_kwh")
    bought, sold = out["bought_kwh"].sum(axis=1), out["sold_kwh"].sum(axis=1)
    stats.update({
        "charge_kwh": charge, "discharge_kwh": discharge,
        "load_kwh": out["load_kwh"].sum(axis=1), "pv_kwh": out["pv_kwh"].sum(axis=1),
        "soc_kwh": out["soc_kwh"].sum(axis=1), "unserved_kwh": out["unserved_kwh"].sum(axis=1),
        "curtailed_kwh": out["curtailed_kwh"].sum(axis=1),
        "baseline_unserved_kwh": out["baseline_unserved_kwh"].sum(axis=1),
        "baseline_curtailed_kwh": out["baseline_curtailed_kwh"].sum(axis=1),
        "bought_kwh": bought, "sold_kwh": sold, "p2p_kwh": np.minimum(bought, sold),
        "baseline_cost": out["bill_baseline"].sum(axis=1),
        "market_cost": out["bill_market"].sum(axis=1),
    })
    return DayOutcome(start=first, islanded=islanded, **out)


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
        # the run's linear algebra is small (a feeder's matrices, a day of
        # operating points): BLAS threads only contend, with each other and
        # with whatever else the machine runs (measured: a day's loss factors
        # 14 ms on one thread, 77 ms on two threads of a busy 2-core machine)
        with threadpool_limits(limits=1, user_api="blas"):
            return _simulate(scenario, folder, progress, started)
    except TransactiveError:  # bad input or an infeasible run: leave nothing behind
        if folder is not None:
            discard_run(folder, made=made)
        raise


def _simulate(scenario: Scenario, folder: Path | None,
              progress: Callable[[int, int], None] | None, started: float) -> SimulationResult:
    timeline, n = scenario.time.timeline(), scenario.community.households
    ppd, periods = timeline.periods_per_day, timeline.periods
    settle: RunSettlement | SettlementProcess | None = None
    if folder is not None and _settles(scenario):
        granularity = settlement_granularity(scenario.settlement.granularity, n * periods)
        # a long run settles by day in a process of its own, beside the simulation,
        # started first so that it starts up while the community is built
        settler = SettlementProcess if granularity == "day" else RunSettlement
        settle = settler(folder, n, ppd, granularity=granularity)
    fee = scenario.settlement.grid_fee_per_kwh
    store: ResultsStore | None = None
    try:
        run = _Run(scenario, timeline)
        books = Books(timeline, n, _record_level(scenario, timeline), run.tariff_prices,
                      meters=_needs_meters(scenario), vpp=run.vpp is not None)
        run.keep_clearings = books.level == "orders" or (
            settle is not None and settle.config.granularity == "interval")
        for first in range(0, periods, ppd):  # a day at a time
            day = run.day(first, min(first + ppd, periods))
            run.carbon.charge(day)
            books.add(day)
            if settle is not None:
                t = slice(first, first + len(day))
                settle.day(day, retail_price=run.retail[t], feed_in_price=run.feed_in[t],
                           grid_fee_per_kwh=fee)
            if progress is not None:
                progress(first + len(day), periods)
        frames = books.frames(run.community.households_frame(), run.retail, run.feed_in)
        figures = {"kw_per_unit": run.kw_per_unit, **run.market.figures()}
        if run.devices is not None:
            figures.update(run.devices.figures(), flexible_kwh=run.flexible_kwh)
        if run.vpp is not None:
            figures.update(run.vpp.figures())
        dr_events, retail = _programs(scenario, run, books, frames, figures)
        bills = frames["households"]["bill_market"].to_numpy()  # type: ignore[index]
        result = SimulationResult(scenario=scenario, **frames,  # type: ignore[arg-type]
                                  retail=retail, dr_events=dr_events,
                                  vpp=None if run.vpp is None else run.vpp.table(),
                                  ev_departures=None if run.devices is None
                                  else run.devices.departures(),
                                  figures=figures)
        if folder is not None:  # the tables while the settlement settles its last days
            store = ResultsStore(folder)
            store.write_tables(result)
        result = replace(result, settlement=None if settle is None else settle.close(bills),
                         elapsed_s=time.perf_counter() - started)
        if store is not None:
            store.finish(result)
    except BaseException:  # bad input (a program's too), or stopped: close the settlement's files
        if settle is not None:
            settle.abandon()
        if store is not None:
            store.discard()
        raise
    return result


def _programs(scenario: Scenario, run: _Run, books: Books, frames: dict[str, Any],
              figures: dict[str, Any]) -> tuple[Any, Any]:
    """The programs settled after the run from every household's meter
    (:meth:`Books.meters`): demand response and retail competition (their
    figures added to ``figures``); their results tables ``dr_events`` and
    ``retail`` (or None)."""
    timeline = run.timeline
    dr_events = retail = None
    if run.events is not None:
        dr_figures, dr_events = settle_events(scenario.demand_response, run.events,
                                              books.meters("meter_kwh"), run.outdoor_c)
        figures.update(dr_figures)
    if scenario.retail.enabled:
        meter = books.meters("baseline_meter_kwh")
        retail_figures, retail = retail_competition(
            scenario.retail, scenario.tariff, run.tariff,
            scenario.tariff.wholesale(run.tariff_seed), timeline, meter,
            frames["households"]["bill_market"].to_numpy(), frames["intervals"],
            np.random.default_rng(np.random.SeedSequence(scenario.seed).spawn(6)[5]))
        figures.update(retail_figures)
    return dr_events, retail


def _generators(scenario: Scenario) -> tuple[np.random.Generator, np.random.Generator,
                                             np.random.Generator, np.random.Generator,
                                             np.random.SeedSequence]:
    """The run's independent random streams: community, strategies, market,
    flexible devices, and the seed of the tariff's synthetic prices and
    weather; a stream added later never changes the earlier ones."""
    children = np.random.SeedSequence(scenario.seed).spawn(5)
    community, strategy, market, devices = (np.random.default_rng(s) for s in children[:4])
    return community, strategy, market, devices, children[4]
