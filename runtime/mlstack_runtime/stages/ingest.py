"""builtin/ingest: read CSV / Parquet / JSON; write ``table.parquet`` and ``dataset.json``.

Where the bytes come from is the platform's business: a mounted data folder (``job.data_dir``,
as SageMaker, Vertex and Azure ML jobs get it), else ``data.source`` as a path (relative to the
project), a glob, or an fsspec URL where fsspec is installed. ``dataset.json`` records the
source, format, sha256 digest of the bytes read, file names, row count and schema.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Optional

from mlstack_runtime.artifacts import DATASET, TABLE, write_json, write_table
from mlstack_runtime.errors import StageError

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


def format_of(name: str) -> Optional[str]:
    base = name.lower().split("?")[0]
    return next((fmt for ext, fmt in FORMATS.items() if base.endswith(ext)), None)


def _from_folder(data_dir: Path, source: str, declared: Optional[str]) -> list[tuple[str, bytes]]:
    files = sorted(p for p in data_dir.rglob("*") if p.is_file()) if data_dir.is_dir() else []
    if not files:
        raise StageError(
            f"no data under {data_dir} (data.source {source!r})",
            hint="check that the data was uploaded where the job mounts it",
        )
    fmt = declared or format_of(source) or format_of(files[0].name)
    chosen = [f for f in files if declared or format_of(f.name) == fmt] or files
    return [(str(f.relative_to(data_dir)), f.read_bytes()) for f in chosen]


def _from_source(job: Any, source: str) -> list[tuple[str, bytes]]:
    if "://" in source:
        try:
            import fsspec
        except ImportError:
            raise StageError(
                f"cannot read data source {source!r}: fsspec is not installed",
                hint="install fsspec, or mount the data into the job",
            ) from None
        try:
            fs, path = fsspec.core.url_to_fs(source)
            paths = sorted(fs.glob(path)) if any(c in path for c in "*?[") else [path]
            return [(os.path.basename(p), fs.cat_file(p)) for p in paths]
        except (OSError, ValueError) as e:
            raise StageError(f"cannot read data source {source!r}: {e}") from None
    root = job.project_root or Path.cwd()
    path = source if os.path.isabs(source) else str(Path(root) / source)
    files = sorted(glob.glob(path)) if any(c in source for c in "*?[") else [path]
    if not files or not all(os.path.isfile(f) for f in files):
        raise StageError(
            f"data source {source!r} not found (looked for {path})",
            hint="create the file or fix data.source",
        )
    out = []
    for f in files:
        with open(f, "rb") as fh:
            out.append((os.path.basename(f), fh.read()))
    return out


def _parse(fmt: str, name: str, raw: bytes) -> Any:
    import pandas as pd

    buf = io.BytesIO(raw)
    try:
        if fmt == "csv":
            return pd.read_csv(buf)
        if fmt == "parquet":
            return pd.read_parquet(buf)
        lines = name.endswith((".jsonl", ".ndjson")) or raw.lstrip()[:1] != b"["
        return pd.read_json(buf, lines=lines)
    except Exception as e:  # noqa: BLE001 - any parser error is the user's file: say which
        raise StageError(
            f"cannot parse {name} as {fmt}: {type(e).__name__}: {e}",
            hint="check the file, or set data.format",
        ) from None


def run(job: Any) -> dict[str, Any]:
    import pandas as pd

    source = str(job.data.get("source") or job.setting("source") or "")
    declared = job.data.get("format") or job.setting("format")
    if job.data_dir is not None:
        blobs = _from_folder(job.data_dir, source, declared)
    elif source:
        blobs = _from_source(job, source)
    else:
        raise StageError("builtin/ingest needs a source", hint="set data.source in mlstack.yaml")
    fmt = declared or format_of(source) or format_of(blobs[0][0])
    if fmt is None:
        raise StageError(
            f"cannot tell the format of {source!r} from its name",
            hint="set data.format: csv | parquet | json",
        )
    h = hashlib.sha256()
    frames = []
    for name, raw in blobs:
        h.update(raw if len(blobs) == 1 else hashlib.sha256(raw).digest())
        frames.append(_parse(fmt, name, raw))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    write_table(df, job.output / TABLE)
    info: dict[str, Any] = {
        "source": source,
        "format": fmt,
        "digest": "sha256:" + h.hexdigest(),
        "files": [n for n, _ in blobs],
        "rows": int(len(df)),
        "schema": {str(c): str(t) for c, t in df.dtypes.items()},
    }
    write_json(job.output / DATASET, info)
    print(
        f"ingested {info['rows']} rows x {len(df.columns)} columns from {source} "
        f"({info['digest'][:19]})"
    )
    return {"rows": info["rows"], "digest": info["digest"]}
