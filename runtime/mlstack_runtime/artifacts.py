"""The files stages hand to each other, and how tables are stored (Parquet, index kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlstack_runtime.errors import StageError

TABLE = "table.parquet"
TRAIN, VALIDATION, TEST = "train.parquet", "validation.parquet", "test.parquet"
DATASET = "dataset.json"
VALIDATION_REPORT = "validation.json"
SPLIT_INFO = "split.json"
FEATURES_META = "features.json"
FEATURES_FITTED = "features.joblib"
BEST_PARAMS = "best_params.json"
MODEL_FILE = "model.joblib"
MODEL_META = "mlstack-model.json"
EVALUATION = "evaluation.json"
METRICS_FILE = "metrics.json"
RETURN_FILE = "return.json"
MODEL_FORMAT = "mlstack-model/1"


def read_table(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


def write_table(df: Any, path: Path) -> None:
    try:
        df.to_parquet(path, index=True)
    except ImportError as e:  # pandas without pyarrow: say which package the image lacks
        raise StageError(
            f"cannot write {path.name}: {e}", hint="install pyarrow in the job's image"
        ) from None


def write_json(path: Path, value: Any, indent: Any = 1, sort_keys: bool = False) -> None:
    path.write_text(json.dumps(value, indent=indent, sort_keys=sort_keys, default=str))


def finish(output: Path, value: Any, metrics: dict[str, Any]) -> None:
    """What every stage leaves beside its own files: its metrics and its return value, written
    the same way on every platform (they are part of the output's digest)."""
    if metrics:
        (output / METRICS_FILE).write_text(json.dumps(metrics, sort_keys=True))
    if value is not None:
        (output / RETURN_FILE).write_text(json.dumps(value))
