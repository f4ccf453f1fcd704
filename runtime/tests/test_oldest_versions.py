"""The runtime's own tests, run again under the oldest versions it supports (``oldest_env.py``:
Python 3.9, pandas 1.1.3, scikit-learn 1.2.1, numpy 1.24.1, pyarrow 14.0.1, no pandera, no
Optuna), with the runtime as plain source on ``PYTHONPATH`` the way a job ships it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
UNIT_TESTS = (
    "test_expectations.py",
    "test_search.py",
    "test_entry_point.py",
    "test_serving.py",
    "test_job.py",
)


def test_unit_tests_pass_on_the_oldest_versions(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("mlstack_oldest_env", HERE / "oldest_env.py")
    assert spec is not None and spec.loader is not None
    oldest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oldest)
    python = oldest.interpreter()
    if python is None:
        pytest.skip("no Python 3.9 on this machine for the oldest supported image")
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider --import-mode=importlib\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSTACK_", "PYTEST_"))}
    env["PYTHONPATH"] = str(HERE.parent)
    r = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-c", str(ini), "--rootdir", str(HERE), "-rs"]
        + [str(HERE / t) for t in UNIT_TESTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # pandera and Optuna are absent there: their comparisons skip, everything else ran
    assert " passed" in r.stdout and "failed" not in r.stdout
