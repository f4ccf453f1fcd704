"""Model URIs the local backend understands: a plain path or a ``file://`` URI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse


def local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        return None
    return Path(uri)
