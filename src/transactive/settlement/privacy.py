"""Differentially private published aggregates, with a privacy budget per dataset.

Published figures such as the feeder's demand per interval or the market's
traded volume per interval are sums over participants; with few participants a
sum can reveal one household's consumption. :class:`PrivacyAccountant` releases
such sums with Laplace noise drawn by OpenDP's vetted samplers (discrete-Laplace
based, exact for floating point; no noise is drawn here by hand) and keeps a
per-dataset budget.

Privacy unit and sensitivity
    Neighbouring datasets differ by one participant: one row of ``values``
    (participants x cells) added or removed. Each value is clamped to
    ``bounds = (lower, upper)``, so one participant moves one cell's sum by at
    most ``S = max(|lower|, |upper|)`` when the bounds have one sign; when they
    straddle zero OpenDP sums the positive and negative parts apart and
    charges ``S = upper - lower``. OpenDP adds a tiny allowance for
    floating-point rounding in the sum (Casacuberta et al. 2022). A participant
    who may appear in up to ``c`` cells (``contributions``; every cell by
    default) has an L1 sensitivity of ``c * S`` over the release, so each cell
    gets ``epsilon / c`` and a Laplace scale of ``c * S / epsilon``; the exact
    scale is found from OpenDP's own privacy map.
Budget (sequential composition)
    Every release spends its ``epsilon`` from the dataset's ``total_epsilon``;
    the spent amounts add up (basic sequential composition). A request beyond
    what remains raises :class:`BudgetExhaustedError` and changes nothing.
    Sums are kept exactly; a relative slack of 1e-9 lets a budget be split into
    float parts (three releases of 0.1 from a budget of 0.3).
Reproducibility
    OpenDP's samplers draw from the operating system's cryptographic random
    source and cannot be seeded: releases are NOT reproducible, by design (a
    seedable noise source could be replayed to strip the noise). Tests check the
    noise's distribution instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from transactive.errors import InputError, MissingExtraError

try:
    import opendp.prelude as dp
except ImportError:  # pragma: no cover - only without the 'privacy' extra
    _HAVE_OPENDP = False
else:
    _HAVE_OPENDP = True

__all__ = ["BudgetExhaustedError", "PrivacyAccountant", "Release", "sum_noise_scale"]

_BUDGET_SLACK = Fraction(1, 10**9)


class BudgetExhaustedError(InputError):
    """A release asked for more epsilon than the dataset has left; nothing was released."""


@dataclass(frozen=True, slots=True)
class Release:
    """One entry of an accountant's log."""

    label: str
    epsilon: float
    n_cells: int
    bounds: tuple[float, float]
    noise_scale: float


