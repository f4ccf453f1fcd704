"""builtin/evaluate: metrics of the trained model on the test split.

Writes ``evaluation.json`` (``{"metrics": {...}, "gates": [...], "rows": n}``; a SageMaker
condition step reads ``metrics.<name>`` from it) and leaves the metrics in ``job.metrics``.
Whether the stage's gates pass is the backend's decision: the champion's metrics live in its
registry (the local backend checks them right after this stage; SageMaker in a condition step).
"""

from __future__ import annotations

import json
from typing import Any

from mlstack_runtime.artifacts import (
    EVALUATION,
    MODEL_FILE,
    MODEL_META,
    TEST,
    read_table,
    write_json,
)
from mlstack_runtime.metrics import score


def run(job: Any) -> dict[str, Any]:
    import joblib

    meta_path = job.require(MODEL_META, "builtin/train")
    meta = json.loads(meta_path.read_text())
    model = joblib.load(meta_path.parent / MODEL_FILE)
    test = read_table(job.require(TEST, "builtin/split"))
    x, y = test[meta["columns"]], test[meta["target"]]
    job.metrics.update(score(model, x, y, meta.get("task") != "regression"))
    for k, v in sorted(job.metrics.items()):
        print(f"{k} = {v:.4f}")
    report = {
        "metrics": dict(job.metrics),
        "gates": list(job.stage.get("gates") or []),
        "rows": int(len(test)),
    }
    write_json(job.output / EVALUATION, report, sort_keys=True)
    return report
