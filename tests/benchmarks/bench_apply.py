"""Whole-process time of a no-op `mlstack apply` / `mlstack plan` on the quickstart.

Run: ``.venv/bin/python tests/benchmarks/bench_apply.py [--repeats 10]`` (prints a markdown
table). The quickstart is copied to a temporary folder, its data written by its own
``prepare_data.py``, and applied once (pipeline, model, endpoint). Then each command below is
started as a fresh process (``.venv/bin/mlstack ...``, as a user types it) ``repeats`` times,
interleaved so that load from elsewhere hits every command alike; the table gives the median and
the range. A no-op must run no stage: the benchmark checks that the number of recorded pipeline
runs does not change. The endpoint is destroyed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MLSTACK = str(Path(sys.executable).with_name("mlstack"))

COMMANDS: dict[str, list[str]] = {
    "`mlstack apply -e dev --auto-approve` (no-op)": ["apply", "-e", "dev", "--auto-approve"],
    "`mlstack plan -e dev` (no-op)": ["plan", "-e", "dev"],
    "`mlstack plan -e dev --refresh` (no-op, endpoint checked)": ["plan", "-e", "dev", "--refresh"],
    "`mlstack apply -e dev --refresh --auto-approve` (no-op)": [
        "apply",
        "-e",
        "dev",
        "--refresh",
        "--auto-approve",
    ],
}


def run(root: Path, args: list[str], timeout: float = 300) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(
        [MLSTACK, *args], cwd=root, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"mlstack {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return wall, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    n = ap.parse_args().repeats
    root = Path(tempfile.mkdtemp(prefix="mlstack-bench-apply-"))
    for f in ("mlstack.yaml", "prepare_data.py", "sample.json"):
        shutil.copy(REPO / "examples/quickstart" / f, root / f)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=root, check=True, capture_output=True)
    try:
        first, _ = run(root, ["apply", "-e", "dev", "--auto-approve"])
        runs = root / ".mlstack/envs/dev/runs"
        before = len(list(runs.glob("*.json")))
        samples: dict[str, list[float]] = {k: [] for k in COMMANDS}
        for _ in range(n):
            for label, args in COMMANDS.items():
                wall, out = run(root, args)
                if "No changes" not in out:
                    raise SystemExit(f"not a no-op: mlstack {' '.join(args)}\n{out}")
                samples[label].append(wall)
        assert len(list(runs.glob("*.json"))) == before, "a no-op apply ran the pipeline"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = time.perf_counter() - t
    finally:
        subprocess.run(
            [MLSTACK, "destroy", "-e", "dev", "--auto-approve"],
            cwd=root,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {n} runs each (interleaved), whole process\n")
    print("| command | median | min – max |")
    print("|---|---|---|")
    print(
        f"| first `mlstack apply -e dev --auto-approve` (7 stages, MLflow, endpoint) | "
        f"{first:.2f} s | one run |"
    )
    for label, v in samples.items():
        print(f"| {label} | **{statistics.median(v):.3f} s** | {min(v):.3f} – {max(v):.3f} s |")
    print(f"| `python -c pass` (interpreter start, for scale) | {bare:.3f} s | one run |")


if __name__ == "__main__":
    main()
