"""builtin/tune: a seeded search over estimator parameters; the best ones flow to train.

``with: {trials: 20, metric: roc_auc, space: {max_depth: [2, 12], criterion: [gini, entropy]},
estimator: ..., params: {...}, seed: 0}``. A space entry of two numbers is a range (integers if
both are integers; floats otherwise; ``{low, high, log: true}`` also works); any other list is a
set of choices (see ``mlstack_runtime.search``). The estimator and base params default to those
of the ``train`` stage that follows. Each trial fits features + estimator on the training split
and scores on the validation split (3-fold cross-validation on train when there is none).
Writes ``best_params.json``.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack_runtime.artifacts import (
    BEST_PARAMS,
    FEATURES_META,
    TRAIN,
    VALIDATION,
    read_table,
    write_json,
)
from mlstack_runtime.errors import StageConfigError, StageError
from mlstack_runtime.estimators import (
    DEFAULT_ESTIMATOR,
    build_preprocessor,
    is_classifier,
    make_estimator,
    plain,
)
from mlstack_runtime.metrics import MINIMIZE, score
from mlstack_runtime.search import candidates, search

CV_SCORERS = {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error"}


def run(job: Any) -> dict[str, Any]:
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline

    follows = dict(job.following("train").get("with") or {})
    path = str(job.setting("estimator") or follows.get("estimator") or DEFAULT_ESTIMATOR)
    base = {**(follows.get("params") or {}), **(job.setting("params") or {})}
    space = dict(job.setting("space") or {})
    if not space:
        raise StageConfigError(
            "with.space", "tune needs a search space", hint="with: {space: {max_depth: [2, 12]}}"
        )
    trials = int(job.setting("trials", 20))
    target = job.target()
    features = json.loads(job.require(FEATURES_META, "builtin/features").read_text())
    cols = features["columns"]
    train = read_table(job.require(TRAIN, "builtin/split"))
    val_path = job.find(VALIDATION)
    val = read_table(val_path) if val_path is not None else None
    pre = build_preprocessor(features["numeric"], features["categorical"])
    classifier = is_classifier(make_estimator(path, base))
    metric = str(job.setting("metric") or ("roc_auc" if classifier else "rmse"))

    def objective(params: dict[str, Any]) -> float:
        est = make_estimator(path, {**base, **params})
        model = Pipeline([("features", clone(pre)), ("model", est)])
        if val is not None and len(val):
            model.fit(train[cols], train[target])
            scores = score(model, val[cols], val[target], classifier)
            if metric not in scores:
                raise StageError(
                    f"tune: metric {metric!r} is not measured "
                    f"(measured: {', '.join(sorted(scores))})"
                )
            return scores[metric]
        sk = CV_SCORERS.get(metric, metric)
        s = cross_val_score(model, train[cols], train[target], cv=3, scoring=sk).mean()
        return float(-s if sk.startswith("neg_") else s)

    found = search(
        candidates(space, trials, int(job.setting("seed", 0))), objective, metric in MINIMIZE
    )
    best = {
        "params": {k: plain(v) for k, v in found["params"].items()},
        "value": found["value"],
        "metric": metric,
        "trials": found["trials"],
        "estimator": path,
    }
    write_json(job.output / BEST_PARAMS, best)
    job.metrics[f"tune_best_{metric}"] = float(found["value"])
    print(
        f"tune: best {metric} = {found['value']:.4f} with {best['params']} "
        f"after {found['trials']} trials ({found['driver']})"
    )
    return best
