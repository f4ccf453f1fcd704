"""Running the CLI on a copy of the quickstart whose dev environment is on Vertex."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]
QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"
SA = "mlstack-runner@shop-ml-dev.iam.gserviceaccount.com"
SETTINGS = (
    "    project: shop-ml-dev\n    region: europe-west4\n    bucket: shop-ml-dev-artifacts\n"
    f"    service_account: {SA}\n"
)


def quickstart(tmp_path: Path, settings: str = SETTINGS) -> Path:
    """The quickstart with `backend: vertex` plus ``settings`` in dev, and no other change."""
    text = (QUICKSTART / "mlstack.yaml").read_text()
    dev = "  dev:\n    backend: local\n"
    assert dev in text
    if "deployment:" in settings:  # the test's deployment block replaces dev's own one
        text = text.replace("    deployment: {on_inconclusive: promote}\n", "", 1)
    (tmp_path / "mlstack.yaml").write_text(
        text.replace(dev, "  dev:\n    backend: vertex\n" + settings, 1)
    )
    data = QUICKSTART / "data" / "cancer.csv"
    if not data.exists():
        subprocess.run(
            [sys.executable, str(QUICKSTART / "prepare_data.py")],
            cwd=QUICKSTART,
            check=True,
            capture_output=True,
        )
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "cancer.csv").write_bytes(data.read_bytes())
    return tmp_path


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
    base.update(NO_COLOR="1", **env)
    return subprocess.run(
        [*MLSTACK, *args], cwd=cwd, capture_output=True, text=True, env=base, timeout=120
    )
