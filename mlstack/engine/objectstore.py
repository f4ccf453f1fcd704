"""Object stores that hold remote state: the operations state and its lock need, and no SDK.

Each store (S3, GCS, Azure Blob) implements ``ObjectStore`` in ``mlstack.statestores.<kind>``,
which imports its SDK; the engine loads that module by name only when a command needs it, so
`validate` and the core never import a cloud SDK. Every write is conditional, on the store's own
terms: S3 ``If-None-Match: *`` / ``If-Match: <etag>``, GCS ``ifGenerationMatch``, Azure
``If-None-Match: *`` / ``If-Match`` and blob leases. A failed precondition is ``Conflict``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from mlstack.errors import StateError

KINDS = ("s3", "gcs", "azblob")
EXTRAS = {"s3": "s3", "gcs": "gcs", "azblob": "azblob"}


class Conflict(Exception):
    """A conditional write's precondition failed: someone else wrote or holds the object."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    version: str  # S3/Azure ETag, GCS generation


class ObjectStore(Protocol):
    """Conditional object operations under one prefix (keys are relative to it)."""

    url: str  # s3://bucket/prefix, for messages

    def read(self, key: str) -> Blob | None: ...

    def create(self, key: str, data: bytes) -> str:
        """Write only if ``key`` does not exist; the new version, or ``Conflict``."""

    def replace(self, key: str, data: bytes, version: str) -> str:
        """Write only if ``key`` is still at ``version``; the new version, or ``Conflict``."""

    def delete(self, key: str, version: str | None = None) -> None:
        """Remove ``key`` (only at ``version`` when given); absent is not an error."""

    # the lock: a separate object, so that reading state never waits for it
    def lock_acquire(self, key: str, data: bytes) -> str:
        """Take the lock or raise ``Conflict``; returns a token for refresh and release."""

    def lock_refresh(self, key: str, token: str, data: bytes) -> str:
        """Rewrite the holder record while holding the lock; a new token."""

    def lock_read(self, key: str) -> bytes | None:
        """The holder record, or None when the lock is free."""

    def lock_release(self, key: str, token: str) -> None: ...

    def lock_break(self, key: str) -> None:
        """Free the lock whoever holds it (force-unlock)."""


class CreateDeleteLock:
    """Locking by "create only if absent" and delete, for stores without leases (S3, GCS)."""

    def lock_acquire(self: Any, key: str, data: bytes) -> str:
        return str(self.create(key, data))

    def lock_refresh(self: Any, key: str, token: str, data: bytes) -> str:
        return str(self.replace(key, data, token))

    def lock_read(self: Any, key: str) -> bytes | None:
        blob = self.read(key)
        return blob.data if blob is not None else None

    def lock_release(self: Any, key: str, token: str) -> None:
        self.delete(key, token)

    def lock_break(self: Any, key: str) -> None:
        self.delete(key)


def open_store(kind: str, settings: dict[str, Any]) -> ObjectStore:
    """The store for a `state:` block; its SDK is imported here, on first use."""
    if kind not in KINDS:
        raise StateError(f"unknown state backend {kind!r}", hint=f"use one of: local, {KINDS}")
    try:
        module = importlib.import_module(f"mlstack.statestores.{kind}")
    except ImportError as e:
        raise StateError(
            f"state backend {kind!r} needs a package that is not installed: {e.name or e}",
            hint=f"pip install 'mlstack-core[{EXTRAS[kind]}]'",
        ) from None
    try:
        store = module.open_store(settings)
    except StateError:
        raise
    except Exception as e:  # noqa: BLE001 - an SDK's own error: said plainly, no traceback
        raise _plain(e, f"{kind} state store", "open") from None
    return Guarded(store)


class Guarded:
    """A store whose SDK errors (no credentials, endpoint unreachable, ...) become StateError."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.url: str = store.url

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (Conflict, StateError):
                raise
            except Exception as e:  # noqa: BLE001 - see the class docstring
                raise _plain(e, self.url, name.replace("_", " ")) from None

        return call


def _plain(e: Exception, where: str, what: str) -> StateError:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return StateError(
        f"{where}: {what} failed: {type(e).__name__}: {first}",
        hint="check the state store's endpoint, network and credentials (state: in the spec, "
        "and the cloud SDK's usual environment variables)",
    )
