"""Exact amounts and their rounding by running totals, for one interval or a block.

The arithmetic of :mod:`~transactive.settlement.rules` (read its docstring
for the lines, signs and the rounding rule) on arrays of any shape: one
interval's participants (:class:`ExactAmounts`, shape (participants,)) or a
block of consecutive intervals with the same participants by position
(:class:`BlockAmounts`, shape (intervals, participants)). Both are computed
by the same function (:func:`exact_lines`), so a day settled as a block posts
the cents of the same day settled interval by interval.

An exact amount is an integer number of millionths (``int64``), the last axis
of an amount array holds the eight rounded lines of :data:`ROUNDED`, and
:func:`post_running` rounds any number of consecutive intervals in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError

__all__ = [
    "EXACT_COLUMNS",
    "MICRO",
    "ROUNDED",
    "BlockAmounts",
    "ExactAmounts",
    "block_amounts",
    "exact_lines",
    "flows",
    "micro",
    "post_running",
    "round_micro",
]

GridFeeMode = Literal["flat", "locational"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Millionths per unit: exact amounts are integers of micro-Wh and micro-cents.
MICRO = 1_000_000
_MAX_MICRO = float(2**62)
#: The market's energy may be off balance by this much per interval (rounding of kWh).
ENERGY_TOLERANCE_WH = 0.5

#: The lines rounded by running totals (the last axis of the exact-amount arrays).
ROUNDED = ("metered_wh", "planned_wh", "market_wh", "market_cents", "utility_cents",
           "imbalance_cents", "grid_fee_cents", "carbon_cents")
#: The statement columns of their exact amounts, in the same order.
EXACT_COLUMNS = tuple("{}_exact_{}".format(*name.rsplit("_", 1)) for name in ROUNDED)


def round_micro(micro: npt.ArrayLike) -> IntArray:
    """Millionths of a unit to whole units, rounded half to even in integer arithmetic.

    Examples
    --------
    >>> round_micro([2_500_000, 3_500_000, -2_500_000, 1_499_999, -1_500_001]).tolist()
    [2, 4, -2, 1, -2]
    """
    return _round_shifted(np.asarray(micro, dtype=np.int64) + MICRO // 2)


def _round_shifted(shifted: IntArray) -> IntArray:
    """:func:`round_micro` of ``shifted - MICRO // 2``."""
    q = np.floor_divide(shifted, MICRO, out=np.empty_like(shifted))  # half rounds up ...
    np.subtract(q, q & 1, out=q, where=q * MICRO == shifted)  # ... a tie to the even one
    return q


def micro(name: str, scaled: npt.NDArray[np.float64], out: IntArray | None = None) -> IntArray:
    """``scaled`` (already in millionths) rounded half to even to integers (into
    ``out``, if given); InputError naming ``name`` and the (flat) row of an
    amount too large to settle."""
    rounded = np.round(scaled)
    if rounded.size and not (rounded.max() < _MAX_MICRO and rounded.min() > -_MAX_MICRO):
        bad = int(np.flatnonzero(~(np.abs(rounded) < _MAX_MICRO))[0])
        raise InputError(name, f"an amount of {scaled.flat[bad] / MICRO!r} units is too "
                         "large to settle", row=bad)
    if out is None:
        return rounded.astype(np.int64)
    np.copyto(out, rounded, casting="unsafe")
    return out


