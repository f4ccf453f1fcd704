"""Serving hooks: load a model artifact, decode a request into rows, predict, encode the answer.

The artifact is ``model.joblib`` + ``mlstack-model.json``. Clients send raw rows: V1
``instances`` (objects keyed by column, or lists in column order), V2 / Open Inference tensors
(one per column, or one ``[rows, columns]``), or CSV lines in column order. This module turns each
into the DataFrame the fitted pipeline expects and says precisely what is wrong with an input
instead of letting the estimator fail on it (a bad input is the client's 4xx, never the server's
500). The local backend's KServe model server and SageMaker's inference toolkit
(``mlstack_runtime.inference``) both serve through it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from mlstack_runtime.artifacts import MODEL_FILE as MODEL_FILE
from mlstack_runtime.artifacts import MODEL_META

META_FILE = MODEL_META  # the serving hooks' name for it

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
            out.append([_coerce(v, dtypes[c], c, i) for v, c in zip(inst, cols)])
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
    n: Optional[int] = None
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
    return [list(row) for row in zip(*columns)]


def v2_datatype(dtype: str) -> str:
    return {"int": "INT64", "float": "FP64", "str": "BYTES", "bool": "BOOL"}[dtype]


def flatten(data: Any) -> list[Any]:
    """A nested list (a tensor's ``data`` as JSON gives it) as one flat list."""
    if isinstance(data, list) and data and isinstance(data[0], list):
        out: list[Any] = []
        for d in data:
            out.extend(flatten(d))
        return out
    return list(data) if isinstance(data, (list, tuple)) else [data]


# KServe's V2 (Open Inference Protocol) tensor data types
V2_DATATYPES = (
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
)  # fmt: skip


def check_tensor_type(name: str, datatype: str, values: list[Any], meta: ModelMeta) -> None:
    """A tensor's declared datatype must fit its values and, per column, the column's type."""
    dt = (datatype or "").upper()
    if dt not in V2_DATATYPES:  # the Open Inference Protocol's tensor types, and no others
        raise BadInput(
            f"input {name!r}: unknown datatype {datatype!r}; use one of {', '.join(V2_DATATYPES)}"
        )
    if dt != "BYTES" and any(isinstance(v, (str, bytes)) for v in values):
        raise BadInput(f"input {name!r}: datatype {dt} but the data holds strings")
    col = meta.dtypes.get(name)
    if col == "str" and dt != "BYTES":
        raise BadInput(f"input {name!r}: column is a string, send datatype BYTES (got {dt})")
    if col in ("int", "float", "bool") and dt == "BYTES":
        raise BadInput(f"input {name!r}: column is {col}, got datatype BYTES")


def rows_from_v2(inputs: Any, meta: ModelMeta) -> list[list[Any]]:
    """A V2 request body's ``inputs`` (a list of {name, shape, datatype, data})."""
    if not isinstance(inputs, list):
        raise BadInput('"inputs" must be a list of tensors')
    tensors = []
    for t in inputs:
        if not isinstance(t, dict) or "name" not in t or "data" not in t:
            raise BadInput("each input needs name, shape, datatype and data")
        values = flatten(t["data"])
        check_tensor_type(str(t["name"]), str(t.get("datatype", "")), values, meta)
        shape = [int(d) for d in t.get("shape") or [len(values)]]
        tensors.append((str(t["name"]), shape, values))
    return rows_from_tensors(tensors, meta)


def rows_from_csv(text: str, meta: ModelMeta) -> list[list[Any]]:
    """CSV lines in column order (no header: SageMaker's text/csv convention)."""
    import csv
    import io

    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows:
        raise BadInput("the CSV body has no rows")
    if rows[0] == list(meta.columns):  # a header is tolerated
        rows = rows[1:]
    parsed = []
    for i, row in enumerate(rows):
        values: list[Any] = []
        for v, c in zip(row, meta.columns):
            if meta.dtypes[c] == "str":
                values.append(v if v != "" else None)
            elif v == "":
                values.append(None)
            elif meta.dtypes[c] == "bool":
                values.append(
                    {"true": True, "false": False, "1": True, "0": False}.get(v.lower(), v)
                )
            else:
                try:
                    values.append(float(v) if meta.dtypes[c] == "float" else _int_or_float(v))
                except ValueError:
                    raise BadInput(
                        f"row {i}, column {c!r}: expected a number, got {v!r:.40}"
                    ) from None
        if len(row) != len(meta.columns):
            raise BadInput(
                f"row {i}: {len(row)} values, expected {len(meta.columns)} in this order: "
                f"{list(meta.columns)}"
            )
        parsed.append(values)
    return rows_from_instances(parsed, meta)


def _int_or_float(v: str) -> Any:
    f = float(v)
    return int(f) if f.is_integer() else f


def decode(body: Any, content_type: str, meta: ModelMeta) -> list[list[Any]]:
    """A request body (bytes or str) of ``application/json`` (V1 or V2) or ``text/csv``."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8")
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype == "text/csv":
        return rows_from_csv(body, meta)
    if ctype != "application/json":
        raise BadInput(
            f"unsupported content type {content_type!r}: send application/json or text/csv"
        )
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise BadInput(f"the body is not JSON: {e}") from None
    return decode_payload(payload, meta)


def decode_payload(payload: Any, meta: ModelMeta) -> list[list[Any]]:
    """A parsed JSON body: V1 ``{"instances": [...]}`` or V2 ``{"inputs": [tensors]}``."""
    if not isinstance(payload, dict):
        raise BadInput('expected a JSON object with "instances"')
    inputs = payload.get("inputs")
    if (
        isinstance(inputs, list)
        and inputs
        and isinstance(inputs[0], dict)
        and "datatype" in inputs[0]
    ):
        return rows_from_v2(inputs, meta)
    instances = payload.get("instances", inputs)
    if instances is None:
        raise BadInput(
            'expected {"instances": [...]}: rows as objects keyed by '
            f"column or lists in column order {list(meta.columns)}"
        )
    return rows_from_instances(instances, meta)


def frame(rows: list[list[Any]], meta: ModelMeta) -> Any:
    """Checked, coerced rows as the typed DataFrame the fitted pipeline expects."""
    import numpy as np
    import pandas as pd

    data = {}
    for j, c in enumerate(meta.columns):
        values = [r[j] for r in rows]
        t = meta.dtypes[c]
        if t == "float" or (t == "int" and any(v != v for v in values)):
            data[c] = np.asarray(values, dtype="float64")
        elif t == "int":
            data[c] = np.asarray(values, dtype="int64")
        elif t == "bool" and not any(v != v for v in values):
            data[c] = np.asarray(values, dtype=bool)
        else:
            data[c] = np.asarray(values, dtype=object)
    return pd.DataFrame(data, copy=False)


class ModelError(RuntimeError):
    """The model itself failed on a well-formed input: a server error, not the client's."""


@dataclass
class LoadedModel:
    pipeline: Any
    meta: ModelMeta


def load(model_dir: Path) -> LoadedModel:
    import joblib

    model_dir = Path(model_dir)
    return LoadedModel(joblib.load(model_dir / MODEL_FILE), ModelMeta.read(model_dir))


def predict(model: LoadedModel, rows: list[list[Any]]) -> list[Any]:
    import numpy as np

    x = frame(rows, model.meta)
    try:
        out = model.pipeline.predict(x)
    except ValueError as e:  # sklearn's word for "this value cannot be handled"
        raise BadInput(f"the model rejected the input: {e}") from None
    except Exception as e:  # noqa: BLE001 - the model failed, not the request
        raise ModelError(f"{type(e).__name__}: {e}") from None
    preds: list[Any] = np.asarray(out).tolist()
    return preds


def v2_output(preds: list[Any]) -> dict[str, Any]:
    """Predictions as one V2 output tensor named ``predict``."""
    import numpy as np

    kind = np.asarray(preds).dtype.kind
    if kind in "OUS":
        return {
            "name": "predict",
            "shape": [len(preds)],
            "datatype": "BYTES",
            "data": [str(p) for p in preds],
        }
    datatype = "BOOL" if kind == "b" else "INT64" if kind in "iu" else "FP64"
    return {"name": "predict", "shape": [len(preds)], "datatype": datatype, "data": preds}


def encode(preds: list[Any], protocol: str = "v1", version: str = "") -> dict[str, Any]:
    """The answer body: V1 ``{"predictions": [...]}`` or V2 ``{"outputs": [...]}``."""
    if protocol == "v2":
        return {"model_version": version, "outputs": [v2_output(preds)]}
    out: dict[str, Any] = {"predictions": preds}
    if version:
        out["model_version"] = version
    return out
