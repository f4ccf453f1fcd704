"""Drift statistics on synthetic data whose answer is known."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest

from mlstack.engine.drift import (
    compute_drift,
    ks_statistic,
    psi_categorical,
    psi_numeric,
)
from mlstack.errors import MlstackError
from mlstack.manifest.models import Drift


def _normal(n: int, mean: float = 0.0, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, 1.0) for _ in range(n)]


def test_psi_same_distribution_is_small() -> None:
    assert psi_numeric(_normal(2000, seed=1), _normal(2000, seed=2)) < 0.05


def test_psi_identical_samples_is_zero() -> None:
    xs = _normal(500, seed=3)
    assert psi_numeric(xs, list(xs)) == pytest.approx(0.0, abs=1e-12)


def test_psi_shifted_mean_is_large() -> None:
    assert psi_numeric(_normal(2000, seed=1), _normal(2000, mean=1.0, seed=2)) > 0.2


def test_psi_grows_with_the_shift() -> None:
    ref = _normal(2000, seed=1)
    small = psi_numeric(ref, _normal(2000, mean=0.3, seed=2))
    large = psi_numeric(ref, _normal(2000, mean=1.0, seed=2))
    assert small < large


def test_psi_with_repeated_values_uses_fewer_bins() -> None:
    ref = [0.0] * 50 + [1.0] * 50
    assert psi_numeric(ref, [0.0] * 50 + [1.0] * 50) == pytest.approx(0.0)
    assert psi_numeric(ref, [0.0] * 90 + [1.0] * 10) > 0.2


def test_psi_categorical_same_shares_is_zero_and_new_category_drifts() -> None:
    ref = ["a"] * 60 + ["b"] * 40
    assert psi_categorical(ref, ["a"] * 30 + ["b"] * 20) == pytest.approx(0.0)
    assert psi_categorical(ref, ["a"] * 40 + ["b"] * 30 + ["c"] * 30) > 0.2


def test_ks_known_values() -> None:
    assert ks_statistic([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert ks_statistic([1.0, 2.0], [3.0, 4.0]) == 1.0
    # CDFs after 1: 1/2 vs 0; after 2: 1 vs 1/2; the largest gap is 1/2
    assert ks_statistic([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.5)


def test_ks_same_vs_shifted() -> None:
    ref = _normal(1000, seed=1)
    assert ks_statistic(ref, _normal(1000, seed=2)) < 0.1
    assert ks_statistic(ref, _normal(1000, mean=1.0, seed=2)) > 0.3


def _rows(n: int, shift: float = 0.0, seed: int = 0, colors: tuple[str, ...] = ("r", "g")):
    rng = random.Random(seed)
    return [
        {"x1": rng.gauss(shift, 1), "x2": rng.gauss(0, 1), "color": rng.choice(colors)}
        for _ in range(n)
    ]


def test_compute_drift_no_drift() -> None:
    report = compute_drift(_rows(1000, seed=1), _rows(500, seed=2), Drift())
    assert not report.drifted
    assert [f.feature for f in report.features] == ["x1", "x2", "color"]
    x1 = report.features[0]
    assert (x1.method, x1.kind, x1.threshold, x1.n_reference, x1.n_live) == (
        "psi",
        "numeric",
        0.2,
        1000,
        500,
    )
    assert report.features[2].kind == "categorical"


def test_compute_drift_names_the_shifted_feature() -> None:
    report = compute_drift(_rows(1000, seed=1), _rows(500, shift=3.0, seed=2), Drift())
    assert report.drifted
    assert report.drifted_features == ["x1"]
    data = report.to_dict()
    assert data["drifted_features"] == ["x1"]
    json.dumps(data)  # --json output must serialize


def test_compute_drift_new_category() -> None:
    live = _rows(500, seed=2, colors=("r", "g", "b"))
    report = compute_drift(_rows(1000, seed=1), live, Drift())
    assert report.drifted_features == ["color"]


def test_compute_drift_ks_and_feature_subset() -> None:
    settings = Drift(method="ks", threshold=0.1, features=["x1", "color"])
    report = compute_drift(_rows(1000, seed=1), _rows(500, shift=1.0, seed=2), settings)
    by = {f.feature: f for f in report.features}
    assert set(by) == {"x1", "color"}
    assert by["x1"].method == "ks" and by["x1"].drifted
    assert by["color"].method == "psi" and not by["color"].drifted  # KS has no categories


def test_compute_drift_unknown_feature_is_a_user_error() -> None:
    with pytest.raises(MlstackError, match="'nope'"):
        compute_drift(_rows(10), _rows(10), Drift(features=["nope"]))


def test_missing_values_are_skipped_and_empty_side_is_not_drift() -> None:
    ref = [{"x": float(i)} for i in range(100)]
    live = [{"x": None} for _ in range(5)]
    (f,) = compute_drift(ref, live, Drift()).features
    assert (f.value, f.drifted, f.n_reference, f.n_live) == (None, False, 100, 0)


def test_strings_where_numbers_were_trained_count_as_drift() -> None:
    ref = [{"x": float(i)} for i in range(100)]
    live = [{"x": "oops"} for _ in range(10)]
    (f,) = compute_drift(ref, live, Drift()).features
    assert f.drifted and f.value == 1.0


@dataclass
class _Settings:
    method: str = "psi"
    threshold: float = 0.2
    features: list[str] | str = field(default="all")


def test_unknown_method_is_refused() -> None:
    with pytest.raises(MlstackError, match="not known"):
        compute_drift(_rows(10), _rows(10), _Settings(method="chi2"))


def test_few_live_rows_are_flagged_as_a_small_sample() -> None:
    """34 in-distribution rows can cross a PSI threshold by chance: the report says the sample
    is small (the CLI prints a warning), while 500 rows are not flagged."""
    small = compute_drift(_rows(1000, seed=1), _rows(34, seed=2), Drift())
    assert small.small_sample and small.fewest_live_rows == 34
    assert small.to_dict()["small_sample"] is True
    big = compute_drift(_rows(1000, seed=1), _rows(500, seed=2), Drift())
    assert not big.small_sample and big.to_dict()["small_sample"] is False
