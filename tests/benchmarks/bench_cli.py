"""Start-up cost of the CLI: median process wall time (and CPU time) of `mlstack --help` and
`mlstack validate` on examples/quickstart, against `python -c pass` in the same venv.

    .venv/bin/python tests/benchmarks/bench_cli.py [--runs 20]

Wall time is what a user feels; CPU time (user+sys of the child) is steadier on a busy machine.
Reference figures measured on this machine (issue 2): dvc --help 0.13 s, kedro --help 0.37 s,
prefect --help 1.3 s, zenml --help 1.8 s, mlflow --help 2.95 s, python -c pass 0.012 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUICKSTART = REPO / "examples" / "quickstart" / "mlstack.yaml"
TARGET_MS = 150.0


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    subprocess.run(argv, capture_output=True, check=False)  # warm the page cache
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    mlstack = str(BIN / "mlstack")
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mlstack --help": [mlstack, "--help"],
        "mlstack validate (quickstart)": [mlstack, "validate", "-f", str(QUICKSTART)],
        "mlstack validate --no-cache": [mlstack, "validate", "--no-cache", "-f", str(QUICKSTART)],
    }
    load = os.getloadavg()[0]
    print(f"runs per case: {args.runs}; load average at start: {load:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':32} {'median wall':>12} {'median CPU':>11}")
    results = {}
    for name, argv in cases.items():
        wall, cpu = measure(argv, args.runs)
        results[name] = wall
        flag = ""
        if name.startswith("mlstack"):
            flag = "  ok" if wall <= TARGET_MS else f"  over the {TARGET_MS:.0f} ms target"
        print(f"{name:32} {wall:9.1f} ms {cpu:8.1f} ms{flag}")
    print(
        "\nfor comparison: dvc --help 130 ms, kedro --help 370 ms, prefect --help 1300 ms, "
        "zenml --help 1800 ms, mlflow --help 2950 ms"
    )


if __name__ == "__main__":
    main()
