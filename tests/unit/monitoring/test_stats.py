"""Drift statistics on synthetic data whose answer is known, and against SciPy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from mlstack.monitoring import stats


def _normal(n: int, mean: float = 0.0, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, scale, n)


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "scale", "rounded"),
    [
        (200, 150, 0.0, 1.0, False),
        (500, 700, 0.1, 1.0, False),
        (1000, 1000, 0.2, 1.0, False),
        (3000, 800, 0.0, 1.3, False),
        (300, 300, 0.3, 1.0, True),  # ties within and across samples
        (5000, 4000, 0.05, 1.0, False),
    ],
)
def test_ks_matches_scipy(n1: int, n2: int, shift: float, scale: float, rounded: bool) -> None:
    a = _normal(n1, seed=n1)
    b = _normal(n2, mean=shift, scale=scale, seed=n2 + 1)
    if rounded:
        a, b = np.round(a, 1), np.round(b, 1)
    d, p = stats.ks_2samp(a, b)
    ref = sps.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(float(ref.statistic), abs=1e-12)
    # the p-value: Kolmogorov's distribution with Stephens' correction against SciPy's
    # Smirnov distribution of the same effective size: a few percent apart, never more
    if ref.pvalue > 1e-10:
        assert p == pytest.approx(float(ref.pvalue), rel=0.05)
    else:
        assert p < 1e-9


def test_ks_pvalue_separates_same_from_shifted() -> None:
    ref = _normal(2000, seed=1)
    _, p_same = stats.ks_2samp(ref, _normal(2000, seed=2))
    _, p_shift = stats.ks_2samp(ref, _normal(2000, mean=0.3, seed=3))
    assert p_same > 0.05
    assert p_shift < 1e-6


def test_ks_of_identical_samples_is_zero_with_p_one() -> None:
    a = _normal(300, seed=4)
    assert stats.ks_2samp(a, a.copy()) == (0.0, 1.0)


def test_psi_same_distribution_is_small_shift_is_large() -> None:
    ref = _normal(5000, seed=1)
    assert stats.psi_numeric(ref, _normal(5000, seed=2)) < 0.05
    small = stats.psi_numeric(ref, _normal(5000, mean=0.5, seed=2))
    large = stats.psi_numeric(ref, _normal(5000, mean=1.0, seed=2))
    assert 0.1 < small < large and large > 0.5


def test_psi_by_hand() -> None:
    # reference deciles of 0..99 cut at 9.9, 19.8, ...; live: everything in the top bin
    ref = np.arange(100, dtype=float)
    live = np.full(50, 99.0)
    expected = 0.1 * np.ones(10)
    actual = np.full(10, stats.EPSILON)
    actual[-1] = 1.0
    want = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert stats.psi_numeric(ref, live) == pytest.approx(want, rel=1e-12)


def test_psi_categorical_counts_a_new_category() -> None:
    ref = ["a"] * 50 + ["b"] * 50
    assert stats.psi_categorical(ref, ["a"] * 50 + ["b"] * 50) == pytest.approx(0.0)
    assert stats.psi_categorical(ref, ["a"] * 50 + ["c"] * 50) > 1.0
    cats, r, c = stats.category_shares(ref, ["a", "c", "c", "c"])
    assert cats == ["a", "b", "c"]
    assert list(r) == [0.5, 0.5, 0.0] and list(c) == [0.25, 0.0, 0.75]


def test_empty_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="both sides"):
        stats.psi_numeric(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="both sides"):
        stats.ks_statistic(np.array([1.0]), np.array([]))
