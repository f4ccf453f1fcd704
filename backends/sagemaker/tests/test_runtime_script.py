"""The container entry script run as SageMaker runs it: a subprocess per job, /opt/ml laid out in a
temp dir (``MLSTACK_OPT_ML``), real pandas and scikit-learn on a small CSV.

Between jobs the test does what SageMaker does with S3: a processing job's ``output`` directory
becomes the stage's prefix, which later jobs get mounted under ``input/<stage>``; a training job's
model directory is uploaded as ``model.tar.gz``. The environment each job gets is the one the
compiler puts in the pipeline definition (``stage_environment``), so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from mlstack_sagemaker import pipeline_definition as pdef

SCRIPT = Path(pdef.__file__).with_name("runtime") / pdef.RUNTIME_SCRIPT

SPEC = """\
project: shop
environments:
  dev:
    backend: sagemaker
    region: eu-west-1
    role: arn:aws:iam::123456789012:role/mlstack-sm
    bucket: shop-artifacts
data:
  source: data/rows.csv
  target: label
  expectations:
    x: {type: float, min: 0, nullable: false}
    size: {in: [s, m, l]}
    label: {type: int, in: [0, 1]}
    _table: {min_rows: 20}
  split: {strategy: stratified, by: label, test: 0.25, seed: 3}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: validate, uses: builtin/validate, needs: [ingest]}
    - {name: split, uses: builtin/split, needs: [validate]}
    - name: features
      uses: builtin/features
      needs: [split]
      with: {numeric: [x, y], categorical: [size]}
    - name: tune
      uses: builtin/tune
      needs: [features]
      with: {trials: 4, metric: accuracy, seed: 1, space: {C: [0.5, 50.0]}}
    - name: train
      uses: builtin/train
      needs: [tune]
      with:
        estimator: sklearn.linear_model.LogisticRegression
        params: {C: 10.0}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      gates: ["accuracy >= 0.8"]
    - {name: register, uses: builtin/register, needs: [evaluate]}
model: {name: shop-model}
"""


def _rows(n: int = 80, bad: bool = False) -> str:
    rng = random.Random(5)
    lines = ["x,y,size,label"]
    for i in range(n):
        x, y = rng.uniform(0, 10), rng.uniform(0, 10)
        size = "sml"[i % 3]
        lines.append(f"{x:.3f},{y:.3f},{size},{int(x > 5)}")
    if bad:
        lines[3] = "-1.0,2.0,xl,1"
    return "\n".join(lines) + "\n"


class FakeSageMaker:
    """Runs jobs of one pipeline execution; ``s3`` maps a stage to its uploaded output."""

    def __init__(self, tmp: Path, csv: str) -> None:
        from mlstack.manifest.load import load, resolve

        self.tmp = tmp
        (tmp / "mlstack.yaml").write_text(SPEC)
        self.project = resolve(load(str(tmp / "mlstack.yaml")), "dev")
        self.csv = csv
        self.s3: dict[str, Path] = {}

    def stage(self, name: str) -> Any:
        return next(s for s in self.project.pipeline.stages if s.name == name)

    def _env(self, name: str, root: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSTACK_", "SM_"))}
        env.update(pdef.stage_environment(self.project, self.stage(name)))
        env["MLSTACK_OPT_ML"] = str(root)
        return env

    def processing(self, name: str) -> subprocess.CompletedProcess[str]:
        root = self.tmp / f"job-{name}" / "opt" / "ml"
        inputs = root / "processing" / "input"
        for upstream in pdef.ancestors(self.project, self.stage(name)):
            shutil.copytree(self.s3[upstream], inputs / upstream)
        if not self.stage(name).needs:
            (inputs / "data").mkdir(parents=True)
            (inputs / "data" / "rows.csv").write_text(self.csv)
        (inputs / "code").mkdir(parents=True, exist_ok=True)
        shutil.copy(SCRIPT, inputs / "code" / SCRIPT.name)
        r = subprocess.run(
            [sys.executable, str(inputs / "code" / SCRIPT.name), "--stage", name],
            env=self._env(name, root),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.s3[name] = root / "processing" / "output"
        return r

    def training(self, name: str) -> subprocess.CompletedProcess[str]:
        root = self.tmp / f"job-{name}" / "opt" / "ml"
        for upstream in pdef.ancestors(self.project, self.stage(name)):
            shutil.copytree(self.s3[upstream], root / "input" / "data" / upstream)
        code = root / "code"
        code.mkdir(parents=True)
        shutil.copy(SCRIPT, code / SCRIPT.name)
        env = self._env(name, root)
        env["SM_MODEL_DIR"] = str(root / "model")
        # Script mode: hyperparameters arrive as command-line arguments.
        args = ["--estimator", "ignored.Estimator", "--mlstack_stage", name, "--params", "{}"]
        r = subprocess.run(
            [sys.executable, SCRIPT.name, *args],
            cwd=code,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        uploaded = self.tmp / "s3" / name / "output"
        uploaded.mkdir(parents=True)
        with tarfile.open(uploaded / "model.tar.gz", "w:gz") as tar:
            for f in sorted((root / "model").rglob("*")):
                tar.add(f, arcname=str(f.relative_to(root / "model")), recursive=False)
        self.s3[name] = uploaded
        return r


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeSageMaker, dict[str, str]]:
    """One execution of the whole pipeline: the jobs' stdout by stage."""
    sm = FakeSageMaker(tmp_path_factory.mktemp("execution"), _rows())
    logs = {}
    for stage in ("ingest", "validate", "split", "features"):
        logs[stage] = _ok(sm.processing(stage))
    logs["tune"] = _ok(sm.training("tune"))
    logs["train"] = _ok(sm.training("train"))
    logs["evaluate"] = _ok(sm.processing("evaluate"))
    return sm, logs


