"""The built-in stages: ``run(job) -> value`` in a module named after each kind.

``PRELOAD`` lists what each kind imports, so a long-lived process (the local runner's zygote)
imports it once for a whole run instead of once per stage.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

KINDS = ("ingest", "validate", "split", "features", "train", "tune", "evaluate", "register")
# each kind's ``with:`` settings, inputs and outputs: ``mlstack_runtime.settings.STAGES``

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


def run(kind: str, job: Any) -> Any:
    """Run the built-in stage ``kind`` on ``job``; its metrics are left in ``job.metrics``."""
    if kind not in KINDS:
        from mlstack_runtime.errors import StageConfigError

        raise StageConfigError("uses", f"builtin/{kind} is not a built-in stage")
    from mlstack_runtime.settings import check

    check(kind, job.params)
    return import_module(f"mlstack_runtime.stages.{kind}").run(job)
