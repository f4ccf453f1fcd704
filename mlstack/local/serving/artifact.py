"""The model artifact contract (``model.joblib`` + ``mlstack-model.json``) as seen by serving.

Clients send raw rows; this module turns V1 instances or V2 tensors into the DataFrame the fitted
pipeline expects, and says precisely what is wrong with an input instead of letting the estimator
fail on it (a bad input is the client's 4xx, never the server's 500).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

META_FILE = "mlstack-model.json"
MODEL_FILE = "model.joblib"
DTYPES = ("int", "float", "str", "bool")
MAX_ROWS = 100_000


class BadInput(ValueError):
    """The request does not fit the model's input schema."""


@dataclass(frozen=True)
class ModelMeta:
    columns: tuple[str, ...]
    dtypes: dict[str, str]
    target: str = ""
    task: str = "classification"
    classes: tuple[Any, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, model_dir: Path) -> ModelMeta:
        raw = json.loads((model_dir / META_FILE).read_text())
        columns = tuple(str(c) for c in raw["columns"])
        dtypes = {str(k): str(v) for k, v in raw.get("dtypes", {}).items()}
        for c in columns:
            dtypes.setdefault(c, "float")
            if dtypes[c] not in DTYPES:
                raise ValueError(f"{META_FILE}: column {c!r} has unknown dtype {dtypes[c]!r}")
        known = {"columns", "dtypes", "target", "task", "classes"}
        return cls(
            columns=columns,
            dtypes=dtypes,
            target=str(raw.get("target", "")),
            task=str(raw.get("task", "classification")),
            classes=tuple(raw.get("classes", ()) or ()),
            extra={k: v for k, v in raw.items() if k not in known},
        )


def model_dir_from_uri(uri: str) -> Path:
    """A plain path or a ``file://`` URI to the artifact directory."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def _coerce(value: Any, dtype: str, column: str, row: int) -> Any:
    where = f"row {row}, column {column!r}"
    if value is None:
        return None if dtype in ("str",) else math.nan
    if dtype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInput(f"{where}: expected a number, got {type(value).__name__} {value!r:.40}")
        return float(value)
    if dtype == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInput(
                f"{where}: expected an integer, got {type(value).__name__} {value!r:.40}"
            )
        if isinstance(value, float) and not value.is_integer():
            raise BadInput(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if dtype == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise BadInput(f"{where}: expected true/false, got {value!r:.40}")
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        raise BadInput(f"{where}: expected a string, got {type(value).__name__}")
    return str(value)


def rows_from_instances(instances: Any, meta: ModelMeta) -> list[list[Any]]:
    """V1 ``instances``: objects keyed by column, or lists in column order."""
    if not isinstance(instances, list):
        raise BadInput('"instances" must be a list of rows')
    if not instances:
        raise BadInput('"instances" is empty')
    if len(instances) > MAX_ROWS:
        raise BadInput(f"too many rows ({len(instances)}); at most {MAX_ROWS} per request")
    cols, dtypes = meta.columns, meta.dtypes
    out: list[list[Any]] = []
    for i, inst in enumerate(instances):
        if isinstance(inst, dict):
            missing = [c for c in cols if c not in inst]
            if missing:
                raise BadInput(
                    f"row {i}: missing column(s) {', '.join(map(repr, missing))}; "
                    f"expected {list(cols)}"
                )
            out.append([_coerce(inst[c], dtypes[c], c, i) for c in cols])
        elif isinstance(inst, list):
            if len(inst) != len(cols):
                raise BadInput(
                    f"row {i}: {len(inst)} values, expected {len(cols)} in this order: {list(cols)}"
                )
            out.append([_coerce(v, dtypes[c], c, i) for v, c in zip(inst, cols, strict=False)])
        else:
            raise BadInput(
                f"row {i}: expected an object keyed by column or a list in column "
                f"order, got {type(inst).__name__}"
            )
    return out


def rows_from_tensors(
    tensors: list[tuple[str, list[int], list[Any]]], meta: ModelMeta
) -> list[list[Any]]:
    """V2 inputs as (name, shape, flat values): one tensor per column, or one 2-D tensor."""
    cols, dtypes = meta.columns, meta.dtypes
    if not tensors:
        raise BadInput("no input tensors")
    by_name = {name: (shape, values) for name, shape, values in tensors}
    if len(tensors) == 1 and tensors[0][0] not in dtypes:
        name, shape, values = tensors[0]
        if len(shape) != 2 or shape[1] != len(cols):
            raise BadInput(
                f"input {name!r}: shape {shape}, expected [rows, {len(cols)}] with "
                f"columns {list(cols)}, or one tensor per column"
            )
        n_rows = shape[0]
        if n_rows * len(cols) != len(values):
            raise BadInput(f"input {name!r}: shape {shape} does not match {len(values)} values")
        if n_rows > MAX_ROWS:
            raise BadInput(f"too many rows ({n_rows}); at most {MAX_ROWS} per request")
        width = len(cols)
        return [
            [_coerce(values[r * width + j], dtypes[c], c, r) for j, c in enumerate(cols)]
            for r in range(n_rows)
        ]
    missing = [c for c in cols if c not in by_name]
    if missing:
        raise BadInput(
            f"missing input tensor(s) {', '.join(map(repr, missing))}; expected one "
            f"per column {list(cols)} or a single [rows, {len(cols)}] tensor"
        )
    n: int | None = None
    for c in cols:
        shape, values = by_name[c]
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise BadInput(f"input {c!r}: shape {shape}, expected [rows] or [rows, 1]")
        if shape[0] != len(values):
            raise BadInput(f"input {c!r}: shape {shape} does not match {len(values)} values")
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise BadInput(f"input {c!r}: {shape[0]} rows, other inputs have {n}")
    if not n:
        raise BadInput("inputs have no rows")
    if n > MAX_ROWS:
        raise BadInput(f"too many rows ({n}); at most {MAX_ROWS} per request")
    columns = [[_coerce(v, dtypes[c], c, r) for r, v in enumerate(by_name[c][1])] for c in cols]
    return [list(row) for row in zip(*columns, strict=False)]


def v2_datatype(dtype: str) -> str:
    return {"int": "INT64", "float": "FP64", "str": "BYTES", "bool": "BOOL"}[dtype]
