"""The object-store side of the local backend's artifacts (`artifacts:` URL), through fsspec.

Layout under the URL, mirroring ``.mlstack/artifacts/`` (``store.py``)::

    objects/<sha256 hex>/...     the files of one stage output, as stored locally
    objects/<sha256 hex>.json    written last: the object's digest and file list; an object
                                 without it is incomplete (an upload that was interrupted)
    cache/<key hex>.json         a completed stage: cache key -> output digest, metrics, value
    envs/<env>/registry.json     the environment's model index (``registry.py``)
    envs/<env>/pipeline.json     the environment's pipeline definition

Objects are immutable and named by content, so two writers of the same object write the same
bytes; a reader verifies the digest of what it downloaded before using it. The environment's
records are written under the state lock that every applying command holds, so they have one
writer at a time. fsspec and the store's filesystem (s3fs, gcsfs, adlfs) are imported on first
use; a missing one is a ``BackendError`` naming the ``pip install`` that brings it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlstack.errors import BackendError
from mlstack.local.artifacts_url import ArtifactsURL, parse_url


class RemoteArtifacts:
    def __init__(self, url: str) -> None:
        try:
            self.url: ArtifactsURL = parse_url(url)
        except ValueError as e:
            raise BackendError(f"artifacts: {e}", hint="fix `artifacts:` in mlstack.yaml") from None
        self._fs: Any = None

    def __str__(self) -> str:
        return str(self.url)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = self._open()
        return self._fs

    def _open(self) -> Any:
        u = self.url
        hint = f"pip install 'mlstack-core[{u.extra}]'  (or: pip install {u.package})"
        try:
            import fsspec

            return fsspec.filesystem(u.protocol)
        except ImportError as e:
            raise BackendError(
                f"artifacts: {u} needs the {u.package} package, which is not installed "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e.name})",
                hint=hint,
            ) from None
        except Exception as e:  # noqa: BLE001 - the filesystem's own setup error, said plainly
            raise self._error(e, "open") from None

    def _path(self, rel: str) -> str:
        return f"{self.url.root}/{rel}"

    def _error(self, e: BaseException, what: str) -> BackendError:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        return BackendError(
            f"artifacts at {self.url}: {what} failed: {type(e).__name__}: {first}",
            hint="check the bucket exists, the network and the storage credentials (the SDK's "
            "usual environment variables; they never go in mlstack.yaml)",
        )

    # --- small documents --------------------------------------------------------------------
    def read(self, rel: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._path(rel))
        except FileNotFoundError:
            return None
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - see _error
            raise self._error(e, f"reading {rel}") from None
        return data

    def write(self, rel: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(rel), data)
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - see _error
            raise self._error(e, f"writing {rel}") from None

    def delete(self, rel: str) -> None:
        try:
            self.fs.rm_file(self._path(rel))
        except FileNotFoundError:
            pass
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - see _error
            raise self._error(e, f"deleting {rel}") from None

    # --- objects ----------------------------------------------------------------------------
    def object_url(self, digest: str) -> str:
        return f"{self.url}/objects/{_hex(digest)}"

    def has_object(self, digest: str) -> bool:
        return self.read(f"objects/{_hex(digest)}.json") is not None

    def put_object(self, digest: str, local: Path) -> None:
        """Upload the object's files, then its manifest (so a partial upload is never used)."""
        h = _hex(digest)
        files: list[str] = []
        for dirpath, _dirs, names in os.walk(local):
            for n in sorted(names):
                files.append(os.path.relpath(os.path.join(dirpath, n), local).replace(os.sep, "/"))
        try:
            for rel in sorted(files):
                self.fs.put_file(str(local / rel), self._path(f"objects/{h}/{rel}"))
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - see _error
            raise self._error(e, f"uploading object {h[:12]}") from None
        manifest = {"digest": digest, "files": sorted(files)}
        self.write(f"objects/{h}.json", json.dumps(manifest, indent=1).encode())

    def get_object(self, digest: str, dest: Path) -> bool:
        """Download the object's files into ``dest`` (an empty directory); False if absent."""
        h = _hex(digest)
        raw = self.read(f"objects/{h}.json")
        if raw is None:
            return False
        try:
            files = [str(f) for f in json.loads(raw)["files"]]
        except (ValueError, KeyError, TypeError):
            raise BackendError(
                f"artifacts at {self.url}: objects/{h}.json is not an object manifest",
                hint="remove it; the next run that produces this output uploads it again",
            ) from None
        try:
            for rel in files:
                if rel.startswith("/") or ".." in rel.split("/"):
                    raise BackendError(f"artifacts at {self.url}: objects/{h}.json names {rel!r}")
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(self._path(f"objects/{h}/{rel}"), str(target))
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - see _error
            raise self._error(e, f"downloading object {h[:12]}") from None
        return True


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def open_remote(url: str | None) -> RemoteArtifacts | None:
    return RemoteArtifacts(url) if url else None


def split_object_url(uri: str) -> tuple[str, str] | None:
    """``s3://b/p/objects/<hex>`` -> (``s3://b/p``, ``sha256:<hex>``); None for other URIs."""
    base, sep, h = uri.rstrip("/").rpartition("/objects/")
    if not sep or "://" not in base or not h.isalnum():
        return None
    return base, f"sha256:{h}"
