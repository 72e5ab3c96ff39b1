"""The welfare-maximal allocation of a sealed-bid double auction, found without a sort.

Shared by :mod:`~transactive.markets.uniform` (pay-as-clear) and
:mod:`~transactive.markets.pay_as_bid` (discriminatory): both trade the same
quantities and differ only in what each order pays.

The curves
----------
For a price ``p`` let ``D(p)`` be the quantity of the buys priced at or above
``p`` and ``S(p)`` the quantity of the sells priced at or below ``p``. The
excess demand ``E(p) = D(p) - S(p)`` never rises with ``p``. Among the
distinct prices of the batch (its *levels*) let ``p_minus`` be the highest
with ``E >= 0`` and ``p_plus`` the next one up. Every unit whose bid is at
least its ask trades (zero-surplus units too) when

- every buy priced above ``p_minus`` and every sell priced at or below
  ``p_minus`` trades in full;
- if ``S(p_minus) >= D(p_plus)`` the buys *at* ``p_minus`` share the rest,
  ``S(p_minus) - D(p_plus)`` (no more than they offer, as ``E(p_minus) >= 0``);
- otherwise the sells at ``p_plus`` share ``D(p_plus) - S(p_minus)`` (less than
  they offer, as ``E(p_plus) < 0``).

The volume is ``max(S(p_minus), D(p_plus)) = max_p min(D(p), S(p))``, the
largest welfare-maximal volume; at most one price level, on the long side, is
rationed. Its orders share the remainder pro rata to their quantities
(``"pro_rata"``) or in time priority, by ``orders.time`` then row
(``"time"``).

Finding the crossing without a sort
-----------------------------------
The prices still in play are put into buckets (one per 64 orders, at most
16384) of equal width, either in price or in the IEEE-754 bit patterns of the
prices read as ordered integers (nearly logarithmic: used when all prices are
positive, or when equal price widths split the orders badly). Both maps are
monotone, so a bucket holds a contiguous range of prices. One ``bincount``
sums the buy and the sell quantity of each bucket. With ``U[k]`` = (buys in
buckets ``>= k``) - (sells in buckets ``< k``), every level in bucket ``k``
has ``U[k+1] <= E <= U[k]``, so ``p_minus`` lies in the short window of
buckets where ``U`` changes sign, or is the highest level below it. The next
round buckets only the orders inside the window, carrying the quantities
outside it as constants, until at most 2048 orders or a single price are
left; those are sorted. A level just outside the final set (the crossing at
its edge, or a neighbouring bid or ask that bounds the price interval) is
read from the nearest non-empty bucket of an earlier round. A round is a
handful of linear passes over the orders in play; the first usually leaves a
few hundred, and bit-pattern buckets need a few rounds at most whatever the
prices. A round that cannot shrink the set (all prices on two levels with an
exact tie between them) sorts it instead. ``benchmarks/bench_clearing.py``
compares the time with one ``numpy.argsort`` of the prices.

Sums of quantities are compared with a relative tolerance of ``1e-10`` of
the quantities compared, so the result does not depend on the order of
summation: a remainder smaller than that counts as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.orders import BUY, SELL, OrderBatch

__all__ = ["TIE_BREAKS", "Allocation", "TieBreak", "allocate", "cross", "limit_prices"]

TieBreak = Literal["pro_rata", "time"]
TIE_BREAKS: tuple[TieBreak, ...] = ("pro_rata", "time")

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]

_RTOL = 1e-10  # relative tolerance on sums of quantities
_FINAL_SIZE = 2048  # sort the candidates once no more than this many are left
_ORDERS_PER_BUCKET = 64
_MIN_BUCKETS, _MAX_BUCKETS = 64, 1 << 14


@dataclass(frozen=True)
class Allocation:
    """Welfare-maximal quantities of a batch and the prices around the crossing.

    ``accepted`` has one entry per order of the batch (zero for excluded
    orders). A price *level* of one side counts as accepted when any quantity
    at it trades, and as rejected when any quantity at it does not (a partly
    filled level is both). ``last_bid`` / ``last_ask`` are the lowest accepted
    buy level and the highest accepted sell level; ``first_rejected_bid`` /
    ``first_rejected_ask`` the highest rejected buy level and the lowest
    rejected sell level. Missing ones, and all four when nothing trades, are
    ``nan``. ``[p_low, p_high]`` is then the set of competitive-equilibrium
    prices of the allocation: a partly filled level pins it to its price.
    """

    accepted: F64
    volume: float
    last_bid: float = math.nan
    last_ask: float = math.nan
    first_rejected_bid: float = math.nan
    first_rejected_ask: float = math.nan

    @property
    def p_low(self) -> float:
        """``max(last_ask, first_rejected_bid)``: the bottom of the price interval."""
        if self.volume <= 0:
            return math.nan
        return max(self.last_ask, self.first_rejected_bid, key=_nan_low)

    @property
    def p_high(self) -> float:
        """``min(last_bid, first_rejected_ask)``: the top of the price interval."""
        if self.volume <= 0:
            return math.nan
        return min(self.last_bid, self.first_rejected_ask, key=_nan_high)


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _nan_high(x: float) -> float:
    return math.inf if math.isnan(x) else x


# --------------------------------------------------------------------- options
def _check_options(
    tie_break: object, price_floor: object, price_cap: object
) -> tuple[float | None, float | None]:
    if tie_break not in TIE_BREAKS:
        raise InputError("tie_break", f"must be one of {', '.join(TIE_BREAKS)}; got {tie_break!r}")
    bounds: list[float | None] = []
    for name, value in (("price_floor", price_floor), ("price_cap", price_cap)):
        if value is None:
            bounds.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputError(name, f"must be a number or None, got {value!r}")
        if not math.isfinite(float(value)):
            raise InputError(name, f"must be finite, got {value!r}")
        bounds.append(float(value))
    floor, cap = bounds
    if floor is not None and cap is not None and floor > cap:
        raise InputError("price_floor", f"must not exceed price_cap ({floor!r} > {cap!r})")
    return floor, cap


def limit_prices(price: F64, price_floor: float | None, price_cap: float | None) -> F64:
    """``price`` clipped to ``[price_floor, price_cap]`` (either may be missing)."""
    if price_floor is None and price_cap is None:
        return price
    return np.clip(price, price_floor, price_cap)


def allocate(
    orders: OrderBatch,
    *,
    tie_break: TieBreak = "pro_rata",
    price_floor: float | None = None,
    price_cap: float | None = None,
) -> Allocation:
    """Validate the shared options and allocate ``orders`` welfare-maximally.

    Buys priced below ``price_floor`` and sells priced above ``price_cap``
    take no part. Bad options raise :class:`~transactive.errors.InputError`
    naming the option.

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2, 3], participant=["a", "b", "c"],
    ...                 side=["buy", "sell", "sell"], price=[0.30, 0.10, 0.20],
    ...                 quantity=[2.0, 1.5, 1.0])
    >>> a = allocate(ob)  # the ask at 0.20 is partly filled: it sets the price
    >>> a.accepted.tolist(), a.volume, a.p_low, a.p_high
    ([2.0, 1.5, 0.5], 2.0, 0.2, 0.2)
    """
    floor, cap = _check_options(tie_break, price_floor, price_cap)
    if not isinstance(orders, OrderBatch):
        raise InputError("orders", f"expected an OrderBatch, got {type(orders).__name__}")
    is_buy = orders.side == BUY
    keep: Mask | None = None
    if floor is not None:
        keep = ~is_buy | (orders.price >= floor)
    if cap is not None:
        sells_ok = is_buy | (orders.price <= cap)
        keep = sells_ok if keep is None else keep & sells_ok
    time = orders.time if orders.time is not None else np.arange(len(orders), dtype=np.float64)
    if keep is None or keep.all():
        return cross(orders.price, orders.quantity, is_buy, time, tie_break=tie_break)
    rows = np.flatnonzero(keep)
    inner = cross(orders.price[rows], orders.quantity[rows], is_buy[rows], time[rows],
                  tie_break=tie_break)
    accepted = np.zeros(len(orders))
    accepted[rows] = inner.accepted
    return Allocation(accepted, inner.volume, inner.last_bid, inner.last_ask,
                      inner.first_rejected_bid, inner.first_rejected_ask)


# --------------------------------------------------------------------- the ladder
_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _ordered_bits(x: float) -> int:
    """An integer ordered like the float ``x`` (``+0.0`` and ``-0.0`` alike)."""
    bits = int(np.float64(x).view(np.int64))
    return -(bits & 0x7FFF_FFFF_FFFF_FFFF) if bits < 0 else bits


def _bucket_keys(p: F64, b: Mask, lo: float, hi: float, k: int, by_bits: bool) -> tuple[Ints, int]:
    """``2 * bucket + is_buy`` for each order, and the number of buckets.

    Buckets split ``[lo, hi]`` into ``k`` (by bits: up to ``2 k``) equal widths, either of the
    prices or (``by_bits``) of their IEEE bit patterns read as ordered
    integers, which is nearly logarithmic and splits any spread of prices in a
    few rounds. Both maps are monotone in the price.
    """
    if by_bits:
        k_lo = _ordered_bits(lo)
        shift = max((_ordered_bits(hi) - k_lo).bit_length() - k.bit_length(), 0)
        n_b = ((_ordered_bits(hi) - k_lo) >> shift) + 1
        if lo > 0:
            bits = p.view(np.uint64) - np.uint64(k_lo)
        else:
            sign = p.view(np.int64) >> 63
            signed = p.view(np.int64) & _MAGNITUDE
            signed ^= sign
            signed -= sign
            bits = signed.view(np.uint64)
            bits -= np.uint64(k_lo % (1 << 64))  # wraps to the right difference
        bits >>= np.uint64(shift)
        key = bits.view(np.intp)
    else:  # bucket = floor((p - lo) * (k - 1/2) / span) < k
        n_b = k
        span = hi - lo
        if math.isfinite(span):
            t = p - lo
        else:  # the range overflows: halve everything
            t = p * 0.5 - lo * 0.5
            span = hi * 0.5 - lo * 0.5
        if math.isfinite((k - 0.5) / span):
            t *= (k - 0.5) / span
        else:  # a subnormal span
            t /= span
            t *= k - 0.5
        key = t.astype(np.intp)
    key <<= 1
    key += b.view(np.uint8)
    return key, n_b


class _Round:
    """One bucketing round: its orders, their bucket keys, the quantity of each
    bucket and side, and ``[lo, hi]``, the window of buckets passed on."""

    def __init__(self, price: F64, quantity: F64, is_buy: Mask, key: Ints, rows: Ints | None,
                 buy_qty: F64, sell_qty: F64, window: tuple[int, int],
                 near: tuple[Ints, int, int]) -> None:
        self.price, self.quantity, self.is_buy, self.key = price, quantity, is_buy, key
        self.rows = rows  # positions in the full arrays (None: the full arrays)
        self.buy_qty, self.sell_qty = buy_qty, sell_qty
        self.lo, self.hi = window
        # the orders of buckets near_lo..near_hi: the window and the nearest
        # non-empty bucket on each side of it
        self._near, self._near_lo, self._near_hi = near
        self._near_keys: Ints | None = None
        self._buckets: dict[int, tuple[Ints, F64, Mask]] = {}

    def bucket(self, k: int) -> tuple[Ints, F64, Mask]:
        """Positions, prices and sides of the orders of bucket ``k`` (kept once read)."""
        if k not in self._buckets:
            if k in (self._near_lo, self._near_hi):  # read from the few orders near the window
                if self._near_keys is None:
                    self._near_keys = self.key[self._near] >> 1
                at = self._near[self._near_keys == k]
            else:
                at = np.flatnonzero((self.key >> 1) == k)
            self._buckets[k] = (at, self.price[at], self.is_buy[at])
        return self._buckets[k]

    def quantities(self, k: int, price: float) -> tuple[float, float]:
        """Buy and sell quantity at ``price`` in bucket ``k``."""
        at, prices, buys = self.bucket(k)
        if prices.min() == prices.max():  # the bucket holds this one price
            return float(self.buy_qty[k]), float(self.sell_qty[k])
        here = prices == price
        qty = self.quantity[at[here]]
        return float(qty[buys[here]].sum()), float(qty[~buys[here]].sum())


@dataclass(frozen=True)
class _Level:
    """A price level: level ``index`` of the final set, or (``round`` given) a
    level in bucket ``index`` of an earlier round, measured when asked."""

    price: float
    index: int
    round: _Round | None = None


def _window(key: Ints, lo: int, hi: int) -> Ints:
    """Positions of the orders in buckets ``lo..hi``."""
    return np.flatnonzero((key >= 2 * lo) & (key <= 2 * hi + 1))


def _n_buckets(n: int) -> int:
    return int(min(max(n // _ORDERS_PER_BUCKET, _MIN_BUCKETS), _MAX_BUCKETS))


class _Ladder:
    """Rounds of bucketing around the crossing, innermost last, and the sorted
    levels of the orders left at the end (the *final* set)."""

    def __init__(self, price: F64, quantity: F64, is_buy: Mask, n_buckets: int | None,
                 final_size: int) -> None:
        self.rounds: list[_Round] = []
        p, q, b = price, quantity, is_buy
        rows: Ints | None = None
        self.d_out = self.s_out = 0.0  # buys above / sells below the final set
        margin = math.nan
        by_bits: bool | None = None  # None: not decided yet
        while p.size > final_size:
            lo, hi = float(p.min()), float(p.max())
            if lo == hi:
                break
            if by_bits is None:
                by_bits = lo > 0
            key, n_b = _bucket_keys(p, b, lo, hi, n_buckets or _n_buckets(p.size), by_bits)
            per = np.asarray(np.bincount(key, weights=q, minlength=2 * n_b), dtype=np.float64)
            sell_qty, buy_qty = per[0::2], per[1::2]
            if math.isnan(margin):
                margin = 2 * _RTOL * float(per.sum())
            # u[k]: upper bound of E over bucket k (non-increasing in k)
            sells_below = np.concatenate(([0.0], np.cumsum(sell_qty[:-1])))
            u = (self.d_out + np.cumsum(buy_qty[::-1])[::-1]) - (self.s_out + sells_below)
            m_lo = max(int(np.searchsorted(-u, -margin, side="right")) - 1, 0)
            j_hi = max(int(np.searchsorted(-u, margin, side="right")) - 1, 0)
            filled = (buy_qty + sell_qty) > 0
            below = np.flatnonzero(filled[:m_lo])
            above = np.flatnonzero(filled[j_hi + 1:])
            a = int(below[-1]) if below.size else m_lo
            c = j_hi + 1 + int(above[0]) if above.size else j_hi
            sel, w_lo, w_hi = _window(key, a, c), a, c
            near = (sel, a, c)
            if sel.size > final_size:
                inner = key[sel]
                narrow = sel[(inner >= 2 * m_lo) & (inner <= 2 * j_hi + 1)]
                if narrow.size:
                    sel, w_lo, w_hi = narrow, m_lo, j_hi
            kept = p[sel]
            if not by_bits and 8 * sel.size > p.size and kept.min() != kept.max():
                by_bits = True  # equal widths split these prices badly: redo by bits
                continue
            if sel.size == p.size:
                break
            self.d_out += float(buy_qty[w_hi + 1:].sum())
            self.s_out += float(sell_qty[:w_lo].sum())
            self.rounds.append(_Round(p, q, b, key, rows, buy_qty, sell_qty, (w_lo, w_hi), near))
            p, q, b = kept, q[sel], b[sel]
            rows = sel if rows is None else rows[sel]
        if p.size and p.min() == p.max():  # one price left: no sort needed
            self.positions = np.arange(p.size) if rows is None else rows
            self.levels = p[:1]
            self.buy_qty = np.array([np.multiply(q, b.view(np.uint8)).sum()])
            self.sell_qty = np.array([np.multiply(q, (~b).view(np.uint8)).sum()])
            self.bounds = np.array([0, p.size])
            return
        order = np.argsort(p)
        fp = p[order]
        fq, fb = q[order], b[order]
        self.positions = order if rows is None else rows[order]
        starts = np.flatnonzero(np.concatenate(([True], fp[1:] != fp[:-1])))
        self.levels = fp[starts]
        self.buy_qty = np.add.reduceat(fq * fb, starts) if fp.size else np.zeros(0)
        self.sell_qty = np.add.reduceat(fq * ~fb, starts) if fp.size else np.zeros(0)
        self.bounds = np.append(starts, fp.size)

    def level(self, i: int) -> _Level:
        """Level ``i`` of the final set."""
        return _Level(float(self.levels[i]), i)

    def quantities(self, level: _Level) -> tuple[float, float]:
        """Buy and sell quantity at ``level``."""
        if level.round is None:
            return float(self.buy_qty[level.index]), float(self.sell_qty[level.index])
        return level.round.quantities(level.index, level.price)

    def rows(self, level: _Level) -> Ints:
        """Positions (in the arrays given to :func:`cross`) of the orders at
        ``level``, a level of the final set. (The rationed level always is: the
        level below the final set can only be ``p_minus`` when the sells at
        ``p_plus`` are rationed, and the level above it only ``p_plus`` when
        the buys at ``p_minus`` are, since the window starts where ``U >= 0``
        and ends where ``U < 0``.)"""
        if level.round is not None:
            raise RuntimeError("internal error: the rationed level is not in the final set")
        return self.positions[self.bounds[level.index]:self.bounds[level.index + 1]]

    def beyond(self, direction: int, side: int | None = None, bound: float | None = None,
               strict: bool = True) -> _Level | None:
        """The nearest level outside the final set, below it (``direction < 0``)
        or above it, holding orders of ``side`` (any side if None) priced beyond
        ``bound`` (strictly or not)."""
        for rnd in reversed(self.rounds):
            if side is None:
                filled = (rnd.buy_qty + rnd.sell_qty) > 0
            else:
                filled = (rnd.buy_qty if side == BUY else rnd.sell_qty) > 0
            if direction < 0:
                ks = np.flatnonzero(filled[:rnd.lo])[::-1]
            else:
                ks = rnd.hi + 1 + np.flatnonzero(filled[rnd.hi + 1:])
            for k in ks.tolist():
                _, prices, buys = rnd.bucket(k)
                if side is not None:
                    prices = prices[buys == (side == BUY)]
                if bound is not None:
                    prices = prices[_past(prices, bound, direction, strict)]
                if prices.size:
                    return _Level(float(prices.max() if direction < 0 else prices.min()), k, rnd)
        return None

    def nearest(self, direction: int, side: int, bound: float | None, strict: bool) -> float:
        """Price of the nearest level of ``side`` beyond ``bound`` (``nan`` if none)."""
        mask = (self.buy_qty if side == BUY else self.sell_qty) > 0
        if bound is not None:
            mask &= _past(self.levels, bound, direction, strict)
        hits = np.flatnonzero(mask)
        if hits.size:
            return float(self.levels[hits[-1] if direction < 0 else hits[0]])
        found = self.beyond(direction, side, bound, strict)
        return math.nan if found is None else found.price


def _past(values: Any, bound: float, direction: int, strict: bool) -> Any:
    """Whether ``values`` lie beyond ``bound``: below it (``direction < 0``) or above."""
    if direction < 0:
        return values < bound if strict else values <= bound
    return values > bound if strict else values >= bound


# --------------------------------------------------------------------- crossing
def _share(quantity: F64, time: F64, rows: Ints, remainder: float, level_qty: float,
           tie_break: TieBreak) -> F64:
    """Split ``remainder`` among the orders of one level."""
    if tie_break == "pro_rata" or remainder >= level_qty:
        return quantity * (remainder / level_qty)
    order = np.lexsort((rows, time))
    q = quantity[order]
    before = np.concatenate(([0.0], np.cumsum(q[:-1])))
    got = np.clip(remainder - before, 0.0, q)
    got[got <= _RTOL * remainder] = 0.0
    out = np.empty_like(got)
    out[order] = got
    return out


def cross(
    price: F64,
    quantity: F64,
    is_buy: Mask,
    time: F64,
    *,
    tie_break: TieBreak = "pro_rata",
    n_buckets: int | None = None,
    final_size: int = _FINAL_SIZE,
) -> Allocation:
    """Welfare-maximal allocation of orders given as arrays (no validation).

    ``n_buckets`` (default: about one per 64 orders, at most 16384) and ``final_size`` tune
    the search; any values give the same result.
    """
    n = price.shape[0]
    if n == 0:
        return Allocation(np.zeros(0), 0.0)
    lad = _Ladder(price, quantity, is_buy, n_buckets, max(final_size, 1))
    d_at = lad.d_out + np.cumsum(lad.buy_qty[::-1])[::-1]  # D at each final level
    s_at = lad.s_out + np.cumsum(lad.sell_qty)  # S at each final level
    hits = np.flatnonzero(d_at - s_at >= -_RTOL * (d_at + s_at))
    minus: _Level | None
    plus: _Level | None
    if hits.size:
        i = int(hits[-1])
        minus, s_minus = lad.level(i), float(s_at[i])
        if i + 1 < lad.levels.size:
            plus, d_plus = lad.level(i + 1), float(d_at[i + 1])
        else:
            plus, d_plus = lad.beyond(+1), lad.d_out
    else:  # p_minus is the level just below the final set, or there is none
        minus, s_minus = lad.beyond(-1), lad.s_out
        if minus is not None:
            d_m = float(d_at[0]) + lad.quantities(minus)[0]
            if d_m - s_minus < -_RTOL * (d_m + s_minus):
                raise RuntimeError("internal error: the crossing was not bracketed")
        plus, d_plus = lad.level(0), float(d_at[0])

    delta = s_minus - d_plus
    tol = _RTOL * (s_minus + d_plus)
    rationed: _Level | None
    if delta >= -tol:  # the buys at p_minus share the rest
        side, rationed, remainder = BUY, minus, max(delta, 0.0)
        level_qty = 0.0 if minus is None else lad.quantities(minus)[0]
    else:  # the sells at p_plus share the rest
        side, rationed, remainder = SELL, plus, -delta
        level_qty = 0.0 if plus is None else lad.quantities(plus)[1]
    if remainder <= tol:
        remainder = 0.0
    elif remainder >= level_qty - tol:
        remainder = level_qty
    volume = d_plus + (remainder if side == BUY else 0.0)
    if volume <= 0:
        return Allocation(np.zeros(n), 0.0)

    p_minus = None if minus is None else minus.price
    full = is_buy if p_minus is None else np.equal(price > p_minus, is_buy)
    accepted = np.multiply(quantity, full.view(np.uint8))
    if remainder > 0 and rationed is not None:
        rows = lad.rows(rationed)
        rows = rows[is_buy[rows] == (side == BUY)]
        accepted[rows] = _share(quantity[rows], time[rows], rows, remainder, level_qty, tie_break)

    partial = 0 < remainder < level_qty  # the rationed level is left partly unfilled
    if side == BUY and remainder > 0 and minus is not None:
        last_bid = minus.price
        first_rejected_bid = minus.price if partial else lad.nearest(-1, BUY, p_minus,
                                                                      strict=True)
    else:
        last_bid = lad.nearest(+1, BUY, p_minus, strict=True)
        first_rejected_bid = (math.nan if p_minus is None
                              else lad.nearest(-1, BUY, p_minus, strict=False))
    if side == SELL and plus is not None:
        last_ask = plus.price
        first_rejected_ask = plus.price if partial else lad.nearest(+1, SELL, plus.price,
                                                                     strict=True)
    else:
        last_ask = lad.nearest(-1, SELL, p_minus, strict=False)
        first_rejected_ask = lad.nearest(+1, SELL, p_minus, strict=True)
    return Allocation(accepted, volume, last_bid, last_ask, first_rejected_bid,
                      first_rejected_ask)
