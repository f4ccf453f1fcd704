"""State in SQLite (serial, history, survives reopen, refuses a corrupt file) and the lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlstack.engine.lock import LockInfo, StateLock, force_unlock, is_held, read_info
from mlstack.engine.state import StateStore
from mlstack.errors import LockError, StateError


def test_serial_history_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s" / "dev.db"
    s = StateStore(path)
    assert s.serial == 0 and s.records() == {} and s.history() == []
    assert not path.exists()  # reading creates nothing
    assert s.put("infra.dev", "infra", {"a": 1}, {"b": 2}, []) == 1
    assert s.put("model.m", "model", {"x": 1}, {"version": "1"}, ["infra.dev"]) == 2
    assert s.update_outputs("model.m", {"version": "2"}) == 3
    s.record_history("apply", "ok", {"counts": {"added": 2}})
    assert s.delete("infra.dev") == 4
    lineage = s.lineage
    s.close()

    again = StateStore(path)
    assert again.serial == 4 and again.lineage == lineage
    rec = again.get("model.m")
    assert rec is not None and rec.outputs == {"version": "2"} and rec.depends_on == ("infra.dev",)
    assert again.get("infra.dev") is None
    (h,) = again.history()
    assert (h.operation, h.status, h.serial) == ("apply", "ok", 3)
    assert h.snapshot == {
        "model.m": {"kind": "model", "outputs": {"version": "2"}, "inputs": {"x": 1}}
    }
    again.close()


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "dev.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="is unreadable"):
        StateStore(path).records()


def test_a_write_in_another_process_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "dev.db"
    s = StateStore(path)
    s.put("a.x", "a", {}, {}, [])
    code = (
        "import sys; from pathlib import Path; from mlstack.engine.state import StateStore;"
        "s = StateStore(Path(sys.argv[1])); s.put('b.x', 'b', {}, {}, []); s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    assert set(s.records()) == {"a.x", "b.x"} and s.serial == 2
    s.close()


def test_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "dev.lock"
    first = StateLock(path, "apply").acquire()
    assert is_held(path)
    info = read_info(path)
    assert info == first.info
    assert (info.pid, info.host, info.operation) == (os.getpid(), socket.gethostname(), "apply")
    waited = []
    with pytest.raises(LockError) as e:
        StateLock(path, "destroy").acquire(timeout=0.3, on_wait=waited.append)
    assert waited == [info]
    text = e.value.render()
    assert f"state is locked: apply by {info.owner} (pid {os.getpid()} on " in text
    assert f"mlstack force-unlock {info.id}" in text
    first.release()
    assert not is_held(path) and read_info(path) is None
    with StateLock(path, "destroy").acquire() as second:
        assert second.stale is None and second.info.operation == "destroy"


def test_a_dead_holder_is_recognised_as_stale(tmp_path: Path) -> None:
    path = tmp_path / "dev.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = LockInfo(
        id="deadbeef0000",
        owner="ghost",
        pid=dead.pid,
        host=socket.gethostname(),
        operation="apply",
        created=0.0,
    )
    path.write_text(json.dumps(record.__dict__))
    assert record.process_alive() is False
    assert LockInfo(**{**record.__dict__, "host": "elsewhere"}).process_alive() is None
    with StateLock(path, "apply").acquire() as lock:
        assert lock.stale == record


def test_force_unlock(tmp_path: Path) -> None:
    path = tmp_path / "dev.lock"
    with pytest.raises(LockError, match="not locked"):
        force_unlock(path, "x")
    path.write_text(json.dumps(LockInfo("abc123", "me", 1, "h", "apply", 0.0).__dict__))
    with pytest.raises(LockError, match="does not match") as e:
        force_unlock(path, "zzz")
    assert "mlstack force-unlock abc123" in e.value.render()
    assert force_unlock(path, "abc123").id == "abc123"
    assert not path.exists()


def test_garbage_lock_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "dev.lock"
    path.write_text("{half a record")
    assert read_info(path) is None
    with StateLock(path, "apply").acquire() as lock:
        assert lock.stale is None


def test_concurrent_writers_in_one_process_share_the_store_safely(tmp_path: Path) -> None:
    # apply's worker threads record finished resources through one StateStore at once
    import threading

    s = StateStore(tmp_path / "dev.db")
    errors: list[BaseException] = []
    start = threading.Barrier(8, timeout=10)

    def writer(i: int) -> None:
        try:
            start.wait()
            for j in range(10):
                s.put(f"r.{i}-{j}", "r", {"i": i}, {}, [])
                s.records()
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert s.serial == 80 and len(s.records()) == 80
    s.close()
