"""DP releases: input refusal, budget accounting, and the noise's distribution.

OpenDP's samplers cannot be seeded, so the noise is tested statistically; the
thresholds are wide enough (>= 5 sigma, or p > 1e-6) that a correct sampler
fails them about once in a million runs, and narrow enough to catch a wrong
scale (e.g. a factor sqrt(2) or a missing contributions factor).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from transactive.errors import InputError
from transactive.settlement.privacy import (
    BudgetExhaustedError,
    PrivacyAccountant,
    sum_noise_scale,
)

DEMAND = np.array([[0.4, 1.2, 0.0], [2.0, 0.1, 3.5], [0.7, 0.9, 1.1]])  # 3 homes x 3 intervals


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf, True, "1"])
def test_bad_epsilon_is_refused_and_spends_nothing(bad: object) -> None:
    acc = PrivacyAccountant(1.0)
    with pytest.raises(InputError) as err:
        acc.release_sums(DEMAND, (0.0, 4.0), bad)  # type: ignore[arg-type]
    assert err.value.field == "epsilon"
    assert acc.spent_epsilon == 0.0
    assert acc.releases == ()
    with pytest.raises(InputError) as err:
        PrivacyAccountant(bad)  # type: ignore[arg-type]
    assert err.value.field == "total_epsilon"


def test_bad_data_and_bounds_are_refused_before_spending() -> None:
    acc = PrivacyAccountant(1.0)
    cases = [
        ("values", np.array([[1.0, np.nan, 2.0]]), (0.0, 4.0), None),
        ("values", np.array([[1.0, 2.0], [np.inf, 0.0]]), (0.0, 4.0), None),
        ("values", np.zeros((2, 2, 2)), (0.0, 4.0), None),
        ("values", np.zeros((3, 0)), (0.0, 4.0), None),
        ("bounds", DEMAND, (4.0, 0.0), None),
        ("bounds", DEMAND, (0.0, math.inf), None),
        ("bounds", DEMAND, (0.0,), None),
        ("contributions", DEMAND, (0.0, 4.0), 0),
        ("contributions", DEMAND, (0.0, 4.0), 4),
        ("values", DEMAND, (0.0, 4.0), 2),  # home 1 is non-zero in 3 intervals
    ]
    for field, values, bounds, contributions in cases:
        with pytest.raises(InputError) as err:
            acc.release_sums(values, bounds, 0.5, contributions=contributions)
        assert err.value.field == field
    with pytest.raises(InputError, match="row 1"):
        acc.release_sums(np.array([[1.0, 2.0], [np.inf, 0.0]]), (0.0, 4.0), 0.5)
    assert acc.spent_epsilon == 0.0
    assert acc.releases == ()


def test_budget_composes_sequentially_and_an_exhausted_budget_releases_nothing() -> None:
    acc = PrivacyAccountant(1.0, dataset="volumes")
    acc.release_sums(DEMAND, (0.0, 4.0), 0.6, label="day 1")
    with pytest.raises(BudgetExhaustedError, match="volumes"):
        acc.release_sums(DEMAND, (0.0, 4.0), 0.5)
    assert acc.spent_epsilon == 0.6
    assert [r.label for r in acc.releases] == ["day 1"]
    acc.release_sums(DEMAND, (0.0, 4.0), 0.4)
    assert acc.remaining_epsilon == 0.0
    with pytest.raises(BudgetExhaustedError):
        acc.release_sums(DEMAND, (0.0, 4.0), 1e-6)
    assert acc.spent_epsilon == pytest.approx(1.0)
    assert len(acc.releases) == 2


def test_float_parts_of_a_budget_add_up_to_it() -> None:
    acc = PrivacyAccountant(0.3)
    for _ in range(3):
        acc.release_sums(DEMAND, (0.0, 4.0), 0.1)
    assert 0.1 + 0.1 + 0.1 > 0.3  # why the accountant keeps a tiny relative slack
    with pytest.raises(BudgetExhaustedError):
        acc.release_sums(DEMAND, (0.0, 4.0), 1e-7)


def test_scale_follows_sensitivity_over_epsilon() -> None:
    cases = [((0.0, 5.0), 0.5, 5.0), ((2.0, 7.0), 1.0, 7.0), ((-7.0, -2.0), 1.0, 7.0),
             ((-8.0, 2.0), 2.0, 10.0), ((-1.0, 1.0), 0.1, 2.0)]  # straddling 0: upper - lower
    for bounds, eps, sensitivity in cases:
        ideal = sensitivity / eps
        scale = sum_noise_scale(bounds, eps)
        assert ideal <= scale <= ideal * (1 + 1e-6)  # OpenDP's rounding allowance is tiny
    acc = PrivacyAccountant(10.0)
    acc.release_sums(DEMAND, (0.0, 4.0), 1.0)  # a home is in all 3 intervals
    acc.release_sums(DEMAND[:, :1], (0.0, 4.0), 1.0)
    acc.release_sums(np.eye(3), (0.0, 4.0), 1.0, contributions=1)
    scales = [r.noise_scale for r in acc.releases]
    assert scales == pytest.approx([12.0, 4.0, 4.0], rel=1e-6)


def test_values_are_clamped_before_summing() -> None:
    acc = PrivacyAccountant(1e6)
    values = np.array([[-3.0, 0.5], [9.0, 1.5], [2.0, 2.5]])
    noisy = acc.release_sums(values, (0.0, 2.0), 1e5)  # scale 4e-5
    np.testing.assert_allclose(noisy, [0.0 + 2.0 + 2.0, 0.5 + 1.5 + 2.0], atol=1e-3)


def test_noise_is_unbiased_laplace_with_the_derived_scale() -> None:
    n_draws, n_cells = 400, 10
    bounds, eps = (0.0, 3.0), 5.0
    acc = PrivacyAccountant(n_draws * eps)
    rng = np.random.default_rng(0)
    values = rng.uniform(0.0, 3.0, (50, n_cells))
    truth = values.sum(axis=0)
    noise = np.concatenate(
        [acc.release_sums(values, bounds, eps) - truth for _ in range(n_draws)]
    )
    scale = acc.releases[0].noise_scale
    assert scale == pytest.approx(n_cells * 3.0 / eps, rel=1e-6)
    sd = math.sqrt(2) * scale
    assert abs(noise.mean()) < 5 * sd / math.sqrt(noise.size)  # unbiased
    # E|X| = b for Laplace(b): the empirical scale within 5 standard errors (sd |X| = b)
    assert abs(np.abs(noise).mean() - scale) < 5 * scale / math.sqrt(noise.size)
    assert stats.kstest(noise, "laplace", args=(0.0, scale)).pvalue > 1e-6
    # the test has power: a scale off by sqrt(2) is rejected
    assert stats.kstest(noise, "laplace", args=(0.0, scale * math.sqrt(2))).pvalue < 1e-6


def test_releases_are_not_reproducible() -> None:
    acc = PrivacyAccountant(2.0)
    a = acc.release_sums(DEMAND, (0.0, 4.0), 1.0)
    b = acc.release_sums(DEMAND, (0.0, 4.0), 1.0)
    assert not np.array_equal(a, b)
