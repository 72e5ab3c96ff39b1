"""A virtual power plant: an aggregator bids its households' flexibility upstream.

The aggregator enrols households (a boolean mask over them). Each interval it
takes their devices' bid-curve segments
(:class:`~transactive.agents.flexibility.Segments`), sums them into one curve
(:func:`aggregate_curve`), bids the curve into an upstream market, one order
per price step (:func:`bid`), splits the award back to the devices
(:func:`disaggregate`), shares the money (:func:`share_revenue`) and measures
the metered energy against the award (:func:`delivery`). Segments of
households not enrolled take no part.

Position and flexibility
------------------------
Energy is load positive: consumption ``> 0``, production ``< 0``.

- The *fixed position* is the must-run segments of the enrolled households:
  energy the devices cannot do without this interval. It is not flexibility,
  so it is reported (``fixed_buy_kwh``, ``fixed_sell_kwh``) and neither bid
  nor dispatched here. The caller bids it at the price cap or leaves it with
  the households' supplier, as an independent aggregator does
  (Directive (EU) 2019/944, Art. 2(18)-(20) and 17).
- *Up* flexibility is more consumption (or less production) than the fixed
  position: the flexible buy segments (a battery's charge, an EV's extra
  charge, a heat pump's extra heat). At a price ``p`` the fleet offers
  ``D(p)``, the buy segments whose limit is at least ``p``.
- *Down* flexibility is less consumption (or more production): the flexible
  sell segments (a battery's discharge, V2G). At ``p`` it offers ``S(p)``,
  the sell segments whose limit is at most ``p``.

The aggregate curve is the horizontal sum of the devices' bid curves: the
curve a PowerMatcher concentrator passes up (Kok, Warmer & Kamphuis (2005),
"PowerMatcher: multiagent control in the electricity infrastructure", *Proc.
AAMAS 2005*, 75-82), and the single profile a commercial VPP trades for its
units (Pudjianto, Ramsay & Strbac (2007), "Virtual power plant and system
integration of distributed energy resources", *IET Renewable Power
Generation* 1(1), 10-16).

Bids and dispatch
-----------------
With a margin ``m`` per kWh, the buy step at limit ``p_k`` is bid at
``p_k - m`` and the sell step at ``p_k + m``. Awarded ``(up, down)`` at a
clearing price ``p``, the devices whose bid clears at ``p`` are dispatched in
merit order: buys from the highest bid down, sells from the cheapest up.
Every step better than the marginal one runs in full, and the segments of
the marginal step share what is left in proportion to their quantities. A
device reads its dispatch from its own bid curve at the price, as in
PowerMatcher; the pro-rata share is this project's tie rule (as
``tie_break="pro_rata"`` in :mod:`transactive.markets.uniform`). The
dispatch sums to the award and keeps every device within its segment.

Money
-----
The aggregator's *revenue* is what the market pays it for the award,
``p (down - up)`` (negative: it pays); it keeps ``m (up + down)``. The
households share the rest:

- ``"marginal"``: every kWh is settled at the clearing price less the
  margin: down receives ``p - m`` and up pays ``p + m`` per kWh (the
  uniform-price settlement of the market itself).
- ``"pro_rata_energy"``: every kWh is first settled at its device's own limit
  (down receives its limit, up pays its limit), and the surplus left is
  shared in proportion to each household's dispatched energy, up and down
  alike: the proportional rule of surplus sharing (Moulin (2002), "Axiomatic
  cost and surplus sharing", *Handbook of Social Choice and Welfare* 1,
  289-357). A device whose own gain per kWh (between its limit and the
  price) is above the average gets less than under ``"marginal"``, one below
  it (a marginal device) more.

With the price and margin of the dispatch, no household is worse off than
at its limits under either rule.

Delivery
--------
:func:`delivery` measures the metered energy against the award per interval
and prices the imbalance (see :mod:`transactive.programs._vpp_delivery`).

Examples
--------
>>> from transactive.orders import BUY, SELL
>>> seg = Segments(household=[0, 0, 1], side=[BUY, SELL, BUY],
...                quantity_kwh=[1.0, 1.0, 2.0], price_per_kwh=[0.10, 0.25, 0.10])
>>> curve = aggregate_curve(seg, [True, True])
>>> curve.price_per_kwh.tolist(), curve.up_kwh.tolist(), curve.down_kwh.tolist()
([0.1, 0.25], [3.0, 0.0], [0.0, 1.0])
>>> d = disaggregate(seg, [True, True], (1.5, 0.0), 0.10)   # half the 0.10 step
>>> d.energy_kwh.tolist()
[0.5, 0.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from transactive.agents.flexibility import Segments
from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.orders import BUY, SELL, OrderBatch
from transactive.programs._vpp_delivery import Delivery, delivery

__all__ = ["RULES", "AggregateCurve", "Award", "Delivery", "Dispatch", "RevenueShares",
           "Rule", "aggregate_curve", "awarded", "bid", "delivery", "disaggregate",
           "share_revenue"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Rule = Literal["pro_rata_energy", "marginal"]
RULES: tuple[Rule, ...] = ("pro_rata_energy", "marginal")


class Award(NamedTuple):
    """What the upstream market awarded the aggregator: up (bought) and down
    (sold) flexibility, kWh, both ``>= 0``."""

    up_kwh: float
    down_kwh: float


@dataclass(frozen=True, eq=False)
class AggregateCurve:
    """The enrolled fleet's flexibility as price steps (see the module docstring)."""

    price_per_kwh: FloatArray
    """The distinct limits of the flexible segments, ascending."""
    buy_kwh: FloatArray
    """Flexible buy (up) quantity whose limit is exactly each price."""
    sell_kwh: FloatArray
    """Flexible sell (down) quantity whose limit is exactly each price."""
    fixed_buy_kwh: float
    """Must-run consumption of the enrolled households."""
    fixed_sell_kwh: float
    """Must-run production of the enrolled households."""

    @property
    def up_kwh(self) -> FloatArray:
        """``D(p)`` at each price: the flexible buys priced at or above it."""
        return np.cumsum(self.buy_kwh[::-1])[::-1]

    @property
    def down_kwh(self) -> FloatArray:
        """``S(p)`` at each price: the flexible sells priced at or below it."""
        return np.cumsum(self.sell_kwh)

    @property
    def fixed_kwh(self) -> float:
        """The fixed position, net (load positive)."""
        return self.fixed_buy_kwh - self.fixed_sell_kwh

    def award_at(self, price_per_kwh: float, *, margin_per_kwh: float = 0.0) -> Award:
        """The award of a price-taker at ``price_per_kwh`` (a wholesale price):
        every step whose bid (:func:`bid`) clears at that price, in full.

        >>> curve = aggregate_curve(Segments(household=[0, 1], side=[BUY, SELL],
        ...     quantity_kwh=[2.0, 1.0], price_per_kwh=[0.12, 0.30]), [True, True])
        >>> curve.award_at(0.10), curve.award_at(0.35, margin_per_kwh=0.02)
        (Award(up_kwh=2.0, down_kwh=0.0), Award(up_kwh=0.0, down_kwh=1.0))
        """
        p, m = _price(price_per_kwh, "price_per_kwh"), _margin(margin_per_kwh)
        return Award(float(self.buy_kwh[self.price_per_kwh - m >= p].sum()),
                     float(self.sell_kwh[self.price_per_kwh + m <= p].sum()))


