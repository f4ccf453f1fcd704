"""Estimators by import path, the features transformer, and small facts about columns."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from mlstack_runtime.errors import StageConfigError, StageError

DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"


def close_match(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` when one of ``choices`` is close to ``word``, else ``''``."""
    hits = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {hits[0]!r}?)" if hits else ""


def import_object(path: str, what: str, setting: str) -> Any:
    """``sklearn.ensemble.RandomForestClassifier`` -> the class, with a hint when missing."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
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
                "(into the environment that runs the stage)",
            ) from None
        raise StageError(f"cannot import {what} {path!r}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise StageConfigError(
            setting, f"{module_name} has no {attr!r}{close_match(attr, public)}"
        ) from None


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


def build_preprocessor(numeric: list[str], categorical: list[str]) -> Any:
    """Numeric: median-imputed and standardised; categorical: most frequent value, one-hot."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        parts.append(("numeric", Pipeline(steps), list(numeric)))
    if categorical:
        steps = [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
        parts.append(("categorical", Pipeline(steps), list(categorical)))
    if not parts:
        raise StageError(
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


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
