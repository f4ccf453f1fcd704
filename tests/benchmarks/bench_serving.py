"""Serving throughput with workers and adaptive batching, on the quickstart's model.

    .venv/bin/python tests/benchmarks/bench_serving.py [--duration 10] [--write FILE]
        [--model-dir DIR]

It trains the quickstart's random forest the way a user does (`mlstack apply --target
model.cancer-classifier` in a temporary copy of examples/quickstart; or takes `--model-dir`),
then deploys one local endpoint three ways: 1 worker, 2 workers, 2 workers with batching
(max_batch 32, max_latency 5 ms). Against each it runs the bounded load generator (keep-alive
connections on 127.0.0.1, one V1 row per request: examples/quickstart/sample.json) at 8 and 32
connections for ``--duration`` seconds, after a 2 s warm-up. Any failed request aborts the run.
The load generator, the router and the model servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlstack.engine.backend import Backing, Context, EndpointState
from mlstack.local.serving import api, loadgen

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"
MODEL = "cancer-classifier"
CASES = (
    ("1 worker", 1, 0),
    ("2 workers", 2, 0),
    ("2 workers + batching", 2, 32),
)


def quickstart_model(root: Path) -> tuple[Path, str]:
    """Train the quickstart's model with the CLI; its artifact folder and digest."""
    import shutil

    project = root / "quickstart"
    shutil.copytree(QUICKSTART, project)
    mlstack = [sys.executable, "-m", "mlstack.cli.main"]
    subprocess.run(
        [*mlstack, "apply", "-e", "dev", "--auto-approve", "--target", f"model.{MODEL}"],
        cwd=project,
        check=True,
        capture_output=True,
        timeout=600,
    )
    out = subprocess.run(
        [*mlstack, "output", "-e", "dev", "--json"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    model = json.loads(out.stdout)[f"model.{MODEL}"]
    return Path(model["uri"]), str(model["digest"])


def measure(url: str, body: bytes, connections: int, duration: float) -> dict[str, float]:
    path = f"/v1/models/{MODEL}:predict"
    loadgen.run(url, path, body, concurrency=connections, duration=2.0)  # warm up
    r = loadgen.run(url, path, body, concurrency=connections, duration=duration)
    if r.failed:
        raise SystemExit(f"benchmark run had {r.failed} failed requests: {r.failures[:3]}")
    return {
        "rps": r.rps,
        "p50": (r.percentile(0.5) or 0) * 1000,
        "p99": (r.percentile(0.99) or 0) * 1000,
        "n": r.total,
    }


def run_case(
    root: Path, model_dir: Path, digest: str, workers: int, max_batch: int, duration: float
) -> dict[int, dict[str, float]]:
    workdir = root / ".mlstack"
    state = EndpointState(
        "bench",
        MODEL,
        (Backing("1", str(model_dir), digest, 100.0),),
        replicas=workers,
        max_batch=max_batch,
        max_latency=0.005 if max_batch else 0.0,
    )
    ctx = Context(workdir=workdir, environment="bench")
    out = api.deploy(workdir, "bench", state, ctx, sample_rate=0.1)
    body = json.dumps({"instances": [json.loads((QUICKSTART / "sample.json").read_text())]})

    def batched() -> tuple[float, float]:
        """Requests the router saw answered by a batch so far, and the rows of their batches."""
        b = api.status(workdir, "bench", "bench")["versions"]["1"].get("batching") or {}
        return b.get("requests", 0), b.get("requests", 0) * b.get("mean_batch_rows", 0)

    try:
        results = {}
        for c in (8, 32):
            n0, rows0 = batched()  # the warm-up is counted too: a close estimate
            results[c] = measure(out["url"], body.encode(), c, duration)
            n1, rows1 = batched()
            results[c]["mean_batch"] = (rows1 - rows0) / (n1 - n0) if n1 > n0 else 1.0
        return results
    finally:
        api.stop(workdir, "bench", "bench")


def table(rows: list[tuple[str, dict[int, dict[str, float]]]]) -> str:
    lines = [
        "| setup | conns | req/s | p50 ms | p99 ms | vs 1 worker | rows per predict call |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = dict(rows[0][1])
    for name, results in rows:
        for conns, r in sorted(results.items()):
            lines.append(
                f"| {name} | {conns} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                f"{r['rps'] / base[conns]['rps']:.2f}x | {r['mean_batch']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured case")
    p.add_argument("--model-dir", type=Path, default=None, help="a trained artifact to reuse")
    p.add_argument("--write", type=Path, default=None, help="append the results to this file")
    a = p.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlstack-bench-serving-") as tmp:
        root = Path(tmp)
        if a.model_dir is not None:
            model_dir = a.model_dir
            from mlstack.local.serving.sample import artifact_digest

            digest = artifact_digest(model_dir)
        else:
            model_dir, digest = quickstart_model(root)
        rows = []
        for name, workers, max_batch in CASES:
            rows.append((name, run_case(root, model_dir, digest, workers, max_batch, a.duration)))
            print(f"{name}: {rows[-1][1]}", flush=True)
    md = table(rows)
    loads = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(md)
    print(f"load average {loads}")
    if a.write:
        cmd = " ".join(["python", "tests/benchmarks/bench_serving.py", *sys.argv[1:]])
        with a.write.open("a") as f:
            f.write(
                f"\n<!-- {cmd}, {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
                f"{os.cpu_count()} cores, load average {loads} -->\n{md}\n"
            )


if __name__ == "__main__":
    main()
