"""Deployment gates from Cloud Monitoring: per deployed model, the prediction count, error count
and latency distribution of a Vertex endpoint since a time, as ``VersionMetrics`` by version.

Metric types (Vertex AI metrics list): ``aiplatform.googleapis.com/prediction/online/
prediction_count``, ``.../error_count`` (INT64 deltas) and ``.../prediction_latencies``
(DISTRIBUTION, milliseconds) on resource ``aiplatform.googleapis.com/Endpoint``, labelled
``deployed_model_id``. Read through the Monitoring v3 REST API (``projects.timeSeries.list``);
answers are parsed into ``google.cloud.monitoring_v3`` messages. Percentiles come from the
distribution's buckets (linear interpolation inside the bucket).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import VersionMetrics
from mlstack.errors import BackendError
from mlstack_vertex import endpoints

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform

PREFIX = "aiplatform.googleapis.com/prediction/online/"


def _rfc3339(t: float) -> str:
    return (
        datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    )


def _series(platform: Platform, metric: str, endpoint_id: str, since: float) -> list[Any]:
    import time

    from google.cloud import monitoring_v3

    gcp = platform.gcp
    params = {
        "filter": f'metric.type = "{PREFIX}{metric}" AND '
        f'resource.type = "aiplatform.googleapis.com/Endpoint" AND '
        f'resource.labels.endpoint_id = "{endpoint_id}"',
        "interval.startTime": _rfc3339(since),
        "interval.endTime": _rfc3339(time.time()),
        "view": "FULL",
    }
    url = f"{gcp.monitoring_url}/v3/projects/{platform.config.project}/timeSeries"
    try:
        r = gcp.session.get(url, params=params, timeout=30)
    except OSError as e:
        raise BackendError(f"cannot read Cloud Monitoring: {e}") from None
    if r.status_code != 200:
        raise BackendError(
            f"Cloud Monitoring answered {r.status_code} for {metric}: {r.text[:300]}",
            hint="the service account needs roles/monitoring.viewer",
        )
    answer = monitoring_v3.ListTimeSeriesResponse.from_json(r.text, ignore_unknown_fields=False)
    return list(answer.time_series)


def _percentile(dist: Any, q: float) -> float | None:
    if not dist.count:
        return None
    bounds = list(dist.bucket_options.explicit_buckets.bounds)
    counts = list(dist.bucket_counts)
    rank, seen = q * dist.count, 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lo = bounds[i - 1] if i > 0 else 0.0
            hi = bounds[i] if i < len(bounds) else (bounds[-1] if bounds else lo)
            return float(lo + (hi - lo) * (rank - seen) / c) / 1000.0  # ms -> s
        seen += c
    return (bounds[-1] if bounds else 0.0) / 1000.0


def metrics(platform: Platform, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
    ids = endpoints.deployed_ids(platform, endpoint)
    if not ids:
        return {}
    endpoint_id = platform.endpoint_name(endpoint).rsplit("/", 1)[-1]
    counts: dict[str, dict[str, int]] = {"prediction_count": {}, "error_count": {}}
    for metric in counts:
        for ts in _series(platform, metric, endpoint_id, since):
            dm = ts.metric.labels.get("deployed_model_id", "")
            counts[metric][dm] = counts[metric].get(dm, 0) + sum(
                p.value.int64_value for p in ts.points
            )
    latency: dict[str, Any] = {}
    for ts in _series(platform, "prediction_latencies", endpoint_id, since):
        if ts.points:
            latency[ts.metric.labels.get("deployed_model_id", "")] = ts.points[
                0
            ].value.distribution_value
    out = {}
    for dm, version in ids.items():
        dist = latency.get(dm)
        out[version] = VersionMetrics(
            requests=counts["prediction_count"].get(dm, 0),
            errors=counts["error_count"].get(dm, 0),
            latency_p50=_percentile(dist, 0.5) if dist else None,
            latency_p90=_percentile(dist, 0.9) if dist else None,
            latency_p95=_percentile(dist, 0.95) if dist else None,
            latency_p99=_percentile(dist, 0.99) if dist else None,
        )
    return out
