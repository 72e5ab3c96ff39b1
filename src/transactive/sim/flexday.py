"""A day of a community whose devices bid (``[flexibility] control = "market"``)
or order what a model-predictive plan says (``control = "mpc"``).

Interval by interval (a device's state depends on what it got), every
household's devices state their segments (:meth:`Devices.segments`), its
energy manager matches what it can at home and orders the rest, one order
per segment (:func:`~transactive.agents.flexibility.net_in_home`; with
``[flexibility] trading = "devices"`` every segment goes to the market as
its own order, machine to machine), the market clears them, and each
segment is served by the home, the market and, where its limit says so, the
utility (:func:`~transactive.agents.flexibility.served`); the fleets then
advance by what they got. Under ``"mpc"`` the battery, EV and heat pump
order the first interval of a plan made that interval over the horizon
(:meth:`Devices.planned_segments`), as must-run.

Where the design clears the whole feeder with the utility at the substation
(``network``), demand bids at its limits (elastic), so a device that bids
less than the substation's price waits; what must run (a base load, a car
out of laxity, a cold house, a started cycle) bids the value of lost load,
and what was not served of it is shed load. An appliance's cycle the market
accepted in part gets the rest from the utility at the tariff, beside the
market (the feeder's flows are not solved again for that small remainder).

The baseline is the same households with a twin of their devices on plain
rules and no market (:meth:`Devices.by_rules`), stepped in lockstep; on a
feeder its shortfall comes from the same network market with every surplus
offered at zero. A household's gain over it is split as in the engine, plus
``flexibility_gain``: what its devices' schedule saved at the tariff against
the rules' schedule (:class:`~transactive.sim.books.DayOutcome`).

With a virtual power plant (``[vpp]``, :mod:`transactive.sim.vpp`), the
enrolled households' devices bid from the day-ahead forecast instead, the
aggregator dispatches their flexible segments to its award, and its energy
passes beside the households' market and utility lines: their meters and the
community's grid exchange include it, and a network market clears with it on
the feeder, exchanged at the substation outside the market.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from transactive.agents.flexibility import HomeMatch, Segments, net_in_home, served
from transactive.agents.strategies import limit_prices
from transactive.errors import SolverError
from transactive.orders import BUY, OrderBatch
from transactive.sim.flexible import FLEETS
from transactive.sim.market import MIN_ORDER_KWH, DayMarket, IntervalMarket

if TYPE_CHECKING:
    from transactive.sim.engine import _Run
    from transactive.sim.vpp import VppStep

__all__ = ["flexible_day"]

FloatArray = npt.NDArray[np.float64]


def flexible_day(run: _Run, first: int, stop: int) -> dict[str, Any]:
    """Intervals ``first .. stop - 1`` of ``run``: the engine's day arrays
    (see ``_day_outcome`` in :mod:`transactive.sim.engine`)."""
    devices, twin = run.devices, run.twin
    assert devices is not None  # the engine calls this for a run whose devices bid
    assert twin is not None
    c, n = run.community, run.community.size
    n_t = stop - first
    market = run.market
    network = market.utility_inside
    voll = run.scenario.grid.value_of_lost_load_per_kwh
    day = DayMarket.empty(n_t, n, "curtailed" if network else "utility",
                          None if run.network is None else run.network.n_bus,
                          run.keep_clearings)
    rows = {name: np.zeros((n_t, n)) for name in (
        "import_kwh", "export_kwh", "unserved_kwh", "curtailed_kwh", "net_kwh", "charge",
        "discharge", "soc_kwh", "base_net", "base_unserved", "base_curtailed", "device",
        "vpp_up", "vpp_down", "vpp_payment")}
    indoor = np.full((2, n_t), np.nan)  # heat pump houses' mean and lowest, degC
    loads, pvs = c.load_kw[first:stop].astype(np.float64), c.pv_kw[first:stop].astype(np.float64)
    load_pv = np.arange(2 * n) < n  # the strategy's orders: every load (buy), every PV (sell)
    for k, t in enumerate(range(first, stop)):
        load, pv = loads[k], pvs[k]
        retail, feed_in = float(run.retail[t]), float(run.feed_in[t])
        floor = 0.0 if network else feed_in
        limits = limit_prices(run.scenario.market.strategy, load_pv, retail, floor,
                              run.strategy_rng, price_floor=floor, price_cap=retail)
        forecast = devices.forecast(run.forecast_prices, t, run.timeline.periods_per_day)
        vpp = None
        if run.mpc is not None:  # the plan's first interval, re-planned every interval
            plan = run.mpc.plan(t, devices.soc_kwh)
            seg, owner = devices.planned_segments(t, load, pv, plan, forecast, floor, retail,
                                                  limits[:n], limits[n:])
        elif run.vpp is None:
            seg, owner, _ = devices.segments(t, load, pv, forecast, floor, retail, limits[:n],
                                             limits[n:])
        else:  # the members' devices bid from the forecast of the aggregator's supply
            # price; it takes its part: the home orders none of it
            ahead = devices.forecast(run.vpp.supply_per_kwh, t, run.timeline.periods_per_day)
            seg, owner, aside = devices.segments(
                t, load, pv, forecast, floor, retail, limits[:n], limits[n:],
                aside=(ahead, min(0.0, float(ahead.min())), float(ahead.max())))
            assert aside is not None
            seg, owner, vpp = _vpp_step(run, t, seg, owner, aside)
        price = seg.price_per_kwh
        if run.events is not None and run.events.mask[t]:
            # a kWh not drawn during an event earns the negawatt price: what can
            # wait bids less, a battery sells for less
            dr = float(run.events.price_per_kwh[t])
            flexible = (owner >= 2) & ~seg.must_run  # battery, EV, heat pump, appliance
            price = np.where(flexible, price - dr, price)
            seg = seg.with_columns(price_per_kwh=price)
        home = (net_in_home(seg, n) if run.scenario.flexibility.trading == "home" else
                HomeMatch(matched_kwh=np.zeros(len(seg)), residual_kwh=seg.quantity_kwh))
        buy = seg.side == BUY
        if network:  # what must run bids the value of lost load; the rest is elastic,
            # a bid at the retail price is served before the substation's supply, and
            # an offer at it (a limit the price cap clipped: the device values its
            # energy at least that) waits for it: no tie with the substation, whose
            # split the LP would have to choose
            price = np.where(buy & seg.must_run, voll,
                             np.where(price >= retail, retail + 1e-6, price))
        order = np.flatnonzero(home.residual_kwh >= MIN_ORDER_KWH)
        orders = OrderBatch._trusted(
            id=order + np.int64(t) * np.int64(len(seg) + 1),
            participant=seg.household[order], side=seg.side[order],
            price=price[order], quantity=home.residual_kwh[order])
        if vpp is None:
            cleared = market.clear_orders(orders, retail, feed_in)
        else:
            cleared, vpp = _clear_beside(run, t, orders, retail, feed_in, vpp)
            rows["vpp_up"][k], rows["vpp_down"][k] = vpp.up_kwh, vpp.down_kwh
            rows["vpp_payment"][k] = vpp.payment
        day.put(k, cleared)
        accepted = np.zeros(len(seg))
        cl = cleared.clearing
        accepted[(cl.orders.id - np.int64(t) * np.int64(len(seg) + 1)).astype(np.int64)] = \
            np.minimum(cl.accepted, cl.orders.quantity)
        total, utility = served(seg, home, accepted, retail, feed_in, check=False)
        if network:  # the utility is inside the market: nothing beside it, but the
            # rest of an indivisible cycle the market started in part (bought at
            # the tariff; the feeder's flows are not solved again for it)
            beside = np.where(seg.indivisible, utility, 0.0)
            total, utility = total - utility + beside, beside
        charge, discharge = devices.dispatch(
            t, seg, owner, total if vpp is None else np.where(vpp.taken, vpp.energy_kwh, total))
        left = seg.quantity_kwh - total

        # per household and side (buy, sell), and per fleet and side
        side = seg.household + n * (~buy)
        rows["import_kwh"][k], rows["export_kwh"][k] = _per(side, utility, 2, n)
        bought, sold = _per(side, total, 2, n)
        rows["net_kwh"][k] = bought - sold
        left_by = _per(side + 2 * n * owner.astype(np.int64), left, 2 * len(FLEETS), n)
        # the base load (code 0) not served, the PV (code 1) not delivered
        rows["unserved_kwh"][k], rows["curtailed_kwh"][k] = left_by[0], left_by[3]
        rows["charge"][k], rows["discharge"][k], rows["soc_kwh"][k] = (charge, discharge,
                                                                      devices.soc_kwh)
        indoor[:, k] = devices.indoor_c()
        base_net = twin.by_rules(t, load, pv)[0]
        rows["base_net"][k] = base_net
        assert devices.last_flex_kwh is not None
        assert twin.last_flex_kwh is not None
        rows["device"][k] = devices.last_flex_kwh
        run.flexible_kwh += 0.5 * float(np.abs(devices.last_flex_kwh
                                               - twin.last_flex_kwh).sum())
    if network:  # the baseline on the same feeder, the day at once (its devices run by
        # rules, whatever the market did): every surplus offered at zero
        base = rows["base_net"]
        short = market.clear_day(np.arange(first, stop), base, np.where(base > 0, voll, 0.0),
                                 run.retail[first:stop], run.feed_in[first:stop],
                                 keep_clearings=False)
        rows["base_unserved"], rows["base_curtailed"] = (short.baseline_unserved,
                                                         short.baseline_curtailed)
    out = _book(run, first, day, rows)
    out["stats"]["indoor_c_mean"], out["stats"]["indoor_c_min"] = indoor
    return out


def _vpp_step(run: _Run, t: int, seg: Segments, owner: npt.NDArray[np.int8],
              aside_per_kwh: FloatArray) -> tuple[Segments, npt.NDArray[np.int8], VppStep]:
    """Interval ``t`` with the run's virtual power plant: the segments the
    aggregator takes (:meth:`~transactive.sim.vpp.RunVpp.takes`), priced
    ``aside_per_kwh`` (bid from the forecast of its supply price in place of
    the tariff's), after the others, its step
    (:meth:`~transactive.sim.vpp.RunVpp.step`), and the segments the home
    orders from (the aggregator's with no quantity): what must run stays the
    home's, priced on the tariff."""
    vpp = run.vpp
    assert vpp is not None
    taken = vpp.takes(seg, owner)
    order = np.concatenate([np.flatnonzero(~taken), np.flatnonzero(taken)])
    price = np.where(taken, aside_per_kwh, seg.price_per_kwh)
    seg = seg.take(order).with_columns(price_per_kwh=price[order])
    owner = owner[order]
    step = vpp.step(t, seg, owner)
    home = seg.with_columns(quantity_kwh=np.where(step.taken, 0.0, seg.quantity_kwh))
    return home, owner, step


def _clear_beside(run: _Run, t: int, orders: OrderBatch, retail: float, feed_in: float,
                  step: VppStep) -> tuple[IntervalMarket, VppStep]:
    """The market of interval ``t`` with the aggregator's dispatch ``step``.
    Beside a network market the feeder carries it; where it cannot, or only by
    shedding load the market alone would have served, the operator curtails
    the aggregator to the largest share of its dispatch that sheds nothing
    more (a distribution operator's "traffic light"; bisection to 1/64), and
    the shortfall is the aggregator's (:meth:`~transactive.sim.vpp.RunVpp.curtail`)."""
    assert run.vpp is not None
    net = step.up_kwh - step.down_kwh
    market = run.market
    voll = run.scenario.grid.value_of_lost_load_per_kwh

    def shed(share: float) -> tuple[IntervalMarket | None, float]:
        try:
            out = market.clear_orders(orders, retail, feed_in, fixed_kwh=share * net)
        except SolverError:  # the feeder cannot carry the dispatch at all
            return None, np.inf
        o = out.clearing.orders  # what must run bids the value of lost load
        must = (o.side == BUY) & (o.price >= voll)
        return out, float((o.quantity - out.clearing.accepted)[must].sum())

    cleared, lost = shed(1.0)
    if not market.utility_inside or (cleared is not None and lost <= 1e-9):
        assert cleared is not None
        return cleared, step
    alone, floor = shed(0.0)
    assert alone is not None  # the market alone: load it cannot serve is shed
    if cleared is not None and lost <= floor + 1e-9:
        return cleared, step
    lo, best = 0.0, alone
    hi = 1.0
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        out, lost = shed(mid)
        if out is not None and lost <= floor + 1e-9:
            lo, best = mid, out
        else:
            hi = mid
    return best, run.vpp.curtail(t, step, lo)


def _per(key: npt.NDArray[np.int64], values: FloatArray, groups: int, n: int) -> FloatArray:
    """Sums of ``values`` per household in each of ``groups`` groups (``key``:
    group * ``n`` + household), a row per group, each sum in the values' order."""
    return np.bincount(key, values, groups * n).astype(np.float64, copy=False).reshape(groups, n)


def _book(run: _Run, first: int, m: DayMarket, rows: dict[str, FloatArray]
          ) -> dict[str, Any]:
    """The day's household arrays and figures per interval, as the engine books them."""
    n_t, n = rows["net_kwh"].shape
    t = np.arange(first, first + n_t)
    vpp_kwh = rows["vpp_up"] - rows["vpp_down"]  # zero without a virtual power plant
    households, stats = m.accounts(
        imported=rows["import_kwh"], exported=rows["export_kwh"],
        unserved=rows["unserved_kwh"], curtailed=rows["curtailed_kwh"],
        baseline_net=rows["base_net"], baseline_unserved=rows["base_unserved"],
        baseline_curtailed=rows["base_curtailed"], retail=run.retail[t],
        feed_in=run.feed_in[t], exchange=(rows["net_kwh"] + vpp_kwh).sum(axis=1),
        flexible=True)
    if run.vpp is not None:  # the aggregator's energy, at the tariff, is the devices'
        # schedule's; what it charged for it against the tariff is its own part
        at_tariff = (rows["vpp_up"] * run.retail[t][:, None]
                     - rows["vpp_down"] * run.feed_in[t][:, None])
        households["flexibility_gain"] = households["flexibility_gain"] - at_tariff
        households.update(vpp_kwh=vpp_kwh, vpp_payment=rows["vpp_payment"],
                          vpp_gain=at_tariff - rows["vpp_payment"])
        stats["draw_kwh"] = stats["draw_kwh"] + vpp_kwh.sum(axis=1)
        if run.market.utility_inside:  # the LP's exchange is the market's own
            exchange = (stats["grid_import_kwh"] - stats["grid_export_kwh"]
                        + vpp_kwh.sum(axis=1))
            stats["grid_import_kwh"] = np.maximum(exchange, 0.0)
            stats["grid_export_kwh"] = np.maximum(-exchange, 0.0)
        stats["vpp_kwh"] = vpp_kwh.sum(axis=1)
    out: dict[str, Any] = {**households, "net_kwh": rows["net_kwh"],
                           "island_gain": np.zeros((n_t, n)), "soc_kwh": rows["soc_kwh"],
                           "clearings": m.clearings}
    out["stats"] = {**stats, "islanded": np.zeros(n_t),
                    "device_kwh": rows["device"].sum(axis=1)}
    out["node_price"], out["vm_pu"] = m.node_price, m.vm_pu
    c, dt_h = run.community, run.timeline.dt_h
    out.update(load_kwh=c.load_kw[t].astype(np.float64) * dt_h,
               pv_kwh=c.pv_kw[t].astype(np.float64) * dt_h,
               charge_kwh=rows["charge"].sum(axis=1) * dt_h,
               discharge_kwh=rows["discharge"].sum(axis=1) * dt_h)
    return out
