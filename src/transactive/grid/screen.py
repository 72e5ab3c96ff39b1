"""Many operating points of a radial feeder at once: lossless LinDistFlow
flows and voltages, and whether each point is strictly within the limits.

A market that clears a feeder every interval solves an LP whose optimum,
in most intervals, is the plain merit order: no voltage or branch limit
binds. If the merit-order dispatch satisfies every limit of the LinDistFlow
LP, it is the LP's optimum (the LP only adds constraints to it) and every
network dual is zero. :func:`screen_feeder` evaluates those limits for a
whole block of intervals with two sparse products, so only the intervals
where a limit could bind need an LP.

On a tree without shunts and tap changers, the LinDistFlow flows are the
net demand beyond each branch, ``P = down @ d``, and the squared voltage
falls along the path from the substation,
``v_j = v_0 - 2 sum_{b on the path to j} (r_b P_b + x_b Q_b)``: the same
equations as :func:`~transactive.grid.distflow.solve_distflow` with
``model="lindistflow"`` (whose docstring has the model). A feeder with
shunts or taps (where the voltage enters the balances) is not screened:
:func:`screenable` says so and the caller solves its LP.

Examples
--------
>>> from transactive.grid.cases import load_case
>>> feeder = load_case("ieee33")
>>> p_mw = np.zeros((2, feeder.n_bus))
>>> p_mw[0, 17], p_mw[1, 17] = 0.5, 2.0       # 0.5 MW, then 2 MW at bus 18 (limit 0.9 pu)
>>> s = screen_feeder(feeder, p_mw, np.zeros_like(p_mw))
>>> s.within.tolist(), s.vm_pu[:, 17].round(3).tolist()
([True, False], [0.965, 0.851])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from transactive.grid.distflow import _K, _PHI, _POLY, _Feeder, _feeder
from transactive.grid.network import Network

__all__ = ["FeederScreen", "screen_feeder", "screenable"]

Array = npt.NDArray[np.float64]

MARGIN = 1e-6
"""Relative distance from a limit within which a point counts as possibly
binding (the LP's tolerances are 1e-7): such a point is left to the LP."""


@dataclass(frozen=True, eq=False)
class FeederScreen:
    """Operating points (rows) of a feeder: flows, voltages, limits."""

    within: npt.NDArray[np.bool_]
    """Strictly inside every voltage and branch limit (by :data:`MARGIN`)."""
    vm_pu: Array
    """Voltage magnitude per bus (rows x buses)."""
    losses_mw: Array
    """The losses the flows imply, ``sum r (P**2 + Q**2) / v_from`` (as the
    LinDistFlow LP reports them: an estimate; the LP has none)."""
    max_loading: Array
    """Largest ``|S| / rating`` over the rated branches (NaN: none rated)."""


def screenable(network: Network) -> bool:
    """Whether :func:`screen_feeder` stands for the feeder's LinDistFlow LP:
    radial, no shunts or line charging, no tap ratios, no generators away
    from the substation."""
    return _limits(_feeder(network)) is not None


def screen_feeder(network: Network, p_mw: npt.ArrayLike, q_mvar: npt.ArrayLike | None = None
                  ) -> FeederScreen:
    """Flows and voltages of operating points given by their net demand per
    bus (``p_mw``, ``q_mvar``: rows x ``n_bus``, demand positive, the
    substation's own entry ignored; ``q_mvar`` None: no reactive power),
    with the network's limits checked.

    The feeder must be :func:`screenable`.
    """
    fd = _feeder(network)
    lim = _limits(fd)
    if lim is None:
        raise ValueError("the feeder has shunts, taps or generators: solve its LP")
    d_p = np.atleast_2d(np.asarray(p_mw, dtype=np.float64)) / fd.base
    # the flow on each branch is the net demand beyond it (up to orientation,
    # which neither the voltage drop along the path nor |S| depends on)
    flow_p = (fd.down @ d_p.T).T
    drop = fd.r * flow_p
    if q_mvar is not None:
        d_q = np.atleast_2d(np.asarray(q_mvar, dtype=np.float64)) / fd.base
        flow_q = (fd.down @ d_q.T).T
        drop += fd.x * flow_q
    v = fd.v0 - 2.0 * (lim.up @ drop.T).T
    within = ((v > lim.v_low) & (v < lim.v_high)).all(axis=1)
    max_loading = np.full(d_p.shape[0], np.nan)
    if lim.rated.size:
        fp = flow_p[:, lim.rated]
        # the LP's 16-gon, symmetric about the origin: its largest side value
        if q_mvar is None:
            sides = np.abs(fp[..., None] * lim.cos).max(axis=2)
            s = np.abs(fp)
        else:
            fq = flow_q[:, lim.rated]
            sides = np.abs(fp[..., None] * lim.cos + fq[..., None] * lim.sin).max(axis=2)
            s = np.hypot(fp, fq)
        within &= (sides < lim.side_max).all(axis=1)
        max_loading = (s / lim.rate).max(axis=1)
    square = flow_p**2 if q_mvar is None else flow_p**2 + flow_q**2
    losses = (fd.r * square / v[:, fd.f]).sum(axis=1) * fd.base
    return FeederScreen(within=within, vm_pu=np.sqrt(np.maximum(v, 0.0)), losses_mw=losses,
                        max_loading=max_loading)


@dataclass(frozen=True, eq=False)
class _Limits:
    """What the screen of a feeder needs beyond its structure (built once,
    kept with the feeder's cached blocks)."""

    up: sp.csr_matrix  # ``down`` transposed: the branches on each bus's path
    v_low: Array  # the buses' squared voltage limits, less the margin (the
    v_high: Array  # substation's: none, its voltage is set)
    rated: npt.NDArray[np.int64]  # branches with a rating
    rate: Array  # their ratings
    side_max: Array  # their 16-gons' side limit, less the margin
    cos: Array  # the 16-gon's side directions
    sin: Array


def _limits(fd: _Feeder) -> _Limits | None:
    """The feeder's :class:`_Limits`; None where it is not screenable."""
    if "screen" not in fd.blocks:
        ok = (fd.af == 1.0).all() and not fd.g_sh.any() and not fd.b_sh.any() and not len(fd.gens)
        v_low, v_high = fd.vmin2 * (1 + MARGIN), fd.vmax2 * (1 - MARGIN)
        v_low[fd.root], v_high[fd.root] = -np.inf, np.inf
        rated = np.flatnonzero(np.isfinite(fd.rate))
        fd.blocks["screen"] = None if not ok else _Limits(
            up=fd.down.T.tocsr(), v_low=v_low, v_high=v_high,
            rated=rated, rate=fd.rate[rated], side_max=fd.rate[rated] * _POLY * (1 - MARGIN),
            cos=np.cos(_PHI[: _K // 2]), sin=np.sin(_PHI[: _K // 2]))
    limits: _Limits | None = fd.blocks["screen"]
    return limits
