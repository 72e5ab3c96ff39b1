"""The AR(1) filter of the synthetic prices and weather: scipy.signal's bits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from transactive._ar1 import ar1


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9, 0.97, float(np.exp(-0.25 / 3.0)), -0.3])
@pytest.mark.parametrize("n", [0, 1, 2, 365, 35_040])
def test_ar1_is_lfilter_bit_for_bit(phi, n):
    x = np.random.default_rng(n).standard_normal(n) * 7.3
    assert np.array_equal(ar1(x, phi), lfilter([1.0], [1.0, -phi], x))
