"""`apply FILE` replays the saved plan's options (targets, destroy, refresh) and refuses it when
the platform changed since (toy backend through a real entry point, real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SPEC = """\
project: pf
environments:
  dev: {backend: toy}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
"""


def _state(root: Path) -> list[str]:
    return run_cli("state", "list", cwd=root).stdout.split()


def test_a_saved_destroy_plan_destroys(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert run_cli("apply", "--auto-approve", cwd=tmp_path).returncode == 0
    assert len(_state(tmp_path)) == 4
    saved = run_cli("plan", "--destroy", "-out", "gone.plan", cwd=tmp_path)
    assert saved.returncode == 0 and "4 to destroy" in saved.stdout
    done = run_cli(
        "apply", "gone.plan", cwd=tmp_path
    )  # no terminal, no --auto-approve: a saved plan
    assert done.returncode == 0, done.stderr
    assert "Destroy complete" in done.stdout
    assert _state(tmp_path) == []


def test_a_saved_plan_is_refused_when_the_platform_changed(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert run_cli("apply", "--auto-approve", cwd=tmp_path).returncode == 0
    db = tmp_path / ".mlstack" / "envs" / "dev" / "toy.json"
    original = db.read_text()
    data = json.loads(original)
    del data["resources"]["infra"]  # deleted outside mlstack: the refreshing plan recreates it
    db.write_text(json.dumps(data))
    saved = run_cli("plan", "-out", "fix.plan", cwd=tmp_path)
    assert saved.returncode == 0 and "+ infra.dev" in saved.stdout
    db.write_text(original)  # ...and someone put it back before the plan was applied
    refused = run_cli("apply", "fix.plan", cwd=tmp_path)
    assert refused.returncode == 1
    assert "what exists on the platform changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(_state(tmp_path)) == 4  # state untouched


def test_refresh_only_plans_cannot_be_saved(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    p = run_cli("plan", "--refresh-only", "-out", "x.plan", cwd=tmp_path)
    assert p.returncode == 1 and "cannot be saved" in p.stderr
    assert not (tmp_path / "x.plan").exists()
