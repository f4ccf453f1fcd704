"""`mlstack monitor`'s work on 100,000 sampled requests x 30 features (issue 16: within 2 s).

    .venv/bin/python tests/benchmarks/bench_monitor.py [--rows 100000] [--features 30] [--runs 3]

Writes a router request log (``requests.jsonl``: one V1 request of one row per line, with its
answer and request id, 27 numeric features and 3 categorical ones, 5 of them shifted) and a
training split of 20,000 rows, then times, in process, the parts of a monitoring pass:
reading the log into columns (``mlstack.local.capture.read_log``), input drift (PSI and KS
with p-value per feature, category shares), prediction drift and data quality against
expectations (after ``checks.as_arrays``, as ``mlstack.monitoring.run`` does). Best of
``--runs``: wall time per part, and the whole pass's CPU time (less sensitive to a busy machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def write_log(path: Path, rows: int, features: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    n_cat = 3
    numeric = [f"f{i}" for i in range(features - n_cat)]
    categorical = [f"c{i}" for i in range(n_cat)]
    values = rng.normal(0, 1, (rows, len(numeric)))
    values[:, :5] += 0.5  # five shifted features
    cats = rng.choice(["small", "medium", "large"], (rows, n_cat))
    preds = rng.integers(0, 2, rows)
    with path.open("w") as f:
        for r in range(rows):
            inst = dict(zip(numeric, values[r].round(4).tolist(), strict=True))
            inst.update(zip(categorical, cats[r].tolist(), strict=True))
            rec = {
                "ts": 1000.0 + r * 0.01,
                "id": f"{r:016x}",
                "version": "1",
                "role": "primary",
                "path": "/v1/models/m:predict",
                "status": 200,
                "latency_ms": 1.0,
                "request": {"instances": [inst]},
                "response": {"predictions": [int(preds[r])]},
            }
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return numeric + categorical


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--reference", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from mlstack.engine.backend import Capture
    from mlstack.local.capture import read_log
    from mlstack.manifest.models import Drift, Expectation
    from mlstack.monitoring import checks

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.jsonl"
        columns = write_log(log, args.rows, args.features)
        rng = np.random.default_rng(1)
        reference: dict[str, list[object]] = {
            c: rng.normal(0, 1, args.reference).round(4).tolist()
            for c in columns
            if c.startswith("f")
        }
        for c in columns:
            if c.startswith("c"):
                reference[c] = rng.choice(["small", "medium", "large"], args.reference).tolist()
        reference["y"] = rng.integers(0, 2, args.reference).tolist()
        expectations = {
            c: Expectation(type="float", min=-10, max=10, nullable=False)
            for c in columns
            if c.startswith("f")
        }
        settings = Drift()
        timings: dict[str, list[float]] = {
            "read": [],
            "drift": [],
            "quality": [],
            "total": [],
            "total CPU": [],
        }
        for _ in range(args.runs):
            c0 = time.process_time()
            t0 = time.perf_counter()
            rows = read_log([log], columns, since=0.0, limit=args.rows)
            t1 = time.perf_counter()
            cap = checks.as_arrays(
                Capture(
                    columns=tuple(columns),
                    reference=reference,
                    live=rows.columns,
                    predictions=rows.predictions,
                    request_ids=rows.ids,
                    timestamps=rows.ts,
                    target="y",
                    task="classification",
                )
            )
            found = checks.input_drift(cap, settings)
            checks.prediction_drift(cap, settings)
            t2 = time.perf_counter()
            checks.quality(cap, expectations)
            t3 = time.perf_counter()
            for k, v in (
                ("read", t1 - t0),
                ("drift", t2 - t1),
                ("quality", t3 - t2),
                ("total", t3 - t0),
                ("total CPU", time.process_time() - c0),
            ):
                timings[k].append(v)
        drifted = [f.feature for f in found if f.drifted]
        print(
            f"{args.rows:,} sampled requests x {len(columns)} features "
            f"(reference {args.reference:,} rows), best of {args.runs}:"
        )
        for k, v in timings.items():
            print(f"  {k:9s} {min(v):6.3f} s")
        print(f"  drifted: {', '.join(drifted)}")


if __name__ == "__main__":
    main()
