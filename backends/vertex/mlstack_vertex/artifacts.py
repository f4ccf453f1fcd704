"""Objects in Cloud Storage: upload and download folders, copy a model artifact between buckets,
and the digest that identifies an artifact (sha256 over its files' relative paths and contents,
so the same model has the same digest in every bucket)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.errors import BackendError

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise BackendError(f"{uri!r} is not a gs:// URI")
    bucket, _, key = uri[len("gs://") :].partition("/")
    return bucket, key.rstrip("/")


def _blobs(platform: Platform, uri: str) -> list[Any]:
    bucket, key = split_uri(uri)
    gcp = platform.gcp
    found: list[Any] = gcp.call(
        "list objects", list, gcp.storage.list_blobs(bucket, prefix=key + "/")
    )
    return [b for b in found if not b.name.endswith("/")]


def tree_digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{hashlib.sha256(files[rel]).hexdigest()}\n".encode())
    return "sha256:" + h.hexdigest()


def read_tree(platform: Platform, uri: str) -> dict[str, bytes]:
    _, key = split_uri(uri)
    gcp = platform.gcp
    return {
        b.name[len(key) + 1 :]: gcp.call("download object", b.download_as_bytes)
        for b in _blobs(platform, uri)
    }


def digest_of(platform: Platform, uri: str) -> str | None:
    files = read_tree(platform, uri)
    return tree_digest(files) if files else None


def write_tree(platform: Platform, uri: str, files: dict[str, bytes]) -> None:
    bucket, key = split_uri(uri)
    gcp = platform.gcp
    b = gcp.storage.bucket(bucket)
    for rel, data in sorted(files.items()):
        gcp.call("upload object", b.blob(f"{key}/{rel}").upload_from_string, data)


def upload_dir(platform: Platform, local: Path, uri: str) -> None:
    files = {
        str(p.relative_to(local)): p.read_bytes()
        for p in sorted(local.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    write_tree(platform, uri, files)


def copy_tree(platform: Platform, source: str, target: str) -> str:
    """Copy every object under ``source`` to ``target``; the digest of what now lies there."""
    files = read_tree(platform, source)
    if not files:
        raise BackendError(f"no model artifact at {source}", hint="was it deleted by hand?")
    write_tree(platform, target, files)
    copied = read_tree(platform, target)
    return tree_digest(copied)


def exists(platform: Platform, uri: str) -> bool:
    bucket, key = split_uri(uri)
    gcp = platform.gcp
    return bool(gcp.call("stat object", gcp.storage.bucket(bucket).blob(key).exists))
