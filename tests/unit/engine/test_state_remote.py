"""Remote state (one JSON document in an object store) against an in-memory store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from memory_objectstore import MemoryObjectStore

from mlstack.engine import objectstore
from mlstack.engine.state_remote import RemoteStateStore, StaleState
from mlstack.engine.workspace import Project, Workspace, raise_for
from tests.conftest import TOY_SPEC

KEY = "dev/state.json"


def test_a_write_after_close_keeps_what_the_store_holds() -> None:
    store = MemoryObjectStore()
    state = RemoteStateStore(store, KEY)
    state.put("model.m", "model", {"v": 1}, {}, [])
    state.put("endpoint.e", "endpoint", {}, {"url": "u"}, ["model.m"])
    lineage = state.lineage
    state.close()
    assert state.put("model.n", "model", {"v": 2}, {}, []) == 3
    doc = json.loads(store.objects[KEY].data)
    assert doc["serial"] == 3 and doc["lineage"] == lineage
    assert set(doc["resources"]) == {"model.m", "endpoint.e", "model.n"}


def _remote_project(root: Path, monkeypatch: pytest.MonkeyPatch) -> MemoryObjectStore:
    """The toy project with its state in an s3 `state:` block served by a memory store."""
    spec = yaml.safe_load(TOY_SPEC)
    spec["state"] = {"backend": "s3", "bucket": "mlstack-state", "prefix": "p"}
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    store = MemoryObjectStore("s3://mlstack-state/p")
    monkeypatch.setattr(objectstore, "open_store", lambda kind, settings: store)
    return store


def _apply(ws: Workspace) -> None:
    _, result = ws.converge(
        targets=None,
        destroy=False,
        refresh=False,
        lock_timeout=0,
        emit=lambda e: None,
        review=lambda p: None,
    )
    assert result is not None
    raise_for(result)


def test_a_no_op_plan_reads_remote_state_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toy_on_path
) -> None:
    monkeypatch.setenv("TOY_HOME", str(tmp_path / "platform"))
    store = _remote_project(tmp_path, monkeypatch)
    _apply(Project(str(tmp_path / "mlstack.yaml")).workspace("dev"))
    state_key = "p/dev/state.json"
    assert json.loads(store.objects[state_key].data)["resources"]

    ws = Project(str(tmp_path / "mlstack.yaml")).workspace("dev")
    store.reads = 0
    plan, _ = ws.plan()
    assert not plan.has_changes
    assert ws.release() is None and ws.outputs()  # more reads, served from what plan read
    assert store.reads == 1


def test_taking_the_lock_reads_state_again_and_a_stale_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toy_on_path
) -> None:
    monkeypatch.setenv("TOY_HOME", str(tmp_path / "platform"))
    _remote_project(tmp_path, monkeypatch)
    project = Project(str(tmp_path / "mlstack.yaml"))
    mine, other = project.workspace("dev"), project.workspace("dev")
    assert mine.state.records() == {}  # read before the other writes
    other.state.put("model.x", "model", {"v": 1}, {}, [])
    assert mine.state.serial == 0  # served from what this one read
    with pytest.raises(StaleState, match="saw serial 0, the store now has 1"):
        mine.state.put("model.y", "model", {"v": 1}, {}, [])
    lock = mine.lock("apply", 0)
    try:
        assert mine.state.serial == 1 and set(mine.state.records()) == {"model.x"}
    finally:
        lock.release()
