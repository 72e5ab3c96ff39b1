"""The repeated market a learning bidder faces: its rivals, day by day, and
one interval's clearing with the bidders' orders added.

A *rivals* object holds the other participants of a community double auction
over whole days of ``steps_per_day`` intervals. :meth:`day` draws one day's
orders for all its intervals at once (a :class:`RivalDay`: each rival's net
position and limit price per interval), and :func:`clear_step` clears one
interval of it with the bidders' orders appended, through the mechanism
registry (:func:`transactive.markets.registry.clear`).

Two kinds of rivals:

- :class:`CommunityRivals`: the households of a scenario's community
  (:func:`transactive.sim.community.build_community`: load and PV profiles,
  their home batteries run for self-consumption), each buying its deficit or
  selling its surplus every interval at a limit price from its strategy
  (:func:`transactive.agents.strategies.limit_prices`: ``"truthful"`` bids the
  retail price and asks the feed-in price of the scenario's tariff, ``"zic"``
  draws within them). Day ``d`` is intervals ``d * steps_per_day`` to
  ``(d + 1) * steps_per_day - 1`` of the scenario's timeline (an interval's
  "time of day" is its place in that block). The scenario's flexible devices
  (``[flexibility]``, ``[ev]``, ...) and grid are not part of the rivals.
- :class:`PriceSchedule`: a market so deep at a known price each interval (a
  buyer and a seller of ``depth_kwh`` each, both at the price) that a bidder is
  a price taker: under a uniform-price auction any bid above the price buys in
  full at the price and any ask below it sells in full at it. Every day is the
  same; it is the case whose best bidding has a closed form.

Sign convention: a bidder's ``quantity_kwh`` is positive to buy (charge) and
negative to sell (discharge), as a household's ``net_kwh``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from transactive.agents.strategies import STRATEGIES, limit_prices, net_orders
from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.markets import registry
from transactive.orders import OrderBatch
from transactive.sim.community import build_community
from transactive.sim.scenario import Scenario

__all__ = ["CommunityRivals", "Design", "PriceSchedule", "RivalDay", "Rivals", "StepResult",
           "clear_step", "rival_prices"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RivalDay:
    """One day of rivals' orders: arrays over (interval of the day, rival)."""

    net_kwh: FloatArray
    """Shape (T, n): each rival's net position (+ buys, - sells)."""
    limit_per_kwh: FloatArray
    """Shape (T, n): each rival's limit price."""


class Rivals(Protocol):
    """What a bidder's environment needs of its rivals."""

    @property
    def steps_per_day(self) -> int: ...

    @property
    def days(self) -> int: ...

    @property
    def dt_h(self) -> float: ...

    @property
    def price_range_per_kwh(self) -> tuple[float, float]:
        """The lowest and highest price any order of the market may carry."""
        ...

    def day(self, d: int, rng: np.random.Generator) -> RivalDay: ...

    def modelled_day(self, d: int, pv_error: FloatArray) -> RivalDay:
        """Day ``d`` as a forecaster models it who misjudges the rivals'
        generation by the share ``pv_error[t]`` in interval ``t``."""
        ...


def _positive(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"must be a number, got {value!r}") from None
    if not (np.isfinite(out) and out > 0):
        raise InputError(name, f"must be a finite number > 0, got {value!r}")
    return out


def _day_index(d: Any, days: int) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < days:
        raise InputError("day", f"must be an integer in [0, {days}), got {d!r}")
    return int(d)


