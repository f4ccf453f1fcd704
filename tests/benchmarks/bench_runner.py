"""Runner benchmark: per-stage overhead and a 5-stage built-in pipeline's wall time.

Run: ``.venv/bin/python tests/benchmarks/bench_runner.py`` (prints a markdown table).

Per-stage overhead = (wall(N stages) - wall(1 stage)) / (N - 1) for N = 10 and 50, where each
stage is a ``function:`` stage that receives the previous stage's number and returns it plus
one; every stage still runs in its own forked process and its output is hashed, fsynced and
stored like any other. The built-in pipeline is ingest -> validate -> split -> features -> train
on the quickstart data (569 rows), from an empty store, zygote start-up included.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mlstack.local.runner import Runner  # noqa: E402

FNS = """
def start():
    return 0


def add_one(upstream):
    return sum(upstream.values()) + 1
"""


def chain(n: int) -> dict:
    stages = [{"name": "s0", "kind": "function", "function": "benchfns:start", "needs": []}]
    for i in range(1, n):
        stages.append(
            {
                "name": f"s{i}",
                "kind": "function",
                "function": "benchfns:add_one",
                "needs": [f"s{i - 1}"],
            }
        )
    return {"stages": stages}


def run_chain(root: Path, n: int) -> float:
    work = root / f"wd-{n}-{time.monotonic_ns()}"
    r = Runner(work, "bench", root, chain(n), parallelism=2)
    t = time.perf_counter()
    out = r.run()
    wall = time.perf_counter() - t
    assert out.status == "succeeded", out.first_failure()
    assert out.stages[f"s{n - 1}"].entry["value"] == n - 1
    shutil.rmtree(work)
    return wall


def builtin_pipeline(root: Path) -> tuple[float, dict]:
    import subprocess

    data = root / "data"
    if not (data / "cancer.csv").exists():
        subprocess.run(
            [sys.executable, str(REPO / "examples/quickstart/prepare_data.py")],
            check=True,
            capture_output=True,
        )
        data.mkdir(exist_ok=True)
        shutil.copy(REPO / "examples/quickstart/data/cancer.csv", data / "cancer.csv")
    definition = {
        "data": {
            "source": "data/cancer.csv",
            "target": "diagnosis",
            "expectations": {
                "mean_radius": {"type": "float", "min": 0, "nullable": False},
                "tumor_size": {"in_": ["small", "medium", "large"]},
                "diagnosis": {"type": "int", "in_": [0, 1]},
            },
            "table": {"min_rows": 100},
            "split": {"strategy": "stratified", "by": "diagnosis", "test": 0.25, "seed": 7},
        },
        "stages": [
            {"name": "ingest", "kind": "ingest", "needs": []},
            {"name": "validate", "kind": "validate", "needs": ["ingest"]},
            {"name": "split", "kind": "split", "needs": ["validate"]},
            {
                "name": "features",
                "kind": "features",
                "needs": ["split"],
                "with": {
                    "numeric": ["mean_radius", "mean_texture", "mean_area"],
                    "categorical": ["tumor_size"],
                },
            },
            {
                "name": "train",
                "kind": "train",
                "needs": ["features"],
                "with": {
                    "estimator": "sklearn.linear_model.LogisticRegression",
                    "params": {"max_iter": 500},
                },
            },
        ],
    }
    work = root / f"wd-builtin-{time.monotonic_ns()}"
    r = Runner(work, "bench", root, definition)
    t = time.perf_counter()
    out = r.run()
    wall = time.perf_counter() - t
    assert out.status == "succeeded", out.first_failure()
    stage_seconds = {n: s.seconds for n, s in out.stages.items()}
    shutil.rmtree(work)
    return wall, stage_seconds


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mlstack-bench-"))
    (root / "benchfns.py").write_text(FNS)
    repeats = 9
    samples: dict[int, list[float]] = {1: [], 10: [], 50: []}
    for _ in range(repeats):  # interleaved, so that load from elsewhere hits every size alike
        for n in samples:
            samples[n].append(run_chain(root, n))
    walls = {n: min(v) for n, v in samples.items()}
    over10 = (walls[10] - walls[1]) / 9 * 1000
    over50 = (walls[50] - walls[1]) / 49 * 1000
    t = time.perf_counter()
    subprocess_import = __import__("subprocess").run(
        [sys.executable, "-c", "import sklearn.ensemble"], check=True
    )
    sk_import = time.perf_counter() - t
    del subprocess_import
    builtin = [builtin_pipeline(root) for _ in range(3)]
    bwall = statistics.median(b[0] for b in builtin)
    shutil.rmtree(root)
    print(f"python {sys.version.split()[0]}, best of {repeats} (chains) / 3 (built-in) runs\n")
    print("| measurement | value |")
    print("|---|---|")
    for n in (1, 10, 50):
        print(f"| {n}-stage function chain, wall | {walls[n] * 1000:.1f} ms |")
    print(f"| runner overhead per stage (10 vs 1) | {over10:.2f} ms |")
    print(f"| runner overhead per stage (50 vs 1) | {over50:.2f} ms |")
    print(f"| `python -c 'import sklearn.ensemble'` | {sk_import:.2f} s |")
    print(f"| 5-stage built-in pipeline (ingest..train), cold store | {bwall:.2f} s |")
    per = builtin[len(builtin) // 2][1]
    print(
        "| ...of which per stage (incl. zygote start in the first) | "
        + ", ".join(f"{k} {v:.2f}s" for k, v in per.items())
        + " |"
    )


if __name__ == "__main__":
    main()