def _epsilon(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(field, f"must be a number, got {type(value).__name__}")
    eps = float(value)
    if math.isnan(eps) or math.isinf(eps):
        raise InputError(field, f"must be finite, got {eps}")
    if eps <= 0:
        raise InputError(field, f"must be positive, got {eps}")
    return eps


def _bounds(bounds: object) -> tuple[float, float]:
    if not isinstance(bounds, Sequence) or len(bounds) != 2:
        raise InputError("bounds", "must be a pair (lower, upper)")
    try:
        lower, upper = float(bounds[0]), float(bounds[1])
    except (TypeError, ValueError):
        raise InputError("bounds", f"must be numbers, got {bounds!r}") from None
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise InputError("bounds", f"must be finite, got {(lower, upper)}")
    if not lower < upper:
        raise InputError("bounds", f"lower must be below upper, got {(lower, upper)}")
    return lower, upper


def _values(values: object) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("values", "must be numbers") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError("values", f"must be participants x cells (2-D), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise InputError("values", "has no cells")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise InputError("values", "must be finite (no NaN or infinity)", row=int(bad[0]))
    return arr


def _require_extra() -> None:
    if not _HAVE_OPENDP:  # pragma: no cover - only without the 'privacy' extra
        raise MissingExtraError("opendp", "privacy")


def _sum_measurement(bounds: tuple[float, float], scale: float) -> Any:
    """OpenDP: clamp -> sum -> Laplace on a vector of floats, one participant per element."""
    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()
    return space >> dp.t.then_clamp(bounds) >> dp.t.then_sum() >> dp.m.then_laplace(scale)


@functools.lru_cache(maxsize=256)
def _scale_for(bounds: tuple[float, float], epsilon: float) -> float:
    return float(
        dp.binary_search_param(lambda s: _sum_measurement(bounds, s), d_in=1, d_out=epsilon)
    )


def sum_noise_scale(bounds: tuple[float, float], epsilon: float) -> float:
    """Laplace scale OpenDP needs for one bounded sum to be ``epsilon``-DP.

    ``S / epsilon`` (``S`` as in the module docstring) plus the rounding allowance.

    Examples
    --------
    >>> round(sum_noise_scale((0.0, 5.0), 0.5), 4)
    10.0
    """
    _require_extra()
    return _scale_for(_bounds(bounds), _epsilon("epsilon", epsilon))


class PrivacyAccountant:
    """Releases noisy sums of one dataset while its epsilon budget lasts.

    Parameters
    ----------
    total_epsilon
        The dataset's whole privacy budget.
    dataset
        A name for messages and the log.

    Examples
    --------
    >>> acc = PrivacyAccountant(1.0, dataset="feeder")
    >>> demand_kwh = np.array([[0.4, 1.2], [2.0, 0.1], [0.7, 0.9]])  # 3 homes x 2 intervals
    >>> noisy = acc.release_sums(demand_kwh, bounds=(0.0, 3.0), epsilon=0.5)
    >>> noisy.shape, acc.spent_epsilon, acc.remaining_epsilon
    ((2,), 0.5, 0.5)
    >>> round(acc.releases[0].noise_scale, 3)  # 2 cells x 3 kWh / 0.5
    12.0
    >>> acc.release_sums(demand_kwh, bounds=(0.0, 3.0), epsilon=0.6)
    Traceback (most recent call last):
    ...
    transactive.settlement.privacy.BudgetExhaustedError: field 'epsilon': asks 0.6 but 'feeder' ...
    """

    def __init__(self, total_epsilon: float, *, dataset: str = "dataset") -> None:
        _require_extra()
        self._total = _epsilon("total_epsilon", total_epsilon)
        self._spent = Fraction(0)
        self.dataset = dataset
        self._log: list[Release] = []

    @property
    def total_epsilon(self) -> float:
        """The whole budget."""
        return self._total

    @property
    def spent_epsilon(self) -> float:
        """Epsilon spent so far (sum over releases)."""
        return float(self._spent)

    @property
    def remaining_epsilon(self) -> float:
        """Epsilon left (never below zero)."""
        return max(0.0, float(Fraction(self._total) - self._spent))

    @property
    def releases(self) -> tuple[Release, ...]:
        """What was released, in order."""
        return tuple(self._log)

    def release_sums(
        self, values: object, bounds: tuple[float, float], epsilon: float, *,
        contributions: int | None = None, label: str = "sums",
    ) -> npt.NDArray[np.float64]:
        """Noisy column sums of ``values`` (participants x cells; 1-D is one cell).

        Parameters
        ----------
        values
            One row per participant, one column per published cell (e.g. interval).
        bounds
            ``(lower, upper)``: every value is clamped into it before summing.
        epsilon
            Spent from the budget by this release as a whole.
        contributions
            Most cells in which a participant's row may be non-zero (default: all
            cells). Smaller values mean less noise; rows breaking it are refused.
        label
            Name of the release in the log.

        Returns
        -------
        numpy.ndarray
            One noisy sum per cell.
        """
        eps = _epsilon("epsilon", epsilon)
        lo_hi = _bounds(bounds)
        arr = _values(values)
        n_cells = arr.shape[1]
        c = n_cells if contributions is None else contributions
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 1 <= c <= n_cells:
            raise InputError("contributions", f"must be an integer in [1, {n_cells}], got {c}")
        if c < n_cells:
            over = np.flatnonzero(np.count_nonzero(arr, axis=1) > c)
            if over.size:
                raise InputError("values", f"non-zero in more than {c} cells", row=int(over[0]))
        ask = Fraction(eps)
        if self._spent + ask > Fraction(self._total) * (1 + _BUDGET_SLACK):
            raise BudgetExhaustedError(
                "epsilon", f"asks {eps} but {self.dataset!r} has {self.remaining_epsilon:g} "
                f"left of {self._total}",
            )
        scale = _scale_for(lo_hi, eps / c)
        measurement = _sum_measurement(lo_hi, scale)
        self._spent += ask  # spent before any noise is drawn: a failure cannot refund it
        self._log.append(Release(label, eps, n_cells, lo_hi, scale))
        return np.array([measurement(col.tolist()) for col in arr.T], dtype=np.float64)
