"""Secrets stay out of remote state as they stay out of local state: the raw objects in the
bucket (state and history) and the Markdown plan never hold a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlstack.engine.objectstore import open_store
from mlstack.manifest.models import StateConfig
from tests.conftest import make_env, run_cli

pytestmark = pytest.mark.e2e
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


def test_secret_never_reaches_the_bucket_or_the_markdown_plan(remote, tmp_path: Path) -> None:
    srv, block = remote
    spec = yaml.safe_load(SPEC)
    spec["state"] = block
    (tmp_path / "mlstack.yaml").write_text(yaml.safe_dump(spec))
    env = make_env(**srv.env, TOY_TOKEN=SECRET)
    md = run_cli("plan", "--format", "markdown", cwd=tmp_path, env=env)
    assert md.returncode == 0, md.stderr
    assert "${secret:TOY_TOKEN}" in md.stdout and SECRET not in md.stdout + md.stderr
    applied = run_cli("apply", "--auto-approve", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    cfg = StateConfig(**block)
    raw = open_store(cfg.backend, cfg.model_dump()).read(f"{block['prefix']}/dev/state.json")
    assert raw is not None and b'"resources"' in raw.data
    assert b"${secret:TOY_TOKEN}" in raw.data and SECRET.encode() not in raw.data
    assert not (tmp_path / ".mlstack" / "state").exists()  # nothing of state on this disk
