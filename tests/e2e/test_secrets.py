"""Secrets are referenced (${secret:NAME}), resolved only at the moment of use, and never reach
plan output, state or history. Driven through the CLI with the toy backend (a real entry point)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import make_env, run_cli

SECRET = "s3cr3t-value-that-must-not-leak"

SPEC = """\
project: sec
environments:
  dev:
    backend: toy
    flavour: "${secret:TOY_TOKEN}"
pipeline:
  stages:
    - {name: a, run: "echo a", env: {TOKEN: "${secret:TOY_TOKEN}"}}
model: {name: m}
"""


def test_secret_never_reaches_plan_state_or_history(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    plan = run_cli("plan", "--json", cwd=tmp_path, env=make_env(TOY_TOKEN=SECRET))
    assert plan.returncode == 0, plan.stderr
    assert "${secret:TOY_TOKEN}" in plan.stdout  # the reference is visible...
    assert SECRET not in plan.stdout + plan.stderr  # ...the value is not
    applied = run_cli("apply", "--auto-approve", cwd=tmp_path, env=make_env(TOY_TOKEN=SECRET))
    assert applied.returncode == 0, applied.stderr
    assert SECRET not in applied.stdout + applied.stderr
    history = run_cli("state", "history", "--json", cwd=tmp_path, env=make_env(TOY_TOKEN=SECRET))
    assert history.returncode == 0
    assert SECRET not in history.stdout
    for f in (tmp_path / ".mlstack").rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f"secret leaked into {f}"


def test_secret_resolution_error_is_clear(tmp_path: Path) -> None:
    from mlstack.engine.backend import Context
    from mlstack.errors import BackendError

    ctx = Context(workdir=tmp_path, environment="dev")
    os.environ.pop("MLSTACK_TEST_UNSET_SECRET", None)
    try:
        ctx.secret("MLSTACK_TEST_UNSET_SECRET")
    except BackendError as e:
        assert "MLSTACK_TEST_UNSET_SECRET" in e.render()
        assert "export" in e.render()
    else:
        raise AssertionError("an unset secret must raise")
