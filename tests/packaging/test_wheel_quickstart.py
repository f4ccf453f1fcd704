"""The package that installs: build wheels and sdists of every distribution, install the core's
wheel into a fresh venv (pip's cache reused, nothing from the checkout on the path), and run the
quickstart with that venv's `mlstack`: validate, plan, apply, a real prediction, destroy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]
REPO = Path(__file__).resolve().parents[2]
DISTS = {
    "mlstack-core": REPO,
    "mlstack-sagemaker": REPO / "backends" / "sagemaker",
    "mlstack-stacks": REPO / "stacks",
    "mlstack-azureml": REPO / "backends" / "azureml",
    "mlstack-vertex": REPO / "backends" / "vertex",
    "mlstack-kserve": REPO / "backends" / "kserve",
    "mlstack-runtime": REPO / "runtime",
}


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "MLSTACK_", "PYTEST_", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def test_quickstart_runs_from_the_built_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    started = time.monotonic()
    dist = tmp_path / "dist"
    for src in DISTS.values():
        shutil.rmtree(src / "build", ignore_errors=True)  # stale files there would be packaged
        run(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "--outdir",
                str(dist),
                str(src),
            ]
        )
    wheels = {p.name.split("-")[0] for p in dist.glob("*.whl")}
    sdists = {p.name.rsplit("-", 1)[0] for p in dist.glob("*.tar.gz")}
    names = {n.replace("-", "_") for n in DISTS}
    assert wheels == names and sdists == names
    core = next(dist.glob("mlstack_core-*.whl"))
    with zipfile.ZipFile(core) as z:
        files = z.namelist()
        meta = z.read(next(f for f in files if f.endswith("METADATA"))).decode()
    assert "Name: mlstack-core" in meta
    assert "mlstack/statestores/s3.py" in files and "mlstack/cli/main.py" in files
    assert not any(f.startswith("tests/") for f in files)
    built = time.monotonic() - started

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    env = clean_env(venv)
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",  # byte-compiling mlflow & co. is most of a fresh install's time
            "-c",
            str(REPO / "constraints.txt"),
            "--find-links",
            str(dist),
            f"{core}[local]",
        ],
        env=env,
    )
    installed = time.monotonic() - started - built

    work = tmp_path / "quickstart"
    shutil.copytree(
        REPO / "examples" / "quickstart", work, ignore=shutil.ignore_patterns(".mlstack", "data")
    )
    where = run([py, "-c", "import mlstack; print(mlstack.__file__)"], cwd=work, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout
    mlstack = str(venv / "bin" / "mlstack")
    run([py, "prepare_data.py"], cwd=work, env=env)
    run([mlstack, "validate"], cwd=work, env=env)
    run([mlstack, "plan", "-e", "dev"], cwd=work, env=env)
    try:
        run([mlstack, "apply", "-e", "dev", "--auto-approve"], cwd=work, env=env, timeout=900)
        sample = (work / "sample.json").read_text()
        pred = run([mlstack, "predict", "-e", "dev", "--data", sample], cwd=work, env=env)
        body = json.loads(pred.stdout)
        assert body["predictions"][0] in (0, 1), body
    finally:
        subprocess.run(
            [mlstack, "destroy", "-e", "dev", "--auto-approve"],
            cwd=work,
            env=env,
            capture_output=True,
            timeout=300,
        )
    total = time.monotonic() - started
    print(f"\nwheel quickstart: build {built:.0f}s, install {installed:.0f}s, total {total:.0f}s")
