"""A mean and its confidence interval over independent seeded runs."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import stdtrit

__all__ = ["mean_ci"]


def mean_ci(values: npt.ArrayLike, level: float = 0.95) -> dict[str, float | int | None]:
    """The mean of ``values`` and Student's t interval at ``level`` around it
    (``ci_low``, ``ci_high``; ``None`` with fewer than two values).

    >>> mean_ci([1.0, 2.0, 3.0])
    {'mean': 2.0, 'ci_low': -0.4841..., 'ci_high': 4.4841..., 'n': 3}
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": 1}
    half = float(stdtrit(x.size - 1, 0.5 + level / 2)) * float(x.std(ddof=1)) / math.sqrt(
        x.size)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": int(x.size)}
