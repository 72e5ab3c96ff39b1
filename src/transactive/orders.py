"""Columnar order batches: the one input every market mechanism takes.

An :class:`OrderBatch` holds ``n`` orders as parallel numpy arrays. It is
validated completely when it is built, its arrays are read-only, and no
mechanism ever changes it.

Sign and unit conventions (stated once, used everywhere):

- ``side`` is ``+1`` for a buy (bid) and ``-1`` for a sell (ask/offer);
  ``"buy"``/``"sell"`` (or ``"b"``/``"s"``, ``"bid"``/``"ask"``/``"offer"``)
  are accepted on input.
- ``price`` is a limit price per unit of quantity: the most a buyer pays, the
  least a seller accepts. In a community it is currency per kWh, in a
  transmission market currency per MWh.
- ``quantity`` is the most energy the order trades, strictly positive (kWh in
  a community, MWh in a transmission market). Orders are divisible.
- ``time`` orders submissions for time priority (earlier first); when it is
  not given the row order is the submission order.
- ``node`` (optional) is the network bus of the order; ``window_start`` and
  ``window_end`` (optional) are the first and one-past-last interval index
  in which the order may be delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError

__all__ = ["BUY", "SELL", "OrderBatch"]

BUY = 1
SELL = -1

_SIDE_WORDS = {
    "buy": BUY, "b": BUY, "bid": BUY, "+1": BUY, "1": BUY,
    "sell": SELL, "s": SELL, "ask": SELL, "offer": SELL, "-1": SELL,
}
_REQUIRED = ("id", "participant", "side", "price", "quantity")
_OPTIONAL = ("node", "time", "window_start", "window_end")


def _first_bad(mask: npt.NDArray[np.bool_]) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _labels(name: str, values: Any, n: int) -> npt.NDArray[Any]:
    """Ids and participants: integers or non-empty strings, no missing values."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(name, f"must be a 1-d array of length {n}, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        row = _first_bad(~np.isfinite(arr) | (arr != np.round(arr)))
        if row is not None:
            raise InputError(name, f"must be an integer or a label, got {arr[row]!r}", row=row)
        return arr.astype(np.int64)
    if arr.dtype.kind in "UO":
        as_str = np.array([("" if v is None or v != v else str(v)) for v in arr], dtype=str)
        row = _first_bad(np.char.str_len(np.char.strip(as_str)) == 0)
        if row is not None:
            raise InputError(name, "is missing", row=row)
        return as_str
    raise InputError(name, f"unsupported type {arr.dtype}")


