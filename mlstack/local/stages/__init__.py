"""Built-in stages. Each is ``run(ctx: StageContext) -> value`` in a module named after it.

``PRELOAD`` lists what each kind imports, so the zygote imports it once for the whole run
instead of once per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

_BASE = ("numpy", "pandas", "pyarrow.parquet", "joblib")
_SK = (
    *_BASE,
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
)
PRELOAD: dict[str, tuple[str, ...]] = {
    "ingest": _BASE,
    "validate": (*_BASE, "pandera.pandas"),
    "split": (*_BASE, "sklearn.model_selection"),
    "features": _SK,
    "train": _SK,
    "tune": (*_SK, "optuna", "sklearn.model_selection", "sklearn.metrics"),
    "evaluate": (*_SK, "sklearn.metrics"),
    "register": (),
}


def builtin(kind: str) -> Callable[[Any], Any]:
    module = import_module(f"mlstack.local.stages.{kind}")
    fn: Callable[[Any], Any] = module.run
    return fn
