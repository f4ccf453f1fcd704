"""`rollback` in an environment that trains is a plan too: it pins the endpoint to the earlier
version (plan and apply then change nothing) until the pipeline trains a new model (toy backend,
real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SPEC = """\
project: pin
environments:
  dev: {backend: toy}
pipeline:
  stages:
    - {name: a, run: "echo STEP"}
model: {name: m}
deployment: {endpoint: web, strategy: all_at_once}
"""


def _cli(root: Path, *args: str, status: int = 0) -> str:
    p = run_cli(*args, cwd=root)
    assert p.returncode == status, f"mlstack {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p.stdout + p.stderr


def _train(root: Path, step: str) -> None:
    (root / "mlstack.yaml").write_text(SPEC.replace("STEP", step))
    _cli(root, "apply", "-e", "dev", "--auto-approve")


def _serving(root: Path) -> dict[str, float]:
    return dict(json.loads(_cli(root, "status", "-e", "dev", "--json"))["live"]["weights"])


def test_rollback_in_dev_pins_until_the_next_training(tmp_path: Path) -> None:
    _train(tmp_path, "one")
    _train(tmp_path, "two")
    assert _serving(tmp_path) == {"2": 100.0}

    out = _cli(tmp_path, "rollback", "-e", "dev", "--auto-approve")
    assert "strategy at once (rollback)" in out and "v2 → v1" in out
    assert _serving(tmp_path) == {"1": 100.0}
    _cli(tmp_path, "plan", "-e", "dev", "--detailed-exitcode")
    assert "No changes." in _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
    assert _serving(tmp_path) == {"1": 100.0}

    # a new model ends the pin: it rolls out as usual, and the plan is empty again
    _train(tmp_path, "three")
    assert _serving(tmp_path) == {"3": 100.0}
    _cli(tmp_path, "plan", "-e", "dev", "--detailed-exitcode")
