"""SageMaker's scikit-learn inference toolkit hooks, on top of ``mlstack_runtime.serving``.

The toolkit imports the module named by ``SAGEMAKER_PROGRAM`` and calls ``model_fn(model_dir)``
once, then ``input_fn(body, content_type)``, ``predict_fn(data, model)`` and
``output_fn(prediction, accept)`` per request. Bodies: V1 / V2 JSON or CSV (see ``serving``).
A bad input raises ``ValueError`` (the toolkit answers 4xx-like errors with its message).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlstack_runtime import serving


def model_fn(model_dir: str) -> serving.LoadedModel:
    return serving.load(Path(model_dir))


def input_fn(body: Any, content_type: str = "application/json") -> dict[str, Any]:
    return {"body": body, "content_type": content_type}


def predict_fn(data: dict[str, Any], model: serving.LoadedModel) -> dict[str, Any]:
    rows = serving.decode(data["body"], data["content_type"], model.meta)
    return serving.encode(serving.predict(model, rows))


def output_fn(prediction: dict[str, Any], accept: str = "application/json") -> str:
    return json.dumps(prediction)
