"""The endpoint seen from the CLI: a request to an endpoint that is not running says so (from
runtime.json alone, no status probes), and status words for a version with a dead worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstack.errors import BackendError
from mlstack.local.serving import client, runtime


def test_predict_says_not_running_without_runtime_state_or_router(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="endpoint shop is not running in dev"):
        client.predict(tmp_path, "dev", "shop", "m", {"instances": [[1]]}, timeout=2)
    d = runtime.serving_dir(tmp_path.resolve(), "dev", "shop")
    d.mkdir(parents=True)
    port = runtime.free_port()  # recorded, but nothing listens there any more
    runtime.write_json_atomic(d / "runtime.json", {"host": "127.0.0.1", "port": port})
    with pytest.raises(BackendError, match="endpoint shop is not running in dev") as e:
        client.predict(tmp_path, "dev", "shop", "m", {"instances": [[1]]}, timeout=2)
    assert "mlstack apply -e dev" in e.value.render()


def test_a_version_with_one_dead_worker_is_degraded_not_down() -> None:
    one_dead = {
        "healthy": False,
        "versions": {
            "1": {
                "healthy": False,
                "weight": 100.0,
                "workers": [{"healthy": True}, {"healthy": False}],
            }
        },
    }
    word = client._state(one_dead, running=True)
    assert word.startswith("DEGRADED (a worker of v1 not answering; the router sends")
    all_dead = {
        "healthy": False,
        "versions": {"1": {"healthy": False, "weight": 100.0, "workers": [{"healthy": False}] * 2}},
    }
    assert client._state(all_dead, running=True).startswith("DOWN (v1 not answering")
