"""builtin/train: any scikit-learn-compatible estimator by import path, plus its params.

``with: {estimator: sklearn.ensemble.RandomForestClassifier, params: {...}}``; XGBoost
(``xgboost.XGBClassifier``) and LightGBM (``lightgbm.LGBMClassifier``) work when installed. Best
parameters from an earlier ``builtin/tune`` stage override ``params``. The output directory is
the model artifact: ``model.joblib`` (fitted features + estimator as one sklearn Pipeline) and
``mlstack-model.json`` (input columns and dtypes, target, task, classes).
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.local.stages.common import (
    BEST_PARAMS,
    FEATURES_FITTED,
    FEATURES_META,
    MODEL_FILE,
    MODEL_META,
    TRAIN,
    StageConfigError,
    dtype_name,
    import_object,
    is_classifier,
    read_table,
    target_of,
)

DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"


def make_estimator(path: str, params: dict[str, Any]) -> Any:
    """The estimator, its parameters checked before any data is touched."""
    cls = import_object(path, "estimator", "with.estimator")
    try:
        est = cls(**params)
    except TypeError as e:
        raise StageConfigError(
            "with.params", f"{path}: {e}", hint="check the names under `with: params:`"
        ) from None
    check = getattr(est, "_validate_params", None)  # scikit-learn >= 1.2 checks names and types
    if callable(check):
        from sklearn.utils._param_validation import InvalidParameterError

        try:
            check()
        except InvalidParameterError as e:
            raise StageConfigError(
                "with.params", str(e), hint="check the values under `with: params:`"
            ) from None
    return est


def run(ctx: Any) -> None:
    import joblib
    from sklearn.pipeline import Pipeline

    train = read_table(ctx.require(TRAIN, "builtin/split"))
    target = target_of(ctx)
    features = json.loads(ctx.require(FEATURES_META, "builtin/features").read_text())
    pre = joblib.load(ctx.require(FEATURES_FITTED, "builtin/features"))
    path = str(ctx.params.get("estimator") or DEFAULT_ESTIMATOR)
    params = dict(ctx.params.get("params") or {})
    best = ctx.find(BEST_PARAMS)
    if best is not None:
        tuned = json.loads(best.read_text())["params"]
        print(f"using tuned params: {tuned}")
        params.update(tuned)
    est = make_estimator(path, params)
    columns = features["columns"]
    x = pre.transform(train[columns])
    est.fit(x, train[target])
    model = Pipeline([("features", pre), ("model", est)])
    classifier = is_classifier(est)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(est, "classes_", [])]
    meta = {
        "columns": columns,
        "dtypes": {c: dtype_name(train[c]) for c in columns},
        "target": target,
        "task": "classification" if classifier else "regression",
        "classes": classes if classifier else [],
        "estimator": path,
        "params": params,
        "rows": int(len(train)),
        "format": "mlstack-model/1",
    }
    joblib.dump(model, ctx.output / MODEL_FILE)
    (ctx.output / MODEL_META).write_text(json.dumps(meta, indent=1, default=str))
    print(f"trained {path} on {len(train)} rows ({meta['task']})")
    return None
