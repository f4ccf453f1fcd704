"""Fixtures for the local backend: projects on disk, loaded through the real spec loader."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlstack.engine.backend import Context, Event, RunRequest


def cancer_frame(rows: int | None = 240, seed: int = 0) -> Any:
    """The quickstart's columns from sklearn's bundled breast-cancer data (no download)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    df = df.rename(columns={"target": "diagnosis"})
    df["diagnosis"] = (1 - df["diagnosis"]).astype(int)
    df["tumor_size"] = pd.cut(
        df["mean_area"], bins=[0, 500, 1000, float("inf")], labels=["small", "medium", "large"]
    ).astype(str)
    cols = [
        "mean_radius",
        "mean_texture",
        "mean_area",
        "mean_smoothness",
        "tumor_size",
        "diagnosis",
    ]
    df = df[cols]
    if rows is not None:
        df = df.sample(n=rows, random_state=seed).reset_index(drop=True)
    return df


DATA_BLOCK = """\
data:
  source: data/cancer.csv
  target: diagnosis
  expectations:
    mean_radius: {type: float, min: 0, nullable: false}
    mean_smoothness: {type: float, min: 0, max: 1}
    tumor_size: {in: [small, medium, large]}
    diagnosis: {type: int, in: [0, 1]}
    _table: {min_rows: 100}
  split: {strategy: stratified, by: diagnosis, test: 0.3, seed: 7}
"""

BUILTIN_STAGES = """\
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: validate, uses: builtin/validate, needs: [ingest]}
    - {name: split, uses: builtin/split, needs: [validate]}
    - name: features
      uses: builtin/features
      needs: [split]
      with: {numeric: [mean_radius, mean_texture, mean_area, mean_smoothness],
             categorical: [tumor_size]}
    - name: train
      uses: builtin/train
      needs: [features]
      with:
        estimator: sklearn.linear_model.LogisticRegression
        params: {max_iter: 300}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      gates: [{gate}]
    - {name: register, uses: builtin/register, needs: [evaluate]}
model:
  name: cancer
"""


@dataclass
class Project:
    root: Path
    envs: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        return self.root / ".mlstack"

    def backend(self, env: str = "dev") -> Any:
        from mlstack.local.plugin import plugin
        from mlstack.manifest.load import load, resolve

        loaded = load(str(self.root / "mlstack.yaml"))
        return plugin.load(resolve(loaded, env), self.workdir)

    def ctx(self, env: str = "dev") -> Context:
        return Context(workdir=self.workdir, environment=env, emit=self.events.append)

    def run(self, env: str = "dev", backend: Any = None) -> Any:
        be = backend or self.backend(env)
        compiled = be.compile()
        req = RunRequest(stages=compiled.steps, reasons={}, cache_keys={}, data_digest=None)
        return be.run_pipeline(compiled, req, self.ctx(env))


def make_project(root: Path, body: str, envs: str = "dev: {backend: local}") -> Project:
    text = f"project: demo\nenvironments:\n{textwrap.indent(envs, '  ')}\n{body}"
    (root / "mlstack.yaml").write_text(text)
    return Project(root)


@pytest.fixture
def project_factory(tmp_path: Path):
    def make(body: str, envs: str = "dev: {backend: local}") -> Project:
        return make_project(tmp_path, body, envs)

    return make


@pytest.fixture
def cancer_project(tmp_path: Path):
    """The quickstart pipeline on 240 rows; ``gate`` sets evaluate's gate."""

    def make(
        gate: str = "roc_auc >= 0.8",
        frame: Any = None,
        envs: str = "dev: {backend: local}",
    ) -> Project:
        (tmp_path / "data").mkdir(exist_ok=True)
        (cancer_frame() if frame is None else frame).to_csv(
            tmp_path / "data" / "cancer.csv", index=False
        )
        body = DATA_BLOCK + BUILTIN_STAGES.replace("{gate}", f'"{gate}"')
        return make_project(tmp_path, body, envs)

    return make
