"""Parity: every built-in stage writes byte-identical outputs (by digest) and the same metrics
through the local runner and through ``python -m mlstack_runtime`` laid out as SageMaker, Vertex
AI and Azure ML lay out a job (see ``parity.py``), on the quickstart data (classification, a
categorical feature, tune by cross-validation) and on scikit-learn's diabetes data (regression,
tune on a validation split); then the same under the oldest supported versions (Python 3.9,
pandas 1.1.3, scikit-learn 1.2.1: ``oldest_env.py``), where the in-process path stands in for
the local runner (mlstack's core needs Python 3.10).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"mlstack_runtime_tests_{name}", HERE / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parity = _load("parity")
oldest_env = _load("oldest_env")

QUICKSTART = {
    "model": "cancer-classifier",
    "data": {
        "source": "data/cancer.csv",
        "target": "diagnosis",
        "expectations": {
            "mean_radius": {"type": "float", "min": 0, "nullable": False},
            "mean_smoothness": {"type": "float", "min": 0, "max": 1},
            "tumor_size": {"in": ["small", "medium", "large"]},
            "diagnosis": {"type": "int", "in": [0, 1]},
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
                "numeric": ["mean_radius", "mean_texture", "mean_area", "mean_smoothness"],
                "categorical": ["tumor_size"],
            },
        },
        {
            "name": "tune",
            "kind": "tune",
            "needs": ["features"],
            "with": {
                "trials": 3,
                "seed": 3,
                "space": {"max_depth": [2, 8], "criterion": ["gini", "entropy"]},
            },
        },
        {
            "name": "train",
            "kind": "train",
            "needs": ["tune"],
            "with": {
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 25, "random_state": 7},
            },
        },
        {"name": "evaluate", "kind": "evaluate", "needs": ["train"], "gates": ["roc_auc >= 0.9"]},
        {"name": "register", "kind": "register", "needs": ["evaluate"]},
    ],
}

DIABETES = {
    "model": "diabetes-progression",
    "data": {
        "source": "data/diabetes.csv",
        "target": "progression",
        "expectations": {
            "bmi": {"type": "float", "nullable": False},
            "progression": {"type": "float", "min": 0},
        },
        "table": {"min_rows": 400},
        "split": {"strategy": "random", "test": 0.2, "validation": 0.2, "seed": 11},
    },
    "stages": [
        {"name": "ingest", "kind": "ingest", "needs": []},
        {"name": "validate", "kind": "validate", "needs": ["ingest"]},
        {"name": "split", "kind": "split", "needs": ["validate"]},
        {"name": "features", "kind": "features", "needs": ["split"]},
        {
            "name": "tune",
            "kind": "tune",
            "needs": ["features"],
            "with": {
                "trials": 4,
                "metric": "rmse",
                "space": {"alpha": {"low": 0.01, "high": 10.0, "log": True}},
            },
        },
        {
            "name": "train",
            "kind": "train",
            "needs": ["tune"],
            "with": {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
        },
        {"name": "evaluate", "kind": "evaluate", "needs": ["train"], "gates": ["r2 >= 0.2"]},
        {"name": "register", "kind": "register", "needs": ["evaluate"]},
    ],
}

PIPELINES = {"quickstart": QUICKSTART, "diabetes": DIABETES}


def _write_data(name: str, root: Path) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    if name == "quickstart":
        subprocess.run(
            [sys.executable, str(REPO / "examples" / "quickstart" / "prepare_data.py")],
            check=True,
            capture_output=True,
        )
        out = root / "data" / "cancer.csv"
        out.write_bytes((REPO / "examples" / "quickstart" / "data" / "cancer.csv").read_bytes())
        return out
    from sklearn.datasets import load_diabetes

    df = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    out = root / "data" / "diabetes.csv"
    out.write_text(df.to_csv(index=False, lineterminator="\n"))
    return out


@pytest.fixture(scope="module", params=sorted(PIPELINES))
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Path]:
    root = tmp_path_factory.mktemp(f"project-{request.param}")
    return request.param, root, _write_data(request.param, root)


def _on_every_platform(
    tmp_path: Path, python: str, pipeline: dict[str, Any], data_file: Path
) -> list[tuple[str, dict[str, Path]]]:
    """Each platform's jobs, the platforms side by side (each runs its stages in DAG order in
    its own folder; they share nothing), so the test takes the longest platform's time."""
    from concurrent.futures import ThreadPoolExecutor

    def run(platform: Any) -> tuple[str, dict[str, Path]]:
        return platform.name, platform(tmp_path, python, pipeline, data_file).run()

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run, parity.PLATFORMS))


