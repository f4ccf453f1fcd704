"""The built-in stages' ``with:`` settings, what each reads and writes: declared once.

Each stage reads its settings from ``job.params`` by the keys declared here, ``check`` refuses a
key no stage reads (with a did-you-mean) before the stage starts, mlstack's ``validate`` reports
the same at the key's line, and ``docs/reference/stages.md`` is generated from this table. A
stage that starts reading a new key without declaring it fails ``runtime/tests`` and
``tests/unit/docs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from mlstack_runtime import artifacts as a
from mlstack_runtime.errors import StageConfigError


@dataclass(frozen=True)
class Setting:
    key: str
    default: str  # what the stage uses when the key is unset, as people read it
    text: str


@dataclass(frozen=True)
class StageInfo:
    kind: str
    summary: str
    settings: tuple[Setting, ...]
    reads: tuple[str, ...]  # files from upstream stages (and the project's sections it reads)
    writes: tuple[str, ...]
    metrics: str = ""  # what it leaves in the run's metrics


_TARGET = Setting(
    "target", "`data.target`", "the column the model predicts, when `data.target` is unset"
)

STAGES: dict[str, StageInfo] = {
    s.kind: s
    for s in (
        StageInfo(
            "ingest",
            "Reads the data (CSV, Parquet, JSON or JSON lines; several files matched by a glob "
            "are concatenated) and records its digest.",
            (
                Setting("source", "`data.source`", "where the data is, when `data:` has none"),
                Setting(
                    "format",
                    "`data.format`, else from the file name",
                    "csv, parquet or json",
                ),
            ),
            ("`data.source` (or the folder the platform mounts)",),
            (a.TABLE, a.DATASET),
        ),
        StageInfo(
            "validate",
            "Checks `data.expectations` (and its `_table` rules) on the ingested table; every "
            "violation is reported at once and any violation stops the run.",
            (),
            (a.TABLE, "`data.expectations`"),
            (a.VALIDATION_REPORT,),
        ),
        StageInfo(
            "split",
            "Divides the rows into train, validation and test, seeded. `data.split` gives the "
            "settings; `with:` overrides any of them.",
            (
                Setting(
                    "strategy",
                    "`data.split.strategy` (random)",
                    "random, stratified (by `by`) or time (newest rows by `by` are the test rows)",
                ),
                Setting("by", "`data.split.by`", "the column of a stratified or time split"),
                Setting("test", "`data.split.test` (0.2)", "share of rows for evaluate"),
                Setting(
                    "validation",
                    "`data.split.validation` (0)",
                    "share of rows tune scores on (0: tune cross-validates)",
                ),
                Setting("seed", "`data.split.seed` (0)", "random seed"),
            ),
            (a.TABLE, "`data.split`"),
            (a.TRAIN, a.VALIDATION, a.TEST, a.SPLIT_INFO),
        ),
        StageInfo(
            "features",
            "Builds the feature transformer: numeric columns median-imputed and standardised, "
            "categorical ones imputed with the most frequent value and one-hot encoded (unknown "
            "categories ignored when serving). Fitted on the training rows only; train puts it "
            "in front of the estimator, so clients send raw rows.",
            (
                Setting(
                    "numeric",
                    "the numeric columns other than the target",
                    "numeric feature columns",
                ),
                Setting(
                    "categorical",
                    "the non-numeric columns other than the target",
                    "categorical feature columns",
                ),
                _TARGET,
            ),
            (a.TRAIN,),
            (a.FEATURES_META, a.FEATURES_FITTED),
        ),
        StageInfo(
            "tune",
            "Searches the estimator's parameters: `trials` candidates drawn with the seed from "
            "`space`, each fitted on the training rows and scored on the validation rows (3-fold "
            "cross-validation on the training rows when there are none); the first best wins. "
            "The `train` stage that needs it uses the best parameters over its own `params`.",
            (
                Setting(
                    "space",
                    "required",
                    "the search space: `name: [low, high]` (integers if both are, else floats), "
                    "`name: {low, high, log: true}`, or `name: [choice, ...]`",
                ),
                Setting("trials", "20", "candidates tried"),
                Setting(
                    "metric",
                    "roc_auc (classification), rmse (regression)",
                    "what is optimised (rmse, mae and log_loss are minimised, others maximised)",
                ),
                Setting("seed", "0", "seed of the candidates"),
                Setting(
                    "estimator",
                    "the following train stage's",
                    "estimator class by import path",
                ),
                Setting(
                    "params",
                    "the following train stage's",
                    "fixed parameters each candidate adds to",
                ),
                _TARGET,
            ),
            (a.FEATURES_META, a.TRAIN, a.VALIDATION),
            (a.BEST_PARAMS,),
            "`tune_best_<metric>`: the best candidate's score",
        ),
        StageInfo(
            "train",
            "Fits any scikit-learn-compatible estimator by import path (XGBoost and LightGBM "
            "where installed) on the training rows; the model is the fitted features and "
            "estimator as one scikit-learn Pipeline.",
            (
                Setting(
                    "estimator",
                    "sklearn.ensemble.RandomForestClassifier",
                    "estimator class by import path, e.g. sklearn.linear_model.Ridge",
                ),
                Setting(
                    "params",
                    "{}",
                    "the estimator's parameters; an upstream tune stage's best ones override them",
                ),
                _TARGET,
            ),
            (a.TRAIN, a.FEATURES_META, a.FEATURES_FITTED, f"{a.BEST_PARAMS} (if tuned)"),
            (a.MODEL_FILE, a.MODEL_META),
        ),
        StageInfo(
            "evaluate",
            "Scores the trained model on the test rows. The stage's `gates:` (e.g. "
            "`accuracy >= 0.9`, `f1 >= champion.f1`) are judged on these metrics; a failed gate "
            "stops the run before anything is registered.",
            (),
            (a.MODEL_FILE, a.MODEL_META, a.TEST),
            (a.EVALUATION,),
            "the task's metrics (below)",
        ),
        StageInfo(
            "register",
            "Names the model artifact and gathers the run's metrics; the backend registers the "
            "version (MLflow, SageMaker Model Registry, Vertex Model Registry, Azure ML models) "
            "with `model.register.aliases`.",
            (),
            (a.MODEL_META, f"every upstream {a.METRICS_FILE}"),
            (),
        ),
    )
}


def keys(kind: str) -> tuple[str, ...]:
    info = STAGES.get(kind)
    return tuple(s.key for s in info.settings) if info else ()


def unknown(kind: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each ``with:`` key the built-in stage ``kind`` does not read."""
    import difflib

    known = keys(kind)
    out = []
    for key in params:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        mean = f" (did you mean {close[0]!r}?)" if close else ""
        takes = f"it takes {', '.join(known)}" if known else "it takes no settings"
        out.append((str(key), f"builtin/{kind} has no setting {key!r}{mean}; {takes}"))
    return out


def check(kind: str, params: Optional[dict[str, Any]]) -> None:
    """Refuse a ``with:`` key the built-in stage does not read, before it touches any data."""
    for key, message in unknown(kind, dict(params or {})):
        raise StageConfigError(f"with.{key}", message, hint="see docs/reference/stages.md")
