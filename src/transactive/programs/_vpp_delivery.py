"""The delivery of a virtual power plant's award: metered energy against the
award, per interval and overall, and the imbalance penalty.

Public through :mod:`transactive.programs.vpp` (:func:`delivery`,
:class:`Delivery`).

The aggregator is financially responsible for its imbalance (Regulation
(EU) 2019/943, Art. 5; Regulation (EU) 2017/2195, Art. 17(2)). The award of
an interval is its flexible energy, net and load positive (``up_kwh -
down_kwh`` of its :class:`~transactive.programs.vpp.Award`); the metered
energy is what the enrolled devices' flexible segments drew, the same way.
Against an award ``a``, a metered ``x`` delivers
``min(max(s x, 0), |a|)`` in the award's direction ``s = sign(a)`` (with
nothing awarded, the sign of ``x``): the rest of ``|a|`` is the *shortfall*,
energy beyond ``|a|`` is *over-delivery*, and the two sum to ``|x - a|``.
The penalty is the imbalance price times ``|x - a|``.
A program that pays over-delivery, or charges only the shortfall, prices
``shortfall_kwh`` and ``over_kwh`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError

__all__ = ["Delivery", "delivery"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Delivery:
    """Metered energy against the award, per interval (:func:`delivery`)."""

    award_kwh: FloatArray
    delivered_kwh: FloatArray
    shortfall_kwh: FloatArray
    over_kwh: FloatArray
    penalty: FloatArray
    """The imbalance price times ``shortfall + over``."""

    @property
    def delivered_share(self) -> float:
        """Delivered energy over the awarded energy, all intervals (nan: nothing awarded)."""
        awarded_kwh = float(np.abs(self.award_kwh).sum())
        return float(self.delivered_kwh.sum()) / awarded_kwh if awarded_kwh > 0 else math.nan

    def summary(self) -> dict[str, float]:
        """The totals over all intervals."""
        return {"award_kwh": float(np.abs(self.award_kwh).sum()),
                "delivered_kwh": float(self.delivered_kwh.sum()),
                "shortfall_kwh": float(self.shortfall_kwh.sum()),
                "over_kwh": float(self.over_kwh.sum()),
                "delivered_share": self.delivered_share, "penalty": float(self.penalty.sum())}


def delivery(award_kwh: npt.ArrayLike, metered_kwh: npt.ArrayLike,
             imbalance_price_per_kwh: npt.ArrayLike = 0.0) -> Delivery:
    """The metered flexible energy against the award, per interval (1-d series,
    load positive; the imbalance price one number or one per interval, ``>= 0``).

    >>> d = delivery([2.0, -1.0, 0.0], [1.5, -1.5, 0.25], 0.2)
    >>> d.delivered_kwh.tolist(), d.shortfall_kwh.tolist(), d.over_kwh.tolist()
    ([1.5, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.25])
    >>> round(d.delivered_share, 4), d.penalty.round(3).tolist()
    (0.8333, [0.1, 0.1, 0.05])
    """
    award = _series("award_kwh", award_kwh)
    metered = _series("metered_kwh", metered_kwh)
    if metered.shape != award.shape:
        raise InputError("metered_kwh", f"must have the award's shape {award.shape}, "
                         f"got {metered.shape}")
    price = np.asarray(imbalance_price_per_kwh, dtype=np.float64)
    if price.ndim > 1 or (price.ndim == 1 and price.shape != award.shape):
        raise InputError("imbalance_price_per_kwh", f"must be one number or one per interval "
                         f"({award.size}), got shape {price.shape}")
    if not np.isfinite(price).all() or (price < 0).any():
        raise InputError("imbalance_price_per_kwh", "must be finite and >= 0")
    direction = np.where(award != 0, np.sign(award), np.sign(metered))
    along, size = direction * metered, np.abs(award)
    delivered = np.clip(along, 0.0, size)
    shortfall, over = np.maximum(size - along, 0.0), np.maximum(along - size, 0.0)
    return Delivery(award_kwh=_frozen(award), delivered_kwh=_frozen(delivered),
                    shortfall_kwh=_frozen(shortfall), over_kwh=_frozen(over),
                    penalty=_frozen(price * (shortfall + over)))


def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only copy (results never share memory with inputs)."""
    out = np.array(arr, copy=True)
    out.flags.writeable = False
    return out


def _series(field: str, values: npt.ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(field, "must be a 1-d series of numbers") from None
    if arr.ndim != 1:
        raise InputError(field, f"must be a 1-d series over intervals, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(field, f"must be finite, got {arr[bad[0]]!r}", row=int(bad[0]))
    return arr
