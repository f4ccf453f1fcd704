"""Remote state (one JSON document in an object store) against an in-memory store."""

from __future__ import annotations

import json

from memory_objectstore import MemoryObjectStore

from mlstack.engine.state_remote import RemoteStateStore

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
