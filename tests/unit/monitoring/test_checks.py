"""Per-feature verdicts, prediction drift and data quality of a Capture built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mlstack.engine.backend import Capture
from mlstack.errors import MlstackError
from mlstack.manifest.models import Drift, Expectation
from mlstack.monitoring import checks


def _cap(**live_overrides: list) -> Capture:
    rng = np.random.default_rng(0)
    ref = {
        "radius": rng.normal(14, 3, 400).tolist(),
        "texture": rng.normal(19, 4, 400).tolist(),
        "size": (["small"] * 200 + ["medium"] * 150 + ["large"] * 50),
        "y": ([0] * 250 + [1] * 150),
    }
    live = {
        "radius": rng.normal(14, 3, 300).tolist(),
        "texture": rng.normal(19, 4, 300).tolist(),
        "size": (["small"] * 150 + ["medium"] * 110 + ["large"] * 40),
    }
    live.update(live_overrides)
    return Capture(
        columns=("radius", "texture", "size"),
        reference=ref,
        live=live,
        predictions=[0] * 190 + [1] * 110,
        target="y",
        task="classification",
    )


def _by(results: list[checks.FeatureDrift]) -> dict[str, checks.FeatureDrift]:
    return {f.feature: f for f in results}


def test_in_distribution_is_ok_with_every_statistic() -> None:
    got = _by(checks.input_drift(_cap(), Drift()))
    assert {f.verdict for f in got.values()} == {"ok"}
    r = got["radius"]
    assert r.kind == "numeric" and r.psi is not None and r.ks is not None
    assert r.p_value is not None and r.p_value > 0.01
    s = got["size"]
    assert s.kind == "categorical" and s.method == "psi"
    assert s.shares["small"] == pytest.approx([0.5, 0.5])


def test_a_shifted_feature_drifts_and_only_it() -> None:
    shifted = (np.random.default_rng(1).normal(20, 3, 300)).tolist()
    got = _by(checks.input_drift(_cap(radius=shifted), Drift()))
    assert got["radius"].verdict == "drift" and got["radius"].value > 0.2  # type: ignore[operator]
    assert got["texture"].verdict == "ok"
    ks = _by(checks.input_drift(_cap(radius=shifted), Drift(method="ks", threshold=0.1)))
    assert ks["radius"].verdict == "drift" and ks["radius"].p_value < 1e-6  # type: ignore[operator]
    assert ks["radius"].value == ks["radius"].ks


def test_below_min_samples_is_not_enough_data_never_drift() -> None:
    few = [100.0] * 20  # wildly off, but only 20 rows
    got = _by(checks.input_drift(_cap(radius=few), Drift(min_samples=50)))
    assert got["radius"].verdict == "not enough data"
    assert not got["radius"].drifted and got["radius"].n_live == 20


def test_non_numbers_in_a_numeric_feature_count_as_drift() -> None:
    mixed = [14.0] * 150 + ["oops"] * 150
    got = _by(checks.input_drift(_cap(radius=mixed), Drift()))
    assert got["radius"].verdict == "drift" and got["radius"].n_live == 300


def test_unknown_feature_names_are_refused() -> None:
    with pytest.raises(MlstackError, match="'nope' is not an input column"):
        checks.input_drift(_cap(), Drift(features=["radius", "nope"]))


def test_prediction_drift_against_training_labels() -> None:
    ok = checks.prediction_drift(_cap(), Drift())
    assert ok is not None and ok.verdict == "ok" and ok.feature == "prediction (y)"
    shifted = Capture(**{**_cap().__dict__, "predictions": [1] * 300})
    bad = checks.prediction_drift(shifted, Drift())
    assert bad is not None and bad.verdict == "drift"
    assert checks.prediction_drift(Capture(**{**_cap().__dict__, "target": None}), Drift()) is None
    # a class sent back as 1.0 (a V2 FP64 tensor) or "1" is the class 1 of the training labels
    as_floats = Capture(**{**_cap().__dict__, "predictions": [0.0] * 190 + ["1"] * 110})
    same = checks.prediction_drift(as_floats, Drift())
    assert same is not None and same.verdict == "ok" and set(same.shares) == {"0", "1"}


def test_quality_nulls_ranges_unseen_types() -> None:
    radius = [14.0] * 290 + [None] * 4 + [-1.0] * 3 + ["x"] * 3
    size = ["small"] * 295 + ["huge"] * 5
    texture = [19.0] * 298 + [500.0] * 2
    cap = _cap(radius=radius, size=size, texture=texture)
    exp = {
        "radius": Expectation(type="float", min=0, nullable=False),
        "texture": Expectation(type="float", max=100),
    }
    got = {(q.feature, q.check): q for q in checks.quality(cap, exp)}
    assert set(got) == {
        ("radius", "type"),
        ("radius", "null"),
        ("radius", "range"),
        ("texture", "range"),
        ("size", "unseen"),
    }
    assert got["radius", "null"].rows == 4 and got["radius", "range"].rows == 3
    assert got["radius", "type"].rows == 3 and got["texture", "range"].rows == 2
    assert got["size", "unseen"].rows == 5 and "huge" in got["size", "unseen"].detail
    allowed = {"size": Expectation.model_validate({"in": ["small", "medium"]})}
    q = checks.quality(_cap(), allowed)
    assert [(i.feature, i.check, i.rows) for i in q] == [("size", "unseen", 40)]


def test_clean_live_requests_have_no_quality_issue() -> None:
    exp = {"radius": Expectation(type="float", nullable=False)}
    assert checks.quality(_cap(), exp) == []