@dataclass(frozen=True, eq=False)
class CommunityRivals:
    """The households of a community as rivals (see the module docstring).

    Build it with :meth:`from_scenario`.

    Examples
    --------
    >>> sc = Scenario().with_overrides(**{"community.households": 6, "time.days": 2.0,
    ...                                   "time.step_minutes": 60})
    >>> rivals = CommunityRivals.from_scenario(sc)
    >>> rivals.days, rivals.steps_per_day, rivals.price_range_per_kwh
    (2, 24, (0.08, 0.38))
    >>> rivals.day(1, np.random.default_rng(0)).net_kwh.shape
    (24, 6)
    """

    net_kwh: FloatArray
    """Shape (days, T, n): each household's net position after its PV and battery."""
    pv_kwh: FloatArray
    """Shape (days, T, n): each household's PV generation."""
    retail_per_kwh: FloatArray
    """Shape (days, T): what a buyer pays the utility instead (its value)."""
    feed_in_per_kwh: FloatArray
    """Shape (days, T): what a seller gets from the utility instead (its cost)."""
    strategy: str
    dt_h: float

    @classmethod
    def from_scenario(cls, scenario: Scenario, *, strategy: str | None = None
                      ) -> CommunityRivals:
        """The community, tariff and strategy of ``scenario`` (``strategy``
        overrides ``market.strategy``); the scenario's seed draws the
        households (child 0 of its seed sequence) and the tariff's prices (child 1)."""
        if not isinstance(scenario, Scenario):
            raise InputError("scenario", f"expected a Scenario, got {type(scenario).__name__}")
        strategy = scenario.market.strategy if strategy is None else strategy
        if strategy not in STRATEGIES:
            raise InputError("strategy", f"must be one of {', '.join(STRATEGIES)}, "
                                         f"got {strategy!r}")
        timeline = scenario.time.timeline()
        per_day = timeline.periods_per_day
        days = timeline.periods // per_day
        if days < 1:
            raise InputError("time.days", "the rivals need at least one whole day")
        community_seed, tariff_seed = np.random.SeedSequence(scenario.seed).spawn(2)
        c = scenario.community
        community = build_community(c, timeline, np.random.default_rng(community_seed))
        tariff = scenario.tariff.tariff(tariff_seed, latitude_deg=c.latitude_deg,
                                        longitude_deg=c.longitude_deg)
        dt_h = timeline.dt_h
        net_kw = community.load_kw.astype(np.float64) - community.pv_kw
        batteries = community.batteries
        step = batteries.self_consumption(batteries.initial_soc_kwh(), net_kw, dt_h)
        net_kwh = (net_kw + step.p_kw) * dt_h
        n_t = days * per_day
        shape = (days, per_day)
        return cls(net_kwh=net_kwh[:n_t].reshape(days, per_day, -1),
                   pv_kwh=(community.pv_kw[:n_t] * dt_h).astype(np.float64)
                   .reshape(days, per_day, -1),
                   retail_per_kwh=tariff.retail_price_per_kwh(timeline)[:n_t].reshape(shape),
                   feed_in_per_kwh=tariff.feed_in_price_per_kwh_series(timeline)[:n_t]
                   .reshape(shape),
                   strategy=strategy, dt_h=dt_h)

    @property
    def days(self) -> int:
        return int(self.net_kwh.shape[0])

    @property
    def steps_per_day(self) -> int:
        return int(self.net_kwh.shape[1])

    @property
    def households(self) -> int:
        return int(self.net_kwh.shape[2])

    @property
    def price_range_per_kwh(self) -> tuple[float, float]:
        return float(self.feed_in_per_kwh.min()), float(self.retail_per_kwh.max())

    def day(self, d: int, rng: np.random.Generator) -> RivalDay:
        """Day ``d``'s orders; ``"zic"`` draws ``T * n`` uniforms from ``rng``."""
        d = _day_index(d, self.days)
        net = self.net_kwh[d]
        n_t, n = net.shape
        retail = np.repeat(self.retail_per_kwh[d], n)
        feed_in = np.repeat(self.feed_in_per_kwh[d], n)
        limits = limit_prices(self.strategy, (net > 0).ravel(), retail, feed_in, rng,
                              price_floor=feed_in, price_cap=retail)
        return RivalDay(net_kwh=net, limit_per_kwh=limits.reshape(n_t, n))

    def modelled_day(self, d: int, pv_error: FloatArray) -> RivalDay:
        """Day ``d`` as a forecaster sees it who misjudges the community's
        PV by the share ``pv_error[t]`` in interval ``t`` (one error for all
        households: the weather is common): each household's net position
        less ``pv_error[t]`` times its generation, and its limit price the
        truthful one of its side (the forecaster's model of its rivals).

        >>> sc = Scenario().with_overrides(**{"community.households": 4, "time.days": 1.0,
        ...                                   "time.step_minutes": 60})
        >>> rivals = CommunityRivals.from_scenario(sc)
        >>> sunnier = rivals.modelled_day(0, np.full(24, 0.5))
        >>> bool((sunnier.net_kwh <= rivals.net_kwh[0]).all())
        True
        """
        d = _day_index(d, self.days)
        net = self.net_kwh[d] - np.asarray(pv_error, dtype=np.float64)[:, None] * self.pv_kwh[d]
        limits = np.where(net > 0, self.retail_per_kwh[d][:, None],
                          self.feed_in_per_kwh[d][:, None])
        return RivalDay(net_kwh=net, limit_per_kwh=limits)


