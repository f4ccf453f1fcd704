"""A damaged state file is said to be damaged, not taken as "nothing deployed"; a full disk is
said to be a full disk. Through the real CLI on the toy backend where the user would see it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mlstack.engine.state import StateStore
from mlstack.errors import StateError


def _db(root: Path) -> Path:
    return root / ".mlstack" / "state" / "dev.db"


def _toy_runs(root: Path) -> int:
    return int(json.loads((root / ".mlstack" / "envs" / "dev" / "toy.json").read_text())["runs"])


def test_zero_byte_state_is_refused_not_taken_as_empty(toy_project: Path, cli) -> None:
    first = cli("apply", "--auto-approve", cwd=toy_project)
    assert first.returncode == 0, first.stderr
    db = _db(toy_project)
    for side in (db.with_name("dev.db-wal"), db.with_name("dev.db-shm")):
        side.unlink(missing_ok=True)
    db.write_bytes(b"")
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "list")):
        r = cli(*args, cwd=toy_project)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "is empty (0 bytes)" in r.stderr, r.stderr
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert _toy_runs(toy_project) == 1  # the refused apply ran nothing again
    assert db.stat().st_size == 0  # and left the evidence as it was


def test_bad_pages_are_reported_as_an_unreadable_state_file(toy_project: Path, cli) -> None:
    assert cli("apply", "--auto-approve", cwd=toy_project).returncode == 0
    db = _db(toy_project)
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    data = bytearray(db.read_bytes())
    assert len(data) >= 2 * 4096
    data[4096 + 8 : 2 * 4096] = b"\xa5" * (4096 - 8)  # scribble over the second page
    db.write_bytes(bytes(data))
    r = cli("state", "list", cwd=toy_project)
    assert r.returncode == 1, r.stdout
    assert "is unreadable" in r.stderr and "restore it from a backup" in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_full_disk_is_not_called_a_damaged_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "dev.db")
    store.put("infra.dev", "infra", {"a": 1}, {}, [])
    pages = store.conn().execute("PRAGMA page_count").fetchone()[0]
    store.conn().execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    with pytest.raises(StateError) as err:
        for i in range(200):
            store.put(f"model.m{i}", "model", {"blob": "x" * 4000}, {}, [])
    assert "free disk space" in (err.value.problems[0].hint or "")
    assert "unreadable" not in str(err.value)
    store.close()
    again = StateStore(tmp_path / "dev.db")
    assert "infra.dev" in again.records()  # the file is intact
    again.close()