def _digests(outputs: dict[str, Path]) -> dict[str, str]:
    return {name: parity.tree_digest(path) for name, path in outputs.items()}


def _local_runner(name: str, root: Path) -> dict[str, Path]:
    from mlstack.local.runner import Runner
    from mlstack.local.store import ArtifactStore

    pipeline = PIPELINES[name]
    data = dict(pipeline["data"])  # as the local backend dumps it (by field name)
    data["expectations"] = {
        c: {("in_" if k == "in" else k): v for k, v in r.items()}
        for c, r in data["expectations"].items()
    }
    definition = {"data": data, "model": {"name": pipeline["model"]}, "stages": pipeline["stages"]}
    outcome = Runner(root / ".mlstack", "dev", root, definition).run()
    assert outcome.status == "succeeded", outcome.first_failure()
    store = ArtifactStore(root / ".mlstack")
    return {s: store.object_path(outcome.stages[s].entry["output"]) for s in outcome.order}


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~30 stage processes; each imports pandas and scikit-learn
def test_local_runner_and_every_platform_write_the_same_bytes(
    project: tuple[str, Path, Path], tmp_path: Path
) -> None:
    name, root, data_file = project
    pipeline = PIPELINES[name]
    local = _local_runner(name, root)
    expected = _digests(local)
    assert set(expected) == {s["name"] for s in pipeline["stages"]}
    for platform, outputs in _on_every_platform(tmp_path, sys.executable, pipeline, data_file):
        got = _digests(outputs)
        differ = [s for s in expected if got[s] != expected[s]]
        assert not differ, f"{platform}: stages {differ} differ from the local runner's"
        for stage in expected:
            assert parity.metrics_of(outputs[stage]) == parity.metrics_of(local[stage])
    metrics = parity.metrics_of(local["evaluate"])
    if name == "quickstart":
        assert (
            metrics["roc_auc"] >= 0.9
            and json.loads((local["tune"] / "best_params.json").read_text())["trials"] == 3
        )
    else:
        assert set(metrics) == {"rmse", "mae", "r2"} and metrics["r2"] > 0.2
    # the model artifact is the model: no code or settings ride along
    assert sorted(p.name for p in local["train"].iterdir()) == [
        "mlstack-model.json",
        "model.joblib",
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_oldest_supported_versions_agree_across_platforms(
    project: tuple[str, Path, Path], tmp_path: Path
) -> None:
    python = oldest_env.interpreter()
    if python is None:
        pytest.skip("no Python 3.9 on this machine for the oldest supported image")
    name, root, data_file = project
    pipeline = PIPELINES[name]
    base = parity.in_process(tmp_path, str(python), pipeline, root)
    expected = _digests(base)
    for platform, outputs in _on_every_platform(tmp_path, str(python), pipeline, data_file):
        got = _digests(outputs)
        differ = [s for s in expected if got[s] != expected[s]]
        assert not differ, f"{platform} on the oldest versions: stages {differ} differ"
        for stage in expected:
            assert parity.metrics_of(outputs[stage]) == parity.metrics_of(base[stage])
    # what was written there is readable here (pandas 1.1 Parquet, scikit-learn 1.2 pickles
    # aside: a model is served by the versions that trained it)
    import pandas as pd

    split = json.loads((base["split"] / "split.json").read_text())
    assert len(pd.read_parquet(base["split"] / "train.parquet")) == split["train"]
