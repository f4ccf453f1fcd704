"""Where one environment's state and lock live, chosen by the spec's `state:` block.

``local`` (the default): ``.mlstack/state/<env>.db`` (SQLite) and an ``flock`` on
``<env>.lock``. ``s3`` / ``gcs`` / ``azblob``: ``<prefix>/<env>/state.json`` and
``<prefix>/<env>/lock.json`` in the bucket or container, the prefix defaulting to the project
name. ``migrate`` copies one environment's state from one place to another under both locks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from mlstack.engine.lock import LockInfo, StateLock, read_info
from mlstack.engine.lock import force_unlock as force_unlock_local
from mlstack.engine.state import HistoryEntry, Record, StateStore
from mlstack.errors import StateError
from mlstack.manifest.models import StateConfig

if TYPE_CHECKING:
    from mlstack.engine.state_remote import RemoteStateStore


class State(Protocol):
    """What the engine reads and writes; ``StateStore`` and ``RemoteStateStore`` provide it."""

    @property
    def exists(self) -> bool: ...
    @property
    def serial(self) -> int: ...
    @property
    def lineage(self) -> str: ...
    def records(self) -> dict[str, Record]: ...
    def get(self, address: str) -> Record | None: ...
    def history(self, limit: int = 100) -> list[HistoryEntry]: ...
    def desired_release(self) -> dict[str, Any] | None: ...
    def set_desired_release(self, release: Mapping[str, Any]) -> int: ...
    def clear_desired_release(self) -> None: ...
    def put(
        self,
        address: str,
        kind: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        depends_on: tuple[str, ...] | list[str],
    ) -> int: ...
    def update_outputs(self, address: str, outputs: Mapping[str, Any]) -> int: ...
    def delete(self, address: str) -> int: ...
    def event(self, address: str, action: str, status: str, detail: str = "") -> None: ...
    def record_history(self, operation: str, status: str, summary: Mapping[str, Any]) -> None: ...
    def export(self) -> dict[str, Any] | None: ...
    def import_(self, doc: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


class Lock(Protocol):
    info: LockInfo | None
    stale: LockInfo | None

    def release(self) -> None: ...


class StateBackend:
    def __init__(self, config: StateConfig, project: str, env: str, workdir: Path) -> None:
        self.config = config
        self.env = env
        self.kind = config.backend
        self._remote: RemoteStateStore | None = None
        if self.kind == "local":
            self._db = workdir / "state" / f"{env}.db"
            self.lock_path = workdir / "state" / f"{env}.lock"
            self.state: State = StateStore(self._db)
            self.where = str(self._db)
            return
        from mlstack.engine.objectstore import open_store
        from mlstack.engine.state_remote import RemoteStateStore

        prefix = (config.prefix or project).strip("/")
        self.store = open_store(self.kind, config.model_dump())
        self.state_key = f"{prefix}/{env}/state.json"
        self.lock_key = f"{prefix}/{env}/lock.json"
        self._remote = RemoteStateStore(self.store, self.state_key)
        self.state = self._remote
        self.where = f"{self.store.url}/{self.state_key}"

    def lock(
        self,
        operation: str,
        timeout: float,
        on_wait: Callable[[LockInfo | None], None] | None = None,
    ) -> Lock:
        if self.kind == "local":
            return StateLock(self.lock_path, operation).acquire(timeout, on_wait)
        from mlstack.engine.lock_remote import RemoteLock

        lock = RemoteLock(self.store, self.lock_key, operation, self.config.stale_after).acquire(
            timeout, on_wait
        )
        try:
            self.refresh()  # what was read before the lock may have been written since
        except BaseException:
            lock.release()
            raise
        return lock

    def refresh(self) -> None:
        """Read remote state again (reads are served from the copy last read or written).
        SQLite state is read from the file each time: nothing to do."""
        if self._remote is not None:
            self._remote.refresh()

    def holder(self) -> LockInfo | None:
        if self.kind == "local":
            return read_info(self.lock_path)
        from mlstack.engine.lock_remote import parse

        return parse(self.store.lock_read(self.lock_key))

    def stale_reason(self, info: LockInfo) -> str | None:
        from mlstack.engine.lock_remote import stale_reason

        return stale_reason(info, self.config.stale_after)

    def force_unlock(self, lock_id: str) -> LockInfo:
        if self.kind == "local":
            return force_unlock_local(self.lock_path, lock_id)
        from mlstack.engine.lock_remote import force_unlock

        return force_unlock(self.store, self.lock_key, lock_id)


def migrate(
    source: StateBackend, target: StateBackend, *, lock_timeout: float = 0.0, force: bool = False
) -> int:
    """Copy ``source``'s state to ``target`` holding both locks; returns the serial copied.

    Refused when the source has no state, or the target already holds state (even only
    history, after a destroy) of a different lineage or a newer serial (unless ``force``), so
    a migration never overwrites other or newer work.
    """
    if source.where == target.where:
        raise StateError(
            f"state of {source.env} is already at {target.where}",
            hint="change `state:` in the spec, or give --from the old location",
        )
    src_lock = source.lock("state migrate", lock_timeout)
    try:
        dst_lock = target.lock("state migrate", lock_timeout)
        try:
            doc = source.state.export()
            if doc is None:
                raise StateError(
                    f"no state to migrate at {source.where}",
                    hint="check --from, or nothing has been applied in this environment yet",
                )
            existing = target.state.export()
            if existing is not None and not force:
                same = existing["lineage"] == doc["lineage"]
                if not same or int(existing["serial"]) > int(doc["serial"]):
                    raise StateError(
                        f"{target.where} already holds state (lineage {existing['lineage'][:8]},"
                        f" serial {existing['serial']}); migrating would overwrite it",
                        hint="point `state:` at an empty prefix, or pass --force if the target "
                        "is disposable",
                    )
            target.state.import_(doc)
            return int(doc["serial"])
        finally:
            dst_lock.release()
    finally:
        src_lock.release()


def config_from_url(url: str, base: StateConfig) -> StateConfig:
    """``local``, ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``az://container/prefix``
    (the account from the spec's `state.account_url` or AZURE_STORAGE_CONNECTION_STRING)."""
    if url == "local":
        return StateConfig(backend="local")
    schemes = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azblob", "azblob": "azblob"}
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes or not rest.split("/", 1)[0]:
        raise StateError(
            f"{url!r} is not a state location",
            hint="use local, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX",
        )
    kind = schemes[scheme]
    bucket, _, prefix = rest.partition("/")
    fields: dict[str, Any] = {"backend": kind, "prefix": prefix.strip("/") or None}
    if kind == "azblob":
        fields.update(container=bucket, account_url=base.account_url)
    else:
        fields["bucket"] = bucket
        if base.backend == kind:
            fields.update(region=base.region, endpoint_url=base.endpoint_url)
    try:
        return StateConfig(**fields)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        value = f" {first['input']!r}" if field and isinstance(first["input"], str) else ""
        where = f"{field}{value}: " if field else ""
        raise StateError(
            f"{url!r} is not a valid state location: {where}{first['msg']}",
            hint="bucket and container names are lower-case letters, digits, '-' (and '.' for "
            "buckets), 3 or more characters; the prefix is letters, digits, '_', '.', '-', '/'",
        ) from None
