"""The layering holds: cli -> engine -> manifest, core imports no backend and no heavy SDK.

Two checks: import-linter's static contracts from pyproject.toml, and what actually lands in
sys.modules when every core module is imported in a fresh interpreter (catches imports that a
static check cannot see, e.g. through a dependency or importlib).
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = (
    "boto3",
    "botocore",
    "sagemaker",
    "google.cloud",
    "azure",
    "kserve",
    "mlflow",
    "sklearn",
    "pandas",
    "pulumi",
    "kfp",
    "kubernetes",
)


def test_import_linter_contracts_are_kept() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
    assert proc.stdout.count(" KEPT") >= 3


def core_modules() -> list[str]:
    import mlstack

    out = ["mlstack.cli.main"]
    for pkg in ("manifest", "engine", "cli"):
        path = [str(Path(mlstack.__file__).parent / pkg)]
        out += [f"mlstack.{pkg}.{m.name}" for m in pkgutil.iter_modules(path)]
    return out


def test_core_modules_found() -> None:
    mods = core_modules()
    assert {"mlstack.manifest.models", "mlstack.engine.workspace", "mlstack.cli.cmd_plan"} <= set(
        mods
    )


@pytest.mark.parametrize("what", ["cli-start", "all-core"])
def test_importing_core_loads_no_heavy_sdk(what: str) -> None:
    mods = ["mlstack.cli.main"] if what == "cli-start" else core_modules()
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        f"heavy = {(*HEAVY, 'mlstack.local')!r}\n"
        "print(json.dumps(sorted(n for n in sys.modules\n"
        "    if getattr(sys.modules[n], '__file__', None) and any(n == h or n.startswith(h + '.') for h in heavy))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_cli_help_and_validate_load_no_heavy_sdk(tmp_path: Path) -> None:
    # the two commands whose start-up time is budgeted: run them for real, then look
    code = (
        "import json, sys\n"
        "from mlstack.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {(*HEAVY, 'mlstack.local')!r}\n"
        "sys.stderr.write('MODS=' + json.dumps(sorted(n for n in sys.modules\n"
        "    if getattr(sys.modules[n], '__file__', None) and any(n == h or n.startswith(h + '.') for h in heavy))) + '\\n')\n"
    )
    spec = REPO / "examples" / "quickstart" / "mlstack.yaml"
    for args in (["--help"], ["validate", "-f", str(spec)]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        line = [ln for ln in proc.stderr.splitlines() if ln.startswith("MODS=")]
        assert line, proc.stderr
        # validate finds `local` through its entry point: only the light descriptor may load
        loaded = json.loads(line[0][5:])
        assert [m for m in loaded if m not in ("mlstack.local", "mlstack.local.plugin")] == [], args
    assert "is valid" in proc.stdout
