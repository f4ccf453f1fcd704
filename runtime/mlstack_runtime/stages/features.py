"""builtin/features: a ColumnTransformer from ``with: {numeric: [...], categorical: [...]}``.

Numeric columns are median-imputed and standardised, categorical ones imputed with the most
frequent value and one-hot encoded (unknown categories ignored at prediction time). The
transformer is fitted on the training split only and ships inside the model (train puts it in
front of the estimator), so clients send raw rows. Without lists, numeric and non-numeric columns
other than the target are used.
"""

from __future__ import annotations

from typing import Any

from mlstack_runtime.artifacts import FEATURES_FITTED, FEATURES_META, TRAIN, read_table, write_json
from mlstack_runtime.errors import StageConfigError
from mlstack_runtime.estimators import build_preprocessor, close_match


def run(job: Any) -> dict[str, Any]:
    import joblib
    import pandas as pd

    train = read_table(job.require(TRAIN, "builtin/split"))
    target = job.target()
    numeric = list(job.setting("numeric") or [])
    categorical = list(job.setting("categorical") or [])
    if not numeric and not categorical:
        for c in train.columns:
            if c != target:
                is_num = pd.api.types.is_numeric_dtype(train[c])
                (numeric if is_num else categorical).append(str(c))
    columns = [str(c) for c in train.columns]
    for setting, listed in (("with.numeric", numeric), ("with.categorical", categorical)):
        missing = [c for c in listed if c not in columns]
        if missing:
            raise StageConfigError(
                setting,
                f"column(s) {', '.join(map(repr, missing))} not in the data"
                f"{close_match(str(missing[0]), columns)}",
                hint=f"columns: {', '.join(columns)}",
            )
        if target in listed:
            raise StageConfigError(setting, f"the target {target!r} cannot also be a feature")
    pre = build_preprocessor(numeric, categorical)
    pre.fit(train[numeric + categorical])
    joblib.dump(pre, job.output / FEATURES_FITTED)
    meta = {
        "numeric": numeric,
        "categorical": categorical,
        "columns": numeric + categorical,
        "outputs": int(len(pre.get_feature_names_out())),
    }
    write_json(job.output / FEATURES_META, meta)
    print(
        f"features: {len(numeric)} numeric, {len(categorical)} categorical "
        f"-> {meta['outputs']} model inputs (fitted on {len(train)} training rows)"
    )
    return meta
