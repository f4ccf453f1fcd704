"""builtin/tune: Optuna search over estimator parameters; the best ones flow to train.

``with: {trials: 20, metric: roc_auc, space: {max_depth: [2, 12], criterion: [gini, entropy]},
estimator: ..., params: {...}, seed: 0, timeout: 60}``. A space entry of two numbers is a range
(integers if both are integers; floats otherwise; ``{low, high, log: true}`` also works); any
other list is a set of choices. The estimator and base params default to those of the ``train``
stage that follows. Each trial fits features + estimator on the training split and scores on the
validation split (3-fold cross-validation on train when there is none). Writes
``best_params.json``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from mlstack.errors import BackendError
from mlstack.local.stages.common import (
    BEST_PARAMS,
    FEATURES_META,
    TRAIN,
    VALIDATION,
    StageConfigError,
    build_preprocessor,
    find_stage,
    read_table,
    target_of,
)

MINIMIZE = {"rmse", "mae", "log_loss"}


def suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, dict):
        lo, hi = spec["low"], spec["high"]
        if isinstance(lo, int) and isinstance(hi, int) and not spec.get("float"):
            return trial.suggest_int(name, lo, hi, log=bool(spec.get("log")))
        return trial.suggest_float(name, float(lo), float(hi), log=bool(spec.get("log")))
    if (
        isinstance(spec, list)
        and len(spec) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec)
    ):
        lo, hi = spec
        if isinstance(lo, int) and isinstance(hi, int):
            return trial.suggest_int(name, lo, hi)
        return trial.suggest_float(name, float(lo), float(hi))
    if isinstance(spec, list) and spec:
        return trial.suggest_categorical(name, spec)
    raise StageConfigError(
        f"with.space.{name}", "a search space must be [low, high] or [choices...]"
    )


def run(ctx: Any) -> dict[str, Any]:
    import optuna
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline

    from mlstack.local.stages.evaluate import classification_metrics, regression_metrics
    from mlstack.local.stages.train import DEFAULT_ESTIMATOR, make_estimator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train_stage = find_stage(ctx, "train", after=ctx.name) or {}
    tw = train_stage.get("with") or {}
    path = str(ctx.params.get("estimator") or tw.get("estimator") or DEFAULT_ESTIMATOR)
    base = {**(tw.get("params") or {}), **(ctx.params.get("params") or {})}
    space = ctx.params.get("space") or {}
    if not space:
        raise StageConfigError(
            "with.space", "tune needs a search space", hint="with: {space: {max_depth: [2, 12]}}"
        )
    trials = int(ctx.params.get("trials", 20))
    target = target_of(ctx)
    features = json.loads(ctx.require(FEATURES_META, "builtin/features").read_text())
    cols = features["columns"]
    train = read_table(ctx.require(TRAIN, "builtin/split"))
    val_path = ctx.find(VALIDATION)
    val = read_table(val_path) if val_path is not None else None
    pre = build_preprocessor(features["numeric"], features["categorical"])
    probe = make_estimator(path, base)
    from sklearn.base import is_classifier

    classifier = is_classifier(probe)
    metric = str(ctx.params.get("metric") or ("roc_auc" if classifier else "rmse"))
    direction: Literal["minimize", "maximize"] = "minimize" if metric in MINIMIZE else "maximize"

    def objective(trial: Any) -> float:
        params = {**base, **{k: suggest(trial, k, v) for k, v in space.items()}}
        model = Pipeline([("features", clone(pre)), ("model", make_estimator(path, params))])
        if val is not None and len(val):
            model.fit(train[cols], train[target])
            scorer = classification_metrics if classifier else regression_metrics
            scores = scorer(model, val[cols], val[target])
            if metric not in scores:
                raise BackendError(
                    f"tune: metric {metric!r} is not measured "
                    f"(measured: {', '.join(sorted(scores))})"
                )
            return scores[metric]
        sk = {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error"}.get(
            metric, metric
        )
        s = cross_val_score(model, train[cols], train[target], cv=3, scoring=sk).mean()
        return float(-s if sk.startswith("neg_") else s)

    sampler = optuna.samplers.TPESampler(seed=int(ctx.params.get("seed", 0)))
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.optimize(objective, n_trials=trials, timeout=ctx.params.get("timeout"))
    best = {
        "params": study.best_params,
        "value": study.best_value,
        "metric": metric,
        "trials": len(study.trials),
        "estimator": path,
    }
    (ctx.output / BEST_PARAMS).write_text(json.dumps(best, indent=1))
    ctx.metrics[f"tune_best_{metric}"] = float(study.best_value)
    print(
        f"tune: best {metric} = {study.best_value:.4f} with {study.best_params} "
        f"after {len(study.trials)} trials"
    )
    return best
