"""Calling a deployed model: a signed ``InvokeEndpoint`` (sagemaker-runtime) through boto3.

The body is sent as JSON (``application/json``, the first of the content types each model
package declares, ``pipeline_definition.CONTENT_TYPES``; the hooks also take ``text/csv``), and
JSON is asked for; the container's ``input_fn`` takes V1's ``instances`` (rows) and answers
``{"predictions": [...]}``. The endpoint is described first so
that a missing or not-yet-serving endpoint is a clear error rather than AWS's generic one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Prediction
from mlstack.errors import BackendError
from mlstack_sagemaker.pipeline_definition import CONTENT_TYPES, RESPONSE_TYPES

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform

REQUEST_CONTENT_TYPE = CONTENT_TYPES[0]
RESPONSE_CONTENT_TYPE = RESPONSE_TYPES[0]


def predict(
    platform: Platform, endpoint: str, body: Mapping[str, Any], timeout: float
) -> Prediction:
    name = platform.endpoint_name(endpoint)
    env = platform.project.environment
    described = platform.aws.exists("sagemaker", "describe_endpoint", EndpointName=name)
    if described is None:
        raise BackendError(
            f"SageMaker endpoint {name} does not exist", hint=f"mlstack apply -e {env}"
        )
    if described.get("EndpointStatus") not in ("InService", "Updating"):
        raise BackendError(
            f"SageMaker endpoint {name} is {described.get('EndpointStatus')}, not serving",
            hint=f"mlstack status -e {env}",
        )
    resp = platform.aws.call(
        "sagemaker-runtime",
        "invoke_endpoint",
        read_timeout=timeout,
        EndpointName=name,
        ContentType=REQUEST_CONTENT_TYPE,
        Accept=RESPONSE_CONTENT_TYPE,
        Body=json.dumps(body).encode(),
    )
    raw = resp["Body"].read()
    try:
        answer = json.loads(raw)
    except ValueError:
        raise BackendError(
            f"SageMaker endpoint {name} answered with something that is not JSON: {raw[:200]!r}"
        ) from None
    variant = str(resp.get("InvokedProductionVariant") or "")
    return Prediction(
        body=answer, version=variant.removeprefix("v") or None, target=f"{name} (InvokeEndpoint)"
    )
