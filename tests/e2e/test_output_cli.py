"""`mlstack output ADDRESS.ATTR` prints one bare value for scripts (toy backend, real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SPEC = """\
project: out
environments:
  dev: {backend: toy}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
"""


def test_output_attribute_and_errors(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert run_cli("apply", "--auto-approve", cwd=tmp_path).returncode == 0
    bare = run_cli("output", "infra.dev.bucket", cwd=tmp_path)
    assert (bare.returncode, bare.stdout) == (0, "toy-dev\n")
    whole = json.loads(run_cli("output", "model.m", "--json", cwd=tmp_path).stdout)
    assert whole["model.m"]["version"] == "1"
    missing = run_cli("output", "infra.dev.nope", cwd=tmp_path)
    assert missing.returncode == 1 and "has no output 'nope'" in missing.stderr
    typo = run_cli("output", "infra.deb", cwd=tmp_path)
    assert typo.returncode == 1 and "did you mean 'infra.dev'" in typo.stderr
    assert "Traceback" not in missing.stderr + typo.stderr
