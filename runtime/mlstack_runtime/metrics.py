"""Model quality on a labelled table: classification and regression metrics.

Classification: accuracy, f1, precision, recall (binary, or weighted averages for more classes)
and roc_auc (when the model gives probabilities). Regression: rmse, mae, r2.
"""

from __future__ import annotations

from typing import Any

MINIMIZE = frozenset({"rmse", "mae", "log_loss"})

# What each task reports (evaluate, tune's `metric`, gates), with what it means.
CLASSIFICATION: dict[str, str] = {
    "accuracy": "share of test rows predicted right",
    "f1": "harmonic mean of precision and recall (binary: the larger label is positive; more "
    "classes: weighted by class size)",
    "precision": "share of predicted positives that are positive (averaged as f1)",
    "recall": "share of positives predicted positive (averaged as f1)",
    "roc_auc": "area under the ROC curve from predict_proba (more classes: one-vs-rest, "
    "weighted); only for estimators with predict_proba",
}
REGRESSION: dict[str, str] = {
    "rmse": "root mean squared error (lower is better)",
    "mae": "mean absolute error (lower is better)",
    "r2": "coefficient of determination (1 is perfect)",
}


def classification_metrics(model: Any, x: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    classes = np.unique(y)
    binary = len(classes) <= 2
    avg = "binary" if binary else "weighted"
    pos = {"pos_label": classes.max()} if binary and len(classes) == 2 else {}
    out = {"accuracy": m.accuracy_score(y, pred)}
    if len(classes) < 2:
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


def score(model: Any, x: Any, y: Any, classifier: bool) -> dict[str, float]:
    return (classification_metrics if classifier else regression_metrics)(model, x, y)
