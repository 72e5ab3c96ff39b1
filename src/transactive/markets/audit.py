"""Measure a mechanism's economic properties on many seeded random markets.

:func:`audit` draws ``n_markets`` markets of unit-demand traders with private
values, has everyone report truthfully, and measures for each mechanism

- **allocative efficiency**: the gains from trade at the *true* values divided
  by the welfare optimum, solved as a linear programme with HiGHS
  (:func:`~transactive.markets.truthful.welfare_optimum`);
- **individual rationality**: how many truthful participants end with a loss
  (a negative surplus at their true value);
- **budget balance**: the operator's surplus (``payment.sum()``) per market, and
  the share of markets in which it runs a deficit;
- **incentive compatibility**: for ``deviators`` sampled participants per
  market, the best gain from reporting ``factor * value`` instead of the
  value, over the grid ``factors``, while everyone else stays truthful. A
  truthful mechanism shows no gain; the mean best factor shows which way
  traders shade (buyers below 1, sellers above 1).

Markets: buyers' values and sellers' costs are independent uniform draws on
``[0, 1)`` per kWh, each trader wants one kWh (one order of quantity 1). The
single-lot ``vickrey`` auction is audited on its own market form: one seller
offering ``n_sellers`` units at a uniform cost, and ``n_buyers`` unit bidders;
its deviators are the bidders (the seller's reserve is not a bid). A
randomised mechanism (one taking ``rng``) gets the same draws for the
truthful and every deviating report of a market (common random numbers).
A mechanism that does not balance energy among the participants (``amm``
trades against a pool) is refused: audit it with ``compare``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets.registry import get
from transactive.markets.truthful import welfare_optimum
from transactive.orders import OrderBatch

__all__ = ["DEFAULT_FACTORS", "MARKET_FORMS", "audit", "plot_audit"]

FloatArray = npt.NDArray[np.float64]
MarketForm = Literal["double", "lot"]

DEFAULT_FACTORS: FloatArray = np.round(np.linspace(0.5, 1.5, 11), 10)
"""Report multipliers searched for a profitable misreport (0.5 to 1.5 by 0.1)."""

MARKET_FORMS: Mapping[str, MarketForm] = {"vickrey": "lot"}
"""Mechanisms audited on a market other than the double auction."""

_TOL = 1e-9


def _market(form: MarketForm, n_buyers: int, n_sellers: int, rng: np.random.Generator
            ) -> OrderBatch:
    values = rng.random(n_buyers)
    if form == "lot":
        n, side = n_buyers + 1, np.r_[np.ones(n_buyers), -1.0]
        price, quantity = np.r_[values, rng.random()], np.r_[np.ones(n_buyers), n_sellers]
    else:
        n = n_buyers + n_sellers
        side = np.r_[np.ones(n_buyers), -np.ones(n_sellers)]
        price, quantity = np.r_[values, rng.random(n_sellers)], np.ones(n)
    return OrderBatch(id=np.arange(n), participant=np.arange(n), side=side, price=price,
                      quantity=quantity)


def _check(mechanisms: Sequence[str], options: Mapping[str, Mapping[str, Any]]
           ) -> dict[str, bool]:
    """Validate the names and options; map each name to whether it takes ``rng``."""
    if isinstance(mechanisms, str) or not len(mechanisms):
        raise InputError("mechanisms", "give a non-empty list of mechanism names")
    takes_rng = {}
    for name in mechanisms:
        params = inspect.signature(get(name)).parameters
        given = set(options.get(name, {}))
        missing = [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
                   and p.default is inspect.Parameter.empty and p.name not in given | {"rng"}]
        if missing:
            raise InputError("mechanisms", f"{name!r} needs the option(s) "
                             f"{', '.join(missing)}: pass options={{{name!r}: {{...}}}}")
        takes_rng[name] = "rng" in params
    return takes_rng


def _utility(c: Clearing, values: FloatArray) -> FloatArray:
    """Each order's surplus at the true values (one order per participant)."""
    return c.accepted * c.orders.side * values - c.payment