def test_builtin_stages_run_as_sagemaker_jobs(
    executed: tuple[FakeSageMaker, dict[str, str]], tmp_path: Path
) -> None:
    sm, logs = executed
    assert "ingested 80 rows x 4 columns" in logs["ingest"]
    dataset = json.loads((sm.s3["ingest"] / "dataset.json").read_text())
    assert dataset["rows"] == 80 and dataset["digest"].startswith("sha256:")

    assert "validated 80 rows against 3 column expectations" in logs["validate"]
    sizes = json.loads((sm.s3["split"] / "split.json").read_text())
    assert (sizes["train"], sizes["test"]) == (60, 20)
    features = json.loads((sm.s3["features"] / "features.json").read_text())
    assert features["columns"] == ["x", "y", "size"] and features["outputs"] == 5

    # tune (a training job) searched around train's estimator; train used what it found
    with tarfile.open(sm.s3["tune"] / "model.tar.gz") as tar:
        member = tar.extractfile("best_params.json")
        assert member is not None
        best = json.loads(member.read())
    assert best["metric"] == "accuracy" and best["estimator"].endswith("LogisticRegression")
    assert 0.5 <= best["params"]["C"] <= 50.0 and best["trials"] == 4
    assert f"using tuned params: {best['params']}" in logs["train"]
    assert "trained sklearn.linear_model.LogisticRegression on 60 rows" in logs["train"]
    with tarfile.open(sm.s3["train"] / "model.tar.gz") as tar:
        names = set(tar.getnames())
        member = tar.extractfile("mlstack-model.json")
        assert member is not None
        model_meta = json.loads(member.read())
    assert {"model.joblib", "mlstack-model.json", "code/mlstack_stage.py"} <= names
    assert model_meta["params"] == best["params"] and model_meta["task"] == "classification"

    report = json.loads((sm.s3["evaluate"] / "evaluation.json").read_text())
    # the condition step reads metrics.<name>; label = x > 5 is linearly separable
    assert set(report["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert report["metrics"]["accuracy"] >= 0.8 and report["rows"] == 20
    assert f"accuracy = {report['metrics']['accuracy']:.4f}" in logs["evaluate"]

    # the endpoint: the inference toolkit's hooks, from the script shipped inside the model
    model_dir = tmp_path / "endpoint-model"
    with tarfile.open(sm.s3["train"] / "model.tar.gz") as tar:
        tar.extractall(model_dir, filter="data")
    serve = (
        "import json, sys; sys.path.insert(0, 'code'); import mlstack_stage as m\n"
        "model = m.model_fn('.')\n"
        "body = json.dumps({'instances': [{'x': 9.0, 'y': 1.0, 'size': 'm'}, [0.5, 3.0, 'xl']]})\n"
        "print(m.output_fn(m.predict_fn(m.input_fn(body, 'application/json'), model)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", serve], cwd=model_dir, capture_output=True, text=True, timeout=60
    )
    answer = json.loads(_ok(r))
    assert answer["predictions"] == [1, 0]  # unknown category 'xl' is ignored, not an error
    assert len(answer["probabilities"]) == 2


def test_a_failing_stage_says_why_and_exits_1(tmp_path: Path) -> None:
    sm = FakeSageMaker(tmp_path, _rows(bad=True))
    _ok(sm.processing("ingest"))
    r = sm.processing("validate")
    assert r.returncode == 1
    failure = (tmp_path / "job-validate" / "opt" / "ml" / "output" / "failure").read_text()
    assert failure.startswith("mlstack stage 'validate' failed: data validation failed: 2 problems")
    assert "column 'x': values must be >= 0; 1 row fails, e.g. row 2: -1.0" in failure
    assert "column 'size': values must be one of ['s', 'm', 'l']" in failure
    assert "Traceback" not in r.stderr
    summary = json.loads((sm.s3["validate"] / "validation.json").read_text())
    assert summary["passed"] is False


def test_evaluate_without_a_trained_model_names_the_missing_stage(
    executed: tuple[FakeSageMaker, dict[str, str]], tmp_path: Path
) -> None:
    sm = FakeSageMaker(tmp_path, _rows())
    sm.s3 = {k: v for k, v in executed[0].s3.items() if k != "evaluate"}
    sm.s3["train"] = tmp_path / "empty"
    sm.s3["train"].mkdir()
    r = sm.processing("evaluate")
    assert r.returncode == 1
    assert "needs mlstack-model.json, which no earlier stage produced" in r.stderr
    assert "add a builtin/train stage" in r.stderr


@pytest.mark.parametrize("kind", ["register"])
def test_stage_kinds_without_a_container_implementation_fail_clearly(
    tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "opt" / "ml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTACK_")}
    env.update(
        MLSTACK_OPT_ML=str(root),
        MLSTACK_STAGE_KIND=kind,
        MLSTACK_SPEC=json.dumps({"stage": {"name": "t", "uses": f"builtin/{kind}"}}),
    )
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--stage", "t"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 1
    assert f"kind '{kind}' does not run in this container" in r.stderr


def test_script_parses_as_the_containers_older_python() -> None:
    import ast

    # The scikit-learn 1.2-1 container runs Python 3.9 (older images 3.8): no newer grammar.
    ast.parse(SCRIPT.read_text(), feature_version=(3, 8))
    assert "removeprefix" not in SCRIPT.read_text()  # str methods new in 3.9
