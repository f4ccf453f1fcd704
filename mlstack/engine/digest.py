"""Stable digests of values and files (sha256)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value).encode()).hexdigest()


def short(d: str | None, n: int = 12) -> str:
    if not d:
        return "-"
    return d.split(":", 1)[-1][:n]


def file_digest(path: str, cache: dict[str, Any] | None = None) -> str:
    """sha256 of a file's bytes; reuses ``cache[path]`` when size and mtime are unchanged."""
    st = os.stat(path)
    stamp = [st.st_size, st.st_mtime_ns]
    if cache is not None:
        hit = cache.get(path)
        if hit and hit[0] == stamp:
            return str(hit[1])
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    d = "sha256:" + h.hexdigest()
    if cache is not None:
        cache[path] = [stamp, d]
    return d
