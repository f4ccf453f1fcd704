"""Ground truth: labels sent back by request id, and the metric they give a served version.

``mlstack feedback -e ENV FILE`` reads a CSV or Parquet file with the columns ``request_id`` and
``label`` (the id is the ``x-request-id`` header of the endpoint's answer; a row of a request
of several rows is ``ID/INDEX``) and appends the labels to
``.mlstack/feedback/<env>/<endpoint>.jsonl`` in the project (a label sent again for the same id
replaces the earlier one). Monitoring joins them with the captured answers and computes the
metric the version was evaluated with: accuracy and f1 for classification (f1 as
``mlstack_runtime.metrics`` computes it: binary with the larger class as positive, weighted for
more classes), rmse for regression.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlstack.engine.project import STATE_DIR
from mlstack.errors import Location, MlstackError, SpecError

COLUMNS = ("request_id", "label")
MAX_ROWS = 5_000_000


def store_path(workdir: Path, env: str, endpoint: str) -> Path:
    return Path(workdir) / STATE_DIR / "feedback" / env / f"{endpoint}.jsonl"


def _value(text: str) -> Any:
    """A label as written in a CSV: an int, a float, else the text."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return t
    return f if math.isfinite(f) else t


def read_labels(file: Path) -> list[tuple[str, Any]]:
    """(request id, label) pairs of a CSV or Parquet file; a clear error naming file:line."""
    if not file.exists():
        raise MlstackError(f"{file}: no such file", hint="give a CSV or Parquet file")
    if file.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(file)
    out: list[tuple[str, Any]] = []
    try:
        with file.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise SpecError(
                    "the file is empty", location=Location(str(file), 1), hint=_columns_hint()
                )
            names = [h.strip() for h in header]
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise SpecError(
                    f"no column {', '.join(missing)} in the header ({', '.join(names)})",
                    location=Location(str(file), 1),
                    hint=_columns_hint(),
                )
            ri, li = names.index("request_id"), names.index("label")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(names):
                    raise SpecError(
                        f"{len(row)} field(s), the header has {len(names)}",
                        location=Location(str(file), line),
                        hint=_columns_hint(),
                    )
                rid, label = row[ri].strip(), row[li].strip()
                if not rid or not label:
                    raise SpecError(
                        "empty request_id or label",
                        location=Location(str(file), line),
                        hint="every row needs both",
                    )
                out.append((rid, _value(label)))
                if len(out) > MAX_ROWS:
                    raise SpecError(
                        f"more than {MAX_ROWS} labels", location=Location(str(file), line)
                    )
    except UnicodeDecodeError as e:
        raise SpecError(
            f"not UTF-8 text ({e.reason})",
            location=Location(str(file), 1),
            hint="write the labels as a UTF-8 CSV or as Parquet (.parquet)",
        ) from None
    return out


def _read_parquet(file: Path) -> list[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MlstackError(
            "reading Parquet needs pyarrow", hint="pip install pyarrow, or send a CSV"
        ) from None
    try:
        table = pq.read_table(file)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise SpecError(
            f"not a Parquet file: {e}", location=Location(str(file), 1), hint=_columns_hint()
        ) from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise SpecError(
            f"no column {', '.join(missing)} (columns: {', '.join(table.column_names)})",
            location=Location(str(file), 1),
            hint=_columns_hint(),
        )
    ids = table.column("request_id").to_pylist()
    labels = table.column("label").to_pylist()
    out: list[tuple[str, Any]] = []
    for i, (rid, label) in enumerate(zip(ids, labels, strict=True)):
        if rid is None or label is None or str(rid).strip() == "":
            raise SpecError(
                f"row {i}: empty request_id or label",
                location=Location(str(file), 1),
                hint="every row needs both",
            )
        out.append((str(rid), label))
    return out


def _columns_hint() -> str:
    return "write two columns, request_id,label (the id is the x-request-id of the answer)"


def store(workdir: Path, env: str, endpoint: str, labels: Sequence[tuple[str, Any]]) -> Path:
    path = store_path(workdir, env, endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = round(time.time(), 3)
    with path.open("a", encoding="utf-8") as f:
        for rid, label in labels:
            f.write(json.dumps({"id": rid, "label": label, "ts": now}) + "\n")
    return path


def load(workdir: Path, env: str, endpoint: str) -> dict[str, Any]:
    """request id -> its latest label."""
    path = store_path(workdir, env, endpoint)
    out: dict[str, Any] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("id"), str) and "label" in rec:
            out[rec["id"]] = rec["label"]
    return out


@dataclass(frozen=True)
class LiveQuality:
    task: str
    labelled: int  # captured answers with a label
    metrics: dict[str, float]  # the live metric(s)
    evaluation: dict[str, float]  # the same metric(s) at the version's evaluation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return str(a) == str(b)


def live_quality(
    task: str | None,
    predictions: Sequence[Any],
    request_ids: Sequence[str | None],
    labels: Mapping[str, Any],
    evaluation: Mapping[str, float],
) -> LiveQuality | None:
    """The live metric over captured answers that have a label; None when none has."""
    pairs = [
        (p, labels[r])
        for p, r in zip(predictions, request_ids, strict=False)
        if r is not None and p is not None and r in labels
    ]
    if not pairs:
        return None
    task = task or "classification"
    if task == "regression":
        pred = np.asarray([float(p) for p, _ in pairs])
        true = np.asarray([float(y) for _, y in pairs])
        metrics = {"rmse": float(np.sqrt(np.mean((pred - true) ** 2)))}
    else:
        metrics = classification_metrics([p for p, _ in pairs], [y for _, y in pairs])
    return LiveQuality(
        task,
        len(pairs),
        metrics,
        {k: float(evaluation[k]) for k in metrics if k in evaluation},
    )


def classification_metrics(pred: Sequence[Any], true: Sequence[Any]) -> dict[str, float]:
    """accuracy, and f1 as the evaluate stage computes it (binary: the larger class positive)."""
    key = [(float(v), "") if isinstance(v, (int, float)) else (math.inf, str(v)) for v in true]
    pkey = [(float(v), "") if isinstance(v, (int, float)) else (math.inf, str(v)) for v in pred]
    classes = sorted(set(key))
    out = {"accuracy": float(np.mean([a == b for a, b in zip(pkey, key, strict=True)]))}
    if len(classes) < 2:
        return out
    if len(classes) == 2:
        out["f1"] = _f1(pkey, key, classes[-1])
    else:
        weights = [sum(1 for k in key if k == c) for c in classes]
        out["f1"] = float(
            sum(w * _f1(pkey, key, c) for w, c in zip(weights, classes, strict=True)) / len(key)
        )
    return out


def _f1(pred: Sequence[Any], true: Sequence[Any], positive: Any) -> float:
    tp = sum(1 for p, t in zip(pred, true, strict=True) if p == positive and t == positive)
    fp = sum(1 for p, t in zip(pred, true, strict=True) if p == positive and t != positive)
    fn = sum(1 for p, t in zip(pred, true, strict=True) if p != positive and t == positive)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
