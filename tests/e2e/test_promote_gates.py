"""`promote` checks the target's gates before anything moves: metrics recorded at the source,
approvals, bake time. A refusal changes nothing and says every reason; with the gates met the
same digest lands in the target with its lineage (toy backend, real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SPEC = """\
project: gates
environments:
  dev: {backend: toy}
  prod:
    backend: toy
    promote_from: dev
    approvals: 1
    bake_time: BAKE
    gates: ["accuracy >= GATE"]
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
deployment: {endpoint: web, strategy: all_at_once}
"""


def _spec(root: Path, gate: str, bake: str) -> None:
    (root / "mlstack.yaml").write_text(SPEC.replace("GATE", gate).replace("BAKE", bake))


def test_promotion_refused_for_each_gate_then_allowed(tmp_path: Path) -> None:
    _spec(tmp_path, "0.95", "1h")
    assert run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path).returncode == 0

    refused = run_cli("promote", "dev", "prod", cwd=tmp_path)
    assert refused.returncode == 1
    err = refused.stderr
    assert "refused" in err and "Traceback" not in err
    assert "accuracy = 0.9 fails >= 0.95" in err  # the toy run measures 0.9
    assert "0 of 1 approvals" in err and "--approved-by" in err
    assert "needs 3600s" in err
    assert run_cli("state", "list", "-e", "prod", cwd=tmp_path).stdout.split() == []

    _spec(tmp_path, "0.8", "0s")
    still = run_cli("promote", "dev", "prod", cwd=tmp_path)
    assert still.returncode == 1 and "0 of 1 approvals" in still.stderr
    assert "accuracy" not in still.stderr  # only the unmet gate is named

    done = run_cli(
        "promote", "dev", "prod", "--approved-by", "alice", "--json", "--auto-approve", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    dev = json.loads(run_cli("output", "model.m", "--json", "-e", "dev", cwd=tmp_path).stdout)
    assert result["digest"] == dev["model.m"]["digest"]  # the exact artifact
    prod = json.loads(run_cli("state", "show", "model.m", "-e", "prod", cwd=tmp_path).stdout)
    assert prod["outputs"]["lineage"]["source_env"] == "dev"
    assert prod["outputs"]["digest"] == dev["model.m"]["digest"]
