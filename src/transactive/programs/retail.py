"""Retail competition: retailers' offers, households' logit choice among them
with inertia, and the retailers' monthly price adaptation.

The comparison with the incumbent alone and with a P2P market is in
:mod:`transactive.programs.retail_compare`.

Months and bills
----------------
The households' imports and exports with their supplier over a timeline
(a run; ``(T, n)`` kWh) stand for every month: a month is ``365.25 / 12``
days and every figure of the timeline is scaled by ``month_factor = 30.4375 /
timeline.days``. A household's expected bill is its own past bill on that
profile, so it also is what the household then pays (seasons are not
modelled). Retailer ``j`` offers a tariff (any
:class:`~transactive.programs.tariffs.RetailTariff`: flat, time of use, ...)
and a fee per month ``f_j``; its price adaptation moves every import price of
the tariff by one shift ``s_j`` per kWh (0 at the start; the time-of-use
spread and the feed-in price stay). Household ``h``'s monthly bill with
retailer ``j`` and the retailer's cost of supplying it are::

    b[h, j] = month_factor * (r_j @ imp_h - x_j @ exp_h) + s_j * E_h + f_j
    c[h, j] = month_factor * ((w + g_j) @ imp_h - w @ exp_h) + F_j

``r_j``, ``x_j`` the tariff's retail and feed-in prices, ``E_h`` the
household's monthly imports (kWh), ``w`` the wholesale price, ``g_j`` the
network charge per kWh imported, ``F_j`` the fixed cost per customer and
month; exports replace wholesale purchases. A retailer's revenue is its
customers' bills and its profit the revenue less their cost, so the
households' bills are the retailers' revenue, month by month.

Choice
------
Each month household ``h``, with retailer ``k_h`` so far, takes retailer
``j`` with the multinomial logit probability (McFadden 1974)::

    P[h, j] = exp(V[h, j]) / sum_i exp(V[h, i]),   V[h, j] = -alpha * (b[h, j] + K * [j != k_h])

``alpha`` the price sensitivity (per currency unit of the monthly bill),
``K`` the switching cost (currency; the inertia: staying is worth ``alpha *
K`` of utility). One uniform draw per household and month from the caller's
generator picks the retailer. Households start with retailer 0 (the
incumbent) unless told otherwise. Consumer surplus is the log-sum
``CS[h] = log(sum_j exp(V[h, j])) / alpha`` (Small & Rosen, *Econometrica*
49, 1981; Train, *Discrete Choice Methods with Simulation*, 2009, sec. 3.5),
currency per household and month, up to a constant common to every case
(Euler's constant / alpha). It counts a switch's cost as a cost and holds the
logit's taste terms: a second offer at the same price and no inertia raises it
by ``log(2) / alpha``.

Defaults (:class:`LogitChoice`): ``alpha = 0.2`` per currency unit is an
assumption, not an estimate (a bill lower by 5 a month moves a household
without inertia from 50/50 to 73/27; two identical retailers then settle at a
markup of ``2 / alpha = 10`` a household-month, about 3.3 ct/kWh at 3,600
kWh a year). ``K = 45`` makes the monthly switching chance at that ``alpha`` what
Ofgem measured in Great Britain in 2016: 15.8 % of customers switched in the
year (1.42 % a month), when switching to the cheapest deals saved about
GBP 230 a year, EUR 23.4 a month at the ECB's 2016 mean rate of 0.8195 GBP
per EUR (Ofgem, press release of 2017, "switching rates ... at around 15.8 %",
"savings of around £230 a year", ofgem.gov.uk/publications-and-updates/
switches-nearly-30-millions-go-energy-shopping); ``K = 23.4 + log((1 - 0.0142) / 0.0142) /
0.2 = 44.6``. The inertia agrees with the CMA's finding that about 70 % of the
six large suppliers' domestic customers stayed on the default tariff (CMA,
*Energy market investigation, final report*, 24 June 2016) and with Texas,
where most households stayed with the incumbent although entrants were about
8 % cheaper, and searched in under 2 % of months (Hortaçsu, Madanizadeh &
Puller, "Power to choose?", NBER working paper 20988, 2015; *AEJ: Economic
Policy* 9(4), 2017). It folds their inattention and
brand advantage into one cost.

Price adaptation
----------------
At the end of each month every adapting retailer sets next month's shift,
all at once, from this month's prices and who is with whom:

:class:`BestResponse`
    From ``s_j + step * {0, -1, +1, ..., -k, +k}`` (``k = max_change //
    step``) the shift that maximises next month's expected profit
    ``sum_h P[h, j](s) * (b[h, j](s) - c[h, j])`` against the rivals' current
    prices (myopic best response; ties go to the smaller change). For ``m``
    identical retailers and households without inertia its fixed point is
    the logit-Bertrand equilibrium, a markup ``b - c = 1 / (alpha * (1 -
    share)) = m / ((m - 1) * alpha)`` a household-month (Anderson, de Palma &
    Thisse, *Discrete Choice Theory of Product Differentiation*, MIT Press,
    1992). A retailer has one price for old and new customers.
:class:`MarginRule`
    Lower the shift by ``step`` after a month in which the retailer's share
    of households fell, raise it after one in which it rose, else keep it;
    never below break-even on the average household.

Every shift stays within bounds: no retail price below the tariff's feed-in
price, and no retailer's mean price (import-weighted over all households)
above the regulator's ``price_cap_per_kwh`` if there is one (as the default
tariff cap in Great Britain since 2019). Mind the cap when households have
inertia: a myopic retailer then *harvests* its locked-in customers (Farrell
& Klemperer, "Coordination and lock-in", *Handbook of Industrial
Organization* 3, 2007), and with the default switching cost two such
retailers raise their prices month after month, each as far as
``max_change_per_kwh`` lets it, until the cap. A lone retailer that adapts is
refused: with no outside option its price would rise without bound.

Examples
--------
Two retailers, one household importing 0.5 kWh an hour for a week:

>>> from transactive.programs.tariffs import Tariff
>>> tl = Timeline(pd.Timestamp("2026-03-02", tz="Europe/Berlin"), periods=168, step_minutes=60)
>>> imp, exp = np.full((168, 1), 0.5), np.zeros((168, 1))
>>> old = Retailer("incumbent", Tariff("flat", 0.35, 0.08), network_charge_per_kwh=0.10)
>>> new = Retailer("entrant", Tariff("flat", 0.29, 0.08), network_charge_per_kwh=0.10,
...                adapt=BestResponse())
>>> market = RetailMarket((old, new), imp, exp, tl, np.full(168, 0.09))
>>> run = market.run(3, np.random.default_rng(1))
>>> run.offer_bill[0, 0].round(2).tolist()    # 365.25 kWh a month
[127.84, 105.92]
>>> run.probability[0, 0].round(3).tolist()   # 21.92 cheaper, but switching costs 45
[0.99, 0.01]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, logsumexp

from transactive.errors import InputError
from transactive.programs.tariffs import FloatArray, RetailTariff, _finite, bills_under
from transactive.programs.wholesale import WholesalePrices
from transactive.timeline import Timeline

__all__ = ["DAYS_PER_MONTH", "BestResponse", "LogitChoice", "MarginRule", "RetailMarket",
           "RetailRun", "Retailer", "logit_choice"]

IntArray = npt.NDArray[np.int64]

DAYS_PER_MONTH = 365.25 / 12
"""The length of a month (days)."""


def _at_least(name: str, value: Any, low: float, *, strict: bool = False) -> float:
    number = _finite(name, value)
    if number < low or (strict and number == low):
        raise InputError(name, f"must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return number


@dataclass(frozen=True)
class LogitChoice:
    """How households choose (module docstring): ``sensitivity_per_currency``
    (``alpha``, > 0) and ``switching_cost`` (``K``, currency, >= 0)."""

    sensitivity_per_currency: float = 0.2
    switching_cost: float = 45.0

    def __post_init__(self) -> None:
        _at_least("sensitivity_per_currency", self.sensitivity_per_currency, 0.0, strict=True)
        _at_least("switching_cost", self.switching_cost, 0.0)


@dataclass(frozen=True)
class BestResponse:
    """Myopic best response on a grid of shifts around the current one
    (module docstring); ``step_per_kwh`` > 0, ``max_change_per_kwh`` >= the step."""

    step_per_kwh: float = 0.0005
    max_change_per_kwh: float = 0.01

    def __post_init__(self) -> None:
        step = _at_least("step_per_kwh", self.step_per_kwh, 0.0, strict=True)
        _at_least("max_change_per_kwh", self.max_change_per_kwh, step)


@dataclass(frozen=True)
class MarginRule:
    """Lower the price by ``step_per_kwh`` (> 0) after losing share, raise it
    after gaining share (module docstring)."""

    step_per_kwh: float = 0.002

    def __post_init__(self) -> None:
        _at_least("step_per_kwh", self.step_per_kwh, 0.0, strict=True)


@dataclass(frozen=True)
class Retailer:
    """A retailer: its ``tariff`` offer (any retail tariff), ``fee_per_month``,
    its costs (``network_charge_per_kwh`` >= 0 on imports, on top of the
    wholesale price, and ``cost_per_customer_month`` >= 0) and its price
    adaptation (``adapt``: :class:`BestResponse`, :class:`MarginRule` or
    ``None`` for fixed prices)."""

    name: str
    tariff: RetailTariff
    fee_per_month: float = 0.0
    network_charge_per_kwh: float = 0.0
    cost_per_customer_month: float = 0.0
    adapt: BestResponse | MarginRule | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError("retailer.name", f"must be a non-empty string, got {self.name!r}")
        try:
            if not isinstance(self.tariff, RetailTariff):
                raise InputError("retailer.tariff", "must be a retail tariff (with kind, "
                                 "retail_price_per_kwh and feed_in_price_per_kwh_series)")
            _finite("retailer.fee_per_month", self.fee_per_month)
            _at_least("retailer.network_charge_per_kwh", self.network_charge_per_kwh, 0.0)
            _at_least("retailer.cost_per_customer_month", self.cost_per_customer_month, 0.0)
            if self.adapt is not None and not isinstance(self.adapt, BestResponse | MarginRule):
                raise InputError("retailer.adapt", "must be BestResponse, MarginRule or None, "
                                 f"got {type(self.adapt).__name__}")
        except InputError as exc:
            raise InputError(exc.field, f"retailer {self.name!r}: {exc.problem}") from None


def logit_choice(bills: npt.ArrayLike, current: npt.ArrayLike, choice: LogitChoice
                 ) -> tuple[FloatArray, FloatArray]:
    """Each household's probability of taking each offer, and its consumer
    surplus (the log-sum, currency), from its bills ``(n, J)`` under the
    offers and its ``current`` retailer ``(n,)`` (module docstring).

    Examples
    --------
    Bills of 100 and 90; switching costs 10, so the household with the first
    retailer is torn, the one with the second nearly stays:

    >>> p, cs = logit_choice([[100.0, 90.0], [100.0, 90.0]], [0, 1], LogitChoice(0.2, 10.0))
    >>> p.round(4).tolist(), cs.round(3).tolist()
    ([[0.5, 0.5], [0.018, 0.982]], [-96.534, -89.909])
    """
    if not isinstance(choice, LogitChoice):
        raise InputError("choice", f"must be a LogitChoice, got {type(choice).__name__}")
    try:
        b = np.asarray(bills, dtype=np.float64)
        k = np.asarray(current)
    except (TypeError, ValueError):
        raise InputError("bills", "must be an array of numbers") from None
    if b.ndim != 2 or b.shape[1] < 1 or not np.isfinite(b).all():
        raise InputError("bills", f"must be finite, of shape (households, offers), got {b.shape}")
    if k.shape != b.shape[:1] or k.dtype.kind not in "iu" or ((k < 0) | (k >= b.shape[1])).any():
        raise InputError("current", f"must be {b.shape[0]} integers in [0, {b.shape[1]})")
    alpha = choice.sensitivity_per_currency
    stay = np.arange(b.shape[1]) == k[:, None]
    v = -alpha * (b + choice.switching_cost * ~stay)
    total = logsumexp(v, axis=1)
    out: tuple[FloatArray, FloatArray] = (np.exp(v - total[:, None]), total / alpha)
    return out


def _wholesale(wholesale: Any, timeline: Timeline) -> FloatArray:
    if isinstance(wholesale, WholesalePrices):
        return wholesale.price_per_kwh(timeline)
    try:
        w = np.asarray(wholesale, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("wholesale", "must be an array of prices or have a "
                         "price_per_kwh(timeline) method") from None
    if w.shape != (timeline.periods,) or not np.isfinite(w).all():
        raise InputError("wholesale", f"must be {timeline.periods} finite prices per kWh, "
                         f"got shape {w.shape}")
    return w


@dataclass(frozen=True, eq=False)
class RetailRun:
    """What happened, month by month (``M`` months, ``n`` households, ``J``
    retailers); money in currency per month, energy prices per kWh.

    ``names`` (J,); ``price_shift_per_kwh``, ``price_per_kwh`` (M, J) (the
    latter import-weighted over all households); ``offer_bill``,
    ``probability`` (M, n, J); ``retailer`` (M, n) each household's pick,
    ``initial`` (n,) before month 0; ``bill``, ``consumer_surplus`` (M, n);
    ``revenue``, ``cost``, ``profit`` (M, J)."""

    names: tuple[str, ...]
    price_shift_per_kwh: FloatArray
    price_per_kwh: FloatArray
    offer_bill: FloatArray
    probability: FloatArray
    initial: IntArray
    retailer: IntArray
    bill: FloatArray
    consumer_surplus: FloatArray
    revenue: FloatArray
    cost: FloatArray
    profit: FloatArray

    def __post_init__(self) -> None:
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # results are not changed after the run

    @property
    def share(self) -> FloatArray:
        """Each retailer's share of households, (M, J)."""
        counts = (self.retailer[:, :, None] == np.arange(len(self.names))).mean(axis=1)
        out: FloatArray = counts.astype(np.float64)
        return out

    @property
    def switched(self) -> IntArray:
        """How many households changed retailer in each month, (M,)."""
        before = np.vstack([self.initial[None, :], self.retailer[:-1]])
        out: IntArray = (self.retailer != before).sum(axis=1).astype(np.int64)
        return out

    def frame(self) -> pd.DataFrame:
        """One row per (month, retailer): price, share, expected share
        (mean probability), revenue, cost, profit."""
        months, j = self.price_per_kwh.shape
        return pd.DataFrame({
            "month": np.repeat(np.arange(months), j),
            "retailer": np.tile(np.array(self.names, dtype=object), months),
            "price_per_kwh": self.price_per_kwh.ravel(),
            "share": self.share.ravel(),
            "expected_share": self.probability.mean(axis=1).ravel(),
            "revenue": self.revenue.ravel(), "cost": self.cost.ravel(),
            "profit": self.profit.ravel()})


