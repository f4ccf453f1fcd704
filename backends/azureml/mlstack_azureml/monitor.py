"""Gate metrics from Azure Monitor: the managed online endpoint's platform metrics.

``RequestsPerMinute`` split by ``deployment`` and ``statusCodeClass`` gives requests and errors
(5xx) per deployment; ``RequestLatency_P50/P90/P95/P99`` (milliseconds) split by ``deployment``
give the latency percentiles. Read with the Azure Monitor metrics REST API (``metrics`` under the
endpoint's resource id) through azure-core with the same credential as the ``MLClient``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import VersionMetrics
from mlstack_azureml.platform import VERSION_TAG, Platform

METRICS_API = "2023-10-01"
LATENCIES = {
    "RequestLatency_P50": "p50",
    "RequestLatency_P90": "p90",
    "RequestLatency_P95": "p95",
    "RequestLatency_P99": "p99",
}


def _get(p: Platform, url: str, params: dict[str, str]) -> Any:
    return p.arm.request("GET", url, "reading Azure Monitor metrics", params=params)


def _dims(series: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(m["name"]["value"]).lower(): str(m["value"]) for m in series.get("metadatavalues", [])
    }


def metrics(p: Platform, endpoint: str, since: float) -> dict[str, VersionMetrics]:
    """Per model version (from the deployments' tags) requests, errors and latency since ``since``."""
    name = p.endpoint_name(endpoint)
    c = p.config
    rid = (
        f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{c.workspace}/onlineEndpoints/{name}"
    )
    # whole seconds, rounded down so nothing since ``since`` is left out; "Z" (a "+00:00" would
    # reach the service as a space, which it rejects)
    start = datetime.datetime.fromtimestamp(int(since), datetime.timezone.utc)
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
    common = {
        "api-version": METRICS_API,
        "timespan": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}",
        "interval": "PT1M",
    }
    # two queries: the latency metrics have no status code dimension, and Azure Monitor refuses
    # a filter naming a dimension one of the metrics asked for lacks
    url = f"{rid}/providers/Microsoft.Insights/metrics"
    requests = _get(
        p,
        url,
        {
            **common,
            "metricnames": "RequestsPerMinute",
            "aggregation": "Total",
            "$filter": "deployment eq '*' and statusCodeClass eq '*'",
        },
    )
    latencies = _get(
        p,
        url,
        {
            **common,
            "metricnames": ",".join(LATENCIES),
            "aggregation": "Average",
            "$filter": "deployment eq '*'",
        },
    )
    body = {"value": [*requests.get("value", []), *latencies.get("value", [])]}
    tags = {
        d.name: (d.tags or {}).get(VERSION_TAG, d.name)
        for d in p.client.online_deployments.list(name)
    }
    counts: dict[str, list[int]] = {}
    latency: dict[str, dict[str, float]] = {}
    for metric in body.get("value", []):
        metric_name = metric["name"]["value"]
        for series in metric.get("timeseries", []):
            dims = _dims(series)
            dep = dims.get("deployment", "")
            if metric_name == "RequestsPerMinute":
                total = int(sum(point.get("total") or 0 for point in series.get("data", [])))
                row = counts.setdefault(dep, [0, 0])
                row[0] += total
                if dims.get("statuscodeclass", "").startswith("5"):
                    row[1] += total
            elif metric_name in LATENCIES:
                values = [
                    pt["average"] for pt in series.get("data", []) if pt.get("average") is not None
                ]
                if values:
                    latency.setdefault(dep, {})[LATENCIES[metric_name]] = max(values) / 1000.0
    out: dict[str, VersionMetrics] = {}
    for dep in set(counts) | set(latency):
        req, err = counts.get(dep, [0, 0])
        lat = latency.get(dep, {})
        out[tags.get(dep, dep)] = VersionMetrics(
            requests=req,
            errors=err,
            latency_p50=lat.get("p50"),
            latency_p90=lat.get("p90"),
            latency_p95=lat.get("p95"),
            latency_p99=lat.get("p99"),
        )
    return out
