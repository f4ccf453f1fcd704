"""The job wrapper and the shipped runtime run as SageMaker runs them: a subprocess per job,
/opt/ml laid out in a temp dir (``MLSTACK_OPT_ML``), real pandas and scikit-learn on a small CSV,
under this Python and under the oldest the runtime supports (SageMaker's scikit-learn 1.2-1
image: Python 3.9, pandas 1.1.3, scikit-learn 1.2.1; skipped where no Python 3.9 is installed).

Between jobs the test does what SageMaker does with S3: the code bundle ``upsert`` uploads is
mounted as a processing job's ``runtime`` input or unpacked into a training job's
``/opt/ml/code``; a processing job's ``output`` directory becomes the stage's prefix, which later
jobs get mounted under ``input/<stage>``; a training job's model directory is uploaded as
``model.tar.gz``. The bundle is the one the backend uploads (``code_bundle.tarball``), so the
settings a job reads are the compiler's.
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
from mlstack_sagemaker import code_bundle

SCRIPT = code_bundle.job_script()

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

    def __init__(self, tmp: Path, csv: str, python: str = sys.executable) -> None:
        from mlstack.manifest.load import load, resolve

        self.tmp = tmp
        self.python = python
        (tmp / "mlstack.yaml").write_text(SPEC)
        self.project = resolve(load(str(tmp / "mlstack.yaml")), "dev")
        self.csv = csv
        self.s3: dict[str, Path] = {}
        self.bundle = tmp / "s3" / "code" / "sourcedir.tar.gz"
        self.bundle.parent.mkdir(parents=True, exist_ok=True)
        self.bundle.write_bytes(code_bundle.tarball(self.project))

    def stage(self, name: str) -> Any:
        return next(s for s in self.project.pipeline.stages if s.name == name)

    def _env(self, name: str, root: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MLSTACK_", "SM_", "PYTHON", "VIRTUAL_ENV"))
        }
        env.update(self.stage(name).env)
        env["MLSTACK_OPT_ML"] = str(root)
        return env

    def processing(self, name: str) -> subprocess.CompletedProcess[str]:
        root = self.tmp / f"job-{name}" / "opt" / "ml"
        inputs = root / "processing" / "input"
        for upstream in code_bundle.ancestors(self.project, self.stage(name)):
            shutil.copytree(self.s3[upstream], inputs / upstream)
        if not self.stage(name).needs:
            (inputs / "data").mkdir(parents=True)
            (inputs / "data" / "rows.csv").write_text(self.csv)
        (inputs / "code").mkdir(parents=True, exist_ok=True)
        shutil.copy(SCRIPT, inputs / "code" / SCRIPT.name)
        (inputs / "runtime").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.bundle, inputs / "runtime" / self.bundle.name)
        r = subprocess.run(
            [self.python, str(inputs / "code" / SCRIPT.name), name],
            env=self._env(name, root),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.s3[name] = root / "processing" / "output"
        return r

    def training(self, name: str) -> subprocess.CompletedProcess[str]:
        root = self.tmp / f"job-{name}" / "opt" / "ml"
        for upstream in code_bundle.ancestors(self.project, self.stage(name)):
            shutil.copytree(self.s3[upstream], root / "input" / "data" / upstream)
        code = root / "code"
        code.mkdir(parents=True)
        with tarfile.open(self.bundle) as tar:  # the training toolkit unpacks the bundle here
            tar.extractall(code, filter="data")
        env = self._env(name, root)
        env["SM_MODEL_DIR"] = str(root / "model")
        # Script mode: hyperparameters arrive as command-line arguments.
        args = ["--mlstack_stage", name]
        r = subprocess.run(
            [self.python, SCRIPT.name, *args],
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


def _oldest_python() -> str:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "runtime" / "tests" / "oldest_env.py"
    spec = importlib.util.spec_from_file_location("mlstack_oldest_env", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    python = module.interpreter()
    if python is None:
        pytest.skip("no Python 3.9 on this machine for the oldest supported image")
    return str(python)


@pytest.fixture(scope="module", params=["current", "oldest"])
def executed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FakeSageMaker, dict[str, str]]:
    """One execution of the whole pipeline: the jobs' stdout by stage."""
    python = sys.executable if request.param == "current" else _oldest_python()
    sm = FakeSageMaker(tmp_path_factory.mktemp("execution"), _rows(), python)
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
    assert names == {"model.joblib", "mlstack-model.json"}  # the model, nothing else
    assert model_meta["params"] == best["params"] and model_meta["task"] == "classification"

    report = json.loads((sm.s3["evaluate"] / "evaluation.json").read_text())
    # the condition step reads metrics.<name>; label = x > 5 is linearly separable
    assert set(report["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert report["metrics"]["accuracy"] >= 0.8 and report["rows"] == 20
    assert f"accuracy = {report['metrics']['accuracy']:.4f}" in logs["evaluate"]

    # the endpoint: the inference toolkit imports SAGEMAKER_PROGRAM from the unpacked
    # SAGEMAKER_SUBMIT_DIRECTORY (the code bundle) and calls its hooks on /opt/ml/model
    model_dir, code = tmp_path / "endpoint" / "model", tmp_path / "endpoint" / "code"
    with tarfile.open(sm.s3["train"] / "model.tar.gz") as tar:
        tar.extractall(model_dir, filter="data")
    with tarfile.open(sm.bundle) as tar:
        tar.extractall(code, filter="data")
    serve = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import mlstack_job as m\n"
        "model = m.model_fn(sys.argv[2])\n"
        "body = json.dumps({'instances': [{'x': 9.0, 'y': 1.0, 'size': 'm'}, [0.5, 3.0, 'xl']]})\n"
        "print(m.output_fn(m.predict_fn(m.input_fn(body, 'application/json'), model)))\n"
        "print(m.output_fn(m.predict_fn(m.input_fn('9.0,1.0,m\\n', 'text/csv'), model)))\n"
        "try:\n"
        "    m.predict_fn(m.input_fn('{\"instances\": [[1.0]]}', 'application/json'), model)\n"
        "except ValueError as e:\n"
        "    print(json.dumps({'error': str(e)}))\n"
    )
    r = subprocess.run(
        [sm.python, "-c", serve, str(code), str(model_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    v1, csv, bad = (json.loads(line) for line in _ok(r).splitlines())
    assert v1["predictions"] == [1, 0]  # unknown category 'xl' is ignored, not an error
    assert csv["predictions"] == [1]
    assert "row 0: 1 values, expected 3 in this order: ['x', 'y', 'size']" in bad["error"]


def test_a_failing_stage_says_why_and_exits_1(tmp_path: Path) -> None:
    sm = FakeSageMaker(tmp_path, _rows(bad=True))
    _ok(sm.processing("ingest"))
    r = sm.processing("validate")
    assert r.returncode == 1
    failure = (tmp_path / "job-validate" / "opt" / "ml" / "output" / "failure").read_text()
    assert failure.startswith(
        "mlstack stage 'validate' failed: data validation failed in data/rows.csv (80 rows): "
        "column 'size': values must be one"
    )
    assert "column 'x': values must be >= 0; 1 row fails, e.g. row 2: -1.0" in failure
    assert "column 'size': values must be one of ['s', 'm', 'l']" in failure
    assert "Traceback" not in r.stderr
    assert not (sm.s3["validate"] / "validation.json").exists()  # nothing to upload


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


def test_a_function_stage_says_it_runs_only_locally(tmp_path: Path) -> None:
    settings = tmp_path / "t.json"
    settings.write_text(json.dumps({"stage": {"name": "t", "function": "m:f"}}))
    r = subprocess.run(
        [sys.executable, "-m", "mlstack_runtime", "t", "--spec", str(settings)]
        + ["--outputs", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "`function:` stages run only on the local backend so far" in r.stderr


def test_job_settings_travel_in_the_bundle_not_in_the_environment(tmp_path: Path) -> None:
    sm = FakeSageMaker(tmp_path, _rows())
    with tarfile.open(sm.bundle) as tar:
        names = set(tar.getnames())
        settings = json.loads(tar.extractfile("mlstack_settings/tune.json").read())  # type: ignore[union-attr]
    assert {"mlstack_job.py", "mlstack_runtime/__main__.py"} <= names
    assert {f"mlstack_settings/{s.name}.json" for s in sm.project.pipeline.stages} <= names
    assert settings["inputs"] == ["features", "split", "validate", "ingest"]
    assert settings["stage"]["with"]["space"] == {"C": [0.5, 50.0]}
    # the compiled definition gives jobs no mlstack settings in their environment at all
    from mlstack_sagemaker import pipeline_definition as pdef
    from mlstack_sagemaker.plugin import SageMakerConfig

    config = SageMakerConfig.model_validate(
        {
            "region": "eu-west-1",
            "role": "arn:aws:iam::123456789012:role/r",
            "bucket": "shop-artifacts",
        }
    )
    text = json.dumps(pdef.build(sm.project, config))
    assert "MLSTACK_SPEC" not in text and "MLSTACK_STAGE" not in text
    assert '"mlstack_stage": "tune"' in text and code_bundle.JOB_SCRIPT in text


def test_wrapper_parses_as_the_containers_python() -> None:
    import ast

    # The scikit-learn 1.2-1 container runs Python 3.9: no newer grammar in what it runs.
    ast.parse(SCRIPT.read_text(), feature_version=(3, 9))
    import mlstack_runtime

    for f in Path(mlstack_runtime.__file__).parent.rglob("*.py"):
        ast.parse(f.read_text(), filename=str(f), feature_version=(3, 9))