@dataclass(frozen=True, eq=False)
class Dispatch:
    """The award split to the segments (:func:`disaggregate`)."""

    segments: Segments
    enrolled: BoolArray
    energy_kwh: FloatArray
    """Per segment, the flexible energy the award gives it (0 for must-run
    segments and households not enrolled)."""
    clearing_price: float
    margin_per_kwh: float

    @property
    def up_kwh(self) -> float:
        """Dispatched up (buy) energy in all."""
        return float(self.energy_kwh[self.segments.side == BUY].sum())

    @property
    def down_kwh(self) -> float:
        """Dispatched down (sell) energy in all."""
        return float(self.energy_kwh[self.segments.side == SELL].sum())

    @property
    def served_kwh(self) -> FloatArray:
        """Per segment, what it gets through the aggregator: its dispatch,
        and the whole of an enrolled household's must-run segment."""
        fixed = self.enrolled[self.segments.household] & self.segments.must_run
        return np.where(fixed, self.segments.quantity_kwh, self.energy_kwh)

    def household_kwh(self) -> FloatArray:
        """Each household's dispatched flexible energy, net (load positive)."""
        signed = np.where(self.segments.side == BUY, self.energy_kwh, -self.energy_kwh)
        return np.bincount(self.segments.household, signed, self.enrolled.size).astype(np.float64)


@dataclass(frozen=True, eq=False)
class RevenueShares:
    """The money of one award (:func:`share_revenue`)."""

    revenue: float
    """What the market pays the aggregator for the award (negative: it pays)."""
    margin: float
    """What the aggregator keeps."""
    household: FloatArray
    """What each household receives (negative: pays); sums to
    ``revenue - margin``."""
    rule: Rule


