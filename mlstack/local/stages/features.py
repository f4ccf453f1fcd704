"""builtin/features: a ColumnTransformer from ``with: {numeric: [...], categorical: [...]}``.

Numeric columns are median-imputed and standardised, categorical ones imputed with the most
frequent value and one-hot encoded (unknown categories ignored at prediction time). The
transformer is fitted on the training split only and ships inside the model (train puts it in
front of the estimator), so clients send raw rows. Without lists, numeric and non-numeric columns
other than the target are used.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.local.stages.common import (
    FEATURES_FITTED,
    FEATURES_META,
    TRAIN,
    StageConfigError,
    build_preprocessor,
    read_table,
    target_of,
)


def run(ctx: Any) -> dict[str, Any]:
    import joblib
    import pandas as pd

    train = read_table(ctx.require(TRAIN, "builtin/split"))
    target = target_of(ctx)
    numeric = list(ctx.params.get("numeric") or [])
    categorical = list(ctx.params.get("categorical") or [])
    if not numeric and not categorical:
        for c in train.columns:
            if c == target:
                continue
            is_num = pd.api.types.is_numeric_dtype(train[c])
            (numeric if is_num else categorical).append(str(c))
    from mlstack.manifest.suggest import did_you_mean

    columns = [str(c) for c in train.columns]
    for setting, listed in (("with.numeric", numeric), ("with.categorical", categorical)):
        missing = [c for c in listed if c not in columns]
        if missing:
            raise StageConfigError(
                setting,
                f"column(s) {', '.join(map(repr, missing))} not in the data"
                f"{did_you_mean(str(missing[0]), columns)}",
                hint=f"columns: {', '.join(columns)}",
            )
        if target in listed:
            raise StageConfigError(setting, f"the target {target!r} cannot also be a feature")
    pre = build_preprocessor(numeric, categorical)
    pre.fit(train[numeric + categorical])
    joblib.dump(pre, ctx.output / FEATURES_FITTED)
    meta = {
        "numeric": numeric,
        "categorical": categorical,
        "columns": numeric + categorical,
        "outputs": int(len(pre.get_feature_names_out())),
    }
    (ctx.output / FEATURES_META).write_text(json.dumps(meta, indent=1))
    print(
        f"features: {len(numeric)} numeric, {len(categorical)} categorical "
        f"-> {meta['outputs']} model inputs (fitted on {len(train)} training rows)"
    )
    return meta
