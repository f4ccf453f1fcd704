"""`mlstack drift` end to end on the `local` backend: a real pipeline and endpoint, requests sent
over HTTP on 127.0.0.1 and sampled by the router (monitoring.sample_rate: 1.0), then compared
with the champion's training split.

- traffic from the training distribution: exit 0;
- traffic with x1 shifted by +3: exit 2, x1 named, x2 not;
- before any traffic: exit 1 with a message saying to send traffic.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli, write_xy_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SPEC = """\
project: drifty
environments:
  dev:
    backend: local
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
      with: {estimator: sklearn.linear_model.LogisticRegression}
    - {name: evaluate, uses: builtin/evaluate, needs: [train]}
    - {name: register, uses: builtin/register, needs: [evaluate]}
model: {name: drift-model}
deployment:
  endpoint: drifty
  strategy: all_at_once
monitoring:
  sample_rate: 1.0
  drift: {threshold: 0.2, on_drift: retrain}
"""


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = run_cli(*args, cwd=root, timeout=240)
    assert "Traceback" not in p.stderr, p.stderr
    return p


@pytest.fixture()
def project(tmp_path: Path):
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    write_xy_csv(tmp_path, 400)
    try:
        yield tmp_path
    finally:  # whatever the outcome: no model server or router outlives the test
        _cli(tmp_path, "destroy", "-e", "dev", "--auto-approve")


def _send(url: str, n: int, shift: float, seed: int) -> None:
    """One row per request, in turn as a V1 object, a V1 list in column order, V2 tensors one
    per column, and one V2 [1, 2] tensor: the log must be read back in every shape."""
    rng = random.Random(seed)
    v1, v2 = "/v1/models/drift-model:predict", "/v2/models/drift-model/infer"
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(n):
            x1, x2 = rng.gauss(shift, 1), rng.gauss(0, 1)
            if i % 4 == 0:
                r = client.post(v1, json={"instances": [{"x1": x1, "x2": x2}]})
            elif i % 4 == 1:
                r = client.post(v1, json={"instances": [[x1, x2]]})
            elif i % 4 == 2:
                tensors = [
                    {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                    for c, v in (("x1", x1), ("x2", x2))
                ]
                r = client.post(v2, json={"inputs": tensors})
            else:
                tensor = {"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [x1, x2]}
                r = client.post(v2, json={"inputs": [tensor]})
            assert r.status_code == 200, r.text


def _drift(root: Path) -> tuple[int, dict]:
    p = _cli(root, "drift", "-e", "dev", "--since", "10m", "--json")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, json.loads(p.stdout)


def test_drift_detects_a_shifted_feature(project: Path) -> None:
    p = _cli(project, "apply", "-e", "dev", "--auto-approve")
    assert p.returncode == 0, p.stdout + p.stderr
    url = json.loads(_cli(project, "status", "-e", "dev", "--json").stdout)["recorded"]["url"]

    none_yet = _cli(project, "drift", "-e", "dev")
    assert none_yet.returncode == 1
    assert "no sampled requests" in none_yet.stderr and "send traffic" in none_yet.stderr

    _send(url, 300, shift=0.0, seed=11)
    # the router flushes its log once a second; wait for the lines rather than for a time
    log = project / ".mlstack" / "envs" / "dev" / "serving" / "drifty" / "requests.jsonl"
    _wait_lines(log, 300)
    code, report = _drift(project)
    assert code == 0, report
    assert report["version"] == "1"
    by = {f["feature"]: f for f in report["features"]}
    assert set(by) == {"x1", "x2"}
    assert by["x1"]["n_live"] == 300 and by["x1"]["n_reference"] == 300
    assert not by["x1"]["drifted"] and by["x1"]["value"] < 0.2

    _send(url, 300, shift=3.0, seed=12)
    _wait_lines(log, 600)
    code, report = _drift(project)
    assert code == 2, report
    assert report["drifted_features"] == ["x1"]
    assert report["retrain"] == "mlstack apply -e dev"

    table = _cli(project, "drift", "-e", "dev", "--since", "10m")
    assert table.returncode == 2, table.stderr
    x1_line = next(ln for ln in table.stdout.splitlines() if ln.strip().startswith("x1"))
    assert "DRIFT" in x1_line and "numeric" in x1_line
    assert "mlstack apply -e dev" in table.stdout


def _wait_lines(path: Path, n: int, tries: int = 200) -> None:
    import time

    for _ in range(tries):
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    have = len(path.read_text().splitlines()) if path.exists() else 0
    raise AssertionError(f"{path}: {have} lines, expected {n}")
