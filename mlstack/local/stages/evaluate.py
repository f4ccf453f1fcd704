"""builtin/evaluate: metrics on the test split, then the stage's gates.

Classification: accuracy, f1, precision, recall (binary, or weighted averages for more classes)
and roc_auc (when the model gives probabilities). Regression: rmse, mae, r2. Gates such as
``roc_auc >= 0.9`` or ``roc_auc >= champion.roc_auc - 0.02`` are checked against these; the
champion's metrics come from the registry (a gate that refers to a champion passes while there is
none). A failing gate stops the run before ``register`` and says which gate and the value.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.errors import GateFailed, Problem
from mlstack.local.stages.common import MODEL_FILE, MODEL_META, TEST, read_table


def classification_metrics(model: Any, x: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    classes = np.unique(y)
    binary = len(classes) <= 2
    avg = "binary" if binary else "weighted"
    pos = {"pos_label": classes.max()} if binary and len(classes) == 2 else {}
    out = {"accuracy": m.accuracy_score(y, pred)}
    if binary and len(classes) < 2:
        return {k: float(v) for k, v in out.items()}
    out["f1"] = m.f1_score(y, pred, average=avg, zero_division=0, **pos)
    out["precision"] = m.precision_score(y, pred, average=avg, zero_division=0, **pos)
    out["recall"] = m.recall_score(y, pred, average=avg, zero_division=0, **pos)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        if binary:
            out["roc_auc"] = m.roc_auc_score(y, proba[:, -1])
        else:
            out["roc_auc"] = m.roc_auc_score(
                y, proba, multi_class="ovr", average="weighted", labels=list(model.classes_)
            )
    return {k: float(v) for k, v in out.items()}


def regression_metrics(model: Any, x: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    return {
        "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
        "mae": float(m.mean_absolute_error(y, pred)),
        "r2": float(m.r2_score(y, pred)),
    }


def check_gates(
    gates: list[str], metrics: dict[str, float], champion: dict[str, float] | None, stage: str
) -> list[str]:
    """Raise GateFailed naming every failing gate and its measured value; else the details."""
    from mlstack.manifest.gates import parse_gate

    failed: list[Problem] = []
    details: list[str] = []
    for text in gates:
        res = parse_gate(text).check(metrics, champion)
        details.append(f"gate `{text}`: {res.detail}")
        if not res.passed:
            failed.append(Problem(f"gate `{text}` failed: {res.detail}"))
    if failed:
        head = (
            f"stage {stage!r}: {len(failed)} gate{'s' if len(failed) != 1 else ''} failed; "
            "the model was not registered"
        )
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        raise GateFailed(head, problems=[Problem(head, hint=f"measured: {shown}"), *failed])
    return details


def run(ctx: Any) -> dict[str, Any]:
    import joblib

    meta_path = ctx.require(MODEL_META, "builtin/train")
    meta = json.loads(meta_path.read_text())
    model = joblib.load(meta_path.parent / MODEL_FILE)
    test = read_table(ctx.require(TEST, "builtin/split"))
    x, y = test[meta["columns"]], test[meta["target"]]
    if meta.get("task") == "regression":
        ctx.metrics.update(regression_metrics(model, x, y))
    else:
        ctx.metrics.update(classification_metrics(model, x, y))
    for k, v in sorted(ctx.metrics.items()):
        print(f"{k} = {v:.4f}")
    if ctx.champion:
        print("champion: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(ctx.champion.items())))
    details = check_gates(list(ctx.stage.get("gates") or []), ctx.metrics, ctx.champion, ctx.name)
    for d in details:
        print(d)
    return {"metrics": ctx.metrics, "gates": details, "rows": int(len(test))}
