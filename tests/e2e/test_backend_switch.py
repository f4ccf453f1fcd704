"""Changing an environment's `backend:` replaces its resources: plan says -/+ with the reason,
apply removes the old ones on the old platform (when it can still be loaded) and creates them on
the new one. Toy backend (a real entry point) → the embedded local backend, real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toybackend"
SPEC = """\
project: sw
environments:
  dev: {backend: BACKEND}
pipeline:
  stages:
    - {name: hello, run: "echo hello"}
"""


def _cli(root: Path, *args: str, toy: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    if toy:
        env["PYTHONPATH"] = str(TOY)
    return subprocess.run(
        [sys.executable, "-m", "mlstack.cli.main", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _switch(root: Path, backend: str) -> None:
    (root / "mlstack.yaml").write_text(SPEC.replace("BACKEND", backend))


def test_switching_backend_replaces_and_cleans_the_old_platform(tmp_path: Path) -> None:
    _switch(tmp_path, "toy")
    assert _cli(tmp_path, "apply", "--auto-approve").returncode == 0
    toy_db = tmp_path / ".mlstack" / "envs" / "dev" / "toy.json"
    assert "pipeline" in json.loads(toy_db.read_text())["resources"]

    _switch(tmp_path, "local")
    plan = _cli(tmp_path, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "-/+ pipeline.sw" in plan.stdout and "(backend changed)" in plan.stdout
    applied = _cli(tmp_path, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # the toy platform no longer holds the old pipeline or infrastructure
    assert json.loads(toy_db.read_text())["resources"] == {}
    listed = json.loads(_cli(tmp_path, "plan", "--json").stdout)
    assert listed["resource_changes"] == []
    shown = json.loads(_cli(tmp_path, "state", "show", "run.sw").stdout)
    assert shown["inputs"]["backend"] == "local"


def test_an_old_backend_that_is_gone_is_reported_not_fatal(tmp_path: Path) -> None:
    _switch(tmp_path, "toy")
    assert _cli(tmp_path, "apply", "--auto-approve").returncode == 0
    _switch(tmp_path, "local")
    applied = _cli(tmp_path, "apply", "--auto-approve", toy=False)  # toy uninstalled meanwhile
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "backend 'toy' could not be loaded" in applied.stderr
    assert "Traceback" not in applied.stderr
