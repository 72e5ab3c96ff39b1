"""Grid-aware clearing: a community market on a feeder, priced bus by bus.

Mechanism ``"network"`` (:func:`clear_network`). Every order sits at a bus
(``OrderBatch.node``: the bus *position*, 0-based, in the network's bus
table; position 0 is the substation of the built-in feeders). The market
maximises welfare subject to the network model of
:func:`~transactive.grid.distflow.solve_distflow`:

- The substation (the network's reference bus) is the utility: it sells any
  amount at ``import_price`` and buys any amount at ``export_price``.
- Buy orders are inelastic by default: served in full, their limit price is
  informational (with ``shed_price`` they may be shed at that value per kWh
  when serving them is infeasible or dearer). With ``inelastic_demand=False``
  a buy order is price-responsive demand at its limit price.
- Sell orders are dispatchable injections at their limit price; a seller not
  accepted in full is curtailed (physically: PV curtailment).
- Every order trades at its own bus's price (the distribution LMP, the dual
  of the bus's power balance): buyers pay ``price * accepted`` and sellers
  receive it. A buyer drawing reactive power (``power_factor < 1``) also
  pays the bus's reactive price on it, so its unit price is
  ``price_p + tan(acos(pf)) * price_q``.

Units: quantities are kWh per interval of ``dt_h`` hours and prices are per
kWh, as everywhere in a community. ``kw_per_unit`` scales what the network
sees: one unit of order quantity stands for ``kw_per_unit`` kWh in the
feeder (1 = as is; larger lets a small simulated community load a full-size
feeder). Prices, payments and the kWh figures in ``info`` stay per unit of
order quantity. The feeder is in MW, so ``p_mw = quantity * kw_per_unit /
dt_h / 1000``.

Unlike a plain double auction, the grid is a counterparty: energy bought
need not equal energy sold (the utility supplies or takes the difference,
and with ``model="soc"`` the losses). The money balances by LP duality:
``payments = utility cost + rent``, where the rent of the network
constraints (voltage limits, the substation voltage, branch ratings) comes
from their duals; ``info["rent"]`` is that figure and equals
``operator_surplus + background_payment - utility_cost``.

The network structure is built once per network object and cached; with
LinDistFlow the whole LP is kept and a call changes only its costs and
bounds and re-solves from the previous basis (see
``benchmarks/bench_distflow.py``).

Examples
--------
>>> from transactive.orders import OrderBatch
>>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
...                 side=["buy", "buy", "sell"], price=[0.30, 0.30, 0.05],
...                 quantity=[1.0, 2.0, 1.5], node=[5, 17, 17])
>>> c = clear_network(ob, import_price=0.25, export_price=0.05)
>>> c.accepted.tolist(), round(c.clearing_price, 2), c.info["grid_import_kwh"]
([1.0, 2.0, 1.5], 0.25, 1.5)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.grid.cases import load_case
from transactive.grid.dcopf import dcopf
from transactive.grid.distflow import DistFlowModel, Injections, solve_distflow
from transactive.grid.network import Network
from transactive.grid.screen import screen_feeder, screenable
from transactive.markets.registry import register
from transactive.markets.vcg import WelfareSolver
from transactive.orders import BUY, OrderBatch

__all__ = ["MeritOrderBlock", "clear_network", "clear_network_merit", "dcopf_welfare"]

_MODELS: tuple[DistFlowModel, ...] = ("lindistflow", "soc", "dc")


@functools.cache
def _case(name: str) -> Network:
    """A built-in case by name, loaded once (so its solver structure is
    cached across calls)."""
    return load_case(name)


def _number(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(name, f"must be {'> 0' if positive else 'finite'}, got {value!r}")
    return float(value)


@register("network")
def clear_network(
    orders: OrderBatch,
    /,
    *,
    network: Network | str = "ieee33",
    model: DistFlowModel = "lindistflow",
    import_price: float,
    export_price: float,
    dt_h: float = 0.25,
    kw_per_unit: float = 1.0,
    inelastic_demand: bool = True,
    shed_price: float | None = None,
    power_factor: float = 1.0,
    background_load: bool = False,
    reuse_model: bool = True,
    import_max_mw: float = math.inf,
    fixed_kwh: npt.ArrayLike | None = None,
) -> Clearing:
    """Clear orders at their buses through the network: nodal prices.

    Parameters
    ----------
    orders : OrderBatch
        Orders with ``node`` (bus position, 0-based); kWh per interval.
    network : Network or str
        The feeder, or the name of a built-in case (default the IEEE 33-bus
        feeder of Baran & Wu). It must be radial.
    model : {"lindistflow", "soc", "dc"}
        LinDistFlow LP (fast, default), DistFlow SOC relaxation (with
        losses), or lossless active power only.
    import_price, export_price : float
        The utility's prices per kWh at the substation
        (``export_price <= import_price``).
    dt_h : float
        Interval length, hours.
    kw_per_unit : float
        kWh in the feeder per unit of order quantity (a scale, see above).
    inelastic_demand : bool
        Serve buy orders in full (True) or treat them as price-responsive.
    shed_price : float, optional
        With inelastic demand: the value per kWh at which demand is shed
        rather than served (without it, demand that cannot be served within
        the limits raises :class:`~transactive.errors.SolverError`).
    power_factor : float
        Power factor of buyers' demand (lagging), in ``(0, 1]``.
    background_load : bool
        Keep the network's own loads as inelastic demand of non-participants
        (their payment is ``info["background_payment"]``).
    reuse_model : bool
        LinDistFlow: clear on the network's kept LP, updated and re-solved
        from the previous interval's basis (True), or on a fresh LP (False);
        see :func:`~transactive.grid.distflow.solve_distflow`.
    import_max_mw : float
        Most the substation imports, MW in the feeder (a transformer or an
        import envelope; default none): at the limit the price rises to
        what the demand that waits would have paid.
    fixed_kwh : array of length ``n_bus``, optional
        Energy drawn (> 0) or fed in (< 0) at each bus (position order, in
        order units) outside the market and exchanged at the substation
        outside it: a virtual power plant's energy, bought or sold upstream
        by its aggregator. The feeder carries it (flows, voltages, the
        import envelope, hence the prices: as a must-run order at its bus
        would), the market neither pays nor is paid for it:
        ``grid_import_kwh``, ``grid_export_kwh`` and ``utility_cost`` are the
        market's own exchange, the substation's less this energy (``rent``
        counts it at its nodal prices).

    Returns
    -------
    Clearing
        ``node_price``: active price per bus per kWh; ``clearing_price``:
        the substation's. ``info``: ``grid_import_kwh``, ``grid_export_kwh``,
        ``losses_kwh`` (SOC: in the model; LinDistFlow: the estimate from
        its flows; DC: 0), ``vm_pu`` (per bus; nan for DC), ``node_price_q``,
        ``max_loading``, ``binding`` (names of binding network constraints),
        ``utility_cost``, ``rent``, ``background_payment``, ``model``,
        ``soc_gap``, ``exact``, ``solve_time_s``.

    Raises
    ------
    InputError
        Orders without nodes or with a node outside the network; bad options.
    """
    opts = _options(model, import_price, export_price, dt_h, kw_per_unit, shed_price,
                    power_factor, inelastic_demand, background_load, reuse_model)
    net = _network(network)
    node = _nodes(orders, net)
    n = net.n_bus
    mw_per_unit = opts["kw_per_unit"] / opts["dt_h"] / 1000.0
    per_mwh = 1000.0 / opts["kw_per_unit"]  # price per unit -> per MWh in the feeder
    tan_phi = math.tan(math.acos(opts["power_factor"]))
    is_buy = orders.side == BUY
    fixed = is_buy & opts["inelastic_demand"] & (shed_price is None)
    demand = np.bincount(node[fixed], orders.quantity[fixed], n) * mw_per_unit
    outside = _outside(fixed_kwh, n) * mw_per_unit
    # dispatchable orders, one column per (side, bus, price) group so that
    # ties share pro rata
    flex = np.flatnonzero(~fixed)
    limit = orders.price[flex].copy()
    if shed_price is not None and opts["inelastic_demand"]:
        limit[is_buy[flex]] = opts["shed_price"]
    side, at = orders.side[flex], node[flex]
    order = np.lexsort((limit, at, side))
    new = np.ones(order.size, bool)
    new[1:] = ((np.diff(side[order]) != 0) | (np.diff(at[order]) != 0)
               | (np.diff(limit[order]) != 0))
    group_of = np.empty(order.size, np.int64)
    group_of[order] = np.cumsum(new) - 1
    first = order[new]
    g_qty = np.bincount(group_of, orders.quantity[flex], first.size) * mw_per_unit
    g_buy = side[first] == BUY
    g_node, g_price = at[first], limit[first]
    inj = Injections(
        bus=net.bus_numbers[g_node],
        p_min_mw=np.where(g_buy, -g_qty, 0.0), p_max_mw=np.where(g_buy, 0.0, g_qty),
        cost_per_mwh=g_price * per_mwh, q_per_p=np.where(g_buy, tan_phi, 0.0),
    )
    res = solve_distflow(
        net, model=opts["model"], import_price_per_mwh=opts["import_price"] * per_mwh,
        export_price_per_mwh=opts["export_price"] * per_mwh, injections=inj,
        load_p_mw=demand + outside, load_q_mvar=(demand + np.maximum(outside, 0.0)) * tan_phi,
        network_loads=opts["background_load"], reuse_model=opts["reuse_model"],
        import_max_mw=_limit("import_max_mw", import_max_mw),
    )
    # fill fraction of each group -> accepted per order
    frac = np.clip(np.abs(res.p_inj_mw[:first.size]) / np.where(g_qty > 0, g_qty, 1.0), 0, 1)
    accepted = orders.quantity.copy()
    accepted[flex] = orders.quantity[flex] * frac[group_of]
    price_p = res.price_p_per_mwh / per_mwh
    price_q = res.price_q_per_mvarh / per_mwh
    unit_price = price_p[node] + np.where(is_buy, tan_phi * price_q[node], 0.0)
    hours = opts["dt_h"]
    bg_payment = 0.0
    if opts["background_load"]:
        fd_p = net.bus_load_mw
        fd_q = np.bincount(net.load_position, net.load["q_mvar"].to_numpy(), n)
        bg_payment = float(res.price_p_per_mwh @ fd_p + res.price_q_per_mvarh @ fd_q) * hours
    to_units = hours * 1000.0 / opts["kw_per_unit"]  # MW over the interval -> units
    # the market's own exchange: the substation's less what passed it outside the market
    grid_import, grid_export = res.grid_import_mw * to_units, res.grid_export_mw * to_units
    utility_cost = res.utility_cost_per_h * hours
    if fixed_kwh is not None:
        own = grid_import - grid_export - float(outside.sum()) * to_units
        grid_import, grid_export = max(own, 0.0), max(-own, 0.0)
        utility_cost = grid_import * opts["import_price"] - grid_export * opts["export_price"]
    info = {
        "model": opts["model"],
        "grid_import_kwh": grid_import,
        "grid_export_kwh": grid_export,
        "losses_kwh": res.losses_mw * to_units,
        "vm_pu": res.vm_pu,
        "node_price_q": price_q,
        "max_loading": res.max_loading,
        "binding": res.binding,
        "utility_cost": utility_cost,
        "rent": res.rent_per_h * hours,
        "background_payment": bg_payment,
        "soc_gap": res.soc_gap,
        "exact": res.exact,
        "solve_time_s": res.solve_time_s,
    }
    root = net.ref_position
    return Clearing.from_allocation("network", orders, accepted, unit_price, price_p[root],
                                    node_price=price_p, info=info)


def _outside(fixed_kwh: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float64]:
    """The energy exchanged outside the market per bus (``fixed_kwh`` of
    :func:`clear_network`), order units; zeros without it."""
    if fixed_kwh is None:
        return np.zeros(n)
    f = np.asarray(fixed_kwh, dtype=np.float64)
    if f.shape != (n,) or not np.isfinite(f).all():
        raise InputError("fixed_kwh", f"must be {n} finite numbers, one per bus")
    return f


def _limit(name: str, value: Any) -> float:
    """A capacity: a number > 0, or infinity (none)."""
    if isinstance(value, int | float | np.integer | np.floating) and value == math.inf:
        return math.inf
    return _number(name, value, positive=True)


def _options(model: Any, import_price: Any, export_price: Any, dt_h: Any, kw_per_unit: Any,
             shed_price: Any, power_factor: Any, inelastic_demand: Any,
             background_load: Any, reuse_model: Any) -> dict[str, Any]:
    if model not in _MODELS:
        raise InputError("model", f"must be one of {', '.join(_MODELS)}, got {model!r}")
    out: dict[str, Any] = {"model": model}
    out["import_price"] = _number("import_price", import_price)
    out["export_price"] = _number("export_price", export_price)
    if out["export_price"] > out["import_price"]:
        raise InputError("export_price", "must not exceed import_price (buying from the "
                         "utility to sell back to it would be unbounded)")
    out["dt_h"] = _number("dt_h", dt_h, positive=True)
    out["kw_per_unit"] = _number("kw_per_unit", kw_per_unit, positive=True)
    out["shed_price"] = None if shed_price is None else _number("shed_price", shed_price)
    pf = _number("power_factor", power_factor, positive=True)
    if pf > 1:
        raise InputError("power_factor", f"must be in (0, 1], got {power_factor!r}")
    out["power_factor"] = pf
    for name, value in (("inelastic_demand", inelastic_demand),
                        ("background_load", background_load), ("reuse_model", reuse_model)):
        if not isinstance(value, bool | np.bool_):
            raise InputError(name, f"must be true or false, got {value!r}")
        out[name] = bool(value)
    return out


def _network(network: Network | str) -> Network:
    if isinstance(network, Network):
        return network
    if isinstance(network, str):
        return _case(network.lower())
    raise InputError("network", f"expected a Network or a case name, got {type(network).__name__}")


def _nodes(orders: OrderBatch, net: Network) -> npt.NDArray[np.int64]:
    if not isinstance(orders, OrderBatch):
        raise InputError("orders", f"expected an OrderBatch, got {type(orders).__name__}")
    if orders.node is None:
        raise InputError("node", "the network mechanism needs the bus (node) of every order")
    outside = np.flatnonzero(orders.node >= net.n_bus)
    if outside.size:
        row = int(outside[0])
        raise InputError("node", f"bus position {int(orders.node[row])} is outside the network "
                         f"(positions 0..{net.n_bus - 1})", row=row)
    return orders.node



@dataclass(frozen=True, eq=False)
class MeritOrderBlock:
    """Intervals of a network market (rows) cleared by merit order, where
    that is the LP's unique optimum (:func:`clear_network_merit`); the
    arrays of the other rows are undefined."""

    exact: npt.NDArray[np.bool_]
    """The merit order is the LP's unique optimum, and no limit binds, in the
    market and in its utility-only baseline (offers at zero)."""
    accepted: npt.NDArray[np.float64]
    """Per interval and participant (the columns of ``quantity``), kWh."""
    price: npt.NDArray[np.float64]
    """The price at every bus (no limit binds: one price), per kWh."""
    grid_import_kwh: npt.NDArray[np.float64]
    grid_export_kwh: npt.NDArray[np.float64]
    utility_cost: npt.NDArray[np.float64]
    losses_kwh: npt.NDArray[np.float64]
    max_loading: npt.NDArray[np.float64]
    vm_pu: npt.NDArray[np.float64]
    """Per interval and bus."""


def clear_network_merit(quantity: npt.ArrayLike, limit_price: npt.ArrayLike,
                        node: npt.ArrayLike, import_price: npt.ArrayLike,
                        export_price: npt.ArrayLike, *, network: Network | str = "ieee33",
                        dt_h: float = 0.25, kw_per_unit: float = 1.0,
                        fixed_kwh: npt.ArrayLike | None = None,
                        **options: Any) -> MeritOrderBlock | None:
    """:func:`clear_network` for many intervals at once, where no limit binds.

    ``quantity`` (intervals x participants) is each participant's order of
    the interval, kWh: ``> 0`` buys, ``< 0`` sells, ``0`` none; each
    participant sits at ``node`` (bus position) with its ``limit_price``;
    the utility's prices are per interval. Without binding limits the
    LinDistFlow LP's optimum is the merit order with the substation as a
    seller at ``import_price`` and a buyer at ``export_price``: in an
    interval where the community imports even after every offer below the
    import price runs (and every bid below it waits), the price is the import
    price everywhere; where it exports even after every bid above the export
    price is served (and every offer above it waits), it is the export price.
    Bids are all served (inelastic demand, the default) or served by their
    limits (``inelastic_demand=False``). A limit exactly at either price
    (a tie) or a community whose own orders set the price between them is
    left to the LP. Where that dispatch and
    the baseline's (every offer at zero) are strictly within the feeder's
    limits (:func:`~transactive.grid.screen.screen_feeder`) and its import
    limit (``import_max_mw``), and the
    substation's exchange is not zero (a degenerate price), it is the unique
    optimum of the LP :func:`clear_network` solves, with all its network
    duals zero: the row is ``exact`` and its figures are the LP's to solver
    tolerance. Other rows need :func:`clear_network`.

    ``fixed_kwh`` (intervals x buses) is energy exchanged outside the market
    that the feeder carries, as in :func:`clear_network`: it counts in the
    flows, the import limit and which side of the substation sets the price
    (its physical exchange); the figures returned are the market's own.

    Returns None where the options are not those of the merit order
    (another model than LinDistFlow, sheddable demand, background load) or
    the feeder is not screenable (shunts, taps, generators).
    """
    opts = _options(options.get("model", "lindistflow"), 0.0, 0.0, dt_h, kw_per_unit,
                    options.get("shed_price"), options.get("power_factor", 1.0),
                    options.get("inelastic_demand", True),
                    options.get("background_load", False), options.get("reuse_model", True))
    net = _network(network)
    import_max_mw = _limit("import_max_mw", options.get("import_max_mw", math.inf))
    if (set(options) - {"model", "shed_price", "power_factor", "inelastic_demand",
                        "background_load", "reuse_model", "import_max_mw"}
            or opts["model"] != "lindistflow" or opts["shed_price"] is not None
            or opts["background_load"] or not screenable(net)):
        return None
    qty = np.atleast_2d(np.asarray(quantity, dtype=np.float64))
    limit = np.atleast_2d(np.asarray(limit_price, dtype=np.float64))
    at = np.asarray(node, dtype=np.int64)
    p_imp = np.asarray(import_price, dtype=np.float64)
    p_exp = np.asarray(export_price, dtype=np.float64)
    hi, lo = p_imp[:, None], p_exp[:, None]
    outside = (None if fixed_kwh is None
               else np.atleast_2d(np.asarray(fixed_kwh, dtype=np.float64)))
    f_total = 0.0 if outside is None else outside.sum(axis=1)
    buy, sell = qty > 0, qty < 0
    offer, bid = np.where(sell, -qty, 0.0), np.where(buy, qty, 0.0)
    # certain: better than the substation's price on its side; straddling: between
    between = (limit > lo) & (limit < hi)
    sure_sell, mid_sell = sell & (limit < lo), sell & between
    if opts["inelastic_demand"]:
        sure_buy, mid_buy = buy, np.zeros_like(buy)
        tie = sell & ((limit == lo) | (limit == hi))
    else:
        sure_buy, mid_buy = buy & (limit > hi), buy & between
        tie = (buy | sell) & ((limit == lo) | (limit == hi))
    d_sure, s_sure = bid.sum(axis=1, where=sure_buy), offer.sum(axis=1, where=sure_sell)
    d_mid, s_mid = bid.sum(axis=1, where=mid_buy), offer.sum(axis=1, where=mid_sell)
    d_all, s_all = bid.sum(axis=1), offer.sum(axis=1)
    scale = np.maximum(1.0, d_all + s_all)
    # importing, the substation sets the price at import_price: the offers below
    # it run, the bids below it wait; exporting, at export_price, the reverse
    importing = d_sure - s_sure - s_mid + f_total > 1e-9 * scale
    exporting = s_sure - d_sure - d_mid - f_total > 1e-9 * scale
    served = sure_buy | (mid_buy & exporting[:, None])
    dispatched = sure_sell | (mid_sell & importing[:, None])
    demand = np.where(served, bid, 0.0)
    accepted = np.where(served, bid, np.where(dispatched, offer, 0.0))
    exchange = demand.sum(axis=1) - accepted.sum(axis=1, where=sell)
    base_exchange = d_all - s_all + f_total
    physical = exchange + f_total  # at the substation, with what passes outside the market
    straddle = tie.any(axis=1) | ~(importing | exporting)
    mw = opts["kw_per_unit"] / opts["dt_h"] / 1000.0
    tan_phi = math.tan(math.acos(opts["power_factor"]))

    def reactive(demand_kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        """The buyers' reactive draw per bus, and the outside loads' (None at
        unity power factor)."""
        if tan_phi == 0.0:
            return None
        q = _bus_sums(demand_kwh * (tan_phi * mw), at, net.n_bus)
        return q if outside is None else q + np.maximum(outside, 0.0) * (tan_phi * mw)

    def at_buses(kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Each row's net demand per bus, MW, with what passes outside the market."""
        p = _bus_sums(kwh * mw, at, net.n_bus)
        return p if outside is None else p + outside * mw

    market = screen_feeder(net, at_buses(np.where(sell, -accepted, demand)), reactive(demand))
    exact = (~straddle & market.within & (np.abs(physical) > 1e-9 * scale)
             & (p_exp > 0)  # at a zero feed-in price the baseline's offers tie with exports
             & (physical * mw < import_max_mw * (1 - 1e-6)))  # the substation's limit
    truthful = ((limit == 0.0) | ~sell).all(axis=1)
    # the baseline offers everything at zero: all of it dispatched
    if not truthful.all() and exact.any():
        baseline = screen_feeder(net, at_buses(qty), reactive(bid))
        exact &= truthful | (baseline.within & (np.abs(base_exchange) > 1e-9 * scale))
    price = np.where(physical > 0, p_imp, p_exp)
    grid_import, grid_export = np.maximum(exchange, 0.0), np.maximum(-exchange, 0.0)
    return MeritOrderBlock(
        exact=exact, accepted=accepted, price=price, grid_import_kwh=grid_import,
        grid_export_kwh=grid_export, utility_cost=grid_import * p_imp - grid_export * p_exp,
        losses_kwh=market.losses_mw / mw, max_loading=market.max_loading, vm_pu=market.vm_pu)


