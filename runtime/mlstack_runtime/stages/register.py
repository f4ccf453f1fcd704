"""builtin/register: names the model artifact and the metrics that go with it.

The registration itself is the backend's (the local backend registers in MLflow when the
engine applies ``model.<name>``; SageMaker's pipeline has a RegisterModel step), so a run
stopped at a gate never reaches a registry. The value says which upstream output is the model.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack_runtime.artifacts import METRICS_FILE, MODEL_META


def run(job: Any) -> dict[str, Any]:
    job.require(MODEL_META, "builtin/train")
    metrics: dict[str, float] = {}
    for m in reversed(job.find_all(METRICS_FILE)):  # nearest last: later stages' metrics win
        metrics.update(json.loads(m.read_text()))
    info = {
        "model": job.model_spec.get("name"),
        "model_stage": job.input_dir(MODEL_META),
        "metrics": metrics,
    }
    print(f"model ready for registration: {info['model']} (from stage {info['model_stage']})")
    return info
