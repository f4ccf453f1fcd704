"""Shared fixtures: the toy backend "installed" on PYTHONPATH, and the CLI as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "tests" / "fixtures" / "toybackend"
# the installed console script, as a user runs it
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]

TOY_SPEC = """\
project: toyproj
environments:
  dev:
    backend: toy
pipeline:
  parallelism: 4
  stages:
    - name: prep
      run: echo prep
    - name: fit
      run: echo fit
      needs: [prep]
model:
  name: toymodel
"""


def make_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process that sees the toy backend (and no TOY_* knobs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOY_", "MLSTACK_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    """`mlstack ARGS` in a fresh process; stdin is not a terminal unless the caller says so."""
    return subprocess.run(
        [*MLSTACK, *args],
        cwd=cwd,
        env=env or make_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=stdin,
    )


def write_xy_csv(root: Path, rows: int, seed: int = 3) -> Path:
    """data/train.csv with two gaussian features and a label that depends on them."""
    import random

    rng = random.Random(seed)
    lines = ["x1,x2,label"]
    for _ in range(rows):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        lines.append(f"{x1:.4f},{x2:.4f},{int(x1 + 0.3 * x2 > 0)}")
    (root / "data").mkdir(exist_ok=True)
    path = root / "data" / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_spec(root: Path, text: str) -> Path:
    path = root / "mlstack.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project on the toy backend: infra, pipeline, run and model; no endpoint."""
    write_spec(tmp_path, TOY_SPEC)
    return tmp_path


@pytest.fixture
def toy_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the toy backend importable and discoverable in this process."""
    monkeypatch.syspath_prepend(str(TOY))


@pytest.fixture
def cli():
    """`cli(*args, cwd=..., env=...)`: run mlstack as a real process (see run_cli)."""
    return run_cli


@pytest.fixture
def toy_env():
    """`toy_env(TOY_SLEEP="3", ...)`: a process environment that sees the toy backend."""
    return make_env


@pytest.fixture
def mlstack_cmd() -> list[str]:
    """The argv prefix that starts mlstack, for tests that need a Popen."""
    return list(MLSTACK)
