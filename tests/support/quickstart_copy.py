"""The quickstart example copied into a test's folder on another backend.

One helper for every backend's tests, so a change to the example (a new environment setting, a
new data column) is absorbed here once instead of in each backend's copy.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"


def quickstart_data() -> Path:
    """The example's data file, made by its prepare step on first use."""
    import fcntl

    data = QUICKSTART / "data" / "cancer.csv"
    # test processes running side by side (pytest-xdist) make it once: the lock is held while it
    # is written, so nobody reads a half-written file
    with open(QUICKSTART / ".prepare_data.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not data.exists():
            subprocess.run(
                [sys.executable, str(QUICKSTART / "prepare_data.py")],
                cwd=QUICKSTART,
                check=True,
                capture_output=True,
            )
    return data


def copy_data(root: Path) -> Path:
    """The example's data under ``root/data`` (where its ``data.source`` points)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    target = root / "data" / "cancer.csv"
    target.write_bytes(quickstart_data().read_bytes())
    return target


def on_backend(text: str, backend: str, settings: str = "", envs: Iterable[str] = ("dev",)) -> str:
    """The example's spec with each of ``envs`` moved from `backend: local` to ``backend`` plus
    ``settings`` (indented environment keys). A `deployment:` in ``settings`` replaces the one
    the environment already has."""
    for env in envs:
        local = f"  {env}:\n    backend: local\n"
        assert local in text, f"the quickstart's {env} is no longer `backend: local`"
        start = text.index(local)
        end = start + len(local)
        nxt = re.compile(r"^  \S", re.M).search(text, end)
        block = text[end : nxt.start() if nxt else len(text)]
        if "deployment:" in settings:
            block = re.sub(r"^    deployment:.*\n(?:      .*\n)*", "", block, flags=re.M)
        text = (
            text[:start]
            + f"  {env}:\n    backend: {backend}\n"
            + settings
            + block
            + text[nxt.start() if nxt else len(text) :]
        )
    return text


def quickstart_project(
    root: Path, backend: str, settings: str = "", envs: Iterable[str] = ("dev",)
) -> Path:
    """The quickstart in ``root`` with ``envs`` on ``backend``, and no other change."""
    text = on_backend((QUICKSTART / "mlstack.yaml").read_text(), backend, settings, envs)
    (root / "mlstack.yaml").write_text(text)
    copy_data(root)
    return root
