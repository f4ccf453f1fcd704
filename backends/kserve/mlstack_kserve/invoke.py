"""``predict`` over KServe's V1 and V2 protocols through the cluster's ingress."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from mlstack.engine.backend import Prediction
from mlstack.errors import BackendError
from mlstack_kserve.endpoints import endpoint_status
from mlstack_kserve.platform import Platform


def predict(p: Platform, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
    import urllib.error
    import urllib.request

    env = p.project.environment
    view = endpoint_status(p, endpoint)
    if view is None:
        raise BackendError(f"endpoint {endpoint} is not deployed", hint=f"mlstack apply -e {env}")
    model = p.model_name()
    path = f"/v2/models/{model}/infer" if "inputs" in body else f"/v1/models/{model}:predict"
    host = urlparse(view.url).netloc
    base = p.config.ingress_url or view.url
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Host": host},
        method="POST",
    )
    target = f"{view.url}{path}" + (f" via {p.config.ingress_url}" if p.config.ingress_url else "")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our URL
            raw = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:300].decode(errors="replace")
        raise BackendError(
            f"{target} answered {e.code}: {detail}",
            hint="4xx: the request does not fit the model's input; 5xx: "
            f"kubectl -n {p.config.namespace} logs the predictor",
        ) from None
    except OSError as e:
        raise BackendError(
            f"cannot reach {target}: {e}",
            hint="set `ingress_url:` to the cluster's ingress gateway, or port-forward it",
        ) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise BackendError(f"{target} answered with something that is not JSON") from None
    version = answer.get("model_version") if isinstance(answer, dict) else None
    return Prediction(body=answer, version=str(version) if version else None, target=target)
