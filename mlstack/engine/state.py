"""State per environment in SQLite: resources, a serial, and the history of every change.

Each finished resource is written in its own transaction (WAL, synchronous=FULL), so a crash
loses at most the resource in flight. Every write bumps the serial; a saved plan remembers the
serial it was made against and is refused when it has moved. ``history`` keeps a snapshot of the
endpoint-facing resources after each operation: rollback reads it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlstack.errors import StateError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
  address TEXT PRIMARY KEY, kind TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT NOT NULL,
  depends_on TEXT NOT NULL, serial INTEGER NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, serial INTEGER NOT NULL, time REAL NOT NULL,
  operation TEXT NOT NULL, status TEXT NOT NULL, summary TEXT NOT NULL, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, address TEXT NOT NULL,
  action TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Record:
    address: str
    kind: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    depends_on: tuple[str, ...]
    serial: int
    updated: float


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    serial: int
    time: float
    operation: str
    status: str
    summary: Mapping[str, Any]
    snapshot: Mapping[str, Any]


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # apply's worker threads share one connection: transactions on it must not interleave
        self._lock = threading.RLock()

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def conn(self) -> sqlite3.Connection:
        with self._lock:
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._refuse_truncated()
            try:
                c = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=FULL")
                c.executescript(_SCHEMA)
                if c.execute("SELECT value FROM meta WHERE key='lineage'").fetchone() is None:
                    c.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('lineage', ?)", (uuid.uuid4().hex,)
                    )
                    c.execute("INSERT OR IGNORE INTO meta VALUES ('serial', '0')")
                    c.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(SCHEMA_VERSION),)
                    )
            except sqlite3.DatabaseError as e:
                raise self._explain(e) from None
            self._conn = c
        return self._conn

    def _refuse_truncated(self) -> None:
        """A 0-byte state file is a truncated one, not "nothing deployed": sqlite would take it
        as an empty database, and the next apply would deploy everything again."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        wal = self.path.with_name(self.path.name + "-wal")
        if size == 0 and not (wal.exists() and wal.stat().st_size > 0):
            raise StateError(
                f"state file {self.path} is empty (0 bytes): it was truncated, so mlstack "
                "cannot tell what is deployed",
                hint="restore it from a backup; if this environment never had anything "
                "deployed, delete the file",
            )

    def _explain(self, e: sqlite3.Error) -> StateError:
        """What a sqlite failure means for the user: a full disk or I/O error leaves the file
        intact; only a malformed file needs restoring."""
        text = str(e).lower()
        if "full" in text or isinstance(e, sqlite3.OperationalError) and "i/o" in text:
            return StateError(
                f"cannot write state file {self.path}: {e}",
                hint="free disk space (the state file itself is intact) and run the command again",
            )
        if "locked" in text or "busy" in text:
            return StateError(f"state file {self.path} is busy: {e}", hint="run the command again")
        return StateError(
            f"state file {self.path} is unreadable: {e}",
            hint="restore it from a backup; mlstack never edits it by hand",
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            c = self.conn()
            try:
                c.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as e:
                raise self._explain(e) from None
            try:
                yield c
            except BaseException as e:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                if isinstance(e, sqlite3.DatabaseError):
                    raise self._explain(e) from None
                raise
            try:
                c.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise self._explain(e) from None

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self.conn().execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                raise self._explain(e) from None

    # --- reading ------------------------------------------------------------------------------
    @property
    def serial(self) -> int:
        if not self.exists:
            return 0
        rows = self._read("SELECT value FROM meta WHERE key='serial'")
        return int(rows[0][0]) if rows else 0

    @property
    def lineage(self) -> str:
        return str(self._read("SELECT value FROM meta WHERE key='lineage'")[0][0])

    def records(self) -> dict[str, Record]:
        if not self.exists:
            return {}
        rows = self._read(
            "SELECT address, kind, inputs, outputs, depends_on, serial, updated FROM resources"
        )
        return {
            r[0]: Record(
                r[0], r[1], json.loads(r[2]), json.loads(r[3]), tuple(json.loads(r[4])), r[5], r[6]
            )
            for r in rows
        }

    def get(self, address: str) -> Record | None:
        return self.records().get(address) if self.exists else None

    def desired_release(self) -> dict[str, Any] | None:
        """The release this environment was last asked to serve (``promote``/``rollback``)."""
        if not self.exists:
            return None
        rows = self._read("SELECT value FROM meta WHERE key='release'")
        return dict(json.loads(rows[0][0])) if rows else None

    def history(self, limit: int = 100) -> list[HistoryEntry]:
        if not self.exists:
            return []
        rows = self._read(
            "SELECT id, serial, time, operation, status, summary, snapshot FROM history "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            HistoryEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]))
            for r in rows
        ]

    # --- writing (each call one transaction) --------------------------------------------------
    def _bump(self, c: sqlite3.Connection) -> int:
        serial = int(c.execute("SELECT value FROM meta WHERE key='serial'").fetchone()[0]) + 1
        c.execute("UPDATE meta SET value=? WHERE key='serial'", (str(serial),))
        return serial

    def put(
        self,
        address: str,
        kind: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        depends_on: tuple[str, ...] | list[str],
    ) -> int:
        with self._tx() as c:
            serial = self._bump(c)
            c.execute(
                "INSERT OR REPLACE INTO resources VALUES (?,?,?,?,?,?,?)",
                (
                    address,
                    kind,
                    _dump(inputs),
                    _dump(outputs),
                    json.dumps(list(depends_on)),
                    serial,
                    time.time(),
                ),
            )
            c.execute(
                "INSERT INTO events (time, address, action, status, detail) VALUES (?,?,?,?,?)",
                (time.time(), address, "write", "ok", ""),
            )
        return serial

    def set_desired_release(self, release: Mapping[str, Any]) -> int:
        """Record what the environment must serve; plan reads it as desired state."""
        with self._tx() as c:
            serial = self._bump(c)
            c.execute("INSERT OR REPLACE INTO meta VALUES ('release', ?)", (_dump(release),))
        return serial

    def clear_desired_release(self) -> None:
        """After a destroy: the environment serves nothing until the next promote."""
        with self._tx() as c:
            if c.execute("DELETE FROM meta WHERE key='release'").rowcount:
                self._bump(c)

    def update_outputs(self, address: str, outputs: Mapping[str, Any]) -> int:
        with self._tx() as c:
            serial = self._bump(c)
            c.execute(
                "UPDATE resources SET outputs=?, serial=?, updated=? WHERE address=?",
                (_dump(outputs), serial, time.time(), address),
            )
        return serial

    def delete(self, address: str) -> int:
        with self._tx() as c:
            serial = self._bump(c)
            c.execute("DELETE FROM resources WHERE address=?", (address,))
            c.execute(
                "INSERT INTO events (time, address, action, status, detail) VALUES (?,?,?,?,?)",
                (time.time(), address, "delete", "ok", ""),
            )
        return serial

    def event(self, address: str, action: str, status: str, detail: str = "") -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO events (time, address, action, status, detail) VALUES (?,?,?,?,?)",
                (time.time(), address, action, status, detail),
            )

    def record_history(self, operation: str, status: str, summary: Mapping[str, Any]) -> None:
        snapshot = {
            a: {"kind": r.kind, "outputs": r.outputs, "inputs": r.inputs}
            for a, r in self.records().items()
            if r.kind in ("endpoint", "model")
        }
        with self._tx() as c:
            serial = int(c.execute("SELECT value FROM meta WHERE key='serial'").fetchone()[0])
            c.execute(
                "INSERT INTO history (serial, time, operation, status, summary, snapshot) "
                "VALUES (?,?,?,?,?,?)",
                (serial, time.time(), operation, status, _dump(summary), _dump(snapshot)),
            )

    # --- whole-state copy (state migrate) -----------------------------------------------------
    def export(self) -> dict[str, Any] | None:
        """Everything this state holds, in the shape ``RemoteStateStore`` stores."""
        if not self.exists:
            return None
        resources = {
            a: {
                "kind": r.kind,
                "inputs": r.inputs,
                "outputs": r.outputs,
                "depends_on": list(r.depends_on),
                "serial": r.serial,
                "updated": r.updated,
            }
            for a, r in self.records().items()
        }
        history = [e.__dict__ for e in reversed(self.history(limit=-1))]
        events = [
            {"time": t, "address": a, "action": ac, "status": st, "detail": d}
            for t, a, ac, st, d in self._read(
                "SELECT time, address, action, status, detail FROM events ORDER BY id"
            )
        ]
        return {
            "version": SCHEMA_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "resources": resources,
            "history": history,
            "events": events,
            **({"release": release} if (release := self.desired_release()) else {}),
        }

    def import_(self, doc: Mapping[str, Any]) -> None:
        """Replace this state with ``doc`` in one transaction."""
        with self._tx() as c:
            for table in ("resources", "history", "events"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            c.execute("UPDATE meta SET value=? WHERE key='lineage'", (str(doc["lineage"]),))
            c.execute("UPDATE meta SET value=? WHERE key='serial'", (str(int(doc["serial"])),))
            for a, r in doc["resources"].items():
                c.execute(
                    "INSERT INTO resources VALUES (?,?,?,?,?,?,?)",
                    (
                        a,
                        r["kind"],
                        _dump(r["inputs"]),
                        _dump(r["outputs"]),
                        json.dumps(list(r["depends_on"])),
                        int(r["serial"]),
                        float(r["updated"]),
                    ),
                )
            for h in doc["history"]:
                c.execute(
                    "INSERT INTO history (id, serial, time, operation, status, summary, snapshot)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (
                        h["id"],
                        h["serial"],
                        h["time"],
                        h["operation"],
                        h["status"],
                        _dump(h["summary"]),
                        _dump(h["snapshot"]),
                    ),
                )
            for e in doc["events"]:
                c.execute(
                    "INSERT INTO events (time, address, action, status, detail) VALUES (?,?,?,?,?)",
                    (e["time"], e["address"], e["action"], e["status"], e["detail"]),
                )
            c.execute("DELETE FROM meta WHERE key='release'")
            if doc.get("release"):
                c.execute("INSERT INTO meta VALUES ('release', ?)", (_dump(doc["release"]),))


def _dump(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)
