"""Bidding strategies: from households' net positions and values to orders.

Every interval a household with an energy deficit buys and one with a surplus
sells. Its *marginal value* is what it would pay or get outside the market:
a buyer's is the retail price it otherwise imports at, a seller's the feed-in
tariff it otherwise exports at. A strategy turns these values into limit
prices:

- ``"truthful"``: bid and ask the marginal value itself.
- ``"zic"``: the zero-intelligence-constrained traders of Gode & Sunder
  (1993, *Journal of Political Economy* 101(1)): a buyer bids uniformly at
  random in ``[price_floor, buy_value]``, a seller asks uniformly in
  ``[sell_value, price_cap]``, so no trader ever makes a loss-making order.

Examples
--------
One interval of a three-household community, end to end:

>>> net_kwh = np.array([0.4, -0.3, 0.0])        # buy, sell, nothing
>>> is_buy = net_kwh > 0
>>> prices = limit_prices("truthful", is_buy, 0.30, 0.08, np.random.default_rng(0),
...                       price_floor=0.08, price_cap=0.30)
>>> orders = net_orders(5, net_kwh, np.arange(3), prices)
>>> orders.id.tolist(), orders.side.tolist(), orders.price.tolist(), orders.quantity.tolist()
([15, 16], [1, -1], [0.3, 0.08], [0.4, 0.3])
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError
from transactive.orders import BUY, SELL, OrderBatch

__all__ = ["STRATEGIES", "Strategy", "limit_prices", "net_orders"]

Strategy = Literal["truthful", "zic"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

FloatArray = npt.NDArray[np.float64]


def _finite_1d(name: str, values: Any, n: int, *, keep_number: bool = False) -> FloatArray:
    """``values`` as a float64 array of length ``n`` (a number is broadcast;
    with ``keep_number`` it stays a 0-d array, which holds for every row)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be a number or an array of numbers") from None
    if arr.ndim == 0 and not keep_number:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) and arr.ndim != 0:
        raise InputError(name, f"must be a number or an array of shape ({n},), got {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError(name, f"must be finite, got {arr.ravel()[row]!r}", row=row)
    return arr


def _finite_number(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise InputError(name, f"must be finite, got {value!r}")
    return out


def _within(name: str, values: FloatArray, rows: npt.NDArray[np.bool_],
            lo: FloatArray, hi: FloatArray) -> None:
    bad = rows & ((values < lo) | (values > hi))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        v, lo, hi = np.broadcast_arrays(values, lo, hi, rows)[:3]
        raise InputError(name, f"{v[row]!r} is outside [price_floor, price_cap] = "
                               f"[{lo[row]!r}, {hi[row]!r}]", row=row)


def limit_prices(
    strategy: str,
    is_buy: npt.ArrayLike,
    buy_value: npt.ArrayLike | float,
    sell_value: npt.ArrayLike | float,
    rng: np.random.Generator,
    *,
    price_floor: npt.ArrayLike | float,
    price_cap: npt.ArrayLike | float,
) -> FloatArray:
    """The limit price of each household's order under ``strategy``.

    Parameters
    ----------
    strategy : {"truthful", "zic"}
        See the module docstring.
    is_buy : array of bool, shape (n,)
        Whether each household buys (else it sells).
    buy_value, sell_value : float or array of float, shape (n,)
        Marginal values per kWh of buyers and sellers; only the entries of the
        matching side are used, and they must lie in ``[price_floor, price_cap]``.
    rng : numpy.random.Generator
        Source of the random draws ("zic" draws exactly ``n`` uniforms).
    price_floor, price_cap : float or array of float, shape (n,)
        The lowest and highest price the market admits (per household: the
        households of several intervals, flattened, are cleared at once).

    Returns
    -------
    array of float64, shape (n,)
        Bids for buyers and asks for sellers, all within the floor and cap.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> p = limit_prices("zic", np.array([True, False]), 0.30, 0.08, rng,
    ...                  price_floor=0.0, price_cap=0.40)
    >>> bool(0.0 <= p[0] <= 0.30), bool(0.08 <= p[1] <= 0.40)
    (True, True)
    """
    if strategy not in STRATEGIES:
        raise InputError("strategy", f"unknown strategy {strategy!r}; available: "
                                     + ", ".join(STRATEGIES))
    buy = np.asarray(is_buy)
    if buy.ndim != 1 or buy.dtype != np.bool_:
        raise InputError("is_buy", "must be a 1-d boolean array")
    n = buy.shape[0]
    # a number holds for every household: checked once, broadcast in the arithmetic
    floor = _finite_1d("price_floor", price_floor, n, keep_number=True)
    cap = _finite_1d("price_cap", price_cap, n, keep_number=True)
    below = cap < floor
    if below.any():
        row = int(np.flatnonzero(np.broadcast_to(below, (n,)))[0])
        floor, cap = np.broadcast_arrays(floor, cap, buy)[:2]
        raise InputError("price_cap", f"must be >= price_floor ({floor[row]!r}), "
                         f"got {cap[row]!r}", row=row)
    bv = _finite_1d("buy_value", buy_value, n, keep_number=True)
    sv = _finite_1d("sell_value", sell_value, n, keep_number=True)
    _within("buy_value", bv, buy, floor, cap)
    _within("sell_value", sv, ~buy, floor, cap)
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", f"must be a numpy.random.Generator, got {type(rng).__name__}")

    if strategy == "truthful":
        return np.where(buy, bv, sv)
    u = rng.random(n)
    bid = np.clip(floor + u * (bv - floor), floor, bv)
    ask = np.clip(sv + u * (cap - sv), sv, cap)
    return np.where(buy, bid, ask)


def net_orders(
    interval: int,
    net_kwh: npt.ArrayLike,
    participant: npt.ArrayLike,
    limit_price: npt.ArrayLike,
    *,
    min_kwh: float = 1e-6,
) -> OrderBatch:
    """One order per household whose net position is at least ``min_kwh``.

    A household with ``net_kwh > 0`` buys ``net_kwh``, one with ``net_kwh < 0``
    sells ``-net_kwh``, each at its ``limit_price``. Order ids are
    ``interval * H + h`` (int64, with ``H = len(net_kwh)``), so they are unique
    across the intervals of a run with a fixed community. No node is set.

    Parameters
    ----------
    interval : int
        Index of the interval (>= 0).
    net_kwh : array of float, shape (H,)
        Energy each household needs (+) or has to spare (-) this interval.
    participant : array of int or str, shape (H,)
        The participant label of each household.
    limit_price : array of float, shape (H,)
        Each household's limit price (see :func:`limit_prices`).
    min_kwh : float
        Smaller net positions place no order.

    Examples
    --------
    >>> ob = net_orders(0, np.array([1.5, -0.5, 1e-9]), np.array([10, 11, 12]),
    ...                 np.array([0.3, 0.1, 0.3]))
    >>> ob.participant.tolist(), ob.side.tolist(), ob.quantity.tolist()
    ([10, 11], [1, -1], [1.5, 0.5])
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 0:
        raise InputError("interval", f"must be an integer >= 0, got {interval!r}")
    net = np.asarray(net_kwh, dtype=np.float64)
    if net.ndim != 1:
        raise InputError("net_kwh", f"must be a 1-d array, got shape {net.shape}")
    n = net.shape[0]
    net = _finite_1d("net_kwh", net, n)
    price = _finite_1d("limit_price", limit_price, n)
    minimum = _finite_number("min_kwh", min_kwh)
    if minimum <= 0:
        raise InputError("min_kwh", f"must be > 0, got {min_kwh!r}")
    who = np.asarray(participant)
    if who.shape != (n,):
        raise InputError("participant", f"must have shape ({n},), got {who.shape}")
    if who.dtype.kind in "iu":
        who = who.astype(np.int64)
    elif who.dtype.kind != "U":
        raise InputError("participant", f"must be integers or strings, got {who.dtype}")
    elif n:
        empty = np.flatnonzero(np.char.str_len(np.char.strip(who)) == 0)
        if empty.size:
            raise InputError("participant", "is missing", row=int(empty[0]))

    rows = np.flatnonzero(np.abs(net) >= minimum)
    traded = net[rows]
    return OrderBatch._trusted(
        id=np.int64(interval) * np.int64(n) + rows.astype(np.int64),
        participant=who[rows],
        side=np.where(traded > 0, BUY, SELL).astype(np.int8),
        price=price[rows],
        quantity=np.abs(traded),
    )
