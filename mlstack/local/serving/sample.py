"""A tiny churn-like model in the artifact format, for smoke tests, benchmarks and examples.

``write_sample_model(path)`` trains a real scikit-learn Pipeline (ColumnTransformer + logistic
regression) on synthetic rows and saves it as the artifact contract says. ``broken=True`` saves a
model that loads and reports ready but fails on every prediction (a corrupted coefficient
array), which is what a bad release looks like to the rollout controller.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlstack_runtime.serving import META_FILE, MODEL_FILE

COLUMNS = ["tenure", "monthly_charges", "contract"]
DTYPES = {"tenure": "int", "monthly_charges": "float", "contract": "str"}
CONTRACTS = ["monthly", "yearly", "two_year"]


def sample_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rnd = random.Random(seed)
    return [
        {
            "tenure": rnd.randint(0, 72),
            "monthly_charges": round(rnd.uniform(18, 120), 2),
            "contract": rnd.choice(CONTRACTS),
        }
        for _ in range(n)
    ]


def write_sample_model(
    path: Path, *, seed: int = 0, broken: bool = False, c: float = 1.0, light: bool = False
) -> str:
    """Train and save; returns the artifact digest ``sha256:<hex>``."""
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rows = sample_rows(400, seed)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    y = [int(r["contract"] == "monthly" and r["tenure"] < 24) for r in rows]
    encoder = OneHotEncoder(handle_unknown="ignore")
    features = ColumnTransformer(
        [("num", StandardScaler(), ["tenure", "monthly_charges"]), ("cat", encoder, ["contract"])]
    )
    columns = COLUMNS
    if light:
        # numeric columns straight into the estimator: several times cheaper per request, for
        # benchmarks where the model should not hide the cost of what is in front of it
        columns = ["tenure", "monthly_charges"]
        frame = frame[columns]
        model = Pipeline([("clf", LogisticRegression(C=c, max_iter=200))])
    else:
        model = Pipeline([("features", features), ("clf", LogisticRegression(C=c, max_iter=200))])
    model.fit(frame, y)
    if broken:
        # a corrupted artifact: loads and reports ready, raises inside every prediction
        model.named_steps["clf"].coef_ = None
    path.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path / MODEL_FILE)
    meta = {
        "columns": columns,
        "dtypes": {k: DTYPES[k] for k in columns},
        "target": "churn",
        "task": "classification",
        "classes": [0, 1],
    }
    (path / META_FILE).write_text(json.dumps(meta, indent=2))
    return artifact_digest(path)


def artifact_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return "sha256:" + h.hexdigest()
