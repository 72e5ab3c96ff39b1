"""Flexibility as bid-curve segments, and the household's energy manager.

Every device fleet states, each interval, what it would consume or produce at
what price: *segments* (household, side, quantity in kWh, limit price per kWh).
A buy segment runs if energy costs at most its limit; a sell segment delivers
if it is paid at least its limit. A fleet's segments come from its state and
a price forecast (the strategies of each fleet's module); a must-run segment
(an EV out of laxity, a house below its comfort band) bids the price cap.

The household's energy manager (:func:`net_in_home`) first matches what it
can inside the home, its highest buy segments against its cheapest sell
segments while the buy's limit is at least the sell's (the house's own PV
runs its own heat pump: no market, no money), and sends the rest, one order
per segment, to the market. After clearing, each segment was served by the
home, by the market (its order's accepted quantity) and, for what is left,
by the utility where that is worth it (a buy limit at or above the retail
price, a sell limit at or below the feed-in price; :func:`served`); the
fleets then advance their states by what they got.

Because the home matches first, a household's remaining buy limits all lie
below its remaining sell limits: it never trades with itself.

Examples
--------
>>> seg = Segments(household=[0, 0, 0], side=[BUY, BUY, SELL],
...                quantity_kwh=[1.0, 0.5, 1.2], price_per_kwh=[0.30, 0.12, 0.08])
>>> home = net_in_home(seg, n_households=1)
>>> home.matched_kwh.round(6).tolist()   # 1 kWh load, 0.2 kWh of the heat pump on own PV
[1.0, 0.2, 1.2]
>>> home.residual_kwh.round(6).tolist()  # the heat pump's other 0.3 kWh goes to the market
[0.0, 0.3, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.orders import BUY, SELL

__all__ = ["HomeMatch", "Part", "Segments", "net_in_home", "part_prices", "served",
           "window_moments", "window_quantile"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False, init=False)
class Segments:
    """Bid-curve segments, one row each: ``household`` (index), ``side``
    (``BUY`` = consume, ``SELL`` = produce), ``quantity_kwh`` (> 0),
    ``price_per_kwh`` (the limit), ``indivisible`` (a run that starts
    whole or not at all: an appliance's cycle; partly accepted, the rest
    comes from the utility, see :func:`served`) and ``must_run`` (energy the
    device cannot do without this interval: a base load, a car out of
    laxity, a house at the edge of its band, a started cycle)."""

    household: IntArray
    side: npt.NDArray[np.int8]
    quantity_kwh: FloatArray
    price_per_kwh: FloatArray
    indivisible: npt.NDArray[np.bool_]
    must_run: npt.NDArray[np.bool_]

    def __init__(self, *, household: npt.ArrayLike, side: npt.ArrayLike,
                 quantity_kwh: npt.ArrayLike, price_per_kwh: npt.ArrayLike,
                 indivisible: npt.ArrayLike | None = None,
                 must_run: npt.ArrayLike | None = None) -> None:
        h = np.asarray(household, dtype=np.int64)
        n = h.shape[0] if h.ndim == 1 else -1
        cols = {"side": np.asarray(side), "quantity_kwh": np.asarray(quantity_kwh, np.float64),
                "price_per_kwh": np.asarray(price_per_kwh, np.float64),
                "indivisible": np.zeros(max(n, 0), bool) if indivisible is None
                else np.asarray(indivisible, dtype=bool),
                "must_run": np.zeros(max(n, 0), bool) if must_run is None
                else np.asarray(must_run, dtype=bool)}
        for name, arr in {"household": h, **cols}.items():
            if arr.shape != (n,):
                raise InputError(name, f"must be a 1-d array like household ({max(n, 0)}), "
                                 f"got shape {arr.shape}")
        if (h < 0).any():
            raise InputError("household", "must be >= 0", row=int(np.flatnonzero(h < 0)[0]))
        bad = np.flatnonzero((cols["side"] != BUY) & (cols["side"] != SELL))
        if bad.size:
            raise InputError("side", f"must be BUY (1) or SELL (-1), got {cols['side'][bad[0]]!r}",
                             row=int(bad[0]))
        q, p = cols["quantity_kwh"], cols["price_per_kwh"]
        bad = np.flatnonzero(~np.isfinite(q) | (q < 0))
        if bad.size:
            raise InputError("quantity_kwh", f"must be finite and >= 0, got {q[bad[0]]!r}",
                             row=int(bad[0]))
        bad = np.flatnonzero(~np.isfinite(p))
        if bad.size:
            raise InputError("price_per_kwh", f"must be finite, got {p[bad[0]]!r}",
                             row=int(bad[0]))
        object.__setattr__(self, "household", h)
        object.__setattr__(self, "side", cols["side"].astype(np.int8))
        object.__setattr__(self, "quantity_kwh", q)
        object.__setattr__(self, "price_per_kwh", p)
        object.__setattr__(self, "indivisible", cols["indivisible"])
        object.__setattr__(self, "must_run", cols["must_run"])

    def __len__(self) -> int:
        return int(self.household.shape[0])

    def take(self, rows: npt.ArrayLike) -> Segments:
        """The segments at ``rows``, in that order."""
        r = np.asarray(rows, dtype=np.intp)
        return Segments._checked(*(getattr(self, c)[r] for c in _COLUMNS))

    @classmethod
    def concat(cls, parts: list[Segments]) -> Segments:
        """The segments of several fleets, in order."""
        return cls._checked(*(np.concatenate([getattr(s, c) for s in parts])
                              for c in _COLUMNS))

    @classmethod
    def of_parts(cls, parts: Sequence[Part], *, check: bool = True
                 ) -> tuple[Segments, IntArray]:
        """The segments of a fleet's (or several fleets') ``parts``, part by
        part and each part's households in order, and the part (its index in
        ``parts``) each segment comes from. ``check=False`` trusts the parts
        (a simulation's own fleets: quantities >= 0 and prices finite where
        chosen) and skips the constructor's checks.

        >>> seg, part = Segments.of_parts([
        ...     Part(np.array([True, False, True]), BUY, np.array([1.0, 0.0, 2.0]), 0.3),
        ...     Part(np.array([False, True, False]), SELL, np.ones(3), np.full(3, 0.1))])
        >>> seg.household.tolist(), seg.side.tolist(), part.tolist()
        ([0, 2, 1], [1, 1, -1], [0, 0, 1])
        """
        n = parts[0].chosen.shape[0]
        chosen, must_run = np.empty((len(parts), n), bool), np.empty((len(parts), n), bool)
        quantity = np.empty((len(parts), n))
        for k, p in enumerate(parts):
            chosen[k], quantity[k], must_run[k] = p.chosen, p.quantity_kwh, p.must_run
        rows = np.flatnonzero(chosen)  # part by part, households in order
        part, household = np.divmod(rows, max(n, 1))
        side = np.array([p.side for p in parts], np.int8)
        indivisible = np.array([p.indivisible for p in parts], bool)
        columns: tuple[npt.NDArray[Any], ...] = (
            household, side[part], quantity.take(rows), part_prices(parts, rows),
            indivisible[part], must_run.take(rows))
        if not check:
            return cls._checked(*columns), part
        return cls(**dict(zip(_COLUMNS, columns, strict=True))), part

    def with_columns(self, **columns: npt.NDArray[Any]) -> Segments:
        """These segments with some columns (by name) replaced, trusted as
        they are (values the caller made from the segments' own: not checked)."""
        return Segments._checked(*(columns.pop(c, getattr(self, c)) for c in _COLUMNS))

    @classmethod
    def _checked(cls, *columns: npt.NDArray[Any]) -> Segments:
        """Segments from columns of segments already checked (no check again)."""
        out = object.__new__(cls)
        for name, col in zip(_COLUMNS, columns, strict=True):
            object.__setattr__(out, name, col)
        return out


_COLUMNS = ("household", "side", "quantity_kwh", "price_per_kwh", "indivisible", "must_run")


def part_prices(parts: Sequence[Part], rows: IntArray) -> FloatArray:
    """The limit prices of ``parts``' segments at ``rows`` (part * households
    + household, the order of :meth:`Segments.of_parts`): the prices of the
    same segments priced otherwise (parts that differ in price only).

    >>> part_prices([Part(np.ones(2, bool), BUY, 1.0, np.array([0.1, 0.2])),
    ...              Part(np.ones(2, bool), SELL, 1.0, 0.3)], np.array([1, 2])).tolist()
    [0.2, 0.3]
    """
    price = np.empty((len(parts), parts[0].chosen.shape[0]))
    for k, p in enumerate(parts):
        price[k] = p.price_per_kwh
    return price.take(rows)


class Part(NamedTuple):
    """One kind of a fleet's bids of an interval over all its households at
    once (an EV's energy it needs, say): a segment for each household
    ``chosen``, with its quantity and price (per household, or one for all)
    and whether it must run; ``side`` and ``indivisible`` hold for the
    whole part. :meth:`Segments.of_parts` turns parts into segments."""

    chosen: npt.NDArray[np.bool_]
    side: int
    quantity_kwh: FloatArray | float
    price_per_kwh: FloatArray | float
    must_run: npt.NDArray[np.bool_] | bool = False
    indivisible: bool = False


@dataclass(frozen=True, eq=False)
class HomeMatch:
    """What each segment got inside its home and what it sends to the market."""

    matched_kwh: FloatArray
    """Per segment: served by the home's own segments of the other side."""
    residual_kwh: FloatArray
    """Per segment: the rest, the quantity of its order to the market."""


def net_in_home(segments: Segments, n_households: int) -> HomeMatch:
    """Match each household's buy segments against its sell segments.

    Within a household, buys are taken from the highest limit down and sells
    from the lowest up, and matched while the buy's limit is at least the
    sell's (a greedy match, which maximises the home's gain from matching
    itself). Ties in price keep the segments' order. Vectorised over
    households: one step per segment of the longest side of any household,
    each over the households still matching (one that stops matching never
    matches again: its next buy bids less, its next sell asks more).
    """
    if len(segments) and int(segments.household.max()) >= n_households:
        raise InputError("household", f"must be < n_households ({n_households})")
    q, p, h = segments.quantity_kwh, segments.price_per_kwh, segments.household
    matched = np.zeros(len(segments))
    sell = segments.side != BUY
    key = h + n_households * ~sell  # sells, then buys, by household
    count = np.bincount(key, minlength=2 * n_households)  # sells, then buys
    both = (count[:n_households] > 0) & (count[n_households:] > 0)
    homes = np.flatnonzero(both)
    if homes.size:
        # the segments of the homes with both sides, sells by household and
        # rising limit, then buys by household and falling limit (stable: ties
        # keep the segments' order); the others match nothing
        rows = np.flatnonzero(both[h])
        at_sell, at_p = sell[rows], p[rows]
        order = rows[np.lexsort((np.where(at_sell, at_p, -at_p), key[rows]))]
        count = count.reshape(2, n_households) * both  # of those homes only
        # the segments in that order (and a last one for positions past the
        # end); per household still matching: its current buy and sell and
        # where its buys and sells end (positions in ``order``), what is left of
        # its current buy and sell; what each matched, by position
        q_at, p_at = np.zeros(order.size + 1), np.zeros(order.size + 1)
        np.take(q, order, out=q_at[:-1])
        np.take(p, order, out=p_at[:-1])
        got = np.zeros(order.size + 1)
        first = np.cumsum(count) - count.ravel()
        at = np.empty((4, homes.size), np.int64)
        at[0], at[1] = first[homes + n_households], first[homes]
        at[2:] = at[:2] + count[::-1, homes]
        left = q_at[at[:2]]
        more = np.ones(homes.size, bool)
        while True:
            # a household goes on while it has both sides left and they match
            now = at[:2]
            price = p_at[now]
            live = more & (price[0] >= price[1])
            if not live.all():
                at, left = at.compress(live, axis=1), left.compress(live, axis=1)
                now = at[:2]
            if not at.shape[1]:
                break
            take = np.minimum(left[0], left[1])
            got[now] += take  # a buy and a sell each: no position twice
            left -= take
            done = left <= 0
            now += done
            more = (at[0] < at[2]) & (at[1] < at[3])
            left = np.where(done, q_at[now], left)
        matched[order] = got[:-1]
    matched = np.minimum(matched, q)
    return HomeMatch(matched_kwh=matched, residual_kwh=q - matched)


def served(segments: Segments, home: HomeMatch, accepted_kwh: npt.ArrayLike,
           retail_price_per_kwh: float, feed_in_price_per_kwh: float, *, check: bool = True
           ) -> tuple[FloatArray, FloatArray]:
    """Per segment, what it got in all, and the part of it from (to) the utility.

    ``accepted_kwh`` is what the market accepted of each segment's order (its
    residual). What is left of a buy segment is imported if its limit is at
    least the retail price, and of a sell segment exported if its limit is at
    most the feed-in price; otherwise it is not served (the device waits, the
    PV is curtailed). An indivisible segment that got anything gets the rest
    from (gives it to) the utility. ``check=False`` trusts ``accepted_kwh``
    (a market's clearing of the segments' own orders) and skips its checks.

    Examples
    --------
    >>> seg = Segments(household=[0, 0], side=[BUY, SELL], quantity_kwh=[2.0, 0.5],
    ...                price_per_kwh=[0.30, 0.08])
    >>> home = net_in_home(seg, 1)
    >>> total, utility = served(seg, home, [0.0, 0.0], 0.30, 0.08)
    >>> total.tolist(), utility.tolist()
    ([2.0, 0.5], [1.5, 0.0])
    """
    acc = np.asarray(accepted_kwh, dtype=np.float64)
    if check and acc.shape != home.residual_kwh.shape:
        raise InputError("accepted_kwh", f"must have one value per segment "
                         f"({home.residual_kwh.size}), got shape {acc.shape}")
    if check and ((acc > home.residual_kwh + 1e-9).any() or (acc < 0).any()):
        row = int(np.flatnonzero((acc > home.residual_kwh + 1e-9) | (acc < 0))[0])
        raise InputError("accepted_kwh", "must be within [0, the segment's order]", row=row)
    left = home.residual_kwh - acc
    buy = segments.side == BUY
    to_utility = np.where(buy, segments.price_per_kwh >= retail_price_per_kwh,
                          segments.price_per_kwh <= feed_in_price_per_kwh)
    to_utility |= segments.indivisible & (home.matched_kwh + acc > 0)
    utility = np.where(to_utility, left, 0.0)
    return home.matched_kwh + acc + utility, utility


def window_quantile(forecast_per_kwh: npt.ArrayLike, length: npt.ArrayLike,
                    q: npt.ArrayLike) -> FloatArray:
    """Per household, the ``q``-quantile (lower) of the first ``length``
    intervals of the price forecast: the price below which a device that
    needs a share ``q`` of the next ``length`` intervals finds enough of them.
    ``length`` is clipped to the forecast (at least 1).

    >>> window_quantile([0.3, 0.1, 0.2, 0.4], [4, 2, 4], [0.0, 1.0, 0.5]).tolist()
    [0.1, 0.3, 0.2]
    """
    f = np.asarray(forecast_per_kwh, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or not np.isfinite(f).all():
        raise InputError("forecast_per_kwh", "must be a non-empty 1-d array of finite prices")
    size = np.minimum(np.maximum(np.asarray(length, dtype=np.int64), 1), f.size)
    share = np.asarray(q, dtype=np.float64)
    if size.size == 0:
        return np.zeros(0)
    if share.ndim == 0 and (share <= 0.0 or share >= 1.0):  # lowest, highest: running extremes
        running = (np.minimum if share <= 0.0 else np.maximum).accumulate(f)
        return running[size - 1]
    share = np.clip(share, 0.0, 1.0)
    top = int(size.max())
    lengths = np.arange(1, top + 1)[:, None]
    prefix = np.where(np.arange(top)[None, :] < lengths, f[:top], np.inf)
    prefix.sort(axis=1)  # row L - 1: the first L prices, sorted, then inf
    rank = np.floor(share * (size - 1)).astype(np.int64)
    return prefix[size - 1, rank]


def window_moments(forecast_per_kwh: FloatArray, length: IntArray
                   ) -> tuple[FloatArray, FloatArray]:
    """Per household, the mean and standard deviation of the first
    ``length`` prices of the forecast (``length`` within 1 .. its size),
    from running sums.

    >>> mean, std = window_moments(np.array([0.1, 0.3, 0.2]), np.array([1, 2]))
    >>> mean.round(3).tolist(), std.round(3).tolist()
    ([0.1, 0.2], [0.0, 0.1])
    """
    sums = np.zeros((2, forecast_per_kwh.size + 1))  # running sums of price and its square
    np.cumsum(forecast_per_kwh, out=sums[0, 1:])
    np.cumsum(forecast_per_kwh**2, out=sums[1, 1:])
    mean = sums[0, length] / length
    return mean, np.sqrt(np.maximum(sums[1, length] / length - mean**2, 0.0))
