"""`apply FILE` replays the saved plan's options (targets, destroy, refresh) and refuses it when
the platform changed since (toy backend through a real entry point, real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toybackend"
SPEC = """\
project: pf
environments:
  dev: {backend: toy}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
"""


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(TOY), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "mlstack.cli.main", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _state(root: Path) -> list[str]:
    return _cli(root, "state", "list").stdout.split()


def test_a_saved_destroy_plan_destroys(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert _cli(tmp_path, "apply", "--auto-approve").returncode == 0
    assert len(_state(tmp_path)) == 4
    saved = _cli(tmp_path, "plan", "--destroy", "-out", "gone.plan")
    assert saved.returncode == 0 and "4 to destroy" in saved.stdout
    done = _cli(tmp_path, "apply", "gone.plan")  # no terminal, no --auto-approve: a saved plan
    assert done.returncode == 0, done.stderr
    assert "Destroy complete" in done.stdout
    assert _state(tmp_path) == []


def test_a_saved_plan_is_refused_when_the_platform_changed(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert _cli(tmp_path, "apply", "--auto-approve").returncode == 0
    db = tmp_path / ".mlstack" / "envs" / "dev" / "toy.json"
    original = db.read_text()
    data = json.loads(original)
    del data["resources"]["infra"]  # deleted outside mlstack: the refreshing plan recreates it
    db.write_text(json.dumps(data))
    saved = _cli(tmp_path, "plan", "-out", "fix.plan")
    assert saved.returncode == 0 and "+ infra.dev" in saved.stdout
    db.write_text(original)  # ...and someone put it back before the plan was applied
    refused = _cli(tmp_path, "apply", "fix.plan")
    assert refused.returncode == 1
    assert "what exists on the platform changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(_state(tmp_path)) == 4  # state untouched


def test_refresh_only_plans_cannot_be_saved(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    p = _cli(tmp_path, "plan", "--refresh-only", "-out", "x.plan")
    assert p.returncode == 1 and "cannot be saved" in p.stderr
    assert not (tmp_path / "x.plan").exists()
