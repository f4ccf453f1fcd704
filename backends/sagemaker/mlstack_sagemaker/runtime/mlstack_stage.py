"""Entry point inside SageMaker's scikit-learn containers for every mlstack stage.

Self-contained on purpose: the container has Python, pandas, numpy, scikit-learn and joblib but
not mlstack, so this file carries the built-in stages itself (and must stay importable on the
container's older Python and pandas: no 3.10+ syntax at runtime).

How SageMaker runs it (see ``pipeline_definition``):

- processing job: ``python3 mlstack_stage.py --stage NAME``. Each upstream stage's output is
  mounted at ``/opt/ml/processing/input/<stage>``, the data file at ``.../input/data``; whatever
  is written to ``/opt/ml/processing/output`` is uploaded to the stage's S3 prefix. An evaluate
  stage writes ``evaluation.json`` (``{"metrics": {...}}``) there: the pipeline's condition step
  reads ``metrics.<name>`` from it.
- training job (script mode): ``python mlstack_stage.py --mlstack_stage NAME ...``; upstream
  outputs are channels under ``/opt/ml/input/data/<stage>``, the model goes to ``SM_MODEL_DIR``
  and is uploaded as ``model.tar.gz``.
- endpoint: the inference toolkit imports this module and calls ``model_fn``, ``input_fn``,
  ``predict_fn`` and ``output_fn``.

The stage's definition (and the project's ``data:`` section) arrives as JSON in ``MLSTACK_SPEC``.
``MLSTACK_OPT_ML`` moves ``/opt/ml`` elsewhere, so the script can be exercised outside a container.
A stage that fails writes its reason to ``/opt/ml/output/failure`` (SageMaker shows it as the
job's failure reason) and exits with status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

MODEL_FILE = "model.joblib"
MODEL_META = "mlstack-model.json"
FEATURES_FITTED = "features.joblib"
FEATURES_META = "features.json"
BEST_PARAMS = "best_params.json"
EVALUATION = "evaluation.json"
METRICS_FILE = "metrics.json"
DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"
FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


class StageError(Exception):
    """A problem with the user's data or spec: reported as the job's failure reason."""


def opt_ml() -> Path:
    return Path(os.environ.get("MLSTACK_OPT_ML", "/opt/ml"))


# --- where a stage reads and writes ----------------------------------------------------------


class Job:
    def __init__(self, name: str, spec: dict[str, Any], training: bool) -> None:
        self.name = name
        self.spec = spec
        self.stage = spec.get("stage") or {}
        self.data = spec.get("data") or {}
        self.params = dict(self.stage.get("with") or {})
        root = opt_ml()
        if training:
            self.input_root = Path(os.environ.get("SM_INPUT_DIR", str(root / "input"))) / "data"
            self.output = Path(os.environ.get("SM_MODEL_DIR", str(root / "model")))
        else:
            self.input_root = root / "processing" / "input"
            self.output = root / "processing" / "output"
        self.output.mkdir(parents=True, exist_ok=True)
        # Upstream outputs, nearest stage first, so the latest version of a file wins.
        order = [str(n) for n in spec.get("inputs") or []]
        present = (
            sorted(p.name for p in self.input_root.iterdir()) if self.input_root.is_dir() else []
        )
        order += [n for n in present if n not in order and n not in ("code", "source")]
        self.inputs = [(n, self.input_root / n) for n in order if (self.input_root / n).is_dir()]
        self._unpacked: dict[str, Path] = {}

    def _dirs(self, name: str, path: Path) -> list[Path]:
        """The input's directory, plus the unpacked model.tar.gz a training job left there."""
        out = [path]
        archive = path / "model.tar.gz"
        if archive.is_file():
            if name not in self._unpacked:
                target = Path(tempfile.mkdtemp(prefix=f"mlstack-{name}-"))
                with tarfile.open(archive, "r:gz") as tar:
                    for member in tar.getmembers():
                        dest = (target / member.name).resolve()
                        if not str(dest).startswith(str(target.resolve())):
                            raise StageError(
                                f"{archive}: member {member.name!r} leaves the archive"
                            )
                    _extract(tar, target)
                self._unpacked[name] = target
            out.append(self._unpacked[name])
        return out

    def find(self, filename: str) -> Path | None:
        for name, path in self.inputs:
            for d in self._dirs(name, path):
                if (d / filename).is_file():
                    return d / filename
                hits = sorted(d.rglob(filename))
                if hits:
                    return hits[0]
        return None

    def require(self, filename: str, produced_by: str) -> Path:
        found = self.find(filename)
        if found is None:
            raise StageError(
                f"stage {self.name!r} needs {filename}, which no earlier stage produced; "
                f"add a {produced_by} stage before it and list it under `needs:`"
            )
        return found

    def find_table(self, stem: str) -> Path | None:
        return self.find(stem + ".parquet") or self.find(stem + ".pkl")

    def target(self) -> str:
        target = self.data.get("target") or self.params.get("target")
        if not target:
            raise StageError(f"stage {self.name!r} needs the target column: set data.target")
        return str(target)


