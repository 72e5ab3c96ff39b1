"""Settlement rules: one interval's clearing and meter data -> ledger transfers.

Everything here is a pure function of its inputs (no ledger, no clock): the
interval's data and each participant's running totals of the intervals before
it (:class:`RunningTotals`). Anyone holding their statement can recompute
their bill from their own rows alone ("shadow settlement").

Conventions
-----------
- Energy is in watt-hours, **positive into the participant** (bought,
  imported); money in minor units (cents), **positive = the participant
  pays** (as in :class:`~transactive.clearing.Clearing`).
- ``metered_kwh``: net energy the participant took from the grid in the
  interval (import positive, export negative). ``planned_kwh``: the position
  the participant planned (defaults to the metered energy, i.e. no imbalance).

The lines of a participant ``i``, each first computed exactly (see Rounding):

``metered``     energy ``metered_kwh * 1000`` (Wh)
``planned``     energy ``planned_kwh * 1000`` (Wh)
``market``      energy ``sum(accepted * side) * 1000`` (Wh); money, the net payment to
                the market, ``sum(payment) * minor`` (cents)
``utility``     energy ``planned - market``: the rest of the plan, bought from the
                utility at the retail price (> 0) or sold at the feed-in price (< 0);
                money ``energy * price / 1000 * minor``
``imbalance``   energy ``metered - planned``: the deviation, settled with the utility
                (the balancing party) at the imbalance prices: a shortfall (> 0) pays
                ``retail + penalty``, a surplus (< 0) earns ``feed_in - penalty`` (dual
                imbalance pricing); money as for ``utility``
``grid_fee``    ``grid_fee_wh * grid_fee_per_kwh / 1000 * minor``; ``"flat"``: a fee per
                kWh bought in the market (``grid_fee_wh = max(market, 0)``);
                ``"locational"``: ``grid_fee_wh = market`` at the rate
                ``node_price[node] - clearing_price``, so a trade from bus a to bus b
                pays ``(lambda_b - lambda_a)`` per kWh in total (the locational price
                difference of the bus pair). Use it when the clearing charges one
                system price; a clearing that already charges nodal prices keeps
                that rent in the market account.
``carbon``      a carbon charge given by the caller, ``carbon_cost * minor``

A price is chosen by the sign of the exact energy. The bill has three lines:
the **energy bill** ``energy_cents = market_cents + utility_cents +
imbalance_cents``, the **grid fee** ``grid_fee_cents`` and the **carbon
charge** ``carbon_cents``; ``total_cents`` is their sum.

Rounding: running totals, participant by participant
----------------------------------------------------
An exact amount is an integer number of millionths of a unit (micro-Wh,
micro-cents): ``round_half_even(x * 1e6)`` of the double-precision value ``x``
of the table above in Wh or cents (``metered_kwh * 1000``, ``payment * minor``,
``carbon_cost * minor``); the money of the utility, imbalance and grid-fee
lines is ``round_half_even(e * price * minor / 1000)`` (evaluated left to right
in double precision) of the exact energy ``e`` in micro-Wh, never of a rounded
Wh. For each participant and each of the eight rounded lines (:data:`ROUNDED`:
``metered_wh``, ``planned_wh``, ``market_wh``, ``market_cents``,
``utility_cents``, ``imbalance_cents``, ``grid_fee_cents``, ``carbon_cents``),
with ``E(k)`` the sum of its exact amounts over the intervals settled up to and
including interval ``k``, the whole units posted in interval ``k`` are::

    posted(k) = R(E(k)) - R(E(k - 1)),   R(e) = e / 1e6 rounded half to even

(``R`` in integer arithmetic). So a participant's posted total of every line
is within half a unit of its exact total after every interval, and depends on
that participant's own amounts only: rounding cannot move money or energy
from one participant to another. ``utility_wh = planned_wh - market_wh`` and
``imbalance_wh = metered_wh - planned_wh`` are posted as differences, so
``market_wh + utility_wh + imbalance_wh == metered_wh`` holds exactly.

The counterparty of each line (market operator, utility, grid operator, carbon
account) is due the interval's exact aggregate rounded on its own,
``R(sum of the participants' exact amounts)``: a budget-balanced market's
account receives 0, the market's energy account nets to 0. What the
participants' posted amounts add up to beyond that goes between the
counterparty and the market operator's rounding accounts (``rounding:money``,
``rounding:energy``), one transfer per line and interval, so debits equal
credits exactly in every interval and every rounding cent is on the books.

A statement row carries the exact amount of every rounded line
(``*_exact_wh``, ``*_exact_cents``: multiples of 1e-6, written in full), so a
participant recomputes the posted amounts from their own rows: sum the exact
amounts in interval order, apply ``R``, take differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.settlement.amounts import (
    ENERGY_TOLERANCE_WH,
    EXACT_COLUMNS,
    MICRO,
    ROUNDED,
    ExactAmounts,
    GridFeeMode,
    exact_lines,
    flows,
    micro,
    post_running,
    round_micro,
)
from transactive.settlement.ledger import Transfer, TransferBatch
from transactive.settlement.statements import STATEMENT_COLUMNS, StatementRows
from transactive.settlement.transfers import (
    ACCOUNTS,
    FLOWS,
    check_sums,
    operator_moves,
    participant_accounts,
    transfer_batch_from_sums,
)

__all__ = [
    "ACCOUNTS",
    "EXACT_COLUMNS",
    "ROUNDED",
    "STATEMENT_COLUMNS",
    "ExactAmounts",
    "IntervalLines",
    "IntervalPrices",
    "RunningTotals",
    "check_interval",
    "check_transfers",
    "checked_transfers",
    "compute_lines",
    "counterparty_moves",
    "exact_amounts",
    "line_transfers",
    "net_transfers",
    "participant_accounts",
    "post_running",
    "round_micro",
    "running_lines",
    "statement_frame",
    "statement_rows",
]

IntArray = npt.NDArray[np.int64]
Price = float | npt.NDArray[np.float64]
_PRICE_FIELDS = ("retail_price_per_kwh", "feed_in_price_per_kwh", "grid_fee_per_kwh",
                 "imbalance_penalty_per_kwh")


@dataclass(frozen=True)
class IntervalPrices:
    """The prices of one interval (currency per kWh).

    Each is one number for everyone, or an array with one price per
    participant (e.g. different tariffs), in the order of ``participants``.
    """

    retail_price_per_kwh: Price
    feed_in_price_per_kwh: Price
    grid_fee_per_kwh: Price = 0.0
    imbalance_penalty_per_kwh: Price = 0.0

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(name, f"must be a number or an array, got {value!r}") from None
            if isinstance(value, bool) or arr.ndim > 1:
                raise InputError(name, f"must be a number or a 1-d array, got {value!r}")
            bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
            if bad.size:
                raise InputError(name, "must be finite", row=int(bad[0]) if arr.ndim else None)
            arr.flags.writeable = False
            object.__setattr__(self, name, float(arr) if arr.ndim == 0 else arr)

    def check_size(self, n: int) -> None:
        """Raise InputError if a per-participant price array is not of length ``n``."""
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.shape != (n,):
                raise InputError(name, f"must have one price per participant ({n}), "
                                 f"got {value.shape[0]}")

    @property
    def short_price_per_kwh(self) -> Price:
        """What a shortfall (consumed more than planned) pays per kWh."""
        return self.retail_price_per_kwh + self.imbalance_penalty_per_kwh

    @property
    def long_price_per_kwh(self) -> Price:
        """What a surplus (consumed less than planned) earns per kWh."""
        return self.feed_in_price_per_kwh - self.imbalance_penalty_per_kwh

@dataclass(frozen=True)
class IntervalLines:
    """The settlement lines of every participant in one interval (columnar).

    Integer arrays of posted Wh and cents as in the module docstring;
    ``*_price_per_kwh`` and ``grid_fee_per_kwh`` are the rates applied to each
    participant. ``start_micro`` and ``exact_micro`` (participants x
    :data:`ROUNDED`) are the running totals before the interval and the
    interval's exact amounts, in millionths; ``due`` is what each line's
    counterparty is due (one entry per flow, in the participants' sign).
    """

    interval: int
    participant: npt.NDArray[Any]
    metered_wh: IntArray
    planned_wh: IntArray
    market_wh: IntArray
    market_cents: IntArray
    utility_wh: IntArray
    utility_price_per_kwh: npt.NDArray[np.float64]
    utility_cents: IntArray
    imbalance_wh: IntArray
    imbalance_price_per_kwh: npt.NDArray[np.float64]
    imbalance_cents: IntArray
    grid_fee_wh: IntArray
    grid_fee_per_kwh: npt.NDArray[np.float64]
    grid_fee_cents: IntArray
    carbon_cents: IntArray
    start_micro: IntArray
    exact_micro: IntArray
    due: IntArray

    @property
    def energy_cents(self) -> IntArray:
        """The energy bill of each participant: market + utility + imbalance."""
        return self.market_cents + self.utility_cents + self.imbalance_cents

    @property
    def total_cents(self) -> IntArray:
        """What each participant pays in the interval (negative: receives):
        energy bill + grid fee + carbon charge."""
        return self.energy_cents + self.grid_fee_cents + self.carbon_cents

    def to_frame(self) -> pd.DataFrame:
        """One statement row per participant (the statement CSV's columns)."""
        return statement_frame([self])

    @property
    def flows_posted(self) -> IntArray:
        """The posted amounts of the flows (participants x :data:`FLOWS`)."""
        return np.column_stack([getattr(self, attr) for _, attr, _, _ in FLOWS])


def statement_rows(lines: Sequence[IntervalLines]) -> StatementRows:
    """The statement rows of several intervals in columns, one per participant
    and interval, in order."""
    if not lines:
        return StatementRows.concat([])
    return StatementRows.from_columns(
        interval=np.repeat(np.array([x.interval for x in lines], dtype=np.int64),
                           [x.participant.size for x in lines]),
        participant=np.concatenate([x.participant for x in lines]),
        posted=np.concatenate([np.stack([x.metered_wh, x.planned_wh, x.market_wh,
                                         x.market_cents, x.utility_cents, x.imbalance_cents,
                                         x.grid_fee_cents, x.carbon_cents])
                               for x in lines], axis=1).astype(np.int64),
        exact_micro=np.concatenate([x.exact_micro for x in lines]).T,
        utility_price_per_kwh=np.concatenate([x.utility_price_per_kwh for x in lines]),
        imbalance_price_per_kwh=np.concatenate([x.imbalance_price_per_kwh for x in lines]),
        grid_fee_per_kwh=np.concatenate([x.grid_fee_per_kwh for x in lines]),
        grid_fee=_grid_fee_mode(lines))


def _grid_fee_mode(lines: Sequence[IntervalLines]) -> GridFeeMode:
    """How the lines count the grid-fee energy (``"flat"``: what was bought)."""
    for x in lines:
        if (x.grid_fee_wh != np.maximum(x.market_wh, 0)).any():
            return "locational"
    return "flat"


def statement_frame(lines: Sequence[IntervalLines]) -> pd.DataFrame:
    """The statement rows of several intervals, one per participant and
    interval, in order (columns :data:`STATEMENT_COLUMNS`)."""
    return statement_rows(lines).frame()


def _empty_totals() -> IntArray:
    return np.zeros((0, len(ROUNDED)), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class RunningTotals:
    """Each participant's running exact totals (millionths, columns as :data:`ROUNDED`).

    ``through`` holds the sums through ``last_interval``, the last interval
    settled for the participant, and ``before`` the sums before it, so that
    settling that interval again posts the same amounts. Participants are
    aligned by label; intervals must come in order for each participant.

    Examples
    --------
    >>> t = RunningTotals()
    >>> t.start_of(0, np.array(["a"])).tolist()
    [[0, 0, 0, 0, 0, 0, 0, 0]]
    """

    participant: npt.NDArray[Any] = field(default_factory=lambda: np.array([], dtype=object))
    last_interval: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    before: IntArray = field(default_factory=_empty_totals)
    through: IntArray = field(default_factory=_empty_totals)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.participant)

    def covers(self, labels: npt.NDArray[Any]) -> bool:
        """True if ``labels`` are this object's participants, in order (a run's
        every day after its first: each label's row is its position)."""
        return labels.size == self.participant.size and bool(
            (labels == self.participant).all())

    def _rows(self, labels: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        if self.covers(labels):
            return np.arange(labels.size, dtype=np.intp)
        return np.asarray(self._index.get_indexer(pd.Index(labels)), dtype=np.intp)

    def start_of(self, interval: int, labels: npt.NDArray[Any]) -> IntArray:
        """The running totals of ``labels`` before ``interval`` (zero for a newcomer)."""
        rows = self._rows(labels)
        out = np.zeros((labels.size, len(ROUNDED)), dtype=np.int64)
        known = np.flatnonzero(rows >= 0)
        if known.size:
            at = rows[known]
            last = self.last_interval[at]
            late = np.flatnonzero(last > interval)
            if late.size:
                i = int(late[0])
                raise InputError("interval", f"{interval} comes before interval {last[i]} "
                                 f"already settled for participant {labels[known[i]]!r}; "
                                 "running totals take each participant's intervals in order",
                                 row=int(known[i]))
            out[known] = np.where((last == interval)[:, None], self.before[at], self.through[at])
        return out

    def advance(self, lines: IntervalLines) -> RunningTotals:
        """The totals after ``lines`` (computed from :meth:`start_of` of this object)."""
        return self._updated(lines.participant, lines.interval, lines.start_micro,
                             lines.start_micro + lines.exact_micro)

    def _updated(self, labels: npt.NDArray[Any], last_interval: int | IntArray,
                 before: IntArray, through: IntArray) -> RunningTotals:
        """These totals with ``labels``' rows replaced (newcomers appended)."""
        rows = self._rows(labels)
        new = rows < 0
        n_new = int(new.sum())
        rows[new] = np.arange(self.participant.size, self.participant.size + n_new)
        pad = np.zeros((n_new, len(ROUNDED)), dtype=np.int64)
        new_before = np.concatenate([self.before, pad])
        new_through = np.concatenate([self.through, pad])
        last = np.concatenate([self.last_interval, np.zeros(n_new, dtype=np.int64)])
        new_before[rows] = before
        new_through[rows] = through
        last[rows] = last_interval
        participant = np.concatenate([self.participant.astype(object),
                                      labels[new].astype(object)])
        return RunningTotals(participant, last, new_before, new_through)


def _vector(name: str, values: Any, n: int) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64) if values is not None else None
    if arr is None or arr.shape != (n,):
        shape = None if arr is None else arr.shape
        raise InputError(name, f"must be a 1-d array of length {n}, got shape {shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(name, f"must be finite, got {arr[bad[0]]!r}", row=int(bad[0]))
    return arr


def _labels(participants: Any) -> npt.NDArray[Any]:
    arr = np.asarray(participants)
    if arr.ndim != 1:
        raise InputError("participants", f"must be a 1-d array, got shape {arr.shape}")
    index = pd.Index(arr)
    if not index.is_unique:
        row = int(np.flatnonzero(index.duplicated())[0])
        raise InputError("participants", f"duplicate participant {arr[row]!r}", row=row)
    return arr


def compute_lines(interval: int, clearing: Clearing | None, participants: npt.ArrayLike,
                  metered_kwh: npt.ArrayLike, prices: IntervalPrices, *,
                  planned_kwh: npt.ArrayLike | None = None,
                  carbon_cost: npt.ArrayLike | None = None,
                  grid_fee: GridFeeMode = "flat", minor_per_unit: int = 100,
                  totals: RunningTotals | None = None) -> IntervalLines:
    """The settlement lines of one interval (see the module docstring for the rules).

    Parameters
    ----------
    interval : int
        Index of the interval (>= 0).
    clearing : Clearing or None
        The interval's market result (``None``: no market, utility only). Every
        participant with orders must be in ``participants``.
    participants : array
        Labels of all participants settled, matching ``clearing.orders.participant``.
    metered_kwh, planned_kwh : array of float
        Net energy drawn from the grid per participant (import positive).
    prices : IntervalPrices
    carbon_cost : array of float, optional
        Carbon charge per participant in currency (positive pays).
    grid_fee : "flat" or "locational"
    minor_per_unit : int
        Minor units per currency unit (100 for cents).
    totals : RunningTotals, optional
        The participants' running totals before this interval (default: none,
        as for a first interval).

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                 price=[0.30, 0.10], quantity=[2.0, 2.0])
    >>> c = Clearing.from_allocation("uniform", ob, [2.0, 2.0], [0.2, 0.2], 0.2)
    >>> lines = compute_lines(0, c, ["a", "b"], [2.5, -2.0], IntervalPrices(0.3, 0.05))
    >>> lines.market_cents.tolist(), lines.utility_wh.tolist(), lines.total_cents.tolist()
    ([40, -40], [500, 0], [55, -40])
    """
    _check_interval_and_fee(interval, grid_fee)
    labels = _labels(participants)
    at = None
    if clearing is not None and len(clearing.orders):
        at = pd.Index(labels).get_indexer(clearing.orders.participant)
        if (at < 0).any():
            row = int(np.flatnonzero(at < 0)[0])
            raise InputError("participants", f"participant {clearing.orders.participant[row]!r} "
                             "has orders in the clearing but is not listed", row=row)
    amounts = exact_amounts(int(interval), clearing, at, np.arange(labels.size), metered_kwh,
                            prices, planned_kwh=planned_kwh, carbon_cost=carbon_cost,
                            grid_fee=grid_fee, minor_per_unit=minor_per_unit)
    exact = amounts.exact_micro
    start = (np.zeros_like(exact) if totals is None
             else totals.start_of(int(interval), labels))
    return _assemble(amounts, labels, start, round_micro(start + exact) - round_micro(start),
                     grid_fee)


def _check_interval_and_fee(interval: Any, grid_fee: Any) -> None:
    if isinstance(interval, bool) or not isinstance(interval, int | np.integer) or interval < 0:
        raise InputError("interval", f"must be an integer >= 0, got {interval!r}")
    if grid_fee not in ("flat", "locational"):
        raise InputError("grid_fee", f"must be 'flat' or 'locational', got {grid_fee!r}")


def exact_amounts(interval: int, clearing: Clearing | None, at: npt.NDArray[np.intp] | None,
                  rows: npt.NDArray[np.intp], metered_kwh: npt.ArrayLike,
                  prices: IntervalPrices, *, planned_kwh: npt.ArrayLike | None = None,
                  carbon_cost: npt.ArrayLike | None = None, grid_fee: GridFeeMode = "flat",
                  minor_per_unit: int = 100) -> ExactAmounts:
    """The exact amounts of one interval (the part of :func:`compute_lines` before
    rounding), with participants by position: ``rows`` are the interval's
    participants (positions in the caller's labels), ``at`` each order's index
    into ``rows`` (``None`` without orders); ``metered_kwh`` and the other
    per-participant arrays follow ``rows``. No label is looked up, so a run
    that aligns its participants once settles each interval in array operations.
    (:func:`~transactive.settlement.amounts.block_amounts` does the same for a
    block of intervals at once.)
    """
    _check_interval_and_fee(interval, grid_fee)
    n = rows.size
    minor = float(minor_per_unit)
    metered = micro("metered_kwh", _vector("metered_kwh", metered_kwh, n) * 1000.0 * MICRO)
    planned = (metered if planned_kwh is None else
               micro("planned_kwh", _vector("planned_kwh", planned_kwh, n) * 1000.0 * MICRO))
    carbon = (np.zeros(n, dtype=np.int64) if carbon_cost is None else
              micro("carbon_cost", _vector("carbon_cost", carbon_cost, n) * minor * MICRO))

    energy_raw: npt.NDArray[np.float64] = np.zeros(n)
    payment: npt.NDArray[np.float64] = np.zeros(n)
    prices.check_size(n)
    fee_rate: Price = prices.grid_fee_per_kwh
    if clearing is not None and at is not None and len(clearing.orders):
        energy_raw = np.bincount(at, weights=clearing.accepted * clearing.orders.side * 1000.0,
                                 minlength=n).astype(np.float64)
        payment = np.bincount(at, weights=clearing.payment, minlength=n).astype(np.float64)
        imbalance_wh_market = math.fsum(energy_raw.tolist())
        if abs(imbalance_wh_market) > ENERGY_TOLERANCE_WH:
            raise InputError("clearing", f"energy bought and sold differ by "
                             f"{imbalance_wh_market:.3f} Wh")
        if grid_fee == "locational":
            fee_rate = _locational_rates(clearing, at, n)
    exact, utility_price, imbalance_price, fee = exact_lines(
        metered, planned, micro("clearing", energy_raw * MICRO),
        micro("clearing", payment * minor * MICRO), carbon,
        retail=prices.retail_price_per_kwh, feed_in=prices.feed_in_price_per_kwh,
        short=prices.short_price_per_kwh, long=prices.long_price_per_kwh, fee_rate=fee_rate,
        grid_fee=grid_fee, minor_per_unit=minor_per_unit)
    return ExactAmounts(int(interval), np.asarray(rows, dtype=np.intp), exact, utility_price,
                        imbalance_price, fee)


def _assemble(amounts: ExactAmounts, labels: npt.NDArray[Any], start: IntArray,
              posted: IntArray, grid_fee: GridFeeMode) -> IntervalLines:
    """The lines of one interval from its exact amounts, running totals before it
    and posted whole units (``labels``: the interval's participants)."""
    exact = amounts.exact_micro
    metered_wh, planned_wh, market_wh = posted[:, 0], posted[:, 1], posted[:, 2]
    return IntervalLines(
        interval=amounts.interval, participant=labels, metered_wh=metered_wh,
        planned_wh=planned_wh, market_wh=market_wh, market_cents=posted[:, 3],
        utility_wh=planned_wh - market_wh, utility_price_per_kwh=amounts.utility_price_per_kwh,
        utility_cents=posted[:, 4], imbalance_wh=metered_wh - planned_wh,
        imbalance_price_per_kwh=amounts.imbalance_price_per_kwh, imbalance_cents=posted[:, 5],
        grid_fee_wh=np.maximum(market_wh, 0) if grid_fee == "flat" else market_wh.copy(),
        grid_fee_per_kwh=amounts.grid_fee_per_kwh, grid_fee_cents=posted[:, 6],
        carbon_cents=posted[:, 7], start_micro=start, exact_micro=exact,
        due=round_micro(flows(exact).sum(axis=0)),  # what each counterparty is due
    )

def running_lines(labels: npt.NDArray[Any], amounts: Sequence[ExactAmounts],
                  totals: RunningTotals, grid_fee: GridFeeMode = "flat"
                  ) -> tuple[list[IntervalLines], RunningTotals]:
    """The lines of consecutive intervals, rounded in one step, and the totals after them.

    ``labels`` are all the participants of the intervals, aligned once;
    each interval's :class:`ExactAmounts` names its participants by position
    in ``labels``. Posts the same whole units as :func:`compute_lines` interval
    by interval with the totals carried from one to the next.
    """
    if not amounts:
        return [], totals
    order = [a.interval for a in amounts]
    if (np.diff(order) <= 0).any():
        raise InputError("interval", f"intervals must increase, got {order}")
    n_t, n = len(amounts), labels.size
    present = np.zeros((n_t, n), dtype=bool)
    exact = np.zeros((n_t, n, len(ROUNDED)), dtype=np.int64)
    for k, a in enumerate(amounts):
        present[k, a.rows] = True
        exact[k, a.rows] = a.exact_micro
    seen = present.any(axis=0)
    start = np.zeros((n, len(ROUNDED)), dtype=np.int64)
    start[seen] = totals.start_of(order[0], labels[seen])
    posted = post_running(start, exact)
    before = start + np.cumsum(exact, axis=0) - exact  # running totals before each interval
    lines = [_assemble(a, labels[a.rows], before[k, a.rows], posted[k, a.rows], grid_fee)
             for k, a in enumerate(amounts)]
    last = n_t - 1 - np.argmax(present[::-1], axis=0)  # each participant's last interval
    cols = np.flatnonzero(seen)
    at = last[cols]
    new_totals = totals._updated(labels[cols], np.asarray(order)[at], before[at, cols],
                                 before[at, cols] + exact[at, cols])
    return lines, new_totals

def _locational_rates(clearing: Clearing, idx: npt.NDArray[np.intp], n: int
                      ) -> npt.NDArray[np.float64]:
    """``node_price[node] - clearing_price`` per participant (0 where it did not trade)."""
    orders = clearing.orders
    if clearing.node_price is None or orders.node is None:
        raise InputError("grid_fee", "'locational' needs a clearing with node prices "
                         "and orders with nodes")
    if (orders.node >= clearing.node_price.size).any():
        row = int(np.flatnonzero(orders.node >= clearing.node_price.size)[0])
        raise InputError("node", "has no node price", row=row)
    traded = clearing.accepted > 0
    node = np.full(n, -1, dtype=np.int64)
    node[idx[traded]] = orders.node[traded]
    clash = traded & (node[idx] != orders.node)
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        raise InputError("node", f"participant {orders.participant[row]!r} traded at "
                         "more than one node", row=row)
    rates = np.zeros(n)
    has = node >= 0
    if has.any():
        if not np.isfinite(clearing.clearing_price):
            raise InputError("clearing", "locational grid fees need a finite clearing price")
        rates[has] = clearing.node_price[node[has]] - clearing.clearing_price
        if not np.isfinite(rates).all():
            raise InputError("node_price", "must be finite at the nodes that traded")
    return rates


def counterparty_moves(lines: IntervalLines) -> dict[str, int]:
    """How the interval moves each operator account (credit positive): every
    counterparty by what it is due, the rounding accounts by the rest."""
    return operator_moves(lines.flows_posted.sum(axis=0), lines.due)


def _span(lines: Sequence[IntervalLines]) -> str:
    first, last = lines[0].interval, lines[-1].interval
    return str(first) if first == last else f"{first}-{last}"


def _summed(lines: Sequence[IntervalLines]) -> tuple[npt.NDArray[Any], IntArray, IntArray]:
    """The participants of the intervals (in order of first appearance), each one's
    posted amounts summed over the intervals (columns as :data:`FLOWS`, then
    ``metered_wh`` and ``total_cents``), and the summed dues of the flows."""
    labels = np.concatenate([x.participant for x in lines])
    codes, uniques = pd.factorize(labels)
    posted = np.concatenate([np.column_stack([x.flows_posted, x.metered_wh, x.total_cents])
                             for x in lines]).astype(np.int64)
    sums = np.zeros((uniques.size, posted.shape[1]), dtype=np.int64)
    np.add.at(sums, codes, posted)
    due = np.stack([x.due for x in lines]).sum(axis=0)
    return np.asarray(uniques), sums, due


def net_transfers(lines: Sequence[IntervalLines], *, prefix: str = "") -> list[Transfer]:
    """The transfers of consecutive intervals netted into one group: for each
    participant and line, one transfer of the sum of its posted amounts over
    the intervals (none if it is zero), with id ``f"{prefix}{span}/{code}/{participant}"``;
    and for each line whose participants' summed posted amounts differ from the
    sum of what its counterparty is due, one transfer between the counterparty
    and the rounding account, with id ``f"{prefix}{span}/rounding/{code}"``.
    ``span`` is ``"{first}-{last}"`` of the intervals (``"{k}"`` for one interval,
    as in :func:`line_transfers`); each transfer's ``interval`` is the first.

    Money lines (positive = pays) debit the participant's money account;
    energy lines (positive = receives) credit the participant's energy account.
    Because the posted amounts are whole units, the netted transfers move every
    account by exactly the sum of the intervals' statement lines.

    Examples
    --------
    >>> a = compute_lines(0, None, ["a"], [0.0014], IntervalPrices(0.3, 0.05))
    >>> b = compute_lines(1, None, ["a"], [0.0014], IntervalPrices(0.3, 0.05),
    ...                   totals=RunningTotals().advance(a))
    >>> a.metered_wh.tolist(), b.metered_wh.tolist()     # 1.4 Wh, then 2.8 Wh in total
    ([1], [2])
    >>> [(t.id, t.amount) for t in net_transfers([a, b]) if t.code == "utility_energy"]
    [('0-1/utility_energy/a', 3)]
    """
    return list(checked_transfers(lines, prefix=prefix, check=False))


def checked_transfers(lines: Sequence[IntervalLines], *, prefix: str = "",
                      check: bool = True, net: bool = False) -> TransferBatch:
    """:func:`net_transfers` as one batch of columns (no object per transfer),
    checked as :func:`check_transfers` does unless ``check`` is False; with
    ``net`` netted per participant through the clearing accounts
    (:func:`~transactive.settlement.transfers.transfer_batch_from_sums`)."""
    if not lines:
        return TransferBatch.concat([])
    labels, sums, due = _summed(lines)
    names = [str(p) for p in labels.tolist()]
    batch = transfer_batch_from_sums(names, sums[:, :len(FLOWS)], due, span=_span(lines),
                                     interval=lines[0].interval, prefix=prefix, net=net)
    if check:
        _check(lines, names, sums, due, batch, net=net)
    return batch


def line_transfers(lines: IntervalLines, *, prefix: str = "") -> list[Transfer]:
    """The transfers of one interval: :func:`net_transfers` of it alone, with ids
    ``f"{prefix}{interval}/{code}/{participant}"`` and
    ``f"{prefix}{interval}/rounding/{code}"``."""
    return net_transfers([lines], prefix=prefix)


def check_interval(lines: IntervalLines, transfers: list[Transfer]) -> None:
    """:func:`check_transfers` of one interval."""
    check_transfers([lines], transfers)


def check_transfers(lines: Sequence[IntervalLines], transfers: list[Transfer]) -> None:
    """Check the invariants of the intervals' transfers; raise SettlementError if broken
    (:func:`~transactive.settlement.transfers.check_sums`: the market's energy
    nets to zero, debits equal credits, each participant's accounts move by its
    metered energy and total bill, each operator account by what it is due)."""
    labels, sums, due = _summed(lines)
    _check(lines, [str(p) for p in labels.tolist()], sums, due, transfers)


def _check(lines: Sequence[IntervalLines], names: list[str], sums: IntArray, due: IntArray,
           transfers: Sequence[Transfer] | TransferBatch, *, net: bool = False) -> None:
    """:func:`check_transfers` from the intervals' sums (:func:`_summed`), of a
    group netted through the clearing accounts with ``net``."""
    check_sums(_span(lines), names, sums[:, -2], sums[:, -1],
               operator_moves(sums[:, :len(FLOWS)].sum(axis=0), due, net=net), transfers)