@dataclass(frozen=True, eq=False)
class PriceSchedule:
    """A deep market at ``prices_per_kwh[t]`` in interval ``t`` of every day.

    Orders may be priced in ``[price_floor_per_kwh, price_cap_per_kwh]``
    (default: 0 and twice the highest price), wider than the schedule, so
    that a bidder can always bid above or ask below the price.

    Examples
    --------
    >>> market = PriceSchedule([0.08, 0.30], dt_h=1.0)
    >>> market.price_range_per_kwh, market.day(0, np.random.default_rng(0)).limit_per_kwh.tolist()
    ((0.0, 0.6), [[0.08, 0.08], [0.3, 0.3]])
    """

    prices_per_kwh: FloatArray
    dt_h: float
    depth_kwh: float = 1_000.0
    price_floor_per_kwh: float = 0.0
    price_cap_per_kwh: float | None = None

    def __post_init__(self) -> None:
        prices = np.array(self.prices_per_kwh, dtype=np.float64)
        if prices.ndim != 1 or prices.size == 0 or not np.isfinite(prices).all():
            raise InputError("prices_per_kwh", "must be a non-empty 1-d array of finite prices")
        cap = 2.0 * float(prices.max()) if self.price_cap_per_kwh is None else float(
            self.price_cap_per_kwh)
        floor = float(self.price_floor_per_kwh)
        if not (np.isfinite(floor) and floor <= prices.min()):
            raise InputError("price_floor_per_kwh", f"must be at most the lowest price "
                                                    f"{prices.min()!r}, got {floor!r}")
        if not (np.isfinite(cap) and cap >= prices.max() and cap > floor):
            raise InputError("price_cap_per_kwh", f"must be at least the highest price "
                                                  f"{prices.max()!r} and above the floor, "
                                                  f"got {cap!r}")
        prices.flags.writeable = False
        object.__setattr__(self, "prices_per_kwh", prices)
        object.__setattr__(self, "dt_h", _positive("dt_h", self.dt_h))
        object.__setattr__(self, "depth_kwh", _positive("depth_kwh", self.depth_kwh))
        object.__setattr__(self, "price_cap_per_kwh", cap)

    @property
    def days(self) -> int:
        return 1

    @property
    def steps_per_day(self) -> int:
        return int(self.prices_per_kwh.shape[0])

    @property
    def price_range_per_kwh(self) -> tuple[float, float]:
        return float(self.price_floor_per_kwh), float(self.price_cap_per_kwh or 0.0)

    def day(self, d: int, rng: np.random.Generator) -> RivalDay:
        """The schedule's day (``d`` must be 0; nothing is drawn)."""
        return self._book(d)

    def modelled_day(self, d: int, pv_error: FloatArray) -> RivalDay:
        """The schedule's day: it has no generation to misjudge."""
        return self._book(d)

    def _book(self, d: int) -> RivalDay:
        _day_index(d, self.days)
        n_t = self.steps_per_day
        net = np.tile([self.depth_kwh, -self.depth_kwh], (n_t, 1))
        return RivalDay(net_kwh=net, limit_per_kwh=np.repeat(self.prices_per_kwh[:, None], 2, 1))


