"""Market-power measures of a clearing's outcome, per owner of supply.

* **Lerner index** of a unit: ``(p - mc) / p``, its price-cost margin as a
  share of the price it is paid (Lerner 1934, *Review of Economic Studies*
  1(3)); 0 for a price taker at its marginal cost, ``nan`` where the price is
  not positive. :func:`lerner_index` weights units by their output to give
  an owner's (or the market's) index.
* **Herfindahl-Hirschman index** (HHI) on dispatched energy: the sum over
  owners of the squared market shares in percent, 0 .. 10,000 (the US DOJ/FTC
  Horizontal Merger Guidelines read > 1,800 as highly concentrated, 2023
  edition).
* **Residual supply index** (RSI) of an owner: the capacity of everyone
  else over the demand, ``(sum cap - cap_i) / demand``; below 1 the owner is
  *pivotal* (the demand cannot be met without it). This is the index of the
  California ISO (Sheffrin 2002), computed here at the outcome's demand.

Owners are labels (any hashable numpy values); the results are in order of
``numpy.unique`` of the labels.

Examples
--------
>>> owner = np.array(["a", "a", "b"])
>>> hhi(np.array([30.0, 30.0, 40.0]), owner)
5200.0
>>> residual_supply_index(np.array([50.0, 50.0, 80.0]), owner, 120.0).round(3).tolist()
[0.667, 0.833]
>>> lerner_index(np.array([40.0, 40.0, 40.0]), np.array([20.0, 30.0, 40.0]),
...              np.array([10.0, 10.0, 0.0]), owner).tolist()
[0.375, nan]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError

__all__ = ["hhi", "lerner", "lerner_index", "residual_supply_index"]

Array = npt.NDArray[np.float64]


def _same_length(**arrays: npt.NDArray[Any]) -> int:
    sizes = {name: a.shape for name, a in arrays.items()}
    first = next(iter(sizes.values()))
    for name, shape in sizes.items():
        if shape != first or len(shape) != 1:
            raise InputError(name, f"must be one-dimensional and as long as the others "
                                   f"({first[0] if first else 0}), got shape {shape}")
    return first[0]


def lerner(price: Array, marginal_cost: Array) -> Array:
    """``(price - marginal_cost) / price`` element by element; ``nan`` where
    the price is not positive."""
    price, marginal_cost = np.asarray(price, float), np.asarray(marginal_cost, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(price > 0, (price - marginal_cost) / price, np.nan)


def lerner_index(price: Array, marginal_cost: Array, energy: Array,
                 owner: npt.NDArray[Any]) -> Array:
    """Each owner's output-weighted Lerner index over its units with output
    and a positive price (``nan`` for an owner with none)."""
    price, marginal_cost, energy = (np.asarray(a, float) for a in (price, marginal_cost, energy))
    _same_length(price=price, marginal_cost=marginal_cost, energy=energy, owner=owner)
    _, k = np.unique(owner, return_inverse=True)
    n = int(k.max()) + 1 if k.size else 0
    index = lerner(price, marginal_cost)
    counted = (energy > 0) & np.isfinite(index)
    w = np.where(counted, energy, 0.0)
    top = np.bincount(k, np.where(counted, w * index, 0.0), n)
    bottom = np.bincount(k, w, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / bottom, np.nan)


def hhi(energy: Array, owner: npt.NDArray[Any]) -> float:
    """Herfindahl-Hirschman index of the owners' shares of ``energy`` (>= 0),
    0 .. 10,000; ``nan`` if nothing is dispatched."""
    energy = np.asarray(energy, float)
    _same_length(energy=energy, owner=owner)
    if (energy < 0).any():
        raise InputError("energy", "must be >= 0", row=int(np.flatnonzero(energy < 0)[0]))
    _, k = np.unique(owner, return_inverse=True)
    by_owner = np.bincount(k, energy)
    total = by_owner.sum()
    return float(np.sum((100.0 * by_owner / total) ** 2)) if total > 0 else float("nan")


def residual_supply_index(capacity: Array, owner: npt.NDArray[Any], demand: float) -> Array:
    """Each owner's residual supply index: the others' capacity over ``demand`` (> 0)."""
    capacity = np.asarray(capacity, float)
    _same_length(capacity=capacity, owner=owner)
    if not np.isfinite(demand) or demand <= 0:
        raise InputError("demand", f"must be > 0, got {demand!r}")
    _, k = np.unique(owner, return_inverse=True)
    by_owner = np.bincount(k, capacity)
    return (by_owner.sum() - by_owner) / demand
