"""Each store's conditional writes and lock, against its real local server (see servers.py)."""

from __future__ import annotations

import threading

import pytest

from mlstack.engine.lock_remote import RemoteLock, force_unlock
from mlstack.engine.objectstore import Conflict, open_store
from mlstack.engine.state_remote import RemoteStateStore, StaleState
from mlstack.errors import LockError
from mlstack.manifest.models import StateConfig


def store_for(block: dict):
    return open_store(block["backend"], StateConfig(**block).model_dump())


def test_create_only_when_absent_and_replace_only_the_version_seen(remote) -> None:
    _, block = remote
    st = store_for(block)
    key = f"{block['prefix']}/obj"
    with pytest.raises(Conflict):
        st.replace(key, b"x", "1234")  # nothing there to match
    v1 = st.create(key, b"one")
    with pytest.raises(Conflict):
        st.create(key, b"two")
    v2 = st.replace(key, b"three", v1)
    with pytest.raises(Conflict):
        st.replace(key, b"four", v1)  # a writer that saw v1 is refused
    got = st.read(key)
    assert got is not None and got.data == b"three" and got.version == v2
    with pytest.raises(Conflict):
        st.delete(key, v1)
    st.delete(key, v2)
    assert st.read(key) is None


def test_racing_creates_have_exactly_one_winner(remote) -> None:
    _, block = remote
    st = store_for(block)
    key = f"{block['prefix']}/race"
    wins: list[int] = []
    conflicts: list[int] = []
    gate = threading.Barrier(8)

    def attempt(i: int) -> None:
        gate.wait()
        try:
            st.create(key, str(i).encode())
            wins.append(i)
        except Conflict:
            conflicts.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 7
    got = st.read(key)
    assert got is not None and got.data == str(wins[0]).encode()


def test_a_writer_with_an_old_view_is_refused(remote) -> None:
    _, block = remote
    key = f"{block['prefix']}/dev/state.json"
    a = RemoteStateStore(store_for(block), key)
    b = RemoteStateStore(store_for(block), key)
    assert a.put("model.m", "model", {"v": 1}, {}, []) == 1
    assert b.serial == 1
    assert b.put("endpoint.e", "endpoint", {}, {"url": "u"}, ["model.m"]) == 2
    with pytest.raises(StaleState, match="saw serial 1, the store now has 2"):
        a.put("model.m", "model", {"v": 2}, {}, [])
    a.refresh()
    assert a.put("model.m", "model", {"v": 2}, {}, []) == 3
    assert b.serial == 2  # b serves reads from what it last read or wrote, until it refreshes
    b.refresh()
    assert b.serial == 3
    assert set(b.records()) == {"model.m", "endpoint.e"}
    assert b.get("model.m").inputs == {"v": 2}


def test_lock_is_exclusive_names_its_holder_and_force_unlock_breaks_it(remote) -> None:
    _, block = remote
    st = store_for(block)
    key = f"{block['prefix']}/dev/lock.json"
    first = RemoteLock(st, key, "apply").acquire()
    try:
        with pytest.raises(LockError, match=f"state is locked: apply by .*lock id {first.info.id}"):
            RemoteLock(store_for(block), key, "plan").acquire(timeout=0.3)
        with pytest.raises(LockError, match="does not match"):
            force_unlock(st, key, "000000000000")
        assert force_unlock(st, key, first.info.id).id == first.info.id
        second = RemoteLock(store_for(block), key, "apply").acquire()
        assert second.info.id != first.info.id
    finally:
        first.release()  # its lock was broken: releasing must not free the new holder's
    try:
        with pytest.raises(LockError, match=second.info.id):
            RemoteLock(st, key, "apply").acquire(timeout=0)
    finally:
        second.release()
    RemoteLock(st, key, "apply").acquire().release()
    with pytest.raises(LockError, match="not locked"):
        force_unlock(st, key, "anything")


def test_s3_state_is_written_with_server_side_encryption(remote) -> None:
    srv, block = remote
    if srv.kind != "s3":
        pytest.skip("S3's SSE header; GCS and Azure encrypt every object at rest")
    import boto3

    key = f"{block['prefix']}/dev/state.json"
    RemoteStateStore(store_for(block), key).put("model.m", "model", {}, {}, [])
    head = boto3.client("s3").head_object(Bucket=block["bucket"], Key=key)
    assert head["ServerSideEncryption"] == "AES256"


def test_a_live_holder_beats_and_a_silent_one_from_another_host_is_stale(remote) -> None:
    import json
    import time
    from dataclasses import asdict, replace

    from mlstack.engine.lock_remote import parse, stale_reason

    _, block = remote
    st = store_for(block)
    key = f"{block['prefix']}/dev/lock.json"
    lock = RemoteLock(st, key, "apply", stale_after=2.0).acquire()
    try:
        first = parse(st.lock_read(key))
        deadline = time.monotonic() + 30
        while (now := parse(st.lock_read(key))).heartbeat == first.heartbeat:
            assert time.monotonic() < deadline, "the holder never refreshed its heartbeat"
            time.sleep(0.05)
        assert now.id == first.id and stale_reason(now, 2.0) is None
    finally:
        lock.release()
    # a runner on another machine that stopped beating long ago (its pid means nothing here)
    gone = replace(
        first, id="abcdef012345", host="runner-elsewhere", pid=1, heartbeat=time.time() - 600
    )
    st.lock_acquire(key, json.dumps(asdict(gone)).encode())
    with pytest.raises(LockError) as e:
        RemoteLock(store_for(block), key, "apply", stale_after=120.0).acquire(timeout=0)
    msg = e.value.render()
    assert "state is locked by a stale lock" in msg and "no heartbeat for 60" in msg
    assert "mlstack force-unlock abcdef012345" in msg
    force_unlock(st, key, "abcdef012345")
    RemoteLock(st, key, "apply").acquire().release()
