"""`mlstack init DIR` gives a project that applies end to end on the local backend, serves
predictions, and whose endpoint comes back after its processes die: `plan --refresh-only`
reports it, a plain `apply` (which refreshes first, as Terraform) deploys it again (state says what should run)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import make_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _predict(root: Path, env: dict[str, str]) -> dict:
    r = run_cli("predict", "-e", "dev", "--data", '{"x1": 1.5, "x2": 0.4}', cwd=root, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _wait_gone(pid: int, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


def test_init_apply_predict_and_an_endpoint_whose_router_died(tmp_path: Path) -> None:
    from mlstack.local.serving import api

    root = tmp_path / "churn"
    env = make_env()
    init = run_cli("init", str(root), cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert (root / "mlstack.yaml").exists() and (root / "data/train.csv").exists()
    try:
        first = run_cli("apply", "-e", "dev", "--auto-approve", cwd=root, env=env, timeout=180)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Apply complete! Resources: 6 added" in first.stdout
        assert _predict(root, env)["predictions"] == [1]
        # the same row as V2 tensors: predict sends it to the router's /v2/.../infer
        tensors = {
            "inputs": [
                {"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.5]},
                {"name": "x2", "shape": [1], "datatype": "FP64", "data": [0.4]},
            ]
        }
        v2 = run_cli("predict", "-e", "dev", "--data", json.dumps(tensors), cwd=root, env=env)
        assert v2.returncode == 0, v2.stdout + v2.stderr
        assert json.loads(v2.stdout)["outputs"][0]["data"] == [1]
        calm = run_cli("plan", "--refresh-only", "-e", "dev", cwd=root, env=env)
        assert "No drift" in calm.stdout, calm.stdout + calm.stderr

        status = json.loads(run_cli("status", "-e", "dev", "--json", cwd=root, env=env).stdout)
        router = int(status["live"]["details"]["router pid"])
        os.kill(router, signal.SIGKILL)
        _wait_gone(router)

        drift = run_cli("plan", "--refresh-only", "-e", "dev", "--json", cwd=root, env=env)
        assert drift.returncode == 0, drift.stderr
        [found] = json.loads(drift.stdout)["drift"]
        assert found["address"] == "endpoint.churn"
        assert found["reasons"] == [f"not running: router (pid {router}) down"]
        assert (
            run_cli(
                "predict", "-e", "dev", "--data", '{"x1": 1, "x2": 0}', cwd=root, env=env
            ).returncode
            != 0
        )

        back = run_cli("apply", "-e", "dev", "--auto-approve", cwd=root, env=env, timeout=120)
        assert back.returncode == 0, back.stdout + back.stderr
        assert "endpoint.churn" in back.stdout and "1 added" in back.stdout
        assert "run.churn" not in back.stdout  # nothing else is redone
        assert _predict(root, env)["model_version"] == "1"
        again = run_cli("plan", "--refresh-only", "-e", "dev", cwd=root, env=env)
        assert "No drift" in again.stdout, again.stdout
    finally:
        api.stop(root / ".mlstack", "dev", "churn")
