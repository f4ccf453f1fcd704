"""A writer process for the lost-update test: N state writes, each retried when refused.

Usage: python writer.py NAME N BACKEND_JSON KEY   (the store's client env is inherited)
Prints how many of its writes were refused because another writer got there first.
"""

from __future__ import annotations

import json
import sys

from mlstack.engine.objectstore import open_store
from mlstack.engine.state_remote import RemoteStateStore, StaleState
from mlstack.manifest.models import StateConfig


def main() -> None:
    name, n, block, key = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    cfg = StateConfig(**block)
    state = RemoteStateStore(open_store(cfg.backend, cfg.model_dump()), key)
    refused = 0
    for i in range(n):
        while True:
            try:
                state.put(f"resource.{name}-{i}", "test", {"i": i}, {}, [])
                break
            except StaleState:
                refused += 1
                state.refresh()
    print(refused)


if __name__ == "__main__":
    main()
