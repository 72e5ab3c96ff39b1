"""Carbon-aware settlement: each participant's emissions and carbon charge in an interval.

A trade's emissions are the seller's local emissions plus the upstream
emissions it causes through its effect on the feeder's losses: the marginal
loss factor of each end's bus times the energy, supplied at the substation at
the marginal emission rate of upstream supply. :func:`carbon_lines` works these
out per participant (netted over its trades in the interval), with the
emissions of what it imported from the utility, and prices them at a carbon
price; the charge enters the settlement statement as ``carbon_cost``
(:func:`transactive.settlement.rules.compute_lines`), paid to the carbon
account.

Sign convention (used throughout): energy **injected into the feeder is
positive** (generation minus consumption, so a consumer's injection is
negative); emissions (kg CO2) and money are **positive when charged** to the
participant (it pays) and negative when credited, as in
:class:`~transactive.clearing.Clearing`.

The lines of participant ``i`` at bus position ``k = node[i]``
--------------------------------------------------------------
``loss_factor``  ``mlf_k = dLoss/dP_k`` (MW per MW) from
                 :func:`~transactive.grid.losses.marginal_loss_factors` at the
                 interval's operating point (below): the change in the feeder's
                 losses per unit more injected at ``k``, the substation (the
                 slack, where ``mlf = 0``) taking up the balance.
``local_kg``     ``local_kg_per_kwh * sold_kwh``: emissions of the local
                 generation it sold in the market (life-cycle, default 0).
``upstream_kg``  ``grid_kg_per_kwh * mlf_k * injection_kwh``: injecting ``x``
                 kWh at ``k`` changes the losses by ``mlf_k * x`` kWh, which the
                 substation must supply (or is spared). Positive = it adds
                 losses (charged), negative = it relieves the lines (credited).
                 On a feeder importing from the substation, ``mlf_k < 0`` away
                 from it, so a producer there is credited and a consumer there
                 charged; under reverse flow the signs turn with the physics.
``import_kg``    ``grid_kg_per_kwh * imported_kwh``: emissions of what it bought
                 from the utility at the tariff.
``cost``         ``price_per_kg * (local_kg + upstream_kg + import_kg)``, currency.

A trade of ``q`` kWh from a seller at bus ``a`` to a buyer at bus ``c`` thus
carries ``local_kg_per_kwh * q + grid_kg_per_kwh * (mlf_a - mlf_c) * q``: the
seller's lines hold the local part and ``mlf_a * q``, the buyer's ``-mlf_c * q``.
Because ``injection_kwh`` is the participant's net injection, energy it made
and used itself, or bought from the utility, enters its loss effect too.

Operating point and scale
-------------------------
The loss factors are evaluated once per call, by one AC power flow, at bus
injections ``p_inj_mw[k] = sum(injection_kwh at k) * kw_per_unit / dt_h /
1000`` and zero reactive injections (participants at unity power factor).
Only the participants are counted: the network's own loads and generator set
points are left out (the participants *are* the feeder's customers, as in the
simulation's network market). As in :mod:`transactive.markets.network`, the
feeder is in MW and one simulated kWh stands for ``kw_per_unit`` kWh on it;
loss factors are ratios (MW per MW), so every figure here stays per simulated
kWh, and ``kw_per_unit`` only sets how loaded the feeder is.

The figures are first order (marginal). Their sum over the participants,
``grid_kg_per_kwh * sum_k mlf_k * injection_k``, is the first-order change of
the losses along the participants' injections, ``d/dt Loss(t * p)`` at ``t = 1``.
Losses grow about quadratically with the flows, so this is about twice the
interval's actual losses (2.1 times on the loaded IEEE 33-bus feeder):
marginal loss figures over-recover, as marginal loss prices do.

Examples
--------
A two-bus feeder (``r = 0.05``, ``x = 0.04`` pu on 100 MVA). At the far bus a
consumer uses 12 kWh: 2 bought from a producer next door, 3 from a producer at
the substation, 7 imported from the utility. One simulated kWh in a quarter
hour stands for 4 MW on the feeder, so the far bus draws 40 MW:

>>> from transactive.grid.network import Network
>>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
...               branch={"from_bus": [1], "to_bus": [2], "r_pu": [0.05], "x_pu": [0.04]},
...               gen={"bus": [1], "p_max_mw": [100.0]}, load={"bus": [], "p_mw": []})
>>> prices = CarbonPrices(price_per_kg=0.1, grid_kg_per_kwh=0.4, local_kg_per_kwh=0.05)
>>> lines = carbon_lines(net, node=[1, 1, 0], injection_kwh=[-12.0, 2.0, 3.0],
...                      sold_kwh=[0.0, 2.0, 3.0], imported_kwh=[7.0, 0.0, 0.0],
...                      dt_h=0.25, kw_per_unit=1000.0, prices=prices)
>>> lines.loss_factor.round(4).tolist()
[-0.0426, -0.0426, 0.0]
>>> lines.upstream_kg.round(4).tolist()     # the far consumer charged, the far producer credited
[0.2045, -0.0341, 0.0]
>>> lines.total_kg().round(4).tolist(), lines.cost.round(4).tolist()
([3.0045, 0.0659, 0.15], [0.3004, 0.0066, 0.015])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.grid.losses import marginal_loss_factors
from transactive.grid.network import Network

__all__ = ["CarbonLines", "CarbonPrices", "carbon_costs", "carbon_lines"]

Array = npt.NDArray[np.float64]

_PRICE_FIELDS = ("price_per_kg", "grid_kg_per_kwh", "local_kg_per_kwh")


@dataclass(frozen=True)
class CarbonPrices:
    """The carbon price and emission rates of an interval.

    Parameters
    ----------
    price_per_kg : float
        Carbon price, currency per kg CO2.
    grid_kg_per_kwh : float
        Marginal emission rate of upstream (substation) supply, kg CO2 per kWh.
    local_kg_per_kwh : float
        Emissions of the local generation sold (e.g. PV life-cycle), kg CO2 per
        kWh; default 0.

    Each must be a finite number >= 0 (else :class:`InputError` naming it).
    """

    price_per_kg: float
    grid_kg_per_kwh: float
    local_kg_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise InputError(name, f"must be a number, got {value!r}")
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise InputError(name, f"must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, number)


@dataclass(frozen=True, eq=False)
class CarbonLines:
    """Each participant's carbon lines in one interval (read-only arrays of
    length P, in the order of the participants; see the module docstring).

    ``loss_factor`` is MW per MW; ``*_kg`` are kg CO2 and ``cost`` is currency,
    positive = charged to the participant, negative = credited.
    """

    loss_factor: Array
    local_kg: Array
    upstream_kg: Array
    import_kg: Array
    cost: Array

    def total_kg(self) -> Array:
        """Each participant's emissions: ``local_kg + upstream_kg + import_kg``."""
        return self.local_kg + self.upstream_kg + self.import_kg


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(name, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InputError(name, f"must be a finite number > 0, got {value!r}")
    return number


def _nodes(node: Any, n_bus: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(node)
    if arr.ndim != 1:
        raise InputError("node", f"must be a 1-d array of bus positions, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iuf":
        raise InputError("node", f"must hold integer bus positions, got type {arr.dtype}")
    values = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
        raise InputError("node", f"must be an integer bus position, got {arr[bad[0]]!r}",
                         row=int(bad[0]))
    out = values.astype(np.int64)
    bad = np.flatnonzero((out < 0) | (out >= n_bus))
    if bad.size:
        raise InputError("node", f"bus position {out[bad[0]]} is outside the network "
                         f"(0 to {n_bus - 1})", row=int(bad[0]))
    return out


def _vector(name: str, values: Any, n: int, *, nonnegative: bool) -> Array:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be an array of numbers") from None
    if arr.shape != (n,):
        raise InputError(name, f"must have one value per participant ({n}), "
                         f"got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(name, f"must be finite, got {arr[bad[0]]!r}", row=int(bad[0]))
    if nonnegative:
        bad = np.flatnonzero(arr < 0)
        if bad.size:
            raise InputError(name, f"must be >= 0, got {arr[bad[0]]!r}", row=int(bad[0]))
    return arr


def _frozen(arr: Array) -> Array:
    arr.flags.writeable = False
    return arr


def carbon_lines(
    network: Network,
    node: npt.ArrayLike,
    injection_kwh: npt.ArrayLike,
    sold_kwh: npt.ArrayLike,
    imported_kwh: npt.ArrayLike,
    *,
    dt_h: float,
    kw_per_unit: float,
    prices: CarbonPrices,
) -> CarbonLines:
    """Each participant's emissions and carbon charge in one interval.

    The rules, the sign convention and the operating point of the loss factors
    are those of the module docstring; one AC power flow per call.

    Parameters
    ----------
    network : Network
        The feeder; its reference bus is the substation.
    node : array of int, shape (P,)
        Each participant's bus position (0-based row of ``network.bus``).
    injection_kwh : array of float, shape (P,)
        Each participant's net injection into the feeder in the interval
        (generation minus consumption; negative for a consumer), kWh.
    sold_kwh : array of float, shape (P,)
        What it sold in the market, kWh (>= 0).
    imported_kwh : array of float, shape (P,)
        What it bought from the utility at the tariff, kWh (>= 0; exports to
        the utility earn no credit here).
    dt_h : float
        Interval length, hours (> 0).
    kw_per_unit : float
        kW on the feeder that one simulated kW stands for (> 0).
    prices : CarbonPrices

    Returns
    -------
    CarbonLines

    Raises
    ------
    InputError
        Naming the argument: wrong shapes, a node outside the network,
        non-finite or (for ``sold_kwh``/``imported_kwh``) negative energies,
        ``dt_h`` or ``kw_per_unit`` not > 0.
    SolverError
        If the AC power flow does not converge (injections the feeder cannot
        carry).
    """
    if not isinstance(network, Network):
        raise InputError("network", f"must be a Network, got {type(network).__name__}")
    if not isinstance(prices, CarbonPrices):
        raise InputError("prices", f"must be a CarbonPrices, got {type(prices).__name__}")
    hours = _positive("dt_h", dt_h)
    scale = _positive("kw_per_unit", kw_per_unit)
    at = _nodes(node, network.n_bus)
    n = at.size
    injection = _vector("injection_kwh", injection_kwh, n, nonnegative=False)
    sold = _vector("sold_kwh", sold_kwh, n, nonnegative=True)
    imported = _vector("imported_kwh", imported_kwh, n, nonnegative=True)

    p_inj_mw = np.bincount(at, injection, network.n_bus) * (scale / hours / 1000.0)
    mlf = marginal_loss_factors(network, p_inj_mw, np.zeros(network.n_bus))[at]
    local_kg, upstream_kg, import_kg = _emissions(mlf, injection, sold, imported, prices)
    cost = prices.price_per_kg * (local_kg + upstream_kg + import_kg)
    return CarbonLines(loss_factor=_frozen(mlf), local_kg=_frozen(local_kg),
                       upstream_kg=_frozen(upstream_kg), import_kg=_frozen(import_kg),
                       cost=_frozen(cost))


def _emissions(mlf: Array, injection: Array, sold: Array, imported: Array,
               prices: CarbonPrices) -> tuple[Array, Array, Array]:
    """Local, upstream (loss effect) and import emissions, kg (any shape)."""
    return (prices.local_kg_per_kwh * sold, prices.grid_kg_per_kwh * mlf * injection,
            prices.grid_kg_per_kwh * imported)


def carbon_costs(network: Network, node: npt.ArrayLike, injection_kwh: Array, sold_kwh: Array,
                 imported_kwh: Array, *, dt_h: float, kw_per_unit: float,
                 prices: CarbonPrices) -> Array:
    """The carbon charge of :func:`carbon_lines` for many intervals at once:
    energies are ``(T, P)`` arrays (interval by participant), the charge is
    ``(T, P)``; the loss factors of all ``T`` operating points come from one
    stacked AC power flow (:func:`~transactive.grid.losses.marginal_loss_factors`).
    Row ``t`` equals ``carbon_lines`` of row ``t`` alone.

    Examples
    --------
    >>> from transactive.grid.network import Network
    >>> net = Network(bus={"bus": [1, 2], "type": [3, 1]},
    ...               branch={"from_bus": [1], "to_bus": [2], "r_pu": [0.05], "x_pu": [0.04]},
    ...               gen={"bus": [1], "p_max_mw": [100.0]}, load={"bus": [], "p_mw": []})
    >>> prices = CarbonPrices(price_per_kg=0.1, grid_kg_per_kwh=0.4)
    >>> inj, zero = np.array([[-12.0, 2.0], [-6.0, 1.0]]), np.zeros((2, 2))
    >>> stacked = carbon_costs(net, [1, 1], inj, zero, zero, dt_h=0.25, kw_per_unit=1000.0,
    ...                        prices=prices)
    >>> one = carbon_lines(net, [1, 1], inj[1], zero[1], zero[1], dt_h=0.25,
    ...                    kw_per_unit=1000.0, prices=prices).cost
    >>> bool(np.allclose(stacked[1], one, rtol=1e-12, atol=0))
    True
    """
    at = _nodes(node, network.n_bus)
    injection = np.asarray(injection_kwh, dtype=np.float64)
    if injection.ndim != 2 or injection.shape[1] != at.size:
        raise InputError("injection_kwh", f"must be (T, {at.size}), got {injection.shape}")
    scale = _positive("kw_per_unit", kw_per_unit) / _positive("dt_h", dt_h) / 1000.0
    t = injection.shape[0]
    rows = np.repeat(np.arange(t), at.size) * network.n_bus + np.tile(at, t)
    p_inj_mw = np.bincount(rows, injection.ravel(), t * network.n_bus).reshape(t, -1) * scale
    mlf = marginal_loss_factors(network, p_inj_mw, np.zeros(network.n_bus))[:, at]
    kg = _emissions(mlf, injection, np.asarray(sold_kwh, dtype=np.float64),
                    np.asarray(imported_kwh, dtype=np.float64), prices)
    return prices.price_per_kg * (kg[0] + kg[1] + kg[2])
