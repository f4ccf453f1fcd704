"""Objects in Cloud Storage: upload and download folders, copy a model artifact between buckets
(or from a folder on this machine, where a local environment keeps it), and the digest that
identifies an artifact: ``mlstack.engine.digest.tree_digest``, the same function the local store
and every other backend use, so the same model has the same digest wherever it lies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine.digest import tree_digest
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


def local_dir(uri: str) -> Path | None:
    """The folder a ``file://`` URI or a plain path names (a local environment's artifact);
    None for a remote URI."""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        return None
    return Path(uri)


def _read_dir(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def read_tree(platform: Platform, uri: str) -> dict[str, bytes]:
    folder = local_dir(uri)
    if folder is not None:
        return _read_dir(folder) if folder.is_dir() else {}
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
        p.relative_to(local).as_posix(): p.read_bytes()
        for p in sorted(local.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    write_tree(platform, uri, files)


def copy_tree(platform: Platform, source: str, target: str) -> str:
    """Copy every object under ``source`` (a gs:// prefix or a local folder) to ``target``; the
    digest of what now lies there."""
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
