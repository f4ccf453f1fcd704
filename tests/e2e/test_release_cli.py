"""Promotion and rollback through the real CLI on the `local` backend: real pipeline, MLflow,
KServe model servers and router on 127.0.0.1, real traffic from the bounded load generator.

- promote dev → staging serves the same artifact digest in staging;
- a canary whose gate is breached under live traffic is rolled back by the controller, the
  endpoint keeps serving the earlier version, and the reason shows in `status` and history;
- `rollback` restores the earlier version after a successful promotion.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_xy_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

SPEC = """\
project: rel
environments:
  dev:
    backend: local
  staging:
    backend: local
    promote_from: dev
    gates: ["accuracy >= 0.7"]
    deployment:
      strategy: canary
      canary: {steps: [50, 100], interval: 3s}
      min_requests: 5
      gates: {error_rate: "< 5%", latency_p99: "${var.p99}"}
vars: {p99: "< 5s"}
data:
  source: data/train.csv
  target: label
  expectations:
    x1: {type: float}
    label: {type: int, in: [0, 1]}
  split: {strategy: stratified, by: label, test: 0.25, seed: 1}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: split, uses: builtin/split, needs: [ingest]}
    - {name: features, uses: builtin/features, needs: [split], with: {numeric: [x1, x2]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with: {estimator: sklearn.linear_model.LogisticRegression, params: {C: 1.0}}
    - {name: evaluate, uses: builtin/evaluate, needs: [train]}
    - {name: register, uses: builtin/register, needs: [evaluate]}
model: {name: rel-model}
deployment:
  endpoint: rel
  strategy: all_at_once
"""


def _status(root: Path, env: str) -> dict:
    return json.loads(_cli(root, "status", "-e", env, "--json").stdout)


def _retrain(root: Path, c: float) -> None:
    spec = (root / "mlstack.yaml").read_text()
    spec = spec.replace("params: {C: 1.0}", f"params: {{C: {c}}}")
    (root / "mlstack.yaml").write_text(spec)
    _cli(root, "apply", "-e", "dev", "--auto-approve")


def _cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = run_cli(*args, cwd=root, timeout=300)
    if check:
        assert p.returncode == 0, f"{args}: {p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p


@pytest.fixture()
def project(tmp_path: Path):
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    write_xy_csv(tmp_path, 300)
    yield tmp_path
    for env in ("staging", "dev"):
        _cli(tmp_path, "destroy", "-e", env, "--auto-approve", check=False)


def _load_during(url: str, seconds: float) -> threading.Thread:
    from mlstack.local.serving.loadgen import run

    body = json.dumps({"instances": [{"x1": 0.3, "x2": -0.1}]}).encode()
    t = threading.Thread(
        target=run,
        args=(url, "/v1/models/rel-model:predict", body),
        kwargs={"concurrency": 2, "duration": seconds},
        daemon=True,
    )
    t.start()
    return t


def test_promote_same_digest_then_rollback(project: Path) -> None:
    _cli(project, "apply", "-e", "dev", "--auto-approve")
    dev = json.loads(_cli(project, "output", "model.rel-model", "--json").stdout)
    dev_digest = dev["model.rel-model"]["digest"]
    _cli(project, "promote", "dev", "staging")
    st = _status(project, "staging")
    backings = st["recorded"]["state"]["backings"]
    assert [b["digest"] for b in backings] == [dev_digest]  # the exact artifact
    first = st["recorded"]["champion"]

    _retrain(project, 0.05)
    url = st["recorded"]["url"]
    load = _load_during(url, 12)  # the canary's gates need live traffic
    _cli(project, "promote", "dev", "staging")
    load.join()
    after = _status(project, "staging")
    assert after["recorded"]["champion"] != first
    assert after["recorded"]["last_rollout"]["outcome"] == "promoted"

    back = _cli(project, "rollback", "-e", "staging")
    assert f"→ v{first}" in back.stdout
    restored = _status(project, "staging")
    assert restored["recorded"]["champion"] == first
    assert [b["digest"] for b in restored["recorded"]["state"]["backings"]] == [dev_digest]
    answer = json.loads(
        _cli(project, "predict", "-e", "staging", "--data", '{"x1": 1.0, "x2": 0.5}').stdout
    )
    assert answer["model_version"] == first


def test_breached_canary_rolls_back_and_says_why(project: Path) -> None:
    _cli(project, "apply", "-e", "dev", "--auto-approve")
    _cli(project, "promote", "dev", "staging")
    first = _status(project, "staging")["recorded"]["champion"]
    url = _status(project, "staging")["recorded"]["url"]

    _retrain(project, 0.07)
    # an impossible latency gate: any real version breaches it under traffic
    load = _load_during(url, 10)
    p = _cli(project, "promote", "dev", "staging", "--var", "p99=< 0.001ms", check=False)
    load.join()
    assert p.returncode == 1
    assert "rolled back" in p.stderr and "latency_p99" in p.stderr
    st = _status(project, "staging")
    assert st["recorded"]["champion"] == first  # still serving the earlier version
    assert st["recorded"]["last_rollout"]["outcome"] == "rolled_back"
    assert "latency_p99" in st["recorded"]["last_rollout"]["reason"]
    weights = st["live"]["weights"]
    assert weights == {first: 100.0}
    history = json.loads(_cli(project, "state", "history", "-e", "staging", "--json").stdout)
    assert any(
        h["status"] == "rolled_back" and "latency_p99" in h["summary"].get("reason", "")
        for h in history
    )
