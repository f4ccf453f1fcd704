"""Stable digests of values and files (sha256)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
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


# --- the model artifact's identity: one tree digest for every backend ---------------------------
#
# Each file contributes ``relpath NUL size(8 bytes, big endian) content`` in the order of the
# sorted relative (POSIX) paths, so no two different trees hash alike. Whether the bytes come
# from a local directory or from objects in a bucket, the same files give the same digest: it is
# what promote carries from one environment to another and checks after copying.


def _tree_entry(h: Any, rel: str, size: int, chunks: Iterable[bytes]) -> None:
    h.update(rel.encode() + b"\0")
    h.update(size.to_bytes(8, "big"))
    for chunk in chunks:
        h.update(chunk)


def tree_digest(files: Mapping[str, bytes]) -> str:
    """``sha256:<hex>`` over files given as ``{relative POSIX path: bytes}``."""
    h = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        _tree_entry(h, rel, len(data), (data,))
    return "sha256:" + h.hexdigest()


def dir_digest(path: str | os.PathLike[str]) -> str:
    """:func:`tree_digest` of a directory's files, read in blocks (the files may be large)."""
    root = Path(path)
    files: list[tuple[str, Path]] = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            files.append((p.relative_to(root).as_posix(), p))
    h = hashlib.sha256()
    for rel, p in sorted(files):
        with open(p, "rb") as fh:
            _tree_entry(h, rel, os.fstat(fh.fileno()).st_size, iter(lambda: fh.read(1 << 20), b""))
    return "sha256:" + h.hexdigest()
