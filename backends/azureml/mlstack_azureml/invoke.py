"""``predict`` through the endpoint's ``invoke`` (keys fetched by the SDK, body sent as JSON)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import Prediction
from mlstack.errors import BackendError
from mlstack_azureml.azure import arm_error
from mlstack_azureml.platform import Platform


def predict(p: Platform, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
    from azure.core.exceptions import HttpResponseError

    name = p.endpoint_name(endpoint)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=True) as fh:
        json.dump(dict(body), fh)
        fh.flush()
        try:
            text = p.client.online_endpoints.invoke(endpoint_name=name, request_file=fh.name)
        except HttpResponseError as e:
            raise arm_error(e, f"a prediction from {name}") from None
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        raise BackendError(
            f"endpoint {name} answered with something that is not JSON: {text[:200]}"
        ) from None
    if isinstance(answer, str):  # scoring scripts often return json.dumps(...) of their answer
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError:
            pass
    return Prediction(body=answer, version=None, target=name)