def _bus_sums(values: npt.NDArray[np.float64], node: npt.NDArray[np.int64], n_bus: int
              ) -> npt.NDArray[np.float64]:
    """Per row of ``values`` (rows x participants), the sums at each bus
    (rows x ``n_bus``) of the participants at ``node``."""
    rows = values.shape[0]
    flat = (np.arange(rows)[:, None] * n_bus + node).ravel()
    sums = np.bincount(flat, values.ravel(), rows * n_bus).astype(np.float64, copy=False)
    return sums.reshape(rows, n_bus)


def dcopf_welfare(network: Network | str, *, rating: str | float = "a"
                  ) -> WelfareSolver:
    """A welfare solver through a transmission network's DC-OPF, for
    ``te.clear(orders, "vcg", welfare_solver=dcopf_welfare(net))``: the
    network VCG, whose payments include the congestion externality each
    participant imposes.

    Orders are bids (buy) and offers (sell) of MWh in one hour at their bus
    (``node`` = bus position); the network's own generators and loads stay in
    the market as its background. The welfare returned is minus the DC-OPF
    objective (bids' value less offers' and generators' cost): the background
    load's value is a constant, so it cancels in every VCG payment.

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> solver = dcopf_welfare("case9")
    >>> ob = OrderBatch(id=[1, 2], participant=["b", "s"], side=["buy", "sell"],
    ...                 price=[100.0, 1.0], quantity=[50.0, 30.0], node=[4, 6])
    >>> accepted, welfare = solver(ob)
    >>> accepted.tolist(), round(welfare, 2)
    ([50.0, 30.0], -740.69)
    """
    net = _case(network.lower()) if isinstance(network, str) else network
    numbers = net.bus_numbers

    def solve(orders: OrderBatch, /) -> tuple[npt.NDArray[np.float64], float]:
        if orders.node is None:
            raise InputError("node", "a network VCG needs every order's bus (node)")
        if (orders.node >= numbers.size).any():
            row = int(np.flatnonzero(orders.node >= numbers.size)[0])
            raise InputError("node", f"bus position outside the network ({numbers.size} buses)",
                             row=row)
        buy = orders.side == BUY
        table = {"bus": numbers[orders.node], "p_max_mw": orders.quantity,
                 "price_per_mwh": orders.price}
        res = dcopf(net, bids={k: v[buy] for k, v in table.items()},
                    offers={k: v[~buy] for k, v in table.items()}, rating=rating)
        accepted = np.zeros(len(orders))
        accepted[buy] = res.bid_p_mw
        accepted[~buy] = res.offer_p_mw
        return accepted, -float(res.objective)

    return solve
