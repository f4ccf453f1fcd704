"""Data drift between the rows a model was trained on and the rows it is asked about.

Pure Python on lists of dicts (no numpy/pandas: core stays light), so any backend that can hand
over a sample of both sides gets the same verdict:

- PSI, numeric: 10 bins cut at the reference's deciles; categorical: one bin per category.
  Empty bins get a small epsilon so a category seen on one side only counts (ln(0) otherwise).
- KS, numeric: the two-sample Kolmogorov-Smirnov statistic (largest gap between the two
  empirical CDFs). It is undefined for categories, so categorical features use PSI then.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from mlstack.errors import MlstackError

BINS = 10
EPSILON = 1e-4


class DriftSettings(Protocol):
    """What ``spec.models.Drift`` carries (a protocol so tests may pass anything shaped so)."""

    @property
    def method(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def features(self) -> str | list[str]: ...


# Below this many live rows, PSI over ten bins (or a KS statistic) of in-distribution data
# often exceeds the usual thresholds by chance; the verdict comes with a warning.
MIN_LIVE_ROWS = 100


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    value: float | None  # None: a side had no values to compare
    threshold: float
    drifted: bool
    n_reference: int
    n_live: int
    kind: str = "numeric"


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    method: str
    threshold: float

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def fewest_live_rows(self) -> int:
        return min((f.n_live for f in self.features), default=0)

    @property
    def small_sample(self) -> bool:
        """Too few live rows for PSI or KS to tell drift from sampling noise."""
        return self.fewest_live_rows < MIN_LIVE_ROWS

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "small_sample": self.small_sample,
            "fewest_live_rows": self.fewest_live_rows,
            "method": self.method,
            "threshold": self.threshold,
            "drifted_features": self.drifted_features,
            "features": [asdict(f) for f in self.features],
        }


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def _shares(counts: Sequence[int]) -> list[float]:
    n = sum(counts)
    return [c / n for c in counts]


def psi_numeric(reference: Sequence[float], live: Sequence[float], bins: int = BINS) -> float:
    """PSI over bins cut at the reference's quantiles (fewer bins when values repeat)."""
    if not reference or not live:
        raise ValueError("psi needs values on both sides")
    ref = sorted(reference)
    edges = sorted({_quantile(ref, i / bins) for i in range(1, bins)})

    def counts(values: Iterable[float]) -> list[int]:
        c = [0] * (len(edges) + 1)
        for v in values:
            c[bisect_right(edges, v)] += 1  # (edge_{i-1}, edge_i] would split ties unevenly
        return c

    return _psi(_shares(counts(ref)), _shares(counts(live)))


def psi_categorical(reference: Sequence[Any], live: Sequence[Any]) -> float:
    """PSI over category shares; a category seen on one side only is drift."""
    if not reference or not live:
        raise ValueError("psi needs values on both sides")
    rc, lc = Counter(map(str, reference)), Counter(map(str, live))
    cats = sorted(set(rc) | set(lc))
    return _psi(_shares([rc[c] for c in cats]), _shares([lc[c] for c in cats]))


def ks_statistic(reference: Sequence[float], live: Sequence[float]) -> float:
    """Two-sample KS: the largest distance between the two empirical CDFs."""
    if not reference or not live:
        raise ValueError("ks needs values on both sides")
    a, b = sorted(reference), sorted(live)
    na, nb = len(a), len(b)
    i = j = 0
    d = 0.0
    while i < na and j < nb:
        x = min(a[i], b[j])
        while i < na and a[i] == x:
            i += 1
        while j < nb and b[j] == x:
            j += 1
        d = max(d, abs(i / na - j / nb))
    return d


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(str(k), None)
    return list(seen)


def feature_drift(
    feature: str,
    reference: Sequence[Any],
    live: Sequence[Any],
    method: str,
    threshold: float,
) -> FeatureDrift:
    ref = [v for v in reference if not _missing(v)]
    cur = [v for v in live if not _missing(v)]
    numeric = bool(ref) and all(_is_number(v) for v in ref)
    kind = "numeric" if numeric else "categorical"
    used = method if numeric else "psi"
    if not ref or not cur:
        return FeatureDrift(feature, used, None, threshold, False, len(ref), len(cur), kind)
    if numeric:
        # a live value that is not a number where training saw numbers is itself drift
        strays = sum(1 for v in cur if not _is_number(v))
        nums = [float(v) for v in cur if _is_number(v)]
        if not nums:
            value = 0.0
        elif used == "ks":
            value = ks_statistic([float(v) for v in ref], nums)
        else:
            value = psi_numeric([float(v) for v in ref], nums)
        if strays:
            value = max(value, strays / len(cur))
    else:
        value = psi_categorical(ref, cur)
    return FeatureDrift(
        feature, used, value, threshold, value > threshold, len(ref), len(cur), kind
    )


def compute_drift(
    reference: Sequence[Mapping[str, Any]],
    live: Sequence[Mapping[str, Any]],
    settings: DriftSettings,
) -> DriftReport:
    """Per-feature drift of ``live`` against ``reference`` and whether any feature drifted."""
    method, threshold = str(settings.method), float(settings.threshold)
    if method not in ("psi", "ks"):
        raise MlstackError(f"drift method {method!r} is not known", hint="use psi or ks")
    available = _columns(reference)
    if settings.features == "all":
        features = available
    else:
        features = [str(f) for f in settings.features]
        unknown = [f for f in features if f not in available]
        if unknown:
            raise MlstackError(
                f"monitoring.drift.features: {', '.join(map(repr, unknown))} "
                "is not an input column of the model",
                hint=f"the model's input columns: {', '.join(available)}",
            )
    results = tuple(
        feature_drift(
            f,
            [r.get(f) for r in reference],
            [r.get(f) for r in live],
            method,
            threshold,
        )
        for f in features
    )
    return DriftReport(results, method, threshold)
