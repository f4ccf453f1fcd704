"""`mlstack init`: a project that runs as it is, from one of a few templates.

- ``classification``: two numeric columns, a binary label, logistic regression.
- ``regression``: three numeric columns, a continuous target, ridge regression, an r2 gate.
- ``multiclass``: numeric and categorical columns, three classes, a seeded ``tune`` stage that
  feeds a random forest.

Each writes ``mlstack.yaml``, a small synthetic ``data/train.csv`` whose rows meet the
template's expectations and gates, and a ``.gitignore``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable

from mlstack.errors import MlstackError

_HEAD = """\
# mlstack project ({template}). Docs: mlstack --help; schema: mlstack schema
project: {name}

environments:
  dev:
    backend: local
  prod:
    backend: local
    promote_from: dev
    gates: ["{gate}"]
    deployment: {{strategy: canary}}

"""

_TAIL = """\
model:
  name: {name}-model

deployment:
  endpoint: {name}
  strategy: all_at_once
  canary: {{steps: [10, 50, 100], interval: 30s}}
  gates: {{error_rate: "< 1%", latency_p99: "< 300ms"}}
"""

_CLASSIFICATION = """\
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
      gates: ["{gate}"]
    - {{name: register, uses: builtin/register, needs: [evaluate]}}

"""

_REGRESSION = """\
data:
  source: data/train.csv
  target: y
  expectations:
    x1: {{type: float, nullable: false}}
    x2: {{type: float, nullable: false}}
    x3: {{type: float, nullable: false}}
    y: {{type: float, nullable: false}}
    _table: {{min_rows: 50}}
  split: {{strategy: random, test: 0.25, seed: 1}}

pipeline:
  stages:
    - {{name: ingest, uses: builtin/ingest}}
    - {{name: validate, uses: builtin/validate, needs: [ingest]}}
    - {{name: split, uses: builtin/split, needs: [validate]}}
    - name: features
      uses: builtin/features
      needs: [split]
      with: {{numeric: [x1, x2, x3]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with:
        estimator: sklearn.linear_model.Ridge
        params: {{alpha: 1.0}}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      # regression metrics: rmse, mae, r2 (docs/reference/stages.md)
      gates: ["{gate}"]
    - {{name: register, uses: builtin/register, needs: [evaluate]}}

"""

_MULTICLASS = """\
data:
  source: data/train.csv
  target: label
  expectations:
    x1: {{type: float, nullable: false}}
    x2: {{type: float, nullable: false}}
    segment: {{type: str, in: [a, b, c]}}
    label: {{type: int, in: [0, 1, 2]}}
    _table: {{min_rows: 100}}
  # a validation share: tune scores its candidates there (without one it cross-validates)
  split: {{strategy: stratified, by: label, test: 0.2, validation: 0.2, seed: 1}}

pipeline:
  stages:
    - {{name: ingest, uses: builtin/ingest}}
    - {{name: validate, uses: builtin/validate, needs: [ingest]}}
    - {{name: split, uses: builtin/split, needs: [validate]}}
    - name: features
      uses: builtin/features
      needs: [split]
      with: {{numeric: [x1, x2], categorical: [segment]}}
    - name: tune
      uses: builtin/tune
      needs: [features]
      # estimator and fixed params come from the train stage that needs this one
      with:
        trials: 6
        metric: accuracy
        seed: 0
        space: {{max_depth: [2, 8], n_estimators: [20, 80]}}
    - name: train
      uses: builtin/train
      needs: [tune]
      with:
        estimator: sklearn.ensemble.RandomForestClassifier
        params: {{random_state: 0}}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      gates: ["{gate}"]
    - {{name: register, uses: builtin/register, needs: [evaluate]}}

"""


def _classification_rows(rng: random.Random) -> list[str]:
    rows = ["x1,x2,label"]
    for _ in range(400):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        label = int(x1 + 0.5 * x2 + rng.gauss(0, 0.3) > 0)
        rows.append(f"{x1:.5f},{x2:.5f},{label}")
    return rows


def _regression_rows(rng: random.Random) -> list[str]:
    rows = ["x1,x2,x3,y"]
    for _ in range(400):
        x1, x2, x3 = rng.gauss(0, 1), rng.gauss(0, 1), rng.uniform(0, 10)
        y = 3.0 * x1 - 2.0 * x2 + 0.5 * x3 + rng.gauss(0, 0.5)
        rows.append(f"{x1:.5f},{x2:.5f},{x3:.5f},{y:.5f}")
    return rows


def _multiclass_rows(rng: random.Random) -> list[str]:
    shift = {"a": 0.0, "b": 0.8, "c": -0.8}
    rows = ["x1,x2,segment,label"]
    for _ in range(600):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        segment = rng.choice("abc")
        z = x1 + 0.5 * x2 + shift[segment] + rng.gauss(0, 0.3)
        label = 0 if z < -0.5 else 1 if z < 0.5 else 2
        rows.append(f"{x1:.5f},{x2:.5f},{segment},{label}")
    return rows


# name -> (the data/pipeline sections, the gate used in evaluate and for promotion, the data)
TEMPLATES: dict[str, tuple[str, str, Callable[[random.Random], list[str]]]] = {
    "classification": (_CLASSIFICATION, "accuracy >= 0.8", _classification_rows),
    "regression": (_REGRESSION, "r2 >= 0.8", _regression_rows),
    "multiclass": (_MULTICLASS, "accuracy >= 0.7", _multiclass_rows),
}


def spec_text(template: str, name: str) -> str:
    body, gate, _ = TEMPLATES[template]
    values = {"name": name, "gate": gate, "template": template}
    return _HEAD.format(**values) + body.format(**values) + _TAIL.format(**values)


def scaffold(
    directory: str, name: str | None, force: bool, template: str = "classification"
) -> list[str]:
    if template not in TEMPLATES:
        raise MlstackError(
            f"unknown template {template!r}", hint=f"templates: {', '.join(TEMPLATES)}"
        )
    os.makedirs(directory, exist_ok=True)
    base = name or os.path.basename(os.path.abspath(directory))
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "project"
    spec = os.path.join(directory, "mlstack.yaml")
    if os.path.exists(spec) and not force:
        raise MlstackError(f"{spec} already exists", hint="pass --force to overwrite it")
    written = []
    with open(spec, "w") as fh:
        fh.write(spec_text(template, slug))
    written.append(spec)
    data_dir = os.path.join(directory, "data")
    os.makedirs(data_dir, exist_ok=True)
    csv = os.path.join(data_dir, "train.csv")
    if not os.path.exists(csv):
        rows = TEMPLATES[template][2](random.Random(1))
        with open(csv, "w") as fh:
            fh.write("\n".join(rows) + "\n")
        written.append(csv)
    gi = os.path.join(directory, ".gitignore")
    if not os.path.exists(gi):
        with open(gi, "w") as fh:
            fh.write(".mlstack/\n")
        written.append(gi)
    return written
