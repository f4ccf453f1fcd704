"""What the `local` backend hands to monitoring: the training split of a version and the requests
its endpoint's router sampled (``requests.jsonl``, written by ``mlstack.local.serving.router``,
one JSON line per sampled request: ts, id, version, role, path, status, request, response).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

from mlstack.engine.backend import Capture
from mlstack.errors import BackendError
from mlstack.local.environment import LocalEnv


def request_log(env: LocalEnv, endpoint: str) -> Path:
    from mlstack.local.serving.runtime import serving_dir

    return serving_dir(Path(env.workdir).resolve(), env.env, endpoint) / "requests.jsonl"


def capture(
    env: LocalEnv, model: str, version: str, endpoint: str, since: float, limit: int
) -> Capture:
    from mlstack_runtime.artifacts import TRAIN
    from mlstack_runtime.serving import ModelMeta, model_dir_from_uri

    entry = env.registry.find(model, version=version)
    if entry is None:
        raise BackendError(
            f"{model} v{version} is not registered in environment {env.env!r}",
            hint=f"mlstack models -e {env.env}",
        )
    store = env.store()  # with an `artifacts:` URL, what this machine lacks is downloaded
    try:
        found = store.local_dir(str(entry["uri"]), str(entry["digest"]))
        meta = ModelMeta.read(found or model_dir_from_uri(str(entry["uri"])))
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(
            f"cannot read the input columns of {model} v{version}: {e}",
            hint=f"its artifact is {entry['uri']}",
        ) from None
    columns = list(meta.columns)
    train: Path | None = None
    for st in (entry.get("lineage") or {}).get("stages") or []:
        out = store.fetch(st["output"]) if st.get("output") else None
        if out is not None and (out / TRAIN).exists():
            train = out / TRAIN
            break
    if train is None:
        raise BackendError(
            f"cannot find the training split of {model} v{version} in the artifact store",
            hint="monitoring needs a builtin/split stage; apply again to rebuild its outputs",
        )
    import pandas as pd

    frame = pd.read_parquet(train)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BackendError(f"the training split of {model} v{version} lacks column(s) {missing}")
    target = meta.target if meta.target and meta.target in frame.columns else None
    frame = frame[columns + ([target] if target else [])]
    if len(frame) > limit:
        frame = frame.sample(n=limit, random_state=0)
    reference = {str(c): frame[c].tolist() for c in frame.columns}
    log = request_log(env, endpoint)
    live = read_log([log.with_suffix(".1.jsonl"), log], columns, since, limit)
    return Capture(
        columns=tuple(columns),
        reference=reference,
        live=live.columns,
        predictions=live.predictions,
        request_ids=live.ids,
        timestamps=live.ts,
        target=target,
        task=meta.task or None,
        source=str(log),
    )


class LoggedRows:
    """Columns of the logged input rows, with each row's answer, request id and time."""

    def __init__(
        self,
        columns: dict[str, list[Any]],
        predictions: list[Any],
        ids: list[str | None],
        ts: list[float],
    ) -> None:
        self.columns = columns
        self.predictions = predictions
        self.ids = ids
        self.ts = ts


def read_log(files: list[Path], columns: list[str], since: float, limit: int) -> LoggedRows:
    """Input rows, answers and ids of the answered inference requests the router sampled, oldest
    first, the newest ``limit`` kept.

    Shadow copies repeat a primary request, and refused requests (4xx/5xx) were never scored,
    so both are left out; a line that is not one of ours is skipped rather than fatal.
    """
    rows: list[Mapping[str, Any]] = []
    preds: list[Any] = []
    ids: list[str | None] = []
    ts_all: list[float] = []
    loads: Callable[[str], Any] = json.loads
    try:  # about 4x faster on the log's lines; mlstack-core[monitor] installs it
        import orjson

        loads = orjson.loads
    except ImportError:
        pass
    for f in files:
        try:
            lines = f.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("role") != "primary":
                continue
            ts = rec.get("ts")
            if not isinstance(ts, (int, float)) or ts < since:
                continue
            status = rec.get("status")
            if not isinstance(status, int) or not 200 <= status < 300:
                continue
            body = rec.get("request")
            if not isinstance(body, dict):
                continue
            got = _request_rows(body, columns)
            if not got:
                continue
            answers = _predictions(rec.get("response"))
            if answers is None or len(answers) != len(got):
                answers = [None] * len(got)
            rid = rec.get("id") if isinstance(rec.get("id"), str) else None
            rows.extend(got)
            preds.extend(answers)
            if rid is None or len(got) == 1:
                ids.extend([rid] * len(got))
            else:
                ids.extend(f"{rid}/{i}" for i in range(len(got)))
            ts_all.extend([float(ts)] * len(got))
    if len(rows) > limit:
        rows, preds, ids, ts_all = rows[-limit:], preds[-limit:], ids[-limit:], ts_all[-limit:]
    return LoggedRows(_transpose(rows, columns), preds, ids, ts_all)


def _transpose(rows: list[Mapping[str, Any]], columns: list[str]) -> dict[str, list[Any]]:
    """Rows to columns; a column a row lacks is None there."""
    if not rows or not columns:
        return {c: [] for c in columns}
    if len(columns) > 1:
        get = itemgetter(*columns)
        try:  # every row has every column: one C-level call per row, one transpose
            return {
                c: list(v) for c, v in zip(columns, zip(*map(get, rows), strict=True), strict=True)
            }
        except KeyError:
            pass
    return {c: [r.get(c) for r in rows] for c in columns}


def _predictions(body: Any) -> list[Any] | None:
    """V1 ``predictions`` or the first V2 output's data, flat; None when neither is there."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("predictions"), list):
        return list(body["predictions"])
    outputs = body.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        data = outputs[0].get("data")
        if isinstance(data, list):
            return _flat(data)
    return None


def _request_rows(body: dict[str, Any], columns: list[str]) -> list[Mapping[str, Any]]:
    """V1 ``instances`` (objects, or lists in column order) or V2 ``inputs`` as rows."""
    instances = body.get("instances")
    if isinstance(instances, list):
        out: list[Mapping[str, Any]] = []
        for inst in instances:
            if isinstance(inst, dict):
                out.append(inst)
            elif isinstance(inst, list) and len(inst) == len(columns):
                out.append(dict(zip(columns, inst, strict=True)))
        return out
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        return []
    tensors = {
        t.get("name"): t for t in inputs if isinstance(t, dict) and isinstance(t.get("data"), list)
    }
    if len(tensors) == 1:  # one [rows, columns] tensor, row-major
        (t,) = tensors.values()
        shape, data = t.get("shape") or [], _flat(t["data"])
        if t.get("name") not in columns and len(shape) == 2 and shape[1] == len(columns):
            width = len(columns)
            return [
                dict(zip(columns, data[r * width : (r + 1) * width], strict=True))
                for r in range(len(data) // width)
            ]
    by_column = {c: _flat(tensors[c]["data"]) for c in columns if c in tensors}
    if len(by_column) != len(columns):
        return []
    n = min(len(v) for v in by_column.values())
    return [{c: by_column[c][i] for c in columns} for i in range(n)]


def _flat(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        out.extend(_flat(v) if isinstance(v, list) else [v])
    return out