def aggregate_curve(segments: Segments, enrolled: npt.ArrayLike) -> AggregateCurve:
    """The enrolled households' flexibility as one curve of price steps.

    ``enrolled`` is a boolean mask over households (at least one value per
    household that has a segment). Must-run segments form the fixed position.
    """
    mask = _enrolled(segments, enrolled)
    mine = mask[segments.household]
    q, buy = segments.quantity_kwh, segments.side == BUY
    flex = mine & ~segments.must_run & (q > 0)
    fixed = mine & segments.must_run
    prices, step = np.unique(segments.price_per_kwh[flex], return_inverse=True)
    fq, fbuy = q[flex], buy[flex]
    any_fixed = bool(fixed.any())
    return AggregateCurve(  # new arrays, not the inputs': read-only, not copied
        price_per_kwh=_read_only(prices),
        buy_kwh=_read_only(np.bincount(step[fbuy], fq[fbuy], prices.size)),
        sell_kwh=_read_only(np.bincount(step[~fbuy], fq[~fbuy], prices.size)),
        fixed_buy_kwh=float(q[fixed & buy].sum()) if any_fixed else 0.0,
        fixed_sell_kwh=float(q[fixed & ~buy].sum()) if any_fixed else 0.0)


def bid(curve: AggregateCurve, *, participant: str = "vpp", margin_per_kwh: float = 0.0,
        first_id: int = 0) -> OrderBatch:
    """The aggregator's orders: one buy per up step at ``price - margin`` (highest
    first), then one sell per down step at ``price + margin`` (cheapest first);
    ids from ``first_id`` on, so they stay unique beside other offers.

    >>> curve = aggregate_curve(Segments(household=[0, 1, 1], side=[BUY, BUY, SELL],
    ...     quantity_kwh=[1.0, 2.0, 1.0], price_per_kwh=[0.10, 0.18, 0.25]), [True, True])
    >>> ob = bid(curve, margin_per_kwh=0.01)
    >>> ob.side.tolist(), ob.price.round(2).tolist(), ob.quantity.tolist()
    ([1, 1, -1], [0.17, 0.09, 0.26], [2.0, 1.0, 1.0])
    """
    m = _margin(margin_per_kwh)
    if not isinstance(participant, str) or not participant.strip():
        raise InputError("participant", f"must be a non-empty name, got {participant!r}")
    up = np.flatnonzero(curve.buy_kwh > 0)[::-1]
    down = np.flatnonzero(curve.sell_kwh > 0)
    n = up.size + down.size
    return OrderBatch(id=np.arange(first_id, first_id + n, dtype=np.int64),
                      participant=np.full(n, participant),
                      side=np.r_[np.full(up.size, BUY), np.full(down.size, SELL)],
                      price=np.r_[curve.price_per_kwh[up] - m, curve.price_per_kwh[down] + m],
                      quantity=np.r_[curve.buy_kwh[up], curve.sell_kwh[down]])


def awarded(clearing: Clearing, participant: str = "vpp") -> Award:
    """The aggregator's award in an upstream clearing: its accepted buys and sells."""
    mine = clearing.orders.participant.astype(str) == str(participant)
    buy = clearing.orders.side == BUY
    return Award(float(clearing.accepted[mine & buy].sum()),
                 float(clearing.accepted[mine & ~buy].sum()))


def disaggregate(segments: Segments, enrolled: npt.ArrayLike, award_kwh: Award | npt.ArrayLike,
                 clearing_price: float, *, margin_per_kwh: float = 0.0) -> Dispatch:
    """Split the award ``(up_kwh, down_kwh)`` at ``clearing_price`` to the
    enrolled flexible segments in merit order, pro rata within the marginal
    step (see the module docstring).

    Raises
    ------
    InputError
        Naming ``award_kwh`` for a negative award or one beyond what the
        curve offers at the price, and ``enrolled`` for a bad mask.
    """
    mask = _enrolled(segments, enrolled)
    up, down = _award(award_kwh)
    p, m = _price(clearing_price, "clearing_price"), _margin(margin_per_kwh)
    q, buy = segments.quantity_kwh, segments.side == BUY
    flex = mask[segments.household] & ~segments.must_run & (q > 0)
    price = np.where(buy, segments.price_per_kwh - m, segments.price_per_kwh + m)
    clears = flex & np.where(buy, price >= p, price <= p)
    energy = np.zeros(len(segments))
    for rows, amount, key, name in ((np.flatnonzero(clears & buy), up, -price, "up_kwh"),
                                    (np.flatnonzero(clears & ~buy), down, price, "down_kwh")):
        offered = float(q[rows].sum())
        if amount > offered * (1 + 1e-9) + 1e-12:
            raise InputError("award_kwh", f"{name} {amount!r} is beyond the curve: "
                             f"{offered:g} kWh clear at the price {p!r}")
        if rows.size and amount > 0:
            energy[rows] = _merit_fill(q[rows], key[rows], amount)
    return Dispatch(segments=segments, enrolled=_frozen(mask), energy_kwh=_frozen(energy),
                    clearing_price=p, margin_per_kwh=m)


