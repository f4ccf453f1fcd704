"""`mlstack init`: a project that runs as it is."""

from __future__ import annotations

import os
import re

from mlstack.errors import MlstackError

_SPEC = """\
# mlstack project. Docs: mlstack --help; schema: mlstack schema
project: {name}

environments:
  dev:
    backend: local
  prod:
    backend: local
    promote_from: dev
    gates: ["accuracy >= 0.8"]
    deployment: {{strategy: canary}}

data:
  source: data/train.csv
  target: label
  expectations:
    x1: {{type: float, nullable: false}}
    x2: {{type: float, nullable: false}}
    label: {{type: int, in: [0, 1]}}
    _table: {{min_rows: 50}}
  split: {{strategy: stratified, by: label, test: 0.25, seed: 1}}

pipeline:
  stages:
    - {{name: ingest, uses: builtin/ingest}}
    - {{name: validate, uses: builtin/validate, needs: [ingest]}}
    - {{name: split, uses: builtin/split, needs: [validate]}}
    - name: features
      uses: builtin/features
      needs: [split]
      with: {{numeric: [x1, x2]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with:
        estimator: sklearn.linear_model.LogisticRegression
        params: {{C: 1.0}}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      gates: ["accuracy >= 0.8"]
    - {{name: register, uses: builtin/register, needs: [evaluate]}}

model:
  name: {name}-model

deployment:
  endpoint: {name}
  strategy: all_at_once
  canary: {{steps: [10, 50, 100], interval: 30s}}
  gates: {{error_rate: "< 1%", latency_p99: "< 300ms"}}
"""


def scaffold(directory: str, name: str | None, force: bool) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    base = name or os.path.basename(os.path.abspath(directory))
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "project"
    spec = os.path.join(directory, "mlstack.yaml")
    if os.path.exists(spec) and not force:
        raise MlstackError(f"{spec} already exists", hint="pass --force to overwrite it")
    written = []
    with open(spec, "w") as fh:
        fh.write(_SPEC.format(name=slug))
    written.append(spec)
    data_dir = os.path.join(directory, "data")
    os.makedirs(data_dir, exist_ok=True)
    csv = os.path.join(data_dir, "train.csv")
    if not os.path.exists(csv):
        import random

        rng = random.Random(1)
        rows = ["x1,x2,label"]
        for _ in range(400):
            x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
            label = int(x1 + 0.5 * x2 + rng.gauss(0, 0.3) > 0)
            rows.append(f"{x1:.5f},{x2:.5f},{label}")
        with open(csv, "w") as fh:
            fh.write("\n".join(rows) + "\n")
        written.append(csv)
    gi = os.path.join(directory, ".gitignore")
    if not os.path.exists(gi):
        with open(gi, "w") as fh:
            fh.write(".mlstack/\n")
        written.append(gi)
    return written
