"""builtin/train: any scikit-learn-compatible estimator by import path, plus its params.

``with: {estimator: sklearn.ensemble.RandomForestClassifier, params: {...}}``; XGBoost
(``xgboost.XGBClassifier``) and LightGBM (``lightgbm.LGBMClassifier``) work where installed. Best
parameters from an earlier ``builtin/tune`` stage override ``params``. The output directory is
the model artifact: ``model.joblib`` (fitted features + estimator as one sklearn Pipeline) and
``mlstack-model.json`` (input columns and dtypes, target, task, classes).
"""

from __future__ import annotations

import json
from typing import Any

from mlstack_runtime.artifacts import (
    BEST_PARAMS,
    FEATURES_FITTED,
    FEATURES_META,
    MODEL_FILE,
    MODEL_FORMAT,
    MODEL_META,
    TRAIN,
    read_table,
    write_json,
)
from mlstack_runtime.estimators import (
    DEFAULT_ESTIMATOR,
    dtype_name,
    is_classifier,
    make_estimator,
    plain,
)


def run(job: Any) -> None:
    import joblib
    from sklearn.pipeline import Pipeline

    train = read_table(job.require(TRAIN, "builtin/split"))
    target = job.target()
    features = json.loads(job.require(FEATURES_META, "builtin/features").read_text())
    pre = joblib.load(job.require(FEATURES_FITTED, "builtin/features"))
    path = str(job.setting("estimator") or DEFAULT_ESTIMATOR)
    params = dict(job.setting("params") or {})
    best = job.find(BEST_PARAMS)
    if best is not None:
        tuned = json.loads(best.read_text())["params"]
        print(f"using tuned params: {tuned}")
        params.update(tuned)
    est = make_estimator(path, params)
    columns = features["columns"]
    est.fit(pre.transform(train[columns]), train[target])
    model = Pipeline([("features", pre), ("model", est)])
    classifier = is_classifier(est)
    meta = {
        "columns": columns,
        "dtypes": {c: dtype_name(train[c]) for c in columns},
        "target": target,
        "task": "classification" if classifier else "regression",
        "classes": [plain(c) for c in getattr(est, "classes_", [])] if classifier else [],
        "estimator": path,
        "params": params,
        "rows": int(len(train)),
        "format": MODEL_FORMAT,
    }
    joblib.dump(model, job.output / MODEL_FILE)
    write_json(job.output / MODEL_META, meta)
    print(f"trained {path} on {len(train)} rows ({meta['task']})")
    return None
