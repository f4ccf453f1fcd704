"""Running the CLI on a copy of the quickstart whose dev environment is on Vertex."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quickstart_copy import quickstart_project

_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]
SA = "mlstack-runner@shop-ml-dev.iam.gserviceaccount.com"
SETTINGS = (
    "    project: shop-ml-dev\n    region: europe-west4\n    bucket: shop-ml-dev-artifacts\n"
    f"    service_account: {SA}\n"
)


def quickstart(tmp_path: Path, settings: str = SETTINGS) -> Path:
    """The quickstart with `backend: vertex` plus ``settings`` in dev, and no other change."""
    return quickstart_project(tmp_path, "vertex", settings)


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
    base.update(NO_COLOR="1", **env)
    return subprocess.run(
        [*MLSTACK, *args], cwd=cwd, capture_output=True, text=True, env=base, timeout=120
    )
