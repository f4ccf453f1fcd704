"""Refresh and gates: what exists on the cluster (InferenceService status conditions and
traffic, the registry's newest version), and per-version metrics from Prometheus.

Metrics: KServe's Serverless predictors are fronted by Knative's queue-proxy, which exports
``revision_app_request_count`` (labels ``revision_name``, ``response_code_class``) and the
``revision_app_request_latencies_bucket`` histogram (milliseconds); mlstack asks Prometheus'
HTTP API (``/api/v1/query``) for their increase since the rollout step started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from mlstack.engine import address
from mlstack.engine.backend import Observed, VersionMetrics
from mlstack.errors import BackendError
from mlstack_kserve import endpoints, registry
from mlstack_kserve.platform import Platform


def observe(p: Platform) -> Observed:
    project = p.project
    resources: dict[str, dict[str, Any]] = {}
    if project.model:
        found = registry.versions(p, project.model.name)
        if found:
            latest = found[0]
            resources[address.model(project.model.name)] = {
                "version": latest.version,
                "uri": latest.uri,
                "digest": latest.digest,
            }
    if project.deployment:
        status = endpoints.endpoint_status(p, project.deployment.endpoint)
        if status is not None:
            seen: dict[str, Any] = {"url": status.url}
            serving = [v for v, w in status.weights().items() if w >= 100.0]
            if serving:
                seen["champion"] = serving[0]
            resources[address.endpoint(project.deployment.endpoint)] = seen
    return Observed(resources=resources, complete=False, kinds=frozenset({"endpoint", "model"}))


def _query(p: Platform, promql: str) -> list[dict[str, Any]]:
    import urllib.parse
    import urllib.request

    url = f"{p.config.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - configured URL
            body = json.loads(resp.read())
    except (OSError, ValueError) as e:
        raise BackendError(
            f"cannot query Prometheus at {p.config.prometheus_url}: {e}",
            hint="check `prometheus_url`; gates need KServe's metrics",
        ) from None
    if body.get("status") != "success":
        raise BackendError(f"Prometheus refused {promql!r}: {body.get('error')}")
    return list(body["data"]["result"])


def metrics(p: Platform, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
    if p.config.prometheus_url is None:
        raise BackendError(
            "deployment gates on KServe are read from Prometheus, and `prometheus_url` is not set",
            hint="set prometheus_url: to the Prometheus that scrapes KServe/Knative",
        )
    if p.raw:
        raise BackendError(
            "gates in RawDeployment mode need the gateway's request metrics, which mlstack does "
            "not query yet (only Knative's queue-proxy metrics, in Serverless mode)",
            hint="use serving_mode: Serverless for gated rollouts, or watch the gateway yourself",
        )
    view = endpoints.endpoint_status(p, endpoint)
    if view is None:
        return {}
    window = f"{max(1, int(time.time() - since))}s"
    ns = p.config.namespace
    revision_version = {
        v.where.removeprefix("revision ").removeprefix("InferenceService "): v.version
        for v in view.versions
    }
    counts: dict[str, list[int]] = {}
    q = (
        f"sum by (revision_name, response_code_class) (increase(revision_app_request_count"
        f'{{namespace_name="{ns}"}}[{window}]))'
    )
    for r in _query(p, q):
        rev = r["metric"].get("revision_name", "")
        if rev not in revision_version:
            continue
        n = int(round(float(r["value"][1])))
        c = counts.setdefault(revision_version[rev], [0, 0])
        c[0] += n
        if r["metric"].get("response_code_class") == "5xx":
            c[1] += n
    out: dict[str, VersionMetrics] = {}
    for version, (requests, errors) in counts.items():
        lat: dict[str, Any] = {}
        for q_name, q_val in (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99)):
            revs = "|".join(k for k, v in revision_version.items() if v == version)
            res = _query(
                p,
                f"histogram_quantile({q_val}, sum by (le) (increase("
                f'revision_app_request_latencies_bucket{{namespace_name="{ns}",'
                f'revision_name=~"{revs}"}}[{window}])))',
            )
            lat[q_name] = float(res[0]["value"][1]) / 1000.0 if res else None
        out[version] = VersionMetrics(requests=requests, errors=errors, **lat)
    return out
