"""Changing an endpoint's settings without a new model (gates, request sampling) re-applies
them to what serves, with no rollout and no new version (local backend, real CLI)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import make_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _status(root: Path, env: dict[str, str]) -> dict:
    r = run_cli("status", "-e", "dev", "--json", cwd=root, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_settings_change_redeploys_without_a_rollout(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    env = make_env()
    assert run_cli("init", str(root), cwd=tmp_path, env=env).returncode == 0
    try:
        first = run_cli("apply", "-e", "dev", "--auto-approve", cwd=root, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        before = _status(root, env)["recorded"]

        spec = root / "mlstack.yaml"
        text = spec.read_text()
        assert 'error_rate: "< 1%"' in text
        spec.write_text(
            text.replace('error_rate: "< 1%"', 'error_rate: "< 2%"')
            + "\nmonitoring: {sample_rate: 1.0}\n"
        )
        plan = run_cli("plan", "-e", "dev", cwd=root, env=env)
        assert plan.returncode == 0, plan.stderr
        assert "~ endpoint.shop" in plan.stdout
        assert "gates.error_rate" in plan.stdout and "sample_rate" in plan.stdout
        assert "run.shop" not in plan.stdout  # nothing to train

        again = run_cli("apply", "-e", "dev", "--auto-approve", cwd=root, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "starting model server" not in again.stdout + again.stderr
        after = _status(root, env)
        assert after["recorded"]["champion"] == before["champion"]
        assert after["recorded"]["last_rollout"] == before["last_rollout"]  # no rollout ran
        assert after["live"]["healthy"] is True
        models = json.loads(run_cli("models", "-e", "dev", "--json", cwd=root, env=env).stdout)
        assert len(models) == 1
        noop = run_cli("plan", "-e", "dev", "--detailed-exitcode", cwd=root, env=env)
        assert noop.returncode == 0, noop.stdout

        # the router now logs every request (sample_rate 1.0), not one in ten
        import httpx

        url = after["recorded"]["url"] + "/v1/models/shop-model:predict"
        for i in range(20):
            r = httpx.post(url, json={"instances": [{"x1": i / 10, "x2": 0.1}]}, timeout=10)
            assert r.status_code == 200
        logs = list((root / ".mlstack" / "envs" / "dev" / "serving").rglob("requests*.jsonl"))
        deadline = time.monotonic() + 10
        lines = 0
        while time.monotonic() < deadline:
            lines = sum(len(p.read_text().splitlines()) for p in logs)
            if lines >= 20:
                break
            time.sleep(0.2)
            logs = list((root / ".mlstack" / "envs" / "dev" / "serving").rglob("requests*.jsonl"))
        assert lines >= 20
    finally:
        run_cli("destroy", "-e", "dev", "--auto-approve", cwd=root, env=env)