def _merit_fill(q: FloatArray, key: FloatArray, amount: float) -> FloatArray:
    """``amount`` filled over the segments by ascending ``key``; the segments of
    one key share in proportion to ``q`` (all ``q > 0``)."""
    steps, step = np.unique(key, return_inverse=True)
    step_q = np.bincount(step, q, steps.size)
    before = np.r_[0.0, np.cumsum(step_q)[:-1]]
    share = np.clip((amount - before) / step_q, 0.0, 1.0)
    return q * share[step]


def share_revenue(dispatch: Dispatch, clearing_price: float,
                  rule: Rule = "pro_rata_energy") -> RevenueShares:
    """The aggregator's revenue from the dispatched award at ``clearing_price``,
    its margin (the dispatch's) and each household's share by ``rule`` (see the
    module docstring). ``clearing_price`` is normally the dispatch's; settled at
    another price, the shares still sum to ``revenue - margin`` but a device
    may end below its limit.

    >>> seg = Segments(household=[0, 1], side=[SELL, SELL], quantity_kwh=[1.0, 1.0],
    ...                price_per_kwh=[0.10, 0.20])
    >>> d = disaggregate(seg, [True, True], (0.0, 2.0), 0.20)
    >>> share_revenue(d, 0.20, "marginal").household.round(6).tolist()
    [0.2, 0.2]
    >>> share_revenue(d, 0.20).household.round(6).tolist()   # limits, then 0.10 by energy
    [0.15, 0.25]
    """
    if rule not in RULES:
        raise InputError("rule", f"must be one of {', '.join(RULES)}; got {rule!r}")
    p, m = _price(clearing_price, "clearing_price"), dispatch.margin_per_kwh
    seg, e, n = dispatch.segments, dispatch.energy_kwh, dispatch.enrolled.size
    buy = seg.side == BUY
    up, down = float(e[buy].sum()), float(e[~buy].sum())
    revenue, margin = p * (down - up), m * (up + down)
    if rule == "marginal":
        money = np.where(buy, -(p + m) * e, (p - m) * e)
        household = np.bincount(seg.household, money, n).astype(np.float64)
    else:
        own = np.where(buy, -seg.price_per_kwh * e, seg.price_per_kwh * e)
        energy = np.bincount(seg.household, e, n)
        total = float(energy.sum())
        surplus = revenue - margin - float(own.sum())
        household = np.bincount(seg.household, own, n).astype(np.float64)
        if total > 0:
            household += surplus * energy / total
    return RevenueShares(revenue=revenue, margin=margin, household=_frozen(household), rule=rule)


# ----------------------------------------------------------------- helpers
def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only copy (results never share memory with inputs)."""
    out = np.array(arr, copy=True)
    out.flags.writeable = False
    return out


def _read_only(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``arr`` (an array of a result's own) made read-only."""
    arr.flags.writeable = False
    return arr


def _enrolled(segments: Segments, enrolled: npt.ArrayLike) -> BoolArray:
    mask = np.asarray(enrolled)
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise InputError("enrolled", f"must be a 1-d boolean mask over households, got "
                         f"{mask.dtype} of shape {mask.shape}")
    if len(segments) and int(segments.household.max()) >= mask.size:
        raise InputError("enrolled", f"has {mask.size} households, but a segment belongs to "
                         f"household {int(segments.household.max())}")
    return mask


def _award(award_kwh: Award | npt.ArrayLike) -> tuple[float, float]:
    try:
        a = np.asarray(award_kwh, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("award_kwh", f"must be two numbers (up_kwh, down_kwh), "
                         f"got {award_kwh!r}") from None
    if a.shape != (2,):
        raise InputError("award_kwh", f"must be two numbers (up_kwh, down_kwh), got shape "
                         f"{a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise InputError("award_kwh", f"must be finite and >= 0, got {a.tolist()}")
    return float(a[0]), float(a[1])


def _price(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise InputError(field, f"must be a finite number, got {value!r}")
    return float(value)


def _margin(value: float) -> float:
    m = _price(value, "margin_per_kwh")
    if m < 0:
        raise InputError("margin_per_kwh", f"must be >= 0, got {value!r}")
    return m
