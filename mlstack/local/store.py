"""Content-addressed artifact store shared by every environment of a project.

Layout under ``<workdir>/artifacts/``::

    objects/<sha256 hex>/   one stage output (a directory), named by the digest of its files
    cache/<key hex>.json    a completed stage: cache key -> output digest, metrics, return value
    tmp/<pid>-<stage>-<n>/  where a running stage writes; never read as a result

A stage writes into ``tmp/``; only when it has finished is its directory hashed, fsynced and
renamed into ``objects/`` (rename is atomic), and only after that is the cache entry written
(temp file + fsync + ``os.replace``). A ``kill -9`` at any moment therefore leaves either a
complete object and entry, or nothing that a later run would read.

With an `artifacts:` URL (``remote.py``) this folder is a cache of that URL: ``publish`` uploads
a finished stage's object and then its entry; ``lookup`` of a key missing here reads the entry
there, downloads the object through ``tmp/`` and keeps it only if its digest is the one named.
Digests and keys are the same with or without a URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

# the artifact's identity lives in the engine, shared with every backend's copy check
from mlstack.engine.digest import dir_digest as dir_digest
from mlstack.errors import BackendError

if TYPE_CHECKING:
    from mlstack.local.remote import RemoteArtifacts


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=1, sort_keys=True, default=str).encode())


def _key_name(key: str) -> str:
    # Keys are "sha256:<hex>" from core; anything else is hashed so it is a safe file name.
    kind, _, rest = key.partition(":")
    if kind == "sha256" and rest.isalnum():
        return rest
    return hashlib.sha256(key.encode()).hexdigest()


class ArtifactStore:
    def __init__(
        self, workdir: str | os.PathLike[str], remote: RemoteArtifacts | None = None
    ) -> None:
        self.root = Path(workdir) / "artifacts"
        self.objects = self.root / "objects"
        self.cache = self.root / "cache"
        self.tmp = self.root / "tmp"
        self.remote = remote

    def ensure(self) -> None:
        for d in (self.objects, self.cache, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def object_path(self, digest: str) -> Path:
        return self.objects / digest.split(":", 1)[-1]

    def new_staging(self, stage: str, attempt: int) -> Path:
        p = self.tmp / f"{os.getpid()}-{stage}-{attempt}-{os.urandom(4).hex()}"
        p.mkdir(parents=True)
        return p

    def commit_dir(self, staging: Path) -> tuple[str, Path]:
        """Move a finished staging directory into ``objects/`` under its digest."""
        for dirpath, _dirs, names in os.walk(staging):
            for n in names:
                with open(os.path.join(dirpath, n), "rb") as fh:
                    os.fsync(fh.fileno())
            fsync_dir(dirpath)
        digest = dir_digest(staging)
        target = self.object_path(digest)
        if target.exists():
            shutil.rmtree(staging, ignore_errors=True)  # identical content is already stored
        else:
            try:
                os.rename(staging, target)
            except OSError:  # a concurrent writer stored the same content first
                shutil.rmtree(staging, ignore_errors=True)
            fsync_dir(self.objects)
        return digest, target

    def entry_path(self, key: str) -> Path:
        return self.cache / f"{_key_name(key)}.json"

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The completed entry for ``key`` whose output object still exists, else None.

        With a remote, a key missing here is looked up there and its object downloaded."""
        try:
            entry: dict[str, Any] = json.loads(self.entry_path(key).read_text())
        except (OSError, ValueError):
            return self._remote_lookup(key)
        if not self.object_path(entry.get("output", "")).is_dir():
            return self._remote_lookup(key)
        return entry

    def _remote_lookup(self, key: str) -> dict[str, Any] | None:
        if self.remote is None:
            return None
        raw = self.remote.read(f"cache/{_key_name(key)}.json")
        if raw is None:
            return None
        try:
            entry: dict[str, Any] = json.loads(raw)
        except ValueError:
            return None  # a damaged entry is a miss: the stage runs and writes it again
        if entry.get("key") != key or not isinstance(entry.get("output"), str):
            return None
        if self.fetch(entry["output"]) is None:
            return None
        atomic_write_json(self.entry_path(key), entry)
        return entry

    def fetch(self, digest: str) -> Path | None:
        """The object's local folder, downloaded from the remote if it is not here yet."""
        target = self.object_path(digest)
        if target.is_dir():
            return target
        if self.remote is None:
            return None
        self.ensure()
        staging = self.new_staging("fetch", 0)
        try:
            if not self.remote.get_object(digest, staging):
                return None
            actual, path = self.commit_dir(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if actual != digest:
            raise BackendError(
                f"artifact {self.remote.object_url(digest)} has digest {actual}, expected "
                f"{digest}; refusing to use it",
                hint="it was changed after upload: delete it there and run again",
            )
        return path

    def publish(self, key: str, entry: dict[str, Any]) -> None:
        """Upload a finished stage's object (unless there already) and then its entry."""
        if self.remote is None:
            return
        digest = str(entry["output"])
        if not self.remote.has_object(digest):
            self.remote.put_object(digest, self.object_path(digest))
        body = json.dumps({**entry, "key": key}, indent=1, sort_keys=True, default=str)
        self.remote.write(f"cache/{_key_name(key)}.json", body.encode())

    def ensure_published(self, key: str, entry: dict[str, Any]) -> None:
        """A stage found in the local cache is uploaded too if the remote lacks it (a project
        that set `artifacts:` after running, a run cut short after its stage finished)."""
        if self.remote is not None and self.remote.read(f"cache/{_key_name(key)}.json") is None:
            self.publish(key, entry)

    def uri(self, digest: str) -> str:
        """Where the object is, as a model URI: the remote URL when there is one (the same
        on every machine), else the local folder."""
        if self.remote is not None:
            return self.remote.object_url(digest)
        return str(self.object_path(digest))

    def local_dir(self, uri: str, digest: str) -> Path | None:
        """The local folder of an artifact given by URI: a path, or a remote object URL
        (downloaded into this store by digest)."""
        from mlstack.local.remote import RemoteArtifacts, split_object_url
        from mlstack.local.serving_uri import local_path

        path = local_path(uri)
        if path is not None:
            return path
        found = split_object_url(uri)
        if found is None:
            return None
        base, named = found
        if named != digest:
            raise BackendError(f"model URI {uri} does not name digest {digest}")
        if self.object_path(digest).is_dir():
            return self.object_path(digest)
        remote = self.remote if self.remote is not None and str(self.remote) == base else None
        store = (
            self if remote is not None else ArtifactStore(self.root.parent, RemoteArtifacts(base))
        )
        return store.fetch(digest)

    def record(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_json(self.entry_path(key), {**entry, "key": key})

    def sweep_tmp(self) -> int:
        """Remove staging directories left by processes that are gone (e.g. after kill -9)."""
        removed = 0
        if not self.tmp.is_dir():
            return 0
        for p in self.tmp.iterdir():
            pid = p.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
