"""The scoring script of mlstack's managed online deployments (Azure ML's ``init``/``run``).

Azure ML's inference server (``azureml-inference-server-http``, part of the curated
scikit-learn environment) imports this file from the deployment's code asset, calls ``init()``
once with ``AZUREML_MODEL_DIR`` naming where the registered model was mounted, then ``run(body)``
with each request's body as a string. Everything else is the shared runtime's serving hooks
(``mlstack_runtime.serving``, shipped in the same code asset): the same decoding, prediction and
answer as the local model server and SageMaker's toolkit.

A model registered from a folder is mounted as ``$AZUREML_MODEL_DIR/<folder name>``, so the
artifact is looked for there too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlstack_runtime import serving

_model: serving.LoadedModel | None = None


def model_dir(root: Path) -> Path:
    """The folder holding the artifact: ``root`` itself, or its one sub-folder that holds it."""
    if (root / serving.META_FILE).is_file():
        return root
    found = sorted(p.parent for p in root.glob(f"*/{serving.META_FILE}"))
    if len(found) != 1:
        raise serving.ModelError(
            f"{root}: expected one model artifact ({serving.META_FILE}), found {len(found)}"
        )
    return found[0]


def init() -> None:
    global _model
    _model = serving.load(model_dir(Path(os.environ["AZUREML_MODEL_DIR"])))


def _bad_request(message: str) -> Any:
    """A 400 answer where the inference server offers one; else an error (the server's 500)."""
    try:
        from azureml_inference_server_http.api.aml_response import AMLResponse
    except ImportError:
        raise ValueError(message) from None
    return AMLResponse({"error": message}, 400, json_str=True)


def run(raw_data: str) -> Any:
    if _model is None:
        raise serving.ModelError("init() was not called")
    try:
        rows = serving.decode(raw_data, "application/json", _model.meta)
        preds = serving.predict(_model, rows)
    except serving.BadInput as e:
        return _bad_request(str(e))
    return serving.encode(preds)
