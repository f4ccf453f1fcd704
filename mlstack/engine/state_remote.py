"""State of one environment as one JSON document in an object store (S3, GCS, Azure Blob).

The document holds what the SQLite store holds (lineage, serial, resources, history, events).
Every write is a read-modify-write made conditional on the version this process last saw
(``If-Match`` / ``ifGenerationMatch``): a writer whose view is old is refused with the serial it
saw and the one it found, never allowed to overwrite. The state lock (``lock_remote``) keeps
writers from meeting in the first place; the condition is what makes a lost update impossible
even when someone bypasses the lock (``force-unlock`` of a live holder).

Reads are served from the document this process last read or wrote: a command fetches it once,
not once per read. ``refresh`` reads it again; the engine calls it when it takes the state lock
and when a plan starts (``StateBackend.refresh``), and a write made on an old view is refused
by its condition all the same.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mlstack.engine.objectstore import Conflict, ObjectStore
from mlstack.engine.state import SCHEMA_VERSION, HistoryEntry, Record
from mlstack.errors import StateError

FORMAT = "mlstack-state/1"
MAX_EVENTS = 2000  # the audit trail of single writes; history (what rollback reads) is kept whole


class StaleState(StateError):
    """This process's view of state is older than the store's: its write was refused."""


def empty_document() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": SCHEMA_VERSION,
        "lineage": uuid.uuid4().hex,
        "serial": 0,
        "resources": {},
        "history": [],
        "events": [],
    }


class RemoteStateStore:
    """The same interface as ``StateStore`` (SQLite), kept in ``<prefix>/<env>/state.json``."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.store = store
        self.key = key
        self._doc: dict[str, Any] | None = None
        self._version: str | None = None  # None: the object did not exist when last read
        self._loaded = False  # whether _doc/_version say what the store held (None: nothing)
        self._lock = threading.RLock()

    @property
    def path(self) -> str:
        return f"{self.store.url}/{self.key}"

    def _load(self) -> dict[str, Any] | None:
        with self._lock:
            blob = self.store.read(self.key)
            if blob is None:
                self._doc, self._version, self._loaded = None, None, True
                return None
            try:
                doc = json.loads(blob.data)
            except ValueError as e:
                raise StateError(
                    f"state {self.path} is unreadable: {e}",
                    hint="restore a previous version of the object (enable bucket versioning)",
                ) from None
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise StateError(
                    f"{self.path} is not mlstack state", hint="point `state.prefix` elsewhere"
                )
            self._doc, self._version, self._loaded = doc, blob.version, True
            return doc

    def _current(self) -> dict[str, Any] | None:
        """The document as last read or written by this process (read on first use)."""
        with self._lock:
            return self._doc if self._loaded else self._load()

    def refresh(self) -> None:
        """Forget what this process saw and read the store again."""
        self._load()

    @property
    def exists(self) -> bool:
        return self._current() is not None

    def close(self) -> None:
        """Forget the document and the version seen with it: the next use reads again."""
        with self._lock:
            self._doc, self._version, self._loaded = None, None, False

    # --- reading (the document last read or written; ``refresh`` reads the store again) --------
    # The cached document is never changed in place (a write replaces it with a changed copy),
    # and what a read returns is a copy: a caller changing a record cannot change the cache.
    @property
    def serial(self) -> int:
        doc = self._current()
        return int(doc["serial"]) if doc else 0

    @property
    def lineage(self) -> str:
        doc = self._current()
        if doc is None:
            raise StateError(f"no state at {self.path} yet", hint="apply something first")
        return str(doc["lineage"])

    def records(self) -> dict[str, Record]:
        doc = self._current()
        if doc is None:
            return {}
        return {a: _record(a, r) for a, r in doc["resources"].items()}

    def get(self, address: str) -> Record | None:
        doc = self._current()
        r = doc["resources"].get(address) if doc else None
        return _record(address, r) if r is not None else None

    def history(self, limit: int = 100) -> list[HistoryEntry]:
        doc = self._current()
        if doc is None:
            return []
        entries = doc["history"] if limit < 0 else doc["history"][-limit:] if limit else []
        return [HistoryEntry(**copy.deepcopy(h)) for h in reversed(entries)]

    def desired_release(self) -> dict[str, Any] | None:
        """The release this environment was last asked to serve (``promote``/``rollback``)."""
        doc = self._current()
        release = doc.get("release") if doc else None
        return copy.deepcopy(release) if release else None

    # --- writing: one conditional write each ---------------------------------------------------
    def _write(self, change: Callable[[dict[str, Any]], int]) -> int:
        with self._lock:
            if not self._loaded:
                self._load()
            doc = json.loads(json.dumps(self._doc)) if self._doc else empty_document()
            seen = int(doc["serial"])
            result = change(doc)
            data = json.dumps(doc, sort_keys=True, default=str).encode()
            try:
                if self._version is None:
                    version = self.store.create(self.key, data)
                else:
                    version = self.store.replace(self.key, data, self._version)
            except Conflict:
                now = self._peek_serial()
                raise StaleState(
                    f"state {self.path} was changed by another writer (this command saw serial "
                    f"{seen}, the store now has {now}); nothing was overwritten",
                    hint="someone wrote without the lock (force-unlock of a live holder?): "
                    "run plan again",
                ) from None
            self._doc, self._version, self._loaded = doc, version, True
            return result

    def _peek_serial(self) -> int | str:
        blob = self.store.read(self.key)
        if blob is None:
            return "none (deleted)"
        try:
            return int(json.loads(blob.data)["serial"])
        except (ValueError, KeyError, TypeError):
            return "unreadable"

    def put(
        self,
        address: str,
        kind: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        depends_on: tuple[str, ...] | list[str],
    ) -> int:
        def change(doc: dict[str, Any]) -> int:
            serial = _bump(doc)
            doc["resources"][address] = {
                "kind": kind,
                "inputs": _plain(inputs),
                "outputs": _plain(outputs),
                "depends_on": list(depends_on),
                "serial": serial,
                "updated": time.time(),
            }
            _event(doc, address, "write", "ok")
            return serial

        return self._write(change)

    def update_outputs(self, address: str, outputs: Mapping[str, Any]) -> int:
        def change(doc: dict[str, Any]) -> int:
            serial = _bump(doc)
            rec = doc["resources"].get(address)
            if rec is not None:
                rec.update(outputs=_plain(outputs), serial=serial, updated=time.time())
            return serial

        return self._write(change)

    def delete(self, address: str) -> int:
        def change(doc: dict[str, Any]) -> int:
            serial = _bump(doc)
            doc["resources"].pop(address, None)
            _event(doc, address, "delete", "ok")
            return serial

        return self._write(change)

    def event(self, address: str, action: str, status: str, detail: str = "") -> None:
        def change(doc: dict[str, Any]) -> int:
            _event(doc, address, action, status, detail)
            return int(doc["serial"])

        self._write(change)

    def record_history(self, operation: str, status: str, summary: Mapping[str, Any]) -> None:
        def change(doc: dict[str, Any]) -> int:
            snapshot = {
                a: {"kind": r["kind"], "outputs": r["outputs"], "inputs": r["inputs"]}
                for a, r in doc["resources"].items()
                if r["kind"] in ("endpoint", "model")
            }
            entries = doc["history"]
            entries.append(
                {
                    "id": (entries[-1]["id"] + 1) if entries else 1,
                    "serial": int(doc["serial"]),
                    "time": time.time(),
                    "operation": operation,
                    "status": status,
                    "summary": _plain(summary),
                    "snapshot": snapshot,
                }
            )
            return int(doc["serial"])

        self._write(change)

    def set_desired_release(self, release: Mapping[str, Any]) -> int:
        """Record what the environment must serve; plan reads it as desired state."""

        def change(doc: dict[str, Any]) -> int:
            serial = _bump(doc)
            doc["release"] = _plain(release)
            return serial

        return self._write(change)

    def clear_desired_release(self) -> None:
        """After a destroy: the environment serves nothing until the next promote."""
        doc = self._current()
        if not doc or not doc.get("release"):
            return

        def change(doc: dict[str, Any]) -> int:
            if doc.pop("release", None) is not None:
                return _bump(doc)
            return int(doc["serial"])

        self._write(change)

    # --- whole-state copy (state migrate) ------------------------------------------------------
    def export(self) -> dict[str, Any] | None:
        doc = self._current()
        return json.loads(json.dumps(doc)) if doc else None

    def import_(self, doc: Mapping[str, Any]) -> None:
        """Replace this state with ``doc`` (made by ``export`` of any store)."""

        def change(current: dict[str, Any]) -> int:
            current.clear()
            current.update(json.loads(json.dumps(doc)))
            current["format"] = FORMAT
            return int(current["serial"])

        self._write(change)


def _bump(doc: dict[str, Any]) -> int:
    doc["serial"] = int(doc["serial"]) + 1
    return int(doc["serial"])


def _event(doc: dict[str, Any], address: str, action: str, status: str, detail: str = "") -> None:
    events = doc["events"]
    events.append(
        {
            "time": time.time(),
            "address": address,
            "action": action,
            "status": status,
            "detail": detail,
        }
    )
    del events[:-MAX_EVENTS]


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, sort_keys=True, default=str))


def _record(address: str, r: Mapping[str, Any]) -> Record:
    return Record(
        address,
        r["kind"],
        copy.deepcopy(r["inputs"]),
        copy.deepcopy(r["outputs"]),
        tuple(r["depends_on"]),
        int(r["serial"]),
        float(r["updated"]),
    )
