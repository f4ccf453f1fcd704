"""`validate` remembers a file that passed and answers from that memory only while nothing the
verdict depends on has changed: the file, the env vars it mentions, --var, the backends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOY = Path(__file__).resolve().parents[2] / "fixtures" / "toybackend"

SPEC = """\
project: cache
environments:
  dev: {backend: toy, flavour: "${env:FLAVOUR}"}
pipeline:
  stages:
    - {name: a, run: "echo ${var.word}"}
vars: {word: hi}
"""

# Runs validate in a fresh interpreter and reports whether pydantic had to be imported.
PROBE = """
import sys
from mlstack.cli.main import main
try:
    main(["validate", *sys.argv[1:]])
except SystemExit as e:
    code = e.code
print("PYDANTIC" if "pydantic" in sys.modules else "NO-PYDANTIC", code)
"""


def _validate(root: Path, toy: Path, *args: str, flavour: str = "x"):
    env = dict(os.environ, PYTHONPATH=str(toy), FLAVOUR=flavour, NO_COLOR="1")
    p = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    last = p.stdout.strip().splitlines()[-1]
    imported, code = last.split()
    return imported == "PYDANTIC", int(code), p.stdout + p.stderr


def test_hit_only_while_inputs_are_unchanged(tmp_path: Path) -> None:
    toy = tmp_path / "toy"
    shutil.copytree(TOY, toy)
    root = tmp_path / "proj"
    root.mkdir()
    spec = root / "mlstack.yaml"
    spec.write_text(SPEC)

    cold, code, out = _validate(root, toy)
    assert (cold, code) == (True, 0), out
    warm, code, out = _validate(root, toy)
    assert (warm, code) == (False, 0), out  # answered from the cache
    assert "is valid" in out

    # another value of a referenced env var: validated again
    again, code, _ = _validate(root, toy, flavour="y")
    assert (again, code) == (True, 0)
    # a --var: validated again
    again, code, _ = _validate(root, toy, "--var", "word=yo", flavour="y")
    assert (again, code) == (True, 0)
    # the backend's descriptor module changed: validated again
    plugin = toy / "mlstack_toy" / "__init__.py"
    later = time.time() + 5
    os.utime(plugin, (later, later))
    again, code, _ = _validate(root, toy, "--var", "word=yo", flavour="y")
    assert (again, code) == (True, 0)
    # --no-cache always validates
    again, code, _ = _validate(root, toy, "--no-cache", "--var", "word=yo", flavour="y")
    assert again is True and code == 0


def test_a_broken_edit_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    spec = root / "mlstack.yaml"
    spec.write_text(SPEC)
    assert _validate(root, TOY)[1] == 0
    assert _validate(root, TOY)[0] is False
    spec.write_text(SPEC.replace("stages:", "stgaes:"))
    used, code, out = _validate(root, TOY)
    assert used is True and code == 1
    assert "did you mean 'stages'" in out and "mlstack.yaml:5:3" in out
    # errors are not remembered: still an error, still computed
    used, code, _ = _validate(root, TOY)
    assert used is True and code == 1


def test_a_removed_data_file_or_script_is_not_answered_from_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "steps").mkdir()
    (root / "data" / "t.csv").write_text("x,label\n1,0\n")
    (root / "steps" / "go.py").write_text("print('go')\n")
    (root / "mlstack.yaml").write_text(
        SPEC.replace('run: "echo ${var.word}"', "run: python steps/go.py")
        + "data: {source: data/t.csv, target: label}\n"
    )
    assert _validate(root, TOY)[1] == 0
    assert _validate(root, TOY)[:2] == (False, 0)  # cached while nothing changed
    (root / "data" / "t.csv").unlink()
    used, code, out = _validate(root, TOY)
    assert (used, code) == (True, 1) and "data file 'data/t.csv' not found" in out, out
    (root / "data" / "t.csv").write_text("x,label\n1,0\n")
    assert _validate(root, TOY)[1] == 0
    (root / "steps" / "go.py").unlink()
    used, code, out = _validate(root, TOY)
    assert (used, code) == (True, 1) and "script 'steps/go.py' not found" in out, out
