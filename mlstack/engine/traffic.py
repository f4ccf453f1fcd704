"""Traffic shares as whole percents, for platforms whose traffic map takes integers
(Vertex AI's ``traffic_split``, Azure ML's ``traffic``).

One rule, used by every backend that needs it: largest remainder (Hamilton's method). Each
share gets the floor of its exact percent; the points left over go, one each, to the shares
with the largest fractional remainders; equal remainders are broken by key, in ascending order,
so the answer does not depend on the mapping's order. Negative weights count as 0; when every
weight is 0 every share is 0 (there is nothing to split).
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def whole_percents(weights: Mapping[str, float]) -> dict[str, int]:
    """``weights`` (any scale) as whole percents adding up to 100, keys kept in their order;
    all zero when no weight is positive."""
    clean = {k: max(float(w), 0.0) for k, w in weights.items()}
    total = sum(clean.values())
    if total <= 0:
        return {k: 0 for k in clean}
    exact = {k: 100.0 * w / total for k, w in clean.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    left = 100 - sum(out.values())
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[:left]:
        out[k] += 1
    return out
