"""Per-feature input drift, prediction drift and data quality of one ``Capture``.

Numeric columns become float arrays once (a value that is not a number where training saw
numbers is counted, then left out of the statistics and reported as a quality failure);
categorical columns compare category shares. Verdicts:

- ``drift``: PSI above ``threshold`` (method psi), or KS statistic above ``threshold`` with a
  p-value below ``alpha`` (method ks; categorical features use PSI whatever the method);
- ``ok``: measured, under the threshold;
- ``not enough data``: fewer than ``min_samples`` live values, so no verdict (PSI and KS of
  in-distribution data often exceed the usual thresholds by chance on small samples);
- ``no data``: one side has no values at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from mlstack.engine.backend import Capture
from mlstack.errors import MlstackError
from mlstack.monitoring import stats
from mlstack.monitoring.stats import Values

Verdict = Literal["ok", "drift", "not enough data", "no data"]


class DriftSettings(Protocol):
    """What ``spec.models.Drift`` carries (a protocol so tests may pass anything shaped so)."""

    @property
    def method(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def min_samples(self) -> int: ...
    @property
    def features(self) -> str | list[str]: ...


class ExpectationLike(Protocol):
    """What ``spec.models.Expectation`` carries that live requests can be held to."""

    @property
    def type(self) -> str | None: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def nullable(self) -> bool: ...
    @property
    def in_(self) -> list[Any] | None: ...


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: Literal["numeric", "categorical"]
    method: str  # what the verdict used: psi or ks
    value: float | None  # the score the verdict used (None: not measured)
    threshold: float
    verdict: Verdict
    n_reference: int
    n_live: int
    psi: float | None = None
    ks: float | None = None
    p_value: float | None = None
    # categorical: category -> [reference share, live share]
    shares: dict[str, list[float]] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


@dataclass(frozen=True)
class QualityIssue:
    feature: str
    check: Literal["null", "range", "unseen", "type"]
    rows: int  # live rows failing the check
    n_live: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numeric_side(values: Values) -> tuple[stats.Floats, int, int]:
    """(finite numbers as floats, missing count, non-number count) of one column."""
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.dtype.kind in "fiu":  # the fast path: numbers only
        arr = arr.astype(np.float64, copy=False)
        nan = np.isnan(arr)
        return arr[~nan], int(nan.sum()), 0
    nums = [float(v) for v in values if _is_number(v) and not math.isnan(float(v))]
    missing = sum(1 for v in values if _missing(v))
    return np.asarray(nums, dtype=np.float64), missing, len(values) - len(nums) - missing


def categorical_side(values: Values) -> npt.NDArray[np.str_]:
    """The present values of one column as text (None and NaN are missing)."""
    arr = np.asarray(values, dtype=object) if len(values) else np.asarray([], dtype=object)
    if arr.ndim != 1:  # values that are lists themselves: compare them as text
        arr = np.asarray([str(v) for v in values], dtype=object)
    present = arr[np.not_equal(arr, None)]  # type: ignore[call-overload]
    # NaN is the one value not equal to itself
    present = present[np.equal(present, present)]
    text: npt.NDArray[np.str_] = present.astype(str)
    return text


def is_numeric(reference: Values) -> bool:
    """Every present value is a number (and there is one)."""
    arr = np.asarray(reference) if len(reference) else np.asarray([], dtype=object)
    if arr.ndim == 1 and arr.dtype.kind in "fiu":
        return bool((~np.isnan(arr.astype(np.float64, copy=False))).any())
    if arr.ndim == 1 and arr.dtype.kind in "USb":
        return False
    present = [v for v in reference if not _missing(v)]
    return bool(present) and all(_is_number(v) for v in present)


def feature_drift(
    feature: str, reference: Values, live: Values, settings: DriftSettings
) -> FeatureDrift:
    method, threshold = str(settings.method), float(settings.threshold)
    if is_numeric(reference):
        ref, _, _ = numeric_side(reference)
        cur, _, strays = numeric_side(live)
        n_live = cur.size + strays
        if ref.size == 0 or n_live == 0:
            verdict: Verdict = "no data"
            return FeatureDrift(feature, "numeric", method, None, threshold, verdict, ref.size, 0)
        if n_live < settings.min_samples:
            return FeatureDrift(
                feature, "numeric", method, None, threshold, "not enough data", ref.size, n_live
            )
        psi = stats.psi_numeric(ref, cur) if cur.size else 0.0
        ks, p = stats.ks_2samp(ref, cur) if cur.size else (0.0, 1.0)
        stray_share = strays / n_live
        if method == "ks":
            value = max(ks, stray_share)
            drifted = value > threshold and (p < settings.alpha or stray_share > threshold)
        else:
            value = max(psi, stray_share)
            drifted = value > threshold
        return FeatureDrift(
            feature,
            "numeric",
            method,
            value,
            threshold,
            "drift" if drifted else "ok",
            ref.size,
            n_live,
            psi=psi,
            ks=ks,
            p_value=p,
        )
    ref_c, cur_c = categorical_side(reference), categorical_side(live)
    if ref_c.size == 0 or cur_c.size == 0:
        return FeatureDrift(
            feature, "categorical", "psi", None, threshold, "no data", ref_c.size, cur_c.size
        )
    if cur_c.size < settings.min_samples:
        return FeatureDrift(
            feature,
            "categorical",
            "psi",
            None,
            threshold,
            "not enough data",
            ref_c.size,
            cur_c.size,
        )
    cats, rs, ls = stats.category_shares(ref_c, cur_c)
    psi = stats._psi(rs, ls)
    return FeatureDrift(
        feature,
        "categorical",
        "psi",
        psi,
        threshold,
        "drift" if psi > threshold else "ok",
        ref_c.size,
        cur_c.size,
        psi=psi,
        shares={c: [float(r), float(x)] for c, r, x in zip(cats, rs, ls, strict=True)},
    )


def as_arrays(capture: Capture) -> Capture:
    """The capture with every all-number column as one float array (converted once, shared by
    every check); other columns stay as they are."""

    def conv(columns: Mapping[str, Sequence[Any]]) -> dict[str, Values]:
        out: dict[str, Values] = {}
        for name, values in columns.items():
            arr = np.asarray(values) if len(values) else None
            if arr is not None and arr.ndim == 1 and arr.dtype.kind in "fiu":
                out[name] = arr.astype(np.float64, copy=False)
            else:
                out[name] = values
        return out

    # arrays stand where the seam says Sequence (len, iteration, indexing all hold); the seam
    # itself does not depend on numpy
    ref: Any = conv(capture.reference)
    live: Any = conv(capture.live)
    return replace(capture, reference=ref, live=live)


def selected_features(capture: Capture, settings: DriftSettings) -> list[str]:
    available = list(capture.columns)
    if settings.features == "all":
        return available
    features = [str(f) for f in settings.features]
    unknown = [f for f in features if f not in available]
    if unknown:
        raise MlstackError(
            f"monitoring.drift.features: {', '.join(map(repr, unknown))} "
            "is not an input column of the model",
            hint=f"the model's input columns: {', '.join(available)}",
        )
    return features


def input_drift(capture: Capture, settings: DriftSettings) -> list[FeatureDrift]:
    if settings.method not in ("psi", "ks"):
        raise MlstackError(f"drift method {settings.method!r} is not known", hint="use psi or ks")
    return [
        feature_drift(f, capture.reference.get(f, ()), capture.live.get(f, ()), settings)
        for f in selected_features(capture, settings)
    ]


def prediction_drift(capture: Capture, settings: DriftSettings) -> FeatureDrift | None:
    """The live predictions' distribution against the training split's labels (prior shift);
    None when the target or the captured answers are unknown."""
    if not capture.target or capture.target not in capture.reference:
        return None
    preds: list[Any] = [p for p in capture.predictions if p is not None]
    if not preds:
        return None
    reference = list(capture.reference[capture.target])
    if capture.task == "classification":  # classes are categories, whatever their type
        reference = [None if _missing(v) else _class(v) for v in reference]
        preds = [_class(v) for v in preds]
    return feature_drift(f"prediction ({capture.target})", reference, preds, settings)


def _class(v: Any) -> str:
    """A class label as text, the same whether a protocol sent it as 1, 1.0 or "1"."""
    if _is_number(v) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return str(int(f)) if f.is_integer() else v
    return str(v)


def quality(capture: Capture, expectations: Mapping[str, ExpectationLike]) -> list[QualityIssue]:
    """Live requests against the spec's ``data.expectations`` (nulls, ranges, types, allowed
    values) and, for categorical inputs, categories the training split never had."""
    issues: list[QualityIssue] = []
    for c in capture.columns:
        live = capture.live.get(c, ())
        n = len(live)
        if n == 0:
            continue
        exp = expectations.get(c)
        ref = capture.reference.get(c, ())
        numeric = is_numeric(ref) or (exp is not None and exp.type in ("int", "float"))
        if numeric:
            arr, missing, strays = numeric_side(live)
            if strays:
                issues.append(
                    QualityIssue(c, "type", strays, n, f"{strays} value(s) are not numbers")
                )
        else:
            present = categorical_side(live)
            missing = n - present.size
        if exp is not None and not exp.nullable and missing:
            issues.append(QualityIssue(c, "null", missing, n, f"{missing} null(s); not nullable"))
        if numeric and exp is not None and (exp.min is not None or exp.max is not None):
            lo = -np.inf if exp.min is None else exp.min
            hi = np.inf if exp.max is None else exp.max
            bad = int(((arr < lo) | (arr > hi)).sum())
            if bad:
                bounds = [f"min {exp.min:g}"] if exp.min is not None else []
                bounds += [f"max {exp.max:g}"] if exp.max is not None else []
                detail = f"{bad} value(s) outside {', '.join(bounds)}"
                issues.append(QualityIssue(c, "range", bad, n, detail))
        if exp is not None and exp.in_ is not None:
            text = present if not numeric else categorical_side(live)
            outside = text[np.isin(text, np.asarray([str(v) for v in exp.in_]), invert=True)]
            if outside.size:
                issues.append(
                    QualityIssue(
                        c,
                        "unseen",
                        int(outside.size),
                        n,
                        f"{outside.size} value(s) not in `in:` ({_few(np.unique(outside))})",
                    )
                )
        elif not numeric and len(ref):
            unseen = present[np.isin(present, categorical_side(ref), invert=True)]
            if unseen.size:
                issues.append(
                    QualityIssue(
                        c,
                        "unseen",
                        int(unseen.size),
                        n,
                        f"{unseen.size} value(s) of categories training never saw "
                        f"({_few(np.unique(unseen))})",
                    )
                )
    return issues


def _few(values: Values, n: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return shown + (f", and {len(values) - n} more" if len(values) > n else "")
