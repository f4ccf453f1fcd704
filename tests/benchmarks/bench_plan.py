"""Plan time against pipeline size: generated specs with 100 / 1,000 / 10,000 custom `run:`
stages on the toy backend (each stage needs the one before it and one further back).

    .venv/bin/python tests/benchmarks/bench_plan.py [--sizes 100,1000,10000] [--runs 3]

Reports, per size: the in-process time of Workspace.plan (spec already loaded), the in-process
time of load + plan, and the whole `mlstack plan` process; then time per stage, which stays
flat when plan time grows linearly. Target (issue 2): 1,000 stages in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "fixtures" / "toybackend"


def spec(n: int) -> str:
    lines = ["project: bench", "environments:", "  dev: {backend: toy}", "pipeline:", "  stages:"]
    for i in range(n):
        needs = sorted({i - 1, i // 2} - {i}) if i else []
        need_txt = f", needs: [{', '.join(f's{j}' for j in needs)}]" if needs else ""
        lines.append(f'    - {{name: s{i}, run: "python step.py --part {i}"{need_txt}}}')
    lines += ["model: {name: bench-model}", ""]
    return "\n".join(lines)


def in_process(root: Path, runs: int) -> tuple[float, float, int]:
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    if str(TOY) not in sys.path:
        sys.path.insert(0, str(TOY))
    from mlstack.engine.workspace import Project

    plan_t, total_t = [], []
    changes = 0
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            ws = Project("mlstack.yaml").workspace("dev")
            t1 = time.perf_counter()
            plan, _ = ws.plan()
            t2 = time.perf_counter()
            plan_t.append(t2 - t1)
            total_t.append(t2 - t0)
            changes = len(plan.actionable)
            ws.state.close()
    finally:
        os.chdir(cwd)
    return statistics.median(plan_t), statistics.median(total_t), changes


def whole_process(root: Path, runs: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(TOY), NO_COLOR="1")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "mlstack"), "plan"],
            cwd=root,
            env=env,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"median of {args.runs} runs"
    )
    print(
        f"{'stages':>7} {'plan()':>10} {'load+plan':>10} {'process':>10} "
        f"{'plan()/stage':>13} {'process/stage':>14}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "mlstack.yaml").write_text(spec(n))
            (root / "step.py").write_text("print('step')\n")
            plan_s, total_s, changes = in_process(root, args.runs)
            proc_s = whole_process(root, args.runs)
            assert changes == 4, changes  # infra, pipeline, run, model
            print(
                f"{n:7d} {plan_s * 1000:8.1f}ms {total_s * 1000:8.1f}ms {proc_s * 1000:8.1f}ms "
                f"{plan_s / n * 1e6:10.1f} µs {proc_s / n * 1e6:11.1f} µs"
            )


if __name__ == "__main__":
    main()