class RetailMarket:
    """Retail competition among ``retailers`` for households whose imports and
    exports over ``timeline`` (``(T, n)`` kWh) are their monthly profile,
    supplied at the ``wholesale`` price (``(T,)`` per kWh, or an object with
    ``price_per_kwh(timeline)``), households choosing by ``choice``, no
    retailer's mean price above ``price_cap_per_kwh`` (``None``: no cap).
    The inputs are not kept; :meth:`run` plays months (module docstring)."""

    def __init__(self, retailers: tuple[Retailer, ...] | list[Retailer],
                 import_kwh: npt.ArrayLike, export_kwh: npt.ArrayLike, timeline: Timeline,
                 wholesale: npt.ArrayLike | WholesalePrices,
                 choice: LogitChoice | None = None,
                 price_cap_per_kwh: float | None = None) -> None:
        self.retailers = tuple(retailers) if isinstance(retailers, tuple | list) else ()
        if not self.retailers or not all(isinstance(r, Retailer) for r in self.retailers):
            raise InputError("retailers", "must be a non-empty sequence of Retailer")
        names = [r.name for r in self.retailers]
        if len(set(names)) < len(names):
            raise InputError("retailers", f"names must differ, got {names}")
        if len(names) == 1 and self.retailers[0].adapt is not None:
            raise InputError("retailers", "a lone retailer cannot adapt its price (with no "
                             "outside option its price would rise without bound)")
        self.choice = LogitChoice() if choice is None else choice
        if not isinstance(self.choice, LogitChoice):
            raise InputError("choice", f"must be a LogitChoice, got {type(choice).__name__}")
        tariffs = {str(j): r.tariff for j, r in enumerate(self.retailers)}
        base = bills_under(tariffs, import_kwh, export_kwh, timeline).to_numpy()
        w = _wholesale(wholesale, timeline)
        imports = np.asarray(import_kwh, dtype=np.float64)
        exports = np.asarray(export_kwh, dtype=np.float64)
        if not imports.any():
            raise InputError("import_kwh", "the households import nothing: nothing to sell")
        self.month_factor = f = DAYS_PER_MONTH / timeline.days
        fee, grid, fixed = (np.array([getattr(r, name) for r in self.retailers]) for name in (
            "fee_per_month", "network_charge_per_kwh", "cost_per_customer_month"))
        self.import_kwh_month: FloatArray = f * imports.sum(axis=0)
        self.base_bill: FloatArray = f * base + fee
        energy = f * (w @ imports - w @ exports)
        self.supply_cost: FloatArray = (energy[:, None] + np.outer(self.import_kwh_month, grid)
                                        + fixed)
        retail = np.array([t.retail_price_per_kwh(timeline) for t in tariffs.values()])
        feed_in = np.array([t.feed_in_price_per_kwh_series(timeline) for t in tariffs.values()])
        total = self.import_kwh_month.sum()
        self.mean_price_per_kwh: FloatArray = f * (retail @ imports.sum(axis=1)) / total
        self.lowest_shift: FloatArray = -(retail - feed_in).min(axis=1)
        self.highest_shift: FloatArray = np.full(len(names), np.inf)
        if price_cap_per_kwh is not None:
            cap = _at_least("price_cap_per_kwh", price_cap_per_kwh, 0.0, strict=True)
            self.highest_shift = cap - self.mean_price_per_kwh
            above = np.flatnonzero(self.highest_shift < -1e-12)
            if above.size:
                raise InputError("price_cap_per_kwh", f"retailer {names[above[0]]!r} offers "
                                 f"{self.mean_price_per_kwh[above[0]]:.4f} per kWh, above the "
                                 f"cap {cap:g}")
        even = (self.supply_cost - self.base_bill).sum(axis=0) / total
        self.break_even_shift: FloatArray = np.maximum(even, self.lowest_shift)

    def offer_bills(self, shift_per_kwh: npt.ArrayLike) -> FloatArray:
        """Every household's monthly bill under every offer, (n, J), at
        shifts ``(J,)`` per kWh."""
        shift = np.asarray(shift_per_kwh, dtype=np.float64)
        out: FloatArray = self.base_bill + np.outer(self.import_kwh_month, shift)
        return out

    def run(self, months: int, rng: np.random.Generator,
            initial_retailer: npt.ArrayLike | None = None) -> RetailRun:
        """Play ``months`` months (>= 1); every draw from ``rng``; households
        start with ``initial_retailer`` (``(n,)`` positions in ``retailers``;
        default all with retailer 0)."""
        if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
            raise InputError("months", f"must be an integer >= 1, got {months!r}")
        months = int(months)
        if not isinstance(rng, np.random.Generator):
            raise InputError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")
        n, j = self.base_bill.shape
        current = self._initial(initial_retailer, n, j)
        initial = current.copy()
        shift = np.zeros((months, j))
        offer, p = np.empty((months, n, j)), np.empty((months, n, j))
        pick, cs = np.empty((months, n), dtype=np.int64), np.empty((months, n))
        revenue, cost = np.empty((months, j)), np.empty((months, j))
        for m in range(months):
            offer[m] = self.offer_bills(shift[m])
            p[m], cs[m] = logit_choice(offer[m], current, self.choice)
            u = rng.random((n, 1))
            pick[m] = np.minimum((np.cumsum(p[m], axis=1) <= u).sum(axis=1), j - 1)
            chosen = pick[m][:, None] == np.arange(j)
            revenue[m] = (offer[m] * chosen).sum(axis=0)
            cost[m] = (self.supply_cost * chosen).sum(axis=0)
            if m + 1 < months:
                shift[m + 1] = self._adapt(shift[m], offer[m], pick[m], current)
            current = pick[m]
        return RetailRun(
            names=tuple(r.name for r in self.retailers), price_shift_per_kwh=shift,
            price_per_kwh=self.mean_price_per_kwh + shift, offer_bill=offer, probability=p,
            initial=initial, retailer=pick,
            bill=np.take_along_axis(offer, pick[:, :, None], axis=2)[:, :, 0],
            consumer_surplus=cs, revenue=revenue, cost=cost, profit=revenue - cost)

    @staticmethod
    def _initial(initial: npt.ArrayLike | None, n: int, j: int) -> IntArray:
        if initial is None:
            return np.zeros(n, dtype=np.int64)
        arr = np.asarray(initial)
        if arr.shape != (n,) or arr.dtype.kind not in "iu" or ((arr < 0) | (arr >= j)).any():
            raise InputError("initial_retailer", f"must be {n} integers in [0, {j})")
        return arr.astype(np.int64)

    def _adapt(self, shift: FloatArray, offer: FloatArray, pick: IntArray,
               current: IntArray) -> FloatArray:
        """Next month's shifts (module docstring), all retailers at once, from
        this month's ``offer`` bills and the households' ``pick`` and their
        ``current`` retailer before it."""
        new = shift.copy()
        j = shift.shape[0]
        before, after = np.bincount(current, minlength=j), np.bincount(pick, minlength=j)
        alpha, k = self.choice.sensitivity_per_currency, self.choice.switching_cost
        v = -alpha * (offer + k * (pick[:, None] != np.arange(j)))
        margin = offer - self.supply_cost
        for i, retailer in enumerate(self.retailers):
            rule = retailer.adapt
            if isinstance(rule, MarginRule):
                step = rule.step_per_kwh * np.sign(after[i] - before[i])
                new[i] = min(max(shift[i] + step, self.break_even_shift[i]),
                             self.highest_shift[i])
            elif isinstance(rule, BestResponse):
                half = int(rule.max_change_per_kwh / rule.step_per_kwh + 1e-9)
                steps = np.arange(2 * half + 1)
                moves = rule.step_per_kwh * np.where(steps % 2, -(steps + 1) // 2, steps // 2)
                moves = np.clip(shift[i] + moves, self.lowest_shift[i],
                                self.highest_shift[i]) - shift[i]
                others = logsumexp(np.delete(v, i, axis=1), axis=1)
                extra = np.outer(moves, self.import_kwh_month)  # (C, n) more on each bill
                p = expit(v[:, i] - alpha * extra - others)
                profit = (p * (margin[:, i] + extra)).sum(axis=1)
                new[i] = shift[i] + moves[int(np.argmax(profit))]
        return new
