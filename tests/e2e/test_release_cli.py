"""Promotion and rollback through the real CLI on the `local` backend: real pipeline, MLflow,
KServe model servers and router on 127.0.0.1, real traffic from the bounded load generator.

- promote dev → staging serves the same artifact digest in staging;
- a canary whose gate is breached under live traffic is rolled back by the controller, the
  endpoint keeps serving the earlier version, and the reason shows in `status` and history;
- `rollback` restores the earlier version after a successful promotion;
- a canary that gets no traffic is held at its step (exit 1, saying why) unless the
  environment opted in to promote on inconclusive gates; `apply` resumes it, `rollback` aborts it.

Load runs for as long as the command under test does (started before, stopped after), so the
gates see traffic however slowly a loaded machine starts the new version's model server.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlstack.local.serving.loadgen import Load
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
      on_inconclusive: ${var.inconclusive}
      gates: {error_rate: "< 5%", latency_p99: "${var.p99}"}
vars: {p99: "< 5s", inconclusive: hold}
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
    try:
        yield tmp_path
    finally:  # whatever the outcome: no model server or router outlives the test
        for env in ("staging", "dev"):
            _cli(tmp_path, "destroy", "-e", env, "--auto-approve", check=False)


def _under_load(url: str, root: Path, *args: str, check: bool = True) -> tuple[Any, Any]:
    """Run `mlstack ARGS` while 4 clients send requests to ``url`` the whole time."""
    body = json.dumps({"instances": [{"x1": 0.3, "x2": -0.1}]}).encode()
    load = Load(url, "/v1/models/rel-model:predict", body, concurrency=4, duration=600).start()
    try:
        p = _cli(root, *args, check=check)
    finally:
        load.stop()
    return p, load.join(60)


def test_promote_same_digest_then_rollback(project: Path) -> None:
    _cli(project, "apply", "-e", "dev", "--auto-approve")
    dev = json.loads(_cli(project, "output", "model.rel-model", "--json").stdout)
    dev_digest = dev["model.rel-model"]["digest"]
    _cli(project, "promote", "dev", "staging", "--auto-approve")
    st = _status(project, "staging")
    backings = st["recorded"]["state"]["backings"]
    assert [b["digest"] for b in backings] == [dev_digest]  # the exact artifact
    first = st["recorded"]["champion"]

    _retrain(project, 0.05)
    url = st["recorded"]["url"]
    _, traffic = _under_load(url, project, "promote", "dev", "staging", "--auto-approve")
    assert traffic.failed == 0, traffic.failures[:5]
    after = _status(project, "staging")
    assert after["recorded"]["champion"] != first
    assert after["recorded"]["last_rollout"]["outcome"] == "promoted"

    back = _cli(project, "rollback", "-e", "staging", "--auto-approve")
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
    _cli(project, "promote", "dev", "staging", "--auto-approve")
    first = _status(project, "staging")["recorded"]["champion"]
    url = _status(project, "staging")["recorded"]["url"]

    _retrain(project, 0.07)
    # an impossible latency gate: any real version breaches it under traffic
    p, _ = _under_load(
        url,
        project,
        "promote", "dev", "staging", "--auto-approve", "--var", "p99=< 0.001ms",
        check=False,
    )  # fmt: skip
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


def test_a_canary_without_traffic_holds_until_resumed_or_rolled_back(project: Path) -> None:
    _cli(project, "apply", "-e", "dev", "--auto-approve")
    _cli(project, "promote", "dev", "staging", "--auto-approve")
    first = _status(project, "staging")["recorded"]["champion"]

    # no traffic at all: the 50% step cannot be judged, so the rollout holds there and says why
    _retrain(project, 0.2)
    p = _cli(project, "promote", "dev", "staging", "--auto-approve", check=False)
    assert p.returncode == 1
    assert "HELD" in p.stderr and "could not be judged" in p.stderr
    assert "is held" in p.stderr and "mlstack rollback" in p.stderr
    st = _status(project, "staging")
    second = st["recorded"]["last_rollout"]["version"]
    assert (
        st["recorded"]["champion"] == first and st["recorded"]["last_rollout"]["outcome"] == "held"
    )
    assert st["live"]["weights"] == {first: 50.0, second: 50.0}  # keeps what serves
    # the rest of the rollout is still desired: plan offers it
    assert (
        _cli(project, "plan", "-e", "staging", "--detailed-exitcode", check=False).returncode == 2
    )

    # rollback aborts the held rollout: the earlier version takes all traffic again
    back = _cli(project, "rollback", "-e", "staging", "--auto-approve")
    assert f"v{first} → v{first}" not in back.stdout
    st = _status(project, "staging")
    assert st["recorded"]["champion"] == first and st["live"]["weights"] == {first: 100.0}
    assert _cli(project, "plan", "-e", "staging", "--detailed-exitcode").returncode == 0

    # an environment that opts in promotes on inconclusive gates, with a warning
    p = _cli(
        project, "promote", "dev", "staging", "--auto-approve", "--var", "inconclusive=promote"
    )
    assert "could not be judged" in p.stderr and "on_inconclusive: promote" in p.stderr
    st = _status(project, "staging")
    assert st["recorded"]["champion"] == second and st["live"]["weights"] == {second: 100.0}
