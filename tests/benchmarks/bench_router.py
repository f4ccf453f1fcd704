"""Router overhead: the same load straight at a KServe model server and through the router.

    .venv/bin/python tests/benchmarks/bench_router.py [--duration 10] [--connections 8]
        [--write FILE]

For two models (the sample churn pipeline, and a light numeric model that makes the server as
fast as kserve gets here) it deploys a local endpoint with one version, then runs the bounded
load generator (keep-alive connections, loopback) direct to the model server and via the router,
alternating twice so drift in the machine's speed hits both sides. It also measures at one
connection, where the median difference is the router's own hop rather than queueing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlstack.engine.backend import Backing, Context, EndpointState
from mlstack.local.serving import api, loadgen
from mlstack.local.serving.sample import sample_rows, write_sample_model

MODEL = "bench-model"


def measure(url: str, path: str, body: bytes, connections: int, duration: float) -> dict:
    r = loadgen.run(url, path, body, concurrency=connections, duration=duration)
    if r.failed:
        raise SystemExit(f"benchmark run had {r.failed} failed requests: {r.failures[:3]}")
    return {
        "rps": r.rps,
        "p50": r.percentile(0.5) * 1000,
        "p99": r.percentile(0.99) * 1000,
        "n": r.total,
    }


def bench_model(
    root: Path, name: str, light: bool, connections: int, duration: float, rounds: int
) -> list[dict]:
    model_dir = root / name
    digest = write_sample_model(model_dir, light=light)
    rows = sample_rows(1, seed=9)
    if light:
        rows = [{k: v for k, v in r.items() if k != "contract"} for r in rows]
    body = json.dumps({"instances": rows}).encode()
    ctx = Context(workdir=root / ".mlstack", environment="bench")
    state = EndpointState(name, MODEL, (Backing("1", str(model_dir), digest, 100.0),))
    out = api.deploy(root / ".mlstack", "bench", state, ctx, sample_rate=0.1)
    direct = f"http://127.0.0.1:{out['versions']['1']['port']}"
    routed = out["url"]
    path = f"/v1/models/{MODEL}:predict"
    rows_out = []
    try:
        measure(routed, path, body, connections, 2.0)  # warm up both processes
        for conns in (connections, 1):
            d_runs, r_runs = [], []
            for _ in range(rounds):
                d_runs.append(measure(direct, path, body, conns, duration / rounds))
                before = _cpu_seconds(out["router_pid"])
                run = measure(routed, path, body, conns, duration / rounds)
                run["router_cpu_us"] = (_cpu_seconds(out["router_pid"]) - before) / run["n"] * 1e6
                r_runs.append(run)
            d = _mean(d_runs)
            r = _mean(r_runs)
            rows_out.append(
                {
                    "model": name,
                    "connections": conns,
                    "direct": d,
                    "router": r,
                    "ratio": r["rps"] / d["rps"],
                    "added_p50": r["p50"] - d["p50"],
                }
            )
    finally:
        api.stop(root / ".mlstack", "bench", name)
    return rows_out


def _mean(runs: list[dict]) -> dict:
    """Median of each figure over the rounds: robust to a neighbour's burst of CPU use."""
    return {k: statistics.median(x[k] for x in runs) for k in runs[0]}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table(rows: list[dict]) -> str:
    lines = [
        "| model | conns | direct req/s | router req/s | router/direct | direct p50 ms "
        "| router p50 ms | added p50 ms | direct p99 ms | router p99 ms | router CPU us/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d, x = r["direct"], r["router"]
        lines.append(
            f"| {r['model']} | {r['connections']} | {d['rps']:.0f} | {x['rps']:.0f} | "
            f"{r['ratio'] * 100:.1f} % | {d['p50']:.2f} | {x['p50']:.2f} | "
            f"{r['added_p50']:+.2f} | {d['p99']:.2f} | {x['p99']:.2f} | "
            f"{x['router_cpu_us']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds per side (split in rounds)"
    )
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5, help="alternating direct/router pairs")
    p.add_argument("--write", type=Path, default=None, help="markdown file to write the results to")
    a = p.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlstack-bench-") as tmp:
        root = Path(tmp)
        rows = []
        for name, light in (("churn-pipeline", False), ("light-numeric", True)):
            rows += bench_model(root, name, light, a.connections, a.duration, a.rounds)
    md = table(rows)
    print(md)
    if a.write:
        cmd = " ".join(["python", "tests/benchmarks/bench_router.py", *sys.argv[1:]])
        loads = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        a.write.write_text(_doc(md, cmd, loads))
        print(f"\nwritten to {a.write}")


def _doc(md: str, cmd: str, loads: str) -> str:
    return f"""# Serving benchmark: router overhead

Measured {time.strftime("%Y-%m-%d")} on {platform.machine()} with {os.cpu_count()} cores, Python
{platform.python_version()}, kserve 0.21 (one worker), with `{cmd}`.

Each row is the same bounded load (keep-alive connections on 127.0.0.1, one JSON row per V1
`:predict` request) sent straight to the version's KServe model server and through the endpoint's
router, alternating direct/router in short rounds; each figure is the median over the rounds
(the machine is shared, so single runs are noisy). "router CPU us/req" is the router process's
user+system CPU time per request, read from /proc: the overhead that noise does not blur. The router does its full work on every request:
routing choice, per-version metrics, 10 % request-log sampling. Load generator, router and model
server share the 2 cores, so the router's CPU is taken from the other two. The machine was not
idle: 1-minute load average {loads} (other test suites running beside it).

{md}

Targets (issue 4): router throughput at least 90 % of direct, added median latency under 1 ms.

Figures to compare with, measured earlier on this machine (issue 4): kserve serves a
scikit-learn model at about 1,550 req/s on V1 and 1,200 req/s on V2 with one worker (8
connections, p50 about 5 ms); a bare uvicorn ASGI app answers about 30,000 req/s.

`churn-pipeline` is the sample model of `mlstack.local.serving.sample` (ColumnTransformer with
scaler and one-hot encoder, then logistic regression): scikit-learn's per-call overhead on a
DataFrame makes it about 2.5 ms of CPU per request, so the server saturates near 300 req/s.
`light-numeric` is a logistic regression on two numeric columns, close to kserve's best case
here, which is the harder test for the router since it must keep up with a faster server.
"""


if __name__ == "__main__":
    main()
