"""``whole_percents``: largest remainder, one tie-break rule (key order), sums to 100."""

from __future__ import annotations

import random

from mlstack.engine.traffic import whole_percents


def test_largest_remainder_gets_the_points_left() -> None:
    # exact 66.7 / 33.3: floors 66 + 33, the one point left to the larger remainder (0.7)
    assert whole_percents({"v1": 66.7, "v2": 33.3}) == {"v1": 67, "v2": 33}
    # 1/6 each of 100 = 16.67: floors sum to 96, the four points go to the first four keys
    six = whole_percents({k: 1.0 for k in "fedcba"})
    assert six == {"f": 16, "e": 16, "d": 17, "c": 17, "b": 17, "a": 17}
    assert list(six) == list("fedcba")  # the caller's order is kept
    # 12.5 / 87.5 on a 0..1 scale: remainders tie at .5, the point goes to the first key
    assert whole_percents({"z": 0.875, "a": 0.125}) == {"z": 87, "a": 13}


def test_ties_do_not_depend_on_order() -> None:
    weights = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert whole_percents(weights) == {"a": 34, "b": 33, "c": 33}
    assert whole_percents(dict(reversed(weights.items()))) == {"a": 34, "b": 33, "c": 33}


def test_zero_negative_and_exact() -> None:
    assert whole_percents({"a": 90, "b": 10}) == {"a": 90, "b": 10}
    assert whole_percents({"a": 100.0, "b": 0.0}) == {"a": 100, "b": 0}
    assert whole_percents({"a": 0}) == {"a": 0}
    assert whole_percents({"a": -5, "b": 0}) == {"a": 0, "b": 0}
    assert whole_percents({"a": -5, "b": 3}) == {"a": 0, "b": 100}
    assert whole_percents({}) == {}


def test_always_sums_to_100_and_stays_within_one_point() -> None:
    rng = random.Random(3)
    for _ in range(500):
        weights = {f"k{i}": rng.uniform(0.0, 100.0) for i in range(rng.randint(1, 9))}
        got = whole_percents(weights)
        total = sum(weights.values())
        assert sum(got.values()) == 100
        for k, w in weights.items():
            assert abs(got[k] - 100.0 * w / total) < 1.0