@dataclass(frozen=True, eq=False)
class Design:
    """A mechanism of the registry and its options, checked once (an
    ``rng`` the mechanism takes is supplied at each clearing).

    >>> Design("uniform", {"k": 2.0})
    Traceback (most recent call last):
    ...
    transactive.errors.InputError: field 'k': must be in [0, 1], got 2.0
    """

    mechanism: str = "uniform"
    options: Mapping[str, Any] = field(default_factory=dict)
    _clear: registry.Mechanism = field(init=False, repr=False)
    _takes_rng: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        opts = dict(self.options or {})
        registry.check_options(self.mechanism, opts, supplied=("rng",))
        fn = registry.get(self.mechanism)
        object.__setattr__(self, "options", MappingProxyType(opts))
        object.__setattr__(self, "_clear", fn)
        object.__setattr__(self, "_takes_rng", "rng" in inspect.signature(fn).parameters
                           and "rng" not in opts)
        probe = net_orders(0, np.array([1.0, -1.0]), np.arange(2), np.array([1.0, 0.0]))
        self.clear(probe, np.random.default_rng(0))  # a bad option's value fails here

    def clear(self, orders: OrderBatch, rng: np.random.Generator) -> Clearing:
        """Clear ``orders`` with the design."""
        if self._takes_rng:
            return self._clear(orders, rng=rng, **self.options)
        return self._clear(orders, **self.options)


_UNIFORM = Design()


@dataclass(frozen=True, eq=False)
class StepResult:
    """What the bidders got in one interval (arrays over bidders)."""

    traded_kwh: FloatArray
    """Energy each bidder bought (+) or sold (-)."""
    profit: FloatArray
    """Money each bidder received minus what it paid."""
    price_per_kwh: float
    """The interval's clearing price (``nan`` when the market did not clear)."""


def clear_step(day: RivalDay, t: int, quantity_kwh: npt.ArrayLike, price_per_kwh: npt.ArrayLike,
               rng: np.random.Generator, design: Design = _UNIFORM) -> StepResult:
    """Clear interval ``t`` of ``day`` by ``design`` with one order per bidder
    appended (participants ``n`` to ``n + m - 1`` after the ``n`` rivals, later
    in time priority); ``rng`` goes to a mechanism that draws (``muda``).

    Examples
    --------
    >>> day = PriceSchedule([0.10], dt_h=1.0).day(0, np.random.default_rng(0))
    >>> r = clear_step(day, 0, [2.0, -1.0], [0.2, 0.0], np.random.default_rng(0))
    >>> r.traded_kwh.tolist(), r.profit.round(3).tolist(), r.price_per_kwh
    ([2.0, -1.0], [-0.2, 0.1], 0.1)
    """
    q = np.atleast_1d(np.asarray(quantity_kwh, dtype=np.float64))
    p = np.broadcast_to(np.asarray(price_per_kwh, dtype=np.float64), q.shape)
    n = day.net_kwh.shape[1]
    m = q.shape[0]
    orders = net_orders(t, np.concatenate([day.net_kwh[t], q]), np.arange(n + m),
                        np.concatenate([day.limit_per_kwh[t], p]))
    result = design.clear(orders, rng)
    traded = np.zeros(m)
    profit = np.zeros(m)
    mine = orders.participant >= n
    who = orders.participant[mine] - n
    np.add.at(traded, who, result.accepted[mine] * orders.side[mine])
    np.add.at(profit, who, -result.payment[mine])
    return StepResult(traded_kwh=traded, profit=profit,
                      price_per_kwh=float(result.clearing_price))


def rival_prices(rivals: Rivals, day: RivalDay, rng: np.random.Generator,
                 design: Design = _UNIFORM) -> FloatArray:
    """The clearing price of each interval of ``day`` among the rivals alone
    (no bidder): what a public feed of the market's clearings shows of a day
    no bidder traded in, and the truth a price forecast aims at."""
    empty = np.zeros(0)
    return np.array([clear_step(day, t, empty, empty, rng, design).price_per_kwh
                     for t in range(rivals.steps_per_day)])