def audit(
    mechanisms: Sequence[str],
    *,
    rng: np.random.Generator,
    n_markets: int = 50,
    n_buyers: int = 8,
    n_sellers: int = 8,
    deviators: int = 2,
    factors: npt.ArrayLike = DEFAULT_FACTORS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Audit mechanisms on the same seeded random markets (see the module text).

    Parameters
    ----------
    mechanisms : list of str
        Registered mechanism names.
    rng : numpy.random.Generator
        All draws (values, deviators, randomised mechanisms) come from it.
    n_markets, n_buyers, n_sellers : int
        How many markets, and their size.
    deviators : int
        Participants per market whose misreports are searched.
    factors : array
        Report multipliers searched (1.0, truthful, is always included).
    options : dict, optional
        Options per mechanism, e.g. ``{"uniform": {"price_rule": "k", "k": 0.5}}``.

    Returns
    -------
    pandas.DataFrame
        One row per mechanism (index ``mechanism``) with columns
        ``efficiency`` (mean) and ``efficiency_min``, ``ir_violations`` and
        ``ir_violation_rate`` (per participant and market),
        ``operator_surplus_mean``, ``deficit_share`` (markets with a
        deficit), ``ic_gain_mean`` and ``ic_gain_max`` (money per market),
        ``ic_profitable_share`` (deviators who gain), ``buyer_best_factor`` and
        ``seller_best_factor`` (mean best report multiplier) and ``n_markets``.

    Examples
    --------
    >>> import numpy as np
    >>> df = audit(["vcg", "pay_as_bid"], rng=np.random.default_rng(0), n_markets=5)
    >>> bool(df.loc["vcg", "ic_gain_max"] < 1e-9), bool(df.loc["pay_as_bid", "ic_gain_mean"] > 0)
    (True, True)
    >>> bool(df.loc["vcg", "operator_surplus_mean"] < 0)
    True
    """
    options = dict(options or {})
    takes_rng = _check(mechanisms, options)
    for name, value in (("n_markets", n_markets), ("n_buyers", n_buyers),
                        ("n_sellers", n_sellers), ("deviators", deviators)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(name, f"must be a whole number >= 1, got {value!r}")
    grid = np.unique(np.r_[np.asarray(factors, dtype=np.float64).ravel(), 1.0])
    if not np.all(np.isfinite(grid)) or grid.min() < 0:
        raise InputError("factors", "must be finite and >= 0")
    forms = {name: MARKET_FORMS.get(name, "double") for name in mechanisms}
    # each market form draws from its own stream, so a mechanism's markets are
    # the same whichever others are audited with it, in whatever order
    streams = dict(zip(("double", "lot"), rng.spawn(2), strict=True))
    markets, seeds, pick = {}, {}, {}
    for form in sorted(set(forms.values())):
        draw = streams[form]
        markets[form] = [_market(form, n_buyers, n_sellers, draw) for _ in range(n_markets)]
        seeds[form] = draw.integers(0, 2**63, size=n_markets)
        traders = n_buyers if form == "lot" else n_buyers + n_sellers
        pick[form] = [draw.choice(traders, size=min(deviators, traders), replace=False)
                      for _ in range(n_markets)]
    optimum = {form: np.array([welfare_optimum(ob)[1] for ob in obs])
               for form, obs in markets.items()}
    rows = []
    for name in mechanisms:
        fn = get(name)
        form = forms[name]

        def run(ob: OrderBatch, seed: int, name: str = name, fn: Any = fn) -> Clearing:
            extra = {"rng": np.random.default_rng(seed)} if takes_rng[name] else {}
            return fn(ob, **options.get(name, {}), **extra)

        rows.append(_measure(name, markets[form], optimum[form], pick[form], seeds[form],
                             grid, run))
    return pd.DataFrame(rows).set_index("mechanism")


def _measure(name: str, markets: list[OrderBatch], optimum: FloatArray,
             pick: list[npt.NDArray[np.int64]], seeds: npt.NDArray[np.int64],
             grid: FloatArray, run: Any) -> dict[str, Any]:
    eff, surplus, ir = [], [], 0
    gains: list[float] = []
    best_buy: list[float] = []
    best_sell: list[float] = []
    n_part = 0
    for ob, opt, who, seed in zip(markets, optimum, pick, seeds, strict=True):
        values = ob.price
        c = run(ob, int(seed))
        if abs(c.accepted[ob.is_buy].sum() - c.accepted[~ob.is_buy].sum()) > 1e-6:
            raise InputError("mechanisms", f"{name!r} does not balance energy among the "
                             "participants (it trades with a pool); compare it instead")
        welfare = float(np.dot(c.accepted * ob.side, values))
        if opt > _TOL:
            eff.append(welfare / opt)
        surplus.append(c.operator_surplus)
        utility = _utility(c, values)
        ir += int((utility < -_TOL).sum())
        n_part += len(ob)
        for i in who.tolist():
            best, best_f = utility[i], 1.0
            for f in grid:
                if f == 1.0:
                    continue
                lied = run(ob.replace(price=np.where(np.arange(len(ob)) == i, values * f,
                                                     values)), int(seed))
                u = _utility(lied, values)[i]
                if u > best + _TOL:
                    best, best_f = u, float(f)
            gains.append(best - utility[i])
            (best_buy if ob.side[i] > 0 else best_sell).append(best_f)
    g = np.asarray(gains)
    s = np.asarray(surplus)
    return {
        "mechanism": name,
        "efficiency": float(np.mean(eff)) if eff else float("nan"),
        "efficiency_min": float(np.min(eff)) if eff else float("nan"),
        "ir_violations": ir,
        "ir_violation_rate": ir / n_part,
        "operator_surplus_mean": float(s.mean()),
        "deficit_share": float((s < -_TOL).mean()),
        "ic_gain_mean": float(g.mean()),
        "ic_gain_max": float(g.max()),
        "ic_profitable_share": float((g > _TOL).mean()),
        "buyer_best_factor": float(np.mean(best_buy)) if best_buy else float("nan"),
        "seller_best_factor": float(np.mean(best_sell)) if best_sell else float("nan"),
        "n_markets": len(markets),
    }


def plot_audit(df: pd.DataFrame) -> Figure:
    """Bar charts of an :func:`audit` table: efficiency, gain from misreporting,
    operator surplus and individual-rationality violations per mechanism.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_audit(audit(["mcafee"], rng=np.random.default_rng(1), n_markets=3))
    >>> len(fig.axes)
    4
    """
    needed = ("efficiency", "ic_gain_mean", "ic_gain_max", "operator_surplus_mean",
              "ir_violation_rate")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError("df", f"not an audit table: column {missing[0]!r} is missing")
    names = [str(n) for n in df.index]
    x = np.arange(len(names))
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [
        (axes[0, 0], "efficiency", "allocative efficiency (welfare / LP optimum)"),
        (axes[0, 1], "ic_gain_mean", "gain from the best misreport (mean, max)"),
        (axes[1, 0], "operator_surplus_mean", "operator surplus per market (mean)"),
        (axes[1, 1], "ir_violation_rate", "individual-rationality violations (rate)"),
    ]
    for ax, column, title in panels:
        ax.bar(x, df[column].to_numpy(dtype=float), color="#4c72b0")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.axhline(0.0, color="black", linewidth=0.6)
    axes[0, 1].scatter(x, df["ic_gain_max"].to_numpy(dtype=float), color="#c44e52",
                       zorder=3, label="max")
    axes[0, 1].legend(frameon=False)
    axes[0, 0].set_ylim(0.0, 1.05)
    return fig
