"""Two processes write the same remote state 200 times in all, without the state lock: the
stores' conditional writes alone must keep every update (serial 200, 200 resources)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlstack.engine.objectstore import open_store
from mlstack.engine.state_remote import RemoteStateStore
from mlstack.manifest.models import StateConfig

pytestmark = pytest.mark.e2e
WRITER = Path(__file__).with_name("writer.py")
REPO = Path(__file__).resolve().parents[2]


def test_200_interleaved_writes_lose_no_update(remote) -> None:
    srv, block = remote
    key = f"{block['prefix']}/dev/state.json"
    env = {**os.environ, **srv.env, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), name, "100", json.dumps(block), key],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    refused = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
            refused.append(int(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    cfg = StateConfig(**block)
    state = RemoteStateStore(open_store(cfg.backend, cfg.model_dump()), key)
    assert state.serial == 200
    records = state.records()
    assert len(records) == 200
    assert sorted(r.serial for r in records.values()) == list(range(1, 201))
    # the writers did meet: some writes were refused and retried, none was lost
    print(f"{srv.kind}: refused and retried {refused}")
