"""Helpers the built-in stages share: reading tables, building estimators and transformers."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from mlstack.errors import BackendError

TABLE = "table.parquet"
TRAIN, VALIDATION, TEST = "train.parquet", "validation.parquet", "test.parquet"
FEATURES_META = "features.json"
FEATURES_FITTED = "features.joblib"
BEST_PARAMS = "best_params.json"
MODEL_FILE = "model.joblib"
MODEL_META = "mlstack-model.json"


class StageConfigError(BackendError):
    """A stage's settings are wrong (``setting`` is its path under the stage, e.g.
    ``with.estimator``): the same input fails the same way, so it is never retried."""

    def __init__(self, setting: str, message: str, hint: str | None = None) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}", hint=hint)


def read_table(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


def write_table(df: Any, path: Path) -> None:
    df.to_parquet(path, index=True)


def target_of(ctx: Any) -> str:
    target = ctx.data.get("target") or ctx.params.get("target")
    if not target:
        raise BackendError(
            f"stage {ctx.name!r} needs to know the target column",
            hint="set data.target in mlstack.yaml",
        )
    return str(target)


def import_object(path: str, what: str, setting: str) -> Any:
    """``sklearn.ensemble.RandomForestClassifier`` -> the class, with a hint when missing."""
    module_name, _, attr = path.rpartition(".")
    if ":" in path:
        module_name, _, attr = path.partition(":")
    if not module_name:
        raise StageConfigError(
            setting,
            f"{what} {path!r} is not an import path",
            hint="write it like sklearn.ensemble.RandomForestClassifier",
        )
    try:
        module = import_module(module_name)
    except ImportError as e:
        top = module_name.split(".")[0]
        # a missing module is a setting to fix; an import that fails inside an installed
        # package is a broken environment, and is reported as such
        if isinstance(e, ModuleNotFoundError) and e.name and module_name.startswith(e.name):
            raise StageConfigError(
                setting,
                f"cannot import {what} {path!r}: {e}",
                hint=f"fix the import path, or pip install {top} "
                "(into the environment that runs mlstack)",
            ) from None
        raise BackendError(f"cannot import {what} {path!r}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        from mlstack.manifest.suggest import did_you_mean

        public = [n for n in dir(module) if not n.startswith("_")]
        raise StageConfigError(
            setting, f"{module_name} has no {attr!r}{did_you_mean(attr, public)}"
        ) from None


def build_preprocessor(numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                list(numeric),
            )
        )
    if categorical:
        parts.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                list(categorical),
            )
        )
    if not parts:
        raise BackendError(
            "the features stage has no columns to use",
            hint="list them under `with: {numeric: [...], categorical: [...]}`",
        )
    return ColumnTransformer(parts, remainder="drop")


def is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier as _is

    return bool(_is(estimator))


def dtype_name(series: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_numeric_dtype(series):
        return "float"
    return "str"


def find_stage(ctx: Any, kind: str, after: str | None = None) -> dict[str, Any] | None:
    """A stage of ``kind`` in the pipeline (the first that depends on ``after`` if given)."""
    stages = ctx.pipeline.get("stages", [])
    for s in stages:
        if s.get("kind") == kind and (after is None or after in _ancestors(stages, s["name"])):
            return dict(s)
    return None


def _ancestors(stages: list[dict[str, Any]], name: str) -> set[str]:
    needs = {s["name"]: s.get("needs", []) for s in stages}
    seen: set[str] = set()
    todo = list(needs.get(name, []))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(needs.get(n, []))
    return seen