def exact_lines(metered: IntArray, planned: IntArray, market: IntArray, paid: IntArray,
                carbon: IntArray, *, retail: npt.ArrayLike, feed_in: npt.ArrayLike,
                short: npt.ArrayLike, long: npt.ArrayLike, fee_rate: npt.ArrayLike,
                grid_fee: GridFeeMode, minor_per_unit: int
                ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """The eight exact amounts (last axis, :data:`ROUNDED`) from the exact energies
    and payments in millionths (``metered``, ``planned``, ``market`` micro-Wh;
    ``paid``, ``carbon`` micro-cents, all one shape) and the prices, which
    broadcast to it: the utility line priced at ``retail`` or ``feed_in`` by
    the sign of ``planned - market``, the imbalance at ``short`` or ``long`` by
    the sign of ``metered - planned``, the grid fee at ``fee_rate`` of what was
    bought in the market (``"flat"``) or of the market energy
    (``"locational"``). Also returns the rates applied (utility, imbalance,
    grid fee), in the shape of the amounts.

    Examples
    --------
    >>> e, utility_rate, _, _ = exact_lines(
    ...     np.array([500_000_000]), np.array([500_000_000]), np.zeros(1, np.int64),
    ...     np.zeros(1, np.int64), np.zeros(1, np.int64), retail=0.3, feed_in=0.05,
    ...     short=0.3, long=0.05, fee_rate=0.0, grid_fee="flat", minor_per_unit=100)
    >>> e.tolist(), utility_rate.tolist()     # 500 Wh from the utility at 0.3: 15 cents
    ([[500000000, 500000000, 0, 0, 15000000, 0, 0, 0]], [0.3])
    """
    shape = metered.shape
    minor = float(minor_per_unit)
    utility = planned - market
    utility_price = np.where(utility > 0, retail, feed_in).astype(np.float64)
    imbalance = metered - planned
    imbalance_price = np.where(imbalance > 0, short, long).astype(np.float64)
    fee = np.broadcast_to(np.asarray(fee_rate, dtype=np.float64), shape)
    fee_basis = np.maximum(market, 0) if grid_fee == "flat" else market

    # line-major in memory (each line contiguous, as the statements store them),
    # the lines on the last axis as a view
    lines = np.empty((len(ROUNDED), *shape), dtype=np.int64)
    for j, given in ((0, metered), (1, planned), (2, market), (3, paid), (7, carbon)):
        lines[j] = given
    for j, name, energy, rate in ((4, "retail_price_per_kwh", utility, utility_price),
                                  (5, "imbalance_penalty_per_kwh", imbalance, imbalance_price),
                                  (6, "grid_fee_per_kwh", fee_basis, fee)):
        if energy.any() and rate.any():  # else no money (a rate is finite)
            micro(name, energy * rate * minor / 1000.0, out=lines[j])
        else:
            lines[j] = 0
    exact = np.moveaxis(lines, 0, -1)
    return exact, utility_price, imbalance_price, np.array(fee, dtype=np.float64)


def flows(exact: IntArray) -> IntArray:
    """The exact amounts of the eight flows between the participants and their
    counterparties (last axis, in the order of
    :data:`~transactive.settlement.transfers.FLOWS`: market money and energy,
    utility money and energy, imbalance money and energy, grid fee, carbon)
    from exact amounts in :data:`ROUNDED` order."""
    return np.stack([exact[..., 3], exact[..., 2], exact[..., 4],
                     exact[..., 1] - exact[..., 2], exact[..., 5],
                     exact[..., 0] - exact[..., 1], exact[..., 6], exact[..., 7]], axis=-1)


def post_running(start_micro: npt.ArrayLike, exact_micro: npt.ArrayLike) -> IntArray:
    """Whole units posted in each of consecutive intervals by running totals.

    ``start_micro`` (participants x lines) are the running totals before the
    first interval, ``exact_micro`` (intervals x participants x lines) the
    exact amounts, all in millionths; the result (the shape of
    ``exact_micro``) is ``R(E(k)) - R(E(k - 1))`` for every interval ``k``
    (see :mod:`~transactive.settlement.rules`), a line at a time: running
    totals by a cumulative sum along time, rounded, differenced.

    Examples
    --------
    >>> post_running([[0]], [[[1_400_000]], [[1_400_000]], [[-300_000]]])[:, 0, 0].tolist()
    [1, 2, -1]
    """
    start = np.asarray(start_micro, dtype=np.int64)
    exact = np.asarray(exact_micro, dtype=np.int64)
    # line by line (a day of a thousand participants is 0.8 MB a line, which
    # stays in the core's cache through the steps, where the whole block of 6
    # MB does not: a third of the time); a line without amounts posts nothing
    # (its running totals stay where they start), and a line with the amounts
    # and start of one before it (planned energy that is the metered one)
    # posts what that one posts. The result: each line contiguous, on fresh
    # zero pages written only where a line posts
    posted = np.moveaxis(np.zeros((exact.shape[-1], *exact.shape[:-1]), dtype=np.int64), 0, -1)
    done: list[int] = []
    for j in range(exact.shape[-1]):
        line, begin = exact[..., j], start[..., j]
        if len(exact) and line.any():
            twin = next((i for i in done if np.array_equal(exact[..., i], line)
                         and np.array_equal(start[..., i], begin)), None)
            if twin is None:
                _post_line(begin, line, posted[..., j])
            else:
                posted[..., j] = posted[..., twin]
            done.append(j)
    return posted


def _post_line(start: IntArray, exact: IntArray, out: IntArray) -> None:
    """:func:`post_running` of one line: ``start`` its running totals before
    the first interval, ``exact`` (intervals first) its amounts; into ``out``."""
    # running totals along time, a row at a time: numpy's cumsum along the first
    # axis walks it with a stride, several times slower
    running = np.empty(exact.shape, dtype=np.int64)
    np.add(exact[0], start + MICRO // 2, out=running[0])
    for k in range(1, len(exact)):
        np.add(running[k - 1], exact[k], out=running[k])
    # R of the running totals, as _round_shifted
    rounded = np.floor_divide(running, MICRO)
    scratch = np.multiply(rounded, MICRO)
    tie = np.equal(scratch, running)
    if tie.any():  # ties are rare, and a ufunc with ``where`` is slow: only then
        np.bitwise_and(rounded, 1, out=scratch)
        np.subtract(rounded, scratch, out=rounded, where=tie)
    np.subtract(rounded[1:], rounded[:-1], out=out[1:])
    np.subtract(rounded[:1], round_micro(start), out=out[:1])


@dataclass(frozen=True, eq=False)
class ExactAmounts:
    """One interval's exact amounts, before rounding, for participants given by position.

    ``rows`` are the positions of the interval's participants among a run's
    participant labels (the interval's rows, in order); ``exact_micro``
    (rows x :data:`ROUNDED`) their exact amounts in millionths; the rates are
    those applied to each (see :class:`~transactive.settlement.rules.IntervalLines`).
    """

    interval: int
    rows: npt.NDArray[np.intp]
    exact_micro: IntArray
    utility_price_per_kwh: FloatArray
    imbalance_price_per_kwh: FloatArray
    grid_fee_per_kwh: FloatArray


@dataclass(frozen=True, eq=False)
class BlockAmounts:
    """The exact amounts of consecutive intervals ``first, first + 1, ...`` for
    participants by position (the caller's labels, aligned once).

    ``present`` (intervals x participants) says who is settled in each interval
    (a row of the statements); ``exact_micro`` (intervals x participants x
    :data:`ROUNDED`) holds the exact amounts in millionths, zero where a
    participant is absent; the rates (intervals x participants) are those
    applied (see :class:`~transactive.settlement.rules.IntervalLines`).
    """

    first: int
    present: npt.NDArray[np.bool_]
    exact_micro: IntArray
    utility_price_per_kwh: FloatArray
    imbalance_price_per_kwh: FloatArray
    grid_fee_per_kwh: FloatArray

    def __len__(self) -> int:
        return int(self.present.shape[0])

    @property
    def intervals(self) -> npt.NDArray[np.int64]:
        """The intervals of the block."""
        return np.arange(self.first, self.first + len(self), dtype=np.int64)

    def interval(self, k: int) -> ExactAmounts:
        """The ``k``-th interval of the block alone (its present participants)."""
        rows = np.flatnonzero(self.present[k]).astype(np.intp)
        return ExactAmounts(self.first + k, rows, self.exact_micro[k, rows],
                            self.utility_price_per_kwh[k, rows],
                            self.imbalance_price_per_kwh[k, rows],
                            self.grid_fee_per_kwh[k, rows])

    def part(self, start: int, stop: int) -> BlockAmounts:
        """The intervals ``first + start`` to ``first + stop - 1`` as a block."""
        k = slice(start, stop)
        return BlockAmounts(self.first + start, self.present[k], self.exact_micro[k],
                            self.utility_price_per_kwh[k], self.imbalance_price_per_kwh[k],
                            self.grid_fee_per_kwh[k])


def _block(name: str, values: npt.ArrayLike | None, shape: tuple[int, int],
           default: float | None = None) -> FloatArray:
    """``values`` as a finite float array of ``shape``: given in that shape, as
    one value per interval (``shape[0]``) or as one number."""
    if values is None:
        if default is None:
            raise InputError(name, "is required")
        values = default
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (shape[0],):
        arr = arr[:, None]
    if arr.ndim == 1 or arr.ndim > 2 or (arr.ndim == 2 and arr.shape not in (shape,
                                                                              (shape[0], 1))):
        raise InputError(name, f"must be one number, one per interval ({shape[0]}) or of "
                         f"shape {shape}, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InputError(name, f"must be finite, got {arr.flat[bad]!r}", row=bad)
    return np.broadcast_to(arr, shape)


def block_amounts(first: int, metered_kwh: npt.ArrayLike, market_kwh: npt.ArrayLike,
                  payment: npt.ArrayLike, *, retail_price_per_kwh: npt.ArrayLike,
                  feed_in_price_per_kwh: npt.ArrayLike, grid_fee_per_kwh: npt.ArrayLike = 0.0,
                  imbalance_penalty_per_kwh: npt.ArrayLike = 0.0,
                  planned_kwh: npt.ArrayLike | None = None,
                  carbon_cost: npt.ArrayLike | None = None,
                  present: npt.ArrayLike | None = None, grid_fee: GridFeeMode = "flat",
                  minor_per_unit: int = 100) -> BlockAmounts:
    """The exact amounts of intervals ``first, first + 1, ...`` from arrays of
    shape (intervals, participants), participants by position.

    ``market_kwh`` is each participant's net energy bought in the market (sold
    negative) and ``payment`` its net payment to the market (currency,
    received negative): the sums over its orders of ``accepted * side`` and
    of ``payment`` in the interval's :class:`~transactive.clearing.Clearing`.
    ``metered_kwh``, ``planned_kwh`` (default: metered) and ``carbon_cost``
    are as for :func:`~transactive.settlement.rules.compute_lines`. Prices are
    one number, one per interval or one per interval and participant; with
    ``grid_fee="locational"`` ``grid_fee_per_kwh`` is the locational rate of
    each participant. ``present`` (default: everyone) marks who is settled in
    each interval; the arrays must be zero where it is False.

    Examples
    --------
    >>> b = block_amounts(0, [[0.5, -0.5]], [[0.5, -0.5]], [[0.1, -0.1]],
    ...                   retail_price_per_kwh=0.3, feed_in_price_per_kwh=0.05)
    >>> b.exact_micro[0, :, 2:4].tolist()     # market Wh and cents, in millionths
    [[500000000, 10000000], [-500000000, -10000000]]
    """
    if isinstance(first, bool) or not isinstance(first, int | np.integer) or first < 0:
        raise InputError("first", f"must be an integer >= 0, got {first!r}")
    if grid_fee not in ("flat", "locational"):
        raise InputError("grid_fee", f"must be 'flat' or 'locational', got {grid_fee!r}")
    metered_f = np.asarray(metered_kwh, dtype=np.float64)
    if metered_f.ndim != 2:
        raise InputError("metered_kwh", f"must be a 2-d array (intervals x participants), "
                         f"got shape {metered_f.shape}")
    shape = (int(metered_f.shape[0]), int(metered_f.shape[1]))
    metered_f = _block("metered_kwh", metered_f, shape)
    market_wh = _block("market_kwh", market_kwh, shape) * 1000.0
    off = np.abs(market_wh.sum(axis=1)) > ENERGY_TOLERANCE_WH
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise InputError("market_kwh", f"interval {first + k}: energy bought and sold differ "
                         f"by {float(market_wh[k].sum()):.3f} Wh", row=k)
    minor = float(minor_per_unit)
    metered = micro("metered_kwh", metered_f * 1000.0 * MICRO)
    planned = (metered if planned_kwh is None else
               micro("planned_kwh", _block("planned_kwh", planned_kwh, shape) * 1000.0 * MICRO))
    carbon = (np.zeros(shape, dtype=np.int64) if carbon_cost is None else
              micro("carbon_cost", _block("carbon_cost", carbon_cost, shape) * minor * MICRO))
    retail = _block("retail_price_per_kwh", retail_price_per_kwh, shape)
    feed_in = _block("feed_in_price_per_kwh", feed_in_price_per_kwh, shape)
    penalty = _block("imbalance_penalty_per_kwh", imbalance_penalty_per_kwh, shape)
    exact, utility_price, imbalance_price, fee_rate = exact_lines(
        metered, planned, micro("market_kwh", market_wh * MICRO),
        micro("payment", _block("payment", payment, shape) * minor * MICRO), carbon,
        retail=retail, feed_in=feed_in, short=retail + penalty, long=feed_in - penalty,
        fee_rate=_block("grid_fee_per_kwh", grid_fee_per_kwh, shape), grid_fee=grid_fee,
        minor_per_unit=minor_per_unit)
    mask = (np.ones(shape, dtype=bool) if present is None
            else np.asarray(present, dtype=bool))
    if mask.shape != shape:
        raise InputError("present", f"must have shape {shape}, got {mask.shape}")
    if (exact[~mask] != 0).any():
        row = int(np.flatnonzero((exact != 0).any(axis=-1) & ~mask)[0])
        raise InputError("present", "a participant marked absent has amounts", row=row)
    return BlockAmounts(int(first), mask, exact, utility_price, imbalance_price, fee_rate)
