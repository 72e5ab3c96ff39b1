"""Figures of a run: welfare, prices, self-sufficiency, fairness (Lorenz, Gini)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.sim.engine import SimulationResult

__all__ = ["fair_share_gains", "gini", "lorenz_curve", "summary"]


def lorenz_curve(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points ``(x, y)`` of the Lorenz curve of non-negative ``values``.

    ``x`` is the population share (0..1), ``y`` the share of the total held by
    the poorest ``x``; both start at 0.

    Examples
    --------
    >>> x, y = lorenz_curve([1, 1, 2])
    >>> x.round(3).tolist(), y.round(3).tolist()
    ([0.0, 0.333, 0.667, 1.0], [0.0, 0.25, 0.5, 1.0])
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size and v[0] < 0:
        raise ValueError("a Lorenz curve needs non-negative values")
    cum = np.concatenate([[0.0], np.cumsum(v)])
    total = cum[-1]
    y = cum / total if total > 0 else np.linspace(0.0, 1.0, v.size + 1)
    return np.linspace(0.0, 1.0, v.size + 1), y


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of non-negative ``values`` (0 = equal, -> 1 = one holds all).

    Examples
    --------
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 4])
    (0.0, 0.75)
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size == 0 or v.sum() == 0:
        return 0.0
    if v[0] < 0:
        raise ValueError("the Gini coefficient needs non-negative values")
    n = v.size
    ranks = np.arange(1, n + 1)
    return float((2 * np.dot(ranks, v)) / (n * v.sum()) - (n + 1) / n)


def fair_share_gains(gains: npt.ArrayLike, tol: float = 1e-9) -> npt.NDArray[np.float64] | None:
    """``gains`` with rounding noise below ``tol`` clipped to 0, or None when
    someone really lost (then a Lorenz curve or Gini of gains is undefined)."""
    g = np.asarray(gains, dtype=np.float64)
    return np.clip(g, 0.0, None) if (g > -tol).all() else None


def summary(result: SimulationResult) -> dict[str, Any]:
    """The key figures of a run, as plain numbers (money in tariff currency)."""
    iv, hh = result.intervals, result.households
    traded = iv["volume_kwh"] > 0
    volume = float(iv["volume_kwh"].sum())
    prices = iv.loc[traded, "price"]
    vwap = float(np.dot(prices, iv.loc[traded, "volume_kwh"]) / volume) if volume > 0 else np.nan
    load, pv = float(iv["load_kwh"].sum()), float(iv["pv_kwh"].sum())
    baseline, p2p = float(hh["bill_baseline"].sum()), float(hh["bill_p2p"].sum())
    gains = hh["gain"].to_numpy()
    fair = fair_share_gains(gains)
    return {
        "households": len(hh),
        "intervals": len(iv),
        "mechanism": result.scenario.market.mechanism,
        "strategy": result.scenario.market.strategy,
        "load_kwh": load,
        "pv_kwh": pv,
        "p2p_volume_kwh": volume,
        "p2p_share_of_load": volume / load if load > 0 else 0.0,
        "import_kwh": float(iv["import_kwh"].sum()),
        "export_kwh": float(iv["export_kwh"].sum()),
        "grid_import_kwh": float(iv["grid_import_kwh"].sum()),
        "curtailed_kwh": float(iv["curtailed_kwh"].sum()),
        "unserved_kwh": float(iv["unserved_kwh"].sum()),
        "baseline_unserved_kwh": float(iv["baseline_unserved_kwh"].sum()),
        "self_sufficiency": 1.0 - float(iv["grid_import_kwh"].sum()) / load if load > 0 else 0.0,
        "intervals_with_trade": int(traded.sum()),
        "mean_price": float(prices.mean()) if len(prices) else np.nan,
        "volume_weighted_price": vwap,
        "welfare": float(iv["welfare"].sum()),
        "bill_baseline": baseline,
        "bill_p2p": p2p,
        "savings": baseline - p2p,
        "savings_share": (baseline - p2p) / baseline if baseline > 0 else 0.0,
        "operator_surplus": float(iv["operator_surplus"].sum()),
        "households_better_off": int((gains > 1e-9).sum()),
        "households_worse_off": int((gains < -1e-9).sum()),
        "gini_of_gains": np.nan if fair is None else gini(fair),
    }