def _extract(tar: tarfile.TarFile, target: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python versions with extraction filters
        tar.extractall(target, filter="data")
    else:
        tar.extractall(target)


def write_table(df: Any, directory: Path, stem: str) -> Path:
    """Parquet when the container has an engine for it, else pandas' pickle (keeps dtypes)."""
    try:
        path = directory / (stem + ".parquet")
        df.to_parquet(path, index=True)
        return path
    except ImportError:
        path = directory / (stem + ".pkl")
        df.to_pickle(path)
        return path


def read_table(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_pickle(path)


def import_object(path: str) -> Any:
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name:
        raise StageError(f"estimator {path!r} is not an import path (sklearn.ensemble.X)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise StageError(f"cannot import {path!r} in the container: {e}") from None
    if not hasattr(module, attr):
        raise StageError(f"{module_name} has no {attr!r}")
    return getattr(module, attr)


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
    return value.item() if hasattr(value, "item") else value


# --- built-in stages -------------------------------------------------------------------------


def ingest(job: Job) -> dict[str, Any]:
    import pandas as pd

    source = str(job.data.get("source") or job.params.get("source") or "")
    declared = job.data.get("format") or job.params.get("format")
    data_dir = job.input_root / "data"
    files = sorted(p for p in data_dir.rglob("*") if p.is_file()) if data_dir.is_dir() else []
    if not files:
        raise StageError(f"no data under {data_dir} (data.source {source!r})")

    def fmt_of(name: str) -> str | None:
        return declared or next((f for e, f in FORMATS.items() if name.lower().endswith(e)), None)

    fmt = fmt_of(source) or fmt_of(files[0].name)
    if fmt is None:
        raise StageError(f"cannot tell the format of {source!r}; set data.format")
    chosen = [f for f in files if declared or fmt_of(f.name) == fmt] or files
    h = hashlib.sha256()
    frames = []
    for f in chosen:
        raw = f.read_bytes()
        h.update(raw if len(chosen) == 1 else hashlib.sha256(raw).digest())
        buf = io.BytesIO(raw)
        try:
            if fmt == "csv":
                frames.append(pd.read_csv(buf))
            elif fmt == "parquet":
                frames.append(pd.read_parquet(buf))
            else:
                lines = f.name.endswith((".jsonl", ".ndjson")) or raw.lstrip()[:1] != b"["
                frames.append(pd.read_json(buf, lines=lines))
        except Exception as e:  # noqa: BLE001 - a parser error is the user's file: say which
            raise StageError(f"cannot parse {f.name} as {fmt}: {type(e).__name__}: {e}") from None
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    write_table(df, job.output, "table")
    info: dict[str, Any] = {
        "source": source,
        "format": fmt,
        "digest": "sha256:" + h.hexdigest(),
        "files": [f.name for f in chosen],
        "rows": int(len(df)),
        "schema": {str(c): str(t) for c, t in df.dtypes.items()},
    }
    (job.output / "dataset.json").write_text(json.dumps(info, indent=1))
    print(f"ingested {info['rows']} rows x {len(df.columns)} columns ({info['digest'][:19]})")
    return {"rows": info["rows"], "digest": info["digest"]}


def _type_ok(series: Any, kind: str) -> Any:
    import pandas as pd

    if kind == "int":
        if pd.api.types.is_integer_dtype(series):
            return pd.Series(True, index=series.index)
        n = pd.to_numeric(series, errors="coerce")
        return n.notna() & (n % 1 == 0)
    if kind == "float":
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            return pd.Series(True, index=series.index)
        return pd.to_numeric(series, errors="coerce").notna()
    if kind == "str":
        return series.map(lambda v: isinstance(v, str))
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            return pd.Series(True, index=series.index)
        return series.isin([True, False, 0, 1, "true", "false", "True", "False"])
    return pd.to_datetime(series, errors="coerce").notna()


def check_expectations(df: Any, expectations: dict[str, Any], table: dict[str, Any]) -> list[Any]:
    """Every violation of ``data.expectations`` as a sentence with example rows."""
    import pandas as pd

    problems = []

    def report(column: str, what: str, bad: Any) -> None:
        rows = df.index[bad.fillna(False).astype(bool)]
        if len(rows):
            examples = ", ".join(f"row {i}: {plain(df.at[i, column])!r}" for i in list(rows)[:3])
            s = "s" if len(rows) != 1 else ""
            problems.append(
                f"column {column!r}: {what}; {len(rows)} row{s} fail{'' if s else 's'}, "
                f"e.g. {examples}"
            )

    for column, rule in expectations.items():
        if column not in df.columns:
            problems.append(f"column {column!r}: missing from the data")
            continue
        s = df[column]
        present = s.notna()
        if rule.get("nullable") is False:
            report(column, "null values are not allowed", ~present)
        if rule.get("type"):
            report(
                column,
                f"values must be of type {rule['type']}",
                present & ~_type_ok(s, rule["type"]),
            )
        numeric = pd.to_numeric(s, errors="coerce")
        if rule.get("min") is not None:
            report(
                column,
                f"values must be >= {float(rule['min']):g}",
                present & ~(numeric >= float(rule["min"])),
            )
        if rule.get("max") is not None:
            report(
                column,
                f"values must be <= {float(rule['max']):g}",
                present & ~(numeric <= float(rule["max"])),
            )
        allowed = rule.get("in") if rule.get("in") is not None else rule.get("in_")
        if allowed is not None:
            report(
                column, f"values must be one of {list(allowed)}", present & ~s.isin(list(allowed))
            )
        if rule.get("regex"):
            ok = s.astype(str).str.fullmatch(rule["regex"])
            report(column, f"values must match {rule['regex']}", present & ~ok)
        if rule.get("unique"):
            report(column, "values must be unique", present & s.duplicated(keep=False))
    if table.get("min_rows") is not None and len(df) < int(table["min_rows"]):
        problems.append(
            f"table: at least {int(table['min_rows'])} rows are required (it has {len(df)})"
        )
    if table.get("max_rows") is not None and len(df) > int(table["max_rows"]):
        problems.append(
            f"table: at most {int(table['max_rows'])} rows are allowed (it has {len(df)})"
        )
    unique = list(table.get("unique") or [])
    if unique:
        dup = int(df.duplicated(subset=unique, keep=False).sum())
        if dup:
            problems.append(f"table: rows must be unique by {unique}; {dup} rows are duplicates")
    if table.get("columns_exactly"):
        extra = [str(c) for c in df.columns if c not in expectations]
        if extra:
            problems.append(f"table: unexpected column(s) {', '.join(extra)}")
    return problems


def validate(job: Job) -> dict[str, Any]:
    path = job.find_table("table")
    if path is None:
        raise StageError(f"stage {job.name!r} needs the table from a builtin/ingest stage")
    df = read_table(path)
    expectations = dict(job.data.get("expectations") or {})
    table = dict(job.data.get("_table") or job.data.get("table") or {})
    problems = check_expectations(df, expectations, table)
    summary = {
        "rows": int(len(df)),
        "columns_checked": sorted(expectations),
        "passed": not problems,
    }
    if problems:
        summary["problems"] = problems
    (job.output / "validation.json").write_text(json.dumps(summary, indent=1))
    if problems:
        s = "s" if len(problems) != 1 else ""
        raise StageError(
            f"data validation failed: {len(problems)} problem{s} ({len(df)} rows)\n"
            + "\n".join("  - " + p for p in problems)
        )
    print(f"validated {len(df)} rows against {len(expectations)} column expectations")
    return summary


def split_frame(df: Any, cfg: dict[str, Any]) -> tuple[Any, ...]:
    from sklearn.model_selection import train_test_split

    strategy = str(cfg.get("strategy") or "random")
    test = float(cfg.get("test", 0.2))
    validation = float(cfg.get("validation") or 0.0)
    seed = int(cfg.get("seed") or 0)
    by = cfg.get("by")
    if by is not None and by not in df.columns:
        raise StageError(f"split by {by!r}: no such column")
    if strategy == "time":
        ordered = df.sort_values(by, kind="mergesort")
        n = len(ordered)
        n_test, n_val = max(1, round(n * test)), round(n * validation)
        return (
            ordered.iloc[: n - n_test - n_val],
            ordered.iloc[n - n_test - n_val : n - n_test],
            ordered.iloc[n - n_test :],
        )
    try:
        strat = df[by] if strategy == "stratified" else None
        rest, test_df = train_test_split(df, test_size=test, random_state=seed, stratify=strat)
        if validation > 0:
            strat = rest[by] if strategy == "stratified" else None
            train, val = train_test_split(
                rest, test_size=validation / (1 - test), random_state=seed, stratify=strat
            )
        else:
            train, val = rest, rest.iloc[0:0]
    except ValueError as e:
        raise StageError(f"cannot split the data ({strategy}): {e}") from None
    return train, val, test_df


def split(job: Job) -> dict[str, Any]:
    path = job.find_table("table")
    if path is None:
        raise StageError(f"stage {job.name!r} needs the table from a builtin/ingest stage")
    cfg = {**(job.data.get("split") or {}), **job.params}
    train, val, test = split_frame(read_table(path), cfg)
    for frame, stem in ((train, "train"), (val, "validation"), (test, "test")):
        write_table(frame, job.output, stem)
    sizes = {"train": int(len(train)), "validation": int(len(val)), "test": int(len(test))}
    (job.output / "split.json").write_text(json.dumps({"strategy": cfg.get("strategy"), **sizes}))
    print(f"split: {sizes}")
    return sizes


def splits(job: Job) -> tuple[Any, ...]:
    """(train, test) frames: from a split stage, else the table split as ``data.split`` says."""
    train, test = job.find_table("train"), job.find_table("test")
    if train is not None and test is not None:
        return read_table(train), read_table(test)
    table = job.find_table("table")
    if table is None:
        raise StageError(f"stage {job.name!r} needs data: add builtin/ingest (and builtin/split)")
    tr, _, te = split_frame(read_table(table), dict(job.data.get("split") or {}))
    return tr, te


def build_preprocessor(numeric: list[Any], categorical: list[Any]) -> Any:
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
        raise StageError("the features stage has no columns: list them under `with:`")
    return ColumnTransformer(parts, remainder="drop")


def features(job: Job) -> dict[str, Any]:
    import joblib
    import pandas as pd

    train, _ = splits(job)
    target = job.target()
    numeric = list(job.params.get("numeric") or [])
    categorical = list(job.params.get("categorical") or [])
    if not numeric and not categorical:
        for c in train.columns:
            if c != target:
                is_num = pd.api.types.is_numeric_dtype(train[c])
                (numeric if is_num else categorical).append(str(c))
    missing = [c for c in numeric + categorical if c not in train.columns]
    if missing:
        raise StageError(f"features: column(s) {', '.join(missing)} not in the data")
    if target in numeric + categorical:
        raise StageError(f"features: the target {target!r} cannot also be a feature")
    pre = build_preprocessor(numeric, categorical)
    pre.fit(train[numeric + categorical])
    joblib.dump(pre, job.output / FEATURES_FITTED)
    meta = {
        "numeric": numeric,
        "categorical": categorical,
        "columns": numeric + categorical,
        "outputs": int(len(pre.get_feature_names_out())),
    }
    (job.output / FEATURES_META).write_text(json.dumps(meta, indent=1))
    print(f"features: {len(numeric)} numeric, {len(categorical)} categorical")
    return meta


def train(job: Job) -> dict[str, Any]:
    import joblib
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    data, _ = splits(job)
    target = job.target()
    fmeta = json.loads(job.require(FEATURES_META, "builtin/features").read_text())
    pre = joblib.load(job.require(FEATURES_FITTED, "builtin/features"))
    path = str(job.params.get("estimator") or DEFAULT_ESTIMATOR)
    params = dict(job.params.get("params") or {})
    best = job.find(BEST_PARAMS)
    if best is not None:
        tuned = json.loads(best.read_text())["params"]
        print(f"using tuned params: {tuned}")
        params.update(tuned)
    try:
        est = import_object(path)(**params)
    except TypeError as e:
        raise StageError(f"{path}: {e}; check `with: params:`") from None
    columns = fmeta["columns"]
    est.fit(pre.transform(data[columns]), data[target])
    classifier = bool(is_classifier(est))
    meta = {
        "columns": columns,
        "dtypes": {c: dtype_name(data[c]) for c in columns},
        "target": target,
        "task": "classification" if classifier else "regression",
        "classes": [plain(c) for c in getattr(est, "classes_", [])] if classifier else [],
        "estimator": path,
        "params": params,
        "rows": int(len(data)),
        "format": "mlstack-model/1",
    }
    joblib.dump(Pipeline([("features", pre), ("model", est)]), job.output / MODEL_FILE)
    (job.output / MODEL_META).write_text(json.dumps(meta, indent=1, default=str))
    # The endpoint's inference script travels with the model (SAGEMAKER_SUBMIT_DIRECTORY).
    code = job.output / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(__file__, code / Path(__file__).name)
    print(f"trained {path} on {len(data)} rows ({meta['task']})")
    return {"rows": meta["rows"]}


def _sample(rng: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, dict):
        lo, hi = spec["low"], spec["high"]
        if isinstance(lo, int) and isinstance(hi, int) and not spec.get("float"):
            return rng.randint(lo, hi)
        if spec.get("log"):
            import math

            return math.exp(rng.uniform(math.log(float(lo)), math.log(float(hi))))
        return rng.uniform(float(lo), float(hi))
    numbers = isinstance(spec, list) and len(spec) == 2
    if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
        lo, hi = spec
        if isinstance(lo, int) and isinstance(hi, int):
            return rng.randint(lo, hi)
        return rng.uniform(float(lo), float(hi))
    if isinstance(spec, list) and spec:
        return rng.choice(spec)
    raise StageError(f"with.space.{name}: a search space must be [low, high] or [choices...]")


def tune(job: Job) -> dict[str, Any]:
    """Random search (the container has no Optuna) over ``with: space``; scored like local."""
    import random

    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline

    follows = dict(job.spec.get("train_with") or {})
    path = str(job.params.get("estimator") or follows.get("estimator") or DEFAULT_ESTIMATOR)
    base = {**(follows.get("params") or {}), **(job.params.get("params") or {})}
    space = dict(job.params.get("space") or {})
    if not space:
        raise StageError("tune needs a search space: with: {space: {max_depth: [2, 12]}}")
    train, _ = splits(job)
    val_path = job.find_table("validation")
    val = read_table(val_path) if val_path is not None else None
    target = job.target()
    fmeta = json.loads(job.require(FEATURES_META, "builtin/features").read_text())
    cols = fmeta["columns"]
    pre = build_preprocessor(fmeta["numeric"], fmeta["categorical"])
    estimator = import_object(path)
    classifier = bool(is_classifier(estimator(**base)))
    metric = str(job.params.get("metric") or ("roc_auc" if classifier else "rmse"))
    minimize = metric in ("rmse", "mae", "log_loss")
    rng = random.Random(int(job.params.get("seed", 0)))
    best: dict[str, Any] | None = None
    for _ in range(int(job.params.get("trials", 20))):
        params = {**base, **{k: _sample(rng, k, v) for k, v in space.items()}}
        model = Pipeline([("features", clone(pre)), ("model", estimator(**params))])
        if val is not None and len(val):
            model.fit(train[cols], train[target])
            scorer = classification_metrics if classifier else regression_metrics
            scores = scorer(model, val[cols], val[target])
            if metric not in scores:
                raise StageError(f"tune: metric {metric!r} is not measured ({sorted(scores)})")
            value = float(scores[metric])
        else:
            sk = {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error"}
            name = sk.get(metric, metric)
            s = cross_val_score(model, train[cols], train[target], cv=3, scoring=name).mean()
            value = float(-s if name.startswith("neg_") else s)
        if best is None or (value < best["value"] if minimize else value > best["value"]):
            chosen = {k: plain(params[k]) for k in space}
            best = {"params": chosen, "value": value, "metric": metric, "estimator": path}
    assert best is not None
    best["trials"] = int(job.params.get("trials", 20))
    (job.output / BEST_PARAMS).write_text(json.dumps(best, indent=1))
    print(f"tune: best {metric} = {best['value']:.4f} with {best['params']}")
    return best


def classification_metrics(model: Any, x: Any, y: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    classes = np.unique(y)
    binary = len(classes) <= 2
    avg = "binary" if binary else "weighted"
    pos = {"pos_label": classes.max()} if binary and len(classes) == 2 else {}
    out = {"accuracy": m.accuracy_score(y, pred)}
    if len(classes) < 2:
        return {k: float(v) for k, v in out.items()}
    out["f1"] = m.f1_score(y, pred, average=avg, zero_division=0, **pos)
    out["precision"] = m.precision_score(y, pred, average=avg, zero_division=0, **pos)
    out["recall"] = m.recall_score(y, pred, average=avg, zero_division=0, **pos)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        if binary:
            out["roc_auc"] = m.roc_auc_score(y, proba[:, -1])
        else:
            out["roc_auc"] = m.roc_auc_score(
                y, proba, multi_class="ovr", average="weighted", labels=list(model.classes_)
            )
    return {k: float(v) for k, v in out.items()}


def regression_metrics(model: Any, x: Any, y: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    return {
        "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
        "mae": float(m.mean_absolute_error(y, pred)),
        "r2": float(m.r2_score(y, pred)),
    }


def evaluate(job: Job) -> dict[str, Any]:
    import joblib

    meta_path = job.require(MODEL_META, "builtin/train")
    meta = json.loads(meta_path.read_text())
    model = joblib.load(meta_path.parent / MODEL_FILE)
    _, test = splits(job)
    x, y = test[meta["columns"]], test[meta["target"]]
    if meta.get("task") == "regression":
        metrics = regression_metrics(model, x, y)
    else:
        metrics = classification_metrics(model, x, y)
    for k, v in sorted(metrics.items()):
        print(f"{k} = {v:.4f}")
    # The pipeline's condition step decides the gates (champion bounds are its parameters).
    report = {
        "metrics": metrics,
        "gates": list(job.stage.get("gates") or []),
        "rows": int(len(test)),
    }
    (job.output / EVALUATION).write_text(json.dumps(report, indent=1, sort_keys=True))
    (job.output / METRICS_FILE).write_text(json.dumps(metrics, sort_keys=True))
    return report


def command(job: Job) -> dict[str, Any]:
    """A ``run:`` stage: the project's code (``source`` input) with mlstack's environment."""
    cmd = job.stage.get("run")
    if not cmd:
        raise StageError(
            f"stage {job.name!r}: `function:` stages do not run on SageMaker yet; use `run:`"
        )
    workdir = Path(tempfile.mkdtemp(prefix="mlstack-source-"))
    source = job.input_root / "source"
    for archive in sorted(source.rglob("*.tar.gz")) if source.is_dir() else []:
        with tarfile.open(archive, "r:gz") as tar:
            _extract(tar, workdir)
    inputs = {name: str(path) for name, path in job.inputs if name != "data"}
    if (job.input_root / "data").is_dir():
        inputs["data"] = str(job.input_root / "data")
    env = dict(os.environ)
    env.update(
        {
            "MLSTACK_STAGE": job.name,
            "MLSTACK_OUTPUT": str(job.output),
            "MLSTACK_INPUTS": json.dumps(inputs),
            "MLSTACK_PARAMS": json.dumps(job.params, default=str),
            "MLSTACK_METRICS_FILE": str(job.output / METRICS_FILE),
            "MLSTACK_PROJECT_ROOT": str(workdir),
        }
    )
    for name, path in inputs.items():
        env["MLSTACK_INPUT_" + "".join(c if c.isalnum() else "_" for c in name).upper()] = path
    env.update({str(k): str(v) for k, v in (job.stage.get("env") or {}).items()})
    code = subprocess.call(cmd, shell=True, cwd=str(workdir), env=env)
    if code != 0:
        raise StageError(f"stage {job.name!r}: `{cmd}` exited with status {code}")
    return {}


STAGES = {
    "ingest": ingest,
    "validate": validate,
    "split": split,
    "features": features,
    "train": train,
    "tune": tune,
    "evaluate": evaluate,
    "command": command,
    "function": command,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlstack_stage.py")
    parser.add_argument("--stage")
    parser.add_argument("--mlstack_stage")  # training jobs: hyperparameters become arguments
    args, _unknown = parser.parse_known_args(argv)
    spec = json.loads(os.environ.get("MLSTACK_SPEC") or "{}")
    name = args.stage or args.mlstack_stage or os.environ.get("MLSTACK_STAGE") or ""
    kind = os.environ.get("MLSTACK_STAGE_KIND") or _kind(spec.get("stage") or {})
    training = args.mlstack_stage is not None or "SM_MODEL_DIR" in os.environ
    try:
        fn = STAGES.get(kind)
        if fn is None:
            raise StageError(f"stage {name!r}: kind {kind!r} does not run in this container")
        fn(Job(name, spec, training))
    except StageError as e:
        _fail(f"mlstack stage {name!r} failed: {e}")
        return 1
    except Exception as e:  # noqa: BLE001 - the job must say why, then show the traceback
        _fail(f"mlstack stage {name!r} failed: {type(e).__name__}: {e}")
        raise
    return 0


def _kind(stage: dict[str, Any]) -> str:
    uses = stage.get("uses")
    if uses:
        return str(uses).split("/", 1)[-1]
    return "command" if stage.get("run") else "function"


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    failure = opt_ml() / "output" / "failure"
    try:
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message[:1024])
    except OSError:
        pass


# --- serving: the scikit-learn inference toolkit's hooks -------------------------------------


def model_fn(model_dir: str) -> Any:
    import joblib

    meta = json.loads((Path(model_dir) / MODEL_META).read_text())
    return {"model": joblib.load(Path(model_dir) / MODEL_FILE), "meta": meta}


def input_fn(body: Any, content_type: str = "application/json") -> Any:
    import pandas as pd

    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if content_type.startswith("text/csv"):
        return pd.read_csv(io.StringIO(body), header=None)
    if not content_type.startswith("application/json"):
        raise ValueError(f"unsupported content type {content_type!r}")
    payload = json.loads(body)
    if isinstance(payload, dict):
        payload = payload.get("instances", payload.get("inputs", [payload]))
    return payload


def predict_fn(data: Any, model: Any) -> dict[str, Any]:
    import pandas as pd

    columns = model["meta"]["columns"]
    if isinstance(data, pd.DataFrame):
        frame = (
            data if set(columns) <= set(map(str, data.columns)) else data.set_axis(columns, axis=1)
        )
    else:
        rows = []
        for r in data:
            if not isinstance(r, dict):
                if len(r) != len(columns):
                    raise ValueError(f"a row needs {len(columns)} values: {', '.join(columns)}")
                r = dict(zip(columns, r))  # noqa: B905 - no strict= on the container's Python
            rows.append(r)
        frame = pd.DataFrame(rows, columns=columns)
    frame = frame[columns]
    out = {"predictions": [plain(v) for v in model["model"].predict(frame)]}
    if model["meta"].get("task") == "classification" and hasattr(model["model"], "predict_proba"):
        out["probabilities"] = [
            [float(p) for p in row] for row in model["model"].predict_proba(frame)
        ]
    return out


def output_fn(prediction: Any, accept: str = "application/json") -> str:
    return json.dumps(prediction)


if __name__ == "__main__":
    sys.exit(main())
