"""Cloud resource names cut to a platform's length limit without losing what tells them apart."""

from __future__ import annotations

import hashlib


def fit(name: str, limit: int, *, sep: str = "-", whole: str | None = None) -> str:
    """``name`` unchanged when it has at most ``limit`` characters; otherwise its head followed
    by ``sep`` and 8 hex characters of a hash of ``whole`` (the name before any rewriting, by
    default ``name``), so two long names with a common prefix (two environments of one project)
    never collide."""
    if len(name) <= limit:
        return name
    tail = hashlib.sha256((whole if whole is not None else name).encode()).hexdigest()[:8]
    head = name[: limit - len(tail) - len(sep)]
    if sep:
        head = head.rstrip(sep)
    return f"{head}{sep}{tail}"
