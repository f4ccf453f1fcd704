"""Whole-process `mlstack plan -e dev` time on the quickstart with `backend: sagemaker`.

Usage: .venv/bin/python backends/sagemaker/benchmarks/bench_plan.py [--runs 5]

Prints the median (and all runs) of: the first plan in a fresh project (nothing cached), and
repeated plans of the unchanged spec. `--no-refresh`: no AWS call is made (refresh would ask
AWS what exists, a network round trip that is not what is measured here); nothing is applied.
Results are written down in the report of issue 5 (docs/benchmarks.md is not ours to edit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart"
MLSTACK = Path(sys.executable).parent / "mlstack"
SETTINGS = (
    "    region: eu-west-1\n    role: arn:aws:iam::123456789012:role/mlstack-sm\n"
    "    bucket: quickstart-artifacts\n"
)


def project(root: Path) -> None:
    text = (QUICKSTART / "mlstack.yaml").read_text()
    text = text.replace(
        "  dev:\n    backend: local\n", "  dev:\n    backend: sagemaker\n" + SETTINGS
    )
    (root / "mlstack.yaml").write_text(text)
    (root / "data").mkdir()
    data = QUICKSTART / "data" / "cancer.csv"
    if not data.exists():
        subprocess.run([sys.executable, "prepare_data.py"], cwd=QUICKSTART, check=True)
    shutil.copy(data, root / "data" / "cancer.csv")


def plan(root: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["NO_COLOR"] = "1"
    start = time.perf_counter()
    r = subprocess.run(
        [str(MLSTACK), "plan", "-e", "dev", "--no-refresh"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if r.returncode not in (0, 2):
        sys.exit(f"plan failed:\n{r.stdout}\n{r.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            project(root)
            cold.append(plan(root))
            warm.append(plan(root))
    print(
        f"first plan (nothing cached): median {statistics.median(cold):.2f}s "
        f"runs {', '.join(f'{t:.2f}' for t in cold)}"
    )
    print(
        f"plan again, spec unchanged:  median {statistics.median(warm):.2f}s "
        f"runs {', '.join(f'{t:.2f}' for t in warm)}"
    )


if __name__ == "__main__":
    main()