def _numbers(name: str, values: Any, n: int, dtype: type = np.float64) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(name, f"must be a 1-d array of length {n}, got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            for bad, v in enumerate(arr):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise InputError(name, f"must be a number, got {v!r}", row=bad) from None
    arr = arr.astype(np.float64)
    row = _first_bad(~np.isfinite(arr))
    if row is not None:
        raise InputError(name, f"must be a finite number, got {arr[row]!r}", row=row)
    if dtype is np.int64:
        row = _first_bad(arr != np.round(arr))
        if row is not None:
            raise InputError(name, f"must be an integer, got {arr[row]!r}", row=row)
        return arr.astype(np.int64)
    return arr


def _check_notional(price: npt.NDArray[np.float64], quantity: npt.NDArray[np.float64]) -> None:
    """Refuse an order whose money overflows: ``price x quantity`` must be
    finite, so that its payment is.

    Examples
    --------
    >>> try:
    ...     _check_notional(np.array([0.2, 1e308]), np.array([3.0, 1e10]))
    ... except InputError as exc:
    ...     print(exc)
    row 1: field 'price': price x quantity must be finite, got 1e+308 x 1e+10
    """
    with np.errstate(over="ignore"):
        row = _first_bad(~np.isfinite(price * quantity))
    if row is not None:
        raise InputError("price", "price x quantity must be finite, got "
                         f"{price[row]:g} x {quantity[row]:g}", row=row)


def _sides(values: Any, n: int) -> npt.NDArray[np.int8]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError("side", f"must be a 1-d array of length {n}, got shape {arr.shape}")
    if arr.dtype.kind in "iuf":
        row = _first_bad((arr != BUY) & (arr != SELL))
        if row is not None:
            raise InputError("side", f"must be 'buy' (+1) or 'sell' (-1), got {arr[row]!r}",
                             row=row)
        return arr.astype(np.int8)
    out = np.empty(n, dtype=np.int8)
    for row, v in enumerate(arr):
        code = _SIDE_WORDS.get(str(v).strip().lower())
        if code is None:
            raise InputError("side", f"must be 'buy' or 'sell', got {v!r}", row=row)
        out[row] = code
    return out


def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class OrderBatch:
    """``n`` orders as parallel, read-only numpy arrays, validated on creation.

    Parameters
    ----------
    id, participant : array of int or str
        Order ids (unique within the batch) and the participant of each order.
    side : array of int or str
        ``+1``/``"buy"`` or ``-1``/``"sell"``.
    price : array of float
        Limit price per unit (finite; may be negative; ``price x quantity``
        finite, so that every payment is).
    quantity : array of float
        Most energy the order trades (finite, > 0).
    node, window_start, window_end : array of int, optional
        Bus of each order; delivery window as interval indices.
    time : array of float, optional
        Submission time for time priority; defaults to the row order.

    Examples
    --------
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                 price=[0.30, 0.10], quantity=[2.0, 1.5])
    >>> len(ob), ob.side.tolist(), ob.is_buy.tolist()
    (2, [1, -1], [True, False])
    """

    id: npt.NDArray[Any]
    participant: npt.NDArray[Any]
    side: npt.NDArray[np.int8]
    price: npt.NDArray[np.float64]
    quantity: npt.NDArray[np.float64]
    node: npt.NDArray[np.int64] | None = None
    time: npt.NDArray[np.float64] | None = None
    window_start: npt.NDArray[np.int64] | None = None
    window_end: npt.NDArray[np.int64] | None = None
    _validated: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self._validated:
            return
        n = int(np.shape(self.price)[0]) if np.ndim(self.price) == 1 else -1
        if n < 0:
            raise InputError("price", "must be a 1-d array")
        cols: dict[str, Any] = {
            "id": _labels("id", self.id, n),
            "participant": _labels("participant", self.participant, n),
            "side": _sides(self.side, n),
            "price": _numbers("price", self.price, n),
            "quantity": _numbers("quantity", self.quantity, n),
        }
        row = _first_bad(cols["quantity"] <= 0)
        if row is not None:
            raise InputError("quantity", f"must be > 0, got {cols['quantity'][row]!r}", row=row)
        _check_notional(cols["price"], cols["quantity"])
        ids = cols["id"]
        if n:
            order = np.argsort(ids, kind="stable")
            dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
            if dup.size:
                row = int(order[dup[0] + 1])
                raise InputError("id", f"duplicate id {ids[row]!r}", row=row)
        for name in ("node", "window_start", "window_end"):
            value = getattr(self, name)
            cols[name] = None if value is None else _numbers(name, value, n, np.int64)
        if cols["node"] is not None:
            row = _first_bad(cols["node"] < 0)
            if row is not None:
                raise InputError("node", "must be >= 0", row=row)
        cols["time"] = (
            np.arange(n, dtype=np.float64) if self.time is None else _numbers("time", self.time, n)
        )
        ws, we = cols["window_start"], cols["window_end"]
        if (ws is None) != (we is None):
            raise InputError("window_end" if we is None else "window_start",
                             "window_start and window_end must be given together")
        if ws is not None and we is not None:
            row = _first_bad(we <= ws)
            if row is not None:
                raise InputError("window_end", "must be after window_start", row=row)
        for name, value in cols.items():
            object.__setattr__(self, name, None if value is None else _frozen(value))
        object.__setattr__(self, "_validated", True)

    # ----------------------------------------------------------------- building
    @classmethod
    def _trusted(cls, **cols: Any) -> OrderBatch:
        """Build from arrays already validated (internal fast path)."""
        for name in _OPTIONAL:
            cols.setdefault(name, None)
        if cols["time"] is None:
            cols["time"] = np.arange(len(cols["price"]), dtype=np.float64)
        for value in cols.values():
            if value is not None:
                value.flags.writeable = False
        return cls(**cols, _validated=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OrderBatch:
        """Build from a frame with columns ``id, participant, side, price, quantity``
        and optionally ``node, time, window_start, window_end``.

        Row numbers in errors are 0-based positions in the frame.
        """
        if not isinstance(frame, pd.DataFrame):
            raise InputError("orders", f"expected a pandas DataFrame, got {type(frame).__name__}")
        columns = {str(c).strip().lower(): c for c in frame.columns}
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise InputError(missing[0], "column is missing")
        unknown = sorted(set(columns) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise InputError(unknown[0], "unknown column (expected "
                             + ", ".join(_REQUIRED + _OPTIONAL) + ")")
        kwargs: dict[str, Any] = {}
        for name, col in columns.items():
            series = frame[col]
            if name in _OPTIONAL and series.isna().all():
                continue
            if name in ("node", "window_start", "window_end", "time") and series.isna().any():
                raise InputError(name, "is missing", row=int(np.flatnonzero(series.isna())[0]))
            kwargs[name] = series.to_numpy()
        return cls(**kwargs)

    @classmethod
    def from_csv(cls, path: str | PathLike[str]) -> OrderBatch:
        """Read a CSV file of orders (see :meth:`from_frame` for the columns)."""
        try:
            frame = pd.read_csv(path, dtype={"id": str, "participant": str, "side": str},
                                skipinitialspace=True)
        except FileNotFoundError:
            raise InputError("path", f"no such file: {path}") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError("path", f"not a readable CSV file: {exc}") from None
        for name in ("id", "participant"):
            if name in frame:
                as_int = pd.to_numeric(frame[name], errors="coerce")
                if as_int.notna().all() and (as_int == as_int.round()).all():
                    frame[name] = as_int.astype(np.int64)
        return cls.from_frame(frame)

    @classmethod
    def concat(cls, batches: list[OrderBatch]) -> OrderBatch:
        """Join batches; ids must stay unique, and optional columns must be
        present in all batches or in none."""
        if not batches:
            raise InputError("batches", "need at least one batch")
        cols: dict[str, Any] = {}
        for name in _REQUIRED + _OPTIONAL:
            parts = [getattr(b, name) for b in batches]
            if all(p is None for p in parts):
                continue
            if any(p is None for p in parts):
                raise InputError(name, "present in some batches and missing in others")
            cols[name] = np.concatenate(parts)
        return cls(**cols)

    # ----------------------------------------------------------------- views
    def __len__(self) -> int:
        return int(self.price.shape[0])

    @property
    def is_buy(self) -> npt.NDArray[np.bool_]:
        """Boolean mask of buy orders."""
        return self.side == BUY

    def take(self, index: npt.ArrayLike) -> OrderBatch:
        """The orders at ``index`` (positions or a boolean mask), as a new batch."""
        idx = np.asarray(index)
        cols = {
            name: (None if getattr(self, name) is None else getattr(self, name)[idx])
            for name in _REQUIRED + _OPTIONAL
        }
        return OrderBatch._trusted(**cols)

    def replace(self, **columns: Any) -> OrderBatch:
        """A validated copy with some columns replaced (e.g. shaded prices)."""
        cols = {name: getattr(self, name) for name in _REQUIRED + _OPTIONAL}
        unknown = set(columns) - set(cols)
        if unknown:
            raise InputError(sorted(unknown)[0], "not an order column")
        cols.update(columns)
        return OrderBatch(**cols)

    def to_frame(self) -> pd.DataFrame:
        """The orders as a frame; ``side`` as ``"buy"``/``"sell"``."""
        data: Mapping[str, Any] = {
            "id": self.id,
            "participant": self.participant,
            "side": np.where(self.is_buy, "buy", "sell"),
            "price": self.price,
            "quantity": self.quantity,
        }
        frame = pd.DataFrame(data)
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                frame[name] = value
        return frame
