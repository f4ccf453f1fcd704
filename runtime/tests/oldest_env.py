"""The oldest environment ``mlstack_runtime`` supports, as a venv of its own (built once, cached).

SageMaker's scikit-learn 1.2-1 image: Python 3.9, pandas 1.1.3, scikit-learn 1.2.1, pyarrow
14.0.1 (its Dockerfile), numpy 1.24.1 (see docs/runtime.md for where each figure comes from).
No pandera, no Optuna: the runtime must get by without them.

``python runtime/tests/oldest_env.py`` (``make oldest-env``) builds ``.venv-py39`` in the
checkout and prints its interpreter; tests call ``interpreter()``, which builds it on first use
and returns None (the test skips) where no Python 3.9 is installed. A lock file keeps parallel
test processes from building it twice; a marker file holding the pins says it is complete.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-py39"
PINS = (
    "pandas==1.1.3",
    "numpy==1.24.1",
    "scikit-learn==1.2.1",
    "pyarrow==14.0.1",
    "joblib==1.2.0",
    "pytest==7.4.4",  # to run the runtime's own tests there (not in the image)
)
MARKER = VENV / ".mlstack-oldest"


def python39() -> str | None:
    """A working Python 3.9: ``MLSTACK_PY39``, pyenv's, or ``python3.9`` on PATH."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [os.environ.get("MLSTACK_PY39", "")]
    candidates += sorted(glob.glob(f"{root}/versions/3.9*/bin/python3.9"), reverse=True)
    candidates.append(shutil.which("python3.9") or "")
    check = "import sys, venv; assert sys.version_info[:2] == (3, 9)"
    for c in candidates:
        if c and os.access(c, os.X_OK):
            if subprocess.run([c, "-c", check], capture_output=True).returncode == 0:
                return c
    return None


def interpreter() -> Path | None:
    base = python39()
    if base is None:
        return None
    python = VENV / "bin" / "python"
    want = "\n".join(PINS)
    if MARKER.is_file() and MARKER.read_text() == want:
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(REPO / ".venv-py39.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MARKER.is_file() and MARKER.read_text() == want:
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--only-binary=:all:", *PINS],
            check=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        MARKER.write_text(want)
    return python


if __name__ == "__main__":
    found = interpreter()
    if found is None:
        print("no Python 3.9 found (set MLSTACK_PY39)", file=sys.stderr)
        sys.exit(1)
    print(found)
