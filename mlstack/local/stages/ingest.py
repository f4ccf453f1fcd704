"""builtin/ingest: read CSV / Parquet / JSON from a path, a glob or an fsspec URL.

Writes ``table.parquet`` and ``dataset.json`` (source, format, sha256 digest of the bytes read,
row count, schema), which lineage reports later.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from typing import Any

from mlstack.errors import BackendError
from mlstack.local.stages.common import TABLE, write_table

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


def _format(source: str, declared: str | None) -> str:
    if declared:
        return declared
    for ext, fmt in FORMATS.items():
        if source.lower().split("?")[0].endswith(ext):
            return fmt
    raise BackendError(
        f"cannot tell the format of {source!r} from its name",
        hint="set data.format: csv | parquet | json",
    )


def _read_bytes(ctx: Any, source: str) -> list[tuple[str, bytes]]:
    if "://" in source:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(source)
            paths = sorted(fs.glob(path)) if any(c in path for c in "*?[") else [path]
            return [(p, fs.cat_file(p)) for p in paths]
        except (OSError, ImportError, ValueError) as e:
            raise BackendError(f"cannot read data source {source!r}: {e}") from None
    path = source if os.path.isabs(source) else str(ctx.project_root / source)
    files = sorted(glob.glob(path)) if any(c in source for c in "*?[") else [path]
    if not files or not all(os.path.isfile(f) for f in files):
        raise BackendError(
            f"data source {source!r} not found (looked for {path})",
            hint="create the file or fix data.source",
        )
    out = []
    for f in files:
        with open(f, "rb") as fh:
            out.append((f, fh.read()))
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
    except Exception as e:  # noqa: BLE001 - any parser error is the user's file, say which
        raise BackendError(
            f"cannot parse {name} as {fmt}: {type(e).__name__}: {e}",
            hint="check the file, or set data.format",
        ) from None


def run(ctx: Any) -> dict[str, Any]:
    import pandas as pd

    source = str(ctx.data.get("source") or ctx.params.get("source") or "")
    if not source:
        raise BackendError("builtin/ingest needs a source", hint="set data.source in mlstack.yaml")
    fmt = _format(source, ctx.data.get("format") or ctx.params.get("format"))
    blobs = _read_bytes(ctx, source)
    h = hashlib.sha256()
    frames = []
    for name, raw in blobs:
        h.update(raw if len(blobs) == 1 else hashlib.sha256(raw).digest())
        frames.append(_parse(fmt, name, raw))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    write_table(df, ctx.output / TABLE)
    info: dict[str, Any] = {
        "source": source,
        "format": fmt,
        "digest": "sha256:" + h.hexdigest(),
        "files": [n for n, _ in blobs],
        "rows": int(len(df)),
        "schema": {str(c): str(t) for c, t in df.dtypes.items()},
    }
    (ctx.output / "dataset.json").write_text(json.dumps(info, indent=1))
    print(
        f"ingested {info['rows']} rows x {len(df.columns)} columns from {source} "
        f"({info['digest'][:19]})"
    )
    return {"rows": info["rows"], "digest": info["digest"]}
