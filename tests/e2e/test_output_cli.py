"""`mlstack output ADDRESS.ATTR` prints one bare value for scripts (toy backend, real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toybackend"
SPEC = """\
project: out
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
    )


def test_output_attribute_and_errors(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    assert _cli(tmp_path, "apply", "--auto-approve").returncode == 0
    bare = _cli(tmp_path, "output", "infra.dev.bucket")
    assert (bare.returncode, bare.stdout) == (0, "toy-dev\n")
    whole = json.loads(_cli(tmp_path, "output", "model.m", "--json").stdout)
    assert whole["model.m"]["version"] == "1"
    missing = _cli(tmp_path, "output", "infra.dev.nope")
    assert missing.returncode == 1 and "has no output 'nope'" in missing.stderr
    typo = _cli(tmp_path, "output", "infra.deb")
    assert typo.returncode == 1 and "did you mean 'infra.dev'" in typo.stderr
    assert "Traceback" not in missing.stderr + typo.stderr
