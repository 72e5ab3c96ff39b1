"""Best-response dynamics among strategic bidders in a repeated double auction.

The players are buyers with private values and sellers with private costs
(per kWh); a *strategy* is a shading factor from a grid, and a player
reports ``factor * value`` (a buyer shades with a factor below 1, a seller
with one above 1). Every round the same market is cleared again with the
current reports, and each player in turn (round-robin, Gauss-Seidel) switches
to the factor that maximises its utility (its true surplus) given the
others' current factors. A player keeps its factor unless another one gains
more than ``epsilon``.

The dynamics stop when

- a whole round passes without a switch: every player is within ``epsilon`` of
  its best response to the final profile, so the profile is an
  ``epsilon``-Nash equilibrium of the stage game on the grid (``"converged"``);
- a profile repeats at the end of a round (``"cycle"``), or
- ``max_rounds`` is reached (``"max_rounds"``).

In a truthful mechanism (``vcg``, ``mcafee`` with unit traders) truthful
reporting is a best response to anything, so the dynamics never leave the
truthful profile; in ``uniform`` and ``pay_as_bid`` players learn to shade.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import get
from transactive.markets.truthful import welfare_optimum
from transactive.orders import OrderBatch

__all__ = ["DEFAULT_SHADING", "BestResponse", "best_response_dynamics"]

FloatArray = npt.NDArray[np.float64]
Status = Literal["converged", "cycle", "max_rounds"]

DEFAULT_SHADING: FloatArray = np.round(np.linspace(0.5, 1.5, 21), 10)
"""Shading factors a player may choose (0.5 to 1.5 by 0.05)."""


@dataclass(frozen=True)
class BestResponse:
    """Outcome of :func:`best_response_dynamics`.

    ``factors`` and ``utilities`` are per player (buyers first, then
    sellers) at the final profile; ``max_gain`` is the most any player could
    gain by deviating from it on the grid (at most ``epsilon`` when
    converged); ``efficiency`` is the welfare of the final profile at true
    values over the optimum (HiGHS LP). ``trajectory`` has one row per round
    and player: ``round``, ``player``, ``side`` (+1 buyer, -1 seller),
    ``factor`` and ``utility`` after the player's move, and ``welfare`` (true
    gains from trade after the move).
    """

    status: Status
    rounds: int
    factors: FloatArray
    utilities: FloatArray
    max_gain: float
    efficiency: float
    clearing: Clearing
    trajectory: pd.DataFrame

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def _amounts(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(name, "must be a non-empty list of finite numbers")
    return arr


def best_response_dynamics(
    values: npt.ArrayLike,
    costs: npt.ArrayLike,
    *,
    mechanism: str = "uniform",
    factors: npt.ArrayLike = DEFAULT_SHADING,
    start: float = 1.0,
    max_rounds: int = 50,
    epsilon: float = 1e-9,
    rng: np.random.Generator | None = None,
    options: dict[str, Any] | None = None,
) -> BestResponse:
    """Run round-robin best-response dynamics (see the module docstring).

    Parameters
    ----------
    values, costs : array
        Buyers' values and sellers' costs per kWh; each player trades one kWh.
    mechanism : str
        A registered double auction (``uniform``, ``pay_as_bid``, ``mcafee``,
        ``vcg``, ``muda``, ...).
    factors : array
        The shading factors a player may choose; ``start`` (default 1, truthful)
        must be one of them and is everyone's first strategy.
    max_rounds : int
        Most rounds to play.
    epsilon : float
        A player switches only for a gain above ``epsilon``.
    rng : numpy.random.Generator, optional
        Needed by randomised mechanisms: one draw fixes the mechanism's
        randomness for the whole game, so utilities are deterministic.
    options : dict, optional
        Options passed to the mechanism.

    Examples
    --------
    >>> import numpy as np
    >>> game = best_response_dynamics([1.0, 0.9, 0.6, 0.4], [0.1, 0.3, 0.5, 0.8],
    ...                               mechanism="pay_as_bid")
    >>> game.status, bool(game.max_gain <= 1e-9), bool(game.factors[0] < 1)
    ('converged', True, True)
    >>> truthful = best_response_dynamics([1.0, 0.9, 0.6, 0.4], [0.1, 0.3, 0.5, 0.8],
    ...                                   mechanism="vcg")
    >>> truthful.rounds, truthful.factors.tolist() == [1.0] * 8
    (1, True)
    """
    v, c = _amounts("values", values), _amounts("costs", costs)
    grid = np.unique(_amounts("factors", factors))
    if grid.min() < 0:
        raise InputError("factors", "must be >= 0")
    if not np.any(grid == start):
        raise InputError("start", f"must be one of the factors, got {start!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise InputError("max_rounds", f"must be a whole number >= 1, got {max_rounds!r}")
    if not (np.isfinite(epsilon) and epsilon >= 0):
        raise InputError("epsilon", f"must be a finite number >= 0, got {epsilon!r}")
    fn = get(mechanism)
    opts = dict(options or {})
    if "rng" in inspect.signature(fn).parameters:
        if not isinstance(rng, np.random.Generator):
            raise InputError("rng", f"{mechanism!r} is randomised: pass rng=default_rng(seed)")
        seed = int(rng.integers(0, 2**63))
    else:
        seed = None

    n_b = v.size
    n = n_b + c.size
    true = np.r_[v, c]
    side = np.r_[np.ones(n_b), -np.ones(c.size)]
    ob = OrderBatch(id=np.arange(n), participant=np.arange(n), side=side, price=true,
                    quantity=np.ones(n))

    def play(profile: FloatArray) -> Clearing:
        extra = {} if seed is None else {"rng": np.random.default_rng(seed)}
        return fn(ob.replace(price=true * profile), **opts, **extra)

    def utility(cl: Clearing) -> FloatArray:
        return np.asarray(cl.accepted * side * true - cl.payment, dtype=np.float64)

    def best_reply(profile: FloatArray, i: int) -> tuple[float, float, float]:
        """Current utility of player ``i``, its best utility and factor."""
        trial = profile.copy()
        payoffs = np.empty(grid.size)
        for k, f in enumerate(grid):
            trial[i] = f
            payoffs[k] = utility(play(trial))[i]
        now = float(payoffs[np.flatnonzero(grid == profile[i])[0]])
        best = np.flatnonzero(payoffs >= payoffs.max() - 1e-15)
        pick = best[np.argmin(np.abs(grid[best] - 1.0))]  # among ties, the least shading
        return now, float(payoffs[pick]), float(grid[pick])

    profile = np.full(n, float(start))
    seen = {profile.tobytes()}
    rows: list[dict[str, Any]] = []
    status: Status = "max_rounds"
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        switched = False
        for i in range(n):
            now, best, f = best_reply(profile, i)
            if best > now + epsilon:
                profile[i] = f
                switched = True
            cl = play(profile)
            rows.append({"round": rounds, "player": i, "side": int(side[i]),
                         "factor": profile[i], "utility": float(utility(cl)[i]),
                         "welfare": float(np.dot(cl.accepted * side, true))})
        if not switched:
            status = "converged"
            break
        key = profile.tobytes()
        if key in seen:
            status = "cycle"
            break
        seen.add(key)

    final = play(profile)
    gains = [best - now for now, best, _ in (best_reply(profile, i) for i in range(n))]
    optimum = welfare_optimum(ob)[1]
    welfare = float(np.dot(final.accepted * side, true))
    return BestResponse(
        status=status,
        rounds=rounds,
        factors=profile.copy(),
        utilities=utility(final),
        max_gain=float(max(gains)),
        efficiency=welfare / optimum if optimum > 0 else float("nan"),
        clearing=final,
        trajectory=pd.DataFrame(rows),
    )
